"""The finance-ops figures: what was paid, what failed, what waits for capture, what was
refunded and who earned it, per currency, over a time range.

`report` reads ledger records as the ledger table stores them (plain dicts with `pk` / `sk`,
numbers as int or Decimal): payment items (`sk == "PAYMENT"`) and refund items (`sk` starting
with `REFUND#`); anything else is ignored. `payplat report` and the local /ops page both
compute their figures here, so they cannot disagree.

Definitions, as a finance person will ask for them:

- the range is [since, until) in UTC seconds; a payment belongs to it by its `created`, a
  refund by its own `created` (a refund today of last month's payment counts today);
- payments: every attempt — succeeded, requires_capture (authorized, awaiting capture),
  canceled (released on request), expired (released by the 7-day sweep) and failed;
- gross value: the captured amounts of succeeded payments plus the authorized amounts still
  awaiting capture;
- success rate: (succeeded + requires_capture) / attempts; failure rate: failed / attempts
  (a released authorization is neither);
- net volume: captured minus refunded (the refunds made in the range), so it can be negative;
- top partners: the payees (merchant owner ids) by captured value;
- amounts stay integers in minor units and never mix currencies: there is no FX here.

Domain code: no boto3.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from payplat.payments.money import EXPONENTS

HOUR_S = 3_600
DAY_S = 86_400
HOURLY_UP_TO_S = 48 * HOUR_S  # longer ranges are charted per day
DEFAULT_TOP = 5
STATUSES = ("succeeded", "requires_capture", "canceled", "expired", "failed")

_DURATION = re.compile(r"([0-9]{1,7})([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": HOUR_S, "d": DAY_S}


# -- the range ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """[since, until) in unix seconds, and the buckets its series is charted in."""

    since: int
    until: int

    def __post_init__(self) -> None:
        if self.since >= self.until:
            raise ValueError(
                f"the range is empty: {iso(self.since)} is not before {iso(self.until)}"
            )

    @property
    def bucket_s(self) -> int:
        return HOUR_S if self.until - self.since <= HOURLY_UP_TO_S else DAY_S

    @property
    def first_bucket(self) -> int:
        """Buckets start on whole UTC hours (days), so two reports' buckets line up."""
        return self.since - self.since % self.bucket_s

    def bucket_starts(self) -> tuple[int, ...]:
        return tuple(range(self.first_bucket, self.until, self.bucket_s))

    def bucket_of(self, created: int) -> int:
        return (created - self.first_bucket) // self.bucket_s

    def __contains__(self, created: object) -> bool:
        return isinstance(created, int) and self.since <= created < self.until


def last(span_s: int, end: int) -> Window:
    """The `span_s` seconds before `end` (exclusive). With `end = now + 1` the current second
    is in: a payment made just now is on the report."""
    return Window(end - span_s, end)


def instant(text: str, end: int) -> int:
    """A point in time for a report's range: a duration back from `end` (`90s`, `30m`, `24h`,
    `7d`), `now` (= `end`), an ISO date (its midnight, UTC) or an ISO date-time (UTC unless it
    names an offset)."""
    value = text.strip()
    if value == "now":
        return end
    match = _DURATION.fullmatch(value)
    if match is not None:
        return end - int(match[1]) * _UNIT_S[match[2]]
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: a duration back from now (90s, 30m, 24h, 7d), now,"
            " an ISO date (2025-01-31) or an ISO date-time (2025-01-31T09:30:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the figures --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Point:
    """One bucket of a series: payments created in it (every attempt) and their gross value."""

    start: int
    count: int
    value: int


@dataclass(frozen=True, slots=True)
class Partner:
    owner: str  # the payee's owner id
    captured: int
    payments: int  # succeeded payments to it


@dataclass(frozen=True, slots=True)
class CurrencyFigures:
    currency: str
    payments: int  # every attempt
    succeeded: int
    pending: int  # requires_capture: the captures pending
    canceled: int
    expired: int
    failed: int
    gross: int
    captured: int
    pending_value: int
    refunds: int
    refunded: int
    top_partners: tuple[Partner, ...]
    series: tuple[Point, ...]

    @property
    def net(self) -> int:
        return self.captured - self.refunded

    @property
    def success_rate(self) -> float | None:
        return (self.succeeded + self.pending) / self.payments if self.payments else None

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.payments if self.payments else None

    def count(self, status: str) -> int:
        """Payments in one of STATUSES."""
        counts = {
            "succeeded": self.succeeded,
            "requires_capture": self.pending,
            "canceled": self.canceled,
            "expired": self.expired,
            "failed": self.failed,
        }
        return counts[status]


