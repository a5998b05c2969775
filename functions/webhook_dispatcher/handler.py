"""λ webhook_dispatcher, on two event sources (payplat.webhooks.dispatch):

- the Kinesis audit stream: money movements become webhook events, and a delivery per
  subscribed endpoint is queued. A record that fails is reported (`batchItemFailures`):
  Lambda retries from it, and what was done before it is not done twice (events and
  deliveries are written with conditional puts);
- the SQS delivery queue: one attempt per message. A failed POST is not a failed message —
  the next attempt is queued with its backoff — so only what went wrong on payplat's side
  (a table or the queue unreachable) is reported, and SQS hands that message out again.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payplat.audit.events import unpack
from payplat.config import WebhookSettings, load
from payplat.observability import logger, tracer
from payplat.payments.dal.ledger_table import DynamoLedgerStore
from payplat.webhooks.dal.webhook_http import HttpPoster
from payplat.webhooks.dal.webhook_queue import SqsDeliveryQueue
from payplat.webhooks.dal.webhooks_table import DynamoWebhookStore
from payplat.webhooks.dispatch import Dispatcher
from payplat.webhooks.objects import DELIVERY_TIMEOUT_S, DeliveryMessage, RetryPolicy

# A message is not started this close to the timeout (one POST may take DELIVERY_TIMEOUT_S):
# it goes back on the queue as it is, for the next invocation.
STOP_BEFORE_TIMEOUT_MS = (DELIVERY_TIMEOUT_S + 5) * 1000

settings = load(WebhookSettings)
queue = SqsDeliveryQueue(settings.queue_url, settings.dlq_url)
clock: Callable[[], float] = time.time


def _now() -> float:
    # Looks `clock` up at every call, so a test that replaces it moves the dispatcher's time.
    return clock()


dispatcher = Dispatcher(
    store=DynamoWebhookStore(settings.webhooks_table),
    queue=queue,
    ledger=DynamoLedgerStore(settings.ledger_table),
    poster=HttpPoster(),
    policy=RetryPolicy(base_s=settings.retry_base_s, cap_s=settings.retry_cap_s),
    local=bool(settings.local),
    clock=_now,
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    if not records:
        return {"batchItemFailures": []}
    if records[0].get("eventSource") == "aws:sqs":
        return _deliveries(records, context)
    return _audit_records(records)


def _audit_records(records: list[dict[str, Any]]) -> dict[str, Any]:
    made = 0
    for record in records:
        try:
            for line in unpack(base64.b64decode(record["kinesis"]["data"])):
                made += len(dispatcher.record(line))
        except Exception:
            # Lambda retries from this record on; the ones before it are done.
            logger.exception("webhook events not made; the record will be retried")
            sequence = record["kinesis"]["sequenceNumber"]
            return {"batchItemFailures": [{"itemIdentifier": sequence}]}
    if made:
        logger.info("webhook events made", extra={"events": made})
    return {"batchItemFailures": []}


def _deliveries(records: list[dict[str, Any]], context: LambdaContext) -> dict[str, Any]:
    failures = []
    for record in records:
        if context.get_remaining_time_in_millis() < STOP_BEFORE_TIMEOUT_MS:
            queue.send(record["body"], 0)  # not started: whole, for the next invocation
            continue
        try:
            message = DeliveryMessage.from_json(record["body"])
        except ValueError:
            # Not a message payplat wrote: kept in the DLQ for a person to look at.
            logger.error("malformed webhook delivery message", extra={"id": record["messageId"]})
            queue.park(record["body"])
            continue
        try:
            dispatcher.attempt(message)
        except Exception:
            logger.exception("webhook attempt failed on our side; the message comes back")
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
