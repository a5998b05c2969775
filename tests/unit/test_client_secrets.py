"""Client secrets: what a stored client accepts, and rotation with overlap.

A secret is shown once and stored as a hash; after a rotation the previous secret keeps
working until `previous_secret_expires_at`, and a further rotation ends that overlap.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from payplat.clients.registry import (
    GRANT_CLIENT_CREDENTIALS,
    PRIVATE_KEY_JWT,
    SECRET_BASIC,
    Client,
    hash_secret,
    register_client,
    rotate_secret,
)

NOW = 1_750_000_000
OWNER = "usr_alice"
# A syntactically valid public JWK: the secrets code never looks inside it.
JWKS = {"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}]}


class MemoryClientStore:
    """The ClientStore protocol over a dict (update returns None for an unknown client, as
    the DynamoDB store's conditional update does)."""

    def __init__(self, *clients: Client) -> None:
        self.clients: dict[str, Client] = {client.client_id: client for client in clients}

    def get(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    def put(self, client: Client) -> None:
        self.clients[client.client_id] = client

    def update(self, client_id: str, **attributes: Any) -> Client | None:
        client = self.clients.get(client_id)
        if client is None:
            return None
        updated = dataclasses.replace(client, **attributes)
        self.clients[client_id] = updated
        return updated


def secret_client(store: MemoryClientStore) -> tuple[Client, str]:
    client, secret = register_client(
        store, name="Shop", scopes={"payments:read"}, owner=OWNER, auth_method=SECRET_BASIC
    )
    assert secret is not None
    return client, secret


# --- register_client ---------------------------------------------------------------------------


def test_a_registered_client_stores_only_the_hash_of_its_secret() -> None:
    # Given a new secret client
    store = MemoryClientStore()
    client, secret = secret_client(store)

    # Then the store holds the client, with the secret's hash and not the secret
    stored = store.get(client.client_id)
    assert stored == client
    assert stored.secret_hash == hash_secret(secret)
    assert secret not in repr(stored)


def test_two_registrations_get_different_ids_and_secrets() -> None:
    store = MemoryClientStore()
    first, first_secret = secret_client(store)
    second, second_secret = secret_client(store)

    assert first.client_id != second.client_id
    assert first_secret != second_secret
    assert not second.accepts_secret(first_secret, NOW)


# --- accepts_secret ------------------------------------------------------------------------------


def test_the_current_secret_is_accepted_and_another_is_not() -> None:
    client, secret = secret_client(MemoryClientStore())

    assert client.accepts_secret(secret, NOW)
    assert not client.accepts_secret(secret + "x", NOW)
    assert not client.accepts_secret("", NOW)
    assert not client.accepts_secret(client.secret_hash or "", NOW)  # the hash is no secret


def test_the_previous_secret_works_until_its_overlap_ends() -> None:
    # Given a client whose secret was rotated at NOW with an hour's overlap
    store = MemoryClientStore()
    client, old = secret_client(store)
    rotated, new = rotate_secret(store, client, overlap_s=3600, now=NOW)

    # Then both secrets work during the overlap
    assert rotated.previous_secret_expires_at == NOW + 3600
    assert rotated.accepts_secret(old, NOW)
    assert rotated.accepts_secret(old, NOW + 3599)
    assert rotated.accepts_secret(new, NOW + 3599)
    # And from the expiry on only the new one does
    assert not rotated.accepts_secret(old, NOW + 3600)
    assert not rotated.accepts_secret(old, NOW + 86_400)
    assert rotated.accepts_secret(new, NOW + 86_400)


def test_a_rotation_without_overlap_retires_the_old_secret_at_once() -> None:
    store = MemoryClientStore()
    client, old = secret_client(store)

    rotated, new = rotate_secret(store, client, overlap_s=0, now=NOW)

    assert not rotated.accepts_secret(old, NOW)
    assert rotated.accepts_secret(new, NOW)


def test_a_previous_hash_without_an_expiry_is_not_accepted() -> None:
    # Given a record with a previous secret but no overlap deadline (a half-written rotation)
    store = MemoryClientStore()
    client, old = secret_client(store)
    record = dataclasses.replace(
        client, secret_hash=hash_secret("new"), previous_secret_hash=hash_secret(old)
    )

    # Then the previous secret does not work: no deadline means no overlap
    assert not record.accepts_secret(old, NOW)
    assert record.accepts_secret("new", NOW)


# --- rotate_secret -----------------------------------------------------------------------------


def test_rotation_stores_the_new_secret_and_returns_it_once() -> None:
    store = MemoryClientStore()
    client, old = secret_client(store)

    rotated, new = rotate_secret(store, client, overlap_s=60, now=NOW)

    assert new != old
    assert store.get(client.client_id) == rotated
    assert rotated.secret_hash == hash_secret(new)
    assert rotated.previous_secret_hash == hash_secret(old)
    assert new not in repr(rotated)
    assert old not in repr(rotated)


def test_a_second_rotation_ends_the_first_overlap() -> None:
    # Given a secret rotated twice, the second time while the first overlap still ran
    store = MemoryClientStore()
    client, first = secret_client(store)
    once, second = rotate_secret(store, client, overlap_s=3600, now=NOW)
    twice, third = rotate_secret(store, once, overlap_s=3600, now=NOW + 60)

    # Then the oldest secret no longer works, though its first overlap had time left
    assert not twice.accepts_secret(first, NOW + 61)
    # And the second works through the new overlap, the third from now on
    assert twice.accepts_secret(second, NOW + 61)
    assert twice.accepts_secret(second, NOW + 60 + 3599)
    assert not twice.accepts_secret(second, NOW + 60 + 3600)
    assert twice.accepts_secret(third, NOW + 60 + 3600)


def test_rotating_an_unknown_client_fails() -> None:
    # Given a client that is no longer in the store
    client, _ = secret_client(MemoryClientStore())

    with pytest.raises(LookupError):
        rotate_secret(MemoryClientStore(), client, overlap_s=60, now=NOW)


# --- private_key_jwt clients -------------------------------------------------------------------


def test_a_private_key_jwt_client_has_no_secret() -> None:
    # Given a client registered for private_key_jwt
    store = MemoryClientStore()
    client, secret = register_client(
        store,
        name="Signer",
        scopes={"payments:read"},
        owner=OWNER,
        grant_types=frozenset({GRANT_CLIENT_CREDENTIALS}),
        auth_method=PRIVATE_KEY_JWT,
        jwks=JWKS,
    )

    # Then no secret is issued and none, not even an empty one, is accepted
    assert secret is None
    assert client.secret_hash is None
    assert not client.accepts_secret("", NOW)
    assert not client.accepts_secret("anything", NOW)


def test_a_private_key_jwt_client_cannot_rotate_a_secret() -> None:
    store = MemoryClientStore()
    client, _ = register_client(
        store,
        name="Signer",
        scopes={"payments:read"},
        owner=OWNER,
        auth_method=PRIVATE_KEY_JWT,
        jwks=JWKS,
    )

    with pytest.raises(ValueError, match="private_key_jwt"):
        rotate_secret(store, client, overlap_s=60, now=NOW)

    # And nothing was written
    assert store.get(client.client_id) == client


def test_register_client_refuses_unknown_scopes_grants_and_methods() -> None:
    store = MemoryClientStore()
    with pytest.raises(ValueError, match="scopes"):
        register_client(store, name="x", scopes={"payments:everything"}, owner=OWNER)
    with pytest.raises(ValueError, match="grant"):
        register_client(
            store, name="x", scopes={"payments:read"}, owner=OWNER, grant_types=frozenset({"x"})
        )
    with pytest.raises(ValueError, match="auth method"):
        register_client(store, name="x", scopes={"payments:read"}, owner=OWNER, auth_method="none")
    assert store.clients == {}
