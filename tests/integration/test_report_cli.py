"""`payplat report` in process against moto: payments made through the real ledger (on a
clock set to a day of 2001, so no other test's payments fall in the range), read back by
the CLI as text and as JSON."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from payplat.audit import events as audit
from payplat.config import Env
from payplat.ops import cli
from payplat.ops.dal.ledger_reports import money_records
from payplat.payments.dal.ledger_table import DynamoLedgerStore
from payplat.payments.idempotency import Idempotency
from payplat.payments.ledger import Account, Ledger
from payplat.payments.requests import CapturePayment, CreatePayment, CreateRefund
from payplat.principal import Principal

DAY_START = 1_000_000_000 - 1_000_000_000 % 86_400  # 2001-09-09T00:00:00Z
T = DAY_START + 9 * 3_600 + 30 * 60  # 09:30 that day
SINCE, UNTIL = "2001-09-09", "2001-09-10"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def run(aws: dict[str, str], capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """The CLI's `main`, its output captured; it replaces the process's audit sinks (as a CLI
    process should), so they are put back afterwards."""
    original_sinks = audit._sinks
    audit._sinks = []

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = cli.main(list(args))
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return Result(code, captured.out, captured.err)

    yield run
    audit._sinks = original_sinks


def principal(owner: str) -> Principal:
    return Principal(
        client_id="ppc_report",
        subject="ppc_report",
        scopes=frozenset({"payments:write", "refunds:write"}),
        jti="j",
        owner=owner,
        plan="standard",
    )


@dataclass(frozen=True)
class Day:
    """What was paid on 2001-09-09, in EUR and JPY, to two merchants of this test."""

    shop: str
    cafe: str


@pytest.fixture(scope="module")
def day(aws: dict[str, str]) -> Day:
    store = DynamoLedgerStore(aws[Env.LEDGER_TABLE])
    tag = secrets.token_hex(4)
    payer, shop, cafe = f"usr_payer_{tag}", f"usr_shop_{tag}", f"usr_cafe_{tag}"
    accounts = {}
    for owner, currency, opening in [
        (payer, "EUR", 100_000), (payer, "JPY", 50_000), (shop, "EUR", 0), (cafe, "EUR", 0),
        (shop, "JPY", 0),
    ]:  # fmt: skip
        account_id = f"acct_{owner}_{currency.lower()}"
        store.open_account(Account(account_id, owner, currency, opening, 0, T - 86_400))
        accounts[owner, currency] = account_id
    keys = iter(range(100))

    def at(seconds: int) -> Ledger:
        return Ledger(store, clock=lambda: T + seconds)

    def pay(to: str, amount: int, currency: str = "EUR", **extra: Any) -> str:
        request = CreatePayment(
            source_account=accounts[payer, currency],
            destination_account=accounts[to, currency],
            amount=amount,
            currency=currency,
            **extra,
        )
        key = Idempotency("ppc_report", f"{tag}-{next(keys)}", "h")
        outcome = at(0).create_payment(principal(payer), request, key)
        assert outcome.status == (402 if amount > 100_000 else 200), outcome.body
        body = json.loads(outcome.body)
        payment_id: str = body.get("id") or body["error"]["payment"]["id"]
        return payment_id

    def key() -> Idempotency:
        return Idempotency("ppc_report", f"{tag}-{next(keys)}", "h")

    pay(shop, 12_345)  # succeeded: 123.45 EUR to the shop
    paid = pay(shop, 20_000)  # succeeded: 200.00, of which 50.00 refunded an hour later
    at(3_600).refund(principal(shop), paid, CreateRefund(amount=5_000), key())
    pay(cafe, 30_000)  # succeeded: 300.00 to the cafe
    authorized = pay(cafe, 10_000, capture_method="manual")  # captured 75.00 of 100.00
    at(60).capture(principal(cafe), authorized, CapturePayment(amount=7_500), key())
    pay(shop, 4_000, capture_method="manual")  # awaiting capture: 40.00
    pay(cafe, 999_999)  # failed: more than the payer holds
    pay(shop, 1_500, currency="JPY")  # 1,500 JPY
    return Day(shop, cafe)


def test_the_report_gives_each_currencys_figures_in_minor_units(run: Any, day: Day) -> None:
    # When the operator asks for that day's report as JSON
    result = run("report", "--since", SINCE, "--until", UNTIL, "--json")

    # Then it covers the day, hour by hour
    assert result.code == 0, result.err
    report = result.json
    assert (report["since"], report["until"]) == (DAY_START, DAY_START + 86_400)
    assert report["bucket_seconds"] == 3_600
    assert report["payments"] == 7
    eur, jpy = report["currencies"]
    # And every EUR attempt is counted by its outcome
    assert eur["currency"] == "EUR"
    assert eur["payments"] == {
        "count": 6, "succeeded": 4, "requires_capture": 1, "canceled": 0, "expired": 0,
        "failed": 1,
    }  # fmt: skip
    assert (eur["success_rate"], eur["failure_rate"]) == (round(5 / 6, 4), round(1 / 6, 4))
    # And the value is what was captured plus what awaits capture, in cents
    captured = 12_345 + 20_000 + 30_000 + 7_500
    assert eur["captured"] == captured
    assert eur["captures_pending"] == {"count": 1, "value": 4_000}
    assert eur["value"] == captured + 4_000
    assert eur["refunds"] == {"count": 1, "value": 5_000}
    assert eur["net_volume"] == captured - 5_000
    # And the partners are ranked by what was captured for them
    assert eur["top_partners"] == [
        {"partner": day.cafe, "captured": 37_500, "payments": 2},
        {"partner": day.shop, "captured": 32_345, "payments": 2},
    ]
    # And the series puts the payments in the 09:00 hour
    [busy] = [point for point in eur["series"] if point["count"]]
    assert busy == {"start": DAY_START + 9 * 3_600, "count": 6, "value": captured + 4_000}
    assert (jpy["currency"], jpy["value"], jpy["exponent"]) == ("JPY", 1_500, 0)


def test_the_text_report_is_tables_in_each_currencys_units(run: Any, day: Day) -> None:
    # When the operator asks for the same day as text
    result = run("report", "--since", SINCE, "--until", UNTIL)

    # Then amounts read as money, with their currency, and the partners are named
    assert result.code == 0, result.err
    text = result.out
    assert "payments created 2001-09-09T00:00:00Z to 2001-09-10T00:00:00Z" in text
    assert "738.45 EUR" in text  # gross value
    assert "40.00 EUR (1)" in text  # captures pending
    assert "50.00 EUR (1)" in text  # refunds
    assert "648.45 EUR" in text  # net volume
    assert "1,500 JPY" in text
    assert "83.3 %" in text
    assert day.cafe in text
    assert "2001-09-09 09:00" in text


def test_one_currency_and_the_top_partner_only(run: Any, day: Day) -> None:
    result = run(
        "--json", "report", "--since", SINCE, "--until", UNTIL, "--currency", "eur", "--top", "1"
    )

    assert result.code == 0, result.err
    [eur] = result.json["currencies"]
    assert eur["currency"] == "EUR"
    assert [partner["partner"] for partner in eur["top_partners"]] == [day.cafe]


def test_a_range_before_the_payments_is_empty(run: Any, day: Day) -> None:
    result = run("report", "--since", "2001-09-08", "--until", "2001-09-09T00:00:00Z")

    assert result.code == 0, result.err
    assert "no payments or refunds in this range" in result.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "yesterday"), "is not a time"),
        (("--since", "2001-09-10", "--until", "2001-09-09"), "the range is empty"),
        (("--currency", "XYZ"), "is not a currency payplat settles"),
        (("--top", "0"), "is not a whole number from 1"),
    ],
)
def test_a_bad_range_currency_or_top_is_a_usage_error(
    run: Any, args: tuple[str, ...], message: str
) -> None:
    result = run("report", *args)

    assert result.code == cli.EXIT_BAD_INPUT
    assert message in result.err
    assert result.out == ""


def test_the_report_only_reads(run: Any, aws: dict[str, str], monkeypatch: Any) -> None:
    # Given no audit stream configured (a change could not be audited, so only reads run)
    monkeypatch.delenv(Env.AUDIT_STREAM, raising=False)

    # When the report runs, then it runs
    assert run("report", "--since", SINCE, "--until", UNTIL).code == 0
    assert ("report", "") in cli.READ_ONLY


def test_the_dal_read_returns_only_payments_and_refunds_of_the_range(
    aws: dict[str, str], day: Day
) -> None:
    records = money_records(aws[Env.LEDGER_TABLE], DAY_START, DAY_START + 86_400)

    kinds = {record["sk"].split("#")[0] for record in records}
    assert kinds == {"PAYMENT", "REFUND"}
    assert all(DAY_START <= record["created"] < DAY_START + 86_400 for record in records)
    assert len([r for r in records if r["sk"] == "PAYMENT"]) == 7
    # And only the fields a report reads cross the wire
    assert not {"metadata", "description", "actor", "payer"} & {k for r in records for k in r}
