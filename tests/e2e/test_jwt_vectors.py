"""The JWT corpus (OWASP API2, RFC 8725), end to end: every known way of forging, bending or
breaking an access token is sent to a protected route over real HTTP, and each one must get
the gateway's RFC 6750 401 — never a 200, a 403 or a 5xx.

The tokens are built by a small forger that signs with the platform's own KMS key (in moto),
with a second KMS key the JWKS does not publish, or with a key of our own; the positive
control proves that what the forger signs correctly is accepted, so each rejection is down to
the one thing the vector changes."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import jwt
import pytest
import requests
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from jwt.algorithms import ECAlgorithm

from infra.resources import AUDIENCE_PATH, EDGE_MAX_AUTHORIZATION_BYTES, SIGNING_KEY
from payplat.oauth.jwk import b64url, public_jwk
from tests.conftest import Platform

pytestmark = pytest.mark.e2e

TIMEOUT_S = 5
SKEW_S = 120  # well past the authorizer's 10 s leeway
EXPIRED_AGO_S = 60
TTL_S = 600
HUGE_KID_CHARS = 10_000
OVERSIZED_HEADER_CHARS = 9_000  # > 8 KB of header JSON
LARGE_HEADER_CHARS = 2_000  # under the token cap, over the header cap
ATTACKER = "https://attacker.example"


def _raw(der_signature: bytes) -> bytes:
    """JWS wants ECDSA signatures as raw r||s (RFC 7518 §3.4); KMS and cryptography give DER."""
    r, s = decode_dss_signature(der_signature)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _segment(obj: dict[str, Any]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def _self_signed_cert(key: ec.EllipticCurvePrivateKey) -> str:
    """A base64 DER certificate for `key`, as an attacker would put in `x5c`."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "payplat")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")


@dataclass
class Forger:
    """Builds tokens: a valid header and claim set to start from, and a choice of signer."""

    platform: Platform
    kms: Any
    kid: str  # the kid of the key signing now (published in the JWKS)
    signing_key_id: str  # that KMS key
    public_pem: bytes  # that key as PEM, the classic HS256 "secret"
    retired_key_id: str  # a KMS key the JWKS does not publish
    retired_kid: str
    foreign_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    _issued: str | None = None

    @property
    def foreign_jwk(self) -> dict[str, str]:
        der = self.foreign_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return public_jwk(der)

    def header(self, drop: tuple[str, ...] = (), **changes: Any) -> dict[str, Any]:
        header = {"alg": "ES256", "typ": "at+jwt", "kid": self.kid, **changes}
        return {name: value for name, value in header.items() if name not in drop}

    def claims(self, drop: tuple[str, ...] = (), **changes: Any) -> dict[str, Any]:
        """What the token endpoint would issue to the merchant for payments:read, now."""
        now = int(time.time())
        client_id = self.platform.clients["merchant"]["client_id"]
        claims = {
            "iss": self.platform.base_url,
            "sub": client_id,
            "aud": self.platform.base_url + AUDIENCE_PATH,
            "client_id": client_id,
            "scope": "payments:read",
            "iat": now,
            "nbf": now,
            "exp": now + TTL_S,
            "jti": secrets.token_urlsafe(16),  # also makes every token, and cache key, unique
            **changes,
        }
        return {name: value for name, value in claims.items() if name not in drop}

    def token(
        self,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
        *,
        signer: str = "kms",
    ) -> str:
        """signer: kms | retired | foreign | hs256-public-pem | zero (r=s=0) | none (empty)."""
        header = self.header() if header is None else header
        claims = self.claims() if claims is None else claims
        signing_input = f"{_segment(header)}.{_segment(claims)}".encode("ascii")
        return f"{signing_input.decode('ascii')}.{b64url(self.sign(signing_input, signer))}"

    def sign(self, message: bytes, signer: str) -> bytes:
        if signer in {"kms", "retired"}:
            key_id = self.signing_key_id if signer == "kms" else self.retired_key_id
            response = self.kms.sign(
                KeyId=key_id,
                Message=message,
                MessageType="RAW",
                SigningAlgorithm="ECDSA_SHA_256",
            )
            return _raw(response["Signature"])
        if signer == "foreign":
            return _raw(self.foreign_key.sign(message, ec.ECDSA(hashes.SHA256())))
        if signer == "hs256-public-pem":
            return hmac.new(self.public_pem, message, hashlib.sha256).digest()
        if signer == "zero":
            return bytes(64)
        if signer == "none":
            return b""
        raise ValueError(f"unknown signer {signer}")

    def issued_token(self) -> str:
        """One real token from the token endpoint (rate limited: fetched once per module)."""
        if self._issued is None:
            merchant = self.platform.clients["merchant"]
            response = requests.post(
                f"{self.platform.base_url}/oauth/token",
                data={"grant_type": "client_credentials", "scope": "payments:read"},
                auth=(merchant["client_id"], merchant["client_secret"]),
                timeout=TIMEOUT_S,
            )
            response.raise_for_status()
            self._issued = response.json()["access_token"]
        return self._issued


