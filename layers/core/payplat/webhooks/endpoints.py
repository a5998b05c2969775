"""What the webhook and event routes do: endpoints a partner registers (URL checked against
SSRF rules, a signing secret shown on create and roll only, rolled secrets signing next to the
new one until they expire), the events its owner may read, and redelivery on request."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from payplat.audit import events as audit
from payplat.errors import Conflict, InvalidRequest, NotFound
from payplat.observability import logger
from payplat.pagination import PageRequest, page, valid_id
from payplat.payments.idempotency import Idempotency, IdempotencyClaim, KeyTaken, Outcome, replayed
from payplat.payments.ledger import new_id
from payplat.principal import Principal
from payplat.webhooks import models, ssrf
from payplat.webhooks.objects import (
    ALL_EVENTS,
    CANCELED,
    ENDPOINT,
    EVENT,
    EVENT_TYPES,
    Clock,
    Delivery,
    DeliveryQueue,
    Endpoint,
    Event,
    Secret,
    WebhookStore,
    compact,
    endpoint_from_record,
    queue_first_attempt,
)
from payplat.webhooks.signatures import new_secret

MAX_ENDPOINTS_PER_OWNER = 16  # Stripe's number: every event fans out to all of them
MAX_DESCRIPTION_CHARS = 1000
DEFAULT_ROLL_EXPIRY_S = 86_400
MAX_ROLL_EXPIRY_S = 7 * 86_400
MAX_LIVE_SECRETS = 3  # the current one and two rolled ones still signing


# -- request bodies --------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CreateWebhookEndpoint(_Body):
    url: StrictStr = Field(
        min_length=1,
        max_length=ssrf.MAX_URL_CHARS,
        description="https, on a public address: see the SSRF rules in the webhooks guide "
        "(plain http to the loopback address on the local platform only).",
    )
    enabled_events: list[StrictStr] = Field(
        min_length=1,
        max_length=len(EVENT_TYPES),
        description='Event types, or ["*"] for every type.',
        # Documented as an enum, checked by _enabled_events (for a clearer error).
        json_schema_extra={"items": {"type": "string", "enum": [*EVENT_TYPES, ALL_EVENTS]}},
    )
    description: StrictStr | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS)


class RollWebhookSecret(_Body):
    expires_in: StrictInt | None = Field(
        default=None,
        ge=0,
        le=MAX_ROLL_EXPIRY_S,
        description="How long the current secret keeps signing next to the new one "
        "(default a day; 0 stops it at once).",
    )


class RedeliverEvent(_Body):
    pass


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
        body = compact(endpoint.public(with_secret=True))
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
        return models.DeletedWebhookEndpoint(id=endpoint.id).body()

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
        body = compact(rolled_endpoint.public(with_secret=True))
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
                queue_first_attempt(self._store, self._queue, delivery, now)
            except Exception:
                # Recorded, not queued: no message would ever end it, so it ends here (the
                # partner's retry of this request makes a new one).
                self._store.finish(delivery, 0, CANCELED, "not_queued", now)
                raise
        logger.info(
            "webhook event redelivery queued",
            extra={"event": event.id, "endpoints": len(endpoints)},
        )
        body = compact(models.EventRedelivery(id=event.id).body())
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


def _claim(idempotency: Idempotency | None, body: str, now: int) -> IdempotencyClaim | None:
    return None if idempotency is None else idempotency.claim(200, body, now)


def _replayed(taken: KeyTaken, idempotency: Idempotency | None) -> Outcome:
    """The answer of the request that spent the key first (only a key can be taken)."""
    if idempotency is None:
        raise taken
    return replayed(taken.record, idempotency)


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
