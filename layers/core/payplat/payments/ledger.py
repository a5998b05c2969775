"""Payments, captures, cancellations and refunds on a double-entry ledger.

Every money movement is one `Movement`: the idempotency claim, the payment's new state, the
balance changes (each with the condition that keeps it legal) and the immutable entries that
record them. The store commits it as ONE DynamoDB transaction, so a crash anywhere leaves
either nothing or everything, and one idempotency key can never make two payments. Entries of
a movement sum to zero per currency; `check_balanced` refuses any movement that would not.

Who may do what (object-level authorization, here and nowhere else): the payer's owner
creates and may cancel; the payee's owner captures, refunds and may cancel; anyone else sees
nothing (404), whatever the object.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from payplat.audit import emf
from payplat.audit.metrics import MONEY_MOVED, MONEY_MOVEMENTS
from payplat.errors import (
    Conflict,
    InvalidRequest,
    InvalidState,
    NotFound,
    PaymentFailed,
)
from payplat.payments import models
from payplat.payments.idempotency import (
    Idempotency,
    IdempotencyClaim,
    KeyTaken,
    Outcome,
    replayed,
)
from payplat.payments.money import check_amount
from payplat.payments.requests import CapturePayment, CreatePayment, CreateRefund
from payplat.principal import Principal

AUTHORIZATION_TTL_S = 7 * 24 * 3600  # uncaptured authorizations are released after 7 days
MAX_ATTEMPTS = 5  # optimistic retries when a concurrent movement changed the payment

Bucket = Literal["available", "held"]


def new_id(prefix: str) -> str:
    # Milliseconds first (fixed width) so ids sort by creation, then 80 random bits.
    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    owner: str
    currency: str
    available: int
    held: int
    created: int

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Account:
        return cls(
            id=record["id"],
            owner=record["owner"],
            currency=record["currency"],
            available=int(record["available"]),
            held=int(record["held"]),
            created=int(record["created"]),
        )

    def public(self) -> dict[str, Any]:
        return models.Account(
            id=self.id,
            currency=self.currency,
            balances=[
                models.Balance(currency=self.currency, available=self.available, held=self.held)
            ],
            created=self.created,
        ).body()


@dataclass(frozen=True, slots=True)
class Payment:
    id: str
    payer: str  # owner of the source account
    payee: str  # owner of the destination account
    source_account: str
    destination_account: str
    amount: int
    currency: str
    capture_method: str
    status: str  # requires_capture | succeeded | canceled | failed
    created: int
    amount_captured: int = 0
    amount_refunded: int = 0
    description: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    failure_code: str | None = None
    expires_at: int | None = None  # when an uncaptured authorization is released
    canceled_at: int | None = None
    cancellation_reason: str | None = None

    def record(self) -> dict[str, Any]:
        """Every field, as stored (metadata as a plain dict)."""
        values = {name: getattr(self, name) for name in _PAYMENT_FIELDS}
        values["metadata"] = dict(self.metadata)
        return values

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Payment:
        values: dict[str, Any] = {name: record.get(name) for name in _PAYMENT_FIELDS}
        for name in _INTEGER_FIELDS:
            if values[name] is not None:
                values[name] = int(values[name])  # DynamoDB numbers arrive as Decimal
        values["metadata"] = dict(values["metadata"] or {})
        return cls(**values)

    def public(self) -> dict[str, Any]:
        return self.shape().body()

    def shape(self) -> models.Payment:
        """The payment as the API shows it: a failure code once failed, the capture deadline
        while it awaits capture, the cancellation once canceled."""
        optional: dict[str, Any] = {}
        if self.failure_code is not None:
            optional["failure_code"] = self.failure_code
        if self.status == "requires_capture":
            optional["capture_before"] = self.expires_at
        if self.canceled_at is not None:
            optional["canceled_at"] = self.canceled_at
            optional["cancellation_reason"] = self.cancellation_reason
        return models.Payment(
            id=self.id,
            amount=self.amount,
            currency=self.currency,
            status=self.status,  # type: ignore[arg-type]  # the state machine's four
            capture_method=self.capture_method,  # type: ignore[arg-type]
            source_account=self.source_account,
            destination_account=self.destination_account,
            amount_captured=self.amount_captured,
            amount_refunded=self.amount_refunded,
            description=self.description,
            metadata=dict(self.metadata),
            created=self.created,
            **optional,
        )

    def visible_to(self, owner: str) -> bool:
        return owner in (self.payer, self.payee)


_PAYMENT_FIELDS = tuple(Payment.__dataclass_fields__)
_INTEGER_FIELDS = (
    "amount", "created", "amount_captured", "amount_refunded", "expires_at", "canceled_at",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Refund:
    id: str
    payment: str
    amount: int
    currency: str
    created: int
    reason: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Refund:
        return cls(
            id=record["id"],
            payment=record["payment"],
            amount=int(record["amount"]),
            currency=record["currency"],
            created=int(record["created"]),
            reason=record.get("reason"),
            metadata=dict(record.get("metadata") or {}),
        )

    def public(self) -> dict[str, Any]:
        return self.shape().body()

    def shape(self) -> models.Refund:
        return models.Refund(
            id=self.id,
            payment=self.payment,
            amount=self.amount,
            currency=self.currency,
            reason=self.reason,  # type: ignore[arg-type]  # CreateRefund allows only these
            metadata=dict(self.metadata),
            created=self.created,
        )


@dataclass(frozen=True, slots=True)
class BalanceChange:
    """A change to one account's buckets; a negative change requires that much to be there
    when the transaction commits (no negative balance, ever)."""

    account: str
    currency: str
    available: int = 0
    held: int = 0
    owner: str | None = None  # the account must belong to this owner
    refusal: str = "insufficient_funds"  # what a failed condition means here


@dataclass(frozen=True, slots=True)
class Entry:
    """One immutable ledger line: `amount` moved into (or, negative, out of) a bucket."""

    id: str
    account: str
    bucket: Bucket
    amount: int
    currency: str
    payment: str
    kind: str  # payment | authorization | capture | release | refund | expiry | cancel
    created: int


@dataclass(frozen=True, slots=True)
class PaymentWrite:
    payment: Payment
    expect_status: str | None  # None: the payment is new
    refundable_before: int | None = None  # refunds: amount_refunded must be <= this


@dataclass(frozen=True, slots=True)
class Actor:
    """Who moved the money: stored on the payment (and refund) it changed, so the audit
    record the table's stream produces names the client, the subject and the request."""

    client_id: str
    sub: str
    request_id: str | None = None

    def record(self) -> dict[str, str]:
        values = {"client_id": self.client_id, "sub": self.sub, "request_id": self.request_id}
        return {name: value for name, value in values.items() if value}


