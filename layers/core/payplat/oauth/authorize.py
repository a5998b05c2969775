"""The authorization endpoint (RFC 6749 §3.1, with PKCE per RFC 7636 and the `iss` response
parameter of RFC 9207): the account holder logs in, sees what the app asks for, and says yes
or no; the app gets a code (or, for the legacy implicit grant, a token) at its redirect URI.

GET validates the request and shows the login page; every later step is a POST of the same
page's form, which carries the request id and a CSRF token that must match both the stored
digest and a cookie scoped to this request (so a form cannot be submitted from a browser that
did not start the request: login CSRF). Errors about the client or its redirect URI are shown
on the page and never redirected (RFC 6749 §4.1.2.1): the redirect target is not trusted.

A client may push its request first (RFC 9126, `par`): the page is then opened with only
`client_id` and `request_uri`, and the pushed parameters, checked here again, are used. A
request_uri is redeemed once; one that is unknown, expired, used or another client's is shown
on the page. A client registered with `require_pushed_authorization_requests` (or every
client, when the server requires it) must push.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from payplat.audit import events as audit
from payplat.audit.metrics import LOGIN_FAILED, TOKENS_ISSUED
from payplat.clients.registry import GRANT_AUTHORIZATION_CODE, GRANT_IMPLICIT, Client
from payplat.errors import OAuthError
from payplat.gateway.enforce import RateLimited
from payplat.oauth import fapi
from payplat.oauth.authserver import AuthServer, record
from payplat.oauth.grants import (
    AUTHORIZATION_REQUEST_TTL_S,
    CODE_TTL_S,
    REQUEST_URI_PREFIX,
    AuthorizationCode,
    PendingAuthorization,
    digest,
    new_id,
    new_opaque,
    valid_challenge,
)
from payplat.oauth.token_endpoint import granted_scopes, user_scopes
from payplat.oauth.users import authenticate_user
from payplat.observability import metric
from payplat.routes import SCOPES

CSRF_COOKIE_PREFIX = "payplat_csrf_"
MAX_STATE_CHARS = 512
MAX_PARAM_CHARS = 2048
_RESPONSE_TYPES = {"code": GRANT_AUTHORIZATION_CODE, "token": GRANT_IMPLICIT}
# What the page reads of an authorization request besides client_id (and so what a pushed
# request keeps).
AUTHORIZATION_PARAMETERS = (
    "response_type",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


# -- what the handler renders -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoginScreen:
    client_name: str
    request_id: str
    csrf: str
    username: str = ""
    error: str | None = None
    new_cookie: bool = False  # set the CSRF cookie with this answer


@dataclass(frozen=True, slots=True)
class ConsentScreen:
    client_name: str
    user_name: str
    scopes: list[tuple[str, str]]  # (scope, its plain words)
    accounts: list[tuple[str, str]]  # (account id, currency)
    request_id: str
    csrf: str


@dataclass(frozen=True, slots=True)
class ErrorScreen:
    status: int
    title: str
    message: str


@dataclass(frozen=True, slots=True)
class ThrottledScreen:
    """The login form again, refusing for now (429 with Retry-After)."""

    client_name: str
    request_id: str
    csrf: str
    username: str
    retry_after_s: int


@dataclass(frozen=True, slots=True)
class Redirect:
    location: str
    request_id: str | None = None  # whose CSRF cookie to clear


Screen = LoginScreen | ConsentScreen | ErrorScreen | ThrottledScreen | Redirect


def csrf_cookie_name(request_id: str) -> str:
    return CSRF_COOKIE_PREFIX + request_id


class _Redirectable(Exception):
    """A request error the client may hear about at its (validated) redirect URI."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


# -- GET /oauth/authorize -----------------------------------------------------------------------


