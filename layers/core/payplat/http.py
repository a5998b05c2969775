"""The HTTP edge shared by the functions: the Powertools resolver, routes bound from the
route table, and the one place where domain errors become responses.

Resource routes answer `{"error": {type, code, message, param, request_id}}` (401/403 with an
RFC 6750 challenge); OAuth endpoints answer RFC 6749 §5.2. Never a stack trace.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from payplat.audit import events as audit
from payplat.audit.metrics import LATENCY, REQUESTS
from payplat.errors import ApiError, InvalidClient, OAuthError
from payplat.observability import logger, metrics
from payplat.principal import Principal
from payplat.routes import ROUTES, ROUTES_BY_NAME, Function, Route

JSON = "application/json"
RESPONSE_HEADERS = "response_headers"  # app.context key: headers every response gets
PRINCIPAL = "principal"  # app.context key: the caller a resource route's gate admitted
# app.context key: the client id a route's gate admitted without a principal (the token
# endpoint's throttle admits the claimed id, before the credentials are checked)
CLIENT_ID = "client_id"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_CHALLENGE_ERRORS = {401: "invalid_token", 403: "insufficient_scope"}


def _default(value: object) -> object:
    if isinstance(value, Decimal):  # DynamoDB numbers; amounts are integers in minor units
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def dumps(body: object) -> str:
    return json.dumps(body, default=_default, separators=(",", ":"))


def json_response(
    status: int, body: object, headers: dict[str, str] | None = None
) -> Response[str]:
    return Response(status_code=status, content_type=JSON, body=dumps(body), headers=headers)


def make_resolver(function: Function) -> APIGatewayRestResolver:
    """A resolver for `function` with the platform's error mapping and request metrics."""
    app = APIGatewayRestResolver(serializer=dumps, strip_prefixes=None)

    def observe(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[str]:
        """Outermost middleware: every answer, errors included, is mapped here, counted and
        logged, and gets the headers the request earned (rate limits)."""
        started = time.perf_counter()
        try:
            response = next_middleware(app)
        except Exception as exc:  # mapped to a response, never re-raised
            response = error_response(app, function, exc)
        response.headers.update(app.context.get(RESPONSE_HEADERS, {}))
        route = current_route(app)
        name = route.name if route else "unmatched"
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        metrics(
            ((REQUESTS, 1), (LATENCY, latency_ms)),
            route=name,
            status_class=f"{response.status_code // 100}xx",
        )
        line: dict[str, object] = {
            "route": name,
            "status": response.status_code,
            "latency_ms": latency_ms,
        }
        client_id = admitted_client(app)
        if client_id:  # a field, not a dimension: Contributor Insights ranks partners by it
            line["client_id"] = client_id
        logger.info("request", extra=line)
        return response

    @app.not_found
    def _not_found(_: Exception) -> Response[str]:
        return api_error_response(
            app, ApiError("Unrecognized request URL.", code="resource_missing"), status=404
        )

    @app.exception_handler(Exception)
    def _any_error(error: Exception) -> Response[str]:  # raised outside the middlewares
        return error_response(app, function, error)

    app.use(middlewares=[observe])
    return app


def error_response(
    app: APIGatewayRestResolver, function: Function, error: Exception
) -> Response[str]:
    """The one mapping from an exception to what the caller sees. Never a stack trace."""
    if isinstance(error, OAuthError):
        return oauth_error_response(error, extra_headers(app, error))
    if isinstance(error, ApiError):
        if function is Function.OAUTH:  # the authorization server speaks RFC 6749 only
            oauth_error = OAuthError(error.code, error.message, status=error.status)
            return oauth_error_response(oauth_error, extra_headers(app, error))
        return api_error_response(app, error)
    logger.exception("unhandled error")
    return api_error_response(
        app,
        ApiError("Something went wrong on our side; it is safe to retry.", code="api_error"),
        status=500,
        error_type="api_error",
    )


def bind(app: APIGatewayRestResolver, name: str) -> Callable[[Callable[..., Any]], Any]:
    """Register a handler for the route table's route `name` (path and method come from the
    table, so the resolver and API Gateway cannot disagree)."""
    route = ROUTES_BY_NAME[name]
    return app.route(route.resolver_rule, route.method, cache_control=None)


def admitted_client(app: APIGatewayRestResolver) -> str | None:
    """The client id the request was admitted as, for its log line; None before admission.
    Only an id: never a token or a secret."""
    principal = app.context.get(PRINCIPAL)
    if isinstance(principal, Principal):
        return principal.client_id
    client_id = app.context.get(CLIENT_ID)
    return client_id[:128] if isinstance(client_id, str) and client_id else None


def current_route(app: APIGatewayRestResolver) -> Route | None:
    event = app.current_event
    for route in ROUTES:
        if route.path == event.resource and route.method == event.http_method:
            return route
    return None


def request_id(app: APIGatewayRestResolver) -> str:
    return str(app.current_event.request_context.request_id or "")


def origin(app: APIGatewayRestResolver) -> audit.Origin:
    event = app.current_event
    return audit.Origin(
        source_ip=event.request_context.identity.source_ip,
        user_agent=event.headers.get("user-agent"),
        request_id=request_id(app),
    )


def api_error_response(
    app: APIGatewayRestResolver,
    error: ApiError,
    *,
    status: int | None = None,
    error_type: str | None = None,
) -> Response[str]:
    status = status or error.status
    headers = {**NO_STORE, **extra_headers(app, error)}
    if status in _CHALLENGE_ERRORS and "WWW-Authenticate" not in headers:  # DPoP's own
        headers["WWW-Authenticate"] = f'Bearer realm="payplat", error="{_CHALLENGE_ERRORS[status]}"'
    body = {
        "error": {
            "type": error_type or error.type,
            "code": error.code,
            "message": error.message,
            "param": error.param,
            "request_id": request_id(app),
        }
    }
    return json_response(status, body, headers)


def extra_headers(app: APIGatewayRestResolver, error: Exception) -> dict[str, str]:
    """Headers an error brings (Retry-After) and those the request earned before it failed
    (the rate-limit headers every response of a limited route carries)."""
    earned: dict[str, str] = app.context.get(RESPONSE_HEADERS, {})
    return {**earned, **getattr(error, "headers", {})}


def oauth_error_response(
    error: OAuthError, headers_in: dict[str, str] | None = None
) -> Response[str]:
    headers = {**NO_STORE, **(headers_in or {})}
    if isinstance(error, InvalidClient):
        headers["WWW-Authenticate"] = 'Basic realm="payplat"'
    body = {"error": error.error, "error_description": error.description}
    return json_response(error.status, body, headers)


MAX_FORM_BYTES = 8192


def form_body(app: APIGatewayRestResolver) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body; a parameter given twice is an error
    (RFC 6749 §3.2)."""
    event = app.current_event
    content_type = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "The body must be application/x-www-form-urlencoded.")
    try:
        body = event.decoded_body or ""
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "The body is not valid UTF-8.") from None
    if len(body.encode("utf-8")) > MAX_FORM_BYTES:
        raise OAuthError("invalid_request", "The request body is too large.")
    try:
        pairs = parse_qsl(body, keep_blank_values=True, strict_parsing=bool(body))
    except ValueError as exc:
        raise OAuthError("invalid_request", "The body is not valid form encoding.") from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise OAuthError("invalid_request", f"The parameter {key} is repeated.")
        form[key] = value
    return form
