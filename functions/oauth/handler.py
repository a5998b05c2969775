"""λ oauth: the authorization server — token, pushed authorization requests, authorize (login
and consent pages), introspect, revoke, dynamic registration, metadata and JWKS."""

from __future__ import annotations

import json
import time
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from aws_lambda_powertools.utilities.typing import LambdaContext

from payplat.clients.dal.clients_table import DynamoClientStore
from payplat.clients.registry import Client
from payplat.config import OAuthSettings, load
from payplat.errors import OAuthError
from payplat.gateway.access import Presented
from payplat.gateway.dal.rate_limit_table import DynamoBucketStore
from payplat.gateway.dal.wiring import dynamo_gate
from payplat.gateway.dpop import Proof
from payplat.gateway.nonces import HEADER as NONCE_HEADER
from payplat.gateway.plans import DEFAULT_PLANS, INTERNAL_PLANS
from payplat.gateway.revocation import Revoker
from payplat.http import (
    CLIENT_ID,
    NO_STORE,
    RESPONSE_HEADERS,
    bind,
    current_route,
    form_body,
    json_response,
    make_resolver,
    origin,
)
from payplat.oauth import authorize, pages, par, registration, token_services
from payplat.oauth import token_endpoint as oauth
from payplat.oauth.authserver import AuthServer
from payplat.oauth.client_auth import presented
from payplat.oauth.dal.kms_signer import KmsKeys
from payplat.oauth.dal.tokens_table import DynamoTokenStore
from payplat.oauth.dal.users_table import DynamoUserStore
from payplat.oauth.grants import AUTHORIZATION_REQUEST_TTL_S
from payplat.oauth.signing_keys import KeyRing
from payplat.observability import logger, tracer
from payplat.payments.dal.ledger_table import DynamoLedgerStore
from payplat.principal import Principal
from payplat.routes import Function

settings = load(OAuthSettings)
gate = dynamo_gate(
    settings.clients_table,
    settings.rate_limits_table,
    settings.config_cache_ttl_s,
    dpop_nonce=settings.dpop_nonce,
    sender_constrained=settings.fapi,
)
clients = DynamoClientStore(settings.clients_table)  # uncached: registration management
buckets = DynamoBucketStore(settings.rate_limits_table)
tokens = DynamoTokenStore(settings.tokens_table)
kms = KmsKeys()
server = AuthServer(
    settings=settings,
    clients=gate.clients,
    users=DynamoUserStore(settings.users_table),
    grants=tokens,
    pending=tokens,
    keys=KeyRing(
        tokens, kms, settings.signing_key_id, kms.signer, ttl_s=settings.config_cache_ttl_s
    ),
    revoker=Revoker(clients, buckets, buckets, tokens),
    assertions=tokens,
    accounts=DynamoLedgerStore(settings.ledger_table).accounts_of,
    login_throttle=gate.admit_login,
    pushed=tokens,
)
app = make_resolver(Function.OAUTH)

# Public documents: cacheable, so relying parties need not call us per token.
_PUBLIC_CACHE = {"Cache-Control": "public, max-age=300"}
# Where the browser posts the authorize page's forms and sends its CSRF cookie back: under
# the issuer's path (the stage, `/live`, in AWS; nothing locally), as the metadata says.
_AUTHORIZE_PATH = urlsplit(settings.issuer).path.rstrip("/") + "/oauth/authorize"
MAX_JSON_BYTES = 16 * 1024


# -- token endpoint and token services --------------------------------------------------------


@bind(app, "token")
def token() -> Response[str]:
    form = form_body(app)
    credentials = presented(app.current_event.headers.get("authorization"), form)
    caller = origin(app)
    proof = oauth.token_proof(
        settings,
        app.current_event.headers.get("dpop"),
        now=time.time(),
        client_id=credentials.client_id,
        grant_type=form.get("grant_type", ""),
        origin=caller,
        nonces=gate.nonces,
    )
    _throttle(credentials.client_id, proof)
    headers = dict(NO_STORE)
    if proof is not None and gate.nonces is not None:
        headers[NONCE_HEADER] = gate.nonces.current()  # the one to use next
    return json_response(200, oauth.token(server, form, credentials, caller, proof), headers)


