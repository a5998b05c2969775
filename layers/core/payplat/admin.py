"""Operator actions on clients and plans (the `payplat` CLI calls these): change a client's
plan, disable a client, revoke one token. Each takes effect on the next request, even where
API Gateway still holds a cached Allow for the token: the revocation is folded into the
limiter's condition, which runs on every request."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Protocol

from payplat import audit
from payplat.access import API_SCOPE
from payplat.clients import Client
from payplat.ratelimit.limiter import RateLimiter
from payplat.ratelimit.plans import DEFAULT_PLANS, Limits, PlanStore

# Revoke on at least this many shards: a plan may be moved to more shards later.
MIN_REVOCATION_SHARDS = 8
MAX_TOKEN_LIFETIME_S = 3600


class AdminClients(Protocol):
    def get(self, client_id: str) -> Client | None: ...

    def update(self, client_id: str, **attributes: str) -> Client | None: ...


class Revocations(Protocol):
    def revoke_token(self, keys: Iterable[str], jti: str, expires_at: int) -> None: ...

    def revoke_before(self, keys: Iterable[str], issued_at_or_before: int) -> None: ...


class UnknownClient(LookupError):
    pass


def plans(store: PlanStore) -> list[Limits]:
    """Every plan in force: the stored ones, and the defaults not overridden."""
    stored = {plan.name: plan for plan in store.list_plans()}
    return sorted({**DEFAULT_PLANS, **stored}.values(), key=lambda plan: plan.name)


def set_plan(clients: AdminClients, store: PlanStore, client_id: str, plan: str) -> Client:
    if plan not in {p.name for p in plans(store)}:
        raise ValueError(f"no such plan: {plan}")
    client = clients.update(client_id, plan=plan)
    if client is None:
        raise UnknownClient(client_id)
    _record("client.plan_changed", client_id, plan=plan)
    return client


def disable_client(
    clients: AdminClients, revocations: Revocations, store: PlanStore, client_id: str
) -> Client:
    client = clients.update(client_id, status="disabled")
    if client is None:
        raise UnknownClient(client_id)
    revocations.revoke_before(_bucket_keys(client, store), int(time.time()))
    _record("client.disabled", client_id)
    return client


def revoke_token(
    clients: AdminClients, revocations: Revocations, store: PlanStore, client_id: str, jti: str
) -> None:
    client = clients.get(client_id)
    if client is None:
        raise UnknownClient(client_id)
    revocations.revoke_token(
        _bucket_keys(client, store), jti, int(time.time()) + MAX_TOKEN_LIFETIME_S
    )
    _record("token.revoked", client_id, jti=jti)


def _bucket_keys(client: Client, store: PlanStore) -> list[str]:
    limits = (
        store.get_plan(client.plan) or DEFAULT_PLANS.get(client.plan) or DEFAULT_PLANS["sandbox"]
    )
    shards = max(limits.shards, MIN_REVOCATION_SHARDS)
    return [RateLimiter.key(API_SCOPE, client.client_id, shard) for shard in range(shards)]


def _record(event_type: str, client_id: str, **details: str) -> None:
    audit.record(
        audit.AuditEvent(
            type=event_type,
            outcome="success",
            actor=audit.Actor(sub="operator"),
            resource=f"client/{client_id}",
            details=dict(details),
        )
    )
