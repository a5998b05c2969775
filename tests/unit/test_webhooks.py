"""Webhooks in the domain: signatures a receiver can verify (and stale or altered ones it
cannot), backoff with full jitter, which audit events make which webhook events and for whom,
and what the endpoint routes accept — with an in-memory store (the DynamoDB one is in
tests/integration/test_webhooks_dispatch.py)."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from payplat.errors import InvalidRequest, NotFound
from payplat.payments.idempotency import IdempotencyClaim, KeyTaken, Outcome
from payplat.payments.ledger import Payment, Refund
from payplat.principal import Principal
from payplat.webhooks.dispatch import AUDIT_TO_EVENTS, Dispatcher
from payplat.webhooks.endpoints import CreateWebhookEndpoint, RollWebhookSecret, WebhookApi
from payplat.webhooks.objects import (
    EVENT_TYPES,
    PENDING,
    Attempt,
    Delivery,
    DeliveryMessage,
    Endpoint,
    Event,
    PostResult,
    RetryPolicy,
    Secret,
    event_id_for,
)
from payplat.webhooks.signatures import (
    SignatureVerificationError,
    compute_signature,
    new_secret,
    sign,
    verify_signature,
)
from payplat.webhooks.ssrf import Target

NOW = 1_767_225_600
BODY = b'{"id":"evt_1","object":"event","type":"payment.created","data":{"object":{}}}'
SECRET = "whsec_" + "k" * 43


# -- signatures ------------------------------------------------------------------------------


def test_a_fresh_signature_verifies_and_gives_the_event() -> None:
    header = sign(BODY, [SECRET], NOW)
    assert header == f"t={NOW},v1={compute_signature(BODY, SECRET, NOW)}"
    assert verify_signature(BODY, header, [SECRET], now=NOW + 10)["id"] == "evt_1"


@pytest.mark.parametrize(
    ("payload", "header", "now", "message"),
    [
        (BODY, sign(BODY, [SECRET], NOW - 301), NOW, "tolerance"),  # stale: a replay
        (BODY, sign(BODY, [SECRET], NOW + 301), NOW, "tolerance"),  # from the future
        (BODY.replace(b"created", b"captured"), sign(BODY, [SECRET], NOW), NOW, "No signature"),
        (BODY, sign(BODY, ["whsec_someone_else"], NOW), NOW, "No signature"),
        (BODY, f"v1={compute_signature(BODY, SECRET, NOW)}", NOW, "no timestamp"),
        (BODY, f"t={NOW}", NOW, "no v1"),
        (BODY, f"t={NOW},v0={compute_signature(BODY, SECRET, NOW)}", NOW, "no v1"),
        (BODY, f"t=abc,v1={compute_signature(BODY, SECRET, NOW)}", NOW, "t is not"),
        (BODY, "", NOW, "missing"),
        (BODY, "t=1," + "v1=00," * 1000, NOW, "too long"),
    ],
    ids=[
        "stale",
        "future",
        "altered-body",
        "wrong-secret",
        "no-timestamp",
        "no-signature",
        "unknown-scheme",
        "bad-timestamp",
        "empty",
        "huge",
    ],
)
def test_a_stale_altered_or_malformed_signature_is_refused(
    payload: bytes, header: str, now: int, message: str
) -> None:
    with pytest.raises(SignatureVerificationError, match=message):
        verify_signature(payload, header, [SECRET], now=now)


def test_the_timestamp_is_part_of_what_is_signed() -> None:
    # Given a signature made at one time, moved to a fresh timestamp by an attacker
    signature = compute_signature(BODY, SECRET, NOW - 3600)
    with pytest.raises(SignatureVerificationError, match="No signature"):
        verify_signature(BODY, f"t={NOW},v1={signature}", [SECRET], now=NOW)


def test_while_a_secret_is_rolled_either_secret_verifies() -> None:
    old, new = new_secret(), new_secret()
    header = sign(BODY, [new, old], NOW)
    assert header.count("v1=") == 2
    for secrets in ([new], [old], [new, old]):
        verify_signature(BODY, header, secrets, now=NOW)
    with pytest.raises(SignatureVerificationError):
        verify_signature(BODY, header, [new_secret()], now=NOW)
    with pytest.raises(SignatureVerificationError, match="secret"):
        verify_signature(BODY, header, [], now=NOW)


def test_secrets_are_prefixed_and_carry_256_random_bits() -> None:
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    assert all(s.startswith("whsec_") and len(s) >= len("whsec_") + 43 for s in secrets)


# -- backoff ---------------------------------------------------------------------------------


def test_backoff_is_full_jitter_under_an_exponential_ceiling_with_a_cap() -> None:
    policy = RetryPolicy(base_s=30, cap_s=6 * 3600)
    rng = random.Random(7)
    for attempt in range(1, 30):
        ceiling = min(6 * 3600, 30 * 2 ** (attempt - 1))
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # spread over the whole range, not clustered
    assert policy.delay(10_000, rng) <= 6 * 3600  # no overflow far out


def test_three_days_of_retries_are_a_few_dozen_attempts() -> None:
    # Given the deployed policy and an endpoint that never answers 2xx
    policy, rng = RetryPolicy(), random.Random(1)
    elapsed, attempts = 0, 1
    while True:
        elapsed += policy.delay(attempts, rng)
        if elapsed > policy.window_s:
            break
        attempts += 1
    # Then it is tried often at first, then every few hours, for three days
    assert 15 <= attempts <= 60


# -- an in-memory store ----------------------------------------------------------------------


def _body(outcome: Outcome) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(outcome.body)
    return body


class MemoryStore:
    """The WebhookStore protocol over dicts, with the DynamoDB store's conditions."""

    def __init__(self) -> None:
        self.claims: dict[tuple[str, str], IdempotencyClaim] = {}
        self.endpoints: dict[tuple[str, str], Endpoint] = {}
        self.events: dict[str, Event] = {}
        self.pending: dict[tuple[str, str], int] = {}
        self.deliveries: dict[str, dict[str, Any]] = {}
        self.attempts: list[Attempt] = []

    def put_endpoint(self, endpoint: Endpoint, claim: IdempotencyClaim | None = None) -> None:
        if claim is not None:
            self.put_claim(claim)
        self.endpoints[(endpoint.owner, endpoint.id)] = endpoint

    def endpoint(self, owner: str, endpoint_id: str) -> Endpoint | None:
        return self.endpoints.get((owner, endpoint_id))

    def endpoints_of(self, owner: str) -> list[Endpoint]:
        return [e for (o, _), e in sorted(self.endpoints.items()) if o == owner]

    def replace_endpoint(
        self, endpoint: Endpoint, expected_version: int, claim: IdempotencyClaim | None = None
    ) -> bool:
        current = self.endpoints.get((endpoint.owner, endpoint.id))
        if current is None or current.version != expected_version:
            return False
        if claim is not None:
            self.put_claim(claim)
        self.endpoints[(endpoint.owner, endpoint.id)] = endpoint
        return True

    def idempotency_claim(self, namespace: str, key: str) -> IdempotencyClaim | None:
        return self.claims.get((namespace, key))

    def put_claim(self, claim: IdempotencyClaim) -> None:
        taken = self.claims.setdefault((claim.namespace, claim.key), claim)
        if taken is not claim:
            raise KeyTaken(taken)

    def delete_endpoint(self, owner: str, endpoint_id: str) -> bool:
        return self.endpoints.pop((owner, endpoint_id), None) is not None

    def page(
        self, kind: str, owner: str, *, limit: int, after: str | None, before: str | None,
        event_type: str | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:  # fmt: skip
        raise NotImplementedError

    def put_event(self, event: Event, expires_at: int) -> bool:
        if event.id in self.events:
            return False
        self.events[event.id] = event
        for owner in event.owners:
            self.pending[(owner, event.id)] = 0
        return True

    def event(self, event_id: str) -> Event | None:
        return self.events.get(event_id)

    def owner_event(self, owner: str, event_id: str) -> tuple[Event, int] | None:
        if (owner, event_id) not in self.pending:
            return None
        return self.events[event_id], self.pending[(owner, event_id)]

    def mark_dispatched(self, event_id: str) -> None:
        self.events[event_id] = dataclasses.replace(self.events[event_id], dispatched=True)

    def add_delivery(self, delivery: Delivery, expires_at: int) -> bool:
        if delivery.id in self.deliveries:
            return False
        self.deliveries[delivery.id] = {"delivery": delivery, "lease": 0}
        self.pending[(delivery.owner, delivery.event)] += 1
        return True

    def delivery(self, event_id: str, delivery_id: str) -> Delivery | None:
        found = self.deliveries.get(delivery_id)
        return None if found is None else found["delivery"]  # type: ignore[no-any-return]

    def claim(
        self, event_id: str, delivery_id: str, attempt: int, now: int, lease_until: int
    ) -> Delivery | None:
        record = self.deliveries[delivery_id]
        current: Delivery = record["delivery"]
        crashed = current.attempts == attempt and 0 < record["lease"] < now
        if current.status != PENDING or not (current.attempts == attempt - 1 or crashed):
            return None
        current = dataclasses.replace(
            current, attempts=attempt, first_attempt_at=current.first_attempt_at or now
        )
        record.update(delivery=current, lease=lease_until)
        return current

    def reschedule(self, delivery: Delivery, attempt: int, next_retry_at: int, result: str) -> None:
        record = self.deliveries[delivery.id]
        if record["delivery"].attempts == attempt:
            record["delivery"] = dataclasses.replace(
                record["delivery"], next_retry_at=next_retry_at, last_result=result
            )
            record["lease"] = 0

    def finish(self, delivery: Delivery, attempt: int, status: str, result: str, now: int) -> bool:
        record = self.deliveries[delivery.id]
        current = record["delivery"]
        if current.status != PENDING or current.attempts != attempt:
            return False
        record["delivery"] = dataclasses.replace(current, status=status, last_result=result)
        self.pending[(delivery.owner, delivery.event)] -= 1
        return True

    def record_attempt(self, attempt: Attempt, expires_at: int) -> None:
        self.attempts.append(attempt)


class MemoryQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[DeliveryMessage, int]] = []
        self.parked: list[dict[str, Any]] = []

    def send(self, body: str, delay_s: int) -> None:
        self.sent.append((DeliveryMessage.from_json(body), delay_s))

    def park(self, body: str) -> None:
        self.parked.append(json.loads(body))


