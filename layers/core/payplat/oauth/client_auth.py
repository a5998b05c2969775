"""Client authentication at the token, introspection and revocation endpoints: a secret
(HTTP Basic or the form, RFC 6749 §2.3.1) or a signed assertion (private_key_jwt, RFC 7523
§2.2 with the audience rules of RFC 7523bis: `aud` is our issuer, nothing else).

Every failure is the same `invalid_client` to the caller; the reason goes to the audit log.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote_plus

import jwt
from jwt import PyJWKSet

from payplat.clients.registry import (
    PRIVATE_KEY_JWT,
    SECRET_BASIC,
    SECRET_METHODS,
    SECRET_POST,
    Client,
    ClientReader,
)
from payplat.errors import InvalidClient, OAuthError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("ES256", "PS256", "RS256")
MAX_ASSERTION_LIFETIME_S = 300
MAX_ASSERTION_CHARS = 4096
LEEWAY_S = 10
_KEY_TYPE = {"ES256": "EC", "PS256": "RSA", "RS256": "RSA"}


class AssertionLog(Protocol):
    def claim_assertion(self, client_id: str, jti: str, expires_at: int) -> bool:
        """Record that `jti` was used; False if it was used before (a replay)."""
        ...


@dataclass(frozen=True, slots=True)
class Authenticated:
    client: Client
    method: str


@dataclass(frozen=True, slots=True)
class Presented:
    """What the request offers as client authentication, before anything is checked."""

    client_id: str
    method: str
    secret: str | None = None
    assertion: str | None = None


def presented(authorization: str | None, form: Mapping[str, str]) -> Presented:
    """The client's credentials from the request; more than one method, or none, is an
    error (RFC 6749 §2.3)."""
    basic = bool(authorization and authorization[:6].lower() == "basic ")
    methods = [basic, "client_secret" in form, "client_assertion" in form]
    if sum(methods) > 1:
        raise OAuthError("invalid_request", "Use one client authentication method only.")
    if basic:
        assert authorization is not None  # noqa: S101 - `basic` says it is there
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
            raw_id, raw_secret = decoded.split(":", 1)
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise InvalidClient("Malformed HTTP Basic credentials.") from exc
        # §2.3.1: id and secret are form-urlencoded before Basic encoding.
        return Presented(unquote_plus(raw_id), SECRET_BASIC, secret=unquote_plus(raw_secret))
    if "client_secret" in form and form.get("client_id"):
        return Presented(form["client_id"], SECRET_POST, secret=form["client_secret"])
    if "client_assertion" in form:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise InvalidClient("client_assertion_type must be jwt-bearer.")
        assertion = form["client_assertion"]
        subject = _assertion_subject(assertion)
        if form.get("client_id", subject) != subject:  # RFC 7521 §4.2
            raise InvalidClient("client_id does not match the client assertion.")
        return Presented(subject, PRIVATE_KEY_JWT, assertion=assertion)
    raise InvalidClient("Client authentication is required.")


def authenticate(
    credentials: Presented,
    *,
    clients: ClientReader,
    assertions: AssertionLog,
    issuer: str,
    clock: Callable[[], float] = time.time,
) -> Authenticated:
    client = clients.get(credentials.client_id) if credentials.client_id else None
    now = int(clock())
    if credentials.method == PRIVATE_KEY_JWT:
        if client is None or client.auth_method != PRIVATE_KEY_JWT or not client.jwks:
            raise InvalidClient()
        _verify_assertion(credentials.assertion or "", client, assertions, issuer, now)
    else:
        # Basic and post are one method for a secret client (both carry the same secret).
        matches = client is not None and client.accepts_secret(credentials.secret or "", now)
        if client is None or not matches or client.auth_method not in SECRET_METHODS:
            raise InvalidClient()
    if not client.active:
        raise InvalidClient()
    return Authenticated(client, credentials.method)


def _assertion_subject(assertion: str) -> str:
    """The client the assertion claims to come from (checked against its keys later)."""
    if len(assertion) > MAX_ASSERTION_CHARS:
        raise InvalidClient("The client assertion is too large.")
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise InvalidClient("The client assertion is not a JWT.") from exc
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or claims.get("iss") != subject:
        raise InvalidClient("The client assertion's iss and sub must be the client id.")
    return subject


def _verify_assertion(
    assertion: str, client: Client, assertions: AssertionLog, issuer: str, now: int
) -> None:
    try:
        header = jwt.get_unverified_header(assertion)
        key = _client_key(client.jwks or {}, header)
        claims: dict[str, Any] = jwt.decode(
            assertion,
            key,
            algorithms=[header["alg"]],  # the one _client_key matched to the key's type
            audience=issuer,
            issuer=client.client_id,
            options={
                "require": ["iss", "sub", "aud", "exp", "jti"],
                "strict_aud": True,
                # Times are judged below against the server's clock (injectable in tests).
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
        raise InvalidClient("The client assertion did not verify.") from exc
    if claims["sub"] != client.client_id:
        raise InvalidClient("The client assertion's sub must be the client id.")
    expires_at, jti, not_before = claims["exp"], claims["jti"], claims.get("nbf", now)
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise InvalidClient("The client assertion needs a jti.")
    if not _is_time(expires_at) or not _is_time(not_before):
        raise InvalidClient("The client assertion's exp and nbf must be NumericDates.")
    if expires_at + LEEWAY_S <= now or not_before - LEEWAY_S > now:
        raise InvalidClient("The client assertion has expired or is not valid yet.")
    if expires_at - now > MAX_ASSERTION_LIFETIME_S:
        raise InvalidClient("The client assertion must expire within 5 minutes.")
    if not assertions.claim_assertion(client.client_id, jti, int(expires_at) + LEEWAY_S):
        raise InvalidClient("The client assertion was used before.")


def _is_time(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _client_key(jwks: dict[str, Any], header: dict[str, Any]) -> Any:
    """The registered key the assertion names (by kid), or the only one there is."""
    if header.get("alg") not in ASSERTION_ALGORITHMS:
        raise ValueError("algorithm not allowed")
    if {"jku", "x5u", "jwk", "x5c"} & header.keys():
        raise ValueError("key-carrying headers are refused")
    keys = PyJWKSet.from_dict(jwks).keys
    kid = header.get("kid")
    candidates = [k for k in keys if kid is None or k.key_id == kid]
    if len(candidates) != 1:
        raise ValueError("no single registered key matches the assertion")
    # ES256 needs an EC key, PS256/RS256 an RSA one: a mismatch is a refusal, not a crash.
    if candidates[0].key_type != _KEY_TYPE[header["alg"]]:
        raise ValueError("the algorithm does not fit the registered key")
    return candidates[0].key
