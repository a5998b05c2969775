"""The demo data `make run` starts with, created through the same domain code partners use:
two account holders with EUR and USD accounts, and a partner client acting for each (alice's
until the authorization-code flow lets her consent instead), plus the platform's admin."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from payplat.clients import ClientStore, register_client
from payplat.ledger import Account

ALICE = "usr_alice"  # a consumer
BOB = "usr_bob"  # a merchant: owns the merchant client
MERCHANT_OWNER = BOB
ADMIN_OWNER = "platform_admin"
MERCHANT_SCOPES = frozenset({"payments:read", "payments:write", "refunds:write", "accounts:read"})
CONSUMER_SCOPES = frozenset({"payments:read", "payments:write", "accounts:read"})
ADMIN_SCOPES = frozenset({"clients:manage"})

# Opening balances in minor units.
ACCOUNTS = (
    ("acct_alice_eur", ALICE, "EUR", 250_000),
    ("acct_alice_usd", ALICE, "USD", 100_000),
    ("acct_bob_eur", BOB, "EUR", 1_000_000),
    ("acct_bob_usd", BOB, "USD", 500_000),
)


@dataclass(frozen=True)
class SeededClient:
    client_id: str
    client_secret: str
    scope: str


def seed(clients: ClientStore, ledger: Any) -> dict[str, SeededClient]:
    """`ledger` is the ledger store (it opens accounts)."""
    seeded = {}
    for label, name, scopes, owner in (
        ("admin", "payplat admin", ADMIN_SCOPES, ADMIN_OWNER),
        ("merchant", "Bob's shop", MERCHANT_SCOPES, BOB),
        ("consumer", "Alice's wallet app", CONSUMER_SCOPES, ALICE),
    ):
        client, secret = register_client(clients, name=name, scopes=scopes, owner=owner)
        seeded[label] = SeededClient(client.client_id, secret, " ".join(sorted(scopes)))
    now = int(time.time())
    for account_id, owner, currency, balance in ACCOUNTS:
        ledger.open_account(Account(account_id, owner, currency, balance, 0, now))
    return seeded


def accounts() -> dict[str, dict[str, str]]:
    """holder -> currency -> account id, for local.json and the README walkthrough."""
    holders = {ALICE: "alice", BOB: "bob"}
    table: dict[str, dict[str, str]] = {}
    for account_id, owner, currency, _ in ACCOUNTS:
        table.setdefault(holders[owner], {})[currency] = account_id
    return table
