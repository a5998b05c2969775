"""Who is calling a resource route: built from the authorizer's context and the client's
registration (owner, status), which is cached briefly so a warm function does not read it on
every request."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from payplat.clients import Client, ClientReader
from payplat.errors import AuthenticationFailed, PermissionDenied

CLIENT_CACHE_TTL_S = 30.0


@dataclass(frozen=True, slots=True)
class Principal:
    client_id: str
    subject: str
    scopes: frozenset[str]
    jti: str
    owner: str  # whose accounts and payments this caller acts for
    plan: str  # the client's current plan (its registration, not the token, is the truth)
    issued_at: int | None = None  # the token's iat, checked against revocations
    request_id: str | None = None  # API Gateway's, for the audit trail of what it changes

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise PermissionDenied(f"This route needs the scope {scope}.")


class CachedClients:
    def __init__(
        self,
        store: ClientReader,
        ttl_s: float = CLIENT_CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[float, Client | None]] = {}

    def get(self, client_id: str) -> Client | None:
        now = self._clock()
        hit = self._entries.get(client_id)
        if hit is not None and now - hit[0] < self._ttl_s:
            return hit[1]
        client = self._store.get(client_id)
        self._entries[client_id] = (now, client)
        return client

    def forget(self, client_id: str) -> bool:
        """Drop the cached record (it may be stale); True if there was one."""
        return self._entries.pop(client_id, None) is not None


def principal_from(authorizer_context: Mapping[str, Any], clients: CachedClients) -> Principal:
    client_id = str(authorizer_context.get("client_id") or "")
    client = clients.get(client_id) if client_id else None
    if client is None or not client.active:
        raise AuthenticationFailed("The client is unknown or disabled.")
    subject = str(authorizer_context.get("sub") or client_id)
    return Principal(
        client_id=client_id,
        subject=subject,
        # The token's scopes as far as the client's registration still holds them: a
        # scope removed since the token was issued is refused from the next client read.
        scopes=frozenset(str(authorizer_context.get("scope") or "").split()) & client.scopes,
        jti=str(authorizer_context.get("jti") or ""),
        # A client-credentials token's subject is the client: it acts for the client's
        # owner. Any other subject is the account holder who consented: it acts for them.
        owner=client.owner if subject == client_id else subject,
        plan=client.plan,
        issued_at=_int_or_none(authorizer_context.get("iat")),
    )


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
