"""Webhooks: endpoints partners register, events made from the audit stream's money
movements, and signed deliveries retried until they land (or for three days).

- **Endpoints** belong to the owner the creating client acts for (`principal.owner`); the
  URL is checked against SSRF rules (payplat.webhooks.ssrf) on create and again at every delivery.
  The signing secret (`whsec_…`) is shown on create and on roll only; a rolled secret keeps
  signing next to the new one until it expires, so a partner can deploy the new one first.
- **Events** are made by λ webhook_dispatcher from audit events (`AUDIT_TO_EVENTS`); each
  belongs to the owners of its payment (payer and payee) and carries the object as the API
  showed it at that movement: the payment's state as the audit event recorded it, the rest
  read from the ledger. Its id is derived from the audit event's id, and it is written
  with a conditional put: a retried audit record makes no second event and no second
  delivery.
- **Deliveries**: one per (event, subscribed endpoint), queued on SQS. An attempt is a
  signed POST (`Payplat-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>`, one v1
  per live secret); 2xx is delivered, anything else is retried with full-jitter exponential
  backoff until `RETRY_WINDOW_S` after the first attempt, then parked in the DLQ and
  recorded as failed. At least once: receivers deduplicate by `Payplat-Event-Id`.

Duplicates are harmless by construction: an attempt first claims its delivery with a
conditional update (attempt n only after n-1, or after a crashed attempt's lease ran out), so
a message SQS hands out twice makes one POST, not two.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from payplat.audit import events as audit
from payplat.errors import Conflict, InvalidRequest, NotFound
from payplat.observability import logger
from payplat.pagination import PageRequest, page, valid_id
from payplat.payments.idempotency import Idempotency, IdempotencyClaim, KeyTaken, Outcome, replayed
from payplat.payments.ledger import Payment, Refund, new_id
from payplat.principal import Principal
from payplat.webhooks import ssrf

# -- what partners see -------------------------------------------------------------------------

EVENT_TYPES: tuple[str, ...] = (
    "payment.created",
    "payment.succeeded",
    "payment.captured",
    "payment.failed",
    "payment.canceled",
    "payment.expired",
    "refund.created",
)
ALL_EVENTS = "*"
# The audit stream's money events and the webhook events each one makes.
AUDIT_TO_EVENTS: Mapping[str, tuple[str, ...]] = {
    "payment.created": ("payment.created",),
    "payment.captured": ("payment.succeeded", "payment.captured"),
    "payment.failed": ("payment.failed",),
    "payment.canceled": ("payment.canceled",),
    "payment.expired": ("payment.expired",),
    "payment.refunded": ("refund.created",),
}

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
SIGNATURE_HEADER = "Payplat-Signature"
EVENT_ID_HEADER = "Payplat-Event-Id"
USER_AGENT = "payplat-webhooks/1"
SIGNATURE_SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300
MAX_SIGNATURE_HEADER_CHARS = 4096

MAX_ENDPOINTS_PER_OWNER = 16  # Stripe's number: every event fans out to all of them
MAX_DESCRIPTION_CHARS = 1000
DEFAULT_ROLL_EXPIRY_S = 86_400
MAX_ROLL_EXPIRY_S = 7 * 86_400
MAX_LIVE_SECRETS = 3  # the current one and two rolled ones still signing

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


# -- request bodies --------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CreateWebhookEndpoint(_Body):
    url: StrictStr = Field(min_length=1, max_length=ssrf.MAX_URL_CHARS)
    enabled_events: list[StrictStr] = Field(min_length=1, max_length=len(EVENT_TYPES))
    description: StrictStr | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS)


class RollWebhookSecret(_Body):
    expires_in: StrictInt | None = Field(default=None, ge=0, le=MAX_ROLL_EXPIRY_S)


class RedeliverEvent(_Body):
    pass


# -- signatures ------------------------------------------------------------------------------


class SignatureVerificationError(ValueError):
    """A `Payplat-Signature` that does not sign the payload with any of the secrets, or whose
    timestamp is outside the tolerance."""


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def compute_signature(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(payload: bytes, secrets_: Sequence[str], timestamp: int) -> str:
    """The `Payplat-Signature` value: one v1 per live secret, newest first."""
    signatures = ",".join(
        f"{SIGNATURE_SCHEME}={compute_signature(payload, secret, timestamp)}" for secret in secrets_
    )
    return f"t={timestamp},{signatures}"


def verify_signature(
    payload: bytes,
    header: str,
    secrets: list[str],
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: int | None = None,
) -> dict[str, Any]:
    """The event a delivery carries, if `header` signs `payload` (the raw body, before any
    JSON parsing) with one of `secrets` within `tolerance_s` of `now`; raises
    SignatureVerificationError otherwise. What a receiver runs on every POST."""
    timestamp, signatures = _parse_signature(header)
    if not secrets or not all(isinstance(s, str) and s for s in secrets):
        raise SignatureVerificationError("No signing secret to verify with.")
    matched = False
    for secret in secrets:
        expected = compute_signature(payload, secret, timestamp)
        for signature in signatures:
            matched |= hmac.compare_digest(expected, signature)  # no early exit to time
    if not matched:
        raise SignatureVerificationError("No signature matches the payload and secrets.")
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureVerificationError("The signature's timestamp is outside the tolerance.")
    try:
        event = json.loads(payload)
    except ValueError:
        raise SignatureVerificationError("The payload is not JSON.") from None
    if not isinstance(event, dict):
        raise SignatureVerificationError("The payload is not a JSON object.")
    return event


def _parse_signature(header: str) -> tuple[int, list[str]]:
    if not isinstance(header, str) or not header or len(header) > MAX_SIGNATURE_HEADER_CHARS:
        raise SignatureVerificationError("The signature header is missing or too long.")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not (value.isascii() and value.isdigit()) or timestamp is not None:
                raise SignatureVerificationError("The signature header's t is not one number.")
            timestamp = int(value)
        elif key == SIGNATURE_SCHEME and value.isascii():
            signatures.append(value.lower())
    if timestamp is None:
        raise SignatureVerificationError("The signature header has no timestamp.")
    if not signatures:
        raise SignatureVerificationError("The signature header has no v1 signature.")
    return timestamp, signatures


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
        body: dict[str, Any] = {
            "id": self.id,
            "object": "webhook_endpoint",
            "url": self.url,
            "enabled_events": list(self.enabled_events),
            "description": self.description,
            "status": self.status,
            "created": self.created,
        }
        if with_secret:
            body["secret"] = self.secrets[0].value
        return body


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
        return _compact(
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


# -- the API's routes --------------------------------------------------------------------------


class WebhookApi:
    """What the webhook and event routes do, for the owner the caller acts for. Anyone
    else's endpoint or event is answered as if it did not exist (404)."""

    def __init__(
        self,
        store: WebhookStore,
        queue: DeliveryQueue,
        *,
        local: bool = False,
        resolver: ssrf.Resolver = ssrf.resolve,
        clock: Clock = time.time,
    ) -> None:
        self._store = store
        self._queue = queue
        self._local = local
        self._resolver = resolver
        self._clock = clock

    def create_endpoint(
        self,
        principal: Principal,
        request: CreateWebhookEndpoint,
        idempotency: Idempotency | None = None,
    ) -> Outcome:
        """The endpoint with its signing secret. With an Idempotency-Key, the key is spent in
        the same write as the endpoint: a retry gets this answer again, never a second one."""
        if replay := self._replay(idempotency):
            return replay
        events = _enabled_events(request.enabled_events)
        self._check_url(request.url)
        if len(self._store.endpoints_of(principal.owner)) >= MAX_ENDPOINTS_PER_OWNER:
            raise InvalidRequest(
                f"You have {MAX_ENDPOINTS_PER_OWNER} webhook endpoints: delete one first.",
                code="webhook_endpoint_limit",
            )
        endpoint = Endpoint(
            id=new_id("we"),
            owner=principal.owner,
            url=request.url,
            enabled_events=events,
            created=int(self._clock()),
            secrets=(Secret(new_secret()),),
            client_id=principal.client_id,
            description=request.description,
        )
        body = _compact(endpoint.public(with_secret=True))
        try:
            self._store.put_endpoint(endpoint, _claim(idempotency, body, endpoint.created))
        except KeyTaken as taken:  # the same key, a moment ago
            return _replayed(taken, idempotency)
        _audit(
            "webhook_endpoint.created",
            principal,
            endpoint,
            url=endpoint.url,
            enabled_events=list(endpoint.enabled_events),
        )
        return Outcome(200, body)

    def list_endpoints(self, principal: Principal, request: PageRequest) -> dict[str, Any]:
        self._check_cursors(principal, request, self._endpoint)
        records, has_more = self._store.page(
            ENDPOINT,
            principal.owner,
            limit=request.limit,
            after=request.starting_after,
            before=request.ending_before,
        )
        data = [endpoint_from_record(record).public() for record in records]
        return page(data, has_more, "/v1/webhook_endpoints")

    def get_endpoint(self, principal: Principal, endpoint_id: str) -> dict[str, Any]:
        return self._endpoint(principal, endpoint_id).public()

    def delete_endpoint(self, principal: Principal, endpoint_id: str) -> dict[str, Any]:
        endpoint = self._endpoint(principal, endpoint_id)
        if not self._store.delete_endpoint(principal.owner, endpoint.id):
            raise _no_endpoint(endpoint_id)
        _audit("webhook_endpoint.deleted", principal, endpoint)
        return {"id": endpoint.id, "object": "webhook_endpoint", "deleted": True}

    def roll_secret(
        self,
        principal: Principal,
        endpoint_id: str,
        request: RollWebhookSecret,
        idempotency: Idempotency | None = None,
    ) -> Outcome:
        """A new current secret; the old one keeps signing for `expires_in` seconds (0: it
        stops at once). A key is spent in the same write as the new secret."""
        if replay := self._replay(idempotency):
            return replay
        endpoint = self._endpoint(principal, endpoint_id)
        now = int(self._clock())
        expires_in = DEFAULT_ROLL_EXPIRY_S if request.expires_in is None else request.expires_in
        current, *rolled = endpoint.secrets
        kept = [secret for secret in rolled if secret.live(now)]
        if expires_in > 0:
            kept.append(Secret(current.value, now + expires_in))
        # The longest-lived ones stay when there are too many.
        kept.sort(key=lambda secret: secret.expires_at or 0, reverse=True)
        secrets_ = (Secret(new_secret()), *kept[: MAX_LIVE_SECRETS - 1])
        rolled_endpoint = replace(endpoint, secrets=secrets_, version=endpoint.version + 1)
        body = _compact(rolled_endpoint.public(with_secret=True))
        try:
            replaced = self._store.replace_endpoint(
                rolled_endpoint, endpoint.version, _claim(idempotency, body, now)
            )
        except KeyTaken as taken:
            return _replayed(taken, idempotency)
        if not replaced:
            raise Conflict("The endpoint changed while rolling its secret; retry.")
        _audit("webhook_endpoint.secret_rolled", principal, endpoint, expires_in=expires_in)
        return Outcome(200, body)

    def list_events(
        self, principal: Principal, request: PageRequest, query: Mapping[str, str]
    ) -> dict[str, Any]:
        event_type = query.get("type")
        if event_type is not None and event_type not in EVENT_TYPES:
            raise InvalidRequest(f"type must be one of {', '.join(EVENT_TYPES)}.", param="type")
        self._check_cursors(principal, request, self._event)
        records, has_more = self._store.page(
            EVENT,
            principal.owner,
            limit=request.limit,
            after=request.starting_after,
            before=request.ending_before,
            event_type=event_type,
        )
        data = [
            Event(
                id=record["id"],
                type=record["type"],
                created=int(record["created"]),
                owners=(principal.owner,),
                body=record["body"],
                audit_event="",
            ).public(int(record.get("pending_webhooks") or 0))
            for record in records
        ]
        return page(data, has_more, "/v1/events")

    def get_event(self, principal: Principal, event_id: str) -> dict[str, Any]:
        event, pending = self._event(principal, event_id)
        return event.public(pending)

    def redeliver(
        self, principal: Principal, event_id: str, idempotency: Idempotency | None = None
    ) -> Outcome:
        """A new delivery to each of the caller's enabled endpoints subscribed to the event's
        type (its first attempt now, then the usual retries). A key is spent once the
        deliveries are queued: a retry after that queues none (two racing requests with one
        key may both queue, which the receiver's deduplication by event id absorbs)."""
        if replay := self._replay(idempotency):
            return replay
        event, _ = self._event(principal, event_id)
        now = int(self._clock())
        endpoints = [
            e for e in self._store.endpoints_of(principal.owner) if e.subscribes(event.type)
        ]
        if not endpoints:
            raise InvalidRequest(
                f"None of your enabled webhook endpoints subscribes to {event.type}.",
                code="no_webhook_endpoints",
            )
        for endpoint in endpoints:
            delivery = Delivery(
                id=new_id("whd"),
                event=event.id,
                endpoint=endpoint.id,
                owner=principal.owner,
                created=now,
            )
            try:
                _queue_first_attempt(self._store, self._queue, delivery, now)
            except Exception:
                # Recorded, not queued: no message would ever end it, so it ends here (the
                # partner's retry of this request makes a new one).
                self._store.finish(delivery, 0, CANCELED, "not_queued", now)
                raise
        logger.info(
            "webhook event redelivery queued",
            extra={"event": event.id, "endpoints": len(endpoints)},
        )
        body = _compact({"id": event.id, "object": "event", "redelivery": "queued"})
        claim = _claim(idempotency, body, now)
        if claim is not None:
            try:
                self._store.put_claim(claim)
            except KeyTaken as taken:
                return _replayed(taken, idempotency)
        return Outcome(200, body)

    def _replay(self, idempotency: Idempotency | None) -> Outcome | None:
        if idempotency is None:
            return None
        record = self._store.idempotency_claim(idempotency.namespace, idempotency.key)
        return None if record is None else replayed(record, idempotency)

    def _check_url(self, url: str) -> None:
        try:
            ssrf.check_url(url, local=self._local, resolver=self._resolver)
        except ssrf.UrlNotAllowed as refused:
            raise InvalidRequest(refused.reason, param="url", code="url_not_allowed") from None

    @staticmethod
    def _check_cursors(
        principal: Principal, request: PageRequest, find: Callable[[Principal, str], object]
    ) -> None:
        """A cursor must name one of the caller's own objects: anyone else's is answered as
        if it did not exist (and cannot be used to probe positions)."""
        for param in ("starting_after", "ending_before"):
            cursor = getattr(request, param)
            if cursor is None:
                continue
            try:
                find(principal, cursor)
            except NotFound as missing:
                raise NotFound(missing.message, param=param) from None

    def _endpoint(self, principal: Principal, endpoint_id: str) -> Endpoint:
        endpoint = (
            self._store.endpoint(principal.owner, endpoint_id) if valid_id(endpoint_id) else None
        )
        if endpoint is None:
            raise _no_endpoint(endpoint_id)
        return endpoint

    def _event(self, principal: Principal, event_id: str) -> tuple[Event, int]:
        found = self._store.owner_event(principal.owner, event_id) if valid_id(event_id) else None
        if found is None:
            raise NotFound(f"No such event: '{event_id[:64]}'", param="event_id")
        return found


