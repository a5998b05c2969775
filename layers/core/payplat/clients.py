"""Partner applications (OAuth clients): registration and authentication.

Client secrets are 256-bit random strings, shown once and stored only as a SHA-256 hash: with
that much entropy a fast hash is safe (no dictionary to try), unlike a password.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from payplat.errors import InvalidClient
from payplat.routes import SCOPES

SECRET_BYTES = 32
GRANT_CLIENT_CREDENTIALS = "client_credentials"
DEFAULT_PLAN = "standard"


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    name: str
    secret_hash: str
    scopes: frozenset[str]
    grant_types: frozenset[str]
    owner: str  # the merchant or account holder the client acts for
    plan: str = DEFAULT_PLAN
    status: str = "active"
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def active(self) -> bool:
        return self.status == "active"


class ClientReader(Protocol):
    def get(self, client_id: str) -> Client | None: ...


class ClientStore(ClientReader, Protocol):
    def put(self, client: Client) -> None: ...


def hash_secret(secret: str) -> str:
    return "sha256$" + hashlib.sha256(secret.encode("utf-8")).hexdigest()


# Compared against when the client is unknown, so timing does not tell which ids exist.
_UNKNOWN_CLIENT_HASH = hash_secret(secrets.token_urlsafe(SECRET_BYTES))


def register_client(
    store: ClientStore,
    *,
    name: str,
    scopes: set[str] | frozenset[str],
    owner: str,
    grant_types: frozenset[str] = frozenset({GRANT_CLIENT_CREDENTIALS}),
    plan: str = DEFAULT_PLAN,
) -> tuple[Client, str]:
    """Create a client; returns it with its secret, which is never retrievable again."""
    unknown = set(scopes) - SCOPES.keys()
    if unknown:
        raise ValueError(f"unknown scopes: {sorted(unknown)}")
    secret = secrets.token_urlsafe(SECRET_BYTES)
    client = Client(
        client_id="ppc_" + secrets.token_hex(12),
        name=name,
        secret_hash=hash_secret(secret),
        scopes=frozenset(scopes),
        grant_types=grant_types,
        owner=owner,
        plan=plan,
    )
    store.put(client)
    return client, secret


def authenticate_client(store: ClientReader, client_id: str, secret: str) -> Client:
    client = store.get(client_id) if client_id else None
    expected = client.secret_hash if client else _UNKNOWN_CLIENT_HASH
    matches = hmac.compare_digest(hash_secret(secret), expected)
    if client is None or not matches or not client.active:
        raise InvalidClient()
    return client
