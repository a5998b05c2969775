"""Webhooks on moto: the routes through the real payments handler and webhooks table, and
λ webhook_dispatcher on real-shaped Kinesis and SQS events — events made once however often
an audit record comes, signed deliveries to a receiver on 127.0.0.1, retries through the
delivery queue, and the DLQ after three days of failures (the clock jumps; moto's queue is
told to delay nothing, the dispatcher holds back what is not due).

Each test has tenants of its own (an owner, an EUR account, a registered client)."""

from __future__ import annotations

import base64
import dataclasses
import importlib
import json
import os
import random
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import boto3
import pytest

from infra.local.webhooks import provision_queues
from payplat.audit import events as audit
from payplat.clients.dal.clients_table import DynamoClientStore
from payplat.clients.registry import register_client
from payplat.config import Env
from payplat.payments.dal.ledger_table import DynamoLedgerStore
from payplat.payments.idempotency import Idempotency, KeyTaken
from payplat.payments.ledger import Account, Ledger, Payment
from payplat.payments.ledger_audit import events_from
from payplat.payments.requests import CapturePayment, CreatePayment, CreateRefund
from payplat.principal import Principal
from payplat.routes import find_route
from payplat.webhooks import ssrf
from payplat.webhooks.dal.webhook_queue import SqsDeliveryQueue
from payplat.webhooks.dal.webhooks_table import DynamoWebhookStore
from payplat.webhooks.dispatch import Dispatcher
from payplat.webhooks.endpoints import WebhookApi
from payplat.webhooks.objects import (
    Delivery,
    DeliveryMessage,
    Endpoint,
    Event,
    Secret,
    event_id_for,
)
from payplat.webhooks.signatures import new_secret, verify_signature
from tests.conftest import AuditCapture, invoke, load_event
from tests.conftest import LambdaContext as BaseContext


class LambdaContext(BaseContext):
    """A fresh invocation: a minute to go."""

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


STREAM_ARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/payplat-audit"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:payplat-webhook-deliveries"


@dataclass(frozen=True)
class Tenant:
    """An account holder of a test's own, with an EUR account and a client acting for them."""

    owner: str
    account_id: str
    client_id: str
    scope: str

    @property
    def principal(self) -> Principal:
        return Principal(
            client_id=self.client_id,
            subject=self.client_id,
            scopes=frozenset(self.scope.split()),
            jti="j",
            owner=self.owner,
            plan="premium",
        )


def new_tenant(aws: dict[str, str], scope: str = "webhooks:manage payments:write") -> Tenant:
    owner = f"usr_{secrets.token_hex(6)}"
    account_id = f"acct_{owner}_eur"
    DynamoLedgerStore(aws[Env.LEDGER_TABLE]).open_account(
        Account(account_id, owner, "EUR", 1_000_000, 0, int(time.time()))
    )
    client, _ = register_client(
        DynamoClientStore(aws[Env.CLIENTS_TABLE]),
        name=f"webhooks {owner}",
        scopes=frozenset(scope.split()),
        owner=owner,
        plan="premium",
    )
    return Tenant(owner, account_id, client.client_id, scope)


def pay(
    aws: dict[str, str], payer: Tenant, payee: Tenant, amount: int = 500, capture: str = "automatic"
) -> Payment:
    ledger = Ledger(DynamoLedgerStore(aws[Env.LEDGER_TABLE]))
    outcome = ledger.create_payment(
        payer.principal,
        CreatePayment(
            source_account=payer.account_id,
            destination_account=payee.account_id,
            amount=amount,
            currency="EUR",
            capture_method=capture,
        ),
        Idempotency(payer.client_id, secrets.token_hex(8), "h"),
    )
    payment = DynamoLedgerStore(aws[Env.LEDGER_TABLE]).payment(json.loads(outcome.body)["id"])
    assert payment is not None
    return payment


def audit_line(payment: Payment, audit_type: str = "payment.created", **extra: Any) -> str:
    """The audit line the forwarder writes for a payment's change (payments.ledger_audit)."""
    event = audit.AuditEvent(
        type=audit_type,
        outcome="success",
        resource=f"payment/{payment.id}",
        details={
            "payment": payment.id,
            "amount": payment.amount,
            "currency": payment.currency,
            "status": payment.status,
            "payer": payment.payer,
            "payee": payment.payee,
            **extra,
        },
    )
    return audit.line(event)


def kinesis_event(*lines: str, sequence: int = 1) -> dict[str, Any]:
    """Audit lines as Lambda's Kinesis source delivers them: one subscription envelope each."""
    records = []
    for offset, line in enumerate(lines):
        number = str(sequence + offset).zfill(20)
        data = audit.envelope([line], log_group="/aws/lambda/test", log_stream="test")
        records.append(
            {
                "eventSource": "aws:kinesis",
                "eventID": f"shardId-000000000000:{number}",
                "eventSourceARN": STREAM_ARN,
                "kinesis": {
                    "sequenceNumber": number,
                    "data": base64.b64encode(data).decode("ascii"),
                    "approximateArrivalTimestamp": time.time(),
                    "partitionKey": "payment",
                },
            }
        )
    return {"Records": records}


