"""Money movements as audit events, read off the ledger table's stream: what changed on a
payment (or which refund was written) says what happened, and the `actor` the ledger stamped
on the item says who did it.

The event id is derived from the stream record's own id, so when the forwarder's batch is
retried the same change yields the same event, and the trail deduplicates by `event_id`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from payplat.audit import events as audit

# uuid5 namespace for ledger-derived event ids (fixed: ids must be stable across deploys).
_NAMESPACE = uuid.UUID("6b1f3c52-2f0e-4a47-9a43-5b7e8cd0a1f4")
_RELEASED = {"expired": "payment.expired"}


def events_from(record: Mapping[str, Any]) -> list[audit.AuditEvent]:
    """The audit events one DynamoDB stream record stands for (none for items that are not
    payments or refunds, or for changes that move no money: a view, a refund's running total).
    `record` is a stream record with its images already deserialized to plain values."""
    images = record.get("dynamodb", {})
    new = images.get("NewImage") or {}
    old = images.get("OldImage") or {}
    sk = str((images.get("Keys") or {}).get("sk") or new.get("sk") or old.get("sk") or "")
    if record.get("eventName") == "REMOVE" or not new:
        return []  # ledger records are never deleted; TTL'd claims are not money
    if sk == "PAYMENT":
        types = _payment_types(new, old)
        refund = None
    elif sk.startswith("REFUND#") and record.get("eventName") == "INSERT":
        types, refund = ["payment.refunded"], new
    else:
        return []
    when = _time(images.get("ApproximateCreationDateTime"))
    return [
        _event(type_, new if refund is None else refund, record, index, when)
        for index, type_ in enumerate(types)
    ]


def _payment_types(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[str]:
    status, before = new.get("status"), old.get("status")
    if not old:  # a new payment
        if status == "failed":
            return ["payment.failed"]
        # Automatic capture moves the money in the same transaction as the creation.
        return (
            ["payment.created", "payment.captured"]
            if status == "succeeded"
            else ["payment.created"]
        )
    if status == before:
        return []  # a refund's running total: the refund item is the event
    if status == "succeeded":
        return ["payment.captured"]
    if status == "canceled":
        return [_RELEASED.get(str(new.get("cancellation_reason")), "payment.canceled")]
    return []


def _event(
    type_: str, item: Mapping[str, Any], record: Mapping[str, Any], index: int, when: str
) -> audit.AuditEvent:
    actor = item.get("actor") or {}
    refund = type_ == "payment.refunded"
    payment_id = str(item["payment"] if refund else item["id"])
    details: dict[str, Any] = {
        "payment": payment_id,
        "amount": int(item["amount"]),
        "currency": item["currency"],
        "status": "refunded" if refund else item["status"],
    }
    if refund:
        details["refund"] = item["id"]
    else:
        details.update(
            payer=item.get("payer"),
            payee=item.get("payee"),
            source_account=item.get("source_account"),
            destination_account=item.get("destination_account"),
            amount_captured=int(item.get("amount_captured") or 0),
            # The rest of the payment's state at this change: a webhook event shows the
            # payment as it was then, though the ledger may have moved on by delivery.
            amount_refunded=int(item.get("amount_refunded") or 0),
            expires_at=_optional_int(item.get("expires_at")),
            canceled_at=_optional_int(item.get("canceled_at")),
            cancellation_reason=item.get("cancellation_reason"),
        )
        if item.get("failure_code"):
            details["failure_code"] = item["failure_code"]
    return audit.AuditEvent(
        type=type_,
        outcome="failure" if type_ == "payment.failed" else "success",
        actor=audit.Actor(client_id=actor.get("client_id"), sub=actor.get("sub")),
        origin=audit.Origin(request_id=actor.get("request_id")),
        resource=f"payment/{payment_id}",
        reason=item.get("failure_code") if type_ == "payment.failed" else None,
        details={k: v for k, v in details.items() if v is not None},
        event_id=str(uuid.uuid5(_NAMESPACE, f"{record.get('eventID')}#{index}")),
        time=when,
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _time(epoch: Any) -> str:
    """The change's time as the stream recorded it (seconds); now if absent."""
    moment = datetime.fromtimestamp(float(epoch), UTC) if epoch else datetime.now(UTC)
    return moment.isoformat(timespec="milliseconds")
