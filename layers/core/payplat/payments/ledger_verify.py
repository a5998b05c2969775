"""Re-derive the ledger's invariants from its records: the operator's audit of the ledger table
(`payplat ledger verify`) and the oracle of the ledger's property tests.

`verify` reads records as the ledger table stores them (plain dicts with `pk` / `sk`, numbers
as int or Decimal) and checks:

- double entry: the entries of every movement sum to zero per currency (a movement's entries
  share payment, kind and `created`; a union of balanced movements is balanced, so two
  movements of one kind on one payment in the same second are still checked exactly);
- balances: no account has a negative `available` or `held`; `held` equals the sum of the
  account's `held` entries (accounts open with nothing held); and, for every account whose
  opening balance the caller gives, `available + held - sum(entries) == opening`. Opening
  balances are not entries and the account item does not keep them, so without `openings`
  that one check is skipped and the report says so;
- refunds: never above the captured amount, and the refund records of a payment add up to its
  `amount_refunded`;
- state: a payment's amounts fit its status, its entries are the ones its status implies
  (net per account and bucket, and only the movement kinds that lead to that status), and
  every party's view (`VIEW#<owner>`) agrees with the payment item;
- references: every entry names an account and a payment that exist, in their currency.

Domain code: no boto3. A full scan is not a snapshot, so a run during traffic can report a
movement that committed half-way through the read: re-run before acting on a violation.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

BUCKETS = ("available", "held")

# The movement kinds that can have led to each (status, capture method).
_KINDS: dict[tuple[str, str], frozenset[str]] = {
    ("failed", "automatic"): frozenset(),
    ("failed", "manual"): frozenset(),
    ("requires_capture", "manual"): frozenset({"authorization"}),
    ("canceled", "manual"): frozenset({"authorization", "cancel", "expiry"}),
    ("succeeded", "automatic"): frozenset({"payment", "refund"}),
    ("succeeded", "manual"): frozenset({"authorization", "capture", "refund"}),
}
_RELEASE_KIND = {"requested_by_customer": "cancel", "expired": "expiry"}
# What a party's view must agree on with the payment item.
_VIEW_FIELDS = (
    "status",
    "amount",
    "currency",
    "amount_captured",
    "amount_refunded",
    "capture_method",
    "source_account",
    "destination_account",
    "payer",
    "payee",
    "failure_code",
    "canceled_at",
    "cancellation_reason",
)


@dataclass(frozen=True, slots=True)
class Report:
    accounts: int
    payments: int
    entries: int
    refunds: int
    views: int
    violations: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        lines = [
            f"checked {self.accounts} accounts, {self.payments} payments, "
            f"{self.entries} entries, {self.refunds} refunds, {self.views} payment views",
            *(f"note: {note}" for note in self.notes),
        ]
        if self.ok:
            lines.append("ok: no violations")
        else:
            lines.append(f"{len(self.violations)} violation(s):")
            lines += [f"  - {violation}" for violation in self.violations]
        return "\n".join(lines)


@dataclass(slots=True)
class _Records:
    accounts: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    entries: list[Mapping[str, Any]] = field(default_factory=list)
    payments: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    views: dict[str, dict[str, Mapping[str, Any]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    refunds: dict[str, list[Mapping[str, Any]]] = field(default_factory=lambda: defaultdict(list))


def verify(
    records: Iterable[Mapping[str, Any]], openings: Mapping[str, int] | None = None
) -> Report:
    """Every invariant of the ledger over `records`; `openings` maps account id to its opening
    `available` balance (accounts missing from it are not reconciled to an opening)."""
    found = _sort(records)
    violations: list[str] = []
    notes: list[str] = []
    # Parse every number once; a record that does not parse is itself a violation.
    entries = [entry for entry in (_entry(e, violations) for e in found.entries) if entry]
    _check_movements(entries, violations)
    _check_accounts(found, entries, openings, violations, notes)
    _check_payments(found, entries, violations)
    view_count = sum(len(views) for views in found.views.values())
    return Report(
        accounts=len(found.accounts),
        payments=len(found.payments),
        entries=len(found.entries),
        refunds=sum(len(refunds) for refunds in found.refunds.values()),
        views=view_count,
        violations=tuple(violations),
        notes=tuple(notes),
    )


def _sort(records: Iterable[Mapping[str, Any]]) -> _Records:
    found = _Records()
    for record in records:
        pk, sk = str(record.get("pk", "")), str(record.get("sk", ""))
        kind, _, object_id = pk.partition("#")
        if kind == "ACCOUNT" and sk == "ACCOUNT":
            found.accounts[object_id] = record
        elif kind == "ACCOUNT" and sk.startswith("ENTRY#"):
            found.entries.append(record)
        elif kind == "PAYMENT" and sk == "PAYMENT":
            found.payments[object_id] = record
        elif kind == "PAYMENT" and sk.startswith("VIEW#"):
            found.views[object_id][sk.removeprefix("VIEW#")] = record
        elif kind == "PAYMENT" and sk.startswith("REFUND#"):
            found.refunds[object_id].append(record)
        # Idempotency claims (and anything else) carry no money.
    return found


@dataclass(frozen=True, slots=True)
class _Entry:
    id: str
    account: str
    bucket: str
    amount: int
    currency: str
    payment: str
    kind: str
    created: int


def _entry(record: Mapping[str, Any], violations: list[str]) -> _Entry | None:
    try:
        entry = _Entry(
            id=str(record["id"]),
            account=str(record["account"]),
            bucket=str(record["bucket"]),
            amount=_int(record["amount"]),
            currency=str(record["currency"]),
            payment=str(record["payment"]),
            kind=str(record["kind"]),
            created=_int(record["created"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        violations.append(f"entry {record.get('sk')} of {record.get('pk')} is malformed: {exc!r}")
        return None
    if f"ACCOUNT#{entry.account}" != record.get("pk"):
        violations.append(
            f"entry {entry.id} names account {entry.account} but is filed under {record.get('pk')}"
        )
    if entry.bucket not in BUCKETS:
        violations.append(f"entry {entry.id} is in an unknown bucket '{entry.bucket}'")
    if entry.amount == 0:
        violations.append(f"entry {entry.id} moves nothing")
    return entry


def _int(value: Any) -> int:
    number = int(value)
    if number != value:
        raise ValueError(f"{value!r} is not a whole number of minor units")
    return number


def _check_movements(entries: list[_Entry], violations: list[str]) -> None:
    """Double entry, per movement and currency."""
    totals: dict[tuple[str, str, int], Counter[str]] = defaultdict(Counter)
    for entry in entries:
        totals[(entry.payment, entry.kind, entry.created)][entry.currency] += entry.amount
    for (payment, kind, created), sums in sorted(totals.items()):
        unbalanced = {currency: total for currency, total in sums.items() if total}
        if unbalanced:
            violations.append(
                f"movement '{kind}' of payment {payment} at {created} does not balance: "
                f"{_amounts(unbalanced)}"
            )


def _check_accounts(
    found: _Records,
    entries: list[_Entry],
    openings: Mapping[str, int] | None,
    violations: list[str],
    notes: list[str],
) -> None:
    sums: dict[tuple[str, str], int] = defaultdict(int)
    for entry in entries:
        sums[(entry.account, entry.bucket)] += entry.amount
        account = found.accounts.get(entry.account)
        if account is None:
            violations.append(f"entry {entry.id} names a missing account {entry.account}")
        elif account.get("currency") != entry.currency:
            violations.append(
                f"entry {entry.id} is in {entry.currency} on {entry.account}, "
                f"a {account.get('currency')} account"
            )
    unreconciled = 0
    for account_id, record in sorted(found.accounts.items()):
        try:
            available, held = _int(record["available"]), _int(record["held"])
        except (KeyError, TypeError, ValueError) as exc:
            violations.append(f"account {account_id} has malformed balances: {exc!r}")
            continue
        if available < 0:
            violations.append(f"account {account_id} has a negative available balance {available}")
        if held < 0:
            violations.append(f"account {account_id} has a negative held balance {held}")
        held_entries = sums[(account_id, "held")]
        if held != held_entries:
            violations.append(
                f"account {account_id} holds {held} but its held entries sum to {held_entries}"
            )
        if openings is None or account_id not in openings:
            unreconciled += 1
            continue
        expected = openings[account_id] + sums[(account_id, "available")] + held_entries
        if available + held != expected:
            violations.append(
                f"account {account_id} has {available + held} (available {available} + held "
                f"{held}) but its opening {openings[account_id]} plus its entries make {expected}"
            )
    if openings is None:
        notes.append(
            "no opening balances given: available balances were not reconciled to openings"
        )
    elif unreconciled:
        notes.append(f"{unreconciled} account(s) without an opening balance were not reconciled")


def _check_payments(found: _Records, entries: list[_Entry], violations: list[str]) -> None:
    by_payment: dict[str, list[_Entry]] = defaultdict(list)
    for entry in entries:
        by_payment[entry.payment].append(entry)
    for payment_id in sorted(set(by_payment) - set(found.payments)):
        violations.append(
            f"{len(by_payment[payment_id])} entries name a missing payment {payment_id}"
        )
    for payment_id in sorted(set(found.refunds) - set(found.payments)):
        violations.append(f"refunds are filed under a missing payment {payment_id}")
    for payment_id in sorted(set(found.views) - set(found.payments)):
        violations.append(f"views are filed under a missing payment {payment_id}")
    for payment_id, record in sorted(found.payments.items()):
        try:
            payment = _Payment.of(record)
        except (KeyError, TypeError, ValueError) as exc:
            violations.append(f"payment {payment_id} is malformed: {exc!r}")
            continue
        problems: list[str] = []
        _check_amounts(payment, problems)
        _check_refunds(payment, found.refunds.get(payment_id, []), problems)
        _check_entries(payment, by_payment.get(payment_id, []), found.accounts, problems)
        _check_views(payment, record, found.views.get(payment_id, {}), problems)
        violations += [f"payment {payment_id}: {problem}" for problem in problems]


@dataclass(frozen=True, slots=True)
class _Payment:
    id: str
    status: str
    capture_method: str
    amount: int
    captured: int
    refunded: int
    currency: str
    source: str
    destination: str
    payer: str
    payee: str
    cancellation_reason: str | None

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> _Payment:
        return cls(
            id=str(record["id"]),
            status=str(record["status"]),
            capture_method=str(record["capture_method"]),
            amount=_int(record["amount"]),
            captured=_int(record.get("amount_captured", 0)),
            refunded=_int(record.get("amount_refunded", 0)),
            currency=str(record["currency"]),
            source=str(record["source_account"]),
            destination=str(record["destination_account"]),
            payer=str(record["payer"]),
            payee=str(record["payee"]),
            cancellation_reason=record.get("cancellation_reason"),
        )


def _check_amounts(payment: _Payment, problems: list[str]) -> None:
    if (payment.status, payment.capture_method) not in _KINDS:
        problems.append(f"unknown state {payment.status} ({payment.capture_method} capture)")
    if payment.amount <= 0:
        problems.append(f"amount {payment.amount} is not positive")
    if payment.status == "succeeded":
        if not 0 < payment.captured <= payment.amount:
            problems.append(f"captured {payment.captured} of an amount of {payment.amount}")
        if payment.capture_method == "automatic" and payment.captured != payment.amount:
            problems.append(f"an automatic payment of {payment.amount} captured {payment.captured}")
    elif payment.captured:
        problems.append(f"a {payment.status} payment shows {payment.captured} captured")
    if payment.refunded < 0:
        problems.append(f"refunded {payment.refunded} is negative")
    if payment.refunded > max(payment.captured, 0):
        problems.append(f"refunded {payment.refunded} exceeds captured {payment.captured}")


def _check_refunds(
    payment: _Payment, refunds: list[Mapping[str, Any]], problems: list[str]
) -> None:
    total = 0
    for refund in refunds:
        try:
            amount = _int(refund["amount"])
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"refund {refund.get('id')} is malformed: {exc!r}")
            continue
        total += amount
        if amount <= 0:
            problems.append(f"refund {refund.get('id')} of {amount} is not positive")
        if refund.get("currency") != payment.currency:
            problems.append(f"refund {refund.get('id')} is in {refund.get('currency')}")
        if refund.get("payment") != payment.id:
            problems.append(f"refund {refund.get('id')} names payment {refund.get('payment')}")
    if total != payment.refunded:
        problems.append(
            f"its {len(refunds)} refund(s) sum to {total} but amount_refunded is {payment.refunded}"
        )


def _check_entries(
    payment: _Payment,
    entries: list[_Entry],
    accounts: Mapping[str, Mapping[str, Any]],
    problems: list[str],
) -> None:
    """The entries a payment's state implies: net per account and bucket, and their kinds."""
    source, destination = payment.source, payment.destination
    expected: dict[tuple[str, str], int] = defaultdict(int)
    if payment.status == "requires_capture":
        expected[(source, "available")] -= payment.amount
        expected[(source, "held")] += payment.amount
    elif payment.status == "succeeded":
        expected[(source, "available")] -= payment.captured - payment.refunded
        expected[(destination, "available")] += payment.captured - payment.refunded
    # canceled: the hold was released (net zero); failed: no money moved.
    actual: dict[tuple[str, str], int] = defaultdict(int)
    for entry in entries:
        actual[(entry.account, entry.bucket)] += entry.amount
        if entry.currency != payment.currency:
            problems.append(f"entry {entry.id} is in {entry.currency}, not {payment.currency}")
        if entry.account not in (source, destination):
            problems.append(f"entry {entry.id} is on {entry.account}, not a party's account")
    for key in sorted(set(expected) | set(actual)):
        if expected[key] != actual[key]:
            account, bucket = key
            problems.append(
                f"a {payment.status} payment should net {expected[key]} on {account} {bucket}, "
                f"its entries net {actual[key]}"
            )
    _check_kinds(payment, entries, problems)
    for account in sorted({source, destination}):
        if account not in accounts:
            problems.append(f"its account {account} is missing")


