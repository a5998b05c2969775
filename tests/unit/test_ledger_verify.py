"""verify() over hand-built ledger records: a clean ledger passes, and each kind of damage is
named (tampered amount, dropped entry, negative balance, over-refund, view mismatch...)."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from payplat.payments.ledger_verify import Report, verify

ALICE, BOB = "usr_alice", "usr_bob"
A, B = "acct_a_eur", "acct_b_eur"
OPENINGS = {A: 10_000, B: 5_000}
T0 = 1_700_000_000


class Book:
    """Builds records shaped as the ledger table stores them, keeping balances and entries
    consistent the way the Ledger's movements do."""

    def __init__(self) -> None:
        self.accounts: dict[str, dict[str, Any]] = {}
        self.rows: list[dict[str, Any]] = []
        self._n = 0

    def open(self, account: str, owner: str, opening: int, currency: str = "EUR") -> None:
        self.accounts[account] = {
            "pk": f"ACCOUNT#{account}",
            "sk": "ACCOUNT",
            "id": account,
            "object": "account",
            "owner": owner,
            "currency": currency,
            "available": opening,
            "held": 0,
            "created": T0,
        }

    def move(self, payment: str, kind: str, created: int, *changes: tuple[str, str, int]) -> None:
        for account, bucket, amount in changes:
            self._n += 1
            entry_id = f"ent_{self._n:04d}"
            self.accounts[account][bucket] += amount
            self.rows.append(
                {
                    "pk": f"ACCOUNT#{account}",
                    "sk": f"ENTRY#{entry_id}",
                    "id": entry_id,
                    "object": "ledger_entry",
                    "account": account,
                    "bucket": bucket,
                    "amount": amount,
                    "currency": self.accounts[account]["currency"],
                    "payment": payment,
                    "kind": kind,
                    "created": created,
                }
            )

    def payment(self, payment: str, source: str, destination: str, **fields: Any) -> None:
        record = {
            "id": payment,
            "object": "payment",
            "payer": self.accounts[source]["owner"],
            "payee": self.accounts[destination]["owner"],
            "source_account": source,
            "destination_account": destination,
            "currency": self.accounts[source]["currency"],
            "created": T0,
            "amount_captured": 0,
            "amount_refunded": 0,
            "metadata": {},
            **fields,
        }
        self.rows.append({"pk": f"PAYMENT#{payment}", "sk": "PAYMENT", **record})
        for owner in sorted({record["payer"], record["payee"]}):
            self.rows.append(
                {"pk": f"PAYMENT#{payment}", "sk": f"VIEW#{owner}", "owner": owner, **record}
            )

    def refund(self, payment: str, refund: str, amount: int, created: int) -> None:
        self.rows.append(
            {
                "pk": f"PAYMENT#{payment}",
                "sk": f"REFUND#{created:012d}#{refund}",
                "id": refund,
                "payment": payment,
                "amount": amount,
                "currency": "EUR",
                "created": created,
                "metadata": {},
            }
        )

    def records(self) -> list[dict[str, Any]]:
        return [*copy.deepcopy(list(self.accounts.values())), *copy.deepcopy(self.rows)]


def clean_book() -> Book:
    """alice (A) pays bob (B) every way a payment can go, and one of bob's payments fails."""
    book = Book()
    book.open(A, ALICE, OPENINGS[A])
    book.open(B, BOB, OPENINGS[B])
    # Automatic, 1000, then 300 refunded.
    book.move("pay_auto", "payment", T0 + 1, (A, "available", -1000), (B, "available", 1000))
    book.move("pay_auto", "refund", T0 + 2, (B, "available", -300), (A, "available", 300))
    book.refund("pay_auto", "re_1", 300, T0 + 2)
    book.payment(
        "pay_auto", A, B, amount=1000, status="succeeded", capture_method="automatic",
        amount_captured=1000, amount_refunded=300,
    )  # fmt: skip
    # Manual, 2000, still held.
    book.move("pay_hold", "authorization", T0 + 3, (A, "available", -2000), (A, "held", 2000))
    book.payment(
        "pay_hold", A, B, amount=2000, status="requires_capture", capture_method="manual",
        expires_at=T0 + 3 + 7 * 86400,
    )  # fmt: skip
    # Manual, 1500, 1000 captured (500 released).
    book.move("pay_cap", "authorization", T0 + 4, (A, "available", -1500), (A, "held", 1500))
    book.move(
        "pay_cap", "capture", T0 + 5,
        (A, "held", -1500), (A, "available", 500), (B, "available", 1000),
    )  # fmt: skip
    book.payment(
        "pay_cap", A, B, amount=1500, status="succeeded", capture_method="manual",
        amount_captured=1000,
    )  # fmt: skip
    # Manual, 700, canceled.
    book.move("pay_cancel", "authorization", T0 + 6, (A, "available", -700), (A, "held", 700))
    book.move("pay_cancel", "cancel", T0 + 7, (A, "held", -700), (A, "available", 700))
    book.payment(
        "pay_cancel", A, B, amount=700, status="canceled", capture_method="manual",
        canceled_at=T0 + 7, cancellation_reason="requested_by_customer",
    )  # fmt: skip
    # bob -> alice, more than bob has: failed, no entries.
    book.payment(
        "pay_failed", B, A, amount=99_999, status="failed", capture_method="automatic",
        failure_code="insufficient_funds",
    )  # fmt: skip
    return book


