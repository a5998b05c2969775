"""The real Ledger on the real DynamoLedgerStore (moto), driven by a hypothesis state machine:
payments (automatic and manual, affordable or not, refused), captures (full and partial),
cancellations, refunds (partial, full, over), replays with the same and with another body, and
expiry on an injected clock. After every step `ledger_verify.verify` over a scan of the table
must find nothing wrong with this run's accounts and payments, and a model of the expected
balances and payment states must agree with the store. (A step in which no transaction went
through and nothing moved in the model cannot have changed the table: its scan is skipped.)

Each example opens fresh accounts (unique ids) with known opening balances and removes its
records when done, so other tests' data and earlier examples never interfere.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import boto3
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from payplat.config import Env
from payplat.errors import (
    ApiError,
    IdempotencyMismatch,
    InvalidRequest,
    InvalidState,
    NotFound,
    PaymentFailed,
)
from payplat.payments.dal.idempotency_items import claim_key
from payplat.payments.dal.ledger_table import DynamoLedgerStore
from payplat.payments.idempotency import Idempotency, Outcome, request_hash
from payplat.payments.ledger import AUTHORIZATION_TTL_S, Account, Entry, Ledger, Movement, Payment
from payplat.payments.ledger_verify import verify
from payplat.payments.money import EXPONENTS, MAX_MAJOR_UNITS
from payplat.payments.requests import CancelPayment, CapturePayment, CreatePayment, CreateRefund
from payplat.principal import Principal

# (account label, owner label, currency, opening available balance in minor units)
ACCOUNTS = (
    ("a_eur", "a", "EUR", 20_000),
    ("a_eur2", "a", "EUR", 0),  # a's second EUR account: payer and payee the same owner
    ("a_usd", "a", "USD", 8_000),
    ("b_eur", "b", "EUR", 6_000),
    ("b_usd", "b", "USD", 1_000),
    ("c_eur", "c", "EUR", 0),  # c has only what it is paid: its refunds can bounce
)
OWNERS = ("a", "b", "c")
TOO_LARGE = MAX_MAJOR_UNITS * 10**2 + 1  # above any EUR/USD payment: refused with a 400
# Mostly amounts most accounts can afford, some that few can, now and then one over the limit.
AMOUNTS = st.integers(0, 11).flatmap(
    lambda kind: (
        st.just(TOO_LARGE)
        if kind == 0
        else st.integers(1, 15_000)
        if kind < 4
        else st.integers(1, 3_000)
    )
)
ROUTES = {
    "create": "create_payment",
    "capture": "capture_payment",
    "cancel": "cancel_payment",
    "refund": "create_refund",
}
SETTINGS = settings(
    max_examples=25,
    stateful_step_count=15,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the repository
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass
class ModelPayment:
    id: str
    payer: str
    payee: str
    source: str
    destination: str
    amount: int
    capture_method: str
    status: str
    captured: int = 0
    refunded: int = 0
    expires_at: int | None = None


@dataclass(frozen=True)
class Sent:
    """A request that got an answer, so its Idempotency-Key holds that answer."""

    action: str
    principal: Principal
    target: str
    request: Any
    idempotency: Idempotency
    outcome: Outcome


class CountingStore(DynamoLedgerStore):
    """The real store, counting the transactions that went through: the Ledger writes only
    by one, and one that was canceled wrote nothing."""

    commits = 0

    def commit(self, movement: Movement, entries: Sequence[Entry]) -> None:
        super().commit(movement, entries)
        self.commits += 1


class LedgerMachine(RuleBasedStateMachine):
    # Set by the test before the machine runs (hypothesis builds the machine, not pytest).
    table: str
    store: CountingStore
    dynamodb: Any  # a low-level client, for the clean-up

    def __init__(self) -> None:
        super().__init__()
        run = uuid.uuid4().hex[:12]
        self.now = int(time.time())
        self.ledger = Ledger(self.store, clock=lambda: self.now)
        self.owner = {label: f"usr_sm{run}_{label}" for label in OWNERS}
        self.principal = {
            self.owner[label]: Principal(
                client_id=f"ppc_sm{run}_{label}",
                subject=f"ppc_sm{run}_{label}",
                scopes=frozenset({"payments:read", "payments:write", "refunds:write"}),
                jti="j",
                owner=self.owner[label],
                plan="standard",
            )
            for label in OWNERS
        }
        self.accounts: dict[str, tuple[str, str]] = {}  # id -> (owner, currency)
        self.openings: dict[str, int] = {}
        self.balances: dict[str, list[int]] = {}  # id -> [available, held]
        for label, owner_label, currency, opening in ACCOUNTS:
            account_id = f"acct_sm{run}_{label}"
            owner = self.owner[owner_label]
            self.store.open_account(Account(account_id, owner, currency, opening, 0, self.now))
            self.accounts[account_id] = (owner, currency)
            self.openings[account_id] = opening
            self.balances[account_id] = [opening, 0]
        self.missing_account = f"acct_sm{run}_missing"
        self.payments: dict[str, ModelPayment] = {}  # in creation order
        self.sent: list[Sent] = []
        self.keys = 0
        self.verified: tuple[Any, ...] | None = None  # the state the last scan verified
        self.records: list[dict[str, Any]] = []  # and what it read

    # -- helpers ---------------------------------------------------------------------------

    def _send(
        self,
        action: str,
        principal: Principal,
        target: str,
        request: Any,
        expected: type[ApiError] | None,
    ) -> Outcome | None:
        """One request with a fresh Idempotency-Key; the error it must raise, or None."""
        self.keys += 1
        body = request.model_dump(mode="json")
        idempotency = Idempotency(
            principal.client_id, f"key-{self.keys}", request_hash(ROUTES[action], target, body)
        )
        outcome = self._call(
            expected, lambda: self._dispatch(action, principal, target, request, idempotency)
        )
        if outcome is not None:
            assert not outcome.replayed
            self.sent.append(Sent(action, principal, target, request, idempotency, outcome))
        return outcome

    def _dispatch(
        self,
        action: str,
        principal: Principal,
        target: str,
        request: Any,
        idempotency: Idempotency,
    ) -> Outcome:
        if action == "create":
            return self.ledger.create_payment(principal, request, idempotency)
        if action == "capture":
            return self.ledger.capture(principal, target, request, idempotency)
        if action == "cancel":
            return self.ledger.cancel(principal, target, idempotency)
        return self.ledger.refund(principal, target, request, idempotency)

    @staticmethod
    def _call(expected: type[ApiError] | None, call: Callable[[], Outcome]) -> Outcome | None:
        """The call's Outcome, or None when it raised the API error the model expects (a
        legitimate answer: 4xx, no claim stored)."""
        raised: ApiError | None = None
        outcome: Outcome | None = None
        try:
            outcome = call()
        except ApiError as error:
            raised = error
        assert type(raised) is (expected or type(None)), f"expected {expected}, got {raised!r}"
        event(f"{raised.code if raised else outcome.status if outcome else None}")
        return outcome

    def _acting(self, data: st.DataObject, likely: str) -> Principal:
        """Mostly `likely`, now and then any owner (a stranger, or the other party)."""
        stray = data.draw(st.integers(0, 4), label="stray") == 0
        owner = data.draw(st.sampled_from(sorted(self.principal))) if stray else likely
        return self.principal[owner]

    def _payment(self, data: st.DataObject, likely: str) -> ModelPayment:
        """Mostly a payment in the `likely` status (if any), now and then any payment."""
        candidates = [p for p in self.payments.values() if p.status == likely]
        if not candidates or data.draw(st.integers(0, 3), label="any payment") == 0:
            candidates = list(self.payments.values())
        return data.draw(st.sampled_from(candidates), label="payment")

    def _move(self, account: str, available: int = 0, held: int = 0) -> None:
        self.balances[account][0] += available
        self.balances[account][1] += held

    def _release(self, payment: ModelPayment) -> None:
        self._move(payment.source, available=payment.amount, held=-payment.amount)
        payment.status = "canceled"
        payment.expires_at = None

    def _mine(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """This example's records: its accounts (and their entries) and the payments that
        draw on them (with their views and refunds)."""
        payments = {
            record["id"]
            for record in records
            if record["sk"] == "PAYMENT" and record.get("source_account") in self.accounts
        }
        mine = []
        for record in records:
            kind, _, object_id = str(record["pk"]).partition("#")
            if (kind == "ACCOUNT" and object_id in self.accounts) or (
                kind == "PAYMENT" and object_id in payments
            ):
                mine.append(record)
        return mine

    # -- rules -----------------------------------------------------------------------------

    @rule(data=st.data())
    def pay(self, data: st.DataObject) -> None:
        source = data.draw(st.sampled_from(list(self.accounts)), label="source")
        currency = self.accounts[source][1]
        peers = [a for a in self.accounts if a != source and self.accounts[a][1] == currency]
        anywhere = [*self.accounts, self.missing_account]
        destination = data.draw(
            st.sampled_from(peers) | st.sampled_from(anywhere), label="destination"
        )
        amount = data.draw(AMOUNTS, label="amount")
        method = data.draw(st.sampled_from(["automatic", "manual"]), label="capture_method")
        principal = self._acting(data, self.accounts[source][0])
        self._pay(principal, source, destination, amount, method)

    @precondition(lambda self: any(p.status == "succeeded" for p in self.payments.values()))
    @rule(data=st.data())
    def payee_spends_it(self, data: st.DataObject) -> None:
        """The payee of a settled payment pays its whole balance on, so refunding that payment
        can only bounce (402, nothing moves)."""
        paid = data.draw(
            st.sampled_from([p for p in self.payments.values() if p.status == "succeeded"])
        )
        account = paid.destination
        balance = self.balances[account][0]
        currency = self.accounts[account][1]
        peers = [a for a in self.accounts if a != account and self.accounts[a][1] == currency]
        if balance > 0 and peers:
            onward = data.draw(st.sampled_from(peers), label="onward")
            self._pay(self.principal[paid.payee], account, onward, balance, "automatic")
            event("payee spent")

    @initialize(manual=st.integers(1, 5_000), automatic=st.integers(1, 5_000))
    def a_held_and_a_settled_payment(self, manual: int, automatic: int) -> None:
        """Every run starts with something to capture, cancel, expire and refund."""
        a_eur, b_eur, c_eur = (self._account(label) for label in ("a_eur", "b_eur", "c_eur"))
        payer = self.principal[self.owner["a"]]
        self._pay(payer, a_eur, b_eur, manual, "manual")
        self._pay(payer, a_eur, c_eur, automatic, "automatic")

    def _account(self, label: str) -> str:
        return next(a for a in self.accounts if a.endswith(f"_{label}"))

    def _pay(
        self, principal: Principal, source: str, destination: str, amount: int, method: str
    ) -> None:
        owner, currency = self.accounts[source]
        request = CreatePayment(
            source_account=source,
            destination_account=destination,
            amount=amount,
            currency=currency,
            capture_method=method,
        )
        expected: type[ApiError] | None = None
        if principal.owner != owner or destination not in self.accounts:
            expected = NotFound
        elif (
            self.accounts[destination][1] != currency
            or source == destination
            or amount > MAX_MAJOR_UNITS * 10 ** EXPONENTS[currency]
        ):
            expected = InvalidRequest
        outcome = self._send("create", principal, "", request, expected)
        if outcome is None:
            return
        affordable = self.balances[source][0] >= amount
        body = json.loads(outcome.body)
        if not affordable:
            assert outcome.status == 402
            assert body["error"]["code"] == "insufficient_funds"
            body = body["error"]["payment"]
            assert (body["status"], body["failure_code"]) == ("failed", "insufficient_funds")
        else:
            assert outcome.status == 200
        manual = method == "manual"
        payment = ModelPayment(
            id=body["id"],
            payer=owner,
            payee=self.accounts[destination][0],
            source=source,
            destination=destination,
            amount=amount,
            capture_method=method,
            status="failed" if not affordable else "requires_capture" if manual else "succeeded",
            captured=amount if affordable and not manual else 0,
            expires_at=self.now + AUTHORIZATION_TTL_S if affordable and manual else None,
        )
        assert body["status"] == payment.status
        assert body["amount_captured"] == payment.captured
        assert body["id"] not in self.payments
        self.payments[payment.id] = payment
        if payment.status == "succeeded":
            self._move(source, available=-amount)
            self._move(destination, available=amount)
        elif payment.status == "requires_capture":
            self._move(source, available=-amount, held=amount)

    @precondition(lambda self: self.payments)
    @rule(data=st.data())
    def capture(self, data: st.DataObject) -> None:
        payment = self._payment(data, "requires_capture")
        principal = self._acting(data, payment.payee)
        amount = data.draw(st.none() | st.integers(0, payment.amount + 10), label="amount")
        to_capture = payment.amount if amount is None else amount
        expected: type[ApiError] | None = None
        if principal.owner not in (payment.payer, payment.payee):
            expected = NotFound
        elif principal.owner != payment.payee:
            expected = InvalidRequest  # only the payee captures
        elif payment.status != "requires_capture":
            expected = InvalidState
        elif payment.expires_at is not None and payment.expires_at <= self.now:
            expected = InvalidState  # expired, not yet swept
        elif not 0 < to_capture <= payment.amount:
            expected = InvalidRequest
        outcome = self._send(
            "capture", principal, payment.id, CapturePayment(amount=amount), expected
        )
        if outcome is None:
            return
        body = json.loads(outcome.body)
        assert (outcome.status, body["status"], body["amount_captured"]) == (
            200,
            "succeeded",
            to_capture,
        )
        self._move(payment.source, available=payment.amount - to_capture, held=-payment.amount)
        self._move(payment.destination, available=to_capture)
        payment.status, payment.captured, payment.expires_at = "succeeded", to_capture, None

    @precondition(lambda self: self.payments)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        payment = self._payment(data, "requires_capture")
        principal = self._acting(data, data.draw(st.sampled_from([payment.payer, payment.payee])))
        expected: type[ApiError] | None = None
        if principal.owner not in (payment.payer, payment.payee):
            expected = NotFound
        elif payment.status != "requires_capture" or (
            payment.expires_at is not None and payment.expires_at <= self.now
        ):
            expected = InvalidState
        outcome = self._send("cancel", principal, payment.id, CancelPayment(), expected)
        if outcome is None:
            return
        body = json.loads(outcome.body)
        assert (outcome.status, body["status"], body["cancellation_reason"]) == (
            200,
            "canceled",
            "requested_by_customer",
        )
        self._release(payment)

    @precondition(lambda self: self.payments)
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        payment = self._payment(data, "succeeded")
        principal = self._acting(data, payment.payee)
        room = payment.captured - payment.refunded
        amount = data.draw(st.none() | st.integers(0, max(payment.captured, 1) + 10), label="amt")
        to_refund = room if amount is None else amount
        expected: type[ApiError] | None = None
        if principal.owner not in (payment.payer, payment.payee):
            expected = NotFound
        elif principal.owner != payment.payee:
            expected = InvalidRequest  # only the payee refunds
        elif payment.status != "succeeded" or room <= 0:
            expected = InvalidState
        elif not 0 < to_refund <= room:
            expected = InvalidRequest  # over-refund
        elif self.balances[payment.destination][0] < to_refund:
            expected = PaymentFailed  # the payee has spent the money since
        outcome = self._send("refund", principal, payment.id, CreateRefund(amount=amount), expected)
        if outcome is None:
            return
        body = json.loads(outcome.body)
        assert (outcome.status, body["object"], body["payment"], body["amount"]) == (
            201,
            "refund",
            payment.id,
            to_refund,
        )
        self._move(payment.destination, available=-to_refund)
        self._move(payment.source, available=to_refund)
        payment.refunded += to_refund

    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def replay_same_request(self, data: st.DataObject) -> None:
        """A retry with the same key and body answers exactly what the first one got, and
        moves no money (the invariants check that)."""
        sent = data.draw(st.sampled_from(self.sent))
        again = self._dispatch(
            sent.action, sent.principal, sent.target, sent.request, sent.idempotency
        )
        assert again == replace(sent.outcome, replayed=True)
        event(f"replayed {sent.action} {again.status}")

    @precondition(lambda self: any(sent.action != "cancel" for sent in self.sent))
    @rule(data=st.data())
    def replay_with_another_body(self, data: st.DataObject) -> None:
        sent = data.draw(st.sampled_from([s for s in self.sent if s.action != "cancel"]))
        amount = sent.request.amount
        other = sent.request.model_copy(update={"amount": amount + 1 if amount is not None else 1})
        body = other.model_dump(mode="json")
        idempotency = replace(
            sent.idempotency, request_hash=request_hash(ROUTES[sent.action], sent.target, body)
        )
        self._call(
            IdempotencyMismatch,
            lambda: self._dispatch(sent.action, sent.principal, sent.target, other, idempotency),
        )

    @rule(
        seconds=st.sampled_from([1, 3600, AUTHORIZATION_TTL_S - 1, AUTHORIZATION_TTL_S]),
        sweep=st.booleans(),
    )
    def time_passes(self, seconds: int, sweep: bool) -> None:
        """The clock moves on and, usually, the scheduled sweep releases every authorization
        past its deadline (until it runs, capture and cancel answer authorization_expired)."""
        self.now += seconds
        if not sweep:
            return
        for payment in self.payments.values():
            due = (
                payment.status == "requires_capture"
                and payment.expires_at is not None
                and payment.expires_at <= self.now
            )
            assert self.ledger.expire(payment.id) is due, payment
            if due:
                event("expired")
                self._release(payment)

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def the_ledger_verifies_and_matches_the_model(self) -> None:
        # The table changes only through a transaction: when none went through and the model
        # did not move either, the scan would read what the last one verified (refused steps
        # and replays are most of them, and a moto Scan is slow).
        if self.verified == self._fingerprint():
            return
        records = self._mine(self.store.scan_records())
        report = verify(records, self.openings)
        assert report.ok, report.summary()
        assert report.notes == ()  # every account was reconciled to its opening
        assert report.accounts == len(self.accounts)
        stored = {r["id"]: r for r in records if r["sk"] in ("ACCOUNT", "PAYMENT")}
        assert set(stored) == set(self.accounts) | set(self.payments)  # no ghost payment
        for account_id, balances in self.balances.items():
            account = Account.from_record(stored[account_id])
            assert [account.available, account.held] == balances, account_id
        for payment_id, expected in self.payments.items():
            assert self._state(Payment.from_record(stored[payment_id])) == self._state(expected)
        self.verified, self.records = self._fingerprint(), records

    def _fingerprint(self) -> tuple[Any, ...]:
        return (self.store.commits, repr(self.balances), repr(self.payments))

    @staticmethod
    def _state(payment: Payment | ModelPayment) -> tuple[Any, ...]:
        if isinstance(payment, ModelPayment):
            return (payment.status, payment.captured, payment.refunded, payment.expires_at)
        return (
            payment.status,
            payment.amount_captured,
            payment.amount_refunded,
            payment.expires_at,
        )

    def teardown(self) -> None:
        verified = self.verified == self._fingerprint()
        try:
            if verified:  # (after a failure, let that failure speak)
                # The typed reads agree too: once per example, the scans above cost more.
                for account_id, balances in self.balances.items():
                    account = self.store.account(account_id)
                    assert account is not None
                    assert [account.available, account.held] == balances, account_id
                for payment_id, expected in self.payments.items():
                    payment = self.store.payment(payment_id)
                    assert payment is not None
                    assert self._state(payment) == self._state(expected)
        finally:
            self._remove_records(self.records if verified else None)

    def _remove_records(self, records: list[dict[str, Any]] | None) -> None:
        """This example's accounts, entries, payments, views, refunds and idempotency claims:
        moto's Scan and TransactWriteItems cost grows with the table, and every step scans."""
        keys = [
            {"pk": {"S": r["pk"]}, "sk": {"S": r["sk"]}}
            for r in (records if records is not None else self._mine(self.store.scan_records()))
        ]
        keys += [claim_key(s.idempotency.namespace, s.idempotency.key) for s in self.sent]
        for start in range(0, len(keys), 25):
            chunk = keys[start : start + 25]
            self.dynamodb.batch_write_item(
                RequestItems={self.table: [{"DeleteRequest": {"Key": key}} for key in chunk]}
            )


