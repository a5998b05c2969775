"""Partner applications (OAuth clients): what a registration holds, and its secrets.

Client secrets are 256-bit random strings, shown once and stored only as a SHA-256 hash: with
that much entropy a fast hash is safe (no dictionary to try), unlike a password.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from payplat.routes import SCOPES

SECRET_BYTES = 32
GRANT_CLIENT_CREDENTIALS = "client_credentials"
GRANT_AUTHORIZATION_CODE = "authorization_code"
GRANT_REFRESH_TOKEN = "refresh_token"
# RFC 9700 §2.4 and OAuth 2.1 retire these two; a client gets them only when registered with
# them explicitly, and every use is audited.
GRANT_PASSWORD = "password"
GRANT_IMPLICIT = "implicit"
GRANT_TYPES = (
    GRANT_CLIENT_CREDENTIALS,
    GRANT_AUTHORIZATION_CODE,
    GRANT_REFRESH_TOKEN,
    GRANT_PASSWORD,
    GRANT_IMPLICIT,
)
LEGACY_GRANTS = frozenset({GRANT_PASSWORD, GRANT_IMPLICIT})
# Grants that act for a logged-in account holder (and so need redirect URIs or a user).
USER_GRANTS = frozenset({GRANT_AUTHORIZATION_CODE, GRANT_PASSWORD, GRANT_IMPLICIT})

SECRET_BASIC = "client_secret_basic"
SECRET_POST = "client_secret_post"
PRIVATE_KEY_JWT = "private_key_jwt"
AUTH_METHODS = (SECRET_BASIC, SECRET_POST, PRIVATE_KEY_JWT)
SECRET_METHODS = frozenset({SECRET_BASIC, SECRET_POST})
DEFAULT_PLAN = "standard"


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    name: str
    secret_hash: str | None  # None for private_key_jwt clients: they hold no secret
    scopes: frozenset[str]
    grant_types: frozenset[str]
    owner: str  # the merchant or account holder the client acts for
    plan: str = DEFAULT_PLAN
    status: str = "active"
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    redirect_uris: tuple[str, ...] = ()
    auth_method: str = SECRET_BASIC
    jwks: dict[str, Any] | None = None  # the client's public keys, for private_key_jwt
    # Secret rotation with overlap: the old secret keeps working until this time (unix s).
    previous_secret_hash: str | None = None
    previous_secret_expires_at: int | None = None
    registration_token_hash: str | None = None  # RFC 7592 registration access token
    dpop_bound_access_tokens: bool = False  # RFC 9449 §5.2: DPoP-bound tokens only
    # RFC 9126 §6: its authorization requests must be pushed (the authorize page refuses
    # parameters in the query).
    require_pushed_authorization_requests: bool = False

    @property
    def active(self) -> bool:
        return self.status == "active"

    def accepts_secret(self, secret: str, now: int) -> bool:
        """The current secret, or the previous one while its overlap lasts."""
        given = hash_secret(secret)
        current = hmac.compare_digest(given, self.secret_hash or _UNKNOWN_CLIENT_HASH)
        previous = (
            self.previous_secret_hash is not None
            and self.previous_secret_expires_at is not None
            and now < self.previous_secret_expires_at
            and hmac.compare_digest(given, self.previous_secret_hash)
        )
        return self.secret_hash is not None and (current or previous)


class ClientReader(Protocol):
    def get(self, client_id: str) -> Client | None: ...


class ClientStore(ClientReader, Protocol):
    def put(self, client: Client) -> None: ...

    def update(self, client_id: str, **attributes: Any) -> Client | None: ...


def hash_secret(secret: str) -> str:
    return "sha256$" + hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


# Compared against when the client is unknown, so timing does not tell which ids exist.
_UNKNOWN_CLIENT_HASH = hash_secret(new_secret())


def register_client(
    store: ClientStore,
    *,
    name: str,
    scopes: set[str] | frozenset[str],
    owner: str,
    grant_types: frozenset[str] = frozenset({GRANT_CLIENT_CREDENTIALS}),
    plan: str = DEFAULT_PLAN,
    redirect_uris: tuple[str, ...] = (),
    auth_method: str = SECRET_BASIC,
    jwks: dict[str, Any] | None = None,
    registration_token_hash: str | None = None,
    require_pushed_authorization_requests: bool = False,
    dpop_bound_access_tokens: bool = False,
) -> tuple[Client, str | None]:
    """Create a client; returns it with its secret (None for private_key_jwt), which is never
    retrievable again."""
    unknown = set(scopes) - SCOPES.keys()
    if unknown:
        raise ValueError(f"unknown scopes: {sorted(unknown)}")
    if not set(grant_types) <= set(GRANT_TYPES):
        raise ValueError(f"unknown grant types: {sorted(set(grant_types) - set(GRANT_TYPES))}")
    if auth_method not in AUTH_METHODS:
        raise ValueError(f"unknown token endpoint auth method: {auth_method}")
    secret = None if auth_method == PRIVATE_KEY_JWT else new_secret()
    client = Client(
        client_id="ppc_" + secrets.token_hex(12),
        name=name,
        secret_hash=None if secret is None else hash_secret(secret),
        scopes=frozenset(scopes),
        grant_types=frozenset(grant_types),
        owner=owner,
        plan=plan,
        redirect_uris=tuple(redirect_uris),
        auth_method=auth_method,
        jwks=jwks,
        registration_token_hash=registration_token_hash,
        require_pushed_authorization_requests=require_pushed_authorization_requests,
        dpop_bound_access_tokens=dpop_bound_access_tokens,
    )
    store.put(client)
    return client, secret


def rotate_secret(
    store: ClientStore, client: Client, *, overlap_s: int, now: int
) -> tuple[Client, str]:
    """Issue a new secret; the current one keeps working for `overlap_s` more seconds, so a
    partner can roll its fleet without downtime (a third secret ends the second's overlap)."""
    if client.secret_hash is None:
        raise ValueError("this client authenticates with private_key_jwt: it has no secret")
    secret = new_secret()
    updated = store.update(
        client.client_id,
        secret_hash=hash_secret(secret),
        previous_secret_hash=client.secret_hash,
        previous_secret_expires_at=now + overlap_s,
    )
    if updated is None:
        raise LookupError(client.client_id)
    return updated, secret


CLIENT_CACHE_TTL_S = 30.0


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