def receive(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every visible message, taken off the queue."""
    taken: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return taken
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        taken += messages


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": QUEUE_ARN,
                "awsRegion": "eu-west-1",
            }
            for m in messages
        ]
    }


def api_call(
    handler: ModuleType,
    tenant: Tenant,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    scope: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """A request to the payments function as API Gateway sends it, after the authorizer."""
    route_path, _, query = path.partition("?")
    match = find_route(method, route_path)
    assert match is not None, path
    route, params = match
    event = load_event("apigw_rest_list_payments")
    pairs = dict(part.split("=", 1) for part in query.split("&") if part)
    event.update(
        resource=route.path,
        path=route_path,
        httpMethod=method,
        pathParameters=params or None,
        queryStringParameters=pairs or None,
        multiValueQueryStringParameters={k: [v] for k, v in pairs.items()} or None,
        body=None if body is None else json.dumps(body),
    )
    event["headers"]["Content-Type"] = "application/json"
    for name, value in (headers or {}).items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    event["requestContext"].update(httpMethod=method, resourcePath=route.path)
    event["requestContext"]["authorizer"].update(
        client_id=tenant.client_id, sub=tenant.client_id, scope=scope or tenant.scope
    )
    return invoke(handler, event)


@dataclass
class Receiver:
    """A partner's endpoint on 127.0.0.1: answers the statuses it is given, then 200."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


def serve_receiver(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield receiver
    server.shutdown()
    server.server_close()


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def queues(aws: dict[str, str]) -> dict[str, str]:
    """The delivery queue and its DLQ, as the runner creates them (env var -> URL)."""
    urls = provision_queues()
    os.environ.update(urls)  # what the dispatcher reads at import; the package restores env
    return urls


@pytest.fixture
def sqs(aws: dict[str, str]) -> Any:
    return boto3.client("sqs")


@pytest.fixture
def drained(queues: dict[str, str], sqs: Any) -> dict[str, str]:
    """Both queues empty before the test."""
    for url in queues.values():
        receive(sqs, url)
    return queues


@pytest.fixture
def store(aws: dict[str, str]) -> DynamoWebhookStore:
    return DynamoWebhookStore(aws[Env.WEBHOOKS_TABLE])


def _public_or_real(host: str, port: int) -> list[str]:
    """partner.example names resolve to a public address; anything else as DNS says."""
    return ["93.184.215.14"] if host.endswith("partner.example") else ssrf.resolve(host, port)


@pytest.fixture
def api(
    payments_handler: ModuleType,
    store: DynamoWebhookStore,
    drained: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> WebhookApi:
    """The handler's webhook routes on moto's table and queue, deployed rules (not local)."""
    webhook_api = WebhookApi(
        store,
        SqsDeliveryQueue(drained[Env.WEBHOOK_QUEUE_URL]),
        resolver=_public_or_real,
    )
    monkeypatch.setattr(payments_handler, "webhook_api", webhook_api)
    return webhook_api


@pytest.fixture(scope="module")
def dispatcher_handler(queues: dict[str, str]) -> ModuleType:
    return importlib.import_module("functions.webhook_dispatcher.handler")


@pytest.fixture
def dispatcher(
    dispatcher_handler: ModuleType,
    store: DynamoWebhookStore,
    drained: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Dispatcher:
    """The handler's dispatcher, local (deliveries to 127.0.0.1), its queue delaying nothing
    (the dispatcher re-queues what is not due, by its own clock)."""
    worker: Dispatcher = dispatcher_handler.dispatcher
    queue = SqsDeliveryQueue(
        drained[Env.WEBHOOK_QUEUE_URL], drained[Env.WEBHOOK_DLQ_URL], max_delay_s=0
    )
    monkeypatch.setattr(worker, "queue", queue)
    monkeypatch.setattr(dispatcher_handler, "queue", queue)
    monkeypatch.setattr(worker, "local", True)
    monkeypatch.setattr(worker, "rng", random.Random(11))
    return worker


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve_receiver(Receiver())


def _endpoint(
    handler: ModuleType, tenant: Tenant, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    status, _, body = api_call(
        handler,
        tenant,
        "POST",
        "/v1/webhook_endpoints",
        {"url": url, "enabled_events": events or ["*"]},
    )
    assert status == 200, body
    return dict(body)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- the routes ------------------------------------------------------------------------------


def test_an_endpoint_is_created_listed_got_and_deleted(
    payments_handler: ModuleType, api: WebhookApi, aws: dict[str, str]
) -> None:
    # Given a partner with webhooks:manage
    partner = new_tenant(aws)

    # When it creates two endpoints
    status, headers, first = api_call(
        payments_handler,
        partner,
        "POST",
        "/v1/webhook_endpoints",
        {
            "url": "https://hooks.partner.example/a",
            "enabled_events": ["payment.succeeded", "refund.created"],
            "description": "fulfilment",
        },
    )
    second = _endpoint(payments_handler, partner, "https://hooks.partner.example/b")

    # Then the answer holds the secret, never to be cached
    assert status == 200, first
    assert first["secret"].startswith("whsec_")
    assert headers["Cache-Control"] == "no-store"
    assert {k: first[k] for k in ("object", "url", "status", "description")} == {
        "object": "webhook_endpoint",
        "url": "https://hooks.partner.example/a",
        "status": "enabled",
        "description": "fulfilment",
    }
    # And the list shows both, newest first, a page at a time, without secrets
    status, _, listed = api_call(payments_handler, partner, "GET", "/v1/webhook_endpoints")
    assert status == 200
    assert listed["url"] == "/v1/webhook_endpoints"
    assert [e["id"] for e in listed["data"]] == [second["id"], first["id"]]
    assert all("secret" not in e for e in listed["data"])
    _, _, page = api_call(
        payments_handler,
        partner,
        "GET",
        f"/v1/webhook_endpoints?limit=1&starting_after={second['id']}",
    )
    assert ([e["id"] for e in page["data"]], page["has_more"]) == ([first["id"]], False)
    _, _, back = api_call(
        payments_handler, partner, "GET", f"/v1/webhook_endpoints?ending_before={first['id']}"
    )
    assert [e["id"] for e in back["data"]] == [second["id"]]
    status, _, got = api_call(
        payments_handler, partner, "GET", f"/v1/webhook_endpoints/{first['id']}"
    )
    assert status == 200
    assert got == {k: v for k, v in first.items() if k != "secret"}

    # When one is deleted, it is gone
    status, _, deleted = api_call(
        payments_handler, partner, "DELETE", f"/v1/webhook_endpoints/{first['id']}"
    )
    assert (status, deleted) == (
        200,
        {"id": first["id"], "object": "webhook_endpoint", "deleted": True},
    )
    for method in ("GET", "DELETE"):
        status, _, error = api_call(
            payments_handler, partner, method, f"/v1/webhook_endpoints/{first['id']}"
        )
        assert status == 404
        assert error["error"]["code"] == "resource_missing"


def test_another_owners_client_sees_none_of_it(
    payments_handler: ModuleType, api: WebhookApi, aws: dict[str, str]
) -> None:
    owner, stranger = new_tenant(aws), new_tenant(aws)
    endpoint = _endpoint(payments_handler, owner, "https://hooks.partner.example/x")
    for method, path, body in (
        ("GET", f"/v1/webhook_endpoints/{endpoint['id']}", None),
        ("DELETE", f"/v1/webhook_endpoints/{endpoint['id']}", None),
        ("POST", f"/v1/webhook_endpoints/{endpoint['id']}/roll_secret", {}),
        ("GET", f"/v1/webhook_endpoints?starting_after={endpoint['id']}", None),
    ):
        status, _, _ = api_call(payments_handler, stranger, method, path, body)
        assert status == 404, (method, path)
    _, _, listed = api_call(payments_handler, stranger, "GET", "/v1/webhook_endpoints")
    assert listed["data"] == []
    _, _, error = api_call(
        payments_handler, stranger, "GET", f"/v1/webhook_endpoints?ending_before={endpoint['id']}"
    )
    assert error["error"]["param"] == "ending_before"


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data/iam/",
        "https://[fd00:ec2::254]/latest",
        "https://100.64.1.1/hook",
        "https://[::ffff:172.16.0.1]/hook",
        "https://localhost/hook",  # a name resolving to 127.0.0.1, refused when deployed
        "http://hooks.partner.example/hook",  # plaintext
    ],
)
def test_a_url_inside_the_network_is_refused_at_creation(
    payments_handler: ModuleType, api: WebhookApi, aws: dict[str, str], url: str
) -> None:
    partner = new_tenant(aws)
    status, _, body = api_call(
        payments_handler,
        partner,
        "POST",
        "/v1/webhook_endpoints",
        {"url": url, "enabled_events": ["*"]},
    )
    assert status == 400, body
    error = body["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "url_not_allowed",
        "url",
    )
    assert error["request_id"]


def test_loopback_http_is_allowed_in_local_mode_only(
    payments_handler: ModuleType,
    api: WebhookApi,
    store: DynamoWebhookStore,
    aws: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    partner = new_tenant(aws)
    body = {"url": "http://127.0.0.1:9/hook", "enabled_events": ["*"]}
    status, _, _ = api_call(payments_handler, partner, "POST", "/v1/webhook_endpoints", body)
    assert status == 400
    local = WebhookApi(store, SqsDeliveryQueue(""), local=True)
    monkeypatch.setattr(payments_handler, "webhook_api", local)
    status, _, _ = api_call(payments_handler, partner, "POST", "/v1/webhook_endpoints", body)
    assert status == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"url": "https://hooks.partner.example/", "enabled_events": []}, "enabled_events"),
        ({"url": "https://hooks.partner.example/", "enabled_events": ["nope"]}, "enabled_events"),
        ({"url": "https://hooks.partner.example/"}, "enabled_events"),
        ({"enabled_events": ["*"]}, "url"),
        (
            {"url": "https://hooks.partner.example/", "enabled_events": ["*"], "status": "x"},
            "status",
        ),
        ({"url": 7, "enabled_events": ["*"]}, "url"),
    ],
)
def test_a_bad_endpoint_body_is_a_400_naming_the_parameter(
    payments_handler: ModuleType, api: WebhookApi, aws: dict[str, str], body: Any, param: str
) -> None:
    status, _, answer = api_call(
        payments_handler, new_tenant(aws), "POST", "/v1/webhook_endpoints", body
    )
    assert status == 400
    assert answer["error"]["param"] == param


