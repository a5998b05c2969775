"""`payplat audit ...`: the audit trail, on its stream and in its archive."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from payplat.config import Env
from payplat.ops.cli_platform import EXIT_FAILED, Output, Platform
from payplat.ops.cli_text import Group


def audit_arguments(audit: Group) -> None:
    tail = audit.command(
        "tail", "print the audit stream's events readably, each once (--json: one per line)"
    )
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    tail.add_argument(
        "--type", default=None, help="only this type (payment.captured), or a prefix (payment.)"
    )
    tail.add_argument("--client", default=None, help="only events of this client id")
    tail.add_argument("--limit", type=int, default=None, help="only the last N events")
    verify = audit.command(
        "verify",
        "check the archived events against their signed, hash-chained seals; report the first"
        " break (exit 1)",
    )
    when = "a duration back from now (24h, 7d), now, an ISO date or date-time (UTC)"
    verify.add_argument("--since", default=None, metavar="WHEN", help=f"seals from: {when}")
    verify.add_argument("--until", default=None, metavar="WHEN", help="seals before (excluded)")


def audit_tail(args: argparse.Namespace, platform: Platform, now: int) -> Output:
    from payplat.audit.dal.stream import AuditStream
    from payplat.ops.audit_view import Filter, events

    if not platform.settings.audit_stream:
        raise ValueError(f"set {Env.AUDIT_STREAM} (the stack's AuditStream output)")
    stream = AuditStream(platform.settings.audit_stream)
    where = Filter(type=args.type, client=args.client)
    found = list(events(stream, where))
    if args.limit is not None:
        found = found[-args.limit :] if args.limit > 0 else []
    for event in found:
        _print_event(event, as_json=args.json)
    if args.follow:
        seen = {str(e.get("event_id")) for e in events(stream, Filter())}
        for event in events(stream, where, follow=True, poll=lambda: time.sleep(1), seen=seen):
            _print_event(event, as_json=args.json)
    return Output(None, "")


def _print_event(event: dict[str, Any], *, as_json: bool) -> None:
    from payplat.ops.audit_view import render

    print(json.dumps(event, separators=(",", ":")) if as_json else render(event), flush=True)


def audit_verify(args: argparse.Namespace, platform: Platform, now: int) -> Output:
    from datetime import UTC, datetime

    from payplat.audit.dal.archive import AuditArchive, KmsSignatureCheck
    from payplat.ops import finance
    from payplat.ops.audit_view import as_json, summary, verify_archive

    if not platform.settings.audit_archive_bucket:
        raise ValueError(f"set {Env.AUDIT_ARCHIVE_BUCKET} (the stack's AuditArchiveBucket)")

    def moment(text: str | None) -> datetime | None:
        return None if text is None else datetime.fromtimestamp(finance.instant(text, now), UTC)

    result = verify_archive(
        AuditArchive(platform.settings.audit_archive_bucket),
        KmsSignatureCheck(),
        since=moment(args.since),
        until=moment(args.until),
    )
    return Output(as_json(result), "\n".join(summary(result)), 0 if result.ok else EXIT_FAILED)
