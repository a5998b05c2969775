"""The finance-ops figures (`payplat.ops.finance`) over ledger records as the table stores them:
what counts, in which range, in which currency, and how a finance person reads it."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from payplat.ops import finance
from payplat.ops.finance import Window

T = 1_700_006_400  # 2023-11-15T00:00:00Z, a whole UTC day
HOUR = 3_600
DAY = 86_400


def payment(
    status: str,
    amount: int,
    *,
    currency: str = "EUR",
    created: int = T,
    captured: int | None = None,
    payee: str = "usr_bob",
    reason: str | None = None,
) -> dict[str, Any]:
    """A payment item as the ledger table stores it (numbers come back as Decimal)."""
    if captured is None:
        captured = amount if status == "succeeded" else 0
    record: dict[str, Any] = {
        "pk": f"PAYMENT#pay_{status}_{amount}_{created}",
        "sk": "PAYMENT",
        "object": "payment",
        "status": status,
        "amount": Decimal(amount),
        "amount_captured": Decimal(captured),
        "amount_refunded": Decimal(0),
        "currency": currency,
        "payer": "usr_alice",
        "payee": payee,
        "created": Decimal(created),
    }
    if reason is not None:
        record["cancellation_reason"] = reason
    return record


def refund(amount: int, *, currency: str = "EUR", created: int = T) -> dict[str, Any]:
    return {
        "pk": "PAYMENT#pay_x",
        "sk": f"REFUND#{created:012d}#re_{amount}",
        "amount": Decimal(amount),
        "currency": currency,
        "created": Decimal(created),
        "payment": "pay_x",
    }


def day() -> Window:
    return Window(T, T + DAY)


def only(report: finance.FinanceReport, currency: str = "EUR") -> finance.CurrencyFigures:
    [figures] = [f for f in report.currencies if f.currency == currency]
    return figures


# -- the figures --------------------------------------------------------------------------------


def test_each_status_counts_once_and_value_is_captured_plus_pending() -> None:
    # Given a day of EUR payments in every state, and a partial capture
    records = [
        payment("succeeded", 10_000),
        payment("succeeded", 5_000, captured=3_000),  # captured 30.00 of 50.00
        payment("requires_capture", 2_500),
        payment("canceled", 700, reason="requested_by_customer"),
        payment("canceled", 800, reason="expired"),
        payment("failed", 99_999),
        refund(1_000),
    ]

    # When the day is reported
    eur = only(finance.report(records, day()))

    # Then every attempt is counted once, by its outcome
    assert (eur.payments, eur.succeeded, eur.pending, eur.canceled, eur.expired, eur.failed) == (
        6, 2, 1, 1, 1, 1,
    )  # fmt: skip
    # And gross value is what was captured plus what is authorized and awaiting capture
    assert eur.captured == 13_000
    assert (eur.pending, eur.pending_value) == (1, 2_500)
    assert eur.gross == 15_500
    # And refunds, and net volume = captured - refunded
    assert (eur.refunds, eur.refunded, eur.net) == (1, 1_000, 12_000)
    # And success is (succeeded + awaiting capture) over every attempt; failure is refusals
    assert eur.success_rate == pytest.approx(3 / 6)
    assert eur.failure_rate == pytest.approx(1 / 6)


def test_a_range_is_half_open_and_refunds_belong_to_their_own_day() -> None:
    # Given payments at the edges of the day, and a refund today of an older payment
    records = [
        payment("succeeded", 100, created=T),  # the first second: in
        payment("succeeded", 200, created=T + DAY - 1),  # the last second: in
        payment("succeeded", 400, created=T + DAY),  # the next day: out
        payment("succeeded", 800, created=T - 1),  # the day before: out
        refund(50, created=T + 10),  # of yesterday's payment: counted today
        refund(60, created=T - 10),  # yesterday's refund: out
    ]

    # When the day is reported
    eur = only(finance.report(records, day()))

    # Then only what was created in [since, until) counts
    assert (eur.payments, eur.captured) == (2, 300)
    assert (eur.refunds, eur.refunded) == (1, 50)
    assert eur.net == 250


def test_currencies_never_mix_and_one_can_be_asked_for_alone() -> None:
    # Given payments in three currencies
    records = [
        payment("succeeded", 1_500, currency="JPY"),
        payment("succeeded", 1_234, currency="KWD"),
        payment("succeeded", 12_345, currency="EUR"),
        payment("failed", 1, currency="JPY"),
    ]

    # When all are reported, then each currency has its own figures, by code
    report = finance.report(records, day())
    assert [f.currency for f in report.currencies] == ["EUR", "JPY", "KWD"]
    assert (only(report, "JPY").payments, only(report, "JPY").gross) == (2, 1_500)
    assert only(report, "KWD").gross == 1_234
    assert report.payments == 4

    # And asking for one currency leaves the others out
    yen = finance.report(records, day(), currency="JPY")
    assert [f.currency for f in yen.currencies] == ["JPY"]
    assert yen.currency == "JPY"


def test_views_entries_accounts_and_claims_are_not_payments() -> None:
    # Given a payment and everything else the ledger table holds about it
    paid = payment("succeeded", 1_000)
    records = [
        paid,
        {**paid, "sk": "VIEW#usr_alice", "owner": "usr_alice"},  # a party's copy
        {**paid, "sk": "VIEW#usr_bob", "owner": "usr_bob"},
        {"pk": "ACCOUNT#acct_a", "sk": "ACCOUNT", "currency": "EUR", "created": T},
        {
            "pk": "ACCOUNT#acct_a",
            "sk": "ENTRY#ent_1",
            "amount": -1_000,
            "currency": "EUR",
            "created": T,
            "kind": "payment",
        },
        {"pk": "IDEMPOTENCY#c#k", "sk": "IDEMPOTENCY", "status": 200, "created": T},
    ]

    # When reported, then the payment counts once
    eur = only(finance.report(records, day()))
    assert (eur.payments, eur.captured) == (1, 1_000)


def test_a_record_that_does_not_parse_is_left_out_whole_and_counted() -> None:
    # Given a good payment, one whose amount is not whole, one without a payee, and one in an
    # unknown state
    records = [
        payment("succeeded", 1_000),
        {**payment("succeeded", 2_000), "amount_captured": Decimal("20.5")},
        {k: v for k, v in payment("succeeded", 4_000).items() if k != "payee"},
        payment("mystery", 8_000),
    ]

    # When reported
    report = finance.report(records, day())

    # Then only the good one is in the figures, none half counted, and the rest are told
    eur = only(report)
    assert (eur.payments, eur.captured, sum(p.count for p in eur.series)) == (1, 1_000, 1)
    assert report.skipped == 3


def test_top_partners_are_payees_ranked_by_captured_value_per_currency() -> None:
    # Given payees with succeeded payments, a pending one and a failed one
    records = [
        payment("succeeded", 5_000, payee="usr_shop_a"),
        payment("succeeded", 3_000, payee="usr_shop_b", created=T + 1),
        payment("succeeded", 3_000, payee="usr_shop_b", created=T + 2),
        payment("succeeded", 1_000, payee="usr_shop_c"),
        payment("requires_capture", 90_000, payee="usr_shop_d"),  # nothing captured yet
        payment("failed", 90_000, payee="usr_shop_e"),
        payment("succeeded", 70_000, payee="usr_shop_c", currency="JPY"),
    ]

    # When the top two are asked for
    report = finance.report(records, day(), top=2)

    # Then they are ranked by what was captured for them, in each currency apart
    assert [(p.owner, p.captured, p.payments) for p in only(report).top_partners] == [
        ("usr_shop_b", 6_000, 2),
        ("usr_shop_a", 5_000, 1),
    ]
    assert [p.owner for p in only(report, "JPY").top_partners] == ["usr_shop_c"]
    with pytest.raises(ValueError, match="at least 1"):
        finance.report(records, day(), top=0)


def test_a_day_is_charted_per_hour_on_whole_utc_hours() -> None:
    # Given a range of 24 h that does not start on the hour
    window = Window(T + 1_800, T + 1_800 + DAY)
    records = [
        payment("succeeded", 100, created=T + 1_800),  # in the 00:00 hour
        payment("requires_capture", 200, created=T + 2 * HOUR + 5),
        payment("failed", 300, created=T + 2 * HOUR + 6),  # counted, worth nothing
    ]

    # When reported
    eur = only(finance.report(records, window))

    # Then the buckets are the UTC hours the range touches, the empty ones included
    assert window.bucket_s == HOUR
    assert len(eur.series) == 25
    assert eur.series[0].start == T
    assert [p.start for p in eur.series] == [T + n * HOUR for n in range(25)]
    assert (eur.series[0].count, eur.series[0].value) == (1, 100)
    assert (eur.series[2].count, eur.series[2].value) == (2, 200)
    # And the series adds up to the totals
    assert sum(p.count for p in eur.series) == eur.payments
    assert sum(p.value for p in eur.series) == eur.gross


def test_ranges_over_48_hours_are_charted_per_day() -> None:
    # Given the last 7 days
    window = finance.last(7 * DAY, T + DAY)
    records = [payment("succeeded", 100, created=T - 3 * DAY + 5)]

    # When reported
    report = finance.report(records, window)

    # Then the buckets are days, and 48 h is still hourly
    assert window.bucket_s == DAY
    assert [count for _, count in report.counts()] == [0, 0, 0, 1, 0, 0, 0]
    assert finance.last(48 * HOUR, T).bucket_s == HOUR
    assert finance.last(48 * HOUR + 1, T).bucket_s == DAY


# -- reading and showing them -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (123_450, "EUR", "1,234.50 EUR"),
        (5, "EUR", "0.05 EUR"),
        (0, "EUR", "0.00 EUR"),
        (-1_050, "USD", "-10.50 USD"),
        (1_500_000, "JPY", "1,500,000 JPY"),
        (1_234, "KWD", "1.234 KWD"),
        (1_234_567, "KWD", "1,234.567 KWD"),
    ],
)
def test_amounts_are_shown_with_the_currencys_exponent(
    amount: int, currency: str, shown: str
) -> None:
    assert finance.format_amount(amount, currency) == shown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", T - DAY),
        ("7d", T - 7 * DAY),
        ("90s", T - 90),
        ("now", T),
        ("2023-11-14", T - DAY),
        ("2023-11-14T12:00:00Z", T - 12 * HOUR),
        ("2023-11-14T12:00:00", T - 12 * HOUR),  # no offset: UTC
        ("2023-11-14T13:00:00+01:00", T - 12 * HOUR),
    ],
)
def test_a_report_range_is_a_duration_back_or_an_iso_time(text: str, expected: int) -> None:
    assert finance.instant(text, T) == expected


@pytest.mark.parametrize("text", ["yesterday", "24", "1w", "2023-13-01", ""])
def test_anything_else_is_refused_with_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="duration back from now"):
        finance.instant(text, T)


def test_an_empty_range_is_refused() -> None:
    with pytest.raises(ValueError, match="the range is empty"):
        Window(T, T)


def test_the_json_document_keeps_minor_units_next_to_their_currency() -> None:
    # Given a report with a refund and a partner
    records = [payment("succeeded", 123_450), payment("failed", 5), refund(450)]
    report = finance.report(records, day())

    # When it becomes the --json document
    document = finance.document(report)

    # Then it is plain JSON (no Decimal), amounts are integers of minor units
    parsed = json.loads(json.dumps(document))
    assert (parsed["since"], parsed["until"]) == (T, T + DAY)
    assert parsed["since_iso"] == "2023-11-15T00:00:00Z"
    assert parsed["bucket_seconds"] == HOUR
    [eur] = parsed["currencies"]
    assert eur["currency"] == "EUR"
    assert eur["exponent"] == 2
    assert eur["payments"] == {
        "count": 2, "succeeded": 1, "requires_capture": 0, "canceled": 0, "expired": 0,
        "failed": 1,
    }  # fmt: skip
    assert (eur["value"], eur["captured"], eur["net_volume"]) == (123_450, 123_450, 123_000)
    assert eur["refunds"] == {"count": 1, "value": 450}
    assert eur["captures_pending"] == {"count": 0, "value": 0}
    assert (eur["success_rate"], eur["failure_rate"]) == (0.5, 0.5)
    assert eur["top_partners"] == [{"partner": "usr_bob", "captured": 123_450, "payments": 1}]
    assert len(eur["series"]) == 24
    assert eur["series"][0] == {"start": T, "count": 2, "value": 123_450}


def test_the_text_report_is_aligned_tables_in_the_currencys_units() -> None:
    # Given payments in currencies with 0, 2 and 3 decimals
    records = [
        payment("succeeded", 123_450, payee="usr_shop_a"),
        payment("succeeded", 1_500, currency="JPY"),
        payment("requires_capture", 1_234, currency="KWD"),
    ]

    # When printed
    text = finance.summary(finance.report(records, day()))

    # Then amounts read as finance reads them
    assert "1,234.50 EUR" in text
    assert "1,500 JPY" in text
    assert "1.234 KWD (1)" in text  # captures pending, with their count
    # And each table's amounts end in one column, under their header
    value_table = text.split("\nValue\n")[1].split("\n\n")[0].splitlines()
    header, *rows = value_table
    assert [row.split()[0] for row in rows] == ["EUR", "JPY", "KWD"]
    gross_end = header.index("gross value") + len("gross value")
    assert {row[:gross_end].rstrip()[-3:] for row in rows} == {"EUR", "JPY", "KWD"}
    assert len({len(row[:gross_end]) for row in rows}) == 1
    assert "Top 5 partners" in text
    assert "usr_shop_a" in text


def test_an_empty_range_says_so() -> None:
    text = finance.summary(finance.report([], day()))
    assert "no payments or refunds in this range" in text
