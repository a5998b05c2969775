"""Crash injection on the money paths (in process, moto): a crash before the transaction, in
the middle of the call (the request never reached DynamoDB, or it committed and the response
was lost) and after the commit but before the answer left the function. After each crash
either nothing changed or everything did, and a retry with the same Idempotency-Key and body
completes the movement exactly once and answers the same body from then on."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from infra.local.provision import _create_table
from infra.resources import LEDGER
from payplat.errors import Conflict, InvalidRequest, InvalidState
from payplat.payments.dal.ledger_table import DynamoLedgerStore
from payplat.payments.idempotency import Idempotency, Outcome, request_hash
from payplat.payments.ledger import Account, Entry, Ledger, Movement
from payplat.payments.requests import CapturePayment, CreatePayment, CreateRefund
from payplat.principal import Principal

OPENING_BALANCE = 10_000
AMOUNT = 1_000
CAPTURED = 600  # a partial capture: the rest goes back to the payer
REFUNDED = 400  # a partial refund: the payment stays refundable, the riskier retry


class Crash(Exception):
    """The function died here (timeout, out of memory, container recycled)."""


# -- fault injection ------------------------------------------------------------------------------


class FlakyClient:
    """The boto3 client, with a one-shot fault on the next TransactWriteItems: `during` fails
    before the request reaches DynamoDB; `lost` lets it commit, then loses the response."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.fault: str | None = None

    def transact_write_items(self, **request: Any) -> Any:
        fault = self.fault
        if fault == "during":
            self.fault = None
            raise EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com")
        response = self._real.transact_write_items(**request)  # refused: the fault stays armed
        self.fault = None
        if fault == "lost":
            raise ReadTimeoutError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com")
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class TokenHonouringClient(FlakyClient):
    """FlakyClient plus what real DynamoDB does with a ClientRequestToken (moto ignores it):
    for 10 minutes the same token with the same request is answered as a success without
    writing again, and the same token with a different request is refused with
    IdempotentParameterMismatchException."""

    def __init__(self, real: Any) -> None:
        super().__init__(real)
        self._seen: dict[str, str] = {}

    def transact_write_items(self, **request: Any) -> Any:
        token = request.get("ClientRequestToken")
        if token is None:
            return super().transact_write_items(**request)
        items = json.dumps(request["TransactItems"], sort_keys=True, default=str)
        digest = hashlib.sha256(items.encode()).hexdigest()
        seen = self._seen.get(token)
        if seen == digest:
            return {}
        if seen is not None:
            raise ClientError(
                {
                    "Error": {
                        "Code": "IdempotentParameterMismatchException",
                        "Message": "Idempotency token reused with different parameters",
                    }
                },
                "TransactWriteItems",
            )
        try:
            response = super().transact_write_items(**request)
        except ReadTimeoutError:
            self._seen[token] = digest  # it committed; only the answer was lost
            raise
        self._seen[token] = digest
        return response


class CrashingStore:
    """The ledger store, dying once `before` its commit or `after` it (the transaction went
    through; the function died before it could answer), or letting a `rival` in first."""

    def __init__(self, real: DynamoLedgerStore) -> None:
        self._real = real
        self.fault: str | None = None
        # Another container's movement, committed between this one's read and its commit.
        self.rival: Callable[[], Any] | None = None

    def commit(self, movement: Movement, entries: Sequence[Entry]) -> None:
        fault, self.fault = self.fault, None
        rival, self.rival = self.rival, None
        if rival is not None:
            rival()
        if fault == "before":
            raise Crash("before the commit")
        self._real.commit(movement, entries)
        if fault == "after":
            raise Crash("after the commit")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


FAULTS = ("before", "during", "lost", "after")
COMMITTED = {"before": False, "during": False, "lost": True, "after": True}
RAISED: dict[str, type[Exception]] = {
    "before": Crash,
    "during": EndpointConnectionError,
    "lost": ReadTimeoutError,
    "after": Crash,
}


# -- the world of one test ----------------------------------------------------------------------


