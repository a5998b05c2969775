"""λ payments: the resource routes (/v1/*) and /health."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from payplat import payments
from payplat.config import PaymentsSettings, load
from payplat.dal.clients_table import DynamoClientStore
from payplat.dal.ledger_table import DynamoLedgerStore
from payplat.http import bind, current_route, json_response, make_resolver
from payplat.observability import logger, tracer
from payplat.pagination import page_request
from payplat.principal import CachedClients, Principal, principal_from
from payplat.routes import Function

settings = load(PaymentsSettings)
clients = CachedClients(DynamoClientStore(settings.clients_table))
ledger = DynamoLedgerStore(settings.ledger_table)
app = make_resolver(Function.PAYMENTS)


def authenticate(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[str]:
    """Every protected route: resolve the caller and re-check the route's scope (the
    authorizer's cached policy already did; this holds even if the gateway is misconfigured)."""
    route = current_route(app)
    if route is not None and route.scope is not None:
        context = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
        principal = principal_from(context, clients)
        principal.require(route.scope)
        app.append_context(principal=principal)
    return next_middleware(app)


app.use(middlewares=[authenticate])


def principal() -> Principal:
    caller: Principal = app.context["principal"]
    return caller


@bind(app, "health")
def health() -> Response[str]:
    return json_response(200, {"status": "ok"})


@bind(app, "list_payments")
def list_payments() -> Response[str]:
    request = page_request(app.current_event.query_string_parameters or {})
    return json_response(200, payments.list_payments(principal(), request, ledger))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)  # responses hold payment data
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
