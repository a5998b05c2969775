"""Dynamic client registration (RFC 7591) and its management protocol (RFC 7592), plus secret
rotation with overlap, so that a partner onboards and rolls credentials without a human.

Registering takes an initial access token (a client-credentials token with `clients:manage`,
checked by the API's authorizer); managing a registration takes the registration access token
returned with it. What a registration may do is set when it is created: an update may narrow
scopes and grants and change URIs, never widen them, move the plan or change whose money it
touches. Likewise the security flags `require_pushed_authorization_requests` (RFC 9126 §6)
and `dpop_bound_access_tokens` (RFC 9449 §5.2) may be turned on by an update, never off
(left out, they stay as they are).
Metadata the server does not understand is ignored (RFC 7591 §2).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from jwt import PyJWKSet
from jwt.exceptions import PyJWKSetError

from payplat.audit import events as audit
from payplat.clients.registry import (
    AUTH_METHODS,
    GRANT_AUTHORIZATION_CODE,
    GRANT_IMPLICIT,
    GRANT_PASSWORD,
    GRANT_REFRESH_TOKEN,
    GRANT_TYPES,
    PRIVATE_KEY_JWT,
    SECRET_BASIC,
    Client,
    ClientReader,
    ClientStore,
    register_client,
    rotate_secret,
)
from payplat.errors import OAuthError
from payplat.oauth import fapi
from payplat.oauth.authserver import AuthServer, record
from payplat.oauth.grants import digest, new_opaque
from payplat.oauth.token_endpoint import CLIENT_ONLY_SCOPES
from payplat.oauth.users import username_of
from payplat.routes import SCOPES

MAX_REDIRECT_URIS = 10
MAX_URI_CHARS = 2000
MAX_NAME_CHARS = 100
MAX_JWKS_KEYS = 5
DEFAULT_SCOPE = "payments:read"
DEFAULT_SECRET_OVERLAP_S = 86_400
MAX_SECRET_OVERLAP_S = 7 * 86_400
_RESPONSE_TYPE_OF = {GRANT_AUTHORIZATION_CODE: "code", GRANT_IMPLICIT: "token"}
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
_PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}

PlanExists = Callable[[str], bool]
# RFC 9126 §6 client metadata (and the Client field of the same name).
REQUIRE_PAR = "require_pushed_authorization_requests"
# RFC 9449 §5.2 client metadata: only DPoP-bound tokens for this client.
DPOP_BOUND = "dpop_bound_access_tokens"
# Flags that only tighten what a client may do: an update may turn them on, never off.
SECURITY_FLAGS = (REQUIRE_PAR, DPOP_BOUND)


class InvalidMetadata(OAuthError):
    def __init__(self, description: str, error: str = "invalid_client_metadata") -> None:
        super().__init__(error, description)


class InvalidRegistrationToken(OAuthError):
    """RFC 7592 §2: a bad registration access token is answered as RFC 6750 says."""

    def __init__(self) -> None:
        super().__init__("invalid_token", "The registration access token is not valid.", status=401)
        self.headers = {"WWW-Authenticate": 'Bearer realm="payplat", error="invalid_token"'}


def register(
    server: AuthServer,
    store: ClientStore,
    body: Mapping[str, Any],
    *,
    plan_exists: PlanExists,
    registrar: str,
    origin: audit.Origin,
) -> dict[str, Any]:
    """POST /oauth/register. `registrar` is the client whose initial access token was used."""
    metadata = _validated(server, body, plan_exists=plan_exists)
    registration_token = new_opaque()
    client, secret = register_client(
        store, **metadata, registration_token_hash=digest(registration_token)
    )
    record(
        "client.registered",
        "success",
        origin=origin,
        client_id=registrar,
        resource=f"client/{client.client_id}",
        registered_client_id=client.client_id,
        grant_types=sorted(client.grant_types),
        scope=" ".join(sorted(client.scopes)),
        auth_method=client.auth_method,
        plan=client.plan,
        owner=client.owner,
        require_pushed_authorization_requests=client.require_pushed_authorization_requests,
        dpop_bound_access_tokens=client.dpop_bound_access_tokens,
    )
    response = describe(server.issuer, client)
    response["registration_access_token"] = registration_token
    if secret is not None:
        response["client_secret"] = secret
        response["client_secret_expires_at"] = 0  # secrets do not expire; rotate them
    return response


def authorized_client(clients: ClientReader, client_id: str, authorization: str | None) -> Client:
    """The client a registration access token manages; 401 for anything else. `clients`
    must read the registration as stored now (no cache: a deletion counts at once)."""
    token = ""
    if authorization and authorization[:7].lower() == "bearer ":
        token = authorization[7:].strip()
    client = clients.get(client_id) if token and client_id else None
    expected = client.registration_token_hash if client else None
    if client is None or expected is None or not client.active:
        raise InvalidRegistrationToken()
    if not hmac.compare_digest(digest(token), expected):
        raise InvalidRegistrationToken()
    return client


def read(server: AuthServer, client: Client) -> dict[str, Any]:
    return describe(server.issuer, client)


def update(
    server: AuthServer,
    store: ClientStore,
    client: Client,
    body: Mapping[str, Any],
    *,
    plan_exists: PlanExists,
    origin: audit.Origin,
) -> dict[str, Any]:
    """RFC 7592 §2.2: the body replaces the metadata; omitted values take their defaults."""
    if body.get("client_id") != client.client_id:
        raise InvalidMetadata("client_id must be the registration's client_id.")
    if "client_secret" in body and not client.accepts_secret(
        str(body["client_secret"]), server.now()
    ):
        raise InvalidMetadata("client_secret does not match; rotate secrets at .../secret.")
    requested = {**body, "owner": body.get("owner", client.owner)}
    requested.setdefault("plan", client.plan)
    for flag in SECURITY_FLAGS:
        requested.setdefault(flag, getattr(client, flag))
    metadata = _validated(server, requested, plan_exists=plan_exists)
    if metadata["owner"] != client.owner:
        raise InvalidMetadata("owner cannot change: register a new client instead.")
    if metadata["plan"] != client.plan:
        raise InvalidMetadata("plan is set by the platform, not by the registration.")
    if not metadata["scopes"] <= client.scopes:
        raise InvalidMetadata("scope may be narrowed, never widened.")
    if not metadata["grant_types"] <= client.grant_types:
        # Adding a grant (a legacy one above all) needs the platform, like registering did.
        raise InvalidMetadata("grant_types may be narrowed, never widened.")
    for flag in SECURITY_FLAGS:
        if getattr(client, flag) and not metadata[flag]:
            raise InvalidMetadata(f"{flag} may be turned on, never off.")
    if (metadata["auth_method"] == PRIVATE_KEY_JWT) != (client.auth_method == PRIVATE_KEY_JWT):
        raise InvalidMetadata("Switching between secrets and private_key_jwt needs a new client.")
    updated = store.update(
        client.client_id,
        name=metadata["name"],
        scopes=metadata["scopes"],
        grant_types=metadata["grant_types"],
        redirect_uris=metadata["redirect_uris"],
        auth_method=metadata["auth_method"],
        jwks=metadata["jwks"],
        **{flag: metadata[flag] for flag in SECURITY_FLAGS},
    )
    if updated is None:
        raise InvalidRegistrationToken()
    record(
        "client.updated",
        "success",
        origin=origin,
        client_id=client.client_id,
        resource=f"client/{client.client_id}",
        grant_types=sorted(updated.grant_types),
        scope=" ".join(sorted(updated.scopes)),
        redirect_uris=list(updated.redirect_uris),
        require_pushed_authorization_requests=updated.require_pushed_authorization_requests,
        dpop_bound_access_tokens=updated.dpop_bound_access_tokens,
    )
    return describe(server.issuer, updated)


def delete(server: AuthServer, store: ClientStore, client: Client, *, origin: audit.Origin) -> None:
    """RFC 7592 §2.3: the client stops working, and so does every token it holds."""
    store.update(client.client_id, status="deleted", registration_token_hash=None)
    server.revoker.disable(client)
    record(
        "client.deleted",
        "success",
        origin=origin,
        client_id=client.client_id,
        resource=f"client/{client.client_id}",
    )


def rotate(
    server: AuthServer,
    store: ClientStore,
    client: Client,
    body: Mapping[str, Any],
    *,
    origin: audit.Origin,
    actor: str | None = None,
) -> dict[str, Any]:
    """A new secret; the current one keeps working for `overlap_seconds` (default a day)."""
    overlap = body.get("overlap_seconds", DEFAULT_SECRET_OVERLAP_S)
    if not isinstance(overlap, int) or isinstance(overlap, bool):
        raise InvalidMetadata("overlap_seconds must be an integer.")
    if not 0 <= overlap <= MAX_SECRET_OVERLAP_S:
        raise InvalidMetadata(f"overlap_seconds must be between 0 and {MAX_SECRET_OVERLAP_S}.")
    try:
        updated, secret = rotate_secret(store, client, overlap_s=overlap, now=server.now())
    except ValueError as exc:
        raise InvalidMetadata(str(exc)) from exc
    record(
        "client.secret_rotated",
        "success",
        origin=origin,
        client_id=actor or client.client_id,
        resource=f"client/{client.client_id}",
        overlap_seconds=overlap,
    )
    return {
        "client_id": updated.client_id,
        "client_secret": secret,
        "client_secret_expires_at": 0,
        "previous_secret_expires_at": updated.previous_secret_expires_at,
    }


def describe(issuer: str, client: Client) -> dict[str, Any]:
    """The registration as RFC 7591 §3.2.1 returns it (never a secret or its hash). Only a
    dynamically registered client holds a registration access token, so only its
    configuration URI is shown."""
    description: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": _epoch(client.created_at),
        "client_name": client.name,
        "grant_types": sorted(client.grant_types),
        "response_types": sorted(
            _RESPONSE_TYPE_OF[g] for g in client.grant_types if g in _RESPONSE_TYPE_OF
        ),
        "redirect_uris": list(client.redirect_uris),
        "scope": " ".join(sorted(client.scopes)),
        "token_endpoint_auth_method": client.auth_method,
        "plan": client.plan,
        "owner": client.owner,
        REQUIRE_PAR: client.require_pushed_authorization_requests,
        DPOP_BOUND: client.dpop_bound_access_tokens,
    }
    if issuer and client.registration_token_hash is not None:
        uri = f"{issuer.rstrip('/')}/oauth/register/{client.client_id}"
        description["registration_client_uri"] = uri
    if client.jwks is not None:
        description["jwks"] = client.jwks
    if client.previous_secret_expires_at is not None:
        description["previous_secret_expires_at"] = client.previous_secret_expires_at
    return description


# -- validation -------------------------------------------------------------------------------


def _validated(
    server: AuthServer, body: Mapping[str, Any], *, plan_exists: PlanExists
) -> dict[str, Any]:
    """Keyword arguments for register_client from request metadata, or InvalidMetadata."""
    if not isinstance(body, Mapping):
        raise InvalidMetadata("The body must be a JSON object.")
    name = body.get("client_name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
        raise InvalidMetadata(f"client_name is required (1-{MAX_NAME_CHARS} characters).")
    grants = grant_types_from(body)
    auth_method = body.get("token_endpoint_auth_method", SECRET_BASIC)
    if auth_method not in AUTH_METHODS:
        raise InvalidMetadata(f"token_endpoint_auth_method must be one of {AUTH_METHODS}.")
    if "jwks_uri" in body:
        raise InvalidMetadata("jwks_uri is not supported: register the keys inline as jwks.")
    plan = body.get("plan", "standard")
    if not isinstance(plan, str) or not plan_exists(plan):
        raise InvalidMetadata("plan is not a plan in force.")
    if server.fapi and auth_method not in fapi.AUTH_METHODS:
        raise InvalidMetadata("FAPI 2.0: token_endpoint_auth_method must be private_key_jwt.")
    if server.fapi and grants & fapi.FORBIDDEN_GRANTS:
        raise InvalidMetadata("FAPI 2.0: the password and implicit grants are not offered.")
    return {
        "name": name.strip(),
        "scopes": _scopes(body),
        "owner": _owner(server, body),
        "grant_types": grants,
        "plan": plan,
        "redirect_uris": redirect_uris_from(body, grants, local=server.local),
        "auth_method": auth_method,
        "jwks": jwks_from(body.get("jwks")) if auth_method == PRIVATE_KEY_JWT else None,
        **{flag: flag_from(body, flag) for flag in SECURITY_FLAGS},
    }


def flag_from(body: Mapping[str, Any], flag: str) -> bool:
    value = body.get(flag, False)
    if not isinstance(value, bool):
        raise InvalidMetadata(f"{flag} must be true or false.")
    return value


def grant_types_from(body: Mapping[str, Any]) -> frozenset[str]:
    grant_types = _string_list(body, "grant_types", [GRANT_AUTHORIZATION_CODE])
    if not grant_types or set(grant_types) - set(GRANT_TYPES):
        raise InvalidMetadata(f"grant_types must be among {', '.join(GRANT_TYPES)}.")
    grants = frozenset(grant_types)
    if GRANT_REFRESH_TOKEN in grants and not grants & {GRANT_AUTHORIZATION_CODE, GRANT_PASSWORD}:
        raise InvalidMetadata("refresh_token needs authorization_code (or password).")
    if "response_types" in body:
        expected = sorted(_RESPONSE_TYPE_OF[g] for g in grants if g in _RESPONSE_TYPE_OF)
        if sorted(_string_list(body, "response_types", [])) != expected:
            raise InvalidMetadata("response_types must match grant_types (RFC 7591 §2.1).")
    return grants


def redirect_uris_from(
    body: Mapping[str, Any], grants: frozenset[str], *, local: bool
) -> tuple[str, ...]:
    uris = tuple(_string_list(body, "redirect_uris", []))
    if grants & {GRANT_AUTHORIZATION_CODE, GRANT_IMPLICIT} and not uris:
        raise InvalidMetadata(
            "redirect_uris are required for these grant types.", "invalid_redirect_uri"
        )
    if len(uris) > MAX_REDIRECT_URIS:
        raise InvalidMetadata(f"At most {MAX_REDIRECT_URIS} redirect_uris.", "invalid_redirect_uri")
    for uri in uris:
        _check_redirect_uri(uri, local=local)
    return uris


def _scopes(body: Mapping[str, Any]) -> frozenset[str]:
    scope = body.get("scope", DEFAULT_SCOPE)
    if not isinstance(scope, str):
        raise InvalidMetadata("scope must be a space-separated string.")
    scopes = frozenset(scope.split())
    grantable = SCOPES.keys() - CLIENT_ONLY_SCOPES
    if not scopes or not scopes <= grantable:
        raise InvalidMetadata(f"scope must be among: {' '.join(sorted(grantable))}.")
    return scopes


def _owner(server: AuthServer, body: Mapping[str, Any]) -> str:
    """The account holder whose money the client moves: one that exists."""
    owner = body.get("owner")
    username = username_of(owner) if isinstance(owner, str) else None
    if username is None or server.users.get(username) is None:
        raise InvalidMetadata("owner must be the user id (usr_...) of an account holder.")
    assert isinstance(owner, str)  # noqa: S101 - username_of accepted it
    return owner


def _string_list(body: Mapping[str, Any], name: str, default: list[str]) -> list[str]:
    value = body.get(name, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidMetadata(f"{name} must be an array of strings.")
    return list(dict.fromkeys(value))


def _check_redirect_uri(uri: str, *, local: bool) -> None:
    """Absolute, no fragment (RFC 6749 §3.1.2), https; plain http only to this machine's
    loopback, and only in local mode (RFC 8252 §7.3 is for native apps; partners deploy)."""
    bad = InvalidMetadata(f"redirect_uri is not allowed: {uri[:200]}", "invalid_redirect_uri")
    if len(uri) > MAX_URI_CHARS:
        raise bad
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise bad from exc
    if parts.fragment or "#" in uri or parts.username or parts.password or not host:
        raise bad
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and local and _is_loopback(host):
        return
    raise bad


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def jwks_from(value: Any) -> dict[str, Any]:
    """An inline JWK Set of public keys only (a private member means the key leaked)."""
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        raise InvalidMetadata('private_key_jwt needs jwks: {"keys": [...]} with public keys.')
    keys = value["keys"]
    if not 1 <= len(keys) <= MAX_JWKS_KEYS:
        raise InvalidMetadata(f"jwks must hold 1-{MAX_JWKS_KEYS} keys.")
    if any(not isinstance(k, dict) or _PRIVATE_JWK_MEMBERS & k.keys() for k in keys):
        raise InvalidMetadata("jwks must hold public keys only.")
    try:
        PyJWKSet.from_dict(value)
    except (PyJWKSetError, ValueError, KeyError) as exc:
        raise InvalidMetadata("jwks does not hold a usable signing key.") from exc
    return {"keys": keys}


def _epoch(iso: str) -> int:
    try:
        return int(datetime.fromisoformat(iso).timestamp())
    except ValueError:
        return 0
