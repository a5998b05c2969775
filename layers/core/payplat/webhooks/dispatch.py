"""λ webhook_dispatcher's work: webhook events made from the audit stream's money movements
(each belongs to the payment's payer and payee and carries the object as the API showed it at
that movement; its id derives from the audit event's, so a retried record makes no second
event), fanned out to subscribed endpoints, and each delivery's attempts: a signed POST,
retried with full-jitter backoff for three days, then parked in the DLQ.

Duplicates are harmless by construction: an attempt first claims its delivery with a
conditional update (attempt n only after n-1, or after a crashed attempt's lease ran out), so
a message SQS hands out twice makes one POST, not two."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from payplat.observability import logger
from payplat.payments import models as payments_models
from payplat.payments.ledger import Payment
from payplat.webhooks import models, ssrf
from payplat.webhooks.objects import (
    CANCELED,
    DELIVERED,
    DELIVERY_LEASE_S,
    ENABLED,
    EVENT_RETENTION_S,
    FAILED,
    Attempt,
    Clock,
    Delivery,
    DeliveryMessage,
    DeliveryQueue,
    Endpoint,
    Event,
    LedgerObjects,
    Poster,
    PostResult,
    RetryPolicy,
    WebhookStore,
    compact,
    event_id_for,
    first_delivery_id,
    queue_first_attempt,
)
from payplat.webhooks.signatures import EVENT_ID_HEADER, SIGNATURE_HEADER, sign

# The audit stream's money events and the webhook events each one makes.
AUDIT_TO_EVENTS: Mapping[str, tuple[str, ...]] = {
    "payment.created": ("payment.created",),
    "payment.captured": ("payment.succeeded", "payment.captured"),
    "payment.failed": ("payment.failed",),
    "payment.canceled": ("payment.canceled",),
    "payment.expired": ("payment.expired",),
    "payment.refunded": ("refund.created",),
}

USER_AGENT = "payplat-webhooks/1"


def as_recorded(payment: Payment, details: Mapping[str, Any]) -> Payment:
    """The payment as the audit event recorded it: its state (status, amounts, capture
    deadline, cancellation) from the event, for the ledger may have moved on since (a
    payment captured a second after it was made); the rest, which never changes, from the
    ledger."""
    if "amount_refunded" not in details:  # recorded before events carried the whole state
        return payment

    def optional_int(name: str) -> int | None:
        return None if details.get(name) is None else int(details[name])

    return replace(
        payment,
        status=str(details["status"]),
        amount_captured=int(details["amount_captured"]),
        amount_refunded=int(details["amount_refunded"]),
        expires_at=optional_int("expires_at"),
        canceled_at=optional_int("canceled_at"),
        cancellation_reason=details.get("cancellation_reason"),
    )


@dataclass
class Dispatcher:
    """λ webhook_dispatcher's work: audit lines in (events made, deliveries queued), and
    delivery messages in (one attempt each)."""

    store: WebhookStore
    queue: DeliveryQueue
    ledger: LedgerObjects
    poster: Poster
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    local: bool = False
    resolver: ssrf.Resolver = ssrf.resolve
    clock: Clock = time.time
    rng: random.Random = field(default_factory=random.SystemRandom)

    # -- audit events in --------------------------------------------------------------------

    def record(self, line: bytes) -> list[str]:
        """The webhook events one audit line makes (made now, or found made before), each
        with its deliveries queued. Lines of other types make none."""
        money = _money_event(line)
        if money is None:
            return []
        audit_id, types, details, time_ = money
        payment = self.ledger.payment(str(details["payment"]))
        subject = None if payment is None else self._subject(payment, details)
        if payment is None or subject is None:
            logger.warning("audit event names no such object", extra={"audit_event": audit_id})
            return []
        created_ms = _epoch_ms(time_, self.clock)
        owners = tuple(sorted({payment.payer, payment.payee}))
        made = []
        for event_type in types:
            event_id = event_id_for(audit_id, event_type, created_ms)
            body = models.Event(
                id=event_id,
                type=event_type,  # type: ignore[arg-type]  # one of AUDIT_TO_EVENTS' values
                created=created_ms // 1000,
                data=models.EventData(object=subject),
            ).body()
            event = Event(
                id=event_id,
                type=event_type,
                created=created_ms // 1000,
                owners=owners,
                body=compact(body),
                audit_event=audit_id,
            )
            if not self.store.put_event(event, created_ms // 1000 + EVENT_RETENTION_S):
                stored = self.store.event(event_id)
                if stored is None or stored.dispatched:
                    continue  # a retried audit record: made and fanned out before
                event = stored
            self._fan_out(event)
            self.store.mark_dispatched(event.id)
            made.append(event.id)
        return made

    def _subject(
        self, payment: Payment, details: Mapping[str, Any]
    ) -> payments_models.Payment | payments_models.Refund | None:
        refund_id = details.get("refund")
        if refund_id is None:
            return as_recorded(payment, details).shape()
        for refund in self.ledger.refunds(payment.id):
            if refund.id == refund_id:
                return refund.shape()
        return None

    def _fan_out(self, event: Event) -> None:
        now = int(self.clock())
        queued = 0
        for owner in event.owners:
            for endpoint in self.store.endpoints_of(owner):
                if not endpoint.subscribes(event.type):
                    continue
                delivery = Delivery(
                    id=first_delivery_id(event.id, endpoint.id),
                    event=event.id,
                    endpoint=endpoint.id,
                    owner=owner,
                    created=now,
                )
                queued += queue_first_attempt(self.store, self.queue, delivery, now)
        if queued:
            logger.info("webhook deliveries queued", extra={"event": event.id, "count": queued})

    # -- deliveries out ---------------------------------------------------------------------

    def attempt(self, message: DeliveryMessage) -> str:
        """One attempt of a delivery: delivered, retrying (the next attempt queued with its
        backoff), failed (given up and parked), canceled (the endpoint or event is gone),
        waiting (not due yet: re-queued) or duplicate (not this message's turn)."""
        now = int(self.clock())
        if message.not_before > now:
            self.queue.send(message.to_json(), message.not_before - now)
            return "waiting"
        delivery = self.store.claim(
            message.event, message.delivery, message.attempt, now, now + DELIVERY_LEASE_S
        )
        if delivery is None:
            return "duplicate"
        endpoint = self.store.endpoint(message.owner, message.endpoint)
        event = self.store.event(message.event)
        if endpoint is None or event is None or endpoint.status != ENABLED:
            gone = "endpoint_deleted" if event is not None else "event_expired"
            self.store.finish(delivery, message.attempt, CANCELED, gone, now)
            return CANCELED
        started = time.monotonic()
        result = self._post(endpoint, event, now)
        duration_ms = result.duration_ms or int((time.monotonic() - started) * 1000)
        first = delivery.first_attempt_at or now
        outcome, next_retry_at = DELIVERED, None
        if not result.delivered:
            next_retry_at = now + self.policy.delay(message.attempt, self.rng)
            if next_retry_at > first + self.policy.window_s:
                outcome, next_retry_at = FAILED, None
            else:
                outcome = "retrying"
        self.store.record_attempt(
            Attempt(
                delivery=delivery.id,
                event=event.id,
                endpoint=endpoint.id,
                number=message.attempt,
                at=now,
                result=result.result,
                delivered=result.delivered,
                duration_ms=duration_ms,
                next_retry_at=next_retry_at,
            ),
            now + EVENT_RETENTION_S,
        )
        if outcome == DELIVERED:
            self.store.finish(delivery, message.attempt, DELIVERED, result.result, now)
        elif next_retry_at is not None:
            # The next message first, then the record: a crash between the two brings this
            # message back once its lease is out, to try again — never a delivery with no
            # message left to carry it.
            following = replace(message, attempt=message.attempt + 1, not_before=next_retry_at)
            self.queue.send(following.to_json(), next_retry_at - now)
            self.store.reschedule(delivery, message.attempt, next_retry_at, result.result)
        else:
            self.queue.park(
                compact(
                    {
                        "reason": "retries_exhausted",
                        **json.loads(message.to_json()),
                        "first_attempt_at": first,
                        "last_result": result.result,
                    }
                )
            )
            self.store.finish(delivery, message.attempt, FAILED, result.result, now)
        logger.info(
            "webhook attempt",
            extra={
                "event": event.id,
                "endpoint": endpoint.id,
                "attempt": message.attempt,
                "result": result.result,
                "outcome": outcome,
            },
        )
        return outcome

    def _post(self, endpoint: Endpoint, event: Event, now: int) -> PostResult:
        try:
            # Checked again now: the name may resolve somewhere else than at creation.
            target = ssrf.check_url(endpoint.url, local=self.local, resolver=self.resolver)
        except ssrf.UrlNotAllowed:
            return PostResult(False, "url_not_allowed")
        body = event.body.encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, endpoint.live_secrets(now), now),
            EVENT_ID_HEADER: event.id,
            "User-Agent": USER_AGENT,
        }
        return self.poster.post(target, body, headers)


def _money_event(
    line: bytes,
) -> tuple[str, tuple[str, ...], Mapping[str, Any], str] | None:
    """(audit event id, webhook types, details, time) of a money audit line; None for any
    other line."""
    if b'"payment.' not in line:  # most lines are access decisions: skip them unparsed
        return None
    try:
        audit_event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(audit_event, dict):
        return None
    types = AUDIT_TO_EVENTS.get(str(audit_event.get("type")), ())
    details = audit_event.get("details")
    audit_id = audit_event.get("event_id")
    if not types or not audit_id or not isinstance(details, dict):
        return None
    if not isinstance(details.get("payment"), str):
        return None
    return str(audit_id), types, details, str(audit_event.get("time") or "")


def _epoch_ms(iso: str, clock: Clock) -> int:
    try:
        return int(datetime.fromisoformat(iso).timestamp() * 1000)
    except ValueError:
        return int(clock() * 1000)
