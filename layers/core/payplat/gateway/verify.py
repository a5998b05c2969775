"""Validating access tokens (RFC 9068 profile, RFC 8725 best practices).

pyjwt is safe by default against `alg: none`, HMAC-with-public-key and never dereferences
jku/x5u; what it does not do on its own is done here: require every claim we rely on, check
`typ`, cap sizes, refuse key-carrying and `crit` headers, and bound the clock skew.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

import jwt

from payplat.gateway.keyset import KeySource

MAX_TOKEN_CHARS = 8192
MAX_HEADER_CHARS = 1024
LEEWAY_S = 10
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope")
_ACCEPTED_TYP = {"at+jwt", "application/at+jwt"}
_FORBIDDEN_HEADERS = {"jku", "x5u", "jwk", "x5c", "crit"}
_KID = re.compile(r"^[A-Za-z0-9_-]{1,128}\Z")
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+\Z")
_BEARER = re.compile(r"^Bearer +([A-Za-z0-9._~+/-]+=*) *\Z", re.IGNORECASE)
_SCHEMED = re.compile(r"^(Bearer|DPoP) +([A-Za-z0-9._~+/-]+=*) *\Z", re.IGNORECASE)
_JKT = re.compile(r"^[A-Za-z0-9_-]{43}\Z")  # base64url of a SHA-256

# The one algorithm access tokens are signed with (KMS ECC_NIST_P256); the issuer signs
# with it, the verifier allows nothing else.
ALGORITHM = "ES256"


class InvalidToken(Exception):
    """The token cannot be trusted. `reason` is a short code for audit and metrics."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AccessClaims:
    subject: str
    client_id: str
    scopes: frozenset[str]
    jti: str
    expires_at: int
    issued_at: int = 0
    plan: str | None = None
    jkt: str | None = None  # cnf.jkt (RFC 9449): bound to this DPoP key

    @property
    def scope(self) -> str:
        return " ".join(sorted(self.scopes))


def bearer_token(authorization: str | None) -> str:
    """The token of an RFC 6750 `Authorization: Bearer <token>` header."""
    if not authorization:
        raise InvalidToken("missing_token")
    match = _BEARER.match(authorization)
    if match is None:
        raise InvalidToken("malformed_authorization_header")
    return match.group(1)


def presented_token(authorization: str | None) -> tuple[str, str]:
    """("Bearer" or "DPoP", the token) of an `Authorization` header (RFC 6750, RFC 9449 §7)."""
    if not authorization:
        raise InvalidToken("missing_token")
    match = _SCHEMED.match(authorization)
    if match is None:
        raise InvalidToken("malformed_authorization_header")
    return ("DPoP" if match.group(1).lower() == "dpop" else "Bearer"), match.group(2)


def check_binding(scheme: str, claims: AccessClaims) -> None:
    """A DPoP-bound token only with the DPoP scheme (a copied one sent as Bearer is refused,
    RFC 9449 §7.1), and the DPoP scheme only with a bound token."""
    if claims.jkt is not None and scheme != "DPoP":
        raise InvalidToken("bound_token_as_bearer")
    if claims.jkt is None and scheme == "DPoP":
        raise InvalidToken("unbound_token_as_dpop")


class TokenVerifier:
    def __init__(self, keys: KeySource, *, issuer: str, audience: str) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience

    def verify(self, token: str) -> AccessClaims:
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken("token_too_large")
        segments = token.split(".")
        if len(segments) != 3 or not all(_SEGMENT.match(s) for s in segments):
            raise InvalidToken("malformed")
        if len(segments[0]) > MAX_HEADER_CHARS:
            raise InvalidToken("header_too_large")
        key = self._key_for(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_S,
                options={"require": list(REQUIRED_CLAIMS), "strict_aud": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise InvalidToken("not_yet_valid") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("wrong_audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("wrong_issuer") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"missing_{exc.claim}") from exc
        except jwt.InvalidSignatureError as exc:
            raise InvalidToken("bad_signature") from exc
        except jwt.DecodeError as exc:  # a payload or signature that does not decode
            raise InvalidToken("malformed") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("invalid") from exc
        return _access_claims(claims)

    def _key_for(self, token: str) -> Any:
        header = _header(token.split(".", 1)[0])
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("algorithm_not_allowed")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYP:
            raise InvalidToken("wrong_type")
        if _FORBIDDEN_HEADERS & header.keys():
            raise InvalidToken("forbidden_header")
        kid = header.get("kid")
        if not isinstance(kid, str) or not _KID.match(kid):
            raise InvalidToken("bad_kid")
        key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("unknown_kid")
        return key


def _header(segment: str) -> dict[str, Any]:
    """The JOSE header, decoded once here (pyjwt decodes it again when verifying; reading it
    through pyjwt first would double the per-request parsing)."""
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error) as exc:  # JSON and UTF-8 errors are ValueErrors
        raise InvalidToken("malformed_header") from exc
    if not isinstance(header, dict):
        raise InvalidToken("malformed_header")
    return header


def _access_claims(claims: dict[str, object]) -> AccessClaims:
    subject, client_id, scope, jti, exp, iat = (
        claims["sub"],
        claims["client_id"],
        claims["scope"],
        claims["jti"],
        claims["exp"],
        claims["iat"],
    )
    plan = claims.get("plan")
    jkt = _jkt(claims.get("cnf"))
    if not (
        isinstance(subject, str)
        and isinstance(client_id, str)
        and isinstance(scope, str)
        and isinstance(jti, str)
        and isinstance(exp, int)
        and isinstance(iat, int)
        and isinstance(plan, str | None)
        and subject
        and client_id
        and jti
    ):
        raise InvalidToken("bad_claim_type")
    return AccessClaims(
        subject=subject,
        client_id=client_id,
        scopes=frozenset(scope.split()),
        jti=jti,
        expires_at=exp,
        issued_at=iat,
        plan=plan,
        jkt=jkt,
    )


def _jkt(cnf: object) -> str | None:
    if cnf is None:
        return None
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not isinstance(jkt, str) or not _JKT.match(jkt):
        raise InvalidToken("bad_claim_type")  # a confirmation we cannot honour is no token
    return jkt
