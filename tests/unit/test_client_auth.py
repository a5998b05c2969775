"""Client authentication at the token endpoint: what a request presents (RFC 6749 §2.3) and
whether it proves the client (a secret, or a private_key_jwt assertion, RFC 7523).

Keys are real (EC P-256 and RSA 2048 from `cryptography`), assertions are signed with pyjwt
as a partner's library would; only the stores are in memory.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from payplat.clients.registry import (
    PRIVATE_KEY_JWT,
    SECRET_BASIC,
    SECRET_POST,
    Client,
    hash_secret,
)
from payplat.errors import InvalidClient, OAuthError
from payplat.oauth.client_auth import (
    ASSERTION_TYPE,
    LEEWAY_S,
    MAX_ASSERTION_CHARS,
    Authenticated,
    Presented,
    authenticate,
    presented,
)
from tests.unit.test_client_secrets import MemoryClientStore

ISSUER = "https://auth.payplat.test"
TOKEN_ENDPOINT = f"{ISSUER}/oauth/token"
SECRET = "s3cret-value"
SECRET_ID = "ppc_secret"
JWT_ID = "ppc_signer"
EC_KID = "ec-1"
RSA_KID = "rsa-1"

EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_EC_KEY = ec.generate_private_key(ec.SECP256R1())


class MemoryAssertionLog:
    """The AssertionLog protocol over a set of (client_id, jti)."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()
        self.kept_until: dict[tuple[str, str], int] = {}

    def claim_assertion(self, client_id: str, jti: str, expires_at: int) -> bool:
        if (client_id, jti) in self.seen:
            return False
        self.seen.add((client_id, jti))
        self.kept_until[client_id, jti] = expires_at
        return True


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(private_key: Any, kid: str) -> dict[str, Any]:
    """The public half as a JWK, made by pyjwt as a partner would (no private members)."""
    public = private_key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        jwk: dict[str, Any] = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    assert "d" not in jwk
    return {**jwk, "kid": kid}


def secret_client(**fields: Any) -> Client:
    return Client(
        client_id=SECRET_ID,
        name="Shop",
        secret_hash=hash_secret(SECRET),
        scopes=frozenset({"payments:read"}),
        grant_types=frozenset({"client_credentials"}),
        owner="usr_alice",
        **fields,
    )


def jwt_client(**fields: Any) -> Client:
    jwks = {"keys": [public_jwk(EC_KEY, EC_KID), public_jwk(RSA_KEY, RSA_KID)]}
    return Client(
        client_id=JWT_ID,
        name="Signer",
        secret_hash=None,
        scopes=frozenset({"payments:read"}),
        grant_types=frozenset({"client_credentials"}),
        owner="usr_alice",
        auth_method=PRIVATE_KEY_JWT,
        **{"jwks": jwks, **fields},
    )


def assertion(
    now: int,
    *,
    key: Any = EC_KEY,
    alg: str = "ES256",
    kid: str | None = EC_KID,
    headers: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    """A client assertion as RFC 7523 §3 says, valid unless told otherwise."""
    body = {
        "iss": JWT_ID,
        "sub": JWT_ID,
        "aud": ISSUER,
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    header = {**({"kid": kid} if kid else {}), **(headers or {})}
    payload = {name: value for name, value in body.items() if name not in drop}
    return jwt.encode(payload, key, algorithm=alg, headers=header)


def hand_signed(
    header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]
) -> str:
    """A compact JWS built by hand, for what pyjwt refuses to produce."""
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(claims).encode())
    signing_input = f"{head}.{body}".encode("ascii")
    return f"{head}.{body}.{b64url(sign(signing_input))}"


def assertion_form(value: str, **extra: str) -> dict[str, str]:
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": value, **extra}