class Ledger:
    def __init__(self, payment: Payment, refunds: Sequence[Refund] = ()) -> None:
        self._payment, self._refunds = payment, list(refunds)

    def payment(self, payment_id: str) -> Payment | None:
        return self._payment if payment_id == self._payment.id else None

    def refunds(self, payment_id: str) -> list[Refund]:
        return self._refunds


class Poster:
    def __init__(self, *results: PostResult) -> None:
        self.results = list(results)
        self.posts: list[tuple[Target, bytes, Mapping[str, str]]] = []

    def post(self, target: Target, body: bytes, headers: Mapping[str, str]) -> PostResult:
        self.posts.append((target, body, headers))
        return self.results.pop(0) if self.results else PostResult(True, "200")


PAYMENT = Payment(
    id="pay_0001",
    payer="usr_payer",
    payee="usr_payee",
    source_account="acct_payer",
    destination_account="acct_payee",
    amount=5000,
    currency="EUR",
    capture_method="automatic",
    status="succeeded",
    created=NOW,
    amount_captured=5000,
    amount_refunded=1000,
)
REFUND = Refund("re_0001", PAYMENT.id, 1000, "EUR", NOW)


def audit_line(audit_type: str, event_id: str = "aud-1", **details: Any) -> bytes:
    record = {
        "log_type": "AUDIT",
        "event_id": event_id,
        "time": "2026-01-01T00:00:00.123+00:00",
        "type": audit_type,
        "outcome": "success",
        "details": {"payment": PAYMENT.id, "amount": 5000, "currency": "EUR", **details},
    }
    return json.dumps(record).encode()


