"""What webhooks are made of: endpoints, events, deliveries and their attempts, the queue's
message, the retry policy, and the storage, queue and poster the domain is given (Protocols
the dal implements)."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, get_args

from payplat.payments.idempotency import IdempotencyClaim
from payplat.payments.ledger import Payment, Refund
from payplat.webhooks import models, ssrf

# -- what partners see -------------------------------------------------------------------------

EVENT_TYPES: tuple[str, ...] = get_args(models.EventType)
ALL_EVENTS: str = get_args(models.AllEvents)[0]

EVENT_RETENTION_S = 30 * 86_400  # events (and their delivery records) are kept 30 days
RETRY_WINDOW_S = 3 * 86_400  # a delivery is retried for 3 days after its first attempt
DELIVERY_TIMEOUT_S = 10  # one POST, connection to last byte
# An attempt holds its delivery this long; a crashed attempt's message comes back after the
# queue's visibility timeout (longer than this), and may then claim the delivery again.
DELIVERY_LEASE_S = 90
DEFAULT_RETRY_BASE_S = 30
DEFAULT_RETRY_CAP_S = 6 * 3600

ENABLED = "enabled"
PENDING, DELIVERED, FAILED, CANCELED = "pending", "delivered", "failed", "canceled"


# -- objects ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Secret:
    value: str
    expires_at: int | None = None  # None: the current secret

    def live(self, now: int) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    owner: str
    url: str
    enabled_events: tuple[str, ...]
    created: int
    secrets: tuple[Secret, ...]  # the current one first
    client_id: str  # who created it (for the record; the owner is whose it is)
    description: str | None = None
    status: str = ENABLED
    version: int = 1  # bumped by every change: a roll never overwrites a concurrent one

    def subscribes(self, event_type: str) -> bool:
        return self.status == ENABLED and (
            ALL_EVENTS in self.enabled_events or event_type in self.enabled_events
        )

    def live_secrets(self, now: int) -> list[str]:
        return [secret.value for secret in self.secrets if secret.live(now)]

    def public(self, *, with_secret: bool = False) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "id": self.id,
            "url": self.url,
            "enabled_events": list(self.enabled_events),
            "description": self.description,
            "status": self.status,
            "created": self.created,
        }
        if with_secret:
            return models.WebhookEndpointWithSecret(**fields, secret=self.secrets[0].value).body()
        return models.WebhookEndpoint(**fields).body()


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    created: int
    owners: tuple[str, ...]
    body: str  # the JSON every delivery sends, byte for byte
    audit_event: str  # the audit event it was made from
    dispatched: bool = False  # every delivery it needs is queued

    def public(self, pending_webhooks: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.body)
        if pending_webhooks is not None:
            body["pending_webhooks"] = max(0, pending_webhooks)
        return body


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    event: str
    endpoint: str
    owner: str  # the endpoint's (and the pending count's) owner
    created: int
    status: str = PENDING
    attempts: int = 0  # claimed so far
    first_attempt_at: int | None = None
    next_retry_at: int | None = None
    last_result: str | None = None  # "200", "500", "timeout", "url_not_allowed", …


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST, as recorded: what came back and what happens next."""

    delivery: str
    event: str
    endpoint: str
    number: int
    at: int
    result: str
    delivered: bool
    duration_ms: int
    next_retry_at: int | None = None