def basic(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: each part form-urlencoded, then joined and base64-encoded."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(raw.encode("utf-8")).decode("ascii")


@pytest.fixture
def now() -> int:
    return int(time.time())


@pytest.fixture
def log() -> MemoryAssertionLog:
    return MemoryAssertionLog()


@pytest.fixture
def store() -> MemoryClientStore:
    return MemoryClientStore(secret_client(), jwt_client())


@pytest.fixture
def auth(store: MemoryClientStore, log: MemoryAssertionLog, now: int) -> Callable[..., Any]:
    """authenticate() against the fake stores, on a clock fixed at `now`."""

    def run(credentials: Presented, clock: Callable[[], float] | None = None) -> Authenticated:
        return authenticate(
            credentials,
            clients=store,
            assertions=log,
            issuer=ISSUER,
            clock=clock or (lambda: now),
        )

    return run


# --- presented: secrets ------------------------------------------------------------------------


def test_basic_credentials_are_read_from_the_header() -> None:
    credentials = presented(basic("ppc_1", "pw"), {})

    assert credentials == Presented("ppc_1", SECRET_BASIC, secret="pw")


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [
        ("ppc_1", "a:b"),  # a colon in the secret is sent as %3A
        ("client:one", "pw"),  # a colon in the id too: the split is on the encoded form
        ("ppc_1", "one two+three"),  # space as '+', a literal '+' as %2B
        ("ppc_1", "100%/ü"),
    ],
)
def test_basic_parts_are_form_urlencoded(client_id: str, secret: str) -> None:
    # Given a client that encodes id and secret before Basic encoding (RFC 6749 §2.3.1)
    header = basic(client_id, secret)

    # Then the server decodes them back to what the client holds
    assert presented(header, {}) == Presented(client_id, SECRET_BASIC, secret=secret)


def test_a_plus_in_the_basic_secret_means_a_space() -> None:
    # Given a client that sends '+' unencoded: form-urlencoding reads it as a space
    header = "Basic " + base64.b64encode(b"ppc_1:a+b%3Ac").decode()

    assert presented(header, {}).secret == "a b:c"


def test_the_basic_scheme_name_is_case_insensitive() -> None:
    header = basic("ppc_1", "pw").replace("Basic", "bAsIc")

    assert presented(header, {}).client_id == "ppc_1"


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),  # not UTF-8
        "Basic ébc",
        "Basic " + base64.b64encode(b"ppc_1:pw").decode()[:-1],  # truncated
    ],
)
def test_malformed_basic_credentials_are_an_invalid_client(header: str) -> None:
    with pytest.raises(InvalidClient) as refused:
        presented(header, {})

    assert refused.value.error == "invalid_client"
    assert refused.value.status == 401


def test_form_credentials_are_client_secret_post() -> None:
    credentials = presented(None, {"client_id": "ppc_1", "client_secret": "a+b%3A"})

    # The form body is decoded once already: the values are taken as they are
    assert credentials == Presented("ppc_1", SECRET_POST, secret="a+b%3A")


@pytest.mark.parametrize(
    ("authorization", "form"),
    [
        (None, {}),
        (None, {"client_id": "ppc_1"}),  # a public client: no authentication at all
        (None, {"client_secret": "pw"}),  # a secret without an id
        ("Bearer abc", {}),
        ("Basic", {}),
    ],
)
def test_no_client_authentication_is_an_invalid_client(
    authorization: str | None, form: dict[str, str]
) -> None:
    with pytest.raises(InvalidClient):
        presented(authorization, form)


@pytest.mark.parametrize(
    ("with_basic", "form"),
    [
        (True, {"client_id": "ppc_1", "client_secret": "pw"}),
        (True, assertion_form("x.y.z")),
        (False, {"client_id": "ppc_1", "client_secret": "pw", **assertion_form("x.y.z")}),
    ],
)
def test_two_authentication_methods_at_once_are_an_invalid_request(
    with_basic: bool, form: dict[str, str]
) -> None:
    authorization = basic("ppc_1", "pw") if with_basic else None

    with pytest.raises(OAuthError) as refused:
        presented(authorization, form)

    assert refused.value.error == "invalid_request"
    assert not isinstance(refused.value, InvalidClient)


