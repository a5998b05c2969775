"""Money movements as audit events: each ledger change read off the table's stream becomes
the event a finance auditor expects, named after what happened, attributed to who did it,
valid against the published schema, and with an id that a retry reproduces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from payplat.audit import events as audit
from payplat.payments.ledger_audit import events_from
from tests.conftest import AUDIT_SCHEMA, ROOT

ACTOR = {"client_id": "ppc_shop", "sub": "ppc_shop", "request_id": "req-1"}


def payment(**changes: Any) -> dict[str, Any]:
    return {
        "pk": "PAYMENT#pay_1",
        "sk": "PAYMENT",
        "id": "pay_1",
        "payer": "usr_alice",
        "payee": "usr_bob",
        "source_account": "acct_alice_eur",
        "destination_account": "acct_bob_eur",
        "amount": 5000,
        "currency": "EUR",
        "status": "requires_capture",
        "amount_captured": 0,
        "actor": ACTOR,
        **changes,
    }


def record(
    name: str, new: dict[str, Any] | None, old: dict[str, Any] | None = None, event_id: str = "ev1"
) -> dict[str, Any]:
    keys = {"pk": (new or old or {}).get("pk"), "sk": (new or old or {}).get("sk")}
    images: dict[str, Any] = {"Keys": keys, "ApproximateCreationDateTime": 1_800_000_000}
    if new is not None:
        images["NewImage"] = new
    if old is not None:
        images["OldImage"] = old
    return {"eventID": event_id, "eventName": name, "dynamodb": images}


def types(events: list[audit.AuditEvent]) -> list[str]:
    return [event.type for event in events]


@pytest.mark.parametrize(
    ("name", "new", "old", "expected"),
    [
        ("INSERT", payment(), None, ["payment.created"]),
        (
            "INSERT",
            payment(status="succeeded", amount_captured=5000),
            None,
            ["payment.created", "payment.captured"],
        ),
        (
            "INSERT",
            payment(status="failed", failure_code="insufficient_funds"),
            None,
            ["payment.failed"],
        ),
        (
            "MODIFY",
            payment(status="succeeded", amount_captured=3000),
            payment(),
            ["payment.captured"],
        ),
        (
            "MODIFY",
            payment(status="canceled", cancellation_reason="requested_by_customer"),
            payment(),
            ["payment.canceled"],
        ),
        (
            "MODIFY",
            payment(status="canceled", cancellation_reason="expired"),
            payment(),
            ["payment.expired"],
        ),
        # a refund's running total on the payment: the refund item is the event
        (
            "MODIFY",
            payment(status="succeeded", amount_refunded=100),
            payment(status="succeeded"),
            [],
        ),
        # ledger records are never removed; a TTL'd idempotency claim is not money
        ("REMOVE", None, payment(), []),
    ],
    ids=[
        "authorized",
        "paid",
        "failed",
        "captured",
        "canceled",
        "expired",
        "refund-total",
        "remove",
    ],
)
def test_each_change_is_the_event_it_stands_for(
    name: str, new: dict[str, Any] | None, old: dict[str, Any] | None, expected: list[str]
) -> None:
    events = events_from(record(name, new, old))
    assert types(events) == expected
    for event in events:
        document = event.as_dict()
        AUDIT_SCHEMA.validate(document)
        assert document["actor"] == {"client_id": "ppc_shop", "sub": "ppc_shop"}
        assert document["origin"] == {"request_id": "req-1"}
        assert document["resource"] == "payment/pay_1"
        assert document["details"]["amount"] == 5000


def test_a_refund_is_an_event_with_its_own_id() -> None:
    refund = {
        "pk": "PAYMENT#pay_1",
        "sk": "REFUND#000000000001#re_1",
        "id": "re_1",
        "payment": "pay_1",
        "amount": 1000,
        "currency": "EUR",
        "actor": ACTOR,
    }
    [event] = events_from(record("INSERT", refund))
    assert event.type == "payment.refunded"
    assert event.details == {
        "payment": "pay_1",
        "amount": 1000,
        "currency": "EUR",
        "status": "refunded",
        "refund": "re_1",
    }
    AUDIT_SCHEMA.validate(event.as_dict())


def test_other_items_are_not_events() -> None:
    for sk in ("VIEW#usr_bob", "ACCOUNT", "ENTRY#ent_1", "IDEMPOTENCY"):
        assert events_from(record("INSERT", {**payment(), "sk": sk})) == []


def test_a_retried_record_yields_the_same_event_ids() -> None:
    first = events_from(record("INSERT", payment(status="succeeded"), event_id="abc"))
    again = events_from(record("INSERT", payment(status="succeeded"), event_id="abc"))
    other = events_from(record("INSERT", payment(status="succeeded"), event_id="abd"))
    assert [e.event_id for e in first] == [e.event_id for e in again]
    assert len({e.event_id for e in first}) == 2  # created and captured differ
    assert not {e.event_id for e in first} & {e.event_id for e in other}


def test_the_expiry_sweep_is_named_as_the_actor() -> None:
    sweep = {"client_id": "payplat", "sub": "payplat-expirer"}
    [event] = events_from(
        record(
            "MODIFY",
            payment(status="canceled", cancellation_reason="expired", actor=sweep),
            payment(),
        )
    )
    assert event.actor == audit.Actor(client_id="payplat", sub="payplat-expirer")


def test_the_published_schema_is_the_one_in_the_code() -> None:
    published = json.loads(Path(ROOT / "docs" / "audit-event.schema.json").read_text())
    assert published == audit.json_schema()


def test_an_unknown_event_type_is_refused() -> None:
    with pytest.raises(ValueError, match="not an audit event type"):
        audit.line(audit.AuditEvent(type="made.up", outcome="success"))
