"""Shared fixtures for the auth unit tests: a real P-256 signer, a verifier that trusts it, and
a token forge that can produce anything an attacker could put on the wire."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from payplat.gateway.keyset import StaticKeySet
from payplat.gateway.verify import TokenVerifier
from payplat.oauth.access_tokens import IssuedToken, der_to_raw, issue_access_token
from payplat.oauth.jwk import public_jwk

ISSUER = "https://auth.payplat.test"
AUDIENCE = "https://api.payplat.test"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


class EcSigner:
    """The Signer protocol over a local EC P-256 key, standing in for KMS (which returns DER)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey | None = None) -> None:
        self.private_key = private_key or ec.generate_private_key(ec.SECP256R1())
        self.public_key = self.private_key.public_key()
        self.public_der = self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._kid = public_jwk(self.public_der)["kid"]

    @property
    def kid(self) -> str:
        return self._kid

    def sign_der(self, message: bytes) -> bytes:
        return self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))


def _merge(
    base: dict[str, Any], overrides: dict[str, Any] | None, drop: tuple[str, ...]
) -> dict[str, Any]:
    merged = {**base, **(overrides or {})}
    return {name: value for name, value in merged.items() if name not in drop}


@pytest.fixture(scope="session")
def signer() -> EcSigner:
    return EcSigner()


@pytest.fixture
def new_signer() -> Callable[[], EcSigner]:
    """Another, unrelated P-256 key (an attacker's, or the next key after a rotation)."""
    return EcSigner


@pytest.fixture
def issuer() -> str:
    return ISSUER


@pytest.fixture
def audience() -> str:
    return AUDIENCE


@pytest.fixture
def issue(signer: EcSigner) -> Callable[..., IssuedToken]:
    """A token from the real issuer code, signed by `signer`."""

    def issue_(**overrides: Any) -> IssuedToken:
        args: dict[str, Any] = {
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "subject": "user-123",
            "client_id": "client-abc",
            "scope": "payments:read",
            "ttl_s": 600,
        }
        return issue_access_token(signer, **{**args, **overrides})

    return issue_


@pytest.fixture
def verifier(signer: EcSigner) -> TokenVerifier:
    return TokenVerifier(
        StaticKeySet({signer.kid: signer.public_key}), issuer=ISSUER, audience=AUDIENCE
    )


MakeToken = Callable[..., str]


@pytest.fixture
def make_token(signer: EcSigner) -> MakeToken:
    """A hand-built compact JWS. `header`/`claims` override and `drop_header`/`drop_claims`
    remove members of a valid access token; `signature` replaces the raw signature bytes;
    `sign_with` signs with another key; `header_bytes`/`payload_bytes` replace the JSON of a
    segment with arbitrary bytes (still base64url-encoded). Without `signature`, the token is
    validly signed whatever it contains."""

    def make(
        *,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
        drop_header: tuple[str, ...] = (),
        drop_claims: tuple[str, ...] = (),
        signature: bytes | None = None,
        sign_with: EcSigner | None = None,
        header_bytes: bytes | None = None,
        payload_bytes: bytes | None = None,
    ) -> str:
        now = int(time.time())
        base_header = {"alg": "ES256", "typ": "at+jwt", "kid": signer.kid}
        base_claims = {
            "iss": ISSUER,
            "sub": "user-123",
            "aud": AUDIENCE,
            "client_id": "client-abc",
            "scope": "payments:read",
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "jti": "jti-0001",
        }
        if header_bytes is None:
            header_bytes = _json(_merge(base_header, header, drop_header))
        if payload_bytes is None:
            payload_bytes = _json(_merge(base_claims, claims, drop_claims))
        head, body = b64url(header_bytes), b64url(payload_bytes)
        signing_input = f"{head}.{body}"
        if signature is None:
            signature = der_to_raw((sign_with or signer).sign_der(signing_input.encode("ascii")))
        return f"{signing_input}.{b64url(signature)}"

    return make
