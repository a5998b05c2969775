"""The demo data `make run` starts with, created through the same domain code partners use:
two account holders who can log in (alice, a consumer; bob, a merchant) with EUR and USD
accounts; bob's shop client and a wallet client acting for alice by client credentials; a
third-party app that acts for whoever consents (authorization code + PKCE, refresh tokens);
and the platform's admin client, whose `clients:manage` token registers new partners."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from payplat.clients.registry import (
    GRANT_AUTHORIZATION_CODE,
    GRANT_REFRESH_TOKEN,
    ClientStore,
    register_client,
)
from payplat.oauth.users import UserStore, create_user
from payplat.payments.ledger import Account

ALICE = "usr_alice"  # a consumer
BOB = "usr_bob"  # a merchant: owns the merchant client
MERCHANT_OWNER = BOB
ADMIN_OWNER = "platform_admin"
MERCHANT_SCOPES = frozenset(
    {"payments:read", "payments:write", "refunds:write", "accounts:read", "webhooks:manage"}
)
CONSUMER_SCOPES = frozenset({"payments:read", "payments:write", "accounts:read"})
ADMIN_SCOPES = frozenset({"clients:manage"})
APP_SCOPES = frozenset({"accounts:read", "payments:read", "payments:write"})
# Where the demo app "listens": a loopback URI, allowed in local mode only.
APP_REDIRECT_URI = "http://127.0.0.1:8765/callback"
USERS = (("alice", "Alice"), ("bob", "Bob"))

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
    redirect_uri: str | None = None

    def as_json(self) -> dict[str, str]:
        document = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scope": self.scope,
        }
        if self.redirect_uri is not None:
            document["redirect_uri"] = self.redirect_uri
        return document


@dataclass(frozen=True)
class Seeded:
    clients: dict[str, SeededClient]
    users: dict[str, dict[str, str]]  # label -> {username, password, user_id}


def seed(clients: ClientStore, ledger: Any, users: UserStore) -> Seeded:
    """`ledger` is the ledger store (it opens accounts). Passwords are new random ones on
    every start, like the client secrets: nothing guessable is ever seeded."""
    seeded = {}
    for label, name, scopes, owner in (
        ("admin", "payplat admin", ADMIN_SCOPES, ADMIN_OWNER),
        ("merchant", "Bob's shop", MERCHANT_SCOPES, BOB),
        ("consumer", "Alice's wallet app", CONSUMER_SCOPES, ALICE),
    ):
        client, secret = register_client(clients, name=name, scopes=scopes, owner=owner)
        assert secret is not None  # noqa: S101 - secret clients
        seeded[label] = SeededClient(client.client_id, secret, " ".join(sorted(scopes)))
    app, secret = register_client(
        clients,
        name="Budget Buddy (demo third-party app)",
        scopes=APP_SCOPES,
        owner=BOB,  # the partner that registered it; it acts for whoever consents
        grant_types=frozenset({GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN}),
        redirect_uris=(APP_REDIRECT_URI,),
    )
    assert secret is not None  # noqa: S101 - a secret client
    seeded["app"] = SeededClient(
        app.client_id, secret, " ".join(sorted(APP_SCOPES)), APP_REDIRECT_URI
    )
    holders = {}
    for username, display_name in USERS:
        password = secrets.token_urlsafe(12)
        user = create_user(users, username, password, display_name)
        holders[username] = {"username": username, "password": password, "user_id": user.user_id}
    now = int(time.time())
    for account_id, owner, currency, balance in ACCOUNTS:
        ledger.open_account(Account(account_id, owner, currency, balance, 0, now))
    return Seeded(seeded, holders)


def accounts() -> dict[str, dict[str, str]]:
    """holder -> currency -> account id, for local.json and the README walkthrough."""
    holders = {ALICE: "alice", BOB: "bob"}
    table: dict[str, dict[str, str]] = {}
    for account_id, owner, currency, _ in ACCOUNTS:
        table.setdefault(holders[owner], {})[currency] = account_id
    return table
