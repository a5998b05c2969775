"""Reading the audit trail as an operator: `payplat audit tail` (the stream, readable, each
event once) and `payplat audit verify` (the archive against its seals)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from payplat.audit.chain import Seal, SignatureCheck, StreamRecord, Verification, verify
from payplat.audit.events import unpack
from payplat.payments.money import EXPONENTS

_SHOWN_DETAILS = ("grant_type", "scope", "jti", "status", "refund", "plan", "family_id")


class StreamReader(Protocol):
    def shards(self) -> list[str]: ...

    def read(
        self, shard: str, *, after: str | None = None, latest: bool = False, limit: int = 1000
    ) -> Iterator[list[StreamRecord]]: ...


class ArchiveReader(Protocol):
    def seals(self) -> list[Seal]: ...

    def archived_events(self) -> list[bytes]: ...


@dataclass(frozen=True, slots=True)
class Filter:
    type: str | None = None  # an exact type, or a prefix ending in "." ("payment.")
    client: str | None = None

    def admits(self, event: dict[str, Any]) -> bool:
        kind = str(event.get("type", ""))
        if self.type and not (
            kind == self.type or (self.type.endswith(".") and kind.startswith(self.type))
        ):
            return False
        return not self.client or event.get("actor", {}).get("client_id") == self.client


def events(
    stream: StreamReader,
    where: Filter,
    *,
    follow: bool = False,
    poll: Callable[[], None] | None = None,
    seen: set[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """The stream's audit events in order, each once (a retried record repeats an event id),
    filtered; with `follow`, then every new one as it arrives (`poll` waits between reads)."""
    seen = set() if seen is None else seen
    after: dict[str, str | None] = {}
    while True:
        for shard in stream.shards():
            for batch in stream.read(shard, after=after.get(shard)):
                after[shard] = batch[-1].sequence
                for line in (line for record in batch for line in unpack(record.data)):
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    event_id = event.get("event_id")
                    if not isinstance(event, dict) or event_id in seen:
                        continue
                    seen.add(event_id)
                    if where.admits(event):
                        yield event
        if not follow:
            return
        if poll is not None:
            poll()


def render(event: dict[str, Any]) -> str:
    """One readable line: when, what, outcome, who, on what, and the telling details."""
    actor = event.get("actor", {})
    who = " ".join(f"{k}={v}" for k, v in actor.items()) or "-"
    details = event.get("details", {})
    parts = [
        str(event.get("time", ""))[:23],
        f"{event.get('type', '?'):<28}",
        f"{event.get('outcome', '?'):<7}",
        who,
    ]
    if event.get("resource"):
        parts.append(str(event["resource"]))
    if "amount" in details and "currency" in details:
        parts.append(_amount(int(details["amount"]), str(details["currency"])))
    parts += [f"{name}={details[name]}" for name in _SHOWN_DETAILS if name in details]
    if event.get("reason"):
        parts.append(f"reason={event['reason']}")
    origin = event.get("origin", {})
    if origin.get("source_ip"):
        parts.append(f"ip={origin['source_ip']}")
    return "  ".join(parts)


def _amount(minor: int, currency: str) -> str:
    exponent = EXPONENTS.get(currency, 2)
    return f"{minor / 10**exponent:,.{exponent}f} {currency}"


def verify_archive(
    archive: ArchiveReader,
    signature_valid: SignatureCheck,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Verification:
    """Every seal sealed in [since, until) against the archived events."""
    chosen = [seal for seal in archive.seals() if _within(seal.sealed_through, since, until)]
    return verify(chosen, archive.archived_events(), signature_valid)


def _within(moment: str, since: datetime | None, until: datetime | None) -> bool:
    when = datetime.fromisoformat(moment).astimezone(UTC)
    return (since is None or when >= since) and (until is None or when < until)


def summary(result: Verification) -> list[str]:
    lines = [
        f"{result.seals} seals, {result.events} events checked"
        + (f", {result.duplicates} retried duplicates ignored" if result.duplicates else "")
    ]
    if result.ok:
        lines.append(
            "OK: every sealed event is archived, unmodified and in order; "
            "every seal is chained and signed"
        )
        return lines
    first = result.breaks[0]
    lines.append(f"BROKEN at {first.where}: {first.kind} ({first.detail})")
    lines += [f"  also: {b.where}: {b.kind}" for b in result.breaks[1:10]]
    if len(result.breaks) > 10:
        lines.append(f"  … and {len(result.breaks) - 10} more")
    return lines


def as_json(result: Verification) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "seals": result.seals,
        "events": result.events,
        "duplicates": result.duplicates,
        "breaks": [{"kind": b.kind, "where": b.where, "detail": b.detail} for b in result.breaks],
    }
