"""The demo data `make run` starts with, created through the same domain code partners use."""

from __future__ import annotations

from dataclasses import dataclass

from payplat.clients import ClientStore, register_client

MERCHANT_SCOPES = frozenset({"payments:read", "payments:write", "refunds:write", "accounts:read"})
ADMIN_SCOPES = frozenset({"clients:manage"})
MERCHANT_OWNER = "merchant_demo"
ADMIN_OWNER = "platform_admin"


@dataclass(frozen=True)
class SeededClient:
    client_id: str
    client_secret: str
    scope: str


def seed(clients: ClientStore) -> dict[str, SeededClient]:
    seeded = {}
    for label, name, scopes, owner in (
        ("admin", "payplat admin", ADMIN_SCOPES, ADMIN_OWNER),
        ("merchant", "Demo merchant", MERCHANT_SCOPES, MERCHANT_OWNER),
    ):
        client, secret = register_client(clients, name=name, scopes=scopes, owner=owner)
        seeded[label] = SeededClient(client.client_id, secret, " ".join(sorted(scopes)))
    return seeded