def start(server: AuthServer, query: Mapping[str, Sequence[str]], origin: audit.Origin) -> Screen:
    """Validate the authorization request; the login page, or an error."""
    client = server.clients.get(_first(query, "client_id"))
    if client is None or not client.active:
        return _refuse_on_page(origin, None, "unknown_client", "This application is not known.")
    if "request_uri" in query:
        # RFC 9126 §4: the pushed parameters, and nothing else of the query.
        pushed = _pushed(server, client, query, origin)
        if isinstance(pushed, ErrorScreen):
            return pushed
        query = pushed
    elif fapi.par_required(server.settings, client):
        return _refuse_on_page(
            origin,
            client.client_id,
            "pushed_request_required",
            "This application must push its authorization request first (RFC 9126).",
        )
    redirect_uri = _redirect_uri(client, query)
    if redirect_uri is None:
        return _refuse_on_page(
            origin,
            client.client_id,
            "invalid_redirect_uri",
            "The redirect URI is missing or is not registered for this application.",
        )
    response_type = _first(query, "response_type")
    fragment = response_type == "token"
    state = _first(query, "state")
    try:
        pending = _validated(
            server,
            client,
            query=query,
            redirect_uri=redirect_uri,
            response_type=response_type,
            state=state,
        )
    except _Redirectable as exc:
        record(
            "authorization.refused",
            "failure",
            origin=origin,
            client_id=client.client_id,
            resource="oauth/authorize",
            reason=exc.error,
        )
        return Redirect(_error_location(server, redirect_uri, exc, state, fragment=fragment))
    csrf = new_opaque()
    server.pending.put_pending(replace(pending, csrf_hash=digest(csrf)))
    return LoginScreen(client.name, pending.request_id, csrf, new_cookie=True)


def _pushed(
    server: AuthServer, client: Client, query: Mapping[str, Sequence[str]], origin: audit.Origin
) -> Mapping[str, Sequence[str]] | ErrorScreen:
    """The pushed request the request_uri names, redeemed (once) for this client."""
    values = query.get("request_uri") or []
    request_uri = values[0] if len(values) == 1 else ""
    pushed = None
    if request_uri.startswith(REQUEST_URI_PREFIX) and len(request_uri) <= MAX_PARAM_CHARS:
        pushed = server.pushed.take_pushed(digest(request_uri), client.client_id, server.now())
    if pushed is None:
        return _refuse_on_page(
            origin,
            client.client_id,
            "invalid_request_uri",
            "This sign-in link has expired or was already used: start again from the application.",
        )
    return {
        "client_id": [client.client_id],
        **{name: [value] for name, value in pushed.parameters.items()},
    }


def check_request(
    server: AuthServer, client: Client, parameters: Mapping[str, str]
) -> dict[str, str]:
    """The page's own checks, for a request `client` pushes (RFC 9126 §2.1): the parameters
    to keep, or OAuthError with the authorization endpoint's error code (§2.3)."""
    query = {name: [value] for name, value in parameters.items()}
    redirect_uri = _redirect_uri(client, query)
    if redirect_uri is None:
        raise OAuthError(
            "invalid_request", "redirect_uri is missing or is not registered for this client."
        )
    try:
        _validated(
            server,
            client,
            query=query,
            redirect_uri=redirect_uri,
            response_type=_first(query, "response_type"),
            state=_first(query, "state"),
        )
    except _Redirectable as exc:
        raise OAuthError(exc.error, exc.description) from exc
    return {name: parameters[name] for name in AUTHORIZATION_PARAMETERS if name in parameters}


def _validated(
    server: AuthServer,
    client: Client,
    *,
    query: Mapping[str, Sequence[str]],
    redirect_uri: str,
    response_type: str,
    state: str,
) -> PendingAuthorization:
    """The request as it will be kept (its CSRF digest is set once the token exists)."""
    repeated = sorted(name for name, values in query.items() if len(values) > 1)
    if repeated:
        raise _Redirectable("invalid_request", f"The parameter {repeated[0]} is repeated.")
    if any(len(values[0]) > MAX_PARAM_CHARS for values in query.values() if values):
        raise _Redirectable("invalid_request", "A parameter is too long.")
    if response_type not in _RESPONSE_TYPES or (server.settings.fapi and response_type != "code"):
        raise _Redirectable("unsupported_response_type", "response_type must be code.")
    if _RESPONSE_TYPES[response_type] not in client.grant_types:
        raise _Redirectable(
            "unauthorized_client", f"This client may not use response_type={response_type}."
        )
    if not state or len(state) > MAX_STATE_CHARS:
        raise _Redirectable("invalid_request", "state is required (at most 512 characters).")
    try:
        scopes = granted_scopes(_first(query, "scope") or None, user_scopes(client))
    except OAuthError as exc:
        raise _Redirectable("invalid_scope", exc.description) from exc
    if not scopes:
        raise _Redirectable("invalid_scope", "No scope an account holder can grant was asked.")
    challenge = ""
    if response_type == "code":
        method = _first(query, "code_challenge_method")
        challenge = _first(query, "code_challenge")
        if not challenge:
            raise _Redirectable("invalid_request", "PKCE is required: send a code_challenge.")
        if method != "S256":
            raise _Redirectable("invalid_request", "code_challenge_method must be S256.")
        if not valid_challenge(challenge):
            raise _Redirectable("invalid_request", "code_challenge is not a S256 challenge.")
    return PendingAuthorization(
        request_id=new_opaque(),
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        response_type=response_type,
        scope=" ".join(sorted(scopes)),
        state=state,
        code_challenge=challenge,
        csrf_hash="",
        expires_at=server.now() + AUTHORIZATION_REQUEST_TTL_S,
    )


