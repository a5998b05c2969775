"""Nothing is lost on the way to the audit stream, and nothing is doubled: the real ledger,
forwarder and sealer against moto, with the Kinesis client failing while money moves."""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest

from infra.local.audit_pipeline import AuditStreamSource, LedgerStreamSource
from infra.local.audit_shipper import AuditShipper
from infra.resources import LEDGER
from payplat.audit import events as audit
from payplat.audit.dal.archive import AuditArchive, KmsSignatureCheck
from payplat.audit.dal.stream import AuditStream
from payplat.config import Env
from payplat.payments.dal.ledger_table import DynamoLedgerStore
from payplat.payments.idempotency import Idempotency
from payplat.payments.ledger import Account, Ledger
from payplat.payments.requests import CapturePayment, CreatePayment, CreateRefund
from payplat.principal import Principal
from tests.conftest import LambdaContext


class FailingKinesis:
    """A Kinesis client that is down for the next `outage` PutRecords calls, then works."""

    def __init__(self, real: Any, outage: int = 0) -> None:
        self._real = real
        self.outage = outage
        self.calls = 0

    def put_records(self, **request: Any) -> Any:
        self.calls += 1
        if self.outage > 0:
            self.outage -= 1
            raise ConnectionError("kinesis is down")
        return self._real.put_records(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.fixture(scope="module")
def forwarder(aws: dict[str, str]) -> ModuleType:
    return importlib.import_module("functions.audit_forwarder.handler")


@pytest.fixture(scope="module")
def sealer(aws: dict[str, str]) -> ModuleType:
    return importlib.import_module("functions.audit_sealer.handler")


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without the waits, records without the settling delay (no moto race here:
    nothing else writes while a test polls)."""
    monkeypatch.setattr("infra.local.audit_pipeline.time.sleep", lambda _s: None)
    monkeypatch.setattr(LedgerStreamSource, "SETTLE_S", 0.0)


def kinesis_events(aws: dict[str, str]) -> list[dict[str, Any]]:
    stream = AuditStream(aws[Env.AUDIT_STREAM])
    return [
        json.loads(line)
        for shard in stream.shards()
        for batch in stream.read(shard)
        for record in batch
        for line in audit.unpack(record.data)
    ]


def move_money(aws: dict[str, str], tag: str) -> str:
    """A manual payment, captured, refunded: four ledger changes, four audit events."""
    store = DynamoLedgerStore(aws[Env.LEDGER_TABLE])
    now = int(time.time())
    for account, owner in ((f"acct_{tag}_a", f"usr_{tag}a"), (f"acct_{tag}_b", f"usr_{tag}b")):
        store.open_account(Account(account, owner, "EUR", 100_000, 0, now))
    ledger = Ledger(store)
    payer = Principal(
        "ppc_payer",
        "ppc_payer",
        frozenset(),
        "j",
        f"usr_{tag}a",
        "standard",
        request_id=f"req-{tag}",
    )
    payee = Principal("ppc_payee", "ppc_payee", frozenset(), "j", f"usr_{tag}b", "standard")
    created = ledger.create_payment(
        payer,
        CreatePayment(
            source_account=f"acct_{tag}_a",
            destination_account=f"acct_{tag}_b",
            amount=5000,
            currency="EUR",
            capture_method="manual",
        ),
        Idempotency("ppc_payer", f"{tag}-1", "h1"),
    )
    payment_id = json.loads(created.body)["id"]
    ledger.capture(
        payee, payment_id, CapturePayment(amount=4000), Idempotency("ppc_payee", f"{tag}-2", "h2")
    )
    ledger.refund(
        payee, payment_id, CreateRefund(amount=1000), Idempotency("ppc_payee", f"{tag}-3", "h3")
    )
    return payment_id


def ledger_source(aws: dict[str, str], forwarder: ModuleType) -> LedgerStreamSource:
    arn = boto3.client("dynamodb").describe_table(TableName=aws[LEDGER.env])["Table"][
        "LatestStreamArn"
    ]
    dead: list[str] = []
    region = boto3.session.Session().region_name
    # An explicit endpoint: moto's in-process mock misroutes the default one (server mode,
    # which `make run` uses, does not care).
    streams = boto3.client(
        "dynamodbstreams", endpoint_url=f"https://streams.dynamodb.{region}.amazonaws.com"
    )
    source = LedgerStreamSource(
        streams,
        arn,
        lambda event: forwarder.lambda_handler(event, LambdaContext()),
        dead.append,
    )
    source.dead_letters = dead  # type: ignore[attr-defined]
    return source


@pytest.fixture
def flaky_forwarder(forwarder: ModuleType) -> Iterator[FailingKinesis]:
    real = forwarder.stream._client
    flaky = FailingKinesis(real)
    forwarder.stream._client = flaky
    yield flaky
    forwarder.stream._client = real


def test_money_events_survive_a_kinesis_outage_without_loss_or_double(
    aws: dict[str, str], forwarder: ModuleType, flaky_forwarder: FailingKinesis, fast: None
) -> None:
    # Given the audit stream down for the forwarder's next three attempts
    source = ledger_source(aws, forwarder)
    source.poll()  # whatever earlier tests left in the stream goes through first
    flaky_forwarder.outage = 3

    # When money moves meanwhile and the event source keeps delivering
    payment_id = move_money(aws, "outage")
    source.poll()

    # Then after the outage every event is in the stream, exactly once
    mine = [e for e in kinesis_events(aws) if e.get("resource") == f"payment/{payment_id}"]
    assert sorted(e["type"] for e in mine) == sorted(
        ["payment.created", "payment.captured", "payment.refunded"]
    )
    assert len({e["event_id"] for e in mine}) == len(mine)
    assert flaky_forwarder.calls >= 4  # three refused attempts, then the delivery
    # And each names who moved the money, and for which request
    [created] = [e for e in mine if e["type"] == "payment.created"]
    assert created["actor"] == {"client_id": "ppc_payer", "sub": "ppc_payer"}
    assert created["origin"] == {"request_id": "req-outage"}
    assert source.dead_letters == []  # type: ignore[attr-defined]


def test_a_retried_batch_repeats_event_ids_never_invents_new_ones(
    aws: dict[str, str], forwarder: ModuleType, fast: None
) -> None:
    # Given the forwarder's first delivery of a batch lost after Kinesis took it
    source = ledger_source(aws, forwarder)
    source.poll()
    payment_id = move_money(aws, "retry")
    real_handler = forwarder.lambda_handler
    attempts: list[int] = []

    def lose_first_answer(event: dict[str, Any]) -> Any:
        result = real_handler(event, LambdaContext())
        attempts.append(len(event["Records"]))
        if len(attempts) == 1:  # as if the invocation timed out after writing
            raise TimeoutError("the invocation timed out")
        return result

    source._invoke = lose_first_answer
    source.poll()

    # Then the stream holds each event twice at most, with the same id and the same bytes,
    # and the trail (deduplicated by event_id) holds each once
    mine = [e for e in kinesis_events(aws) if e.get("resource") == f"payment/{payment_id}"]
    by_id: dict[str, list[dict[str, Any]]] = {}
    for event in mine:
        by_id.setdefault(event["event_id"], []).append(event)
    assert len(attempts) == 2
    assert sorted(e[0]["type"] for e in by_id.values()) == sorted(
        ["payment.created", "payment.captured", "payment.refunded"]
    )
    assert all(all(copy == copies[0] for copy in copies) for copies in by_id.values())


def test_decision_lines_queued_during_an_outage_all_arrive(aws: dict[str, str]) -> None:
    real = boto3.client("kinesis")
    flaky = FailingKinesis(real, outage=3)
    shipper = AuditShipper(flaky, aws[Env.AUDIT_STREAM])
    shipper.start()
    try:
        ids = []
        for n in range(20):
            event = audit.AuditEvent(type="login.failed", outcome="failure", details={"n": n})
            ids.append(event.event_id)
            audit.record(event)
    finally:
        shipper.stop()  # drains the queue, retrying through the outage
    arrived = {e["event_id"] for e in kinesis_events(aws)}
    assert set(ids) <= arrived
    assert flaky.calls > 3


def test_the_sealed_trail_verifies_against_the_archive(
    aws: dict[str, str], forwarder: ModuleType, sealer: ModuleType, fast: None
) -> None:
    # Given money moved and forwarded, and the sealer run over the whole stream
    source = ledger_source(aws, forwarder)
    move_money(aws, "sealed")
    source.poll()
    stream = AuditStream(aws[Env.AUDIT_STREAM])
    arn = boto3.client("kinesis").describe_stream_summary(StreamName=stream.name)[
        "StreamDescriptionSummary"
    ]["StreamARN"]
    AuditStreamSource(stream, arn, lambda e: sealer.lambda_handler(e, LambdaContext())).poll()

    # When the archive holds what the stream held (Firehose's job)
    archive = AuditArchive(aws[Env.AUDIT_ARCHIVE_BUCKET], aws[Env.AUDIT_TABLE])
    records = [
        line
        for shard in stream.shards()
        for b in stream.read(shard)
        for r in b
        for line in audit.unpack(r.data)
    ]
    archive.put_events("events/2026/11/29/00/test.gz", records)

    # Then every sealed event is there, unmodified, in order, under valid signatures
    from payplat.audit.chain import verify

    result = verify(archive.seals(), archive.archived_events(), KmsSignatureCheck())
    assert result.ok, result.breaks
    assert result.events >= 3 and result.seals >= 1