def endpoint(owner: str, events: tuple[str, ...] = ("*",), suffix: str = "1") -> Endpoint:
    return Endpoint(
        id=f"we_{owner}_{suffix}",
        owner=owner,
        url="https://hooks.partner.example/payplat",
        enabled_events=events,
        created=NOW,
        secrets=(),
        client_id="ppc_1",
    )


def dispatcher(store: MemoryStore, queue: MemoryQueue, poster: Poster | None = None) -> Dispatcher:
    return Dispatcher(
        store=store,
        queue=queue,
        ledger=Ledger(PAYMENT, [REFUND]),
        poster=poster or Poster(),
        resolver=lambda host, port: ["93.184.215.14"],
        clock=lambda: NOW,
        rng=random.Random(3),
    )


# -- events from the audit stream -----------------------------------------------------------


@pytest.mark.parametrize(("audit_type", "webhook_types"), list(AUDIT_TO_EVENTS.items()))
def test_each_money_audit_event_makes_its_webhook_events(
    audit_type: str, webhook_types: tuple[str, ...]
) -> None:
    # Given an endpoint of the payee subscribed to everything
    store, queue = MemoryStore(), MemoryQueue()
    store.put_endpoint(endpoint("usr_payee"))
    details = {"refund": REFUND.id} if audit_type == "payment.refunded" else {}

    # When the audit event comes off the stream
    made = dispatcher(store, queue).record(audit_line(audit_type, **details))

    # Then it made exactly these events, each carrying its object, with one delivery each
    assert [store.events[i].type for i in made] == list(webhook_types)
    assert set(webhook_types) <= set(EVENT_TYPES)
    for event_id in made:
        body = store.events[event_id].public()
        assert body["id"] == event_id
        assert body["object"] == "event"
        assert body["created"] == NOW
        expected = "refund" if body["type"] == "refund.created" else "payment"
        assert body["data"]["object"]["object"] == expected
    assert len(queue.sent) == len(made)


