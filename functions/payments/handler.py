"""λ payments: the resource routes (/v1/*) and /health."""

from __future__ import annotations

from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from payplat.api import openapi
from payplat.audit.metrics import IDEMPOTENT_REPLAYS
from payplat.config import PaymentsSettings, load
from payplat.errors import InvalidRequest
from payplat.gateway.access import Presented
from payplat.gateway.dal.wiring import dynamo_gate
from payplat.http import (
    JSON,
    NO_STORE,
    PRINCIPAL,
    RESPONSE_HEADERS,
    bind,
    current_route,
    json_response,
    make_resolver,
    origin,
)
from payplat.observability import logger, metric, tracer
from payplat.pagination import PageRequest, page_request
from payplat.payments import queries as payments
from payplat.payments.dal.ledger_table import DynamoLedgerStore
from payplat.payments.idempotency import (
    MAX_IDEMPOTENCY_KEY,
    Idempotency,
    Outcome,
    namespace_of,
    request_hash,
    valid_key,
)
from payplat.payments.ledger import Ledger
from payplat.payments.requests import (
    CancelPayment,
    CapturePayment,
    CreatePayment,
    CreateRefund,
    parse,
)
from payplat.principal import Principal
from payplat.routes import Function
from payplat.webhooks.dal.webhook_queue import SqsDeliveryQueue
from payplat.webhooks.dal.webhooks_table import DynamoWebhookStore
from payplat.webhooks.endpoints import (
    CreateWebhookEndpoint,
    RedeliverEvent,
    RollWebhookSecret,
    WebhookApi,
)

settings = load(PaymentsSettings)
gate = dynamo_gate(
    settings.clients_table,
    settings.rate_limits_table,
    settings.config_cache_ttl_s,
    dpop_nonce=settings.dpop_nonce,
    sender_constrained=settings.fapi,
)
store = DynamoLedgerStore(settings.ledger_table)
ledger = Ledger(store)
webhook_api = WebhookApi(
    DynamoWebhookStore(settings.webhooks_table),
    SqsDeliveryQueue(settings.webhook_queue_url),
    local=bool(settings.local),
)
app = make_resolver(Function.PAYMENTS)
M = TypeVar("M", bound=BaseModel)


