"""The DPoP proof checker (payplat.gateway.dpop) against proofs made with joserfc: every
rule of RFC 9449 §4.3 that a proof can break, the RFC 7638 thumbprint, and URL matching."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

import pytest
from joserfc import jws, jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from payplat.gateway import dpop
from payplat.gateway.nonces import WINDOW_S, Nonces

NOW = 1_767_225_600
URL = "https://api.payplat.test/live/v1/accounts"
TOKEN = "eyJ.access.token"
EC = ECKey.generate_key("P-256")


def proof(
    key: Any = EC,
    alg: str = "ES256",
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    payload = {"jti": str(uuid.uuid4()), "htm": "GET", "htu": URL, "iat": NOW, **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    protected = {"typ": "dpop+jwt", "alg": alg, "jwk": key.as_dict(private=False)}
    protected.update(header or {})
    protected = {k: v for k, v in protected.items() if v is not None}
    return str(jwt.encode(protected, payload, key, algorithms=[alg]))


def check(value: str | None, **overrides: Any) -> dpop.Proof:
    args: dict[str, Any] = {"method": "GET", "url": URL, "now": NOW, **overrides}
    return dpop.verify_proof(value, **args)


def reason(value: str | None, **overrides: Any) -> str:
    with pytest.raises(dpop.InvalidProof) as refused:
        check(value, **overrides)
    return refused.value.reason


def test_a_good_proof_names_its_key_and_jti() -> None:
    made = proof(jti="abc", ath=dpop.token_hash(TOKEN))
    checked = check(made, access_token=TOKEN)
    assert checked == dpop.Proof(jkt=EC.thumbprint(), jti="abc", issued_at=NOW)
    assert checked.expires_at == NOW + dpop.MAX_AGE_S + dpop.MAX_SKEW_S


def test_an_rsa_pss_proof_is_accepted() -> None:
    rsa = RSAKey.generate_key(2048)
    assert check(proof(rsa, "PS256")).jkt == rsa.thumbprint()


def test_the_rfc_7638_example_thumbprint() -> None:
    example = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
        "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGj"
        "QR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTW"
        "hAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert dpop.thumbprint(example) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize(
    ("made", "expected"),
    [
        (lambda: proof(header={"typ": "JWT"}), "wrong_type"),
        (lambda: proof(header={"typ": None}), "wrong_type"),
        (lambda: proof(RSAKey.generate_key(2048), "RS256"), "algorithm_not_allowed"),
        (lambda: proof(header={"jwk": None}), "bad_key"),
        (lambda: proof(header={"jwk": EC.as_dict(private=True)}), "bad_key"),  # private key
        (lambda: proof(RSAKey.generate_key(1024), "PS256"), "bad_key"),
        (lambda: proof(header={"jwk": ECKey.generate_key("P-256").as_dict(private=False)}),
         "bad_signature"),  # signed by one key, naming another
        (lambda: proof(jti=None), "missing_jti"),
        (lambda: proof(htm=None), "missing_htm"),
        (lambda: proof(htu=None), "missing_htu"),
        (lambda: proof(iat=None), "missing_iat"),
        (lambda: proof(jti="x" * 129), "bad_jti"),
        (lambda: proof(jti=""), "bad_jti"),
        (lambda: proof(iat="1767225600"), "bad_iat"),
        (lambda: proof(iat=NOW - dpop.MAX_AGE_S - 1), "stale"),
        (lambda: proof(iat=NOW + dpop.MAX_SKEW_S + 1), "stale"),
        (lambda: proof(htm="POST"), "wrong_method"),
        (lambda: proof(htu="https://api.payplat.test/live/v1/payments"), "wrong_url"),
        (lambda: proof(htu="https://evil.example/live/v1/accounts"), "wrong_url"),
        (lambda: proof(htu="https://api.payplat.test/v1/accounts"), "wrong_url"),  # no stage
    ],
)  # fmt: skip
@pytest.mark.filterwarnings("ignore:Key size should be")  # the 1024-bit key, on purpose
def test_a_proof_breaking_a_rule_is_refused(made: Any, expected: str) -> None:
    assert reason(made()) == expected


def test_hmac_and_none_proofs_are_refused() -> None:
    secret = OctKey.generate_key(256)
    protected = {"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct"}}
    claims = {"jti": "j", "htm": "GET", "htu": URL, "iat": NOW}
    hs = jwt.encode(protected, claims, secret, algorithms=["HS256"])
    assert reason(hs) == "algorithm_not_allowed"
    header = base64.urlsafe_b64encode(
        json.dumps({"typ": "dpop+jwt", "alg": "none", "jwk": EC.as_dict(private=False)}).encode()
    )
    body = base64.urlsafe_b64encode(json.dumps(claims).encode())
    unsigned = f"{header.decode().rstrip('=')}.{body.decode().rstrip('=')}.c2ln"
    assert reason(unsigned) == "algorithm_not_allowed"


@pytest.mark.parametrize(
    "value",
    [None, "", "not-a-jws", "a.b", "a.b.c.d", "a.b." + "c" * 5000, f"{proof()},{proof()}"],
)
def test_a_missing_or_malformed_proof_is_refused(value: str | None) -> None:
    assert reason(value) in {"missing_proof", "malformed"}


def test_the_access_token_hash_must_match() -> None:
    assert reason(proof(), access_token=TOKEN) == "wrong_token"
    assert reason(proof(ath=dpop.token_hash("other")), access_token=TOKEN) == "wrong_token"
    hashed = base64.urlsafe_b64encode(hashlib.sha256(TOKEN.encode()).digest()).rstrip(b"=")
    assert check(proof(ath=hashed.decode()), access_token=TOKEN)


def test_a_nonce_the_server_asks_for_must_be_carried() -> None:
    assert reason(proof(), nonces={"n-1", "n-0"}) == "use_dpop_nonce"
    assert reason(proof(nonce="n-2"), nonces={"n-1", "n-0"}) == "use_dpop_nonce"
    assert check(proof(nonce="n-0"), nonces={"n-1", "n-0"})


@pytest.mark.parametrize(
    "called",
    [
        "https://API.payplat.test/live/v1/accounts",
        "https://api.payplat.test:443/live/v1/accounts",
        "https://api.payplat.test/live/v1/accounts?limit=3",
        "https://api.payplat.test/live/v1/accounts#top",
    ],
)
def test_the_url_is_compared_as_rfc_9449_says(called: str) -> None:
    assert check(proof(htu=called))


def test_only_the_dpop_scheme_yields_a_token() -> None:
    assert dpop.dpop_token(f"DPoP {TOKEN}") == TOKEN
    assert dpop.dpop_token(f"dpop {TOKEN}") == TOKEN
    assert dpop.dpop_token(f"Bearer {TOKEN}") is None
    assert dpop.dpop_token(None) is None


def test_a_tampered_payload_fails_the_signature() -> None:
    good = proof()
    header, _, signature = good.split(".")
    forged = jws.serialize_compact(
        {"typ": "dpop+jwt", "alg": "ES256", "jwk": EC.as_dict(private=False)},
        json.dumps({"jti": "j", "htm": "GET", "htu": URL, "iat": NOW}).encode(),
        ECKey.generate_key("P-256"),
    )
    assert reason(f"{header}.{forged.split('.')[1]}.{signature}") == "bad_signature"


class CountingNonceStore:
    """The first caller of a window makes its nonce; every later one reads it."""

    def __init__(self) -> None:
        self.made: dict[int, str] = {}
        self.calls = 0

    def nonce(self, window: int, expires_at: int) -> str:
        self.calls += 1
        assert expires_at > window * WINDOW_S
        return self.made.setdefault(window, f"nonce-{window}")


def test_nonces_change_by_window_and_the_last_one_stays_accepted() -> None:
    store = CountingNonceStore()
    now = [float(WINDOW_S * 1000)]
    nonces = Nonces(store, clock=lambda: now[0])
    first = nonces.current()
    assert nonces.current() == first and nonces.accepted() == {first, "nonce-999"}
    calls = store.calls
    nonces.current()
    assert store.calls == calls  # cached: one read per window, not per request
    now[0] += WINDOW_S
    second = nonces.current()
    assert second != first
    assert nonces.accepted() == {first, second}  # a client that just learned `first`
    now[0] += WINDOW_S
    assert first not in nonces.accepted()
    # Another container agrees: the store, not the process, decides a window's nonce.
    assert Nonces(store, clock=lambda: now[0]).current() == nonces.current()