def test_payment_captured_is_payment_succeeded_and_payment_captured() -> None:
    assert AUDIT_TO_EVENTS["payment.captured"] == ("payment.succeeded", "payment.captured")


def test_a_repeated_audit_event_makes_no_second_event_and_no_second_delivery() -> None:
    # Given an audit event already turned into events and deliveries
    store, queue = MemoryStore(), MemoryQueue()
    store.put_endpoint(endpoint("usr_payer"))
    first = dispatcher(store, queue).record(audit_line("payment.captured"))

    # When the forwarder's retry puts it on the stream again
    again = dispatcher(store, queue).record(audit_line("payment.captured"))

    # Then nothing new is made or sent
    assert again == []
    assert len(store.events) == len(first) == 2
    assert len(queue.sent) == 2
    # And the ids are the audit event's: the same on every run
    assert first == [
        event_id_for("aud-1", "payment.succeeded", NOW * 1000 + 123),
        event_id_for("aud-1", "payment.captured", NOW * 1000 + 123),
    ]


def test_an_event_made_but_not_fanned_out_is_fanned_out_on_the_retry() -> None:
    # Given an event written just before the dispatcher crashed (no delivery queued yet)
    store, queue = MemoryStore(), MemoryQueue()
    store.put_endpoint(endpoint("usr_payee"))
    event_id = event_id_for("aud-1", "payment.created", NOW * 1000 + 123)
    store.put_event(
        Event(event_id, "payment.created", NOW, ("usr_payee", "usr_payer"), "{}", "aud-1"), 0
    )

    # When the audit record is retried
    dispatcher(store, queue).record(audit_line("payment.created"))

    # Then its delivery is queued, once
    assert [m.event for m, _ in queue.sent] == [event_id]
    assert store.events[event_id].dispatched


