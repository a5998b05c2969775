"""The route table: one source for the API's paths, the function behind each, the scope it
needs and what it costs against the rate limit.

Read at run time by the authorizer (to write a policy naming every route a token's scopes
allow), by the backend resolver (to register handlers and re-check scope), by the CDK API
construct and by the local gateway. No AWS imports here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_PARAM = re.compile(r"\{([^}/]+)\}")


class Function(StrEnum):
    """The Lambda functions that serve routes (folder names under functions/)."""

    OAUTH = "oauth"
    PAYMENTS = "payments"


@dataclass(frozen=True, slots=True)
class Route:
    """One API method. `path` uses API Gateway's `{param}` syntax."""

    name: str
    method: str
    path: str
    function: Function
    scope: str | None = None  # None: public, no authorizer
    cost: int = 1  # rate-limit tokens one call takes
    # When the limiter's table is unreachable: reads keep serving (fail open), anything that
    # writes refuses (fail closed) unless a route says otherwise.
    fail_open: bool | None = None

    @property
    def fails_open(self) -> bool:
        return self.fail_open if self.fail_open is not None else self.method == "GET"

    @property
    def protected(self) -> bool:
        return self.scope is not None

    @property
    def arn_path(self) -> str:
        """`METHOD/path` as it appears in an execute-api ARN, path parameters as `*`."""
        return self.method + _PARAM.sub("*", self.path)

    @property
    def resolver_rule(self) -> str:
        """The path in Powertools' event-handler syntax (`<param>`)."""
        return _PARAM.sub(lambda m: f"<{m.group(1)}>", self.path)


WEBHOOKS_MANAGE = "webhooks:manage"

