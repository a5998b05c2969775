"""The metrics the functions write, read back from their stdout as CloudWatch would: the real
handlers against moto, each EMF line checked against the catalogue (name, unit, dimension
set), and the "request" log lines Contributor Insights ranks partners by."""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from payplat.audit import events as audit
from payplat.audit.metrics import BY_NAME
from payplat.clients.dal.clients_table import DynamoClientStore
from payplat.clients.registry import register_client
from payplat.config import Env
from payplat.gateway.authorizer import AuthorizationRequest, Unauthenticated, authorize
from payplat.gateway.verify import AccessClaims, InvalidToken
from payplat.observability import logger
from payplat.payments.dal.ledger_table import DynamoLedgerStore
from payplat.payments.ledger import Account
from tests.conftest import invoke, load_event
from tests.integration.test_expirer import ScheduledContext, scheduled_event
from tests.integration.test_oauth import token_event

PAYMENTS_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abc123/live/GET/v1/payments"


@dataclass(frozen=True)
class Value:
    """One metric value of an EMF line, with the dimensions CloudWatch files it under."""

    name: str
    unit: str
    value: float
    dimensions: dict[str, str]
    line: dict[str, Any]


def emf_values(out: str) -> list[Value]:
    values = []
    for text in out.splitlines():
        if not text.startswith("{") or '"_aws"' not in text:
            continue
        line = json.loads(text)
        for directive in line["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "Payplat"
            [names] = directive["Dimensions"]
            for metric in directive["Metrics"]:
                spec = BY_NAME[metric["Name"]]  # KeyError: a metric outside the catalogue
                assert (metric["Unit"], names) == (spec.unit, ["service", *spec.dimensions])
                dimensions = {name: line[name] for name in names}
                values.append(
                    Value(metric["Name"], metric["Unit"], line[metric["Name"]], dimensions, line)
                )
    return values


def named(values: list[Value], name: str, **dimensions: str) -> list[Value]:
    return [
        value
        for value in values
        if value.name == name and dimensions.items() <= value.dimensions.items()
    ]


def request_lines(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(text) for text in out.splitlines() if text.startswith("{")]
    return [line for line in lines if line.get("message") == "request"]


@pytest.fixture
def out(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """capsys, with Powertools' log handler (bound to the stdout of import time) pointed at
    the captured stdout as well."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.stream  # may be a capture pytest has closed since: not flushed
    handler.stream = _Stdout()
    yield capsys
    handler.stream = previous


class _Stdout:
    """Whatever sys.stdout is when a line is written (capsys swaps it per test phase)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@dataclass(frozen=True)
class Payer:
    """A partner client acting for a fresh account holder, with a EUR account to pay from
    and a payee of its own: no other test's lists or balances see what it does."""

    client_id: str
    client_secret: str
    scope: str
    source: str
    destination: str


@pytest.fixture(scope="module")
def payer(aws: dict[str, str]) -> Payer:
    suffix = secrets.token_hex(6)
    owner, payee = f"usr_metrics_{suffix}", f"usr_payee_{suffix}"
    scopes = frozenset({"payments:read", "payments:write", "accounts:read"})
    client, secret = register_client(
        DynamoClientStore(aws[Env.CLIENTS_TABLE]), name="metrics", scopes=scopes, owner=owner
    )
    assert secret is not None
    ledger = DynamoLedgerStore(aws[Env.LEDGER_TABLE])
    source, destination = f"acct_metrics_{suffix}", f"acct_payee_{suffix}"
    ledger.open_account(Account(source, owner, "EUR", 100_000, 0, int(time.time())))
    ledger.open_account(Account(destination, payee, "EUR", 0, 0, int(time.time())))
    return Payer(client.client_id, secret, " ".join(sorted(scopes)), source, destination)


@pytest.fixture(scope="module")
def expirer(aws: dict[str, str]) -> ModuleType:
    return importlib.import_module("functions.expirer.handler")


def api_event(
    client: Any,
    method: str,
    resource: str,
    path: str | None = None,
    body: dict[str, Any] | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """A proxy event for the payments function, as API Gateway sends it once the
    authorizer admitted `client`."""
    event = load_event("apigw_rest_list_payments")
    path = path or resource
    event.update(resource=resource, path=path, httpMethod=method)
    event["requestContext"].update(resourcePath=resource, httpMethod=method, path=f"/live{path}")
    event["requestContext"]["authorizer"].update(
        principalId=client.client_id, client_id=client.client_id, sub=client.client_id
    )
    event["requestContext"]["authorizer"]["scope"] = client.scope
    headers = {"Content-Type": "application/json", **({"Idempotency-Key": key} if key else {})}
    for name, value in headers.items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    event["body"] = json.dumps(body) if body is not None else None
    return event


def pay(handler: ModuleType, client: Payer, key: str, **fields: Any) -> tuple[int, Any, Any]:
    body = {
        "source_account": client.source,
        "destination_account": client.destination,
        "amount": 100,
        "currency": "EUR",
        **fields,
    }
    return invoke(handler, api_event(client, "POST", "/v1/payments", body=body, key=key))


# -- the request path -----------------------------------------------------------------------


def test_every_answer_counts_its_request_and_measures_its_latency_by_route(
    payments_handler: ModuleType,
    oauth_handler: ModuleType,
    seeded: dict[str, Any],
    payer: Payer,
    out: pytest.CaptureFixture[str],
) -> None:
    merchant = seeded["merchant"]
    # When a token is issued, payments are listed, and a request is refused
    form = {"grant_type": "client_credentials"}
    assert (
        invoke(
            oauth_handler, token_event(form, basic=(merchant.client_id, merchant.client_secret))
        )[0]
        == 200
    )
    assert invoke(payments_handler, api_event(payer, "GET", "/v1/payments"))[0] == 200
    assert pay(payments_handler, payer, secrets.token_hex(8), amount=-1)[0] == 400

    # Then each route's line has one Requests by status class and one Latency in ms
    values = emf_values(out.readouterr().out)
    for route, status_class in (
        ("token", "2xx"),
        ("list_payments", "2xx"),
        ("create_payment", "4xx"),
    ):
        [requests] = named(values, "Requests", route=route)
        assert requests.dimensions["status_class"] == status_class
        assert requests.value == 1
        [latency] = named(values, "Latency", route=route)
        assert latency.dimensions == {"service": "payplat", "route": route}
        assert latency.unit == "Milliseconds"
        assert 0 < latency.value < 30_000
        assert latency.line is requests.line  # one line a request


def test_an_admitted_request_logs_its_client_id_and_nothing_secret(
    payments_handler: ModuleType, payer: Payer, out: pytest.CaptureFixture[str]
) -> None:
    # When the payer lists its payments, and a request comes with no client in the context
    assert invoke(payments_handler, api_event(payer, "GET", "/v1/payments"))[0] == 200
    anonymous = api_event(payer, "GET", "/v1/payments")
    anonymous["requestContext"]["authorizer"] = {}
    assert invoke(payments_handler, anonymous)[0] == 401

    # Then the admitted request's log line names the client (a field, for Contributor
    # Insights), and the refused one names none
    admitted, refused = request_lines(out.readouterr().out)
    assert (admitted["route"], admitted["status"]) == ("list_payments", 200)
    assert admitted["client_id"] == payer.client_id
    assert admitted["latency_ms"] >= 0
    assert (refused["status"], "client_id" in refused) == (401, False)
    assert payer.client_secret not in json.dumps(admitted)


def test_the_token_endpoint_logs_the_client_id_its_gate_admitted(
    oauth_handler: ModuleType, seeded: dict[str, Any], out: pytest.CaptureFixture[str]
) -> None:
    merchant = seeded["merchant"]
    form = {"grant_type": "client_credentials"}
    assert (
        invoke(
            oauth_handler, token_event(form, basic=(merchant.client_id, merchant.client_secret))
        )[0]
        == 200
    )

    [line] = request_lines(out.readouterr().out)
    assert line["client_id"] == merchant.client_id


def test_a_replayed_post_is_counted_by_route(
    payments_handler: ModuleType, payer: Payer, out: pytest.CaptureFixture[str]
) -> None:
    # Given a payment
    key = f"metrics-{secrets.token_hex(6)}"
    first_status, _, first = pay(payments_handler, payer, key)
    assert first_status == 200
    assert named(emf_values(out.readouterr().out), "IdempotentReplays") == []

    # When the same request comes again
    status, headers, again = pay(payments_handler, payer, key)

    # Then it is answered from the first, and counted as a replay of create_payment
    assert (status, headers["Idempotent-Replayed"], again) == (200, "true", first)
    [replay] = named(emf_values(out.readouterr().out), "IdempotentReplays")
    assert replay.dimensions == {"service": "payplat", "route": "create_payment"}
    assert replay.value == 1


def test_a_money_movement_names_its_client_as_a_property_not_a_dimension(
    payments_handler: ModuleType, payer: Payer, out: pytest.CaptureFixture[str]
) -> None:
    assert pay(payments_handler, payer, secrets.token_hex(8), amount=250)[0] == 200

    values = emf_values(out.readouterr().out)
    [count] = named(values, "MoneyMovements", kind="payment", currency="EUR")
    [moved] = named(values, "MoneyMovedMinorUnits", kind="payment", currency="EUR")
    assert (count.value, moved.value) == (1, 250)
    assert count.line is moved.line
    assert count.line["client_id"] == payer.client_id
    assert "client_id" not in count.dimensions
    assert all("client_id" not in names for d in count.line["_aws"]["CloudWatchMetrics"]
               for names in d["Dimensions"])  # fmt: skip


# -- the expirer's gauges -------------------------------------------------------------------


def pending(expirer: ModuleType, out: pytest.CaptureFixture[str]) -> dict[str, tuple[float, float]]:
    """Run the expirer (now) and read its gauges: currency -> (count, minor units)."""
    out.readouterr()
    expirer.lambda_handler(scheduled_event(), ScheduledContext())
    values = emf_values(out.readouterr().out)
    counts = {v.dimensions["currency"]: v for v in named(values, "PendingCaptures")}
    held = {v.dimensions["currency"]: v for v in named(values, "PendingCaptureMinorUnits")}
    assert counts.keys() == held.keys()
    for currency, gauge in counts.items():
        assert gauge.line is held[currency].line  # both of a currency on one line
    return {currency: (counts[currency].value, held[currency].value) for currency in counts}


def test_the_expirer_gauges_what_awaits_capture_by_currency(
    expirer: ModuleType,
    payments_handler: ModuleType,
    payer: Payer,
    out: pytest.CaptureFixture[str],
) -> None:
    # Given what awaits capture now (other tests may have left authorizations)
    before = pending(expirer, out).get("EUR", (0, 0))

    # When the payer authorizes a payment of 7.77 EUR to be captured later
    status, _, payment = pay(
        payments_handler, payer, secrets.token_hex(8), amount=777, capture_method="manual"
    )
    assert (status, payment["status"]) == (200, "requires_capture")

    # Then the next run counts one more pending capture, holding 777 more minor units
    assert pending(expirer, out)["EUR"] == (before[0] + 1, before[1] + 777)

    # And once it is canceled, it is no longer pending
    path = f"/v1/payments/{payment['id']}/cancel"
    cancel = api_event(
        payer, "POST", "/v1/payments/{payment_id}/cancel", path, {}, secrets.token_hex(8)
    )
    cancel["pathParameters"] = {"payment_id": payment["id"]}
    assert invoke(payments_handler, cancel)[0] == 200
    assert pending(expirer, out).get("EUR", (0, 0)) == before


def test_the_gauge_never_fails_or_delays_the_sweep(
    expirer: ModuleType, monkeypatch: pytest.MonkeyPatch, out: pytest.CaptureFixture[str]
) -> None:
    # When reading the index fails, the run still succeeds, and says what it missed
    def unreachable() -> dict[str, tuple[int, int]]:
        raise ConnectionError("the index is unreachable")

    monkeypatch.setattr(expirer.store, "pending_captures", unreachable)
    assert expirer.lambda_handler(scheduled_event(), ScheduledContext()) == {"expired": 0}
    written = out.readouterr().out
    assert named(emf_values(written), "PendingCaptures") == []
    assert "pending captures not measured" in written

    # And with no time left, the gauge is not read at all
    assert expirer.lambda_handler(scheduled_event(), ScheduledContext(5_000)) == {"expired": 0}
    assert "pending captures not measured: out of time" in out.readouterr().out


class PagedClient:
    """A DynamoDB client whose queries answer the given pages, in order."""

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages
        self.requests: list[dict[str, Any]] = []

    def query(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return self.pages[len(self.requests) - 1]


def test_the_pending_gauge_reads_every_page_of_the_index_for_two_attributes() -> None:
    def item(amount: int, currency: str) -> dict[str, Any]:
        return {"amount": {"N": str(amount)}, "currency": {"S": currency}}

    more = {"gsi2pk": {"S": "PENDING_CAPTURE"}, "gsi2sk": {"S": "1"}}
    client = PagedClient(
        [
            {"Items": [item(100, "EUR"), item(5, "JPY")], "LastEvaluatedKey": more},
            {"Items": [item(250, "EUR")]},
        ]
    )

    totals = DynamoLedgerStore("ledger", client=client).pending_captures()

    assert totals == {"EUR": (2, 350), "JPY": (1, 5)}
    first, second = client.requests
    assert (first["IndexName"], first["KeyConditionExpression"]) == (
        "by_expiry",
        "gsi2pk = :pending",  # all pending, due or not
    )
    assert first["ProjectionExpression"] == "#amount, #currency"
    assert "ExclusiveStartKey" not in first and second["ExclusiveStartKey"] == more


# -- the authorizer's refusals --------------------------------------------------------------


class StubVerifier:
    """A verifier with a fixed answer: the claims, or the InvalidToken reason."""

    def __init__(self, answer: AccessClaims | str) -> None:
        self.answer = answer

    def verify(self, token: str) -> AccessClaims:
        if isinstance(self.answer, str):
            raise InvalidToken(self.answer)
        return self.answer


def decide(verifier: StubVerifier, authorization: str | None = "Bearer abc.def.ghi") -> None:
    request = AuthorizationRequest(authorization, PAYMENTS_ARN, audit.Origin())
    with contextlib.suppress(Unauthenticated):  # a refusal: the metric is the point here
        authorize(request, verifier)  # type: ignore[arg-type]


def claims(*scopes: str) -> AccessClaims:
    return AccessClaims("ppc_1", "ppc_1", frozenset(scopes), "jti_1", 2_000_000_000)


@pytest.mark.parametrize(
    ("verifier", "authorization", "reason"),
    [
        (StubVerifier("expired"), "Bearer abc.def.ghi", "expired"),
        (StubVerifier("bad_signature"), "Bearer abc.def.ghi", "bad_signature"),
        (StubVerifier("expired"), None, "missing_token"),
        (StubVerifier(claims("accounts:read")), "Bearer abc.def.ghi", "insufficient_scope"),
    ],
)
def test_the_authorizer_counts_each_refusal_by_its_reason(
    verifier: StubVerifier,
    authorization: str | None,
    reason: str,
    out: pytest.CaptureFixture[str],
) -> None:
    decide(verifier, authorization)

    [denied] = emf_values(out.readouterr().out)
    assert (denied.name, denied.value) == ("AccessDenied", 1)
    assert denied.dimensions == {"service": "payplat", "reason": reason}
    assert denied.line["type"] == "access.denied"  # on the decision's audit line


def test_an_allowed_decision_is_audited_without_a_metric(
    out: pytest.CaptureFixture[str],
) -> None:
    decide(StubVerifier(claims("payments:read")))

    [line] = [json.loads(text) for text in out.readouterr().out.splitlines()]
    assert line["type"] == "access.allowed"
    assert "_aws" not in line
