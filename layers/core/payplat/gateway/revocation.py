"""Revoking access tokens so that it counts everywhere at once.

A revocation is written twice: into every shard of the client's rate-limit bucket, whose
condition runs on every resource request (so it holds even where API Gateway still caches an
Allow for the token, and costs the request path nothing), and into the revocation list that
introspection reads. Both are kept until the token would have expired anyway.

Disabling (or deleting) a client revokes every token it holds or would be issued, and marks
its token-endpoint bucket the same way: the refusal is immediate everywhere, though the
functions cache client records for a while.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Protocol

from payplat.clients.registry import Client, ClientReader
from payplat.gateway.access import API_SCOPE
from payplat.gateway.limiter import RateLimiter
from payplat.gateway.plans import DEFAULT_PLANS, TOKEN_ENDPOINT_PER_CLIENT, PlanStore

# Revoke on at least this many shards: a plan may be moved to more shards later.
MIN_REVOCATION_SHARDS = 8
# No access token lives longer (OAuthSettings caps the TTL there): a revocation older than
# this has nothing left to stop.
MAX_ACCESS_TOKEN_LIFETIME_S = 3600
# "Issued at or before" for a client that may never again hold a token (the year 2286).
EVERY_TOKEN = 9_999_999_999


class BucketRevocations(Protocol):
    """The rate-limit table's side (payplat.gateway.dal.rate_limit_table)."""

    def revoke_token(self, keys: Iterable[str], jti: str, expires_at: int) -> None: ...

    def revoke_before(self, keys: Iterable[str], issued_at_or_before: int) -> None: ...


class RevocationList(Protocol):
    """The tokens table's side, for introspection."""

    def revoke_jti(self, jti: str, client_id: str, expires_at: int) -> None: ...

    def is_revoked(self, jti: str) -> bool: ...


class Revoker:
    def __init__(
        self,
        clients: ClientReader,
        buckets: BucketRevocations,
        plans: PlanStore,
        listed: RevocationList,
    ) -> None:
        self._clients = clients
        self._buckets = buckets
        self._plans = plans
        self.listed = listed

    def revoke_access_token(self, client_id: str, jti: str, expires_at: int | None = None) -> None:
        """Revoke one access token (unknown clients are ignored: their tokens cannot pass the
        gate anyway)."""
        until = expires_at or int(time.time()) + MAX_ACCESS_TOKEN_LIFETIME_S
        self.listed.revoke_jti(jti, client_id, until)
        client = self._clients.get(client_id)
        if client is not None:
            self._buckets.revoke_token(self.bucket_keys(client), jti, until)

    def disable(self, client: Client) -> None:
        """Every token the client holds or could still be issued: its resource requests and
        its token-endpoint requests are refused from now on."""
        token = self._plans.get_plan(TOKEN_ENDPOINT_PER_CLIENT.name) or TOKEN_ENDPOINT_PER_CLIENT
        keys = self.bucket_keys(client) + _shard_keys(token.name, client.client_id, token.shards)
        self._buckets.revoke_before(keys, EVERY_TOKEN)

    def bucket_keys(self, client: Client) -> list[str]:
        limits = (
            self._plans.get_plan(client.plan)
            or DEFAULT_PLANS.get(client.plan)
            or DEFAULT_PLANS["sandbox"]
        )
        return _shard_keys(API_SCOPE, client.client_id, limits.shards)


def _shard_keys(scope: str, subject: str, shards: int) -> list[str]:
    """Every shard the plan uses, and more: a plan may be moved to more shards later."""
    count = max(shards, MIN_REVOCATION_SHARDS)
    return [RateLimiter.key(scope, subject, shard) for shard in range(count)]
