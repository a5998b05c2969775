"""Access-token verification, issuing, JWKs and key sets.

Every hostile token must end in `InvalidToken` with a short `reason` (what audit and metrics
record), never in another exception type: the authorizer maps only `InvalidToken` to a 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from jwt.algorithms import ECAlgorithm

from payplat.gateway.keyset import RemoteKeySet, StaticKeySet, parse_jwks
from payplat.gateway.verify import (
    LEEWAY_S,
    MAX_HEADER_CHARS,
    MAX_TOKEN_CHARS,
    REQUIRED_CLAIMS,
    InvalidToken,
    TokenVerifier,
    bearer_token,
)
from payplat.oauth.access_tokens import (
    ALGORITHM,
    TOKEN_TYPE,
    IssuedToken,
    der_to_raw,
    issue_access_token,
)
from payplat.oauth.jwk import b64url, public_jwk, thumbprint

# The P-256 group order: r = s = n is the other CVE-2022-21449 "psychic signature".
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def reject(verifier: TokenVerifier, token: str) -> str:
    """Verify `token`, expecting InvalidToken (and only that); return its reason."""
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(token)
    assert type(caught.value) is InvalidToken
    assert caught.value.reason
    assert caught.value.reason == str(caught.value)
    return caught.value.reason


def b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def segments(token: str) -> list[str]:
    return token.split(".")


# --- positives -------------------------------------------------------------------------------


def test_fresh_token_from_the_issuer_verifies(issue, verifier) -> None:
    # Given a token issued now by the real issuer code
    now = int(time.time())
    issued = issue(scope="payments:write payments:read", now=now, ttl_s=600)

    # When it is verified
    claims = verifier.verify(issued.token)

    # Then every claim the platform relies on comes back
    assert claims.subject == "user-123"
    assert claims.client_id == "client-abc"
    assert claims.scopes == frozenset({"payments:read", "payments:write"})
    assert claims.scope == "payments:read payments:write"
    assert claims.jti == issued.jti
    assert claims.expires_at == now + 600


def test_hand_built_token_verifies(make_token, verifier) -> None:
    # Given the forge's default (a well-formed, validly signed token) — so the negatives
    # below fail only for the one thing they change
    assert verifier.verify(make_token()).subject == "user-123"


# --- algorithm confusion -----------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_with_a_signature_is_rejected(make_token, verifier, alg) -> None:
    # Given an unsecured-JWS header that still carries our (valid) signature bytes
    token = make_token(header={"alg": alg})

    # Then the algorithm allow-list stops it
    assert reject(verifier, token) == "algorithm_not_allowed"


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_without_a_signature_is_rejected(make_token, verifier, alg) -> None:
    # Given a classic unsecured JWS: `header.payload.` with an empty signature
    head, body, _ = segments(make_token(header={"alg": alg}))

    # Then it is refused (the empty segment already makes it malformed)
    assert reject(verifier, f"{head}.{body}.") == "malformed"


def test_hs256_signed_with_the_public_key_pem_is_rejected(make_token, signer, verifier) -> None:
    # Given the key-confusion attack: HMAC-SHA256 keyed with our public key's PEM
    pem = signer.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head, body, _ = segments(make_token(header={"alg": "HS256"}))
    mac = hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    token = f"{head}.{body}.{b64url(mac)}"

    # Then the asymmetric-only allow-list refuses it
    assert reject(verifier, token) == "algorithm_not_allowed"


def test_hmac_signature_under_an_es256_header_is_rejected(make_token, signer, verifier) -> None:
    # Given the same HMAC but the header still claims ES256
    pem = signer.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head, body, _ = segments(make_token())
    mac = hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()

    # Then it is just a bad signature
    assert reject(verifier, f"{head}.{body}.{b64url(mac)}") == "bad_signature"


@pytest.mark.parametrize(
    "alg", ["RS256", "ES384", "ES512", "PS256", "HS256", "EdDSA", "es256", "ES256K", "", None, 1]
)
def test_algorithms_other_than_es256_are_rejected(make_token, verifier, alg) -> None:
    # Given a token signed by our key whose header names another algorithm
    token = make_token(header={"alg": alg})

    # Then only ES256 is ever accepted
    assert reject(verifier, token) == "algorithm_not_allowed"


def test_missing_alg_is_rejected(make_token, verifier) -> None:
    assert reject(verifier, make_token(drop_header=("alg",))) == "algorithm_not_allowed"


# --- kid ---------------------------------------------------------------------------------------


def test_unknown_kid_is_rejected(make_token, verifier, new_signer) -> None:
    # Given a well-formed kid we do not hold (another key's thumbprint)
    other = new_signer()
    token = make_token(header={"kid": other.kid}, sign_with=other)

    # Then there is no key to verify with
    assert reject(verifier, token) == "unknown_kid"


@pytest.mark.parametrize(
    ("kid", "reasons"),
    [
        pytest.param("../../etc/passwd", {"bad_kid"}, id="traversal"),
        pytest.param("..%2F..%2Fetc%2Fpasswd", {"bad_kid"}, id="encoded-traversal"),
        pytest.param("kid' OR '1'='1", {"bad_kid"}, id="sql"),
        pytest.param("", {"bad_kid"}, id="empty"),
        pytest.param("a" * 129, {"bad_kid"}, id="129-chars"),
        pytest.param("a" * 10_000, {"token_too_large", "header_too_large", "bad_kid"}, id="10k"),
        pytest.param(123, {"bad_kid", "malformed_header"}, id="int"),
        pytest.param(None, {"bad_kid", "malformed_header"}, id="null"),
        pytest.param(["kid"], {"bad_kid", "malformed_header"}, id="list"),
    ],
)
def test_hostile_kids_are_rejected(make_token, verifier, kid, reasons) -> None:
    # Given a validly signed token whose kid is not a plain thumbprint-like name
    token = make_token(header={"kid": kid})

    # Then it is refused before any key lookup
    assert reject(verifier, token) in reasons


def test_missing_kid_is_rejected(make_token, verifier) -> None:
    assert reject(verifier, make_token(drop_header=("kid",))) == "bad_kid"


def test_hostile_kids_never_reach_the_key_source(make_token, signer) -> None:
    # Given a key source that records every lookup
    asked: list[str] = []

    class Recording:
        def get(self, kid: str) -> Any | None:
            asked.append(kid)
            return signer.public_key if kid == signer.kid else None

    verifier = TokenVerifier(Recording(), issuer="https://auth.payplat.test", audience="x")

    # When tokens with hostile kids are verified
    for kid in ("../../etc/passwd", "a" * 10_000, "", "a/b"):
        with pytest.raises(InvalidToken):
            verifier.verify(make_token(header={"kid": kid}))

    # Then the key source (a JWKS fetch, in production) was never asked
    assert asked == []


# --- key-carrying and critical headers ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("jku", "https://attacker.example/jwks.json"),
        ("x5u", "https://attacker.example/cert.pem"),
        ("jwk", {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}),
        ("x5c", ["MIIBszCCAVmgAwIBAgIU"]),
    ],
)
def test_key_carrying_headers_are_rejected_even_with_a_valid_signature(
    make_token, verifier, name, value
) -> None:
    # Given a token validly signed by our own key that also names an external key source
    token = make_token(header={name: value})

    # Then the header alone is enough to refuse it
    assert reject(verifier, token) == "forbidden_header"


def test_embedded_attacker_jwk_is_rejected(make_token, verifier, new_signer) -> None:
    # Given an attacker who signs with their key and embeds it as `jwk`, reusing our kid
    attacker = new_signer()
    token = make_token(header={"jwk": public_jwk(attacker.public_der)}, sign_with=attacker)

    # Then the embedded key is never trusted
    assert reject(verifier, token) == "forbidden_header"


@pytest.mark.parametrize("crit", [["urn:example:unknown"], ["exp"], ["b64"], []])
def test_crit_header_is_rejected(make_token, verifier, crit) -> None:
    # Given a validly signed token declaring extensions we do not implement
    token = make_token(header={"crit": crit, "urn:example:unknown": True})

    # Then it is refused (pyjwt's own crit check may get there first)
    assert reject(verifier, token) in {"forbidden_header", "malformed_header"}


# --- typ -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT", "Application/At+Jwt"])
def test_rfc9068_typ_is_accepted_case_insensitively(make_token, verifier, typ) -> None:
    # RFC 7515 §4.1.9: media type names are compared case-insensitively
    assert verifier.verify(make_token(header={"typ": typ})).subject == "user-123"


@pytest.mark.parametrize(
    "typ",
    ["JWT", "jwt", "id_token+jwt", "application/jwt", "logout+jwt", "at+jwt ", "", 1, ["at+jwt"]],
)
def test_other_typ_is_rejected(make_token, verifier, typ) -> None:
    # Given an id token or client assertion presented as an access token
    token = make_token(header={"typ": typ})

    # Then token-type confusion is refused
    assert reject(verifier, token) == "wrong_type"


def test_missing_typ_is_rejected(make_token, verifier) -> None:
    assert reject(verifier, make_token(drop_header=("typ",))) == "wrong_type"


# --- claims ----------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_each_missing_required_claim_is_rejected(make_token, verifier, claim) -> None:
    # Given a validly signed token without `claim`
    token = make_token(drop_claims=(claim,))

    # Then it is refused, naming the claim
    assert reject(verifier, token) == f"missing_{claim}"


def test_required_claims_cover_the_rfc9068_set() -> None:
    assert set(REQUIRED_CLAIMS) >= {"iss", "sub", "aud", "exp", "iat", "jti", "client_id"}


def test_leeway_is_bounded() -> None:
    # The design allows at most 10 s of clock skew
    assert 0 < LEEWAY_S <= 10


def test_expired_beyond_leeway_is_rejected(make_token, verifier) -> None:
    # Given a token that expired 15 s ago
    now = int(time.time())
    token = make_token(claims={"iat": now - 700, "nbf": now - 700, "exp": now - 15})

    # Then the leeway does not stretch that far
    assert reject(verifier, token) == "expired"


def test_expired_within_leeway_is_accepted(make_token, verifier) -> None:
    # Given a token that expired 5 s ago (clock skew between issuer and authorizer)
    now = int(time.time())
    token = make_token(claims={"iat": now - 600, "nbf": now - 600, "exp": now - 5})

    # Then the bounded leeway accepts it
    assert verifier.verify(token).expires_at == now - 5


def _future(make_token, claim: str, ahead_s: int) -> str:
    """A token whose `claim` (nbf, or iat with nbf left out) is `ahead_s` in the future."""
    now = int(time.time())
    if claim == "nbf":
        return make_token(claims={"iat": now, "nbf": now + ahead_s})
    return make_token(claims={"iat": now + ahead_s}, drop_claims=("nbf",))


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_not_yet_valid_beyond_leeway_is_rejected(make_token, verifier, claim) -> None:
    # Given nbf, or iat, a minute in the future
    token = _future(make_token, claim, 60)

    # Then it is not valid yet
    assert reject(verifier, token) == "not_yet_valid"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_future_within_leeway_is_accepted(make_token, verifier, claim) -> None:
    # Given the issuer's clock 5 s ahead of ours
    token = _future(make_token, claim, 5)

    # Then the bounded leeway accepts it
    assert verifier.verify(token).subject == "user-123"


@pytest.mark.parametrize("iss", ["https://evil.example", "https://auth.payplat.test/", "", None])
def test_wrong_issuer_is_rejected(make_token, verifier, iss) -> None:
    assert reject(verifier, make_token(claims={"iss": iss})) in {"wrong_issuer", "missing_iss"}


def test_issuer_as_a_list_is_rejected(make_token, verifier, issuer) -> None:
    assert reject(verifier, make_token(claims={"iss": [issuer]})) == "wrong_issuer"


@pytest.mark.parametrize("aud", ["https://other-api.example", "https://api.payplat.test/x"])
def test_wrong_audience_is_rejected(make_token, verifier, aud) -> None:
    assert reject(verifier, make_token(claims={"aud": aud})) == "wrong_audience"


@pytest.mark.parametrize("extra", [[], ["https://other-api.example"]])
def test_audience_list_containing_ours_is_rejected(make_token, verifier, audience, extra) -> None:
    # Given aud as a list that includes our audience (strict_aud: only a single string is ours)
    token = make_token(claims={"aud": [audience, *extra]})

    # Then it is refused: a token minted for several audiences is not our access token
    assert reject(verifier, token) == "wrong_audience"


def test_tampered_payload_is_rejected(make_token, verifier) -> None:
    # Given a valid token whose payload is swapped for one with a wider scope
    head, _, sig = segments(make_token(claims={"scope": "payments:read"}))
    _, wider, _ = segments(make_token(claims={"scope": "payments:read payments:write"}))

    # Then the signature no longer matches
    assert reject(verifier, f"{head}.{wider}.{sig}") == "bad_signature"


def test_flipped_signature_byte_is_rejected(make_token, verifier) -> None:
    head, body, sig = segments(make_token())
    raw = bytearray(b64decode(sig))
    raw[10] ^= 0x01
    assert reject(verifier, f"{head}.{body}.{b64url(bytes(raw))}") == "bad_signature"


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(bytes(64), id="r=s=0"),
        pytest.param(P256_ORDER.to_bytes(32, "big") * 2, id="r=s=n"),
        pytest.param(b"\xff" * 64, id="all-ones"),
        pytest.param(bytes(63), id="63-bytes"),
        pytest.param(bytes(65), id="65-bytes"),
        pytest.param(b"\x00", id="1-byte"),
    ],
)
def test_psychic_and_misshapen_signatures_are_rejected(make_token, verifier, signature) -> None:
    # Given CVE-2022-21449-style signatures and wrong lengths
    token = make_token(signature=signature)

    # Then they never verify, and never raise anything but InvalidToken
    assert reject(verifier, token) in {"bad_signature", "invalid"}


def test_der_signature_instead_of_raw_is_rejected(make_token, signer, verifier) -> None:
    # Given the signer's DER output used as-is (the KMS conversion forgotten)
    head, body, _ = segments(make_token())
    der = signer.sign_der(f"{head}.{body}".encode())

    # Then JWS's raw r||s format is required
    assert reject(verifier, f"{head}.{body}.{b64url(der)}") == "bad_signature"


def test_signature_by_a_foreign_key_with_our_kid_is_rejected(
    make_token, verifier, new_signer
) -> None:
    assert reject(verifier, make_token(sign_with=new_signer())) == "bad_signature"


@pytest.mark.parametrize(
    ("claims", "reasons"),
    [
        pytest.param({"scope": ["payments:read"]}, {"bad_claim_type"}, id="scope-list"),
        pytest.param({"scope": None}, {"missing_scope"}, id="scope-null"),
        pytest.param({"exp": "later"}, {"invalid", "malformed"}, id="exp-word"),
        pytest.param({"exp": str(2**40)}, {"bad_claim_type"}, id="exp-numeric-string"),
        pytest.param({"exp": float(2**40)}, {"bad_claim_type"}, id="exp-float"),
        pytest.param({"exp": [2**40]}, {"invalid", "malformed"}, id="exp-list"),
        pytest.param({"iat": "now"}, {"invalid", "malformed"}, id="iat-string"),
        pytest.param({"nbf": {"t": 1}}, {"invalid", "malformed"}, id="nbf-object"),
        pytest.param({"sub": 42}, {"invalid", "bad_claim_type"}, id="sub-int"),
        pytest.param({"sub": ""}, {"bad_claim_type"}, id="sub-empty"),
        pytest.param({"client_id": 7}, {"bad_claim_type"}, id="client_id-int"),
        pytest.param({"client_id": ""}, {"bad_claim_type"}, id="client_id-empty"),
        pytest.param({"jti": 1}, {"invalid", "bad_claim_type"}, id="jti-int"),
        pytest.param({"jti": ""}, {"bad_claim_type"}, id="jti-empty"),
        pytest.param({"aud": {"a": 1}}, {"wrong_audience"}, id="aud-object"),
    ],
)
def test_claims_of_the_wrong_type_are_rejected(make_token, verifier, claims, reasons) -> None:
    # Given a validly signed token with a claim of the wrong JSON type
    token = make_token(claims=claims)

    # Then it is refused as InvalidToken, never a TypeError/KeyError
    assert reject(verifier, token) in reasons


# --- shape and size ----------------------------------------------------------------------------


def test_stripped_signature_is_rejected(make_token, verifier) -> None:
    head, body, _ = segments(make_token())
    assert reject(verifier, f"{head}.{body}.") == "malformed"


@pytest.mark.parametrize("count", [1, 2, 4, 5])
def test_wrong_segment_count_is_rejected(make_token, verifier, count) -> None:
    # Given the right segments, too few or too many (5 is a JWE's shape)
    parts = segments(make_token())
    parts = (parts * 2)[:count]

    # Then the shape alone is refused
    assert reject(verifier, ".".join(parts)) == "malformed"


@pytest.mark.parametrize("token", ["", ".", "..", "...", "a..c", "not a token"])
def test_degenerate_strings_are_rejected(verifier, token) -> None:
    assert reject(verifier, token) == "malformed"


MALFORMED = {"malformed", "malformed_header", "invalid"}


@pytest.mark.parametrize("index", [0, 1, 2], ids=["header", "payload", "signature"])
@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda s: s[:5] + "!" + s[5:], id="bang"),
        pytest.param(lambda s: s[:5] + "+" + s[6:], id="std-alphabet-plus"),
        pytest.param(lambda s: s[:5] + "/" + s[6:], id="std-alphabet-slash"),
        pytest.param(lambda s: s + "==", id="padding"),
        pytest.param(lambda s: s + "A" * ((1 - len(s)) % 4 or 4), id="impossible-length"),
        pytest.param(lambda s: s[:5] + " " + s[5:], id="space"),
        pytest.param(lambda s: s[:5] + "é" + s[5:], id="non-ascii"),
        pytest.param(lambda s: s + "\n", id="trailing-newline"),
    ],
)
def test_bad_base64_in_any_segment_is_rejected(
    make_token, verifier, index, damage: Callable[[str], str]
) -> None:
    # Given a valid token with one segment no longer canonical base64url
    parts = segments(make_token())
    parts[index] = damage(parts[index])

    # Then it is refused as malformed, before any signature work
    assert reject(verifier, ".".join(parts)) in {"malformed", "malformed_header"}


@pytest.mark.parametrize(
    "header_bytes",
    [
        pytest.param(b"not json", id="text"),
        pytest.param(b"", id="empty"),
        pytest.param(b'["alg","ES256"]', id="array"),
        pytest.param(b'"ES256"', id="string"),
        pytest.param(b"null", id="null"),
        pytest.param(b'{"alg":"ES256"', id="truncated"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(b"[" * 300 + b"]" * 300, id="deeply-nested"),
    ],
)
def test_non_json_object_header_is_rejected(make_token, verifier, header_bytes) -> None:
    token = make_token(header_bytes=header_bytes)
    assert reject(verifier, token) in {"malformed", "malformed_header"}


@pytest.mark.parametrize(
    "payload_bytes",
    [b"not json", b"[]", b'"claims"', b"null", b"\xff\xfe", b'{"sub":'],
    ids=["text", "array", "string", "null", "not-utf8", "truncated"],
)
def test_validly_signed_non_object_payload_is_rejected(make_token, verifier, payload_bytes) -> None:
    assert reject(verifier, make_token(payload_bytes=payload_bytes)) in MALFORMED


def _padded_to(target: int, build: Callable[[int], str], measure: Callable[[str], int]) -> str:
    """`build(n)` for the n whose `measure` is exactly `target` (base64 grows in steps)."""
    start = max(0, (target - measure(build(0))) * 3 // 4 - 8)  # 3 bytes -> 4 chars
    for n in range(start, start + 64):
        token = build(n)
        if measure(token) == target:
            return token
    raise AssertionError(f"no padding reaches {target}")


def test_header_at_the_cap_is_accepted_and_one_over_is_rejected(make_token, verifier) -> None:
    # Given validly signed tokens whose header segment is exactly the cap, and just over it
    def build(n: int) -> str:
        return make_token(header={"x-pad": "p" * n})

    def header_len(token: str) -> int:
        return len(segments(token)[0])

    at_cap = _padded_to(MAX_HEADER_CHARS, build, header_len)
    over = _padded_to(MAX_HEADER_CHARS + 2, build, header_len)

    # Then the cap is inclusive
    assert verifier.verify(at_cap).subject == "user-123"
    assert reject(verifier, over) == "header_too_large"


def test_oversized_header_is_rejected(make_token, verifier) -> None:
    token = make_token(header={"x-pad": "p" * 4 * MAX_HEADER_CHARS})
    assert len(token) < MAX_TOKEN_CHARS
    assert reject(verifier, token) == "header_too_large"


def test_token_at_the_cap_is_accepted_and_over_is_rejected(make_token, verifier) -> None:
    def build(n: int) -> str:
        return make_token(claims={"x-pad": "p" * n})

    at_cap = _padded_to(MAX_TOKEN_CHARS, build, len)
    over = _padded_to(MAX_TOKEN_CHARS + 2, build, len)

    assert verifier.verify(at_cap).subject == "user-123"
    assert reject(verifier, over) == "token_too_large"


def test_huge_token_is_rejected_before_parsing(verifier) -> None:
    # Given a megabyte of junk: refused on length, not after base64/JSON work
    assert reject(verifier, "a" * 1_000_000) == "token_too_large"


# --- bearer_token ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ("BEARER abc.def.ghi", "abc.def.ghi"),
        ("Bearer   abc.def.ghi", "abc.def.ghi"),
        ("Bearer abc.def.ghi  ", "abc.def.ghi"),
        ("Bearer a-b_c.d~e+f/g=", "a-b_c.d~e+f/g="),
    ],
)
def test_bearer_token_is_extracted(header, token) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing_token"),
        ("", "missing_token"),
        ("Basic dXNlcjpwYXNz", "malformed_authorization_header"),
        ("Bearer", "malformed_authorization_header"),
        ("Bearer ", "malformed_authorization_header"),
        ("Bearerabc.def.ghi", "malformed_authorization_header"),
        ("Bearer abc def", "malformed_authorization_header"),
        ("Bearer abc,Bearer def", "malformed_authorization_header"),
        ("Bearer\tabc", "malformed_authorization_header"),
        ("Token abc", "malformed_authorization_header"),
        ("abc.def.ghi", "malformed_authorization_header"),
    ],
)
def test_bad_authorization_headers_are_rejected(header, reason) -> None:
    with pytest.raises(InvalidToken) as caught:
        bearer_token(header)
    assert caught.value.reason == reason


# --- issuing -----------------------------------------------------------------------------------


def test_issued_token_has_the_rfc9068_shape(issue, signer, issuer, audience) -> None:
    # Given a token issued at a fixed time
    issued: IssuedToken = issue(scope="payments:read", now=1_700_000_000, ttl_s=300)
    head, body, sig = segments(issued.token)

    # Then the header is exactly alg/typ/kid, unpadded base64url
    assert json.loads(b64decode(head)) == {"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": signer.kid}
    assert "=" not in issued.token

    # And the claims are the RFC 9068 set
    assert json.loads(b64decode(body)) == {
        "iss": issuer,
        "sub": "user-123",
        "aud": audience,
        "client_id": "client-abc",
        "scope": "payments:read",
        "iat": 1_700_000_000,
        "nbf": 1_700_000_000,
        "exp": 1_700_000_300,
        "jti": issued.jti,
    }
    assert (issued.expires_in, issued.scope) == (300, "payments:read")

    # And the signature is raw r||s that verifies with the public key
    raw = b64decode(sig)
    assert len(raw) == 64
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    signer.public_key.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))


def test_each_token_gets_a_fresh_128_bit_jti(issue) -> None:
    jtis = {issue().jti for _ in range(50)}
    assert len(jtis) == 50
    assert all(len(b64decode(jti)) >= 16 for jti in jtis)


def test_token_issued_in_the_past_is_expired(issue, verifier) -> None:
    issued = issue(now=int(time.time()) - 3600, ttl_s=600)
    assert reject(verifier, issued.token) == "expired"


def test_der_to_raw_gives_64_bytes_of_r_and_s(signer) -> None:
    # Given a real DER ECDSA signature
    der = signer.sign_der(b"message")

    # When converted
    raw = der_to_raw(der)

    # Then it is r||s, 32 bytes each, big-endian
    r, s = decode_dss_signature(der)
    assert len(raw) == 64
    assert raw == r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_der_to_raw_left_pads_short_integers() -> None:
    # Given r and s small enough that DER drops their leading zero bytes
    raw = der_to_raw(encode_dss_signature(1, 2**8))

    # Then each is still a fixed 32-byte field
    assert raw == bytes(31) + b"\x01" + bytes(30) + b"\x01\x00"


def test_der_to_raw_refuses_garbage() -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - cryptography's own message varies
        der_to_raw(b"\x30\x00garbage")


# --- JWK ---------------------------------------------------------------------------------------


# RFC 7517 Appendix A.1's example P-256 key; its RFC 7638 thumbprint is the value independent
# implementations publish, and equals SHA-256 of the canonical JSON written out below.
RFC7517_X = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4"
RFC7517_Y = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"
RFC7517_THUMBPRINT = "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s"


def _der_from_xy(x: str, y: str) -> bytes:
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(b64decode(x), "big"), int.from_bytes(b64decode(y), "big"), ec.SECP256R1()
    )
    return numbers.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_thumbprint_of_the_rfc7517_example_key() -> None:
    # Given the canonical form RFC 7638 §3.2 prescribes, written out by hand
    canonical = f'{{"crv":"P-256","kty":"EC","x":"{RFC7517_X}","y":"{RFC7517_Y}"}}'
    by_hand = b64url(hashlib.sha256(canonical.encode()).digest())

    # When the module computes the JWK and its kid from the DER public key
    jwk = public_jwk(_der_from_xy(RFC7517_X, RFC7517_Y))

    # Then both agree with the published value
    assert by_hand == RFC7517_THUMBPRINT
    assert jwk == {
        "kty": "EC",
        "crv": "P-256",
        "x": RFC7517_X,
        "y": RFC7517_Y,
        "kid": RFC7517_THUMBPRINT,
        "use": "sig",
        "alg": "ES256",
    }


def test_thumbprint_uses_only_required_members_in_any_order() -> None:
    members = {"kty": "EC", "crv": "P-256", "x": RFC7517_X, "y": RFC7517_Y}
    shuffled = {"y": RFC7517_Y, "alg": "ES256", "x": RFC7517_X, "kid": "1", "crv": "P-256"}
    assert thumbprint(members) == thumbprint({**shuffled, "kty": "EC", "use": "enc"})


def test_kid_is_stable_for_a_key_and_changes_with_the_key(signer, new_signer) -> None:
    # Given the same key twice and another key
    first, again = public_jwk(signer.public_der), public_jwk(signer.public_der)
    other = public_jwk(new_signer().public_der)

    # Then the kid is deterministic per key and distinct across keys
    assert first == again
    assert first["kid"] == signer.kid == thumbprint(first)
    assert other["kid"] != first["kid"]
    assert len(first["x"]) == len(first["y"]) == 43


def test_public_jwk_round_trips_through_pyjwt(signer) -> None:
    key = ECAlgorithm.from_jwk(public_jwk(signer.public_der))
    assert key.public_numbers() == signer.public_key.public_numbers()


@pytest.mark.parametrize(
    "make_key",
    [
        pytest.param(lambda: ec.generate_private_key(ec.SECP384R1()), id="P-384"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP256K1()), id="secp256k1"),
        pytest.param(lambda: rsa.generate_private_key(65537, 1024), id="RSA"),  # noqa: S505
    ],
)
def test_public_jwk_refuses_keys_other_than_p256(make_key) -> None:
    der = (
        make_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ValueError, match="P-256"):
        public_jwk(der)


# --- key sets ----------------------------------------------------------------------------------


def jwks(*keys: dict[str, Any]) -> bytes:
    return json.dumps({"keys": list(keys)}).encode()


class FakeJwksEndpoint:
    """An injected `fetch`: serves `document`, or raises `error`, and counts calls."""

    def __init__(self, document: bytes) -> None:
        self.document = document
        self.error: Exception | None = None
        self.calls: list[str] = []

    def __call__(self, uri: str) -> bytes:
        self.calls.append(uri)
        if self.error is not None:
            raise self.error
        return self.document


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


JWKS_URI = "https://auth.payplat.test/.well-known/jwks.json"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def endpoint(signer) -> FakeJwksEndpoint:
    return FakeJwksEndpoint(jwks(public_jwk(signer.public_der)))


@pytest.fixture
def remote(endpoint, clock) -> RemoteKeySet:
    return RemoteKeySet(JWKS_URI, fetch=endpoint, min_refresh_interval_s=60, clock=clock)


def test_static_key_set_returns_known_keys_only(signer) -> None:
    keys = {signer.kid: signer.public_key}
    static = StaticKeySet(keys)
    keys.clear()  # a copy is kept: later changes to the caller's dict do not leak in
    assert static.get(signer.kid) is signer.public_key
    assert static.get("other") is None


def test_parse_jwks_returns_p256_keys_by_kid(signer, new_signer) -> None:
    other = new_signer()
    keys = parse_jwks(jwks(public_jwk(signer.public_der), public_jwk(other.public_der)))
    assert set(keys) == {signer.kid, other.kid}
    assert keys[signer.kid].public_numbers() == signer.public_key.public_numbers()


def test_parse_jwks_ignores_keys_that_cannot_sign_es256(signer) -> None:
    # Given a JWKS mixing our key with keys of other types, curves and uses
    ours = public_jwk(signer.public_der)
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    document = jwks(
        ours,
        {
            "kty": "RSA",
            "kid": "rsa-1",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM7",
            "e": "AQAB",
        },
        {"kty": "oct", "kid": "hmac-1", "k": "c2VjcmV0"},
        {
            "kty": "EC",
            "crv": "P-384",
            "kid": "p384",
            "x": b64url(p384.x.to_bytes(48, "big")),
            "y": b64url(p384.y.to_bytes(48, "big")),
        },
        {**ours, "kid": "enc-1", "use": "enc"},
        {k: v for k, v in ours.items() if k != "kid"},
        {**ours, "kid": 7},
        "not-an-object",
        None,
    )

    # When parsed
    keys = parse_jwks(document)

    # Then only the ES256 signing key remains
    assert set(keys) == {signer.kid}


def test_parse_jwks_refuses_a_duplicate_kid(signer, new_signer) -> None:
    # Given two different keys published under one kid
    impostor = {**public_jwk(new_signer().public_der), "kid": signer.kid}
    document = jwks(public_jwk(signer.public_der), impostor)

    # Then the whole document is refused (which key to trust would be ambiguous)
    with pytest.raises(ValueError, match="duplicate kid"):
        parse_jwks(document)


def test_remote_key_set_fetches_once_at_first_use(remote, endpoint, signer) -> None:
    # Given a fresh key set: no network at construction
    assert endpoint.calls == []

    # When keys are looked up repeatedly
    first = remote.get(signer.kid)
    again = remote.get(signer.kid)

    # Then one fetch served them all
    assert first is again is not None
    assert endpoint.calls == [JWKS_URI]
    assert remote.fetches == 1


def test_unknown_kid_flood_refetches_at_most_once_per_interval(
    remote, endpoint, clock, signer
) -> None:
    # Given a warm key set
    assert remote.get(signer.kid) is not None

    # When 1000 forged kids arrive within the interval
    for i in range(1000):
        assert remote.get(f"forged-{i}") is None

    # Then no further fetch happened
    assert len(endpoint.calls) == remote.fetches == 1

    # And once the interval has passed, one more unknown kid may trigger one fetch
    clock.now += 60
    for i in range(1000):
        assert remote.get(f"forged-again-{i}") is None
    assert len(endpoint.calls) == remote.fetches == 2


def test_unknown_kids_before_the_first_fetch_cost_one_fetch(remote, endpoint) -> None:
    for i in range(100):
        assert remote.get(f"forged-{i}") is None
    assert len(endpoint.calls) == 1


def test_rotated_key_is_found_after_the_interval(
    remote, endpoint, clock, signer, new_signer
) -> None:
    # Given a warm key set, then the issuer publishes a new key alongside the old
    assert remote.get(signer.kid) is not None
    rotated = new_signer()
    endpoint.document = jwks(public_jwk(signer.public_der), public_jwk(rotated.public_der))

    # When the new kid is seen inside the interval, then after it
    early = remote.get(rotated.kid)
    clock.now += 61
    late = remote.get(rotated.kid)

    # Then it is found only once a refresh is allowed, and the old key stays
    assert early is None
    assert late.public_numbers() == rotated.public_key.public_numbers()
    assert remote.get(signer.kid) is not None


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(("raise", OSError("connection reset")), id="network-error"),
        pytest.param(("raise", TimeoutError("timed out")), id="timeout"),
        pytest.param(("serve", b"<html>503</html>"), id="not-json"),
        pytest.param(
            ("serve", b'{"keys": [{"kty": "EC", "crv": "P-256", "kid": "k"}]}'), id="bad-key"
        ),
    ],
)
def test_failed_refresh_keeps_the_old_keys(
    remote, endpoint, clock, signer, new_signer, failure
) -> None:
    # Given a warm key set
    assert remote.get(signer.kid) is not None

    # When the next refresh fails
    kind, value = failure
    if kind == "raise":
        endpoint.error = value
    else:
        endpoint.document = value
    clock.now += 60
    assert remote.get(new_signer().kid) is None

    # Then it was attempted, and the keys we had still verify
    assert remote.fetches == 2
    assert remote.get(signer.kid).public_numbers() == signer.public_key.public_numbers()


def test_duplicate_kid_refresh_keeps_the_old_keys(
    remote, endpoint, clock, signer, new_signer
) -> None:
    # Given a warm key set, then a JWKS with two keys under one kid
    assert remote.get(signer.kid) is not None
    impostor = new_signer()
    endpoint.document = jwks(
        public_jwk(signer.public_der), {**public_jwk(impostor.public_der), "kid": signer.kid}
    )

    # When a refresh happens
    clock.now += 60
    assert remote.get("unknown-kid") is None

    # Then the document was refused and our own key is still the one trusted
    assert remote.fetches == 2
    assert remote.get(signer.kid).public_numbers() == signer.public_key.public_numbers()


def test_key_removed_from_the_jwks_is_dropped_at_the_next_refresh(
    remote, endpoint, clock, signer, new_signer
) -> None:
    # Given a warm key set, then the issuer withdraws our key and publishes another
    assert remote.get(signer.kid) is not None
    replacement = new_signer()
    endpoint.document = jwks(public_jwk(replacement.public_der))

    # When a refresh happens
    clock.now += 60
    assert remote.get(replacement.kid) is not None

    # Then the withdrawn key is no longer trusted
    assert remote.get(signer.kid) is None


@pytest.mark.parametrize(
    "document",
    [b"{}", b'{"message": "Internal server error"}', b'{"keys": "abc"}', b'{"keys": {"kid": 1}}'],
    ids=["empty-object", "error-body", "keys-string", "keys-object"],
)
def test_a_document_that_is_not_a_jwks_keeps_the_old_keys(
    remote, endpoint, clock, signer, document
) -> None:
    # Given a warm key set, then the endpoint answers 200 with something that is not a JWKS
    assert remote.get(signer.kid) is not None
    endpoint.document = document

    # When a refresh happens
    clock.now += 60
    assert remote.get("unknown-kid") is None

    # Then, as for any failed refresh, the keys we had still verify
    assert remote.fetches == 2
    assert remote.get(signer.kid) is not None


def test_verifier_over_a_remote_key_set(remote, issue, issuer, audience, new_signer) -> None:
    # Given a verifier reading keys from the (fake) JWKS endpoint
    verifier = TokenVerifier(remote, issuer=issuer, audience=audience)

    # Then our tokens verify, and a foreign kid is simply unknown
    assert verifier.verify(issue().token).client_id == "client-abc"
    forged = issue_access_token(
        new_signer(),
        issuer=issuer,
        audience=audience,
        subject="mallory",
        client_id="evil",
        scope="payments:write",
        ttl_s=600,
    )
    assert reject(verifier, forged.token) == "unknown_kid"
