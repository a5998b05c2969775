"""`payplat report`: the finance-ops figures per currency."""

from __future__ import annotations

import argparse
from typing import Any

from payplat.ops.cli_platform import Output, Platform


def report_arguments(groups: Any, json_flag: argparse.ArgumentParser) -> None:
    help_text = (
        "finance-ops figures per currency: payments, success and failure, captures pending,"
        " refunds, net volume, top partners, payments over time"
    )
    report = groups.add_parser(
        "report",
        help=help_text,
        description=help_text + ". Amounts are in the currency's units (--json: minor units).",
        parents=[json_flag],
    )
    report.set_defaults(command="")  # one command, no sub-commands: COMMANDS["report", ""]
    when = "a duration back from now (24h, 7d), now, an ISO date or date-time (UTC)"
    report.add_argument(
        "--since", default="24h", metavar="WHEN", help=f"from (default 24h): {when}"
    )
    report.add_argument(
        "--until", default="now", metavar="WHEN", help="to, excluded (default now, this second in)"
    )
    report.add_argument(
        "--currency",
        type=_report_currency,
        default=None,
        help="one currency only (ISO 4217, e.g. EUR)",
    )
    report.add_argument(
        "--top",
        type=_report_top,
        default=5,
        metavar="N",
        help="top partners per currency (default 5)",
    )


def _report_currency(text: str) -> str:
    from payplat.payments.money import EXPONENTS

    code = text.strip().upper()
    if code not in EXPONENTS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a currency payplat settles")
    return code


def _report_top(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1")
    return int(text)


def report(args: argparse.Namespace, platform: Platform, now: int) -> Output:
    from payplat.ops import finance
    from payplat.ops.dal.ledger_reports import money_records

    end = now + 1  # the current second is in: a payment made just now is on the report
    window = finance.Window(finance.instant(args.since, end), finance.instant(args.until, end))
    records = money_records(platform.settings.ledger_table, window.since, window.until)
    found = finance.report(records, window, currency=args.currency, top=args.top)
    return Output(finance.document(found), finance.summary(found))