@dataclass(frozen=True, slots=True)
class FinanceReport:
    window: Window
    currencies: tuple[CurrencyFigures, ...]  # by currency code
    currency: str | None = None  # the one currency asked for, if any
    top: int = DEFAULT_TOP
    skipped: int = 0  # records that did not parse (`payplat ledger verify` names them)

    @property
    def payments(self) -> int:
        return sum(figures.payments for figures in self.currencies)

    def counts(self) -> tuple[tuple[int, int], ...]:
        """(bucket start, payments) over every currency: a count, unlike a value, adds up."""
        totals: Counter[int] = Counter()
        for figures in self.currencies:
            for point in figures.series:
                totals[point.start] += point.count
        return tuple((start, totals[start]) for start in self.window.bucket_starts())


@dataclass(slots=True)
class _Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    captured: int = 0
    pending_value: int = 0
    refunds: int = 0
    refunded: int = 0
    partners: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    buckets: dict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))


def report(
    records: Iterable[Mapping[str, Any]],
    window: Window,
    *,
    currency: str | None = None,
    top: int = DEFAULT_TOP,
) -> FinanceReport:
    """The figures of `window` from ledger records; `currency` keeps one currency only."""
    if top < 1:
        raise ValueError("top must be at least 1")
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    skipped = 0
    for record in records:
        sk = str(record.get("sk", ""))
        if sk != "PAYMENT" and not sk.startswith("REFUND#"):
            continue  # accounts, entries, views, idempotency claims
        try:
            created = _int(record["created"])
            code = str(record["currency"])
            if created not in window or (currency is not None and code != currency):
                continue
            if sk == "PAYMENT":
                _count_payment(record, created, window, tallies[code])
            else:
                tally = tallies[code]
                tally.refunds += 1
                tally.refunded += _int(record["amount"])
        except (KeyError, TypeError, ValueError):
            skipped += 1
    figures = tuple(_figures(code, tallies[code], window, top) for code in sorted(tallies))
    return FinanceReport(window, figures, currency, top, skipped)


def _count_payment(record: Mapping[str, Any], created: int, window: Window, tally: _Tally) -> None:
    # Every field is read before anything is counted: a record that does not parse is
    # left out whole, not half counted.
    status = str(record["status"])
    if status == "canceled" and record.get("cancellation_reason") == "expired":
        status = "expired"
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    amount = _int(record["amount"])
    captured = _int(record.get("amount_captured") or 0)
    payee = str(record["payee"])
    value = 0
    if status == "succeeded":
        value = captured
        tally.captured += captured
        partner = tally.partners[payee]
        partner[0] += captured
        partner[1] += 1
    elif status == "requires_capture":
        value = amount
        tally.pending_value += amount
    tally.statuses[status] += 1
    bucket = tally.buckets[window.bucket_of(created)]
    bucket[0] += 1
    bucket[1] += value


def _figures(code: str, tally: _Tally, window: Window, top: int) -> CurrencyFigures:
    ranked = sorted(tally.partners.items(), key=lambda item: (-item[1][0], -item[1][1], item[0]))
    partners = tuple(
        Partner(owner, captured, count) for owner, (captured, count) in ranked if captured > 0
    )[:top]
    series = tuple(
        Point(start, *tally.buckets.get(index, (0, 0)))
        for index, start in enumerate(window.bucket_starts())
    )
    statuses = tally.statuses
    return CurrencyFigures(
        currency=code,
        payments=sum(statuses.values()),
        succeeded=statuses["succeeded"],
        pending=statuses["requires_capture"],
        canceled=statuses["canceled"],
        expired=statuses["expired"],
        failed=statuses["failed"],
        gross=tally.captured + tally.pending_value,
        captured=tally.captured,
        pending_value=tally.pending_value,
        refunds=tally.refunds,
        refunded=tally.refunded,
        top_partners=partners,
        series=series,
    )


def _int(value: Any) -> int:
    number = int(value)
    if number != value:
        raise ValueError(f"{value!r} is not a whole number of minor units")
    return number


# -- presenting them ----------------------------------------------------------------------------


def exponent(currency: str) -> int:
    return EXPONENTS.get(currency, 2)


def format_amount(amount: int, currency: str) -> str:
    """Minor units as a finance person reads them: 123450 EUR -> "1,234.50 EUR", 1500 JPY ->
    "1,500 JPY", 1234 KWD -> "1.234 KWD"."""
    places = exponent(currency)
    return f"{Decimal(amount).scaleb(-places):,.{places}f} {currency}"


def format_rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f} %"


