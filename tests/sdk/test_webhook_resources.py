"""Webhook endpoints and events through the SDK, against the contract (scope webhooks:manage):
POST/GET /v1/webhook_endpoints, GET/DELETE /v1/webhook_endpoints/{id},
POST /v1/webhook_endpoints/{id}/roll_secret, GET /v1/events, GET /v1/events/{id},
POST /v1/events/{id}/redeliver — and the deliveries themselves, received on 127.0.0.1 and
verified with payplat_sdk.webhooks.verify, across a secret roll.

Where those routes are not deployed on the platform under test, the module probe below finds
GET /v1/webhook_endpoints unknown to the gateway (404) and skips every test here."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from payplat_sdk import (
    Deleted,
    Event,
    InvalidRequestError,
    PermissionDeniedError,
    Redelivery,
    SignatureVerificationError,
    WebhookEndpoint,
    webhooks,
)

from tests.conftest import Platform
from tests.sdk.support import MONEY_SCOPE, Delivery, Partner, Receiver, new_partner

pytestmark = pytest.mark.e2e

NOT_DEPLOYED = "webhook routes not deployed on this platform"


def webhook_routes_deployed(base_url: str) -> bool:
    """GET /v1/webhook_endpoints without a token: a deployed route is a 401 (the authorizer
    wants a token), an unknown path the gateway's 404."""
    response = requests.get(f"{base_url}/v1/webhook_endpoints", timeout=10)
    return response.status_code != 404


@pytest.fixture(scope="module", autouse=True)
def webhook_routes(platform: Platform) -> None:
    if not webhook_routes_deployed(platform.base_url):
        pytest.skip(NOT_DEPLOYED)


@pytest.fixture(scope="module")
def partner(platform: Platform) -> Partner:
    return new_partner(platform, scope=f"{MONEY_SCOPE} webhooks:manage")