def test_the_routes_need_the_webhooks_manage_scope(
    payments_handler: ModuleType, api: WebhookApi, aws: dict[str, str]
) -> None:
    partner = new_tenant(aws)
    status, headers, _ = api_call(
        payments_handler, partner, "GET", "/v1/webhook_endpoints", scope="payments:write"
    )
    assert status == 403
    assert "insufficient_scope" in headers["WWW-Authenticate"]


def test_a_rolled_secret_is_shown_once_and_the_old_one_keeps_signing(
    payments_handler: ModuleType, api: WebhookApi, store: DynamoWebhookStore, aws: dict[str, str]
) -> None:
    partner = new_tenant(aws)
    endpoint = _endpoint(payments_handler, partner, "https://hooks.partner.example/r")
    status, headers, rolled = api_call(
        payments_handler,
        partner,
        "POST",
        f"/v1/webhook_endpoints/{endpoint['id']}/roll_secret",
        {"expires_in": 600},
    )
    assert status == 200, rolled
    assert headers["Cache-Control"] == "no-store"
    assert rolled["secret"] != endpoint["secret"]
    stored = store.endpoint(partner.owner, endpoint["id"])
    assert stored is not None
    now = int(time.time())
    assert stored.live_secrets(now) == [rolled["secret"], endpoint["secret"]]
    assert stored.live_secrets(now + 601) == [rolled["secret"]]
    status, _, bad = api_call(
        payments_handler,
        partner,
        "POST",
        f"/v1/webhook_endpoints/{endpoint['id']}/roll_secret",
        {"expires_in": 8 * 86_400},
    )
    assert (status, bad["error"]["param"]) == (400, "expires_in")