def fresh(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def principal_of(owner: str, client_id: str) -> Principal:
    scopes = frozenset({"payments:read", "payments:write", "refunds:write", "accounts:read"})
    return Principal(client_id, client_id, scopes, "jti", owner, "standard")


@dataclass
class World:
    """A payer and a payee with fresh accounts, a healthy ledger (a fresh container) and a
    ledger whose store and client can be made to crash."""

    table: str
    payer: Principal
    payee: Principal
    source: str
    destination: str
    store: DynamoLedgerStore
    healthy: Ledger
    flaky_client: FlakyClient
    crashing_store: CrashingStore
    crashing: Ledger

    def arm(self, fault: str) -> None:
        if fault in ("during", "lost"):
            self.flaky_client.fault = fault
        else:
            self.crashing_store.fault = fault

    def snapshot(self) -> dict[str, Any]:
        """Everything a movement between the two accounts can touch."""
        payments, _ = self.store.page(
            "PAYMENT", self.payer.owner, limit=100, after=None, before=None
        )
        state: dict[str, Any] = {"payments": {}}
        for record in payments:
            payment = self.store.payment(record["id"])
            assert payment is not None
            state["payments"][payment.id] = {
                "payment": payment.public(),
                "refunds": [refund.public() for refund in self.store.refunds(payment.id)],
            }
        for account_id in (self.source, self.destination):
            account = self.store.account(account_id)
            assert account is not None
            entries, _ = self.store.entries(account_id, limit=100, after=None)
            state[account_id] = {
                "available": account.available,
                "held": account.held,
                "entries": sorted(entry["id"] for entry in entries),
            }
        return state


def make_world(table: str, client: type[FlakyClient] = FlakyClient) -> World:
    store = DynamoLedgerStore(table)
    payer = principal_of(fresh("usr_payer"), fresh("ppc_payer"))
    payee = principal_of(fresh("usr_payee"), fresh("ppc_payee"))
    source, destination = fresh("acct_src"), fresh("acct_dst")
    now = int(time.time())
    store.open_account(Account(source, payer.owner, "EUR", OPENING_BALANCE, 0, now))
    store.open_account(Account(destination, payee.owner, "EUR", 0, 0, now))
    flaky_client = client(boto3.client("dynamodb"))
    crashing_store = CrashingStore(DynamoLedgerStore(table, client=flaky_client))
    return World(
        table=table,
        payer=payer,
        payee=payee,
        source=source,
        destination=destination,
        store=store,
        healthy=Ledger(DynamoLedgerStore(table)),
        flaky_client=flaky_client,
        crashing_store=crashing_store,
        crashing=Ledger(crashing_store),  # type: ignore[arg-type]
    )


@pytest.fixture
def ledger_table(aws: dict[str, str]) -> Iterator[str]:
    """The ledger table's exact definition (infra/resources.py), one per test: moto copies the
    whole table on every TransactWriteItems, so a small table keeps this file fast whatever
    else the package wrote to `aws[Env.LEDGER_TABLE]`."""
    spec = replace(LEDGER, id=fresh("ledger-crash"))
    dynamodb = boto3.client("dynamodb")
    _create_table(dynamodb, spec)
    yield spec.local_name
    dynamodb.delete_table(TableName=spec.local_name)


@pytest.fixture
def world(ledger_table: str) -> World:
    return make_world(ledger_table)


# -- the three movements, each as (setup, the call, what it moves) --------------------------------


@dataclass(frozen=True)
class Operation:
    name: str
    prepare: Callable[[World], str]  # returns the payment the call acts on ("" for create)
    call: Callable[[Ledger, World, str, Idempotency], Outcome]
    idempotency: Callable[[World, str, str], Idempotency]
    status: int
    moves: Callable[[World], dict[str, tuple[int, int, int]]]  # account: (available, held, n)


def create_request(world: World) -> CreatePayment:
    return CreatePayment(
        source_account=world.source,
        destination_account=world.destination,
        amount=AMOUNT,
        currency="EUR",
        metadata={"order": "o-1"},
    )


def pay(world: World, capture_method: str = "automatic") -> str:
    request = create_request(world).model_copy(update={"capture_method": capture_method})
    key = Idempotency(world.payer.client_id, fresh("setup"), "setup")
    outcome = world.healthy.create_payment(world.payer, request, key)
    assert outcome.status == 200, outcome.body
    payment_id: str = json.loads(outcome.body)["id"]
    return payment_id


def key_of(principal: Principal, route: str, target: str, body: dict[str, Any]) -> Idempotency:
    return Idempotency(principal.client_id, fresh("key"), request_hash(route, target, body))


CREATE = Operation(
    name="create_payment",
    prepare=lambda world: "",
    call=lambda ledger, world, _, key: ledger.create_payment(
        world.payer, create_request(world), key
    ),
    idempotency=lambda world, _, route: key_of(
        world.payer, route, "", create_request(world).model_dump(mode="json")
    ),
    status=200,
    moves=lambda world: {
        world.source: (-AMOUNT, 0, 1),
        world.destination: (AMOUNT, 0, 1),
    },
)
CAPTURE = Operation(
    name="capture_payment",
    prepare=lambda world: pay(world, "manual"),
    call=lambda ledger, world, payment_id, key: ledger.capture(
        world.payee, payment_id, CapturePayment(amount=CAPTURED), key
    ),
    idempotency=lambda world, payment_id, route: key_of(
        world.payee, route, payment_id, {"amount": CAPTURED}
    ),
    status=200,
    moves=lambda world: {
        world.source: (AMOUNT - CAPTURED, -AMOUNT, 2),  # the hold goes, the rest comes back
        world.destination: (CAPTURED, 0, 1),
    },
)
REFUND = Operation(
    name="create_refund",
    prepare=pay,
    call=lambda ledger, world, payment_id, key: ledger.refund(
        world.payee, payment_id, CreateRefund(amount=REFUNDED), key
    ),
    idempotency=lambda world, payment_id, route: key_of(
        world.payee,
        route,
        payment_id,
        {"amount": REFUNDED, "reason": None, "metadata": {}},
    ),
    status=201,
    moves=lambda world: {
        world.source: (REFUNDED, 0, 1),
        world.destination: (-REFUNDED, 0, 1),
    },
)
OPERATIONS = {op.name: op for op in (CREATE, CAPTURE, REFUND)}


def assert_moved_once(
    world: World, before: dict[str, Any], after: dict[str, Any], op: Operation, payment_id: str
) -> str:
    """`after` is `before` plus exactly one movement of `op`; returns the object it made."""
    for account_id, (available, held, entries) in op.moves(world).items():
        assert after[account_id]["available"] == before[account_id]["available"] + available
        assert after[account_id]["held"] == before[account_id]["held"] + held
        new_entries = set(after[account_id]["entries"]) - set(before[account_id]["entries"])
        assert len(new_entries) == entries
        assert set(before[account_id]["entries"]) <= set(after[account_id]["entries"])
    new_payments = set(after["payments"]) - set(before["payments"])
    if op is CREATE:
        assert len(new_payments) == 1
        (made,) = new_payments
        assert after["payments"][made]["payment"]["status"] == "succeeded"
        return made
    assert not new_payments
    payment = after["payments"][payment_id]
    if op is CAPTURE:
        assert payment["payment"]["status"] == "succeeded"
        assert payment["payment"]["amount_captured"] == CAPTURED
        return payment_id
    assert payment["payment"]["amount_refunded"] == REFUNDED
    assert len(payment["refunds"]) == 1
    refund_id: str = payment["refunds"][0]["id"]
    return refund_id


def current_public(world: World, op: Operation, made: str, payment_id: str) -> dict[str, Any]:
    """The object as the ledger now holds it, as the API shows it."""
    if op is REFUND:
        (refund,) = [r for r in world.store.refunds(payment_id) if r.id == made]
        return refund.public()
    payment = world.store.payment(made)
    assert payment is not None
    return payment.public()


# -- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("name", list(OPERATIONS))
def test_a_crash_leaves_nothing_or_everything_and_the_retry_completes_once(
    world: World, name: str, fault: str
) -> None:
    # Given a movement about to happen
    op = OPERATIONS[name]
    payment_id = op.prepare(world)
    key = op.idempotency(world, payment_id, name)
    before = world.snapshot()

    # When the function crashes at `fault`
    world.arm(fault)
    with pytest.raises(RAISED[fault]):
        op.call(world.crashing, world, payment_id, key)

    # Then either nothing changed, or the whole movement did
    crashed = world.snapshot()
    if COMMITTED[fault]:
        assert_moved_once(world, before, crashed, op, payment_id)
        assert world.store.claim(key.namespace, key.key) is not None
    else:
        assert crashed == before
        assert world.store.claim(key.namespace, key.key) is None

    # When the partner retries with the same key and body (on another container)
    retry = op.call(world.healthy, world, payment_id, key)

    # Then the movement happened exactly once, and the answer is the one it stands by
    assert retry.status == op.status
    assert retry.replayed is COMMITTED[fault]
    after = world.snapshot()
    made = assert_moved_once(world, before, after, op, payment_id)
    assert json.loads(retry.body) == current_public(world, op, made, payment_id)
    if COMMITTED[fault]:
        assert after == crashed

    # And every later retry, on any container, answers the same bytes and moves nothing
    for ledger in (world.healthy, world.crashing, Ledger(DynamoLedgerStore(world.table))):
        again = op.call(ledger, world, payment_id, key)
        assert (again.status, again.body, again.replayed) == (retry.status, retry.body, True)
    assert world.snapshot() == after


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_crashing_twice_then_retrying_still_moves_the_money_once(world: World, name: str) -> None:
    # A crash before the commit, then a lost response, then the retry that gets through
    op = OPERATIONS[name]
    payment_id = op.prepare(world)
    key = op.idempotency(world, payment_id, name)
    before = world.snapshot()

    world.arm("before")
    with pytest.raises(Crash):
        op.call(world.crashing, world, payment_id, key)
    world.arm("lost")
    with pytest.raises(ReadTimeoutError):
        op.call(world.crashing, world, payment_id, key)
    retry = op.call(world.crashing, world, payment_id, key)

    assert (retry.status, retry.replayed) == (op.status, True)
    made = assert_moved_once(world, before, world.snapshot(), op, payment_id)
    assert json.loads(retry.body) == current_public(world, op, made, payment_id)


def test_a_crash_after_a_refused_payment_still_replays_the_402(world: World) -> None:
    # Given a payment the source cannot afford, whose recorded failure's answer is lost
    request = create_request(world).model_copy(update={"amount": OPENING_BALANCE + 1})
    key = key_of(world.payer, "create_payment", "", request.model_dump(mode="json"))
    before = world.snapshot()
    world.arm("lost")
    with pytest.raises(ReadTimeoutError):
        world.crashing.create_payment(world.payer, request, key)

    # When the partner retries
    retry = world.healthy.create_payment(world.payer, request, key)

    # Then it gets the 402 the failure recorded; no money moved; one failed payment exists
    assert (retry.status, retry.replayed) == (402, True)
    error = json.loads(retry.body)["error"]
    assert error["code"] == "insufficient_funds"
    after = world.snapshot()
    for account_id in (world.source, world.destination):
        assert after[account_id] == before[account_id]
    (failed,) = set(after["payments"]) - set(before["payments"])
    assert after["payments"][failed]["payment"]["status"] == "failed"
    assert error["payment"] == after["payments"][failed]["payment"]


# -- a rival container commits between this one's read and its commit ---------------------------


def refund_of(world: World, ledger: Ledger, payment_id: str, amount: int) -> Outcome:
    body = {"amount": amount, "reason": None, "metadata": {}}
    key = key_of(world.payee, "create_refund", payment_id, body)
    return ledger.refund(world.payee, payment_id, CreateRefund(amount=amount), key)


def balances(world: World) -> dict[str, tuple[int, int]]:
    found = {a: world.store.account(a) for a in (world.source, world.destination)}
    return {a: (account.available, account.held) for a, account in found.items() if account}


def test_a_refund_planned_on_a_stale_read_cannot_over_refund(world: World) -> None:
    # Given 1,000 captured, and a refund of 600 planned while another of 600 commits
    payment_id = pay(world)
    world.crashing_store.rival = lambda: refund_of(world, world.healthy, payment_id, 600)

    # Then the late one is refused by the transaction, looks again, and finds no room
    with pytest.raises(InvalidRequest) as refused:
        refund_of(world, world.crashing, payment_id, 600)
    assert refused.value.param == "amount"
    payment = world.store.payment(payment_id)
    assert payment is not None
    assert payment.amount_refunded == 600
    assert [refund.amount for refund in world.store.refunds(payment_id)] == [600]
    assert balances(world) == {
        world.source: (OPENING_BALANCE - AMOUNT + 600, 0),
        world.destination: (AMOUNT - 600, 0),
    }


def test_a_refund_that_still_fits_after_a_rival_goes_through_once(world: World) -> None:
    payment_id = pay(world)
    world.crashing_store.rival = lambda: refund_of(world, world.healthy, payment_id, 600)

    outcome = refund_of(world, world.crashing, payment_id, 300)

    assert (outcome.status, outcome.replayed) == (201, False)
    payment = world.store.payment(payment_id)
    assert payment is not None
    assert payment.amount_refunded == 900
    assert sorted(refund.amount for refund in world.store.refunds(payment_id)) == [300, 600]
    assert balances(world)[world.destination] == (AMOUNT - 900, 0)


def test_a_capture_racing_a_cancel_finds_the_payment_canceled(world: World) -> None:
    # Given an authorization the payee captures while the payer cancels it
    payment_id = pay(world, "manual")
    cancel_key = Idempotency(world.payer.client_id, fresh("cancel"), "cancel")
    world.crashing_store.rival = lambda: world.healthy.cancel(world.payer, payment_id, cancel_key)
    capture_key = key_of(world.payee, "capture_payment", payment_id, {"amount": None})

    # Then the capture is refused, and the hold was released exactly once
    with pytest.raises(InvalidState):
        world.crashing.capture(world.payee, payment_id, CapturePayment(), capture_key)
    payment = world.store.payment(payment_id)
    assert payment is not None
    assert payment.status == "canceled"
    assert balances(world) == {world.source: (OPENING_BALANCE, 0), world.destination: (0, 0)}


def test_one_key_in_two_containers_at_once_makes_one_payment(world: World) -> None:
    # Given two containers handling the same request with the same key
    request = create_request(world)
    key = key_of(world.payer, "create_payment", "", request.model_dump(mode="json"))
    answers: list[Outcome] = []
    world.crashing_store.rival = lambda: answers.append(
        world.healthy.create_payment(world.payer, request, key)
    )

    # When the other one commits first
    outcome = world.crashing.create_payment(world.payer, request, key)

    # Then this one answers the other's payment, and the money moved once
    assert (outcome.status, outcome.body, outcome.replayed) == (200, answers[0].body, True)
    assert balances(world) == {
        world.source: (OPENING_BALANCE - AMOUNT, 0),
        world.destination: (AMOUNT, 0),
    }
    assert list(world.snapshot()["payments"]) == [json.loads(outcome.body)["id"]]


def test_a_debit_racing_another_for_the_last_funds_is_refused(world: World) -> None:
    # Given 10,000, of which a rival spends 9,990 while this payment of 20 is in flight
    spend = create_request(world).model_copy(update={"amount": OPENING_BALANCE - 10})
    spend_key = key_of(world.payer, "create_payment", "", spend.model_dump(mode="json"))
    world.crashing_store.rival = lambda: world.healthy.create_payment(world.payer, spend, spend_key)
    request = create_request(world).model_copy(update={"amount": 20})
    key = key_of(world.payer, "create_payment", "", request.model_dump(mode="json"))

    outcome = world.crashing.create_payment(world.payer, request, key)

    # Then it is a recorded 402, and the balance never went below zero
    assert outcome.status == 402
    assert json.loads(outcome.body)["error"]["payment"]["status"] == "failed"
    assert balances(world) == {
        world.source: (10, 0),
        world.destination: (OPENING_BALANCE - 10, 0),
    }


# -- with real DynamoDB's ClientRequestToken semantics ---------------------------------------------

# (This once found a real bug: a ClientRequestToken derived from the key made every retry
# within 10 minutes a 409 on DynamoDB. The claim item in the transaction is the guard now.)


@pytest.mark.parametrize(
    "name",
    [
        "create_payment",
        "capture_payment",  # its retry sees the payment captured and replays before committing
        "create_refund",
    ],
)
def test_a_retry_after_a_lost_response_replays_on_real_dynamodb(
    ledger_table: str, name: str
) -> None:
    # Given a store whose client honours ClientRequestToken as DynamoDB does
    world = make_world(ledger_table, client=TokenHonouringClient)
    op = OPERATIONS[name]
    payment_id = op.prepare(world)
    key = op.idempotency(world, payment_id, name)
    before = world.snapshot()

    # When the transaction commits but its response is lost
    world.arm("lost")
    with pytest.raises(ReadTimeoutError):
        op.call(world.crashing, world, payment_id, key)

    # Then the retry, through the same client (same container, seconds later), replays
    try:
        retry = op.call(world.crashing, world, payment_id, key)
    except Conflict as conflict:
        pytest.fail(f"the retry got 409 instead of the stored answer: {conflict.message}")
    assert (retry.status, retry.replayed) == (op.status, True)
    made = assert_moved_once(world, before, world.snapshot(), op, payment_id)
    assert json.loads(retry.body) == current_public(world, op, made, payment_id)