def test_events_go_to_the_subscribed_endpoints_of_payer_and_payee_only() -> None:
    # Given endpoints of both parties, one not subscribed, and one of a stranger
    store, queue = MemoryStore(), MemoryQueue()
    store.put_endpoint(endpoint("usr_payer", ("payment.created",)))
    store.put_endpoint(endpoint("usr_payee", ("*",)))
    store.put_endpoint(endpoint("usr_payee", ("refund.created",), suffix="2"))
    store.put_endpoint(endpoint("usr_stranger"))

    # When a payment is created
    [event_id] = dispatcher(store, queue).record(audit_line("payment.created"))

    # Then the payer's and the payee's subscribed endpoints get it, no one else's
    assert sorted(m.endpoint for m, _ in queue.sent) == ["we_usr_payee_1", "we_usr_payer_1"]
    assert store.owner_event("usr_payer", event_id) is not None
    assert store.owner_event("usr_stranger", event_id) is None


@pytest.mark.parametrize(
    "line",
    [
        b'{"type":"access.allowed","event_id":"x","details":{}}',
        b"not json",
        b'["payment.created"]',
        b'{"type":"payment.created","event_id":"x","details":{"payment":7}}',
        b'{"type":"payment.created","details":{"payment":"pay_0001"}}',
        b'{"type":"payment.created","event_id":"x","details":{"payment":"pay_unknown"}}',
        b'{"type":"payment.refunded","event_id":"x","details":{"payment":"pay_0001",'
        b'"refund":"re_unknown"}}',
    ],
)
def test_other_or_unusable_audit_lines_make_no_event(line: bytes) -> None:
    store, queue = MemoryStore(), MemoryQueue()
    assert dispatcher(store, queue).record(line) == []
    assert store.events == {}


# -- attempts ----------------------------------------------------------------------------------


def _queued_delivery(poster: Poster) -> tuple[MemoryStore, MemoryQueue, Dispatcher]:
    store, queue = MemoryStore(), MemoryQueue()
    store.put_endpoint(dataclasses.replace(endpoint("usr_payee"), secrets=(Secret(SECRET),)))
    worker = dispatcher(store, queue, poster)
    worker.record(audit_line("payment.created"))
    return store, queue, worker


def test_an_attempt_posts_the_signed_event_to_the_checked_address() -> None:
    # Given a queued delivery
    poster = Poster(PostResult(True, "204"))
    store, queue, worker = _queued_delivery(poster)
    [(message, _)] = queue.sent

    # When it is attempted
    assert worker.attempt(message) == "delivered"

    # Then one POST went to the resolved address, signed, with the event's own body
    [(target, body, headers)] = poster.posts
    assert target.address == "93.184.215.14"
    assert body == store.events[message.event].body.encode()
    assert headers["Payplat-Event-Id"] == message.event
    assert headers["User-Agent"] == "payplat-webhooks/1"
    assert headers["Content-Type"] == "application/json"
    verify_signature(body, headers["Payplat-Signature"], [SECRET], now=NOW)
    assert store.owner_event("usr_payee", message.event)[1] == 0  # type: ignore[index]

    # And the same message again (SQS delivers at least once) posts nothing
    assert worker.attempt(message) == "duplicate"
    assert len(poster.posts) == 1


def test_a_failed_attempt_queues_the_next_with_its_backoff() -> None:
    # Given an endpoint answering 503
    store, queue, worker = _queued_delivery(Poster(PostResult(False, "503")))
    [(message, _)] = queue.sent

    # When the attempt fails
    assert worker.attempt(message) == "retrying"

    # Then attempt 2 is queued, due after a delay within the first backoff ceiling
    following, delay = queue.sent[-1]
    assert following.attempt == 2
    assert 0 <= delay <= 30
    assert following.not_before == NOW + delay
    assert store.attempts[-1].result == "503"
    assert store.attempts[-1].next_retry_at == NOW + delay
    assert store.owner_event("usr_payee", message.event)[1] == 1  # type: ignore[index]


def test_a_message_not_due_yet_goes_back_with_the_rest_of_its_wait() -> None:
    store, queue, worker = _queued_delivery(Poster())
    [(message, _)] = queue.sent
    early = dataclasses.replace(message, not_before=NOW + 5000)
    assert worker.attempt(early) == "waiting"
    assert queue.sent[-1] == (early, 5000)
    assert store.attempts == []


