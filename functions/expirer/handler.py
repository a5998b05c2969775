"""λ expirer: on a schedule (EventBridge), release uncaptured authorizations whose capture
deadline has passed, so the payer's held funds become available again (payplat.payments.expiry)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from payplat.audit.metrics import AUTHORIZATION_EXPIRY_FAILURES, AUTHORIZATIONS_EXPIRED
from payplat.config import ExpirerSettings, load
from payplat.observability import logger, metric, tracer
from payplat.payments.dal.ledger_table import DynamoLedgerStore
from payplat.payments.expiry import SweepFailed, measure_pending, sweep
from payplat.payments.ledger import Ledger

# No new payment is started this close to the timeout: the run still logs and counts.
STOP_BEFORE_TIMEOUT_MS = 10_000
settings = load(ExpirerSettings)
store = DynamoLedgerStore(settings.ledger_table)
clock: Callable[[], float] = time.time


def _now() -> float:
    # Looks `clock` up at every call, so a test that replaces it moves the ledger's time too.
    return clock()


ledger = Ledger(store, clock=_now)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    def has_time() -> bool:
        return context.get_remaining_time_in_millis() >= STOP_BEFORE_TIMEOUT_MS

    result = sweep(store, ledger, int(_now()), has_time)
    metric(AUTHORIZATIONS_EXPIRED, result.expired)
    summary = {
        "expired": result.expired,
        "examined": result.examined,
        "failed": len(result.failed),
        "finished": result.finished,
    }
    if result.finished:
        logger.info("expiry sweep finished", extra=summary)
    else:
        logger.warning("expiry sweep out of time; the next run continues", extra=summary)
    _gauge_pending(has_time)
    if result.failed:
        metric(AUTHORIZATION_EXPIRY_FAILURES, len(result.failed))
        # After counting what did move: a failed run shows in the function's Errors metric.
        raise SweepFailed(f"{len(result.failed)} due authorizations were not released")
    return {"expired": result.expired}


def _gauge_pending(has_time: Callable[[], bool]) -> None:
    """What still awaits capture after the sweep, every run (a gauge, not a count). Second
    to the sweep: no time left or a failed read leaves one gap in the chart, never a run
    retried for it."""
    if not has_time():
        logger.warning("pending captures not measured: out of time")
        return
    try:
        measure_pending(store)
    except Exception:
        logger.exception("pending captures not measured")