def test_events_are_listed_got_and_redelivered_by_their_owners(
    payments_handler: ModuleType,
    api: WebhookApi,
    dispatcher: Dispatcher,
    aws: dict[str, str],
    sqs: Any,
) -> None:
    # Given a payment between two tenants, made into events by the dispatcher
    payer, payee, stranger = new_tenant(aws), new_tenant(aws), new_tenant(aws)
    endpoint = _endpoint(payments_handler, payee, "https://hooks.partner.example/e")
    payment = pay(aws, payer, payee)
    made = dispatcher.record(audit_line(payment, "payment.captured").encode())
    succeeded, captured = made
    receive(sqs, api_queue_url(aws))  # the first deliveries, not this test's subject

    # Then both owners list them, newest first; by type too
    for tenant in (payer, payee):
        status, _, listed = api_call(payments_handler, tenant, "GET", "/v1/events")
        assert status == 200
        assert sorted(e["id"] for e in listed["data"]) == sorted(made)
        assert {e["data"]["object"]["id"] for e in listed["data"]} == {payment.id}
    _, _, by_type = api_call(payments_handler, payee, "GET", "/v1/events?type=payment.captured")
    assert [e["id"] for e in by_type["data"]] == [captured]
    status, _, error = api_call(payments_handler, payee, "GET", "/v1/events?type=token.issued")
    assert (status, error["error"]["param"]) == (400, "type")
    # And get one, with how many of the caller's deliveries are pending
    status, _, event = api_call(payments_handler, payee, "GET", f"/v1/events/{succeeded}")
    assert status == 200
    assert event["type"] == "payment.succeeded"
    assert event["pending_webhooks"] == 1
    assert event["data"]["object"] == payment.public()
    _, _, payers_view = api_call(payments_handler, payer, "GET", f"/v1/events/{succeeded}")
    assert payers_view["pending_webhooks"] == 0  # the payer has no endpoint
    # And a stranger sees nothing
    status, _, _ = api_call(payments_handler, stranger, "GET", f"/v1/events/{succeeded}")
    assert status == 404
    _, _, nothing = api_call(payments_handler, stranger, "GET", "/v1/events")
    assert nothing["data"] == []

    # When the payee asks for a redelivery
    status, _, answer = api_call(
        payments_handler, payee, "POST", f"/v1/events/{succeeded}/redeliver", {}
    )

    # Then a new delivery's first attempt is queued for the payee's endpoint
    assert (status, answer) == (200, {"id": succeeded, "object": "event", "redelivery": "queued"})
    [message] = [DeliveryMessage.from_json(m["Body"]) for m in receive(sqs, api_queue_url(aws))]
    assert (message.event, message.endpoint, message.attempt) == (succeeded, endpoint["id"], 1)
    _, _, event = api_call(payments_handler, payee, "GET", f"/v1/events/{succeeded}")
    assert event["pending_webhooks"] == 2
    # And the payer, with no endpoint, is told so; a stranger gets a 404
    status, _, refused = api_call(
        payments_handler, payer, "POST", f"/v1/events/{succeeded}/redeliver", {}
    )
    assert (status, refused["error"]["code"]) == (400, "no_webhook_endpoints")
    status, _, _ = api_call(
        payments_handler, stranger, "POST", f"/v1/events/{succeeded}/redeliver", {}
    )
    assert status == 404