@pytest.fixture(scope="module")
def forge(platform: Platform) -> Iterator[Forger]:
    kms = boto3.client(
        "kms",
        endpoint_url=platform.aws_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    # The forger signs with the very key the platform signs with now (a test elsewhere may
    # have rotated keys), and that key must be in the JWKS, or the positive control and every
    # "validly signed" vector would be meaningless.
    merchant = platform.clients["merchant"]
    issued = requests.post(
        f"{platform.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(merchant["client_id"], merchant["client_secret"]),
        timeout=TIMEOUT_S,
    ).json()["access_token"]
    kid = jwt.get_unverified_header(issued)["kid"]
    jwks = requests.get(f"{platform.base_url}/.well-known/jwks.json", timeout=TIMEOUT_S).json()
    [published] = [key for key in jwks["keys"] if key["kid"] == kid]
    [signing_key_id] = [
        key["KeyId"] for key in kms.list_keys()["Keys"] if _kid_of(kms, key["KeyId"]) == kid
    ]
    public_pem = ECAlgorithm.from_jwk(published).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    retired_key_id = kms.create_key(
        KeySpec=SIGNING_KEY.key_spec,
        KeyUsage=SIGNING_KEY.key_usage,
        Description="payplat test: a retired signing key, not in the JWKS",
    )["KeyMetadata"]["KeyId"]
    retired_kid = public_jwk(kms.get_public_key(KeyId=retired_key_id)["PublicKey"])["kid"]
    yield Forger(
        platform=platform,
        kms=kms,
        kid=published["kid"],
        signing_key_id=signing_key_id,
        public_pem=public_pem,
        retired_key_id=retired_key_id,
        retired_kid=retired_kid,
    )
    kms.schedule_key_deletion(KeyId=retired_key_id, PendingWindowInDays=7)


def _kid_of(kms: Any, key_id: str) -> str | None:
    """The RFC 7638 kid of a KMS key, None for keys that are not ES256 signing keys."""
    try:
        return public_jwk(kms.get_public_key(KeyId=key_id)["PublicKey"])["kid"]
    except (ClientError, ValueError):
        return None


def _get_payments(platform: Platform, token: str) -> requests.Response:
    return requests.get(
        f"{platform.base_url}/v1/payments",
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT_S,
    )


def test_a_correctly_forged_token_is_accepted(platform: Platform, forge: Forger) -> None:
    # Given a token the forger signs with the platform's KMS key and every right claim
    token = forge.token()
    # When it calls a protected route
    response = _get_payments(platform, token)
    # Then it is let through: the vectors below fail for what they change, not the forger
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "list"


def _valid(f: Forger) -> str:
    return f.token()


def _tampered(f: Forger) -> str:
    header, payload, signature = f.issued_token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "payments:read payments:write refunds:write clients:manage"
    return f"{header}.{_segment(claims)}.{signature}"


def _bad_base64(f: Forger) -> str:
    header, payload, signature = _valid(f).split(".")
    return f"{header}.{payload[:8]}!!!{payload[8:]}.{signature}"


def _bad_base64_length(f: Forger) -> str:
    # Only the alphabet of base64url, so it passes every regex; 4n+1 characters cannot decode.
    header, payload, signature = _valid(f).split(".")
    payload += "A" * ((1 - len(payload)) % 4)
    return f"{header}.{payload}.{signature}"


def _jwk_self_signed(f: Forger) -> str:
    foreign = f.foreign_jwk
    embedded = {name: foreign[name] for name in ("kty", "crv", "x", "y")}
    return f.token(f.header(kid=foreign["kid"], jwk=embedded), signer="foreign")


Vector = Callable[[Forger], str]

VECTORS = [
    # Algorithm confusion
    *(
        pytest.param(lambda f, alg=alg: f.token(f.header(alg=alg), signer="none"), id=f"alg-{alg}")
        for alg in ("none", "None", "NONE", "nOnE")
    ),
    # An empty signature stops at the segment check; a signed one reaches the alg allow-list.
    pytest.param(lambda f: f.token(f.header(alg="none")), id="alg-none-with-signature"),
    pytest.param(
        lambda f: f.token(f.header(alg="HS256"), signer="hs256-public-pem"),
        id="hs256-with-public-key-pem",
    ),
    # Key selection
    pytest.param(lambda f: f.token(f.header(kid="not-a-key-we-publish")), id="unknown-kid"),
    pytest.param(lambda f: f.token(f.header(kid="../../../../dev/null")), id="traversal-kid"),
    pytest.param(lambda f: f.token(f.header(kid="k" * HUGE_KID_CHARS)), id="huge-kid"),
    pytest.param(lambda f: f.token(f.header(jku=f"{ATTACKER}/jwks.json")), id="jku-header"),
    pytest.param(lambda f: f.token(f.header(x5u=f"{ATTACKER}/cert.pem")), id="x5u-header"),
    pytest.param(
        lambda f: f.token(f.header(jwk={k: f.foreign_jwk[k] for k in ("kty", "crv", "x", "y")})),
        id="jwk-header",
    ),
    pytest.param(_jwk_self_signed, id="jwk-header-self-signed"),
    pytest.param(
        lambda f: f.token(f.header(x5c=[_self_signed_cert(f.foreign_key)])), id="x5c-header"
    ),
    pytest.param(lambda f: f.token(signer="foreign"), id="foreign-key-with-our-kid"),
    pytest.param(
        lambda f: f.token(f.header(kid=f.retired_kid), signer="retired"), id="retired-key"
    ),
    # Required claims, each missing from an otherwise valid, validly signed token
    *(
        pytest.param(
            lambda f, claim=claim: f.token(claims=f.claims(drop=(claim,))), id=f"missing-{claim}"
        )
        for claim in ("exp", "iat", "aud", "iss", "sub", "jti")
    ),
    # Time
    pytest.param(
        lambda f: f.token(claims=f.claims(exp=int(time.time()) - EXPIRED_AGO_S)), id="expired"
    ),
    pytest.param(
        lambda f: f.token(claims=f.claims(nbf=int(time.time()) + SKEW_S)), id="nbf-in-future"
    ),
    pytest.param(
        lambda f: f.token(claims=f.claims(iat=int(time.time()) + SKEW_S)), id="iat-in-future"
    ),
    # Audience, issuer, type
    pytest.param(lambda f: f.token(claims=f.claims(iss=ATTACKER)), id="wrong-iss"),
    pytest.param(
        lambda f: f.token(claims=f.claims(aud=f.platform.base_url + "/admin")), id="wrong-aud"
    ),
    pytest.param(lambda f: f.token(f.header(typ="JWT")), id="typ-JWT"),
    pytest.param(lambda f: f.token(f.header(drop=("typ",))), id="typ-missing"),
    # Signature and structure
    pytest.param(_tampered, id="tampered-payload"),
    pytest.param(lambda f: _valid(f).rsplit(".", 1)[0] + ".", id="stripped-signature"),
    pytest.param(lambda f: _valid(f).rsplit(".", 1)[0], id="two-segments"),
    pytest.param(lambda f: f"{_valid(f)}.{b64url(b'extra')}", id="four-segments"),
    pytest.param(_bad_base64, id="bad-base64"),
    pytest.param(_bad_base64_length, id="bad-base64-length"),
    pytest.param(lambda f: f.token(signer="zero"), id="ecdsa-r-s-zero-CVE-2022-21449"),
    # Headers
    pytest.param(
        lambda f: f.token(f.header(pad="a" * OVERSIZED_HEADER_CHARS)), id="oversized-header"
    ),
    # The oversized header stops at the token cap; this one reaches the header cap.
    pytest.param(lambda f: f.token(f.header(pad="a" * LARGE_HEADER_CHARS)), id="large-header"),
    pytest.param(
        lambda f: f.token(f.header(crit=["urn:payplat:unknown"], **{"urn:payplat:unknown": 1})),
        id="unknown-crit",
    ),
]


@pytest.mark.parametrize("build", VECTORS)
def test_a_forged_or_broken_token_is_401_invalid_token(
    platform: Platform, forge: Forger, build: Vector
) -> None:
    # Given a token that is wrong in exactly one way
    token = build(forge)
    # When it calls a protected route
    response = _get_payments(platform, token)
    if len(f"Bearer {token}") > EDGE_MAX_AUTHORIZATION_BYTES:
        # Then a header this large never gets past the edge (the WAF's 413)
        assert response.status_code == 413, (response.status_code, response.text[:500])
        assert response.json()["error"]["code"] == "header_too_large"
        return
    # Then the gateway answers the RFC 6750 challenge, in the API's error format
    assert response.status_code == 401, (response.status_code, response.text[:500])
    assert 'error="invalid_token"' in response.headers.get("WWW-Authenticate", "")
    error = response.json()["error"]
    assert error["type"] == "authentication_error"
    assert error["request_id"] == response.headers["x-amzn-RequestId"]