def _redirect_uri(client: Client, query: Mapping[str, Sequence[str]]) -> str | None:
    """Exact match against the registration (RFC 9700 §4.1.3); may be left out only when
    the client registered exactly one."""
    values = query.get("redirect_uri") or []
    if len(values) > 1:
        return None
    if not values:
        return client.redirect_uris[0] if len(client.redirect_uris) == 1 else None
    return values[0] if values[0] in client.redirect_uris else None


# -- POST /oauth/authorize ----------------------------------------------------------------------


def submit(
    server: AuthServer,
    form: Mapping[str, str],
    cookies: Mapping[str, str],
    origin: audit.Origin,
) -> Screen:
    """A step of the login-and-consent page: `action` is login, approve or deny."""
    request_id = form.get("request_id", "")
    csrf = form.get("csrf", "")
    pending = _pending(server, request_id, csrf, cookies, origin)
    if isinstance(pending, ErrorScreen):
        return pending
    client = server.clients.get(pending.client_id)
    if client is None or not client.active:
        return ErrorScreen(400, "This application is no longer available", "Nothing was shared.")
    match form.get("action"):
        case "login":
            return _login(server, client, pending, form=form, csrf=csrf, origin=origin)
        case "approve":
            return _approve(server, client, pending, origin)
        case "deny":
            return _deny(server, client, pending, origin)
        case _:
            return ErrorScreen(400, "Unknown action", "Use the buttons on the page.")


def _pending(
    server: AuthServer,
    request_id: str,
    csrf: str,
    cookies: Mapping[str, str],
    origin: audit.Origin,
) -> PendingAuthorization | ErrorScreen:
    """The request this form continues, if it is live and the form came from the browser
    that started it."""
    pending = server.pending.get_pending(request_id) if request_id else None
    if pending is None or server.now() >= pending.expires_at:
        return ErrorScreen(
            400,
            "This sign-in request has expired",
            "Go back to the application and start again.",
        )
    cookie = cookies.get(csrf_cookie_name(request_id), "")
    if (
        csrf
        and hmac.compare_digest(csrf, cookie)
        and hmac.compare_digest(digest(csrf), pending.csrf_hash)
    ):
        return pending
    record(
        "authorization.refused",
        "failure",
        origin=origin,
        client_id=pending.client_id,
        resource="oauth/authorize",
        reason="csrf_mismatch",
    )
    return ErrorScreen(
        403,
        "This form could not be verified",
        "Start again from the application, in this browser, with cookies enabled.",
    )


def _login(
    server: AuthServer,
    client: Client,
    pending: PendingAuthorization,
    *,
    form: Mapping[str, str],
    csrf: str,
    origin: audit.Origin,
) -> Screen:
    username = form.get("username", "").strip()[:64]
    password = form.get("password", "")
    if not username or not password:
        return LoginScreen(
            client.name, pending.request_id, csrf, username, "Enter your username and password."
        )
    try:  # keyed as authenticate_user reads it: "Alice " cannot dodge alice's limit
        server.login_throttle(username.lower(), origin)
    except RateLimited as exc:
        retry_after = int(exc.headers.get("Retry-After", "60"))
        return ThrottledScreen(client.name, pending.request_id, csrf, username, retry_after)
    user = authenticate_user(server.users, username, password)
    if user is None:
        record(
            "login.failed",
            "failure",
            origin=origin,
            client_id=client.client_id,
            resource="oauth/authorize",
            reason="invalid_credentials",
            username=username,
        )
        metric(LOGIN_FAILED)
        return LoginScreen(
            client.name, pending.request_id, csrf, username, "The username or password is wrong."
        )
    server.pending.set_pending_user(pending.request_id, user.user_id)
    record(
        "login.succeeded",
        "success",
        origin=origin,
        client_id=client.client_id,
        sub=user.user_id,
        resource="oauth/authorize",
    )
    return ConsentScreen(
        client_name=client.name,
        user_name=user.display_name,
        scopes=[(scope, SCOPES[scope]) for scope in pending.scope.split()],
        accounts=server.accounts(user.user_id),
        request_id=pending.request_id,
        csrf=csrf,
    )