def test_a_name_that_now_resolves_inside_is_a_failed_attempt_and_no_post() -> None:
    # Given a delivery whose endpoint's name has been rebound to the metadata address
    poster = Poster()
    store, queue, worker = _queued_delivery(poster)
    worker.resolver = lambda host, port: ["169.254.169.254"]
    [(message, _)] = queue.sent

    # Then the attempt fails without connecting, and is retried later
    assert worker.attempt(message) == "retrying"
    assert poster.posts == []
    assert store.attempts[-1].result == "url_not_allowed"


def test_a_deleted_endpoint_cancels_its_pending_deliveries() -> None:
    poster = Poster()
    store, queue, worker = _queued_delivery(poster)
    [(message, _)] = queue.sent
    store.delete_endpoint("usr_payee", message.endpoint)
    assert worker.attempt(message) == "canceled"
    assert poster.posts == []
    assert store.owner_event("usr_payee", message.event)[1] == 0  # type: ignore[index]


def test_after_three_days_of_failures_the_delivery_is_parked_as_failed() -> None:
    # Given a delivery failing since its first attempt three days ago
    store, queue, worker = _queued_delivery(Poster(PostResult(False, "timeout")))
    [(message, _)] = queue.sent
    worker.clock = lambda: NOW - 3 * 86_400 + 1
    assert worker.attempt(dataclasses.replace(message, not_before=0)) == "retrying"
    following, _ = queue.sent[-1]

    # When its next attempt fails past the window
    worker.clock = lambda: NOW + 60
    worker.poster = Poster(PostResult(False, "500"))
    assert worker.attempt(dataclasses.replace(following, not_before=NOW)) == "failed"

    # Then it is parked in the DLQ, recorded as failed, and no longer pending
    [parked] = queue.parked
    assert parked["reason"] == "retries_exhausted"
    assert parked["delivery"] == message.delivery
    assert parked["last_result"] == "500"
    assert store.deliveries[message.delivery]["delivery"].status == "failed"
    assert store.owner_event("usr_payee", message.event)[1] == 0  # type: ignore[index]


@pytest.mark.parametrize(
    "body", ["", "[]", "{}", '{"delivery":"d","event":"e","endpoint":"w","owner":"o",'
    '"attempt":0,"not_before":1}', '{"delivery":"d","attempt":"x"}'],
)  # fmt: skip
def test_messages_payplat_did_not_write_are_refused(body: str) -> None:
    with pytest.raises(ValueError, match="not a delivery message"):
        DeliveryMessage.from_json(body)


# -- the routes ------------------------------------------------------------------------------

OWNER = Principal(
    client_id="ppc_1",
    subject="ppc_1",
    scopes=frozenset({"webhooks:manage"}),
    jti="j",
    owner="usr_owner",
    plan="standard",
)


def api(store: MemoryStore | None = None, clock: int = NOW) -> WebhookApi:
    return WebhookApi(
        store or MemoryStore(),
        MemoryQueue(),
        resolver=lambda host, port: ["10.0.0.1" if host == "internal.example" else "8.8.8.8"],
        clock=lambda: clock,
    )


def create(**body: Any) -> CreateWebhookEndpoint:
    return CreateWebhookEndpoint.model_validate(
        {"url": "https://hooks.partner.example/", "enabled_events": ["*"], **body}
    )


def test_an_endpoint_is_created_with_its_secret_shown_once() -> None:
    store = MemoryStore()
    created = _body(api(store).create_endpoint(OWNER, create(description="orders")))
    assert created["secret"].startswith("whsec_")
    assert created["object"] == "webhook_endpoint"
    assert created["status"] == "enabled"
    assert created["description"] == "orders"
    assert created["id"].startswith("we_")
    assert "secret" not in api(store).get_endpoint(OWNER, created["id"])


def test_endpoint_changes_are_audited_without_the_secret(audit_lines: Any) -> None:
    store = MemoryStore()
    created = _body(api(store).create_endpoint(OWNER, create()))
    rolled = _body(api(store).roll_secret(OWNER, created["id"], RollWebhookSecret(expires_in=60)))
    api(store).delete_endpoint(OWNER, created["id"])
    kinds = [e["type"] for e in audit_lines.events]
    assert kinds == [
        "webhook_endpoint.created",
        "webhook_endpoint.secret_rolled",
        "webhook_endpoint.deleted",
    ]
    assert all(e["resource"] == f"webhook_endpoint/{created['id']}" for e in audit_lines.events)
    text = "\n".join(audit_lines.lines)
    assert created["secret"] not in text and rolled["secret"] not in text


