"""The token endpoint (RFC 6749 §3.2) with every grant payplat supports, the RFC 8414
metadata document and the JWKS.

- client_credentials: the client acts for its owner; no refresh token.
- authorization_code: PKCE S256 always; the code is single use, and a second use revokes
  every token the first one produced.
- refresh_token: rotated on every use; presenting a rotated one revokes the whole family.
- password: only for clients registered with it (RFC 9700 retires it); audited as legacy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from payplat.audit import events as audit
from payplat.audit.metrics import TOKEN_REUSE_DETECTED, TOKENS_ISSUED, TOKENS_REFUSED
from payplat.clients.registry import (
    AUTH_METHODS,
    GRANT_AUTHORIZATION_CODE,
    GRANT_CLIENT_CREDENTIALS,
    GRANT_IMPLICIT,
    GRANT_PASSWORD,
    GRANT_REFRESH_TOKEN,
    LEGACY_GRANTS,
    Client,
)
from payplat.config import TokenSettings
from payplat.errors import OAuthError
from payplat.gateway.dpop import ALGORITHMS as DPOP_ALGORITHMS
from payplat.gateway.dpop import InvalidProof, Proof, verify_proof
from payplat.gateway.nonces import HEADER as NONCE_HEADER
from payplat.gateway.nonces import Nonces
from payplat.gateway.verify import ALGORITHM
from payplat.oauth import fapi
from payplat.oauth.access_tokens import IssuedToken
from payplat.oauth.authserver import AuthServer, record
from payplat.oauth.client_auth import ASSERTION_ALGORITHMS, Presented
from payplat.oauth.grants import (
    ACTIVE,
    ROTATED,
    Family,
    RefreshToken,
    digest,
    new_id,
    new_opaque,
    pkce_matches,
)
from payplat.oauth.jwk import public_jwk
from payplat.oauth.users import authenticate_user
from payplat.observability import logger, metric
from payplat.routes import SCOPES

TOKEN_GRANTS = (
    GRANT_CLIENT_CREDENTIALS,
    GRANT_AUTHORIZATION_CODE,
    GRANT_REFRESH_TOKEN,
    GRANT_PASSWORD,
)
MAX_PARAM_CHARS = 2048
# Platform scopes no account holder can delegate: only a client's own registration grants them.
CLIENT_ONLY_SCOPES = frozenset({"clients:manage"})


def token(
    server: AuthServer,
    form: Mapping[str, str],
    credentials: Presented,
    origin: audit.Origin,
    proof: Proof | None = None,
) -> dict[str, Any]:
    """POST /oauth/token. Returns the RFC 6749 §5.1 body; raises OAuthError (§5.2). The
    caller has throttled the request (per IP and client id) before this runs, and checked
    its DPoP proof, if any (`proof`: the tokens are bound to its key, RFC 9449 §5)."""
    grant_type = form.get("grant_type", "")
    try:
        if any(len(value) > MAX_PARAM_CHARS for value in form.values()):
            raise OAuthError("invalid_request", "A parameter is too long.")
        authenticated = server.authenticate(credentials)
        client = authenticated.client
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required.")
        if grant_type not in TOKEN_GRANTS:
            raise OAuthError("unsupported_grant_type", f"Unsupported grant_type: {grant_type}.")
        if grant_type not in client.grant_types:
            raise OAuthError("unauthorized_client", "This client may not use this grant type.")
        fapi.check_grant(server.settings, grant_type)
        jkt = bound_key(client, proof, required=fapi.dpop_required(server.settings, client))
        match grant_type:
            case "client_credentials":
                body, sub, jti = _client_credentials(server, client, form, jkt)
            case "authorization_code":
                body, sub, jti = _authorization_code(server, client, form, origin, jkt)
            case "refresh_token":
                body, sub, jti = _refresh_token(server, client, form, origin, jkt)
            case _:
                body, sub, jti = _password(server, client, form, origin, jkt)
    except OAuthError as exc:
        _refused(credentials.client_id, grant_type, exc, origin)
        raise
    record(
        "token.issued",
        "success",
        origin=origin,
        client_id=client.client_id,
        sub=sub,
        resource="oauth/token",
        grant_type=grant_type,
        jti=jti,
        scope=body["scope"],
        auth_method=authenticated.method,
        refresh_token_issued="refresh_token" in body,
        legacy_grant=grant_type in LEGACY_GRANTS or None,
        dpop_jkt=proof.jkt if proof else None,
    )
    metric(TOKENS_ISSUED, grant_type=grant_type)
    return body


def _client_credentials(
    server: AuthServer, client: Client, form: Mapping[str, str], jkt: str | None
) -> tuple[dict[str, Any], str, str]:
    scopes = granted_scopes(form.get("scope"), client.scopes)
    # RFC 9068 §2.2: the subject is the client itself when no account holder is involved.
    issued = server.access_token(
        client, subject=client.client_id, scope=" ".join(sorted(scopes)), jkt=jkt
    )
    return _body(issued), client.client_id, issued.jti


def _authorization_code(
    server: AuthServer,
    client: Client,
    form: Mapping[str, str],
    origin: audit.Origin,
    jkt: str | None,
) -> tuple[dict[str, Any], str, str]:
    code_value = form.get("code", "")
    if not code_value:
        raise OAuthError("invalid_request", "code is required.")
    code = server.grants.get_code(digest(code_value))
    now = server.now()
    if code is None or code.client_id != client.client_id:
        # Another client's code is as good as no code: say nothing about it.
        raise OAuthError("invalid_grant", "The authorization code is invalid.")
    if code.used:
        _revoke_family(server, code.family_id, "code_reuse", origin, client.client_id)
        raise OAuthError("invalid_grant", "The authorization code was already used.")
    if now >= code.expires_at:
        raise OAuthError("invalid_grant", "The authorization code has expired.")
    if form.get("redirect_uri") != code.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request.")
    verifier = form.get("code_verifier", "")
    if not verifier:
        raise OAuthError("invalid_grant", "code_verifier is required (PKCE).")
    if not pkce_matches(verifier, code.code_challenge):
        raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge.")

    scope = still_held(code.scope, client)
    issued = server.access_token(client, subject=code.user_id, scope=scope, jkt=jkt)
    refresh_value, refresh = _new_refresh(
        server, client, code.family_id, code.user_id, scope, jkt=jkt
    )
    family = Family(
        family_id=code.family_id,
        client_id=client.client_id,
        user_id=code.user_id,
        scope=scope,
        grant_type=GRANT_AUTHORIZATION_CODE,
        expires_at=refresh.expires_at if refresh else now + server.settings.access_token_ttl_s,
        jtis=frozenset({issued.jti}),
    )
    if not server.grants.redeem_code(code.code_hash, family, refresh, now):
        # Redeemed concurrently by someone else a moment ago: the same theft signal.
        _revoke_family(server, code.family_id, "code_reuse", origin, client.client_id)
        raise OAuthError("invalid_grant", "The authorization code was already used.")
    return _body(issued, refresh_value), code.user_id, issued.jti


def _refresh_token(
    server: AuthServer,
    client: Client,
    form: Mapping[str, str],
    origin: audit.Origin,
    jkt: str | None,
) -> tuple[dict[str, Any], str, str]:
    presented = form.get("refresh_token", "")
    if not presented:
        raise OAuthError("invalid_request", "refresh_token is required.")
    old = server.grants.get_refresh(digest(presented))
    now = server.now()
    if old is None or old.client_id != client.client_id:
        raise OAuthError("invalid_grant", "The refresh token is invalid.")
    if old.status == ROTATED:
        _revoke_family(server, old.family_id, "refresh_reuse", origin, client.client_id)
        raise OAuthError("invalid_grant", "The refresh token was already used.")
    if old.status != ACTIVE or now >= old.expires_at:
        raise OAuthError("invalid_grant", "The refresh token is no longer valid.")
    if old.jkt is not None and jkt != old.jkt:
        # A refresh token of a DPoP-bound grant is bound too: useless without its key.
        raise OAuthError(
            "invalid_dpop_proof", "This refresh token needs a DPoP proof signed by its key."
        )
    # The grant is bounded by what the client holds now: a scope its registration lost
    # (RFC 7592 update) is gone from the grant for good, even if it is given back later.
    held = still_held(old.scope, client)
    scope = " ".join(sorted(granted_scopes(form.get("scope"), frozenset(held.split()))))

    issued = server.access_token(client, subject=old.user_id, scope=scope, jkt=jkt)
    # The new refresh token keeps the grant's full (held) scope: narrowing by `scope`
    # applies to this access token only (RFC 6749 §6); and the grant's key binding.
    value, new = _new_refresh(server, client, old.family_id, old.user_id, held, jkt=old.jkt)
    assert new is not None  # noqa: S101 - the client holds the refresh_token grant
    outcome = server.grants.rotate_refresh(old, new, issued.jti, now)
    if outcome == "reused":
        _revoke_family(server, old.family_id, "refresh_reuse", origin, client.client_id)
        raise OAuthError("invalid_grant", "The refresh token was already used.")
    if outcome == "revoked":
        raise OAuthError("invalid_grant", "The refresh token is no longer valid.")
    return _body(issued, value), old.user_id, issued.jti


def _password(
    server: AuthServer,
    client: Client,
    form: Mapping[str, str],
    origin: audit.Origin,
    jkt: str | None,
) -> tuple[dict[str, Any], str, str]:
    username, password = form.get("username", ""), form.get("password", "")
    if not username or not password:
        raise OAuthError("invalid_request", "username and password are required.")
    server.login_throttle(username.strip().lower(), origin)  # 429 (audited) when exhausted
    user = authenticate_user(server.users, username, password)
    if user is None:
        record(
            "login.failed",
            "failure",
            origin=origin,
            client_id=client.client_id,
            resource="oauth/token",
            reason="invalid_credentials",
            grant_type=GRANT_PASSWORD,
        )
        raise OAuthError("invalid_grant", "The username or password is wrong.")
    record(
        "login.succeeded",
        "success",
        origin=origin,
        client_id=client.client_id,
        sub=user.user_id,
        resource="oauth/token",
        grant_type=GRANT_PASSWORD,
    )
    scopes = granted_scopes(form.get("scope"), user_scopes(client))
    scope = " ".join(sorted(scopes))
    issued = server.access_token(client, subject=user.user_id, scope=scope, jkt=jkt)
    family_id = new_id("fam_")
    value, refresh = _new_refresh(server, client, family_id, user.user_id, scope, jkt=jkt)
    if refresh is not None:
        family = Family(
            family_id=family_id,
            client_id=client.client_id,
            user_id=user.user_id,
            scope=scope,
            grant_type=GRANT_PASSWORD,
            expires_at=refresh.expires_at,
            jtis=frozenset({issued.jti}),
        )
        server.grants.start_family(family, refresh)
    return _body(issued, value), user.user_id, issued.jti


def _new_refresh(
    server: AuthServer,
    client: Client,
    family_id: str,
    user_id: str,
    scope: str,
    *,
    jkt: str | None = None,
) -> tuple[str | None, RefreshToken | None]:
    """A refresh token for the family, if the client is registered for refresh tokens."""
    if GRANT_REFRESH_TOKEN not in client.grant_types:
        return None, None
    value = new_opaque()
    refresh = RefreshToken(
        token_hash=digest(value),
        family_id=family_id,
        client_id=client.client_id,
        user_id=user_id,
        scope=scope,
        expires_at=server.now() + server.settings.refresh_token_ttl_s,
        jkt=jkt,
    )
    return value, refresh


def _revoke_family(
    server: AuthServer, family_id: str, reason: str, origin: audit.Origin, client_id: str
) -> None:
    """A spent code or a rotated refresh token came back: whoever holds the family's tokens
    may be a thief. Revoke every refresh token (the family) and every access token in it."""
    family = server.grants.revoke_family(family_id)
    if family is None:
        return
    for jti in sorted(family.jtis):
        server.revoker.revoke_access_token(family.client_id, jti)
    record(
        f"token.{reason}_detected",
        "failure",
        origin=origin,
        client_id=client_id,
        sub=family.user_id,
        resource="oauth/token",
        reason=reason,
        family_id=family_id,
        revoked_jtis=sorted(family.jtis),
    )
    metric(TOKEN_REUSE_DETECTED, kind=reason)


def _body(issued: IssuedToken, refresh_token: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": issued.token,
        "token_type": "DPoP" if issued.jkt else "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    }
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    return body


def token_proof(
    settings: TokenSettings,
    header: str | None,
    *,
    now: float,
    client_id: str,
    grant_type: str,
    origin: audit.Origin,
    nonces: Nonces | None = None,
) -> Proof | None:
    """The token request's DPoP proof (RFC 9449 §5), checked against the token endpoint's
    URL (and, where the deployment wants them, for a current nonce); None when it sent
    none. A bad one is invalid_dpop_proof (use_dpop_nonce, with the nonce to use, §8),
    audited like any refusal."""
    if header is None:
        return None
    try:
        return verify_proof(
            header,
            method="POST",
            url=f"{settings.issuer.rstrip('/')}/oauth/token",
            now=now,
            nonces=None if nonces is None else nonces.accepted(),
        )
    except InvalidProof as refused:
        nonce_wanted = refused.reason == "use_dpop_nonce"
        error = OAuthError(
            "use_dpop_nonce" if nonce_wanted else "invalid_dpop_proof", refused.message
        )
        if nonces is not None:
            error.headers = {NONCE_HEADER: nonces.current()}
        _refused(client_id, grant_type, error, origin)
        raise error from None


def bound_key(client: Client, proof: Proof | None, *, required: bool) -> str | None:
    """The key the grant's tokens are bound to: the proof's, if the request carried one. A
    client registered for DPoP-bound tokens only (RFC 9449 §5.2), or any client under the
    FAPI 2.0 profile, gets nothing without."""
    if proof is None and required:
        raise OAuthError("invalid_dpop_proof", "Only DPoP-bound tokens are issued here.")
    return proof.jkt if proof else None


def user_scopes(client: Client) -> frozenset[str]:
    """What an account holder can delegate to this client."""
    return client.scopes - CLIENT_ONLY_SCOPES


def still_held(scope: str, client: Client) -> str:
    """A holder's grant as far as the client's current registration still allows it;
    invalid_grant when nothing of it is left."""
    held = frozenset(scope.split()) & user_scopes(client)
    if not held:
        raise OAuthError("invalid_grant", "The client no longer holds any scope of this grant.")
    return " ".join(sorted(held))


def granted_scopes(requested: str | None, allowed: frozenset[str]) -> frozenset[str]:
    """§3.3: no `scope` means everything allowed; a request may only narrow."""
    if requested is None or not requested.strip():
        return allowed
    wanted = frozenset(requested.split())
    if not wanted <= allowed:
        raise OAuthError("invalid_scope", "The requested scope exceeds what the client holds.")
    return wanted


def _refused(client_id: str, grant_type: str, exc: OAuthError, origin: audit.Origin) -> None:
    record(
        "token.refused",
        "failure",
        origin=origin,
        client_id=client_id or None,
        resource="oauth/token",
        reason=exc.error,
        grant_type=grant_type[:64],
    )
    metric(TOKENS_REFUSED, error=exc.error)


def metadata(
    settings: TokenSettings, *, require_par: bool = False, fapi_profile: bool = False
) -> dict[str, Any]:
    """RFC 8414 authorization server metadata: exactly what this server supports and
    enforces. `require_par`: every client must push its authorization requests (RFC 9126
    §5); `fapi_profile`: the FAPI 2.0 Security Profile is on (payplat.oauth.fapi)."""
    issuer = settings.issuer.rstrip("/")
    auth_methods = list(fapi.AUTH_METHODS if fapi_profile else AUTH_METHODS)
    assertion_algs = list(fapi.ASSERTION_ALGORITHMS if fapi_profile else ASSERTION_ALGORITHMS)
    grants = [g for g in (*TOKEN_GRANTS, GRANT_IMPLICIT) if g not in fapi.FORBIDDEN_GRANTS]
    document = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "pushed_authorization_request_endpoint": f"{issuer}/oauth/par",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "registration_endpoint": f"{issuer}/oauth/register",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "scopes_supported": sorted(SCOPES),
        "response_types_supported": ["code"] if fapi_profile else ["code", "token"],
        "response_modes_supported": ["query"] if fapi_profile else ["query", "fragment"],
        "grant_types_supported": grants if fapi_profile else [*TOKEN_GRANTS, GRANT_IMPLICIT],
        # RFC 8414 allows extensions: these two are off unless a client is registered with
        # them, and every use is audited (RFC 9700 §2.4, OAuth 2.1 retire them).
        "legacy_grant_types_require_explicit_registration": sorted(LEGACY_GRANTS),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "access_token_signing_alg_values_supported": [ALGORITHM],
        "authorization_response_iss_parameter_supported": True,
        "require_pushed_authorization_requests": require_par or fapi_profile,
        "dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS),
        "service_documentation": f"{issuer}/docs",
    }
    if fapi_profile:
        del document["legacy_grant_types_require_explicit_registration"]  # none offered
        # No bearer token is issued: every token is DPoP-bound (RFC 9449 §5.2's client
        # metadata, here for every client).
        document["dpop_bound_access_tokens_required"] = True
    return document


def jwks(server: AuthServer) -> dict[str, Any]:
    """RFC 7517 key set: the public half of every key whose tokens may still be live (and of
    the next key, published before it signs)."""
    signing = server.keys.signer()
    keys = []
    for signer in server.keys.published():
        try:
            keys.append(public_jwk(signer.public_key_der()))
        except Exception:
            # A key created minutes ago may not be readable yet (IAM tag conditions take a
            # few minutes in KMS); it signs only later, so publish the rest meanwhile.
            if signer is signing:
                raise
            logger.warning("signing key not readable yet; left out of the JWKS")
    return {"keys": keys}
