"""The authorization server's endpoints as domain functions: token (client credentials),
RFC 8414 metadata and the JWKS."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote_plus

from payplat import audit
from payplat.auth.jwk import public_jwk
from payplat.auth.tokens import ALGORITHM, Signer, issue_access_token
from payplat.clients import GRANT_CLIENT_CREDENTIALS, ClientReader, authenticate_client
from payplat.config import OAuthSettings, TokenSettings
from payplat.errors import InvalidClient, OAuthError
from payplat.observability import count
from payplat.routes import SCOPES

AUTH_METHODS = ("client_secret_basic", "client_secret_post")
SUPPORTED_GRANTS = (GRANT_CLIENT_CREDENTIALS,)
MAX_PARAM_CHARS = 2048


class KeyPublisher(Signer, Protocol):
    """A signer that can also hand out its public key (DER SubjectPublicKeyInfo)."""

    def public_key_der(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    client_secret: str
    method: str  # one of AUTH_METHODS


def client_credentials(authorization: str | None, form: Mapping[str, str]) -> ClientCredentials:
    """The client's credentials from HTTP Basic (RFC 6749 §2.3.1) or the form body; using
    both at once, or neither, is an error."""
    in_form = "client_secret" in form
    if authorization and authorization[:6].lower() == "basic ":
        if in_form:
            raise OAuthError("invalid_request", "Use one client authentication method only.")
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
            raw_id, raw_secret = decoded.split(":", 1)
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise InvalidClient("Malformed HTTP Basic credentials.") from exc
        # §2.3.1: id and secret are form-urlencoded before Basic encoding.
        return ClientCredentials(unquote_plus(raw_id), unquote_plus(raw_secret), AUTH_METHODS[0])
    if in_form and form.get("client_id"):
        return ClientCredentials(form["client_id"], form["client_secret"], AUTH_METHODS[1])
    raise InvalidClient("Client authentication is required.")


def token(
    form: Mapping[str, str],
    credentials: ClientCredentials,
    *,
    clients: ClientReader,
    signer: Signer,
    settings: OAuthSettings,
    origin: audit.Origin,
) -> dict[str, Any]:
    """POST /oauth/token. Returns the RFC 6749 §5.1 body; raises OAuthError (§5.2). The
    caller has throttled the request (per IP and client id) before this runs."""
    grant_type = form.get("grant_type", "")
    try:
        if any(len(value) > MAX_PARAM_CHARS for value in form.values()):
            raise OAuthError("invalid_request", "A parameter is too long.")
        client = authenticate_client(clients, credentials.client_id, credentials.client_secret)
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required.")
        if grant_type not in SUPPORTED_GRANTS:
            raise OAuthError("unsupported_grant_type", f"Unsupported grant_type: {grant_type}.")
        if grant_type not in client.grant_types:
            raise OAuthError("unauthorized_client", "This client may not use this grant type.")
        scopes = _granted_scopes(form.get("scope"), client.scopes)
    except OAuthError as exc:
        _refused(credentials.client_id, grant_type, exc, origin)
        raise

    issued = issue_access_token(
        signer,
        issuer=settings.issuer,
        audience=settings.audience,
        subject=client.client_id,  # RFC 9068 §2.2: the client itself when no user is involved
        client_id=client.client_id,
        scope=" ".join(sorted(scopes)),
        ttl_s=settings.access_token_ttl_s,
        plan=client.plan,
    )
    audit.record(
        audit.AuditEvent(
            type="token.issued",
            outcome="success",
            actor=audit.Actor(client_id=client.client_id, sub=client.client_id),
            origin=origin,
            resource="oauth/token",
            details={
                "grant_type": grant_type,
                "jti": issued.jti,
                "scope": issued.scope,
                "auth_method": credentials.method,
            },
        )
    )
    count("TokensIssued", grant_type=grant_type)
    return {
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    }


def _granted_scopes(requested: str | None, allowed: frozenset[str]) -> frozenset[str]:
    """§3.3: no `scope` means the client's registered scopes; a request may only narrow."""
    if requested is None or not requested.strip():
        return allowed
    wanted = frozenset(requested.split())
    if not wanted <= allowed:
        raise OAuthError("invalid_scope", "The requested scope exceeds what the client holds.")
    return wanted


def _refused(client_id: str, grant_type: str, exc: OAuthError, origin: audit.Origin) -> None:
    audit.record(
        audit.AuditEvent(
            type="token.refused",
            outcome="failure",
            actor=audit.Actor(client_id=client_id[:64] or None),
            origin=origin,
            resource="oauth/token",
            reason=exc.error,
            details={"grant_type": grant_type[:64]},
        )
    )
    count("TokensRefused", error=exc.error)


def metadata(settings: TokenSettings) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    issuer = settings.issuer.rstrip("/")
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": list(SUPPORTED_GRANTS),
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "response_types_supported": [],
        "scopes_supported": sorted(SCOPES),
        "token_endpoint_auth_signing_alg_values_supported": [ALGORITHM],
        "access_token_signing_alg_values_supported": [ALGORITHM],
        "service_documentation": f"{issuer}/docs",
    }


def jwks(publisher: KeyPublisher) -> dict[str, Any]:
    """RFC 7517 key set: the public half of every key whose tokens may still be live."""
    return {"keys": [public_jwk(publisher.public_key_der())]}