# The scheduled sweep releases expired authorizations on nobody's request.
EXPIRY_SWEEP = Actor(client_id="payplat", sub="payplat-expirer")


@dataclass(frozen=True, slots=True)
class Movement:
    kind: str
    payment: PaymentWrite
    balances: tuple[BalanceChange, ...] = ()
    claim: IdempotencyClaim | None = None
    refund: Refund | None = None
    actor: Actor | None = None

    def entries(self, now: int) -> list[Entry]:
        entries = []
        for change in self.balances:
            for bucket, amount in (("available", change.available), ("held", change.held)):
                if amount:
                    entries.append(
                        Entry(
                            id=new_id("ent"),
                            account=change.account,
                            bucket=bucket,  # type: ignore[arg-type]
                            amount=amount,
                            currency=change.currency,
                            payment=self.payment.payment.id,
                            kind=self.kind,
                            created=now,
                        )
                    )
        return entries


def check_balanced(movement: Movement) -> None:
    """Double entry: what leaves one bucket arrives in another, per currency."""
    totals: dict[str, int] = defaultdict(int)
    for change in movement.balances:
        totals[change.currency] += change.available + change.held
    if any(totals.values()):
        raise AssertionError(f"unbalanced movement {movement.kind}: {dict(totals)}")


class MovementRefused(Exception):
    """The transaction's conditions did not hold: `reason` names which."""

    def __init__(self, reason: str, current: Mapping[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.current = current


class TransactionConflict(Exception):
    """Another transaction touched the same items at the same time."""


class LedgerStore(Protocol):
    def account(self, account_id: str) -> Account | None: ...

    def payment(self, payment_id: str) -> Payment | None: ...

    def claim(self, namespace: str, key: str) -> IdempotencyClaim | None: ...

    def commit(self, movement: Movement, entries: Sequence[Entry]) -> None:
        """One transaction; raises KeyTaken, MovementRefused or TransactionConflict."""
        ...


class Ledger:
    def __init__(self, store: LedgerStore, clock: Any = time.time) -> None:
        self._store = store
        self._clock = clock
        # An account's owner and currency never change: kept per container, so a warm
        # payment costs one transaction (its conditions re-check both anyway).
        self._account_facts: dict[str, tuple[str, str]] = {}

    # -- reads ------------------------------------------------------------------------------

    def account_of(self, principal: Principal, account_id: str, param: str) -> Account:
        account = self._store.account(account_id)
        if account is None or account.owner != principal.owner:
            raise NotFound(f"No such account: '{account_id[:64]}'", param=param)
        return account

    def payment_of(self, principal: Principal, payment_id: str) -> Payment:
        payment = self._store.payment(payment_id)
        if payment is None or not payment.visible_to(principal.owner):
            raise NotFound(f"No such payment: '{payment_id[:64]}'", param="payment_id")
        return payment

    # -- movements ------------------------------------------------------------------------------

    def _facts(self, account_id: str) -> tuple[str, str] | None:
        """(owner, currency) of an account, or None if there is no such account."""
        facts = self._account_facts.get(account_id)
        if facts is None:
            account = self._store.account(account_id)
            if account is None:
                return None
            facts = self._account_facts[account_id] = (account.owner, account.currency)
        return facts

    def create_payment(
        self, principal: Principal, request: CreatePayment, idempotency: Idempotency
    ) -> Outcome:
        """No read of the idempotency record first: the claim is part of the transaction,
        and a taken key comes back from it with the stored answer."""
        now = int(self._clock())
        accounts = {}
        for param in ("source_account", "destination_account"):
            account_id = getattr(request, param)
            facts = self._facts(account_id)
            if facts is None or (param == "source_account" and facts[0] != principal.owner):
                raise NotFound(f"No such account: '{account_id}'", param=param)
            owner, currency = facts
            if currency != request.currency:
                # Named for the caller's own account only: another's currency is not told.
                held = f" holds {currency}, not" if param == "source_account" else " cannot take"
                raise InvalidRequest(f"The {param}{held} {request.currency}.", param=param)
            accounts[param] = (account_id, owner)
        (source_id, payer), (destination_id, payee) = accounts.values()
        if source_id == destination_id:
            raise InvalidRequest(
                "Source and destination are the same account.", param="destination_account"
            )
        check_amount(request.amount, request.currency)
        manual = request.capture_method == "manual"
        payment = Payment(
            id=new_id("pay"),
            payer=payer,
            payee=payee,
            source_account=source_id,
            destination_account=destination_id,
            amount=request.amount,
            currency=request.currency,
            capture_method=request.capture_method,
            status="requires_capture" if manual else "succeeded",
            created=now,
            amount_captured=0 if manual else request.amount,
            description=request.description,
            metadata=request.metadata,
            expires_at=now + AUTHORIZATION_TTL_S if manual else None,
        )
        debit = BalanceChange(
            source_id,
            request.currency,
            available=-request.amount,
            held=request.amount if manual else 0,
            owner=principal.owner,
        )
        balances = (
            (debit,)
            if manual
            else (
                debit,
                BalanceChange(
                    destination_id,
                    request.currency,
                    available=request.amount,
                    refusal="destination_account",
                ),
            )
        )
        movement = Movement(
            kind="authorization" if manual else "payment",
            payment=PaymentWrite(payment, expect_status=None),
            balances=balances,
        )
        try:
            return self._commit(principal, movement, 200, payment.public(), idempotency, now)
        except MovementRefused as refused:
            if refused.reason != "insufficient_funds":
                raise Conflict("An account changed while paying; retry.") from None
        # The money could not move: record the failed payment, in one transaction with the
        # idempotency claim, and answer 402 (a retry with the key replays the 402).
        failed = replace(
            payment,
            status="failed",
            amount_captured=0,
            failure_code="insufficient_funds",
            expires_at=None,
        )
        error = PaymentFailed("The source account's available balance is too low.", param="amount")
        body = _error_body(error, failed)
        return self._commit(
            principal,
            Movement(kind="payment_failed", payment=PaymentWrite(failed, expect_status=None)),
            402,
            body,
            idempotency,
            now,
        )

    def capture(
        self,
        principal: Principal,
        payment_id: str,
        request: CapturePayment,
        idempotency: Idempotency,
    ) -> Outcome:
        def plan(payment: Payment, now: int) -> Movement:
            self._payee_only(principal, payment, "capture")
            self._expect(payment, "requires_capture", "captured", now)
            amount = payment.amount if request.amount is None else request.amount
            if not 0 < amount <= payment.amount:
                raise InvalidRequest(
                    f"The capture amount must be from 1 to {payment.amount}.", param="amount"
                )
            released = payment.amount - amount
            captured = replace(payment, status="succeeded", amount_captured=amount, expires_at=None)
            return Movement(
                kind="capture",
                payment=PaymentWrite(captured, expect_status="requires_capture"),
                balances=(
                    BalanceChange(
                        payment.source_account,
                        payment.currency,
                        held=-payment.amount,
                        available=released,
                        refusal="state",
                    ),
                    BalanceChange(payment.destination_account, payment.currency, available=amount),
                ),
            )

        return self._change(principal, payment_id, plan, idempotency)

    def cancel(self, principal: Principal, payment_id: str, idempotency: Idempotency) -> Outcome:
        def plan(payment: Payment, now: int) -> Movement:
            self._expect(payment, "requires_capture", "canceled", now)
            return _release(payment, now, "requested_by_customer", kind="cancel")

        return self._change(principal, payment_id, plan, idempotency)

    def refund(
        self,
        principal: Principal,
        payment_id: str,
        request: CreateRefund,
        idempotency: Idempotency,
    ) -> Outcome:
        refund_id = new_id("re")

        def plan(payment: Payment, now: int) -> Movement:
            self._payee_only(principal, payment, "refund")
            if payment.status != "succeeded":
                raise InvalidState(f"A {payment.status} payment cannot be refunded.")
            room = payment.amount_captured - payment.amount_refunded
            amount = room if request.amount is None else request.amount
            if room <= 0:
                raise InvalidState("This payment has been refunded in full.")
            if not 0 < amount <= room:
                raise InvalidRequest(f"The refund amount must be from 1 to {room}.", param="amount")
            refund = Refund(
                refund_id,
                payment.id,
                amount,
                payment.currency,
                now,
                request.reason,
                request.metadata,
            )
            refunded = replace(payment, amount_refunded=payment.amount_refunded + amount)
            return Movement(
                kind="refund",
                payment=PaymentWrite(
                    refunded,
                    expect_status="succeeded",
                    refundable_before=payment.amount_captured - amount,
                ),
                balances=(
                    BalanceChange(payment.destination_account, payment.currency, available=-amount),
                    BalanceChange(payment.source_account, payment.currency, available=amount),
                ),
                refund=refund,
            )

        return self._change(principal, payment_id, plan, idempotency, status=201)

    def expire(self, payment_id: str) -> bool:
        """Release an authorization past its capture deadline (the scheduled sweep)."""
        now = int(self._clock())
        for _ in range(MAX_ATTEMPTS):
            payment = self._store.payment(payment_id)
            if payment is None or payment.status != "requires_capture":
                return False
            if payment.expires_at is None or payment.expires_at > now:
                return False
            try:
                movement = replace(
                    _release(payment, now, "expired", kind="expiry"), actor=EXPIRY_SWEEP
                )
                self._store.commit(movement, movement.entries(now))
                _measure(movement)
                return True
            except (MovementRefused, TransactionConflict):
                continue
        return False

    # -- the machinery ------------------------------------------------------------------------

    def _change(
        self,
        principal: Principal,
        payment_id: str,
        plan: Any,
        idempotency: Idempotency,
        status: int = 200,
    ) -> Outcome:
        for _ in range(MAX_ATTEMPTS):
            payment = self.payment_of(principal, payment_id)
            now = int(self._clock())
            try:
                movement: Movement = plan(payment, now)
            except (InvalidState, InvalidRequest):
                # A retry of a request that already went through finds the payment moved
                # on: answer what the first one got. (Read only here, off the usual path.)
                replay = self._replay(idempotency)
                if replay is not None:
                    return replay
                raise
            body = (
                movement.refund.public() if movement.refund else movement.payment.payment.public()
            )
            try:
                return self._commit(principal, movement, status, body, idempotency, now)
            except MovementRefused as refused:
                if refused.reason == "insufficient_funds":
                    raise PaymentFailed(
                        "The account's available balance is too low for this refund.",
                        param="amount",
                    ) from None
                continue  # the payment moved on under us: look again
            except TransactionConflict:
                continue
        raise Conflict("The payment is being changed by another request; retry.")

    def _commit(  # noqa: PLR0917 - one movement's every part
        self,
        principal: Principal,
        movement: Movement,
        status: int,
        body: Mapping[str, Any],
        idempotency: Idempotency,
        now: int,
    ) -> Outcome:
        check_balanced(movement)
        text = json.dumps(body, separators=(",", ":"))
        claim = idempotency.claim(status, text, now)
        actor = Actor(principal.client_id, principal.subject, principal.request_id)
        movement = replace(movement, claim=claim, actor=actor)
        try:
            self._store.commit(movement, movement.entries(now))
        except KeyTaken as taken:
            return replayed(taken.record, idempotency)
        except TransactionConflict:
            raise Conflict(
                "Another request with this idempotency key or on this object is in progress; retry."
            ) from None
        _measure(movement)
        return Outcome(status, text)

    def _replay(self, idempotency: Idempotency) -> Outcome | None:
        record = self._store.claim(idempotency.namespace, idempotency.key)
        return None if record is None else replayed(record, idempotency)

    @staticmethod
    def _payee_only(principal: Principal, payment: Payment, action: str) -> None:
        if payment.payee != principal.owner:
            # The payer sees its payment but may not act for the payee.
            raise InvalidRequest(
                f"Only the payee may {action} a payment.", code="payee_action_only"
            )

    @staticmethod
    def _expect(payment: Payment, status: str, verb: str, now: int) -> None:
        if payment.status != status:
            raise InvalidState(f"A {payment.status} payment cannot be {verb}.")
        if payment.expires_at is not None and payment.expires_at <= now:
            raise InvalidState("The authorization has expired.", code="authorization_expired")


def _measure(movement: Movement) -> None:
    """Count and value of what moved, by kind and currency (bounded dimensions only). The
    client is a property of the line, not a dimension: Contributor Insights ranks partners
    by it without a metric per partner."""
    payment = movement.payment.payment
    amount = movement.refund.amount if movement.refund else payment.amount
    if movement.kind == "capture":
        amount = payment.amount_captured
    dimensions = {"kind": movement.kind, "currency": payment.currency}
    client = {"client_id": movement.actor.client_id} if movement.actor else {}
    emf.emit_many(
        {MONEY_MOVEMENTS.name: (1, MONEY_MOVEMENTS.unit), MONEY_MOVED.name: (amount, "None")},
        properties=client,
        **dimensions,
    )


def _release(payment: Payment, now: int, reason: str, kind: str) -> Movement:
    canceled = replace(
        payment, status="canceled", canceled_at=now, cancellation_reason=reason, expires_at=None
    )
    return Movement(
        kind=kind,
        payment=PaymentWrite(canceled, expect_status="requires_capture"),
        balances=(
            BalanceChange(
                payment.source_account,
                payment.currency,
                held=-payment.amount,
                available=payment.amount,
                refusal="state",
            ),
        ),
    )


def _error_body(error: PaymentFailed, payment: Payment) -> dict[str, Any]:
    return {
        "error": {
            "type": error.type,
            "code": error.code,
            "message": error.message,
            "param": error.param,
            "payment": payment.public(),
        }
    }