@contextmanager
def stream_paused(table: str) -> Iterator[None]:
    """moto keeps every stream record of the table (old and new images) and deep-copies the
    whole table, stream included, once per item of every TransactWriteItems: each commit
    costs as much as every write before it. The stream (the audit path) is not under test
    here, so it is detached while this test writes, and put back as it was."""
    tables = dynamodb_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_DEFAULT_REGION"]].tables
    shard = tables[table].stream_shard
    tables[table].stream_shard = None
    try:
        yield
    finally:
        # A failed transaction makes moto restore a copy: set it on the table as it is now.
        tables[table].stream_shard = shard


def test_the_ledger_keeps_its_invariants_under_any_sequence_of_requests(
    aws: dict[str, str],
) -> None:
    LedgerMachine.table = aws[Env.LEDGER_TABLE]
    LedgerMachine.store = CountingStore(LedgerMachine.table)
    LedgerMachine.dynamodb = boto3.client("dynamodb")
    with stream_paused(LedgerMachine.table):
        run_state_machine_as_test(LedgerMachine, settings=SETTINGS)


# -- DynamoDB's ClientRequestToken, which moto does not implement ------------------------------


class TokenHonouringClient:
    """The moto client, plus what DynamoDB documents for TransactWriteItems' ClientRequestToken
    and moto ignores: within 10 minutes, the same token with the same parameters succeeds
    without effect, and with any other parameters fails with IdempotentParameterMismatch.
    (Only successful calls register their token here, the most lenient reading.)"""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._tokens: dict[str, dict[str, Any]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **request: Any) -> dict[str, Any]:
        token = request.get("ClientRequestToken")
        if token is not None and token in self._tokens:
            if self._tokens[token] == request:
                return {}
            raise ClientError(
                {
                    "Error": {
                        "Code": "IdempotentParameterMismatchException",
                        "Message": "The request uses the same client token as a previous, "
                        "but non-identical request.",
                    }
                },
                "TransactWriteItems",
            )
        response: dict[str, Any] = self._client.transact_write_items(**request)
        if token is not None:
            self._tokens[token] = request
        return response