def test_basic_with_the_client_id_repeated_in_the_form_is_one_method() -> None:
    credentials = presented(basic("ppc_1", "pw"), {"client_id": "ppc_1"})

    assert credentials.method == SECRET_BASIC


# --- presented: assertions ---------------------------------------------------------------------


def test_an_assertion_names_its_client_by_sub(now: int) -> None:
    value = assertion(now)

    credentials = presented(None, assertion_form(value))

    assert credentials == Presented(JWT_ID, PRIVATE_KEY_JWT, assertion=value)


@pytest.mark.parametrize(
    "assertion_type",
    [None, "", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer", ASSERTION_TYPE + " "],
)
def test_an_assertion_of_another_type_is_an_invalid_client(
    now: int, assertion_type: str | None
) -> None:
    form = assertion_form(assertion(now))
    if assertion_type is None:
        del form["client_assertion_type"]
    else:
        form["client_assertion_type"] = assertion_type

    with pytest.raises(InvalidClient):
        presented(None, form)


@pytest.mark.parametrize(
    ("claims", "drop"),
    [
        ({"iss": "ppc_other"}, ()),
        ({"sub": "ppc_other"}, ()),
        ({}, ("sub",)),
        ({}, ("iss",)),
        ({"iss": "", "sub": ""}, ()),
    ],
)
def test_an_assertion_whose_iss_is_not_its_sub_is_an_invalid_client(
    now: int, claims: dict[str, Any], drop: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidClient):
        presented(None, assertion_form(assertion(now, drop=drop, **claims)))


def test_an_assertion_whose_sub_is_not_a_string_is_an_invalid_client(now: int) -> None:
    # (pyjwt will not encode a non-string iss, so this one is built by hand)
    claims = {"iss": 7, "sub": 7, "aud": ISSUER, "exp": now + 60, "jti": "n7"}
    value = hand_signed({"alg": "ES256", "kid": EC_KID}, claims, lambda _: b"sig")

    with pytest.raises(InvalidClient):
        presented(None, assertion_form(value))


@pytest.mark.parametrize("value", ["", "not-a-jwt", "a.b.c", "e30.e30"])
def test_an_assertion_that_is_not_a_jwt_is_an_invalid_client(value: str) -> None:
    with pytest.raises(InvalidClient):
        presented(None, assertion_form(value))


def test_an_oversize_assertion_is_refused_before_it_is_parsed(now: int) -> None:
    # Given a validly signed assertion padded past the size limit
    value = assertion(now, padding="x" * MAX_ASSERTION_CHARS)
    assert len(value) > MAX_ASSERTION_CHARS

    with pytest.raises(InvalidClient):
        presented(None, assertion_form(value))


# --- authenticate: secrets ---------------------------------------------------------------------


def test_a_secret_client_authenticates_with_basic(auth: Callable[..., Any]) -> None:
    authenticated = auth(presented(basic(SECRET_ID, SECRET), {}))

    assert authenticated.client.client_id == SECRET_ID
    assert authenticated.method == SECRET_BASIC


def test_a_secret_client_authenticates_with_the_form_too(auth: Callable[..., Any]) -> None:
    # Given a client registered for client_secret_basic
    credentials = presented(None, {"client_id": SECRET_ID, "client_secret": SECRET})

    authenticated = auth(credentials)

    # Then the same secret in the form works: both methods carry it
    assert authenticated.client.client_id == SECRET_ID
    assert authenticated.method == SECRET_POST


def test_a_post_client_authenticates_with_basic_too(
    store: MemoryClientStore, auth: Callable[..., Any]
) -> None:
    store.update(SECRET_ID, auth_method=SECRET_POST)

    assert auth(presented(basic(SECRET_ID, SECRET), {})).method == SECRET_BASIC


def test_a_secret_with_reserved_characters_survives_basic_end_to_end(
    store: MemoryClientStore, auth: Callable[..., Any]
) -> None:
    # Given a client whose secret holds characters form-urlencoding changes
    secret = "p:ss w+rd%41/é"
    store.update(SECRET_ID, secret_hash=hash_secret(secret))

    # Then a client that encodes as §2.3.1 says is authenticated
    assert auth(presented(basic(SECRET_ID, secret), {})).client.client_id == SECRET_ID


@pytest.mark.parametrize("secret", ["", "wrong", SECRET + " ", SECRET.upper(), hash_secret(SECRET)])
def test_a_wrong_secret_is_an_invalid_client(auth: Callable[..., Any], secret: str) -> None:
    with pytest.raises(InvalidClient):
        auth(presented(basic(SECRET_ID, secret), {}))


def test_an_unknown_client_is_an_invalid_client(auth: Callable[..., Any]) -> None:
    with pytest.raises(InvalidClient):
        auth(presented(basic("ppc_nobody", SECRET), {}))
    with pytest.raises(InvalidClient):
        auth(presented(basic("", SECRET), {}))


def test_a_disabled_client_is_refused_even_with_the_right_secret(
    store: MemoryClientStore, auth: Callable[..., Any]
) -> None:
    store.update(SECRET_ID, status="disabled")

    with pytest.raises(InvalidClient):
        auth(presented(basic(SECRET_ID, SECRET), {}))


def test_a_private_key_jwt_client_refuses_secrets(
    store: MemoryClientStore, auth: Callable[..., Any]
) -> None:
    # Given a private_key_jwt client, even one that somehow still has a secret hash stored
    store.update(JWT_ID, secret_hash=hash_secret(SECRET))

    # Then no secret authenticates it, by Basic or by the form
    with pytest.raises(InvalidClient):
        auth(presented(basic(JWT_ID, SECRET), {}))
    with pytest.raises(InvalidClient):
        auth(presented(None, {"client_id": JWT_ID, "client_secret": SECRET}))
    with pytest.raises(InvalidClient):
        auth(presented(basic(JWT_ID, ""), {}))


def test_a_secret_client_refuses_assertions(
    store: MemoryClientStore, auth: Callable[..., Any], now: int
) -> None:
    # Given a secret client that (wrongly) has keys on its record, and a valid assertion
    store.update(SECRET_ID, jwks=jwt_client().jwks)
    value = assertion(now, iss=SECRET_ID, sub=SECRET_ID)

    with pytest.raises(InvalidClient):
        auth(presented(None, assertion_form(value)))


# --- authenticate: private_key_jwt, accepted ---------------------------------------------------


def test_an_es256_assertion_authenticates_its_client(
    auth: Callable[..., Any], log: MemoryAssertionLog, now: int
) -> None:
    # Given an assertion for our issuer, expiring in two minutes, with a jti
    value = assertion(now, jti="jti-es256")

    authenticated = auth(presented(None, assertion_form(value)))

    assert authenticated.client.client_id == JWT_ID
    assert authenticated.method == PRIVATE_KEY_JWT
    # And its jti is kept at least as long as the assertion could still be accepted
    assert log.kept_until[JWT_ID, "jti-es256"] >= now + 120 + LEEWAY_S


def test_a_ps256_assertion_with_an_rsa_key_authenticates_its_client(
    auth: Callable[..., Any], now: int
) -> None:
    value = assertion(now, key=RSA_KEY, alg="PS256", kid=RSA_KID)

    assert auth(presented(None, assertion_form(value))).client.client_id == JWT_ID


def test_an_assertion_expiring_in_exactly_five_minutes_is_accepted(
    auth: Callable[..., Any], now: int
) -> None:
    value = assertion(now, exp=now + 300)

    assert auth(presented(None, assertion_form(value))).client.client_id == JWT_ID


def test_an_assertion_just_expired_within_the_leeway_is_accepted(
    auth: Callable[..., Any], now: int
) -> None:
    value = assertion(now, iat=now - 60, exp=now - 2)

    assert auth(presented(None, assertion_form(value))).client.client_id == JWT_ID


def test_without_a_kid_the_only_registered_key_is_used(
    store: MemoryClientStore, auth: Callable[..., Any], now: int
) -> None:
    store.update(JWT_ID, jwks={"keys": [public_jwk(EC_KEY, EC_KID)]})

    value = assertion(now, kid=None)

    assert auth(presented(None, assertion_form(value))).client.client_id == JWT_ID


# --- authenticate: private_key_jwt, refused ----------------------------------------------------


@pytest.mark.parametrize(
    "aud",
    [
        TOKEN_ENDPOINT,  # RFC 7523 allowed it; RFC 7523bis does not (audience injection)
        [ISSUER, "https://other.example"],
        [ISSUER],  # a list, even of the issuer alone
        ISSUER + "/",
        "https://other.example",
    ],
)
def test_an_assertion_for_another_audience_is_refused(
    auth: Callable[..., Any], now: int, aud: Any
) -> None:
    with pytest.raises(InvalidClient):
        auth(presented(None, assertion_form(assertion(now, aud=aud))))


def test_an_assertion_living_longer_than_five_minutes_is_refused(
    auth: Callable[..., Any], now: int
) -> None:
    for exp in (now + 600, now + 301):
        with pytest.raises(InvalidClient):
            auth(presented(None, assertion_form(assertion(now, exp=exp))))


def test_an_assertion_expired_beyond_the_leeway_is_refused(
    auth: Callable[..., Any], now: int
) -> None:
    value = assertion(now, iat=now - 120, exp=now - LEEWAY_S - 5)

    with pytest.raises(InvalidClient):
        auth(presented(None, assertion_form(value)))


def test_expiry_is_judged_by_the_injected_clock(auth: Callable[..., Any], now: int) -> None:
    # Given an assertion that expired an hour ago by the server's clock (not by the wall's)
    later = now + 3600
    value = assertion(now, exp=now + 120)

    # Then it is refused
    with pytest.raises(InvalidClient):
        auth(presented(None, assertion_form(value)), clock=lambda: later)


@pytest.mark.parametrize("claim", ["jti", "exp", "aud", "iss"])
def test_an_assertion_missing_a_required_claim_is_refused(
    auth: Callable[..., Any], now: int, claim: str
) -> None:
    # (without iss, presented() refuses it already; the others reach the verification)
    with pytest.raises(InvalidClient):
        auth(presented(None, assertion_form(assertion(now, drop=(claim,)))))


@pytest.mark.parametrize("jti", ["", 42, "j" * 257])
def test_an_assertion_with_an_unusable_jti_is_refused(
    auth: Callable[..., Any], now: int, jti: Any
) -> None:
    with pytest.raises(InvalidClient):
        auth(presented(None, assertion_form(assertion(now, jti=jti))))


def test_a_replayed_assertion_is_refused(auth: Callable[..., Any], now: int) -> None:
    # Given an assertion that authenticated once
    value = assertion(now)
    auth(presented(None, assertion_form(value)))

    # Then the same assertion (the same jti) does not authenticate again
    with pytest.raises(InvalidClient):
        auth(presented(None, assertion_form(value)))
    # And a fresh jti from the same client still does
    assert auth(presented(None, assertion_form(assertion(now)))).client.client_id == JWT_ID


def test_an_unsigned_assertion_is_refused(auth: Callable[..., Any], now: int) -> None:
    claims = {"iss": JWT_ID, "sub": JWT_ID, "aud": ISSUER, "exp": now + 60, "jti": "n1"}
    value = hand_signed({"alg": "none", "kid": EC_KID}, claims, lambda _: b"")

    with pytest.raises(InvalidClient):
        auth(presented(None, assertion_form(value)))


@pytest.mark.parametrize("private_key", [EC_KEY, RSA_KEY])
def test_an_hs256_assertion_keyed_with_the_public_key_is_refused(
    auth: Callable[..., Any], now: int, private_key: Any
) -> None:
    # Given the algorithm-confusion attack: HMAC keyed with the (public) registered key
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = {"iss": JWT_ID, "sub": JWT_ID, "aud": ISSUER, "exp": now + 60, "jti": "h1"}
    kid = EC_KID if private_key is EC_KEY else RSA_KID
    value = hand_signed(
        {"alg": "HS256", "kid": kid},
        claims,
        lambda data: hmac.new(public_pem, data, hashlib.sha256).digest(),
    )

    with pytest.raises(InvalidClient):
        auth(presented(None, assertion_form(value)))


def test_an_assertion_naming_an_unregistered_kid_is_refused(
    auth: Callable[..., Any], now: int
) -> None:
    with pytest.raises(InvalidClient):
        auth(presented(None, assertion_form(assertion(now, kid="not-registered"))))


def test_without_a_kid_several_registered_keys_are_ambiguous(
    auth: Callable[..., Any], now: int
) -> None:
    with pytest.raises(InvalidClient):
        auth(presented(None, assertion_form(assertion(now, kid=None))))


@pytest.mark.parametrize(
    "header",
    [
        {"jwk": public_jwk(OTHER_EC_KEY, EC_KID)},
        {"jwk": public_jwk(EC_KEY, EC_KID)},  # even the registered key, carried inline
        {"jku": "https://attacker.example/jwks.json"},
        {"x5u": "https://attacker.example/cert.pem"},
        {"x5c": ["MIIB"]},
    ],
)
def test_an_assertion_carrying_its_own_key_is_refused(
    auth: Callable[..., Any], now: int, header: dict[str, Any]
) -> None:
    value = assertion(now, headers=header)

    with pytest.raises(InvalidClient):
        auth(presented(None, assertion_form(value)))


def test_an_assertion_signed_by_another_key_is_refused(auth: Callable[..., Any], now: int) -> None:
    # Given an attacker's key, presented under the registered kid
    value = assertion(now, key=OTHER_EC_KEY, kid=EC_KID)

    with pytest.raises(InvalidClient):
        auth(presented(None, assertion_form(value)))


@pytest.mark.parametrize(
    ("key", "alg", "kid"),
    [
        (EC_KEY, "ES256", RSA_KID),  # the RSA key named, an ES256 header
        (RSA_KEY, "PS256", EC_KID),  # the EC key named, a PS256 header
        (RSA_KEY, "RS256", EC_KID),
    ],
)
def test_an_assertion_whose_alg_does_not_fit_the_named_key_is_refused(
    auth: Callable[..., Any], now: int, key: Any, alg: str, kid: str
) -> None:
    value = assertion(now, key=key, alg=alg, kid=kid)

    with pytest.raises(InvalidClient):
        auth(presented(None, assertion_form(value)))


def test_an_assertion_for_another_client_signed_with_my_key_is_refused(
    store: MemoryClientStore, auth: Callable[..., Any], now: int
) -> None:
    # Given a second private_key_jwt client with its own key
    other_jwks = {"keys": [public_jwk(OTHER_EC_KEY, EC_KID)]}
    store.put(dataclasses.replace(jwt_client(), client_id="ppc_victim", jwks=other_jwks))

    # When the first client's key signs an assertion naming the second
    value = assertion(now, iss="ppc_victim", sub="ppc_victim")

    with pytest.raises(InvalidClient):
        auth(presented(None, assertion_form(value)))


def test_an_assertion_for_an_unknown_client_is_refused(auth: Callable[..., Any], now: int) -> None:
    value = assertion(now, iss="ppc_nobody", sub="ppc_nobody")

    with pytest.raises(InvalidClient):
        auth(presented(None, assertion_form(value)))


def test_a_disabled_private_key_jwt_client_is_refused(
    store: MemoryClientStore, auth: Callable[..., Any], now: int
) -> None:
    store.update(JWT_ID, status="deleted")

    with pytest.raises(InvalidClient):
        auth(presented(None, assertion_form(assertion(now))))


def test_a_private_key_jwt_client_without_keys_is_refused(
    store: MemoryClientStore, auth: Callable[..., Any], now: int
) -> None:
    store.update(JWT_ID, jwks=None)

    with pytest.raises(InvalidClient):
        auth(presented(None, assertion_form(assertion(now))))
