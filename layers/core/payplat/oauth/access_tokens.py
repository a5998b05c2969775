"""Issuing RFC 9068 access tokens: a JWT with `typ: at+jwt`, signed ES256 by a key that never
leaves KMS. The signer hands back DER; JWS wants raw r||s (RFC 7518 §3.4)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from payplat.gateway.verify import ALGORITHM
from payplat.oauth.jwk import b64url

TOKEN_TYPE = "at+jwt"
_COORDINATE_BYTES = 32


class Signer(Protocol):
    """Signs with the platform's private key (KMS in AWS and locally, via moto)."""

    @property
    def kid(self) -> str: ...

    def sign_der(self, message: bytes) -> bytes:
        """ECDSA P-256 SHA-256 over `message`, DER-encoded."""
        ...


class KeyPublisher(Signer, Protocol):
    """A signer that can also hand out its public key (DER SubjectPublicKeyInfo)."""

    def public_key_der(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    jti: str
    expires_in: int
    scope: str
    jkt: str | None = None  # bound to this DPoP key (cnf.jkt)


def der_to_raw(signature: bytes) -> bytes:
    r, s = decode_dss_signature(signature)
    return r.to_bytes(_COORDINATE_BYTES, "big") + s.to_bytes(_COORDINATE_BYTES, "big")


def issue_access_token(
    signer: Signer,
    *,
    issuer: str,
    audience: str,
    subject: str,
    client_id: str,
    scope: str,
    ttl_s: int,
    plan: str | None = None,
    now: int | None = None,
    jkt: str | None = None,
) -> IssuedToken:
    issued_at = int(time.time()) if now is None else now
    jti = secrets.token_urlsafe(16)  # 128 bits
    header = {"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": signer.kid}
    claims: dict[str, str | int | dict[str, str]] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "client_id": client_id,
        "scope": scope,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + ttl_s,
        "jti": jti,
    }
    if plan is not None:  # informational for the gateway; the limiter reads the live plan
        claims["plan"] = plan
    if jkt is not None:  # RFC 9449 §6.1: only a request proving this key may use it
        claims["cnf"] = {"jkt": jkt}
    signing_input = f"{_segment(header)}.{_segment(claims)}".encode("ascii")
    signature = der_to_raw(signer.sign_der(signing_input))
    token = f"{signing_input.decode('ascii')}.{b64url(signature)}"
    return IssuedToken(token=token, jti=jti, expires_in=ttl_s, scope=scope, jkt=jkt)


def _segment(obj: Mapping[str, object]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode("utf-8"))
