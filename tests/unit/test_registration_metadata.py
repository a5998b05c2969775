"""Dynamic client registration (RFC 7591) and its update (RFC 7592 §2.2): which metadata is
accepted, what is refused and with which error, and what a registration stores.

The registration functions take an AuthServer but read only `local`, `users`, `issuer` and
`now()` from it. A real AuthServer also wants a KMS key ring, grant and pending stores, an
assertion log and a cached client reader, none of which registration touches; `ServerStub`
carries just the attributes read, with a dict-backed user store, and is passed with `cast`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from payplat.audit import events as audit
from payplat.clients.registry import PRIVATE_KEY_JWT, SECRET_POST, Client, hash_secret
from payplat.errors import OAuthError
from payplat.oauth.authserver import AuthServer
from payplat.oauth.grants import digest
from payplat.oauth.registration import (
    MAX_REDIRECT_URIS,
    MAX_URI_CHARS,
    InvalidMetadata,
    authorized_client,
    register,
    update,
)
from payplat.oauth.users import User, UserExists
from tests.unit.test_client_secrets import MemoryClientStore

ISSUER = "https://auth.payplat.test"
NOW = 1_750_000_000
CALLBACK = "https://shop.example/oauth/callback"
ORIGIN = audit.Origin(source_ip="192.0.2.1", request_id="req-1")
PLANS = {"standard", "sandbox"}  # in force; "internal" exists but is not open to partners

EC_KEY = ec.generate_private_key(ec.SECP256R1())


class MemoryUserStore:
    """The UserStore protocol over a dict."""

    def __init__(self, *usernames: str) -> None:
        self.users: dict[str, User] = {}
        for username in usernames:
            self.put(
                User(
                    username=username,
                    user_id=f"usr_{username}",
                    display_name=username.capitalize(),
                    password_hash="unusable",  # never verified here
                )
            )

    def get(self, username: str) -> User | None:
        return self.users.get(username)

    def put(self, user: User) -> None:
        if user.username in self.users:
            raise UserExists(user.username)
        self.users[user.username] = user


@dataclass
class ServerStub:
    """The part of AuthServer that payplat.oauth.registration reads (see the module docstring)."""

    users: MemoryUserStore = field(default_factory=lambda: MemoryUserStore("alice", "bob"))
    local: bool = False
    fapi: bool = False
    issuer: str = ISSUER
    revoker: Any = None  # only delete() uses it, and it is not exercised here
    clock: int = NOW

    def now(self) -> int:
        return self.clock


def plan_exists(plan: str) -> bool:
    return plan in PLANS


def public_jwks(*keys: Any) -> dict[str, Any]:
    jwks = []
    for index, key in enumerate(keys or (EC_KEY,)):
        public = key.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        jwks.append({**jwk, "kid": f"k{index}"})
    return {"keys": jwks}


def metadata(**overrides: Any) -> dict[str, Any]:
    """A valid RFC 7591 registration body (a code-grant web app for alice)."""
    body: dict[str, Any] = {
        "client_name": "Alice's shop",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [CALLBACK],
        "scope": "payments:read payments:write",
        "owner": "usr_alice",
    }
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not None}


def do_register(
    body: dict[str, Any],
    *,
    store: MemoryClientStore | None = None,
    server: ServerStub | None = None,
) -> dict[str, Any]:
    return register(
        cast(AuthServer, server or ServerStub()),
        store if store is not None else MemoryClientStore(),
        body,
        plan_exists=plan_exists,
        registrar="ppc_admin",
        origin=ORIGIN,
    )


def refused(body: dict[str, Any], *, server: ServerStub | None = None) -> OAuthError:
    """Register `body`, expecting a refusal; nothing may have been stored."""
    store = MemoryClientStore()
    with pytest.raises(InvalidMetadata) as caught:
        do_register(body, store=store, server=server)
    assert store.clients == {}
    return caught.value


# --- redirect URIs -----------------------------------------------------------------------------


def test_an_https_redirect_uri_is_accepted() -> None:
    registered = do_register(metadata(redirect_uris=[CALLBACK, "https://shop.example:8443/cb?x=1"]))

    assert registered["redirect_uris"] == [CALLBACK, "https://shop.example:8443/cb?x=1"]


@pytest.mark.parametrize("local", [False, True])
def test_plain_http_to_another_host_is_refused(local: bool) -> None:
    error = refused(
        metadata(redirect_uris=["http://shop.example/cb"]), server=ServerStub(local=local)
    )

    assert error.error == "invalid_redirect_uri"


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:8080/cb",
        "http://localhost/cb",
        "http://[::1]:9000/cb",
    ],
)
def test_plain_http_to_loopback_is_refused_outside_local_mode(uri: str) -> None:
    error = refused(metadata(redirect_uris=[uri]), server=ServerStub(local=False))

    assert error.error == "invalid_redirect_uri"


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:8080/cb",
        "http://localhost/cb",
        "http://[::1]:9000/cb",
    ],
)
def test_plain_http_to_loopback_is_accepted_in_local_mode(uri: str) -> None:
    registered = do_register(metadata(redirect_uris=[uri]), server=ServerStub(local=True))

    assert registered["redirect_uris"] == [uri]


@pytest.mark.parametrize(
    "uri",
    [
        "https://shop.example/cb#section",  # a fragment (RFC 6749 §3.1.2)
        "https://shop.example/cb#",  # an empty one
        "https://user:pw@shop.example/cb",  # userinfo
        "https://user@shop.example/cb",
        "https://127.0.0.1@evil.example/cb",
        "/oauth/callback",  # relative
        "oauth/callback",
        "//shop.example/cb",  # scheme-relative
        "https:///cb",  # no host
        "https://shop.example:99999/cb",  # port out of range
        "https://shop.example:https/cb",  # port not a number
        "https://shop.example:-1/cb",
        "com.example.app:/callback",  # a native app's private scheme
        "javascript:alert(1)//https://shop.example",
        "ftp://shop.example/cb",
        "",
    ],
)
def test_a_malformed_or_unsafe_redirect_uri_is_refused(uri: str) -> None:
    error = refused(metadata(redirect_uris=[uri]), server=ServerStub(local=True))

    assert error.error == "invalid_redirect_uri"
    assert error.status == 400


def test_an_over_long_redirect_uri_is_refused() -> None:
    uri = "https://shop.example/" + "a" * MAX_URI_CHARS

    assert refused(metadata(redirect_uris=[uri])).error == "invalid_redirect_uri"


def test_one_bad_redirect_uri_among_good_ones_refuses_the_registration() -> None:
    uris = [CALLBACK, "https://shop.example/cb#frag"]

    assert refused(metadata(redirect_uris=uris)).error == "invalid_redirect_uri"


def test_at_most_ten_redirect_uris() -> None:
    uris = [f"https://shop.example/cb/{n}" for n in range(MAX_REDIRECT_URIS + 1)]

    assert do_register(metadata(redirect_uris=uris[:MAX_REDIRECT_URIS]))["redirect_uris"]
    assert refused(metadata(redirect_uris=uris)).error == "invalid_redirect_uri"


@pytest.mark.parametrize("grant_types", [["authorization_code"], ["implicit"]])
def test_a_redirecting_grant_needs_redirect_uris(grant_types: list[str]) -> None:
    for uris in (None, []):
        body = metadata(grant_types=grant_types, redirect_uris=uris)

        assert refused(body).error == "invalid_redirect_uri"


def test_client_credentials_needs_no_redirect_uri() -> None:
    registered = do_register(metadata(grant_types=["client_credentials"], redirect_uris=None))

    assert registered["grant_types"] == ["client_credentials"]
    assert registered["redirect_uris"] == []


@pytest.mark.parametrize("uris", ["https://shop.example/cb", [CALLBACK, 7], {"uri": CALLBACK}])
def test_redirect_uris_must_be_an_array_of_strings(uris: Any) -> None:
    assert refused(metadata(redirect_uris=uris)).error == "invalid_client_metadata"


# --- grant and response types ------------------------------------------------------------------


@pytest.mark.parametrize(
    "grant_types", [["refresh_token"], ["client_credentials", "refresh_token"]]
)
def test_refresh_token_without_a_grant_that_issues_one_is_refused(grant_types: list[str]) -> None:
    assert refused(metadata(grant_types=grant_types)).error == "invalid_client_metadata"


@pytest.mark.parametrize(
    "grant_types", [[], ["urn:ietf:params:oauth:grant-type:device_code"], "authorization_code"]
)
def test_unknown_or_missing_grant_types_are_refused(grant_types: Any) -> None:
    assert refused(metadata(grant_types=grant_types)).error == "invalid_client_metadata"


@pytest.mark.parametrize(
    ("grant_types", "response_types"),
    [
        (["authorization_code"], ["token"]),
        (["authorization_code"], ["code", "token"]),
        (["authorization_code", "implicit"], ["code"]),
        (["client_credentials"], ["code"]),
        (["authorization_code"], []),
    ],
)
def test_response_types_inconsistent_with_grant_types_are_refused(
    grant_types: list[str], response_types: list[str]
) -> None:
    body = metadata(grant_types=grant_types, response_types=response_types)

    assert refused(body).error == "invalid_client_metadata"


@pytest.mark.parametrize(
    ("grant_types", "response_types"),
    [
        (["authorization_code", "refresh_token"], ["code"]),
        (["authorization_code", "implicit"], ["token", "code"]),
        (["client_credentials"], []),
    ],
)
def test_response_types_matching_the_grant_types_are_accepted(
    grant_types: list[str], response_types: list[str]
) -> None:
    registered = do_register(metadata(grant_types=grant_types, response_types=response_types))

    assert registered["response_types"] == sorted(response_types)


# --- scope, owner, plan ------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["clients:manage", "payments:read clients:manage"])
def test_clients_manage_cannot_be_registered(scope: str) -> None:
    assert refused(metadata(scope=scope)).error == "invalid_client_metadata"


@pytest.mark.parametrize("scope", ["", "   ", "payments:everything", ["payments:read"]])
def test_an_empty_unknown_or_malformed_scope_is_refused(scope: Any) -> None:
    assert refused(metadata(scope=scope)).error == "invalid_client_metadata"


def test_without_a_scope_the_default_is_read_only() -> None:
    assert do_register(metadata(scope=None))["scope"] == "payments:read"


@pytest.mark.parametrize(
    "owner", [None, "usr_mallory", "alice", "usr_", "usr_Alice", "usr_alice ", 42]
)
def test_an_owner_that_is_not_an_existing_account_holder_is_refused(owner: Any) -> None:
    assert refused(metadata(owner=owner)).error == "invalid_client_metadata"


def test_a_plan_not_in_force_is_refused() -> None:
    for plan in ("internal", "", 3):
        assert refused(metadata(plan=plan)).error == "invalid_client_metadata"


def test_a_plan_in_force_is_kept_and_the_default_is_standard() -> None:
    assert do_register(metadata(plan="sandbox"))["plan"] == "sandbox"
    assert do_register(metadata())["plan"] == "standard"


@pytest.mark.parametrize("name", [None, "", "   ", "x" * 101, 7])
def test_a_client_name_is_required(name: Any) -> None:
    assert refused(metadata(client_name=name)).error == "invalid_client_metadata"


# --- keys --------------------------------------------------------------------------------------


def jwt_metadata(**overrides: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "grant_types": ["client_credentials"],
        "redirect_uris": None,
        "token_endpoint_auth_method": PRIVATE_KEY_JWT,
        "jwks": public_jwks(),
    }
    return metadata(**{**defaults, **overrides})


def test_a_private_key_jwt_client_registers_public_keys_and_gets_no_secret() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = public_jwks(EC_KEY, rsa_key)

    registered = do_register(jwt_metadata(jwks=jwks))

    assert registered["token_endpoint_auth_method"] == PRIVATE_KEY_JWT
    assert registered["jwks"] == jwks
    assert "client_secret" not in registered


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi"])
def test_jwks_with_a_private_member_is_refused(member: str) -> None:
    # Given the partner's public key with one private member pasted in by mistake
    jwks = public_jwks()
    jwks["keys"][0][member] = "AAAA"

    assert refused(jwt_metadata(jwks=jwks)).error == "invalid_client_metadata"


def test_a_symmetric_key_is_refused() -> None:
    jwks = {"keys": [{"kty": "oct", "k": "c2VjcmV0LXNoYXJlZC13aXRoLXRoZS1zZXJ2ZXI", "kid": "h"}]}

    assert refused(jwt_metadata(jwks=jwks)).error == "invalid_client_metadata"


@pytest.mark.parametrize(
    "jwks",
    [
        None,
        {},
        {"keys": []},
        {"keys": "x"},
        {"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]},  # not on the curve
        {"keys": [public_jwks()["keys"][0]] * 6},  # more than five
    ],
)
def test_private_key_jwt_needs_one_to_five_usable_public_keys(jwks: Any) -> None:
    assert refused(jwt_metadata(jwks=jwks)).error == "invalid_client_metadata"


@pytest.mark.parametrize("method", [PRIVATE_KEY_JWT, "client_secret_basic"])
def test_jwks_uri_is_refused(method: str) -> None:
    body = jwt_metadata(
        token_endpoint_auth_method=method, jwks_uri="https://shop.example/jwks.json"
    )

    assert refused(body).error == "invalid_client_metadata"


def test_an_unknown_auth_method_is_refused() -> None:
    for method in ("none", "tls_client_auth", "client_secret_jwt"):
        body = metadata(token_endpoint_auth_method=method)
        assert refused(body).error == "invalid_client_metadata"


# --- what register returns and stores ----------------------------------------------------------


def test_unknown_metadata_is_ignored() -> None:
    # Given metadata this server does not understand (RFC 7591 §2: ignore it)
    body = metadata(logo_uri="https://shop.example/logo.png", x_partner_tier="gold")
    store = MemoryClientStore()

    registered = do_register(body, store=store)

    # Then the registration succeeds and neither the answer nor the record carries it
    assert "logo_uri" not in registered
    assert "x_partner_tier" not in registered
    stored = store.get(registered["client_id"])
    assert stored is not None
    assert "gold" not in repr(stored)


def test_register_returns_the_secret_and_management_credentials_once() -> None:
    store = MemoryClientStore()

    registered = do_register(metadata(), store=store)

    client_id = registered["client_id"]
    assert registered["client_secret"]
    assert registered["client_secret_expires_at"] == 0
    assert registered["registration_access_token"]
    assert registered["registration_client_uri"] == f"{ISSUER}/oauth/register/{client_id}"
    assert registered["scope"] == "payments:read payments:write"
    assert registered["owner"] == "usr_alice"
    # And the secret and the registration token are what the stored client accepts
    stored = store.get(client_id)
    assert stored is not None
    assert stored.accepts_secret(registered["client_secret"], NOW)
    authorization = f"Bearer {registered['registration_access_token']}"
    assert authorized_client(store, client_id, authorization) == stored


def test_the_stored_client_holds_only_hashes() -> None:
    store = MemoryClientStore()

    registered = do_register(metadata(), store=store)

    stored = store.get(registered["client_id"])
    assert stored is not None
    assert registered["client_secret"] not in repr(stored)
    assert registered["registration_access_token"] not in repr(stored)
    assert stored.secret_hash == hash_secret(registered["client_secret"])
    assert stored.registration_token_hash == digest(registered["registration_access_token"])
    # And the answer shows neither hash
    answer = json.dumps(registered)
    assert stored.secret_hash not in answer
    assert stored.registration_token_hash not in answer


def test_the_audit_record_of_a_registration_carries_no_secret(audit_lines: Any) -> None:
    registered = do_register(metadata())

    [event] = audit_lines.of_type("client.registered")
    line = json.dumps(event)
    assert event["details"]["registered_client_id"] == registered["client_id"]
    assert registered["client_secret"] not in line
    assert registered["registration_access_token"] not in line


# --- update ------------------------------------------------------------------------------------


@dataclass
class Registered:
    store: MemoryClientStore
    client: Client
    answer: dict[str, Any]

    def update(self, **overrides: Any) -> dict[str, Any]:
        body = metadata(client_id=self.client.client_id, **overrides)
        return update(
            cast(AuthServer, ServerStub()),
            self.store,
            self.client,
            body,
            plan_exists=plan_exists,
            origin=ORIGIN,
        )

    def refused(self, **overrides: Any) -> OAuthError:
        before = self.store.get(self.client.client_id)
        with pytest.raises(InvalidMetadata) as caught:
            self.update(**overrides)
        assert self.store.get(self.client.client_id) == before  # nothing written
        return caught.value


def registered_with(**overrides: Any) -> Registered:
    store = MemoryClientStore()
    answer = do_register(metadata(**overrides), store=store)
    client = store.get(answer["client_id"])
    assert client is not None
    return Registered(store, client, answer)


def test_an_update_may_narrow_the_scope() -> None:
    registered = registered_with()

    answer = registered.update(scope="payments:read")

    assert answer["scope"] == "payments:read"
    stored = registered.store.get(registered.client.client_id)
    assert stored is not None
    assert stored.scopes == {"payments:read"}


def test_an_update_may_change_the_redirect_uris() -> None:
    registered = registered_with()

    answer = registered.update(redirect_uris=["https://shop.example/new-callback"])

    assert answer["redirect_uris"] == ["https://shop.example/new-callback"]


def test_an_update_validates_like_a_registration() -> None:
    registered = registered_with()

    error = registered.refused(redirect_uris=["http://shop.example/cb"])

    assert error.error == "invalid_redirect_uri"


def test_an_update_may_not_widen_the_scope() -> None:
    registered = registered_with(scope="payments:read")

    assert registered.refused(scope="payments:read payments:write").error == (
        "invalid_client_metadata"
    )


def test_an_update_may_not_move_the_plan() -> None:
    # Given a client on the standard plan, and another plan that is in force
    registered = registered_with()

    error = registered.refused(plan="sandbox")

    assert error.error == "invalid_client_metadata"
    assert "plan" in error.description


def test_an_update_keeps_the_plan_when_it_is_omitted() -> None:
    registered = registered_with(plan="sandbox")

    assert registered.update()["plan"] == "sandbox"


def test_an_update_may_not_change_the_owner() -> None:
    # Given alice's client, and bob who is an account holder too
    registered = registered_with()

    error = registered.refused(owner="usr_bob")

    assert error.error == "invalid_client_metadata"
    assert "owner" in error.description


def test_an_update_keeps_the_owner_when_it_is_omitted() -> None:
    registered = registered_with()

    assert registered.update(owner=None)["owner"] == "usr_alice"


def test_an_update_may_not_switch_from_secrets_to_private_key_jwt() -> None:
    registered = registered_with()

    error = registered.refused(token_endpoint_auth_method=PRIVATE_KEY_JWT, jwks=public_jwks())

    assert error.error == "invalid_client_metadata"


def test_an_update_may_not_switch_from_private_key_jwt_to_secrets() -> None:
    registered = registered_with(
        grant_types=["client_credentials"],
        redirect_uris=None,
        token_endpoint_auth_method=PRIVATE_KEY_JWT,
        jwks=public_jwks(),
    )

    error = registered.refused(
        grant_types=["client_credentials"],
        redirect_uris=None,
        token_endpoint_auth_method="client_secret_basic",
    )

    assert error.error == "invalid_client_metadata"


@pytest.mark.parametrize("legacy", ["password", "implicit"])
def test_an_update_may_not_add_a_legacy_grant(legacy: str) -> None:
    # Given a code-grant client, registered without the legacy grants
    registered = registered_with(grant_types=["authorization_code"])

    # Then its registration token alone cannot add one (RFC 9700 §2.4 retires them)
    registered.refused(grant_types=["authorization_code", legacy])


def test_an_update_may_move_between_basic_and_post() -> None:
    registered = registered_with()

    answer = registered.update(token_endpoint_auth_method=SECRET_POST)

    assert answer["token_endpoint_auth_method"] == SECRET_POST


@pytest.mark.parametrize("client_id", [None, "", "ppc_someone_else"])
def test_an_update_must_name_its_own_client_id(client_id: str | None) -> None:
    registered = registered_with()
    body = metadata(client_id=client_id)

    with pytest.raises(InvalidMetadata) as caught:
        update(
            cast(AuthServer, ServerStub()),
            registered.store,
            registered.client,
            body,
            plan_exists=plan_exists,
            origin=ORIGIN,
        )

    assert caught.value.error == "invalid_client_metadata"
    assert registered.store.get(registered.client.client_id) == registered.client


def test_an_update_with_a_wrong_client_secret_is_refused() -> None:
    registered = registered_with()

    assert registered.refused(client_secret="not-the-secret").error == "invalid_client_metadata"


def test_an_update_with_the_right_client_secret_is_accepted() -> None:
    registered = registered_with()

    answer = registered.update(client_secret=registered.answer["client_secret"])

    assert answer["client_id"] == registered.client.client_id
    assert "client_secret" not in answer  # an update never shows a secret
