"""Idempotency keys: a POST sent again with the same `Idempotency-Key` answers with the first
answer instead of acting twice.

A key is claimed in the namespace of the principal its answer belongs to (`namespace_of`):
the client when it acts for itself, the client *and* the account holder when a holder
delegated to it, so a replay only ever returns what the caller could read anyway. It is
stored with a digest of what was asked (route, target and body) and
the answer to replay, in the same conditional write as the change it answers for: a key is
never spent without its change, and never makes two. The same key with another request is
a 422. Claims are kept for a day. The ledger (money) and webhooks (endpoints, secrets,
redeliveries) share this; each table stores its own claims.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from payplat.errors import IdempotencyMismatch
from payplat.principal import Principal

IDEMPOTENCY_TTL_S = 24 * 3600
MAX_IDEMPOTENCY_KEY = 255


def namespace_of(principal: Principal) -> str:
    """Whose answers a key can replay. A client-credentials token's subject is the client
    (it acts for its one owner): the client's namespace, as it always was. A holder's token
    acts for that holder only: the client and the holder, so two holders behind one app
    never share a key (client ids hold no `/`, so no namespace can pose as another)."""
    if principal.subject == principal.client_id:
        return principal.client_id
    return f"{principal.client_id}/{principal.subject}"


def valid_key(key: str) -> bool:
    """Printable ASCII, 1 to 255 characters (Stripe's rule): what a header carries intact
    everywhere between a partner and us."""
    return 0 < len(key) <= MAX_IDEMPOTENCY_KEY and all(" " <= c <= "~" for c in key)


@dataclass(frozen=True, slots=True)
class Idempotency:
    """The key a request came with, whose it is (`namespace_of`), and what it asked for."""

    namespace: str
    key: str
    request_hash: str

    def claim(self, status: int, body: str, now: int) -> IdempotencyClaim:
        return IdempotencyClaim(
            self.namespace, self.key, self.request_hash, status, body, now + IDEMPOTENCY_TTL_S
        )


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """A spent key, as stored: what it was asked and what it answered."""

    namespace: str
    key: str
    request_hash: str
    status: int
    body: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the route answers: the stored body is replayed byte for byte on a retry."""

    status: int
    body: str
    replayed: bool = False


class KeyTaken(Exception):
    """The idempotency key was claimed already; `record` is the claim as stored."""

    def __init__(self, record: IdempotencyClaim) -> None:
        super().__init__(record.key)
        self.record = record


def request_hash(route: str, target: str, body: Mapping[str, Any]) -> str:
    canonical = json.dumps([route, target, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def replayed(record: IdempotencyClaim, idempotency: Idempotency) -> Outcome:
    """The first answer again, if the key comes back with the same request."""
    if record.request_hash != idempotency.request_hash:
        raise IdempotencyMismatch(
            "This Idempotency-Key was used with different parameters.",
            param="Idempotency-Key",
        )
    return Outcome(record.status, record.body, replayed=True)