@pytest.mark.parametrize(
    ("events", "message"),
    [
        (["payment.created", "*"], "not both"),
        (["payment.exploded"], "Unknown event type"),
        (["token.issued"], "Unknown event type"),
    ],
)
def test_enabled_events_must_be_known_types_or_star(events: list[str], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as raised:
        api().create_endpoint(OWNER, create(enabled_events=events))
    assert raised.value.param == "enabled_events"


def test_a_url_that_resolves_inside_is_refused_at_creation() -> None:
    with pytest.raises(InvalidRequest) as raised:
        api().create_endpoint(OWNER, create(url="https://internal.example/hook"))
    assert (raised.value.code, raised.value.param) == ("url_not_allowed", "url")


def test_an_owner_has_at_most_sixteen_endpoints() -> None:
    store = MemoryStore()
    for _ in range(16):
        api(store).create_endpoint(OWNER, create())
    with pytest.raises(InvalidRequest) as raised:
        api(store).create_endpoint(OWNER, create())
    assert raised.value.code == "webhook_endpoint_limit"


def test_rolling_keeps_the_old_secret_signing_until_it_expires() -> None:
    # Given an endpoint
    store = MemoryStore()
    created = _body(api(store).create_endpoint(OWNER, create()))

    # When its secret is rolled with an hour's overlap
    rolled = _body(api(store).roll_secret(OWNER, created["id"], RollWebhookSecret(expires_in=3600)))

    # Then the new one signs first, the old one too until the hour is up
    endpoint_ = store.endpoint(OWNER.owner, created["id"])
    assert endpoint_ is not None
    assert endpoint_.live_secrets(NOW) == [rolled["secret"], created["secret"]]
    assert endpoint_.live_secrets(NOW + 3600) == [rolled["secret"]]


def test_rolling_with_no_overlap_retires_the_old_secret_at_once() -> None:
    store = MemoryStore()
    created = _body(api(store).create_endpoint(OWNER, create()))
    rolled = _body(api(store).roll_secret(OWNER, created["id"], RollWebhookSecret(expires_in=0)))
    endpoint_ = store.endpoint(OWNER.owner, created["id"])
    assert endpoint_ is not None
    assert endpoint_.live_secrets(NOW) == [rolled["secret"]]


def test_rolling_again_and_again_keeps_at_most_three_secrets_signing() -> None:
    store = MemoryStore()
    created = _body(api(store).create_endpoint(OWNER, create()))
    for _ in range(5):
        api(store).roll_secret(OWNER, created["id"], RollWebhookSecret())
    endpoint_ = store.endpoint(OWNER.owner, created["id"])
    assert endpoint_ is not None
    assert len(endpoint_.live_secrets(NOW)) == 3
    assert endpoint_.version == 6


def test_the_roll_overlap_is_at_most_a_week() -> None:
    with pytest.raises(ValueError, match="less than or equal"):
        RollWebhookSecret(expires_in=7 * 86_400 + 1)


def test_someone_elses_endpoint_or_event_is_not_found() -> None:
    store = MemoryStore()
    created = _body(api(store).create_endpoint(OWNER, create()))
    stranger = dataclasses.replace(OWNER, owner="usr_stranger")
    for call in (
        lambda: api(store).get_endpoint(stranger, created["id"]),
        lambda: api(store).delete_endpoint(stranger, created["id"]),
        lambda: api(store).roll_secret(stranger, created["id"], RollWebhookSecret()),
        lambda: api(store).get_event(stranger, "evt_nope"),
        lambda: api(store).redeliver(stranger, "evt_nope"),
        lambda: api(store).get_endpoint(OWNER, "we_../../x"),
    ):
        with pytest.raises(NotFound):
            call()