def test_an_idempotency_key_makes_one_endpoint_and_one_secret_roll(
    payments_handler: ModuleType,
    api: WebhookApi,
    store: DynamoWebhookStore,
    aws: dict[str, str],
    audit_lines: AuditCapture,
) -> None:
    partner = new_tenant(aws)
    url = "https://hooks.partner.example/idem"

    def post(path: str, body: dict[str, Any], key: str | None) -> tuple[int, dict[str, str], Any]:
        headers = {} if key is None else {"Idempotency-Key": key}
        return api_call(payments_handler, partner, "POST", path, body, headers=headers)

    # When a partner's create is sent twice with one key (its first answer was lost)
    created = post("/v1/webhook_endpoints", {"url": url, "enabled_events": ["*"]}, "we-1")
    again = post("/v1/webhook_endpoints", {"url": url, "enabled_events": ["*"]}, "we-1")

    # Then one endpoint exists, and the retry got the first answer, secret and all
    assert created[0] == again[0] == 200
    assert again[2] == created[2]
    assert (again[1]["Idempotent-Replayed"], again[1]["Cache-Control"]) == ("true", "no-store")
    assert "Idempotent-Replayed" not in created[1]
    assert [e.id for e in store.endpoints_of(partner.owner)] == [created[2]["id"]]
    assert len(audit_lines.of_type("webhook_endpoint.created")) == 1
    # And the key with another body is refused; no key at all still creates
    other = post("/v1/webhook_endpoints", {"url": url + "2", "enabled_events": ["*"]}, "we-1")
    assert (other[0], other[2]["error"]["type"]) == (422, "idempotency_error")
    assert post("/v1/webhook_endpoints", {"url": url, "enabled_events": ["*"]}, None)[0] == 200
    assert len(store.endpoints_of(partner.owner)) == 2

    # When a secret roll is sent twice with one key
    roll = f"/v1/webhook_endpoints/{created[2]['id']}/roll_secret"
    rolled = post(roll, {"expires_in": 600}, "roll-1")
    rolled_again = post(roll, {"expires_in": 600}, "roll-1")

    # Then the secret rolled once: the new one and the first, nothing in between
    assert rolled[0] == rolled_again[0] == 200
    assert rolled_again[2]["secret"] == rolled[2]["secret"] != created[2]["secret"]
    stored = store.endpoint(partner.owner, created[2]["id"])
    assert stored is not None
    assert stored.live_secrets(int(time.time())) == [rolled[2]["secret"], created[2]["secret"]]
    assert len(audit_lines.of_type("webhook_endpoint.secret_rolled")) == 1


def test_an_idempotency_key_makes_one_redelivery(
    payments_handler: ModuleType,
    api: WebhookApi,
    dispatcher: Dispatcher,
    aws: dict[str, str],
    sqs: Any,
) -> None:
    # Given an event of the payee's, its first delivery out of the way
    payer, payee = new_tenant(aws), new_tenant(aws)
    _endpoint(payments_handler, payee, "https://hooks.partner.example/redo")
    line = audit_line(pay(aws, payer, payee), "payment.captured")
    succeeded, _ = dispatcher.record(line.encode())
    receive(sqs, api_queue_url(aws))

    # When the redelivery is asked twice with one key
    path = f"/v1/events/{succeeded}/redeliver"
    headers = {"Idempotency-Key": "redo-1"}
    first = api_call(payments_handler, payee, "POST", path, {}, headers=headers)
    second = api_call(payments_handler, payee, "POST", path, {}, headers=headers)

    # Then one delivery was queued, and the retry was answered from the first
    assert first[0] == second[0] == 200
    assert (second[2], second[1]["Idempotent-Replayed"]) == (first[2], "true")
    assert len(receive(sqs, api_queue_url(aws))) == 1


