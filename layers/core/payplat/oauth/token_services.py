"""Token introspection (RFC 7662) and revocation (RFC 7009), for authenticated clients.

A client may introspect and revoke the tokens issued to it; a client holding `clients:manage`
(the platform's own) may introspect any. Everything else about a token that is not the
caller's is answered as if the token did not exist (`active: false`; revocation's 200), so
neither endpoint tells one partner anything about another's tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.serialization import load_der_public_key

from payplat.audit import events as audit
from payplat.audit.metrics import TOKENS_REVOKED
from payplat.clients.registry import Client
from payplat.errors import OAuthError
from payplat.gateway.keyset import StaticKeySet
from payplat.gateway.verify import AccessClaims, InvalidToken, TokenVerifier
from payplat.oauth.authserver import AuthServer, record
from payplat.oauth.grants import ACTIVE, digest
from payplat.oauth.jwk import public_jwk
from payplat.observability import metric

ADMIN_SCOPE = "clients:manage"
_HINTS = {"access_token", "refresh_token"}
MAX_TOKEN_CHARS = 8192
INACTIVE: dict[str, Any] = {"active": False}


def introspect(
    server: AuthServer, caller: Client, form: Mapping[str, str], origin: audit.Origin
) -> dict[str, Any]:
    token = form.get("token", "")
    result = _introspect(server, caller, token, form.get("token_type_hint"))
    record(
        "token.introspected",
        "success",
        origin=origin,
        client_id=caller.client_id,
        resource="oauth/introspect",
        active=result["active"],
        jti=result.get("jti"),
    )
    return result


def _introspect(server: AuthServer, caller: Client, token: str, hint: str | None) -> dict[str, Any]:
    if not token or len(token) > MAX_TOKEN_CHARS:
        return INACTIVE
    # The hint only orders the lookups (§2.1); a JWT has two dots, an opaque token none.
    if hint != "refresh_token" and token.count(".") == 2:
        return _introspect_access(server, caller, token)
    return _introspect_refresh(server, caller, token)


def _introspect_access(server: AuthServer, caller: Client, token: str) -> dict[str, Any]:
    claims = _verified(server, token)
    if claims is None or not _may_see(caller, claims.client_id):
        return INACTIVE
    client = server.clients.get(claims.client_id)
    if client is None or not client.active or server.revoker.listed.is_revoked(claims.jti):
        return INACTIVE
    body: dict[str, Any] = {
        "active": True,
        "scope": _held(claims.scope, client),
        "client_id": claims.client_id,
        "sub": claims.subject,
        "token_type": "DPoP" if claims.jkt else "Bearer",
        "exp": claims.expires_at,
        "iat": claims.issued_at,
        "nbf": claims.issued_at,
        "iss": server.settings.issuer,
        "aud": server.settings.audience,
        "jti": claims.jti,
    }
    if claims.jkt:  # RFC 9449 §6.2: a resource server must check the proof's key against it
        body["cnf"] = {"jkt": claims.jkt}
    return body


def _introspect_refresh(server: AuthServer, caller: Client, token: str) -> dict[str, Any]:
    refresh = server.grants.get_refresh(digest(token))
    if refresh is None or not _may_see(caller, refresh.client_id):
        return INACTIVE
    family = server.grants.get_family(refresh.family_id)
    client = server.clients.get(refresh.client_id)
    live = (
        refresh.status == ACTIVE
        and server.now() < refresh.expires_at
        and family is not None
        and family.status == ACTIVE
        and client is not None
        and client.active
    )
    if not live or client is None:
        return INACTIVE
    return {
        "active": True,
        "scope": _held(refresh.scope, client),
        "client_id": refresh.client_id,
        "sub": refresh.user_id,
        "token_type": "refresh_token",
        "exp": refresh.expires_at,
        "iss": server.settings.issuer,
    }


def _held(scope: str, client: Client) -> str:
    """A token's scope as far as its client's registration still holds it: a resource
    server trusting introspection sees what the gate enforces, not what was once issued."""
    return " ".join(name for name in scope.split() if name in client.scopes)


def revoke(
    server: AuthServer, caller: Client, form: Mapping[str, str], origin: audit.Origin
) -> None:
    """RFC 7009 §2.2: unknown, invalid or already revoked tokens are not an error."""
    token = form.get("token", "")
    hint = form.get("token_type_hint")
    if not token or len(token) > MAX_TOKEN_CHARS:
        return
    if hint not in (None, *_HINTS):
        raise OAuthError("unsupported_token_type", "token_type_hint is not supported.")
    if hint != "refresh_token" and token.count(".") == 2:
        claims = _verified(server, token)
        if claims is not None and claims.client_id == caller.client_id:
            server.revoker.revoke_access_token(caller.client_id, claims.jti, claims.expires_at)
            _revoked(origin, caller, "access_token", jti=claims.jti)
        return
    refresh = server.grants.get_refresh(digest(token))
    if refresh is None or refresh.client_id != caller.client_id:
        return
    # A refresh token stands for its whole grant: revoke the family and its access tokens.
    family = server.grants.revoke_family(refresh.family_id)
    server.grants.revoke_refresh(refresh.token_hash)
    jtis = sorted(family.jtis) if family else []
    for jti in jtis:
        server.revoker.revoke_access_token(caller.client_id, jti)
    _revoked(origin, caller, "refresh_token", family_id=refresh.family_id, revoked_jtis=jtis)


def _revoked(origin: audit.Origin, caller: Client, kind: str, **details: Any) -> None:
    record(
        "token.revoked",
        "success",
        origin=origin,
        client_id=caller.client_id,
        resource="oauth/revoke",
        token_type=kind,
        **details,
    )
    metric(TOKENS_REVOKED, token_type=kind)


def _may_see(caller: Client, owner_client_id: str) -> bool:
    return caller.client_id == owner_client_id or ADMIN_SCOPE in caller.scopes


def _verified(server: AuthServer, token: str) -> AccessClaims | None:
    """The claims of one of our own live access tokens; None for anything else (expired,
    foreign, forged, malformed). Revoking an expired token has nothing left to stop."""
    keys: dict[str, Any] = {}
    for signer in server.keys.published():
        der = signer.public_key_der()
        keys[public_jwk(der)["kid"]] = load_der_public_key(der)
    verifier = TokenVerifier(
        StaticKeySet(keys), issuer=server.settings.issuer, audience=server.settings.audience
    )
    try:
        return verifier.verify(token)
    except InvalidToken:
        return None