@dataclass(frozen=True, slots=True)
class DeliveryMessage:
    """The delivery queue's message: attempt `attempt` of a delivery, due at `not_before`
    (SQS delays at most 15 minutes; a longer wait is a message re-sent when it comes due)."""

    delivery: str
    event: str
    endpoint: str
    owner: str
    attempt: int
    not_before: int

    def to_json(self) -> str:
        return compact(
            {
                "delivery": self.delivery,
                "event": self.event,
                "endpoint": self.endpoint,
                "owner": self.owner,
                "attempt": self.attempt,
                "not_before": self.not_before,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> DeliveryMessage:
        """Raises ValueError for a message this code did not write."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError("not a delivery message") from exc
        if not isinstance(data, dict):
            raise ValueError("not a delivery message")
        try:
            message = cls(
                delivery=str(data["delivery"]),
                event=str(data["event"]),
                endpoint=str(data["endpoint"]),
                owner=str(data["owner"]),
                attempt=int(data["attempt"]),
                not_before=int(data["not_before"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError("not a delivery message") from exc
        if message.attempt < 1:
            raise ValueError("not a delivery message")
        return message


@dataclass(frozen=True, slots=True)
class PostResult:
    delivered: bool  # a 2xx answer
    result: str  # the status code, or what went wrong before one came back
    duration_ms: int = 0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): attempt n
    failed, wait uniform(0, min(cap, base * 2**(n-1))) — retries of many endpoints spread
    out instead of arriving together."""

    base_s: int = DEFAULT_RETRY_BASE_S
    cap_s: int = DEFAULT_RETRY_CAP_S
    window_s: int = RETRY_WINDOW_S

    def delay(self, failed_attempt: int, rng: random.Random) -> int:
        ceiling = min(self.cap_s, self.base_s * 2 ** min(failed_attempt - 1, 32))
        return round(rng.uniform(0, ceiling))


# -- what the domain needs from the outside ----------------------------------------------------


class WebhookStore(Protocol):
    def put_endpoint(self, endpoint: Endpoint, claim: IdempotencyClaim | None = None) -> None:
        """With a claim, in one write with it (raises KeyTaken if the key was spent)."""
        ...

    def endpoint(self, owner: str, endpoint_id: str) -> Endpoint | None: ...

    def endpoints_of(self, owner: str) -> list[Endpoint]: ...

    def replace_endpoint(
        self, endpoint: Endpoint, expected_version: int, claim: IdempotencyClaim | None = None
    ) -> bool:
        """False if the version moved on; with a claim, in one write with it."""
        ...

    def idempotency_claim(self, namespace: str, key: str) -> IdempotencyClaim | None: ...

    def put_claim(self, claim: IdempotencyClaim) -> None:
        """Raises KeyTaken if the key was spent."""
        ...

    def delete_endpoint(self, owner: str, endpoint_id: str) -> bool: ...

    def page(
        self,
        kind: str,
        owner: str,
        *,
        limit: int,
        after: str | None,
        before: str | None,
        event_type: str | None = None,
    ) -> tuple[list[dict[str, Any]], bool]: ...

    def put_event(self, event: Event, expires_at: int) -> bool:
        """False if the event exists already (the conditional put failed)."""
        ...

    def event(self, event_id: str) -> Event | None: ...

    def owner_event(self, owner: str, event_id: str) -> tuple[Event, int] | None:
        """The owner's copy of the event and its pending deliveries count."""
        ...

    def mark_dispatched(self, event_id: str) -> None: ...

    def add_delivery(self, delivery: Delivery, expires_at: int) -> bool:
        """Record a pending delivery and count it on its owner's event; False if a delivery
        with this id exists already."""
        ...

    def delivery(self, event_id: str, delivery_id: str) -> Delivery | None: ...

    def claim(
        self, event_id: str, delivery_id: str, attempt: int, now: int, lease_until: int
    ) -> Delivery | None:
        """Take attempt `attempt` of a pending delivery: after attempt-1, or after a crashed
        attempt's lease ran out. None if it is not this attempt's turn (a duplicate)."""
        ...

    def reschedule(
        self, delivery: Delivery, attempt: int, next_retry_at: int, result: str
    ) -> None: ...

    def finish(self, delivery: Delivery, attempt: int, status: str, result: str, now: int) -> bool:
        """Pending -> `status`, uncounted from the owner's event; False if it was finished
        already."""
        ...

    def record_attempt(self, attempt: Attempt, expires_at: int) -> None: ...


class DeliveryQueue(Protocol):
    def send(self, body: str, delay_s: int) -> None:
        """Enqueue; the queue may delay less than asked (SQS: 15 minutes at most)."""
        ...

    def park(self, body: str) -> None:
        """Into the dead-letter queue: a delivery given up on."""
        ...


class Poster(Protocol):
    def post(self, target: ssrf.Target, body: bytes, headers: Mapping[str, str]) -> PostResult: ...


class LedgerObjects(Protocol):
    def payment(self, payment_id: str) -> Payment | None: ...

    def refunds(self, payment_id: str) -> list[Refund]: ...


Clock = Callable[[], float]
ENDPOINT, EVENT = "ENDPOINT", "EVENT"


def event_id_for(audit_event_id: str, event_type: str, created_ms: int) -> str:
    """Deterministic: the same audit event always makes the same webhook event. Milliseconds
    first, like every payplat id, so ids sort by time."""
    digest = hashlib.sha256(f"{audit_event_id}#{event_type}".encode()).hexdigest()
    return f"evt_{created_ms:012x}{digest[:20]}"


def first_delivery_id(event_id: str, endpoint_id: str) -> str:
    """The fan-out's delivery of an event to an endpoint: one, however often it is fanned out."""
    digest = hashlib.sha256(f"{event_id}#{endpoint_id}".encode()).hexdigest()
    return f"whd_{digest[:32]}"


def endpoint_from_record(record: Mapping[str, Any]) -> Endpoint:
    return Endpoint(
        id=record["id"],
        owner=record["owner"],
        url=record["url"],
        enabled_events=tuple(record["enabled_events"]),
        created=int(record["created"]),
        secrets=tuple(
            Secret(str(s["value"]), None if s.get("expires_at") is None else int(s["expires_at"]))
            for s in record["secrets"]
        ),
        client_id=record.get("client_id") or "",
        description=record.get("description"),
        status=record.get("status") or ENABLED,
        version=int(record.get("version") or 1),
    )


def queue_first_attempt(
    store: WebhookStore, queue: DeliveryQueue, delivery: Delivery, now: int
) -> bool:
    """Record the delivery, then queue its first attempt (in that order: an attempt finds
    its record). A delivery recorded before but never attempted is queued again: the crash
    may have come between the two; a duplicate message is claimed once."""
    if not store.add_delivery(delivery, now + EVENT_RETENTION_S):
        existing = store.delivery(delivery.event, delivery.id)
        if existing is None or existing.status != PENDING or existing.attempts > 0:
            return False
    message = DeliveryMessage(
        delivery.id, delivery.event, delivery.endpoint, delivery.owner, 1, now
    )
    queue.send(message.to_json(), 0)
    return True


def compact(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))