def test_a_key_spent_by_a_racing_twin_is_found_with_its_answer(store: DynamoWebhookStore) -> None:
    # Given a key one request has just spent
    first = Idempotency("ppc_twin", "k-1", "h1").claim(200, '{"id":"evt_1"}', 1_800_000_000)
    store.put_claim(first)

    # When its twin tries to spend it too, then the first claim is what it gets back
    with pytest.raises(KeyTaken) as taken:
        store.put_claim(Idempotency("ppc_twin", "k-1", "h1").claim(200, "{}", 1_800_000_001))
    assert (taken.value.record.request_hash, taken.value.record.body) == ("h1", '{"id":"evt_1"}')
    found = store.idempotency_claim("ppc_twin", "k-1")
    assert found is not None and found.body == '{"id":"evt_1"}'
    assert store.idempotency_claim("ppc_twin", "k-2") is None


def api_queue_url(aws: dict[str, str]) -> str:
    return os.environ[Env.WEBHOOK_QUEUE_URL]


# -- the dispatcher --------------------------------------------------------------------------


def test_a_repeated_audit_record_makes_one_event_and_one_delivery(
    dispatcher_handler: ModuleType,
    dispatcher: Dispatcher,
    store: DynamoWebhookStore,
    aws: dict[str, str],
    sqs: Any,
) -> None:
    # Given a subscribed endpoint and an audit record of a new payment
    payer, payee = new_tenant(aws), new_tenant(aws)
    store.put_endpoint(_stored_endpoint(payee, "https://hooks.partner.example/p"))
    event = kinesis_event(audit_line(pay(aws, payer, payee)))

    # When the stream hands it over twice (the forwarder retried, or the batch did)
    first = dispatcher_handler.lambda_handler(event, LambdaContext())
    second = dispatcher_handler.lambda_handler(event, LambdaContext())

    # Then one event exists, with one delivery, and one message was queued
    assert first == second == {"batchItemFailures": []}
    messages = receive(sqs, os.environ[Env.WEBHOOK_QUEUE_URL])
    [message] = [DeliveryMessage.from_json(m["Body"]) for m in messages]
    assert len(store.deliveries(message.event)) == 1
    stored = store.event(message.event)
    assert stored is not None
    assert stored.dispatched
    assert stored.owners == tuple(sorted((payer.owner, payee.owner)))


def test_an_event_shows_the_payment_as_it_was_though_the_ledger_has_moved_on(
    dispatcher_handler: ModuleType,
    store: DynamoWebhookStore,
    aws: dict[str, str],
    ledger_table: Any,
) -> None:
    # Given an authorization, and the audit line the forwarder made of its stream record
    payer, payee = new_tenant(aws), new_tenant(aws)
    payment = pay(aws, payer, payee, capture="manual")
    item = ledger_table.get_item(Key={"pk": f"PAYMENT#{payment.id}", "sk": "PAYMENT"})["Item"]
    images = {"Keys": {"pk": item["pk"], "sk": "PAYMENT"}, "NewImage": item}
    stream_record = {"eventID": "ev-1", "eventName": "INSERT", "dynamodb": images}
    [created] = events_from(stream_record)

    # When the payment is captured before the dispatcher reads that line
    Ledger(DynamoLedgerStore(aws[Env.LEDGER_TABLE])).capture(
        payee.principal, payment.id, CapturePayment(), Idempotency(payee.client_id, "cap", "h")
    )
    dispatcher_handler.lambda_handler(kinesis_event(audit.line(created)), LambdaContext())

    # Then the payment.created event shows it awaiting capture, as it was, not captured
    created_ms = int(datetime.fromisoformat(created.time).timestamp() * 1000)
    stored = store.event(event_id_for(created.event_id, "payment.created", created_ms))
    assert stored is not None
    shown = json.loads(stored.body)["data"]["object"]
    assert (shown["id"], shown["status"], shown["amount_captured"]) == (
        payment.id, "requires_capture", 0,
    )  # fmt: skip
    assert shown["capture_before"] == payment.expires_at
    assert shown["metadata"] == {} and shown["description"] is None


