"""`payplat ledger ...`: the double-entry ledger's invariants."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from payplat.ops.cli_platform import EXIT_FAILED, Output, Platform
from payplat.ops.cli_text import Group


def ledger_arguments(ledger: Group) -> None:
    verify = ledger.command(
        "verify",
        "check every ledger invariant over the whole table (exit 1 on a violation)",
    )
    verify.add_argument(
        "--opening",
        action="append",
        default=[],
        metavar="ACCOUNT=AMOUNT",
        help="an account's opening available balance in minor units (repeatable)",
    )
    verify.add_argument(
        "--openings",
        type=Path,
        default=None,
        metavar="FILE",
        help='a JSON object of opening balances, {"acct_...": 250000, ...}',
    )


def _openings(args: argparse.Namespace) -> dict[str, int] | None:
    """Opening balances are not entries (the ledger keeps none): the operator supplies them,
    or the reconciliation of `available` to its opening is skipped."""
    openings: dict[str, int] = {}
    if args.openings is not None:
        try:
            loaded = json.loads(args.openings.read_text())
        except OSError as exc:
            raise ValueError(f"cannot read {args.openings}: {exc.strerror}") from exc
        if not isinstance(loaded, dict):
            raise ValueError(f"{args.openings} is not a JSON object of account -> amount")
        openings |= {str(account): int(amount) for account, amount in loaded.items()}
    for pair in args.opening:
        account, sep, amount = pair.partition("=")
        if not sep or not account:
            raise ValueError(f"--opening takes ACCOUNT=AMOUNT, not {pair!r}")
        openings[account] = int(amount)
    return openings if openings or args.openings is not None else None


def ledger_verify(args: argparse.Namespace, platform: Platform, now: int) -> Output:
    from payplat.payments.ledger_verify import verify

    openings = _openings(args)
    report = verify(platform.ledger.scan_records(), openings)
    data = {
        "ok": report.ok,
        "accounts": report.accounts,
        "payments": report.payments,
        "entries": report.entries,
        "refunds": report.refunds,
        "views": report.views,
        "violations": list(report.violations),
        "notes": list(report.notes),
    }
    return Output(data, report.summary(), 0 if report.ok else EXIT_FAILED)
