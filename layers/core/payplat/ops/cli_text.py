"""Text in and out of `payplat`: the argument types and command groups of its parser, and the
formatting its commands print with."""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

_DURATION = re.compile(r"([0-9]{1,7})([smhd])")
_UNIT_S = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}


def duration(text: str) -> int:
    """`90s`, `30m`, `24h`, `7d` in seconds (an argparse type: a bad one is a usage error)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: a whole number and a unit (s, m, h, d),"
            " e.g. 90s, 30m, 24h, 7d"
        )
    return int(match[1]) * _UNIT_S[match[2]]


class Group:
    """One command group (`payplat clients ...`): its commands all take --json too."""

    def __init__(self, groups: Any, name: str, help_text: str, json_flag: Any) -> None:
        parser = groups.add_parser(name, help=help_text, description=help_text)
        self._commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
        self._json_flag = json_flag

    def command(self, name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self._commands.add_parser(
            name, help=help_text, description=help_text, parents=[self._json_flag]
        )
        return parser


def iso(epoch: int | None) -> str | None:
    """ISO 8601 UTC; None for no time (and for 0: a key in force since the deployment)."""
    if not epoch:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def span(seconds: int) -> str:
    """The largest whole unit: 86400 -> 1d, 360 -> 6m."""
    for unit, size in _UNIT_S.items():
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def fields(document: dict[str, Any]) -> str:
    width = max(len(name) for name in document) + 1
    lines = []
    for name, value in document.items():
        if isinstance(value, list):
            shown = " ".join(str(v) for v in value) or "-"
        elif isinstance(value, dict):
            shown = json.dumps(value, separators=(",", ":"))
        else:
            shown = "-" if value is None or value == "" else str(value)
        lines.append(f"{name + ':':<{width}} {shown}")
    return "\n".join(lines)


def major(amount: int, currency: str) -> str:
    from payplat.payments.money import EXPONENTS

    exponent = EXPONENTS.get(currency, 2)
    return f"{Decimal(amount).scaleb(-exponent):.{exponent}f} {currency}"