@pytest.fixture(scope="module")
def payee(platform: Platform) -> Partner:
    return new_partner(platform, balance=0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiving = Receiver()
    yield receiving
    receiving.close()


def test_an_endpoint_is_created_listed_rolled_and_deleted(
    partner: Partner, receiver: Receiver
) -> None:
    client = partner.client()

    endpoint = client.webhook_endpoints.create(
        receiver.url, enabled_events=["payment.succeeded", "refund.created"], description="orders"
    )
    assert isinstance(endpoint, WebhookEndpoint)
    assert endpoint.id.startswith("we_")
    assert (endpoint.url, endpoint.enabled_events) == (
        receiver.url,
        ["payment.succeeded", "refund.created"],
    )
    assert (endpoint.description, endpoint.status) == ("orders", "enabled")
    assert endpoint.secret is not None
    assert endpoint.secret.startswith("whsec_")  # shown once: now
    assert endpoint.secret not in repr(endpoint)

    assert endpoint.id in [e.id for e in client.webhook_endpoints.list().auto_paging_iter()]
    fetched = client.webhook_endpoints.retrieve(endpoint.id)
    # The same fields, but the secret is never shown again
    assert fetched.to_dict() == {k: v for k, v in endpoint.to_dict().items() if k != "secret"}
    assert fetched.secret is None

    rolled = client.webhook_endpoints.roll_secret(endpoint.id, expires_in=3600)
    assert rolled.id == endpoint.id
    assert rolled.secret is not None
    assert rolled.secret != endpoint.secret

    deleted = client.webhook_endpoints.delete(endpoint.id)
    assert isinstance(deleted, Deleted)
    assert (deleted.id, deleted.deleted) == (endpoint.id, True)
    with pytest.raises(InvalidRequestError) as gone:
        client.webhook_endpoints.retrieve(endpoint.id)
    assert (gone.value.status, gone.value.code, gone.value.param) == (
        404,
        "resource_missing",
        "endpoint_id",
    )


def test_an_endpoint_listens_to_every_event_by_default(
    partner: Partner, receiver: Receiver
) -> None:
    client = partner.client()
    endpoint = client.webhook_endpoints.create(receiver.url)
    try:
        assert endpoint.enabled_events == ["*"]
    finally:
        client.webhook_endpoints.delete(endpoint.id)


def test_endpoints_page(partner: Partner, receiver: Receiver) -> None:
    client = partner.client()
    made = [client.webhook_endpoints.create(f"{receiver.url}/{n}").id for n in range(3)]
    try:
        first = client.webhook_endpoints.list(limit=2)
        assert (len(first), first.has_more) == (2, True)
        walked = [e.id for e in first.auto_paging_iter()]
        assert set(made) <= set(walked)  # (with any other test's endpoints still there)
        assert len(walked) == len(set(walked))
    finally:
        for endpoint_id in made:
            client.webhook_endpoints.delete(endpoint_id)


def test_bad_endpoints_are_refused(partner: Partner, receiver: Receiver) -> None:
    client = partner.client()
    with pytest.raises(InvalidRequestError) as unknown:
        client.webhook_endpoints.create(receiver.url, enabled_events=["payment.teleported"])
    assert unknown.value.param == "enabled_events"
    with pytest.raises(InvalidRequestError) as private:
        client.webhook_endpoints.create("http://10.0.0.1/hooks")  # SSRF: never a private address
    assert (private.value.param, private.value.code) == ("url", "url_not_allowed")


def test_deliveries_verify_across_a_secret_roll_and_redelivery(
    partner: Partner, payee: Partner, receiver: Receiver
) -> None:
    client = partner.client()
    endpoint = client.webhook_endpoints.create(receiver.url, description="sdk e2e")
    first_secret = endpoint.secret
    assert first_secret is not None
    try:
        # Given a payment, its events reach the receiver signed with the endpoint's secret
        payment = client.payments.create(
            source_account=partner.account,
            destination_account=payee.account,
            amount=300,
            currency="EUR",
        )
        delivery = receiver.wait_for(lambda d: _about(d, payment.id))
        signature = delivery.headers[webhooks.SIGNATURE_HEADER]
        event = webhooks.verify(delivery.body, signature, first_secret)
        assert event["id"] == delivery.headers[webhooks.EVENT_ID_HEADER]
        assert event["data"]["object"]["id"] == payment.id
        with pytest.raises(SignatureVerificationError):
            webhooks.verify(delivery.body, signature, "whsec_not_the_secret")

        # And the API shows the same event
        fetched = client.events.retrieve(event["id"])
        assert isinstance(fetched, Event)
        assert fetched.to_dict() | {"pending_webhooks": None} == event | {"pending_webhooks": None}
        typed = list(client.events.list(type=fetched.type, limit=100))
        assert event["id"] in [e.id for e in typed]
        assert {e.type for e in typed} == {fetched.type}

        # When the secret is rolled (the old one signing for an hour more) and the event
        # redelivered, the delivery verifies with either secret
        rolled = client.webhook_endpoints.roll_secret(endpoint.id, expires_in=3600)
        new_secret = rolled.secret
        assert new_secret is not None
        redelivery = client.events.redeliver(event["id"])
        assert isinstance(redelivery, Redelivery)
        assert (redelivery.id, redelivery.redelivery) == (event["id"], "queued")
        again = receiver.wait_for(lambda d: d is not delivery and _is_event(d, event["id"]))
        header = again.headers[webhooks.SIGNATURE_HEADER]
        assert header.count("v1=") == 2
        for secret in (new_secret, first_secret, [new_secret, first_secret]):
            assert webhooks.verify(again.body, header, secret) == event

        # And a secret rolled with expires_in=0 stops signing at once
        newest = client.webhook_endpoints.roll_secret(endpoint.id, expires_in=0).secret
        assert newest is not None
        client.events.redeliver(event["id"])
        third = receiver.wait_for(
            lambda d: d not in (delivery, again) and _is_event(d, event["id"])
        )
        header = third.headers[webhooks.SIGNATURE_HEADER]
        assert webhooks.verify(third.body, header, newest) == event
        with pytest.raises(SignatureVerificationError):
            webhooks.verify(third.body, header, new_secret)
    finally:
        client.webhook_endpoints.delete(endpoint.id)

    # With no endpoint left, there is nothing to redeliver to
    with pytest.raises(InvalidRequestError) as nowhere:
        client.events.redeliver(event["id"])
    assert nowhere.value.code == "no_webhook_endpoints"


def test_the_routes_need_the_webhooks_scope(platform: Platform) -> None:
    client = new_partner(platform).client()  # money scopes only
    with pytest.raises(PermissionDeniedError):
        client.webhook_endpoints.list()
    with pytest.raises(PermissionDeniedError):
        client.events.list()


def _about(delivery: Delivery, object_id: str) -> bool:
    event = json.loads(delivery.body)
    return bool(event.get("data", {}).get("object", {}).get("id") == object_id)


def _is_event(delivery: Delivery, event_id: str) -> bool:
    return delivery.headers.get(webhooks.EVENT_ID_HEADER) == event_id