def _approve(
    server: AuthServer, client: Client, pending: PendingAuthorization, origin: audit.Origin
) -> Screen:
    if pending.user_id is None:
        return ErrorScreen(400, "Sign in first", "Go back to the application and start again.")
    if not server.pending.take_pending(pending.request_id):
        return ErrorScreen(400, "This request was already answered", "Nothing more to do here.")
    record(
        "consent.granted",
        "success",
        origin=origin,
        client_id=client.client_id,
        sub=pending.user_id,
        resource="oauth/authorize",
        scope=pending.scope,
        response_type=pending.response_type,
    )
    if pending.response_type == "token":
        return _implicit(server, client, pending, origin)
    code = new_opaque()
    server.grants.put_code(
        AuthorizationCode(
            code_hash=digest(code),
            client_id=client.client_id,
            redirect_uri=pending.redirect_uri,
            code_challenge=pending.code_challenge,
            scope=pending.scope,
            user_id=pending.user_id,
            family_id=new_id("fam_"),
            expires_at=server.now() + CODE_TTL_S,
        )
    )
    params = {"code": code, "state": pending.state, "iss": server.issuer}
    return Redirect(_append(pending.redirect_uri, params), pending.request_id)


def _implicit(
    server: AuthServer, client: Client, pending: PendingAuthorization, origin: audit.Origin
) -> Screen:
    """The legacy implicit grant (RFC 6749 §4.2): the token in the fragment, no refresh."""
    assert pending.user_id is not None  # noqa: S101 - checked by _approve
    issued = server.access_token(client, subject=pending.user_id, scope=pending.scope)
    record(
        "token.issued",
        "success",
        origin=origin,
        client_id=client.client_id,
        sub=pending.user_id,
        resource="oauth/authorize",
        grant_type=GRANT_IMPLICIT,
        jti=issued.jti,
        scope=issued.scope,
        legacy_grant=True,
    )
    metric(TOKENS_ISSUED, grant_type=GRANT_IMPLICIT)
    fragment = {
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": str(issued.expires_in),
        "scope": issued.scope,
        "state": pending.state,
        "iss": server.issuer,
    }
    return Redirect(f"{pending.redirect_uri}#{urlencode(fragment)}", pending.request_id)


def _deny(
    server: AuthServer, client: Client, pending: PendingAuthorization, origin: audit.Origin
) -> Screen:
    server.pending.take_pending(pending.request_id)
    record(
        "consent.denied",
        "failure",
        origin=origin,
        client_id=client.client_id,
        sub=pending.user_id,
        resource="oauth/authorize",
        reason="access_denied",
    )
    error = _Redirectable("access_denied", "The account holder denied the request.")
    location = _error_location(
        server,
        pending.redirect_uri,
        error,
        pending.state,
        fragment=pending.response_type == "token",
    )
    return Redirect(location, pending.request_id)


# -- helpers ------------------------------------------------------------------------------------


def _first(query: Mapping[str, Sequence[str]], name: str) -> str:
    values = query.get(name) or [""]
    return values[0]


def _refuse_on_page(
    origin: audit.Origin, client_id: str | None, reason: str, message: str
) -> ErrorScreen:
    record(
        "authorization.refused",
        "failure",
        origin=origin,
        client_id=client_id,
        resource="oauth/authorize",
        reason=reason,
    )
    return ErrorScreen(400, "This sign-in link is not valid", message)


def _error_location(
    server: AuthServer, redirect_uri: str, error: _Redirectable, state: str, *, fragment: bool
) -> str:
    params = {"error": error.error, "error_description": error.description, "iss": server.issuer}
    if state and len(state) <= MAX_STATE_CHARS:
        params["state"] = state
    if fragment:
        return f"{redirect_uri}#{urlencode(params)}"
    return _append(redirect_uri, params)


def _append(uri: str, params: Mapping[str, str]) -> str:
    """Add query parameters, keeping any the registered URI has (RFC 6749 §3.1.2)."""
    return f"{uri}{'&' if '?' in uri else '?'}{urlencode(params)}"