def admit(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[str]:
    """Every protected route: the caller, its scope (re-checked behind the authorizer's
    cached policy), a DPoP-bound token's proof, its rate limits, quotas and revocation —
    before the route runs."""
    route = current_route(app)
    if route is not None and route.protected:
        event = app.current_event
        context = event.raw_event.get("requestContext", {}).get("authorizer") or {}
        presented = Presented(
            method=event.http_method,
            url=base_url() + event.path,
            authorization=event.headers.get("authorization"),
            dpop=event.headers.get("dpop"),
        )
        principal, headers = gate.admit(route, context, origin(app), presented)
        app.append_context(**{PRINCIPAL: principal, RESPONSE_HEADERS: headers})
    return next_middleware(app)


app.use(middlewares=[admit])


def principal() -> Principal:
    caller: Principal = app.context[PRINCIPAL]
    return caller


@bind(app, "health")
def health() -> Response[str]:
    return json_response(200, {"status": "ok"})


def page() -> PageRequest:
    return page_request(query())


def query() -> dict[str, str]:
    return app.current_event.query_string_parameters or {}


def idempotency(target: str, body: dict[str, Any]) -> Idempotency:
    """Every POST that moves money carries an Idempotency-Key: the same key and body replay
    the first answer."""
    key = optional_idempotency(target, body)
    if key is None:
        raise InvalidRequest(
            "POST requests need an Idempotency-Key header.", param="Idempotency-Key"
        )
    return key


def optional_idempotency(target: str, body: dict[str, Any]) -> Idempotency | None:
    """The request's Idempotency-Key, if it sent one (the webhook POSTs honour it when it
    does)."""
    key = app.current_event.headers.get("idempotency-key")
    if not key:
        return None
    if not valid_key(key):
        raise InvalidRequest(
            f"The Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters.",
            param="Idempotency-Key",
        )
    route = current_route(app)
    name = route.name if route else ""
    return Idempotency(namespace_of(principal()), key, request_hash(name, target, body))


def body_of(model: type[M]) -> tuple[M, dict[str, Any]]:
    event = app.current_event
    try:
        text = event.decoded_body
    except UnicodeDecodeError:
        raise InvalidRequest("The body is not valid UTF-8 JSON.") from None
    parsed = parse(model, text, event.headers.get("content-type"))
    return parsed, parsed.model_dump(mode="json")


def answer(outcome: Outcome, headers: dict[str, str] | None = None) -> Response[str]:
    """The stored answer, byte for byte; a replay says so, and is counted (a partner
    retrying a lot shows here before it shows anywhere else)."""
    headers = dict(headers or {})
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
        route = current_route(app)
        metric(IDEMPOTENT_REPLAYS, route=route.name if route else "unmatched")
    return Response(
        status_code=outcome.status, content_type=JSON, body=outcome.body, headers=headers
    )


@bind(app, "openapi")
def openapi_document() -> Response[str]:
    return json_response(
        200, openapi.document(base_url()), {"Cache-Control": "public, max-age=300"}
    )


@bind(app, "docs")
def docs() -> Response[str]:
    return Response(status_code=200, content_type="text/html", body=openapi.SWAGGER_UI)


def base_url() -> str:
    """The public base URL of this request (host and stage as the caller used them)."""
    event = app.current_event
    host = event.headers.get("host", "localhost")
    stage = event.request_context.stage
    scheme = "http" if host.startswith(("127.0.0.1", "localhost")) else "https"
    prefix = "" if stage in (None, "", "local", "$default") else f"/{stage}"
    return f"{scheme}://{host}{prefix}"


@bind(app, "list_accounts")
def list_accounts() -> Response[str]:
    return json_response(200, payments.list_accounts(principal(), page(), store))


@bind(app, "get_account")
def get_account(account_id: str) -> Response[str]:
    return json_response(200, payments.get_account(principal(), account_id, store))


@bind(app, "list_transactions")
def list_transactions(account_id: str) -> Response[str]:
    return json_response(200, payments.list_transactions(principal(), account_id, page(), store))


@bind(app, "list_payments")
def list_payments() -> Response[str]:
    return json_response(200, payments.list_payments(principal(), page(), query(), store))


@bind(app, "create_payment")
def create_payment() -> Response[str]:
    request, body = body_of(CreatePayment)
    return answer(ledger.create_payment(principal(), request, idempotency("", body)))


@bind(app, "get_payment")
def get_payment(payment_id: str) -> Response[str]:
    return json_response(200, payments.get_payment(principal(), payment_id, ledger))


@bind(app, "capture_payment")
def capture_payment(payment_id: str) -> Response[str]:
    request, body = body_of(CapturePayment)
    key = idempotency(payment_id, body)
    return answer(ledger.capture(principal(), payment_id, request, key))


@bind(app, "cancel_payment")
def cancel_payment(payment_id: str) -> Response[str]:
    _, body = body_of(CancelPayment)
    return answer(ledger.cancel(principal(), payment_id, idempotency(payment_id, body)))


@bind(app, "create_refund")
def create_refund(payment_id: str) -> Response[str]:
    request, body = body_of(CreateRefund)
    key = idempotency(payment_id, body)
    return answer(ledger.refund(principal(), payment_id, request, key))


@bind(app, "list_refunds")
def list_refunds(payment_id: str) -> Response[str]:
    return json_response(200, payments.list_refunds(principal(), payment_id, ledger, store))


@bind(app, "create_webhook_endpoint")
def create_webhook_endpoint() -> Response[str]:
    request, body = body_of(CreateWebhookEndpoint)
    key = optional_idempotency("", body)
    # The answer holds the signing secret: no cache may keep it.
    return answer(webhook_api.create_endpoint(principal(), request, key), NO_STORE)


@bind(app, "list_webhook_endpoints")
def list_webhook_endpoints() -> Response[str]:
    return json_response(200, webhook_api.list_endpoints(principal(), page()))


@bind(app, "get_webhook_endpoint")
def get_webhook_endpoint(endpoint_id: str) -> Response[str]:
    return json_response(200, webhook_api.get_endpoint(principal(), endpoint_id))


@bind(app, "delete_webhook_endpoint")
def delete_webhook_endpoint(endpoint_id: str) -> Response[str]:
    return json_response(200, webhook_api.delete_endpoint(principal(), endpoint_id))


@bind(app, "roll_webhook_endpoint_secret")
def roll_webhook_endpoint_secret(endpoint_id: str) -> Response[str]:
    request, body = body_of(RollWebhookSecret)
    key = optional_idempotency(endpoint_id, body)
    return answer(webhook_api.roll_secret(principal(), endpoint_id, request, key), NO_STORE)


@bind(app, "list_events")
def list_events() -> Response[str]:
    return json_response(200, webhook_api.list_events(principal(), page(), query()))


@bind(app, "get_event")
def get_event(event_id: str) -> Response[str]:
    return json_response(200, webhook_api.get_event(principal(), event_id))


@bind(app, "redeliver_event")
def redeliver_event(event_id: str) -> Response[str]:
    _, body = body_of(RedeliverEvent)
    key = optional_idempotency(event_id, body)
    return answer(webhook_api.redeliver(principal(), event_id, key))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)  # responses hold payment data
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