def document(found: FinanceReport) -> dict[str, Any]:
    """The report for scripts: amounts in minor units next to their currency."""
    window = found.window
    return {
        "since": window.since,
        "until": window.until,
        "since_iso": iso(window.since),
        "until_iso": iso(window.until),
        "bucket_seconds": window.bucket_s,
        "currency": found.currency,
        "top": found.top,
        "payments": found.payments,
        "skipped_records": found.skipped,
        "currencies": [_currency_document(figures) for figures in found.currencies],
    }


def _currency_document(figures: CurrencyFigures) -> dict[str, Any]:
    return {
        "currency": figures.currency,
        "exponent": exponent(figures.currency),
        "payments": {"count": figures.payments, **{s: figures.count(s) for s in STATUSES}},
        "success_rate": _rounded(figures.success_rate),
        "failure_rate": _rounded(figures.failure_rate),
        "value": figures.gross,
        "captured": figures.captured,
        "captures_pending": {"count": figures.pending, "value": figures.pending_value},
        "refunds": {"count": figures.refunds, "value": figures.refunded},
        "net_volume": figures.net,
        "top_partners": [
            {"partner": p.owner, "captured": p.captured, "payments": p.payments}
            for p in figures.top_partners
        ],
        "series": [
            {"start": point.start, "count": point.count, "value": point.value}
            for point in figures.series
        ],
    }


def _rounded(rate: float | None) -> float | None:
    return None if rate is None else round(rate, 4)


_PAYMENT_COLUMNS = (
    "currency", "payments", "succeeded", "pending", "canceled", "expired", "failed", "success",
    "failure",
)  # fmt: skip
_VALUE_COLUMNS = (
    "currency", "gross value", "captured", "captures pending", "refunds", "net volume",
)  # fmt: skip


def summary(found: FinanceReport) -> str:
    """Aligned tables a finance person can read."""
    window = found.window
    scope = f"{found.currency} only" if found.currency else "every currency"
    lines = [
        f"payments created {iso(window.since)} to {iso(window.until)} (UTC, end excluded), {scope}"
    ]
    if found.skipped:
        lines.append(
            f"note: {found.skipped} record(s) did not parse and are left out:"
            " run `payplat ledger verify`"
        )
    if not found.currencies:
        return "\n".join([*lines, "", "no payments or refunds in this range"])
    lines += ["", "Payments", *_table(_PAYMENT_COLUMNS, [_counts(f) for f in found.currencies])]
    lines += ["", "Value", *_table(_VALUE_COLUMNS, [_values(f) for f in found.currencies])]
    partners = [
        (f.currency, rank, p.owner, format_amount(p.captured, f.currency), p.payments)
        for f in found.currencies
        for rank, p in enumerate(f.top_partners, start=1)
    ]
    lines += ["", f"Top {found.top} partners by captured value (payee)"]
    lines += (
        _table(("currency", "rank", "partner", "captured", "payments"), partners, left=(0, 2))
        if partners
        else ["no captured payments"]
    )
    unit, shape = ("hour", "%Y-%m-%d %H:%M") if window.bucket_s == HOUR_S else ("day", "%Y-%m-%d")
    busy = sorted(
        (datetime.fromtimestamp(p.start, UTC).strftime(shape), f.currency, p.count, p.value)
        for f in found.currencies
        for p in f.series
        if p.count
    )
    rows = [(when, code, count, format_amount(value, code)) for when, code, count, value in busy]
    lines += ["", f"Payments per {unit} (UTC; {unit}s without payments left out)"]
    lines += _table((f"{unit} starting", "currency", "payments", "gross value"), rows, left=(0, 1))
    return "\n".join(lines)


def _counts(f: CurrencyFigures) -> tuple[object, ...]:
    return (
        f.currency, f.payments, f.succeeded, f.pending, f.canceled, f.expired, f.failed,
        format_rate(f.success_rate), format_rate(f.failure_rate),
    )  # fmt: skip


def _values(f: CurrencyFigures) -> tuple[object, ...]:
    def amount(value: int) -> str:
        return format_amount(value, f.currency)

    return (
        f.currency, amount(f.gross), amount(f.captured),
        f"{amount(f.pending_value)} ({f.pending})", f"{amount(f.refunded)} ({f.refunds})",
        amount(f.net),
    )  # fmt: skip


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], left: Sequence[int] = (0,)
) -> list[str]:
    """Columns as wide as their widest cell; text left, numbers and amounts right."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(str(row[i])) for row in [headers, *cells]) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i in left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    return [line(list(headers)), *(line(row) for row in cells)]