def test_a_retry_within_ten_minutes_replays_on_real_dynamodb(aws: dict[str, str]) -> None:
    """Regression: a ClientRequestToken derived from client|key|kind made every retry a new
    transaction under the same token, which DynamoDB refuses for 10 minutes: the store
    answered TransactionConflict and the partner a 409 instead of the replay."""
    # Given a store whose client behaves as DynamoDB documents ClientRequestToken
    store = DynamoLedgerStore(
        aws[Env.LEDGER_TABLE], client=TokenHonouringClient(boto3.client("dynamodb"))
    )
    run = uuid.uuid4().hex[:12]
    payer, payee = f"usr_tok{run}_a", f"usr_tok{run}_b"
    source, destination = f"acct_tok{run}_a", f"acct_tok{run}_b"
    store.open_account(Account(source, payer, "EUR", 1_000, 0, 1))
    store.open_account(Account(destination, payee, "EUR", 0, 0, 1))
    principal = Principal(f"ppc_tok{run}", f"ppc_tok{run}", frozenset(), "j", payer, "standard")
    request = CreatePayment(
        source_account=source, destination_account=destination, amount=100, currency="EUR"
    )
    key = Idempotency(principal.client_id, "retry-me", "same-body")
    ledger = Ledger(store)
    first = ledger.create_payment(principal, request, key)
    assert first.status == 200

    # When the partner retries the same request with the same Idempotency-Key
    again = ledger.create_payment(principal, request, key)

    # Then it gets the first answer, replayed
    assert again == replace(first, replayed=True)
