"""The audit trail end to end on the running platform: every kind of event the auditors rely
on is produced by a real flow and read back from the Kinesis stream `audit` (decision lines
carried there as the subscription filter would, money movements through the ledger stream
and the forwarder), each valid against the published schema."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
import requests

from payplat.audit.events import unpack
from tests.conftest import AUDIT_SCHEMA, Platform, payplat_cli
from tests.e2e.oauth_support import (
    LOCAL_CREDENTIALS,
    App,
    Browser,
    api_get,
    client_token,
    consent,
    new_holder,
    register,
)

pytestmark = pytest.mark.e2e
WAIT_S = 20.0


def stream_events(platform: Platform) -> list[dict[str, Any]]:
    kinesis = boto3.client("kinesis", endpoint_url=platform.aws_endpoint_url, **LOCAL_CREDENTIALS)
    found: list[dict[str, Any]] = []
    for shard in kinesis.list_shards(StreamName="payplat-audit")["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName="payplat-audit", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            batch = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            found += [json.loads(line) for r in batch["Records"] for line in unpack(r["Data"])]
            if not batch["Records"]:
                break
            iterator = batch.get("NextShardIterator")
    return found


def read_back(
    platform: Platform, wanted: dict[str, Callable[[dict[str, Any]], bool]]
) -> dict[str, dict[str, Any]]:
    """For each type, the first event in the stream that matches (waiting for stragglers)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        found: dict[str, dict[str, Any]] = {}
        for event in stream_events(platform):
            match = wanted.get(event.get("type", ""))
            if match is not None and event["type"] not in found and match(event):
                found[event["type"]] = event
        if len(found) == len(wanted) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def by_client(client_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event.get("actor", {}).get("client_id") == client_id


def on_payment(payment_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event.get("resource") == f"payment/{payment_id}"


def pay(platform: Platform, token: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{platform.base_url}/v1/payments",
        json=body,
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": secrets.token_hex(8)},
        timeout=10,
    )


def act(platform: Platform, token: str, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{platform.base_url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": secrets.token_hex(8)},
        timeout=10,
    )


def test_every_audited_kind_of_event_reaches_the_stream(platform: Platform) -> None:
    # -- the authorization server: grants, sign-ins, consent, registration, secrets, keys
    app = App.seeded(platform)
    holder = new_holder(platform)
    token = app.exchange(consent(platform, app, holder))  # login, consent, code grant
    browser = Browser(platform)
    browser.open(app.authorization_url())
    denier = new_holder(platform)
    browser.log_in(denier, password="wrong-password")  # login.failed
    browser.log_in(denier)
    browser.press("deny")  # consent.denied
    rotated = app.token_request(grant_type="refresh_token", refresh_token=token["refresh_token"])
    app.token_request(grant_type="refresh_token", refresh_token=token["refresh_token"])  # reuse
    registered = register(
        platform,
        grant_types=["client_credentials", "authorization_code"],
        redirect_uris=["https://shop.example/cb"],
        scope="payments:read",
    )
    cid, secret = registered["client_id"], registered["client_secret"]
    client_token(platform, cid, "not-the-secret")  # token.refused
    access = client_token(platform, cid, secret).json()["access_token"]  # token.issued
    api_get(platform, "/v1/payments", access)  # access.allowed
    # A new token's first call, to a route its scope does not reach: the authorizer's 403
    narrow = client_token(platform, cid, secret).json()["access_token"]
    api_get(platform, "/v1/accounts", narrow)  # access.denied
    headers = {"Authorization": f"Bearer {registered['registration_access_token']}"}
    update = {
        "client_id": cid,
        "client_name": "Renamed",
        "grant_types": ["client_credentials"],
        "scope": "payments:read",
    }
    requests.put(registered["registration_client_uri"], json=update, headers=headers, timeout=10)
    requests.post(
        registered["registration_client_uri"] + "/secret", json={}, headers=headers, timeout=10
    )
    requests.post(
        f"{platform.base_url}/oauth/revoke", data={"token": access}, auth=(cid, secret), timeout=10
    )
    payplat_cli(platform, "clients", "disable", cid)
    rotation = json.loads(payplat_cli(platform, "keys", "rotate", "--json"))
    victim = new_holder(platform)
    brute = Browser(platform)
    brute.open(app.authorization_url())
    for attempt in range(7):  # the sign-in limit: rate_limited
        brute.log_in(victim, password=f"guess-{attempt}")

    # -- money: created, captured, refunded, canceled, failed, expired
    alice, captured, canceled, failed, expiring = _every_money_movement(platform)

    # Then every kind is in the stream, attributed, and valid against the schema
    found = read_back(
        platform,
        {
            "token.issued": by_client(cid),
            "token.refused": by_client(cid),
            "login.succeeded": lambda e: e["actor"].get("sub") == holder.user_id,
            "login.failed": lambda e: e["details"].get("username") == denier.username,
            "consent.granted": lambda e: e["actor"].get("sub") == holder.user_id,
            "consent.denied": lambda e: e["actor"].get("sub") == denier.user_id,
            "access.allowed": by_client(cid),
            "access.denied": by_client(cid),
            "rate_limited": lambda e: e.get("resource") == "login",
            "client.registered": lambda e: e["details"].get("registered_client_id") == cid,
            "client.updated": by_client(cid),
            "client.disabled": lambda e: e.get("resource") == f"client/{cid}",
            "client.secret_rotated": lambda e: e.get("resource") == f"client/{cid}",
            "key.rotated": lambda e: rotation["kid"] in json.dumps(e),
            "token.revoked": by_client(cid),
            "token.refresh_reuse_detected": by_client(app.client_id),
            "payment.created": on_payment(captured["id"]),
            "payment.captured": on_payment(captured["id"]),
            "payment.refunded": on_payment(captured["id"]),
            "payment.canceled": on_payment(canceled["id"]),
            "payment.failed": on_payment(failed["error"]["payment"]["id"]),
            "payment.expired": on_payment(expiring["id"]),
        },
    )
    assert rotated.status_code == 200
    missing = sorted(
        set(found)
        ^ {
            "token.issued",
            "token.refused",
            "login.succeeded",
            "login.failed",
            "consent.granted",
            "consent.denied",
            "access.allowed",
            "access.denied",
            "rate_limited",
            "client.registered",
            "client.updated",
            "client.disabled",
            "client.secret_rotated",
            "key.rotated",
            "token.revoked",
            "token.refresh_reuse_detected",
            "payment.created",
            "payment.captured",
            "payment.refunded",
            "payment.canceled",
            "payment.failed",
            "payment.expired",
        }
    )
    assert missing == []
    for event in found.values():
        AUDIT_SCHEMA.validate(event)
    # Money events say who moved it and for which request
    created = found["payment.created"]
    assert created["actor"]["client_id"] == _client_of(alice)
    assert created["origin"]["request_id"]
    assert found["payment.expired"]["actor"]["sub"] == "payplat-expirer"
    assert found["access.denied"]["reason"]


def _every_money_movement(platform: Platform) -> tuple[str, Any, Any, Any, Any]:
    """Between two holders of this test's own, each with a client of its own (no other
    test's balances move): the payer's token and the payments' answers."""
    payer, payee = new_holder(platform), new_holder(platform)
    alice = _client_for(platform, payer, "payments:read payments:write")
    bob = _client_for(platform, payee, "payments:read payments:write refunds:write")
    route = {
        "source_account": payer.account_id,
        "destination_account": payee.account_id,
        "currency": "EUR",
    }
    captured = pay(platform, alice, {**route, "amount": 300, "capture_method": "manual"}).json()
    act(platform, bob, f"/v1/payments/{captured['id']}/capture", {})
    act(platform, bob, f"/v1/payments/{captured['id']}/refunds", {"amount": 100})
    canceled = pay(platform, alice, {**route, "amount": 200, "capture_method": "manual"}).json()
    act(platform, alice, f"/v1/payments/{canceled['id']}/cancel", {})
    failed = pay(platform, alice, {**route, "amount": 99_000_000}).json()
    expiring = pay(platform, alice, {**route, "amount": 150, "capture_method": "manual"}).json()
    _make_due(platform, expiring["id"])  # 7 days pass; the sweep (every 2 s here) releases it
    return alice, captured, canceled, failed, expiring


def _client_for(platform: Platform, holder: Any, scope: str) -> str:
    """A client-credentials token of a new client acting for `holder`."""
    registered = register(
        platform, owner=holder.user_id, grant_types=["client_credentials"], scope=scope
    )
    response = client_token(platform, registered["client_id"], registered["client_secret"])
    token: str = response.json()["access_token"]
    return token


def _client_of(token: str) -> str:
    import jwt

    client_id: str = jwt.decode(token, options={"verify_signature": False})["client_id"]
    return client_id


def _make_due(platform: Platform, payment_id: str) -> None:
    """Move the authorization's capture deadline into the past (a week, in a second)."""
    local = json.loads((platform.state_dir / "local.json").read_text())
    dynamodb = boto3.client("dynamodb", endpoint_url=platform.aws_endpoint_url, **LOCAL_CREDENTIALS)
    past = int(time.time()) - 1
    dynamodb.update_item(
        TableName=local["tables"]["PAYPLAT_LEDGER_TABLE"],
        Key={"pk": {"S": f"PAYMENT#{payment_id}"}, "sk": {"S": "PAYMENT"}},
        UpdateExpression="SET expires_at = :past, gsi2sk = :due",
        ExpressionAttributeValues={":past": {"N": str(past)}, ":due": {"S": f"{past:012d}"}},
    )