@bind(app, "par")
def pushed_authorization_request() -> Response[str]:
    """RFC 9126: authenticated and throttled exactly as the token endpoint is."""
    form = form_body(app)
    credentials = presented(app.current_event.headers.get("authorization"), form)
    _throttle(credentials.client_id)
    return json_response(201, par.push(server, form, credentials, origin(app)), NO_STORE)


@bind(app, "introspect")
def introspect() -> Response[str]:
    form = form_body(app)
    caller = _authenticated_client(form)
    return json_response(
        200, token_services.introspect(server, caller, form, origin(app)), NO_STORE
    )


@bind(app, "revoke")
def revoke() -> Response[str]:
    form = form_body(app)
    caller = _authenticated_client(form)
    token_services.revoke(server, caller, form, origin(app))
    return Response(status_code=200, headers=NO_STORE)


def _authenticated_client(form: dict[str, str]) -> Client:
    credentials = presented(app.current_event.headers.get("authorization"), form)
    _throttle(credentials.client_id)
    return server.authenticate(credentials).client


def _throttle(client_id: str, proof: Proof | None = None) -> None:
    """Per source IP and per claimed client id, before any credential is checked (and the
    DPoP proof's one use, in the same write)."""
    headers = gate.admit_token_request(client_id, origin(app), proof)
    # The claimed id, admitted by the gate: the request log line names it (Contributor
    # Insights ranks partners by it).
    app.append_context(**{RESPONSE_HEADERS: headers, CLIENT_ID: client_id})


# -- the authorize page ---------------------------------------------------------------------


@bind(app, "authorize")
def authorize_page() -> Response[str]:
    query = app.current_event.multi_value_query_string_parameters or {}
    return _render(authorize.start(server, query, origin(app)))


@bind(app, "authorize_submit")
def authorize_submit() -> Response[str]:
    try:
        form = form_body(app)
    except OAuthError as exc:
        return _render(authorize.ErrorScreen(400, "The form could not be read", exc.description))
    return _render(authorize.submit(server, form, _cookies(), origin(app)))


def _cookies() -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(app.current_event.headers.get("cookie") or "")
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def _render(screen: authorize.Screen) -> Response[str]:
    hidden: dict[str, str]
    match screen:
        case authorize.Redirect(location=location, request_id=request_id):
            cookies = [_csrf_cookie(request_id, "", 0)] if request_id else []
            headers = {**NO_STORE, "Location": location}
            return Response(status_code=302, headers=headers, cookies=cookies)
        case authorize.LoginScreen():
            hidden = {"request_id": screen.request_id, "csrf": screen.csrf}
            html = pages.login_page(
                client_name=screen.client_name,
                action=_AUTHORIZE_PATH,
                hidden=hidden,
                username=screen.username,
                error=screen.error,
            )
            cookies = (
                [_csrf_cookie(screen.request_id, screen.csrf, AUTHORIZATION_REQUEST_TTL_S)]
                if screen.new_cookie
                else []
            )
            return _html(200, html, cookies)
        case authorize.ConsentScreen():
            hidden = {"request_id": screen.request_id, "csrf": screen.csrf}
            html = pages.consent_page(
                client_name=screen.client_name,
                user_name=screen.user_name,
                scopes=screen.scopes,
                accounts=screen.accounts,
                action=_AUTHORIZE_PATH,
                hidden=hidden,
            )
            return _html(200, html)
        case authorize.ThrottledScreen():
            html = pages.login_page(
                client_name=screen.client_name,
                action=_AUTHORIZE_PATH,
                hidden={"request_id": screen.request_id, "csrf": screen.csrf},
                username=screen.username,
                error=pages.throttled_message(retry_after_s=screen.retry_after_s),
            )
            response = _html(429, html)
            response.headers["Retry-After"] = str(screen.retry_after_s)
            return response
        case _:
            return _html(
                screen.status, pages.error_page(title=screen.title, message=screen.message)
            )


def _html(status: int, html: str, cookies: list[Cookie] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=pages.PAGE_HEADERS["Content-Type"],
        body=html,
        headers=dict(pages.PAGE_HEADERS),
        cookies=cookies,
    )


