"""Idempotency keys: a POST sent again with the same `Idempotency-Key` answers with the first
answer instead of acting twice.

A key is claimed per client, with a digest of what was asked (route, target and body) and
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

IDEMPOTENCY_TTL_S = 24 * 3600
MAX_IDEMPOTENCY_KEY = 255


@dataclass(frozen=True, slots=True)
class Idempotency:
    """The key a request came with, and what it asked for."""

    client_id: str
    key: str
    request_hash: str

    def claim(self, status: int, body: str, now: int) -> IdempotencyClaim:
        return IdempotencyClaim(
            self.client_id, self.key, self.request_hash, status, body, now + IDEMPOTENCY_TTL_S
        )


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """A spent key, as stored: what it was asked and what it answered."""

    client_id: str
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
