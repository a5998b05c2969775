"""Releasing uncaptured authorizations past their capture deadline (the scheduled sweep the
expirer function runs, and the local runner runs on a timer).

Safe to run twice, or twice at once: `Ledger.expire` re-reads each payment and releases it in
one transaction conditioned on its state, so a payment is released once, and one captured or
canceled in the meantime is left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from payplat.audit.metrics import PENDING_CAPTURE_VALUE, PENDING_CAPTURES
from payplat.observability import logger, metrics

PAGE_SIZE = 100  # due authorizations read from the index at a time


class DueAuthorizations(Protocol):
    def expired_authorizations(self, now: int, limit: int = ...) -> list[str]: ...


class Expirer(Protocol):
    def expire(self, payment_id: str) -> bool: ...


class PendingCaptures(Protocol):
    def pending_captures(self) -> dict[str, tuple[int, int]]:
        """Currency -> (count, minor units) of every authorization awaiting capture."""
        ...


@dataclass(frozen=True, slots=True)
class SweepResult:
    expired: int  # released by this run
    examined: int  # due authorizations tried (a concurrent run may have released some)
    failed: tuple[str, ...]  # payment ids whose release raised
    finished: bool  # False: out of time, the next run takes the rest


class SweepFailed(Exception):
    """Some due authorizations could not be released; the others were, and are counted."""


def sweep(
    due: DueAuthorizations,
    ledger: Expirer,
    now: int,
    has_time: Callable[[], bool],
    page_size: int = PAGE_SIZE,
) -> SweepResult:
    """Release every authorization due at `now`, a page at a time, while `has_time()`.

    Each id is tried once per run: the index is eventually consistent, so a payment released
    a moment ago may come back on the next page, and a page with nothing new ends the run.
    One payment that cannot be released does not hold up the ones due after it.
    """
    expired = 0
    examined: set[str] = set()
    failed: list[str] = []

    def result(finished: bool) -> SweepResult:
        return SweepResult(expired, len(examined), tuple(failed), finished)

    while has_time():
        page = due.expired_authorizations(now, limit=page_size)
        fresh = [payment_id for payment_id in page if payment_id not in examined]
        if not fresh:
            return result(finished=True)
        for payment_id in fresh:
            if not has_time():
                return result(finished=False)
            examined.add(payment_id)
            try:
                if ledger.expire(payment_id):
                    expired += 1
            except Exception:
                logger.exception("authorization not released", extra={"payment_id": payment_id})
                failed.append(payment_id)
    return result(finished=False)


def measure_pending(pending: PendingCaptures) -> None:
    """The gauges of what awaits capture, one line per currency: how many authorizations and
    the value they hold. A currency with none writes nothing (its charts fill the gap with
    0): a line for every settled currency would be a metric per currency nobody uses."""
    for currency, (count, held) in sorted(pending.pending_captures().items()):
        metrics(((PENDING_CAPTURES, count), (PENDING_CAPTURE_VALUE, held)), currency=currency)