def _csrf_cookie(request_id: str, value: str, max_age: int) -> Cookie:
    """Bound to this one request and this path; Secure wherever there is TLS (not on the
    laptop's plain-http loopback)."""
    return Cookie(
        name=authorize.csrf_cookie_name(request_id),
        value=value,
        path=_AUTHORIZE_PATH,
        secure=not server.local,
        http_only=True,
        max_age=max_age,
        same_site=SameSite.LAX_MODE,
    )


# -- dynamic registration (RFC 7591, RFC 7592) ----------------------------------------------


def _admit() -> Principal:
    """A protected route of this function: the caller through the gate (scope, a DPoP-bound
    token's proof for this URL, rate limits and revocation), as on the payments function."""
    route = current_route(app)
    assert route is not None  # noqa: S101 - bound from the route table
    event = app.current_event
    context = event.raw_event.get("requestContext", {}).get("authorizer") or {}
    presented = Presented(
        method=event.http_method,
        url=settings.issuer.rstrip("/") + event.path,  # the issuer is this API's public URL
        authorization=event.headers.get("authorization"),
        dpop=event.headers.get("dpop"),
    )
    principal, headers = gate.admit(route, context, origin(app), presented)
    app.append_context(**{RESPONSE_HEADERS: headers})
    return principal


@bind(app, "register")
def register() -> Response[str]:
    principal = _admit()
    body = registration.register(
        server,
        clients,
        _json_body(),
        plan_exists=_plan_exists,
        registrar=principal.client_id,
        origin=origin(app),
    )
    return json_response(201, body, NO_STORE)


@bind(app, "get_registration")
def get_registration(client_id: str) -> Response[str]:
    client = _managed(client_id)
    return json_response(200, registration.read(server, client), NO_STORE)


@bind(app, "update_registration")
def update_registration(client_id: str) -> Response[str]:
    client = _managed(client_id)
    body = registration.update(
        server, clients, client, _json_body(), plan_exists=_plan_exists, origin=origin(app)
    )
    return json_response(200, body, NO_STORE)


@bind(app, "delete_registration")
def delete_registration(client_id: str) -> Response[str]:
    client = _managed(client_id)
    registration.delete(server, clients, client, origin=origin(app))
    return Response(status_code=204, headers=NO_STORE)


@bind(app, "rotate_secret")
def rotate_secret(client_id: str) -> Response[str]:
    client = _managed(client_id)
    body = _json_body(allow_empty=True)
    return json_response(
        200, registration.rotate(server, clients, client, body, origin=origin(app)), NO_STORE
    )


def _managed(client_id: str) -> Client:
    _throttle(client_id)
    authorization = app.current_event.headers.get("authorization")
    return registration.authorized_client(clients, client_id, authorization)


def _json_body(*, allow_empty: bool = False) -> dict[str, Any]:
    try:
        raw = app.current_event.decoded_body or ""
    except UnicodeDecodeError:
        raise registration.InvalidMetadata("The body is not valid UTF-8 JSON.") from None
    if allow_empty and not raw.strip():
        return {}
    content_type = (app.current_event.headers.get("content-type") or "").split(";")[0].strip()
    if content_type.lower() != "application/json":
        raise registration.InvalidMetadata("The body must be application/json.")
    if len(raw.encode("utf-8")) > MAX_JSON_BYTES:
        raise registration.InvalidMetadata("The body is too large.")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise registration.InvalidMetadata("The body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise registration.InvalidMetadata("The body must be a JSON object.")
    return body


def _plan_exists(name: str) -> bool:
    """A partner tier in force (the defaults or a stored plan), not an internal limit."""
    if name in INTERNAL_PLANS:
        return False
    return name in DEFAULT_PLANS or buckets.get_plan(name) is not None


# -- public documents -------------------------------------------------------------------------


@bind(app, "oauth_metadata")
def metadata() -> Response[str]:
    return json_response(
        200,
        oauth.metadata(settings, require_par=settings.require_par, fapi_profile=settings.fapi),
        _PUBLIC_CACHE,
    )


@bind(app, "jwks")
def jwks() -> Response[str]:
    return json_response(200, oauth.jwks(server), _PUBLIC_CACHE)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)  # responses hold tokens
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
