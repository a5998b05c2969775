"""Money under concurrent requests, over real HTTP through the local gateway (20 at once):
refunds never exceed what was captured, one Idempotency-Key makes one payment however many
times it arrives, and debits never overdraw.

The local gateway runs each function like one Lambda container (one request at a time), so
these requests interleave at the function, not inside one DynamoDB transaction; the
assertions hold for any order. The transaction's own conditions are held against true
interleavings (a rival container committing between a movement's read and its commit) in
tests/integration/test_money_crashes.py. Every test acts for owners, accounts and clients of
its own."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests

from tests.conftest import Platform
from tests.e2e.test_money_api import Aws, Tenant, fresh, local_aws, tenant

pytestmark = pytest.mark.e2e

WORKERS = 20


def at_once(
    base_url: str, calls: list[Callable[[requests.Session], requests.Response]]
) -> list[requests.Response]:
    """Send every call from its own thread, released together. Each thread's connection is
    opened first, one at a time: the local gateway's listen backlog is Python's default of 5,
    and 20 simultaneous connects can be reset before any request is sent."""
    sessions = [requests.Session() for _ in calls]
    for session in sessions:
        assert session.get(f"{base_url}/health", timeout=10).status_code == 200
    start = threading.Barrier(len(calls))

    def send(n: int) -> requests.Response:
        start.wait()
        return calls[n](sessions[n])

    try:
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            return list(pool.map(send, range(len(calls))))
    finally:
        for session in sessions:
            session.close()


@dataclass(frozen=True)
class World:
    aws: Aws
    alice: Tenant  # pays
    bob: Tenant  # is paid, refunds


@pytest.fixture(scope="module")
def world(platform: Platform) -> World:
    aws = local_aws(platform)
    plan = aws.roomy_plan()  # 60 money POSTs in a few seconds: beyond the standard plan
    return World(aws, tenant(platform, aws, plan, "payer"), tenant(platform, aws, plan, "payee"))


def no_server_errors(responses: list[requests.Response]) -> None:
    assert all(r.status_code < 500 for r in responses), [r.text for r in responses]


def test_concurrent_refunds_never_exceed_the_captured_amount(world: World) -> None:
    # Given alice's 1,000 payment to bob
    source = world.aws.open_account(world.alice.owner, "EUR", 5_000)
    destination = world.aws.open_account(world.bob.owner, "EUR", 0)
    payment = world.alice.pay(source, destination, 1_000)
    path = f"/v1/payments/{payment['id']}/refunds"
    before = world.aws.balances(source, destination)

    # When bob sends 20 refunds at once, each with its own key, together worth 2,900
    amounts = [50 + 10 * n for n in range(WORKERS)]
    assert sum(amounts) > payment["amount"]
    responses = at_once(
        world.bob.base_url,
        [
            lambda session, amount=amount: world.bob.post(path, {"amount": amount}, session=session)
            for amount in amounts
        ],
    )

    # Then what was refunded never exceeds what was captured
    no_server_errors(responses)
    refunded = [a for a, r in zip(amounts, responses, strict=True) if r.status_code == 201]
    refused = [a for a, r in zip(amounts, responses, strict=True) if r.status_code != 201]
    assert refunded, "some refunds must go through"
    assert sum(refunded) <= payment["amount"]
    for response in responses:
        if response.status_code != 201:
            # refused for the amount (room left too small) or, at worst, a retryable conflict
            assert response.status_code in (400, 409), response.text
    # And no refund was refused while there was still room for it
    room = payment["amount"] - sum(refunded)
    assert all(
        amount > room
        for amount, response in zip(amounts, responses, strict=True)
        if response.status_code == 400
    )
    assert refused

    # And the payment, its refunds and both balances agree on exactly that sum
    stored = world.bob.get(f"/v1/payments/{payment['id']}").json()
    assert stored["amount_refunded"] == sum(refunded)
    listed = world.bob.get(path).json()["data"]
    assert sorted(refund["amount"] for refund in listed) == sorted(refunded)
    assert {refund["id"] for refund in listed} == {
        r.json()["id"] for r in responses if r.status_code == 201
    }
    after = world.aws.balances(source, destination)
    assert after[source] == (before[source][0] + sum(refunded), 0)
    assert after[destination] == (before[destination][0] - sum(refunded), 0)


def test_one_idempotency_key_sent_20_times_at_once_makes_one_payment(world: World) -> None:
    # Given one payment request and one key
    source = world.aws.open_account(world.alice.owner, "EUR", 5_000)
    destination = world.aws.open_account(world.bob.owner, "EUR", 0)
    body = {
        "source_account": source,
        "destination_account": destination,
        "amount": 1_234,
        "currency": "EUR",
        "metadata": {"order": "A-1"},
    }
    key = fresh("key")

    # When it arrives 20 times at once (a client's retries racing each other)
    responses = at_once(
        world.alice.base_url,
        [
            lambda session: world.alice.post("/v1/payments", body, key=key, session=session)
            for _ in range(WORKERS)
        ],
    )

    # Then every answer is the one payment (or a retryable 409), byte for byte the same
    no_server_errors(responses)
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 409}, statuses
    answers = [r for r in responses if r.status_code == 200]
    assert len({r.content for r in answers}) == 1
    first = [r for r in answers if r.headers.get("Idempotent-Replayed") != "true"]
    assert len(first) == 1
    assert all(r.headers["Idempotent-Replayed"] == "true" for r in answers if r is not first[0])
    for conflict in (r for r in responses if r.status_code == 409):
        assert conflict.json()["error"]["code"] == "conflict"
    payment = first[0].json()
    assert (payment["status"], payment["amount"]) == ("succeeded", 1_234)

    # And the money moved once, and alice's payments list it once
    assert world.aws.balances(source, destination) == {
        source: (5_000 - 1_234, 0),
        destination: (1_234, 0),
    }
    listed = world.alice.get("/v1/payments", limit="100").json()["data"]
    assert [p["id"] for p in listed if p["source_account"] == source] == [payment["id"]]
    # And a late retry still gets the same bytes
    late = world.alice.post("/v1/payments", body, key=key)
    assert (late.content, late.headers["Idempotent-Replayed"]) == (first[0].content, "true")


def test_concurrent_debits_never_overdraw(world: World) -> None:
    # Given an account holding 500
    source = world.aws.open_account(world.alice.owner, "EUR", 500)
    destination = world.aws.open_account(world.bob.owner, "EUR", 0)
    body = {"source_account": source, "destination_account": destination, "currency": "EUR"}

    # When 20 payments of 30 arrive at once, each with its own key
    responses = at_once(
        world.alice.base_url,
        [
            lambda session: world.alice.post(
                "/v1/payments", {**body, "amount": 30}, session=session
            )
            for _ in range(WORKERS)
        ],
    )

    # Then exactly the 16 that fit succeed, and the other 4 are refused for lack of funds
    no_server_errors(responses)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 16, 402: 4}, [r.text for r in responses]
    succeeded = [r.json() for r in responses if r.status_code == 200]
    assert all(payment["status"] == "succeeded" for payment in succeeded)
    for response in (r for r in responses if r.status_code == 402):
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("payment_error", "insufficient_funds")
        assert error["payment"]["status"] == "failed"
        assert error["payment"]["failure_code"] == "insufficient_funds"

    # And the balance never went below zero: 500 - 16 x 30 = 20 is left
    assert world.aws.balances(source, destination) == {source: (20, 0), destination: (480, 0)}
    transactions = world.alice.get(f"/v1/accounts/{source}/transactions", limit="100").json()
    assert sorted(entry["amount"] for entry in transactions["data"]) == [-30] * 16
    listed = world.alice.get("/v1/payments", limit="100").json()["data"]
    mine = Counter(p["status"] for p in listed if p["source_account"] == source)
    assert mine == {"succeeded": 16, "failed": 4}
    failed_ids = {r.json()["error"]["payment"]["id"] for r in responses if r.status_code == 402}
    assert failed_ids == {p["id"] for p in listed if p["status"] == "failed"} & failed_ids
    assert len(failed_ids) == 4


def test_the_402_of_a_refused_payment_replays_too(world: World) -> None:
    source = world.aws.open_account(world.alice.owner, "EUR", 10)
    destination = world.aws.open_account(world.bob.owner, "EUR", 0)
    body = {
        "source_account": source,
        "destination_account": destination,
        "amount": 11,
        "currency": "EUR",
    }
    key = fresh("key")
    first = world.alice.post("/v1/payments", body, key=key)
    replay = world.alice.post("/v1/payments", body, key=key)
    assert first.status_code == 402
    assert (replay.status_code, replay.content) == (402, first.content)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert json.loads(first.content)["error"]["payment"]["amount"] == 11
    assert world.aws.balances(source) == {source: (10, 0)}