def find(records: list[dict[str, Any]], pk: str, sk: str = "") -> dict[str, Any]:
    return next(r for r in records if r["pk"] == pk and r["sk"].startswith(sk))


def violations_of(report: Report, needle: str) -> list[str]:
    return [v for v in report.violations if needle in v]


# -- a clean ledger --------------------------------------------------------------------------


def test_a_clean_ledger_passes_with_its_opening_balances() -> None:
    # Given a ledger where every payment state occurs
    records = clean_book().records()

    # When it is verified against its opening balances
    report = verify(records, OPENINGS)

    # Then nothing is wrong, and everything was looked at
    assert report.violations == ()
    assert report.ok
    assert (report.accounts, report.payments, report.entries, report.refunds, report.views) == (
        2, 5, 15, 1, 10,
    )  # fmt: skip
    assert find(records, f"ACCOUNT#{A}", "ACCOUNT")["available"] == 6300
    assert find(records, f"ACCOUNT#{A}", "ACCOUNT")["held"] == 2000
    assert "ok: no violations" in report.summary()


def test_without_openings_the_reconciliation_is_skipped_and_said_so() -> None:
    report = verify(clean_book().records())
    assert report.ok
    assert any("not reconciled" in note for note in report.notes)
    assert "not reconciled" in report.summary()


def test_dynamodb_numbers_as_decimal_are_accepted() -> None:
    records = clean_book().records()
    for record in records:
        for name, value in record.items():
            if isinstance(value, int):
                record[name] = Decimal(value)
    assert verify(records, OPENINGS).violations == ()


def test_records_that_carry_no_money_are_ignored() -> None:
    records = [
        *clean_book().records(),
        {"pk": "IDEMPOTENCY#ppc_x#abc", "sk": "IDEMPOTENCY", "status": 200, "body": "{}"},
    ]
    assert verify(records, OPENINGS).ok


def test_an_account_without_a_given_opening_is_noted_not_flagged() -> None:
    report = verify(clean_book().records(), {A: OPENINGS[A]})
    assert report.ok
    assert any("1 account(s)" in note for note in report.notes)


# -- each kind of damage ---------------------------------------------------------------------


def test_a_tampered_entry_amount_unbalances_its_movement_and_its_account() -> None:
    # Given the destination's entry of the automatic payment says 1001, not 1000
    records = clean_book().records()
    entry = next(
        r
        for r in records
        if r.get("payment") == "pay_auto" and r["kind"] == "payment" and r["account"] == B
    )
    entry["amount"] = 1001

    report = verify(records, OPENINGS)

    assert not report.ok
    assert violations_of(report, "movement 'payment' of payment pay_auto")
    assert "+1 EUR" in violations_of(report, "does not balance")[0]
    assert violations_of(report, f"account {B} has")  # off by one against its opening
    assert violations_of(report, "payment pay_auto: a succeeded payment should net 700")


def test_a_dropped_entry_is_found() -> None:
    # Given the held leg of the still-held authorization is lost
    records = [
        r
        for r in clean_book().records()
        if not (r.get("payment") == "pay_hold" and r.get("bucket") == "held")
    ]

    report = verify(records, OPENINGS)

    assert violations_of(report, "movement 'authorization' of payment pay_hold")
    assert violations_of(report, f"account {A} holds 2000 but its held entries sum to 0")
    assert violations_of(report, f"should net 2000 on {A} held, its entries net 0")


def test_a_tampered_balance_is_found_against_the_opening() -> None:
    records = clean_book().records()
    find(records, f"ACCOUNT#{B}", "ACCOUNT")["available"] += 50
    report = verify(records, OPENINGS)
    assert report.violations == (
        f"account {B} has 6750 (available 6750 + held 0) but its opening 5000 plus its entries "
        "make 6700",
    )


def test_a_negative_balance_is_found() -> None:
    records = clean_book().records()
    find(records, f"ACCOUNT#{B}", "ACCOUNT")["available"] = -1
    find(records, f"ACCOUNT#{A}", "ACCOUNT")["held"] = -5
    report = verify(records, OPENINGS)
    assert violations_of(report, f"account {B} has a negative available balance -1")
    assert violations_of(report, f"account {A} has a negative held balance -5")