def test_a_delivery_is_posted_signed_and_recorded(
    dispatcher_handler: ModuleType,
    dispatcher: Dispatcher,
    store: DynamoWebhookStore,
    receiver: Receiver,
    aws: dict[str, str],
    sqs: Any,
) -> None:
    # Given an endpoint at a receiver on this machine, and a refund of a payment
    payer, payee = new_tenant(aws), new_tenant(aws)
    endpoint = _stored_endpoint(payee, receiver.url, ("refund.created",))
    store.put_endpoint(endpoint)
    payment = pay(aws, payer, payee)
    refund_outcome = Ledger(DynamoLedgerStore(aws[Env.LEDGER_TABLE])).refund(
        payee.principal,
        payment.id,
        CreateRefund(amount=200),
        Idempotency(payee.client_id, secrets.token_hex(8), "r"),
    )
    refund_id = json.loads(refund_outcome.body)["id"]
    line = audit_line(payment, "payment.refunded", refund=refund_id, status="refunded")

    # When the audit record comes, and the queued attempt is run
    dispatcher_handler.lambda_handler(kinesis_event(line), LambdaContext())
    messages = receive(sqs, os.environ[Env.WEBHOOK_QUEUE_URL])
    result = dispatcher_handler.lambda_handler(sqs_event(messages), LambdaContext())

    # Then the receiver got refund.created, signed with the endpoint's secret
    assert result == {"batchItemFailures": []}
    [(headers, body)] = receiver.received
    event = verify_signature(body, headers["payplat-signature"], [endpoint.secrets[0].value])
    assert event["type"] == "refund.created"
    assert event["data"]["object"]["id"] == refund_id
    assert event["data"]["object"]["object"] == "refund"
    assert headers["payplat-event-id"] == event["id"]
    # And the delivery is recorded as delivered, with its one attempt
    [delivery] = store.deliveries(event["id"])
    assert (delivery.status, delivery.attempts, delivery.last_result) == ("delivered", 1, "200")
    [attempt] = store.attempts(event["id"])
    assert attempt["result"] == "200"
    assert attempt["delivered"] is True
    assert store.owner_event(payee.owner, event["id"])[1] == 0  # type: ignore[index]