ROUTES: tuple[Route, ...] = (
    Route("health", "GET", "/health", Function.PAYMENTS),
    Route("openapi", "GET", "/openapi.json", Function.PAYMENTS),
    Route("docs", "GET", "/docs", Function.PAYMENTS),
    Route("oauth_metadata", "GET", "/.well-known/oauth-authorization-server", Function.OAUTH),
    Route("jwks", "GET", "/.well-known/jwks.json", Function.OAUTH),
    Route("token", "POST", "/oauth/token", Function.OAUTH),
    # RFC 9126: the client authenticates as at the token endpoint, in the function.
    Route("par", "POST", "/oauth/par", Function.OAUTH),
    Route("authorize", "GET", "/oauth/authorize", Function.OAUTH),
    Route("authorize_submit", "POST", "/oauth/authorize", Function.OAUTH),
    Route("introspect", "POST", "/oauth/introspect", Function.OAUTH),
    Route("revoke", "POST", "/oauth/revoke", Function.OAUTH),
    # RFC 7591: the initial access token is a client-credentials token with clients:manage,
    # checked by the authorizer like any API token. RFC 7592's routes take the registration
    # access token instead, which the oauth function checks.
    Route("register", "POST", "/oauth/register", Function.OAUTH, scope="clients:manage"),
    Route("get_registration", "GET", "/oauth/register/{client_id}", Function.OAUTH),
    Route("update_registration", "PUT", "/oauth/register/{client_id}", Function.OAUTH),
    Route("delete_registration", "DELETE", "/oauth/register/{client_id}", Function.OAUTH),
    Route("rotate_secret", "POST", "/oauth/register/{client_id}/secret", Function.OAUTH),
    Route("list_accounts", "GET", "/v1/accounts", Function.PAYMENTS, scope="accounts:read"),
    Route("get_account", "GET", "/v1/accounts/{account_id}", Function.PAYMENTS, "accounts:read"),
    Route(
        "list_transactions",
        "GET",
        "/v1/accounts/{account_id}/transactions",
        Function.PAYMENTS,
        "accounts:read",
    ),
    Route("list_payments", "GET", "/v1/payments", Function.PAYMENTS, scope="payments:read"),
    Route("create_payment", "POST", "/v1/payments", Function.PAYMENTS, "payments:write", cost=2),
    Route("get_payment", "GET", "/v1/payments/{payment_id}", Function.PAYMENTS, "payments:read"),
    Route(
        "capture_payment",
        "POST",
        "/v1/payments/{payment_id}/capture",
        Function.PAYMENTS,
        "payments:write",
        cost=2,
    ),
    Route(
        "cancel_payment",
        "POST",
        "/v1/payments/{payment_id}/cancel",
        Function.PAYMENTS,
        "payments:write",
        cost=2,
    ),
    Route(
        "create_refund",
        "POST",
        "/v1/payments/{payment_id}/refunds",
        Function.PAYMENTS,
        "refunds:write",
        cost=2,
    ),
    Route(
        "list_refunds",
        "GET",
        "/v1/payments/{payment_id}/refunds",
        Function.PAYMENTS,
        "payments:read",
    ),
    # Webhooks: endpoints of the caller's owner, and the events of its objects.
    Route(
        "create_webhook_endpoint",
        "POST",
        "/v1/webhook_endpoints",
        Function.PAYMENTS,
        WEBHOOKS_MANAGE,
        cost=2,
    ),
    Route(
        "list_webhook_endpoints",
        "GET",
        "/v1/webhook_endpoints",
        Function.PAYMENTS,
        WEBHOOKS_MANAGE,
    ),
    Route(
        "get_webhook_endpoint",
        "GET",
        "/v1/webhook_endpoints/{endpoint_id}",
        Function.PAYMENTS,
        WEBHOOKS_MANAGE,
    ),
    Route(
        "delete_webhook_endpoint",
        "DELETE",
        "/v1/webhook_endpoints/{endpoint_id}",
        Function.PAYMENTS,
        WEBHOOKS_MANAGE,
        cost=2,
    ),
    Route(
        "roll_webhook_endpoint_secret",
        "POST",
        "/v1/webhook_endpoints/{endpoint_id}/roll_secret",
        Function.PAYMENTS,
        WEBHOOKS_MANAGE,
        cost=2,
    ),
    Route("list_events", "GET", "/v1/events", Function.PAYMENTS, WEBHOOKS_MANAGE),
    Route("get_event", "GET", "/v1/events/{event_id}", Function.PAYMENTS, WEBHOOKS_MANAGE),
    Route(
        "redeliver_event",
        "POST",
        "/v1/events/{event_id}/redeliver",
        Function.PAYMENTS,
        WEBHOOKS_MANAGE,
        cost=2,
    ),
)

ROUTES_BY_NAME: dict[str, Route] = {route.name: route for route in ROUTES}

# Every scope the platform knows, with the words a consent page or the docs would show.
SCOPES: dict[str, str] = {
    "accounts:read": "See your accounts, balances and transactions",
    "payments:read": "See your payments and refunds",
    "payments:write": "Create, capture and cancel payments",
    "refunds:write": "Refund payments",
    "clients:manage": "Register and manage partner applications",
    WEBHOOKS_MANAGE: "Manage webhook endpoints and read events",
}


def routes_allowed(scopes: frozenset[str]) -> tuple[Route, ...]:
    """The protected routes a token with `scopes` may call."""
    return tuple(route for route in ROUTES if route.scope is not None and route.scope in scopes)


def find_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """Match a concrete request path against the table (what API Gateway does)."""
    for route in ROUTES:
        if route.method != method.upper():
            continue
        params = _match(route.path, path)
        if params is not None:
            return route, params
    return None


def _match(template: str, path: str) -> dict[str, str] | None:
    want = template.strip("/").split("/")
    got = path.strip("/").split("/")
    if len(want) != len(got):
        return None
    params: dict[str, str] = {}
    for pattern, segment in zip(want, got, strict=True):
        if pattern.startswith("{") and pattern.endswith("}"):
            if not segment:
                return None
            params[pattern[1:-1]] = segment
        elif pattern != segment:
            return None
    return params
