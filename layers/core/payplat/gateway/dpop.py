"""DPoP proofs (RFC 9449): a JWT the client signs with its own key for each request, naming
the method and URL, so a stolen access token is useless without the private key.

Checked here, for the token endpoint (binding a new token to the key) and for the resource
routes' gate (the token's `cnf.jkt` must be the proof's key, `ath` the token's hash). What
this module cannot check alone is that a proof's `jti` is used once: the caller records it,
and for resource routes that record rides on the request's one limiter write.

pyjwt verifies the signature with the key from the proof's own header (that is DPoP's
design); everything else is checked explicitly: typ, an allow-list of algorithms, a public
key only, the claims, their sizes and the time window.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt

# ES256 first: what payplat's SDK uses; PS256 for RSA-only HSMs.
ALGORITHMS = ("ES256", "PS256")
TYP = "dpop+jwt"
SCHEME = "DPoP"
MAX_PROOF_CHARS = 4096
MAX_JTI_CHARS = 128
MAX_AGE_S = 60  # a proof is accepted this long after its iat...
MAX_SKEW_S = 5  # ...and this far ahead of our clock
MIN_RSA_BITS = 2048
_PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+\Z")
_DPOP_AUTHORIZATION = re.compile(r"^DPoP +([A-Za-z0-9._~+/-]+=*) *\Z", re.IGNORECASE)


class InvalidProof(Exception):
    """The DPoP proof cannot be trusted. `reason` is a short code for audit and metrics;
    the message is safe to show the caller."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Proof:
    jkt: str  # RFC 7638 thumbprint of the key that signed it
    jti: str
    issued_at: int

    @property
    def expires_at(self) -> int:
        """Until when a replay of it would still be in its window: remember it that long."""
        return self.issued_at + MAX_AGE_S + MAX_SKEW_S


def token_hash(access_token: str) -> str:
    """`ath`: base64url SHA-256 of the access token's ASCII."""
    return _b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 over the key type's required members, sorted, no whitespace."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None or not all(isinstance(jwk.get(name), str) for name in members):
        raise InvalidProof("bad_key", "The proof's jwk is not an EC or RSA public key.")
    canonical = json.dumps({name: jwk[name] for name in members}, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def dpop_token(authorization: str | None) -> str | None:
    """The token of `Authorization: DPoP <token>`, or None for any other scheme."""
    match = _DPOP_AUTHORIZATION.match(authorization or "")
    return match.group(1) if match else None


def normalized_url(url: str) -> str:
    """RFC 9449 §4.3: compared without query and fragment, scheme and host in lower case,
    the default port dropped (RFC 3986 §6.2.2-3)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if port is not None and (scheme, port) not in (("https", 443), ("http", 80)):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", "", ""))


def verify_proof(
    proof: str | None,
    *,
    method: str,
    url: str,
    now: float,
    access_token: str | None = None,
    nonces: Collection[str] | None = None,
) -> Proof:
    """The proof of a request to `method url`; with `access_token`, a proof for a resource
    request presenting that token (`ath`); with `nonces`, one carrying one of the server's
    current nonces. Raises InvalidProof otherwise."""
    if not proof:
        raise InvalidProof("missing_proof", "A DPoP proof is required (the DPoP header).")
    if len(proof) > MAX_PROOF_CHARS or "," in proof:
        raise InvalidProof("malformed", "Send exactly one DPoP proof, at most 4 KB.")
    segments = proof.split(".")
    if len(segments) != 3 or not all(_SEGMENT.match(s) for s in segments):
        raise InvalidProof("malformed", "The DPoP proof is not a compact JWS.")
    header = _json_segment(segments[0])
    jwk, alg = _signing_key(header)
    claims = _decoded(proof, _public_key(jwk, alg), alg)
    jti, iat = claims["jti"], claims["iat"]
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_CHARS:
        raise InvalidProof("bad_jti", "The DPoP proof's jti must be a string of 1-128 chars.")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise InvalidProof("bad_iat", "The DPoP proof's iat must be a number of seconds.")
    if iat > now + MAX_SKEW_S or iat < now - MAX_AGE_S:
        raise InvalidProof("stale", "The DPoP proof's iat is outside the accepted window.")
    if claims["htm"] != method.upper():
        raise InvalidProof("wrong_method", "The DPoP proof is for another HTTP method.")
    htu = claims["htu"]
    if not isinstance(htu, str) or normalized_url(htu) != normalized_url(url):
        raise InvalidProof("wrong_url", "The DPoP proof is for another URL.")
    if access_token is not None and claims.get("ath") != token_hash(access_token):
        raise InvalidProof("wrong_token", "The DPoP proof's ath is not this access token's.")
    if nonces is not None and claims.get("nonce") not in nonces:
        raise InvalidProof("use_dpop_nonce", "The DPoP proof must carry the server's nonce.")
    return Proof(jkt=thumbprint(jwk), jti=jti, issued_at=iat)


def _signing_key(header: dict[str, Any]) -> tuple[dict[str, Any], str]:
    if header.get("typ") != TYP:
        raise InvalidProof("wrong_type", "The DPoP proof's typ must be dpop+jwt.")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise InvalidProof("algorithm_not_allowed", f"DPoP proofs: {' or '.join(ALGORITHMS)}.")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or _PRIVATE_MEMBERS & jwk.keys():
        raise InvalidProof("bad_key", "The proof's header needs the public key as jwk.")
    return jwk, alg


def _decoded(proof: str, key: Any, alg: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            proof,
            key,
            algorithms=[alg],
            # The window is checked by the caller against its `now`, not pyjwt's clock.
            options={
                "require": ["jti", "htm", "htu", "iat"],
                "verify_aud": False,
                "verify_iat": False,
                "verify_exp": False,
                "verify_nbf": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise InvalidProof("bad_signature", "The DPoP proof's signature is wrong.") from None
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidProof(f"missing_{exc.claim}", f"The DPoP proof has no {exc.claim}.") from None
    except jwt.PyJWTError:
        raise InvalidProof("malformed", "The DPoP proof does not decode.") from None
    return claims


def _public_key(jwk: dict[str, Any], alg: str) -> Any:
    kty = jwk.get("kty")
    if (alg, kty) not in (("ES256", "EC"), ("PS256", "RSA")):
        raise InvalidProof("bad_key", f"An {alg} proof needs an {alg[:2]} key.")
    if kty == "EC" and jwk.get("crv") != "P-256":
        raise InvalidProof("bad_key", "ES256 proofs need a P-256 key.")
    try:
        key = jwt.PyJWK(jwk, algorithm=alg).key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, binascii.Error):
        raise InvalidProof("bad_key", "The proof's jwk is not a valid public key.") from None
    if kty == "RSA" and key.key_size < MIN_RSA_BITS:
        raise InvalidProof("bad_key", "RSA keys for DPoP must be 2048 bits or more.")
    return key


def _json_segment(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error):
        raise InvalidProof("malformed", "The DPoP proof's header does not decode.") from None
    if not isinstance(value, dict):
        raise InvalidProof("malformed", "The DPoP proof's header is not a JSON object.")
    return value


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