def _check_kinds(payment: _Payment, entries: list[_Entry], problems: list[str]) -> None:
    """Only the movements that lead to the payment's state have touched it."""
    if payment.status == "failed" and entries:
        problems.append(f"a failed payment has {len(entries)} entries")
    kinds = {entry.kind for entry in entries}
    allowed = _KINDS.get((payment.status, payment.capture_method), frozenset())
    if kinds - allowed:
        problems.append(
            f"entries of kind {sorted(kinds - allowed)} do not lead to a {payment.status} "
            f"{payment.capture_method} payment"
        )
    if payment.status == "canceled":
        release = _RELEASE_KIND.get(payment.cancellation_reason or "")
        if release is None:
            problems.append(f"unknown cancellation reason {payment.cancellation_reason!r}")
        elif release not in kinds:
            problems.append(
                f"canceled ({payment.cancellation_reason}) without a '{release}' movement"
            )
    if payment.status in ("succeeded", "requires_capture") and not entries:
        problems.append(f"a {payment.status} payment has no entries")


def _check_views(
    payment: _Payment,
    record: Mapping[str, Any],
    views: Mapping[str, Mapping[str, Any]],
    problems: list[str],
) -> None:
    parties = {payment.payer, payment.payee}
    for owner in sorted(parties - set(views)):
        problems.append(f"the view of {owner} is missing")
    for owner in sorted(set(views) - parties):
        problems.append(f"{owner}, not a party, has a view of it")
    for owner in sorted(parties & set(views)):
        view = views[owner]
        if view.get("owner") != owner:
            problems.append(f"the view filed for {owner} names owner {view.get('owner')}")
        differences = [
            f"{name} {view.get(name)!r} (payment: {record.get(name)!r})"
            for name in _VIEW_FIELDS
            if _comparable(view.get(name)) != _comparable(record.get(name))
        ]
        if differences:
            problems.append(f"the view of {owner} disagrees: {', '.join(differences)}")


def _comparable(value: Any) -> Any:
    # DynamoDB numbers arrive as Decimal, hand-built records carry int.
    if value is None:
        return None
    try:
        return _int(value)
    except (TypeError, ValueError):
        return value


def _amounts(values: Mapping[str, int]) -> str:
    return ", ".join(f"{amount:+d} {currency}" for currency, amount in sorted(values.items()))
