"""Webhooks end to end on the running platform: a partner registers an endpoint, money moves,
and a signed POST reaches a receiver on 127.0.0.1 (the local runner's dispatcher reads the
audit stream and the delivery queue as Lambda's event sources would). A failing endpoint
gets the event on a later attempt, a redelivery sends it again, and a rolled secret signs
next to the new one."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from payplat.webhooks.signatures import SignatureVerificationError, verify_signature
from tests.conftest import Platform
from tests.e2e.oauth_support import Holder, client_token, new_holder, register

pytestmark = pytest.mark.e2e
WAIT_S = 30.0


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.body)
        return event


@dataclass
class Receiver:
    """A partner's webhook receiver: records every POST, answers the statuses it is told
    (in order, then 200)."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            self.received.append(Received(headers, body))
            return self.statuses.pop(0) if self.statuses else 200

    def wait_for(self, match: Callable[[Received], bool], count: int = 1) -> list[Received]:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            with self._lock:
                found = [r for r in self.received if match(r)]
            if len(found) >= count:
                return found
            time.sleep(0.2)
        raise AssertionError(f"{count} matching deliveries expected, got {len(found)}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = state.answer({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class Partner:
    platform: Platform
    token: str
    endpoints: list[str] = field(default_factory=list)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        if method == "POST":
            headers["Idempotency-Key"] = secrets.token_hex(8)
        return requests.request(
            method, f"{self.platform.base_url}{path}", json=body, headers=headers, timeout=10
        )

    def endpoint(self, url: str, events: list[str] | None = None) -> dict[str, Any]:
        response = self.call(
            "POST", "/v1/webhook_endpoints", {"url": url, "enabled_events": events or ["*"]}
        )
        assert response.status_code == 200, response.text
        endpoint: dict[str, Any] = response.json()
        self.endpoints.append(endpoint["id"])
        return endpoint

    def pay(self, source: str, destination: str, amount: int = 100, **extra: Any) -> Any:
        body = {
            "source_account": source,
            "destination_account": destination,
            "amount": amount,
            "currency": "EUR",
            **extra,
        }
        response = self.call("POST", "/v1/payments", body)
        assert response.status_code == 200, response.text
        return response.json()

    def clean_up(self) -> None:
        for endpoint_id in self.endpoints:  # nothing more is sent to a receiver that is gone
            self.call("DELETE", f"/v1/webhook_endpoints/{endpoint_id}")


def _token(platform: Platform, client_id: str, secret: str) -> str:
    response = client_token(platform, client_id, secret)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
def merchant(platform: Platform) -> Iterator[Partner]:
    client = platform.clients["merchant"]
    partner = Partner(platform, _token(platform, client["client_id"], client["client_secret"]))
    yield partner
    partner.clean_up()


@pytest.fixture
def shop(platform: Platform) -> Iterator[tuple[Partner, Holder]]:
    """A partner of this test's own: a new account holder and a client acting for them, so
    no other test's payments reach its endpoints."""
    holder = new_holder(platform)
    registered = register(
        platform,
        owner=holder.user_id,
        grant_types=["client_credentials"],
        scope="payments:read payments:write webhooks:manage",
    )
    partner = Partner(
        platform, _token(platform, registered["client_id"], registered["client_secret"])
    )
    yield partner, holder
    partner.clean_up()


def _about(payment_id: str, event_type: str) -> Callable[[Received], bool]:
    def match(received: Received) -> bool:
        event = received.event
        return bool(event["type"] == event_type and event["data"]["object"]["id"] == payment_id)

    return match


def test_a_payment_reaches_the_merchants_endpoint_signed(
    platform: Platform, merchant: Partner, receiver: Receiver
) -> None:
    # Given the merchant's endpoint (the seeded merchant client has webhooks:manage)
    endpoint = merchant.endpoint(receiver.url)
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["object"] == "webhook_endpoint"
    assert endpoint["status"] == "enabled"

    # When bob pays a new holder
    payee = new_holder(platform)
    payment = merchant.pay("acct_bob_eur", str(payee.account_id))

    # Then the receiver gets payment.created, payment.succeeded and payment.captured for it
    [created] = receiver.wait_for(_about(payment["id"], "payment.created"))
    receiver.wait_for(_about(payment["id"], "payment.succeeded"))
    receiver.wait_for(_about(payment["id"], "payment.captured"))
    # signed with the endpoint's secret, verifiable as a partner would
    event = verify_signature(
        created.body, created.headers["payplat-signature"], [endpoint["secret"]]
    )
    assert event["object"] == "event"
    assert event["data"]["object"]["object"] == "payment"
    assert event["data"]["object"]["amount"] == 100
    assert created.headers["content-type"] == "application/json"
    assert created.headers["payplat-event-id"] == event["id"]
    assert created.headers["user-agent"] == "payplat-webhooks/1"
    # And an altered body does not verify
    with pytest.raises(SignatureVerificationError):
        verify_signature(
            created.body.replace(b'"amount":100', b'"amount":999'),
            created.headers["payplat-signature"],
            [endpoint["secret"]],
        )

    # And the event is the API's too: got by id, listed by type (newest first)
    got = merchant.call("GET", f"/v1/events/{event['id']}")
    assert got.status_code == 200, got.text
    assert {k: v for k, v in got.json().items() if k != "pending_webhooks"} == event
    listed = merchant.call("GET", "/v1/events?type=payment.created&limit=100").json()
    assert listed["object"] == "list"
    assert event["id"] in [e["id"] for e in listed["data"]]
    assert {e["type"] for e in listed["data"]} == {"payment.created"}


def test_a_failing_endpoint_gets_the_event_on_a_later_attempt(
    platform: Platform, shop: tuple[Partner, Holder], receiver: Receiver
) -> None:
    # Given an endpoint that answers 500 to the first delivery
    partner, holder = shop
    endpoint = partner.endpoint(receiver.url, ["payment.created"])
    receiver.statuses = [500]

    # When a payment is made
    payment = partner.pay(str(holder.account_id), str(new_holder(platform).account_id))

    # Then the event comes again (the retry, base 1 s locally), the same event, both signed
    first, second = receiver.wait_for(_about(payment["id"], "payment.created"), count=2)
    assert first.body == second.body
    assert first.headers["payplat-event-id"] == second.headers["payplat-event-id"]
    for delivery in (first, second):
        verify_signature(delivery.body, delivery.headers["payplat-signature"], [endpoint["secret"]])
    # And once delivered, nothing is pending for it
    event_id = first.headers["payplat-event-id"]
    _eventually(
        lambda: partner.call("GET", f"/v1/events/{event_id}").json()["pending_webhooks"] == 0
    )


def test_an_event_is_redelivered_on_request(
    platform: Platform, shop: tuple[Partner, Holder], receiver: Receiver
) -> None:
    # Given an event delivered once
    partner, holder = shop
    partner.endpoint(receiver.url, ["payment.created"])
    payment = partner.pay(str(holder.account_id), str(new_holder(platform).account_id))
    [delivered] = receiver.wait_for(_about(payment["id"], "payment.created"))
    event_id = delivered.headers["payplat-event-id"]

    # When the partner asks for it again
    response = partner.call("POST", f"/v1/events/{event_id}/redeliver", {})

    # Then it is queued and arrives a second time, the same event
    assert response.status_code == 200, response.text
    assert response.json() == {"id": event_id, "object": "event", "redelivery": "queued"}
    _, again = receiver.wait_for(_about(payment["id"], "payment.created"), count=2)
    assert again.body == delivered.body


def test_a_rolled_secret_signs_next_to_the_new_one_until_it_expires(
    platform: Platform, shop: tuple[Partner, Holder], receiver: Receiver
) -> None:
    # Given an endpoint whose secret is rolled with an hour's overlap
    partner, holder = shop
    endpoint = partner.endpoint(receiver.url, ["payment.created"])
    rolled = partner.call(
        "POST", f"/v1/webhook_endpoints/{endpoint['id']}/roll_secret", {"expires_in": 3600}
    )
    assert rolled.status_code == 200, rolled.text
    new_secret = rolled.json()["secret"]
    assert new_secret != endpoint["secret"]

    # When money moves
    payment = partner.pay(str(holder.account_id), str(new_holder(platform).account_id))

    # Then the delivery carries two v1 signatures: either secret verifies it
    [delivery] = receiver.wait_for(_about(payment["id"], "payment.created"))
    header = delivery.headers["payplat-signature"]
    assert header.count("v1=") == 2
    verify_signature(delivery.body, header, [new_secret])
    verify_signature(delivery.body, header, [endpoint["secret"]])


def test_endpoints_are_listed_got_and_deleted_by_their_owner_only(
    platform: Platform, shop: tuple[Partner, Holder], merchant: Partner
) -> None:
    # Given two endpoints of a partner
    partner, _ = shop
    first = partner.endpoint("http://127.0.0.1:9/first")
    second = partner.endpoint("http://127.0.0.1:9/second", ["refund.created"])

    # Then they list newest first, a page at a time, without their secrets
    page = partner.call("GET", "/v1/webhook_endpoints?limit=1").json()
    assert [e["id"] for e in page["data"]] == [second["id"]]
    assert page["has_more"] is True
    assert "secret" not in page["data"][0]
    rest = partner.call("GET", f"/v1/webhook_endpoints?starting_after={second['id']}").json()
    assert [e["id"] for e in rest["data"]] == [first["id"]]
    got = partner.call("GET", f"/v1/webhook_endpoints/{second['id']}").json()
    assert got["enabled_events"] == ["refund.created"]
    assert "secret" not in got
    # And another owner's client sees none of them (404, as if they did not exist)
    assert merchant.call("GET", f"/v1/webhook_endpoints/{first['id']}").status_code == 404
    assert merchant.call("DELETE", f"/v1/webhook_endpoints/{first['id']}").status_code == 404

    # When one is deleted, it is gone
    deleted = partner.call("DELETE", f"/v1/webhook_endpoints/{first['id']}")
    assert deleted.json() == {"id": first["id"], "object": "webhook_endpoint", "deleted": True}
    assert partner.call("GET", f"/v1/webhook_endpoints/{first['id']}").status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "http://192.168.1.10/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "ftp://127.0.0.1/hook",
    ],
)
def test_endpoints_on_internal_addresses_are_refused(merchant: Partner, url: str) -> None:
    response = merchant.call("POST", "/v1/webhook_endpoints", {"url": url, "enabled_events": ["*"]})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "url_not_allowed",
        "url",
    )


def _eventually(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, "not within the wait"
        time.sleep(0.3)