def _no_endpoint(endpoint_id: str) -> NotFound:
    return NotFound(f"No such webhook endpoint: '{endpoint_id[:64]}'", param="endpoint_id")


def _enabled_events(requested: Sequence[str]) -> tuple[str, ...]:
    events = tuple(dict.fromkeys(requested))
    if ALL_EVENTS in events:
        if len(events) > 1:
            raise InvalidRequest(
                'enabled_events is ["*"] (every type) or a list of types, not both.',
                param="enabled_events",
            )
        return events
    unknown = [name for name in events if name not in EVENT_TYPES]
    if unknown:
        raise InvalidRequest(
            f"Unknown event type {unknown[0][:64]!r}: use {', '.join(EVENT_TYPES)} or *.",
            param="enabled_events",
        )
    return events


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


def _queue_first_attempt(
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


# -- the dispatcher --------------------------------------------------------------------------


def _compact(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))


def _claim(idempotency: Idempotency | None, body: str, now: int) -> IdempotencyClaim | None:
    return None if idempotency is None else idempotency.claim(200, body, now)


def _replayed(taken: KeyTaken, idempotency: Idempotency | None) -> Outcome:
    """The answer of the request that spent the key first (only a key can be taken)."""
    if idempotency is None:
        raise taken
    return replayed(taken.record, idempotency)


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
            body = {
                "id": event_id,
                "object": "event",
                "type": event_type,
                "created": created_ms // 1000,
                "data": {"object": subject},
            }
            event = Event(
                id=event_id,
                type=event_type,
                created=created_ms // 1000,
                owners=owners,
                body=_compact(body),
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

    def _subject(self, payment: Payment, details: Mapping[str, Any]) -> dict[str, Any] | None:
        refund_id = details.get("refund")
        if refund_id is None:
            return as_recorded(payment, details).public()
        for refund in self.ledger.refunds(payment.id):
            if refund.id == refund_id:
                return refund.public()
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
                queued += _queue_first_attempt(self.store, self.queue, delivery, now)
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
                _compact(
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


def _audit(event_type: str, principal: Principal, endpoint: Endpoint, **details: Any) -> None:
    """A change to where the partner's events go, or to what signs them: audited like any
    credential change (never the secret itself)."""
    audit.record(
        audit.AuditEvent(
            type=event_type,
            outcome="success",
            actor=audit.Actor(client_id=principal.client_id, sub=principal.subject),
            origin=audit.Origin(request_id=principal.request_id),
            resource=f"webhook_endpoint/{endpoint.id}",
            details=details,
        )
    )
