"""λ payments: the resource routes (/v1/*) and /health."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from payplat import payments
from payplat.access import Gate
from payplat.config import PaymentsSettings, load
from payplat.dal.clients_table import DynamoClientStore
from payplat.dal.ledger_table import DynamoLedgerStore
from payplat.dal.rate_limit_table import DynamoBucketStore
from payplat.http import (
    RESPONSE_HEADERS,
    bind,
    current_route,
    json_response,
    make_resolver,
    origin,
)
from payplat.observability import logger, tracer
from payplat.pagination import page_request
from payplat.principal import CachedClients, Principal
from payplat.ratelimit.limiter import RateLimiter
from payplat.ratelimit.plans import CachedPlans
from payplat.routes import Function

settings = load(PaymentsSettings)
buckets = DynamoBucketStore(settings.rate_limits_table)
gate = Gate(
    clients=CachedClients(DynamoClientStore(settings.clients_table), settings.config_cache_ttl_s),
    plans=CachedPlans(buckets, settings.config_cache_ttl_s),
    limiter=RateLimiter(buckets),
)
ledger = DynamoLedgerStore(settings.ledger_table)
app = make_resolver(Function.PAYMENTS)


def admit(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[str]:
    """Every protected route: the caller, its scope (re-checked behind the authorizer's
    cached policy), its rate limits, quotas and revocation — before the route runs."""
    route = current_route(app)
    if route is not None and route.protected:
        context = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
        principal, headers = gate.admit(route, context, origin(app))
        app.append_context(principal=principal, **{RESPONSE_HEADERS: headers})
    return next_middleware(app)


app.use(middlewares=[admit])


def principal() -> Principal:
    caller: Principal = app.context["principal"]
    return caller


@bind(app, "health")
def health() -> Response[str]:
    return json_response(200, {"status": "ok"})


@bind(app, "list_accounts")
def list_accounts() -> Response[str]:
    request = page_request(app.current_event.query_string_parameters or {})
    return json_response(200, payments.list_accounts(principal(), request, ledger))


@bind(app, "list_payments")
def list_payments() -> Response[str]:
    request = page_request(app.current_event.query_string_parameters or {})
    return json_response(200, payments.list_payments(principal(), request, ledger))


@bind(app, "get_payment")
def get_payment(payment_id: str) -> Response[str]:
    return json_response(200, payments.get_payment(principal(), payment_id, ledger))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)  # responses hold payment data
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