def test_an_over_refund_is_found() -> None:
    # Given a second refund of 800 on the automatic payment of 1000 (300 refunded already),
    # booked consistently everywhere else
    book = clean_book()
    book.move("pay_auto", "refund", T0 + 9, (B, "available", -800), (A, "available", 800))
    book.refund("pay_auto", "re_2", 800, T0 + 9)
    records = book.records()
    for record in records:
        if record["pk"] == "PAYMENT#pay_auto" and "amount_refunded" in record:
            record["amount_refunded"] = 1100  # the payment and both views

    report = verify(records, OPENINGS)

    assert report.violations == ("payment pay_auto: refunded 1100 exceeds captured 1000",)


def test_refund_records_must_add_up_to_amount_refunded() -> None:
    records = [r for r in clean_book().records() if not r["sk"].startswith("REFUND#")]
    report = verify(records, OPENINGS)
    assert report.violations == (
        "payment pay_auto: its 0 refund(s) sum to 0 but amount_refunded is 300",
    )


def test_a_view_that_disagrees_with_its_payment_is_found() -> None:
    records = clean_book().records()
    find(records, "PAYMENT#pay_cap", f"VIEW#{ALICE}")["status"] = "requires_capture"
    find(records, "PAYMENT#pay_auto", f"VIEW#{BOB}")["amount_refunded"] = 0
    report = verify(records, OPENINGS)
    assert violations_of(report, "payment pay_cap: the view of usr_alice disagrees: status")
    assert violations_of(report, "payment pay_auto: the view of usr_bob disagrees")
    assert len(report.violations) == 2


def test_a_missing_view_and_a_strangers_view_are_found() -> None:
    records = [r for r in clean_book().records() if r["sk"] != f"VIEW#{BOB}"]
    stranger = {**find(records, "PAYMENT#pay_hold", "PAYMENT"), "sk": "VIEW#usr_eve"}
    records.append({**stranger, "owner": "usr_eve"})
    report = verify(records, OPENINGS)
    assert violations_of(report, "payment pay_hold: the view of usr_bob is missing")
    assert violations_of(report, "payment pay_hold: usr_eve, not a party, has a view of it")


@pytest.mark.parametrize(
    ("payment", "status", "needle"),
    [
        ("pay_hold", "succeeded", "captured 0 of an amount of 2000"),
        ("pay_cancel", "requires_capture", "should net -700"),
        ("pay_failed", "succeeded", "has no entries"),
        ("pay_auto", "canceled", "do not lead to a canceled automatic payment"),
    ],
)
def test_a_status_the_entries_do_not_support_is_found(
    payment: str, status: str, needle: str
) -> None:
    records = clean_book().records()
    for record in records:
        if record["pk"] == f"PAYMENT#{payment}":
            record["status"] = status  # main item and views alike
    report = verify(records, OPENINGS)
    assert violations_of(report, f"payment {payment}: ")
    assert any(needle in v for v in report.violations), report.violations


def test_money_moved_for_a_failed_payment_is_found() -> None:
    book = clean_book()
    book.move("pay_failed", "payment", T0 + 8, (B, "available", -10), (A, "available", 10))
    report = verify(book.records(), OPENINGS)
    assert violations_of(report, "payment pay_failed: a failed payment has 2 entries")


def test_an_expiry_must_back_an_expired_cancellation() -> None:
    records = clean_book().records()
    for record in records:
        if record["pk"] == "PAYMENT#pay_cancel" and "cancellation_reason" in record:
            record["cancellation_reason"] = "expired"
    report = verify(records, OPENINGS)
    assert report.violations == (
        "payment pay_cancel: canceled (expired) without a 'expiry' movement",
    )


def test_entries_of_a_missing_payment_or_account_are_found() -> None:
    book = clean_book()
    book.open("acct_ghost", "usr_ghost", 0)
    book.move("pay_ghost", "payment", T0 + 8, (A, "available", -5), ("acct_ghost", "available", 5))
    records = [r for r in book.records() if r["pk"] != "ACCOUNT#acct_ghost" or r["sk"] != "ACCOUNT"]
    report = verify(records, {**OPENINGS})
    assert violations_of(report, "2 entries name a missing payment pay_ghost")
    assert violations_of(report, "names a missing account acct_ghost")


def test_an_entry_in_the_wrong_currency_is_found() -> None:
    records = clean_book().records()
    entry = next(r for r in records if r.get("payment") == "pay_hold" and r["bucket"] == "held")
    entry["currency"] = "USD"
    report = verify(records, OPENINGS)
    assert violations_of(report, "is in USD on acct_a_eur, a EUR account")
    assert violations_of(report, "payment pay_hold: entry")


def test_a_malformed_record_is_a_violation_not_a_crash() -> None:
    records = clean_book().records()
    entry = next(r for r in records if r["sk"].startswith("ENTRY#"))
    del entry["amount"]
    find(records, "PAYMENT#pay_cap", "PAYMENT")["amount"] = "lots"
    find(records, f"ACCOUNT#{B}", "ACCOUNT")["held"] = Decimal("0.5")
    report = verify(records, OPENINGS)
    assert violations_of(report, "is malformed")
    assert violations_of(report, "payment pay_cap is malformed")
    assert violations_of(report, f"account {B} has malformed balances")