def test_retries_after_a_failure_then_delivers(
    dispatcher_handler: ModuleType,
    dispatcher: Dispatcher,
    store: DynamoWebhookStore,
    receiver: Receiver,
    aws: dict[str, str],
    sqs: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an endpoint that answers 500 twice, then 200
    clock = Clock(time.time())
    monkeypatch.setattr(dispatcher_handler, "clock", clock)
    payer, payee = new_tenant(aws), new_tenant(aws)
    store.put_endpoint(_stored_endpoint(payee, receiver.url))
    receiver.statuses = [500, 500]
    dispatcher_handler.lambda_handler(
        kinesis_event(audit_line(pay(aws, payer, payee))), LambdaContext()
    )

    # When the queue is worked, time moving to each message's due time
    _work_queue(dispatcher_handler, sqs, clock)

    # Then three POSTs of the same event came, the third one delivered
    assert len(receiver.received) == 3
    assert len({headers["payplat-event-id"] for headers, _ in receiver.received}) == 1
    event_id = receiver.received[0][0]["payplat-event-id"]
    [delivery] = store.deliveries(event_id)
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    results = [a["result"] for a in sorted(store.attempts(event_id), key=lambda a: a["attempt"])]
    assert results == ["500", "500", "200"]


def test_after_three_days_of_failures_the_delivery_is_in_the_dlq(
    dispatcher_handler: ModuleType,
    dispatcher: Dispatcher,
    store: DynamoWebhookStore,
    receiver: Receiver,
    aws: dict[str, str],
    sqs: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an endpoint that always answers 500, and a clock the test moves
    clock = Clock(time.time())
    started = clock.now
    monkeypatch.setattr(dispatcher_handler, "clock", clock)
    receiver.statuses = [500] * 1000
    payer, payee = new_tenant(aws), new_tenant(aws)
    store.put_endpoint(_stored_endpoint(payee, receiver.url))
    dispatcher_handler.lambda_handler(
        kinesis_event(audit_line(pay(aws, payer, payee))), LambdaContext()
    )

    # When every attempt is run when due, until nothing is left to run
    _work_queue(dispatcher_handler, sqs, clock)

    # Then the delivery was tried for three days with growing waits, and given up on
    event_id = receiver.received[0][0]["payplat-event-id"]
    attempts = sorted(store.attempts(event_id), key=lambda a: a["attempt"])
    assert len(attempts) == len(receiver.received) > 5
    times = [int(a["at"]) for a in attempts]
    assert times == sorted(times)
    assert times[-1] - times[0] <= 3 * 86_400
    assert times[-1] - started > 86_400  # hours apart by the end, not seconds
    assert all(a["next_retry_at"] is not None for a in attempts[:-1])
    assert attempts[-1].get("next_retry_at") is None
    [delivery] = store.deliveries(event_id)
    assert (delivery.status, delivery.last_result) == ("failed", "500")
    assert store.owner_event(payee.owner, event_id)[1] == 0  # type: ignore[index]
    # And the DLQ holds it, saying which delivery and why
    [parked] = receive(sqs, os.environ[Env.WEBHOOK_DLQ_URL])
    body = json.loads(parked["Body"])
    assert body["reason"] == "retries_exhausted"
    assert (body["delivery"], body["event"], body["attempt"]) == (
        delivery.id,
        event_id,
        len(attempts),
    )


def test_a_crashed_attempt_is_claimed_again_only_after_its_lease(
    store: DynamoWebhookStore, aws: dict[str, str]
) -> None:
    # Given a delivery whose attempt 1 was claimed by a run that then crashed
    payer = new_tenant(aws)
    event = Event("evt_lease0001", "payment.created", 1, (payer.owner,), "{}", "aud-lease")
    assert store.put_event(event, 10**10)
    delivery = Delivery("whd_lease0001", event.id, "we_x", payer.owner, 1)
    assert store.add_delivery(delivery, 10**10)
    assert store.add_delivery(delivery, 10**10) is False  # recorded once
    assert store.claim(event.id, delivery.id, 1, now=100, lease_until=190) is not None

    # Then the same attempt is refused while the lease runs, and granted after it
    assert store.claim(event.id, delivery.id, 1, now=150, lease_until=240) is None
    assert store.claim(event.id, delivery.id, 1, now=191, lease_until=281) is not None
    # And once rescheduled, attempt 1 is done: only attempt 2 may go
    store.reschedule(delivery, 1, next_retry_at=300, result="500")
    assert store.claim(event.id, delivery.id, 1, now=400, lease_until=490) is None
    claimed = store.claim(event.id, delivery.id, 2, now=300, lease_until=390)
    assert claimed is not None
    assert claimed.first_attempt_at == 100
    # And a finished delivery is finished once
    assert store.finish(delivery, 2, "delivered", "200", 301) is True
    assert store.finish(delivery, 2, "delivered", "200", 302) is False
    assert store.owner_event(payer.owner, event.id) == (
        dataclasses.replace(event, owners=(payer.owner,), audit_event=""),
        0,
    )


def test_our_own_failures_are_reported_for_retry_and_malformed_messages_parked(
    dispatcher_handler: ModuleType,
    dispatcher: Dispatcher,
    aws: dict[str, str],
    sqs: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a table that cannot be reached, a good message and one nobody wrote
    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("table unreachable")

    monkeypatch.setattr(dispatcher.store, "claim", unreachable)
    good = DeliveryMessage("whd_1", "evt_1", "we_1", "usr_1", 1, 0).to_json()
    messages = [
        {"MessageId": "m-good", "ReceiptHandle": "r1", "Body": good},
        {"MessageId": "m-bad", "ReceiptHandle": "r2", "Body": "{not json"},
    ]

    # When the batch comes
    result = dispatcher_handler.lambda_handler(sqs_event(messages), LambdaContext())

    # Then only the good message is reported (SQS hands it out again), the other is parked
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-good"}]}
    [parked] = receive(sqs, os.environ[Env.WEBHOOK_DLQ_URL])
    assert parked["Body"] == "{not json"

    # And an audit record that cannot be made into events is reported by its sequence
    monkeypatch.setattr(dispatcher.ledger, "payment", unreachable)
    payer, payee = new_tenant(aws), new_tenant(aws)
    line = audit_line(pay(aws, payer, payee))
    event = kinesis_event('{"type":"access.allowed"}', line, sequence=41)
    result = dispatcher_handler.lambda_handler(event, LambdaContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": str(42).zfill(20)}]}


def _stored_endpoint(tenant: Tenant, url: str, events: tuple[str, ...] = ("*",)) -> Endpoint:
    return Endpoint(
        id=f"we_{secrets.token_hex(10)}",
        owner=tenant.owner,
        url=url,
        enabled_events=events,
        created=int(time.time()),
        secrets=(Secret(new_secret()),),
        client_id=tenant.client_id,
    )


def _work_queue(handler: ModuleType, sqs: Any, clock: Clock, max_rounds: int = 500) -> None:
    """Run the delivery queue dry, moving the clock to each message's due time (what
    waiting in SQS would do)."""
    url = os.environ[Env.WEBHOOK_QUEUE_URL]
    for _ in range(max_rounds):
        messages = receive(sqs, url)
        if not messages:
            return
        due = min(DeliveryMessage.from_json(m["Body"]).not_before for m in messages)
        clock.now = max(clock.now, due)
        result = handler.lambda_handler(sqs_event(messages), LambdaContext())
        assert result == {"batchItemFailures": []}
    raise AssertionError("the queue did not run dry")
