"""λ audit_forwarder: the ledger table's stream in, money-movement audit events out to the
Kinesis stream `audit` (payplat.payments.ledger_audit says which change is which event).

Partial batch failures are reported per stream record, so Lambda retries from the first
record whose events did not reach the stream (and, after its retries, the batch goes to the
DLQ). A retried record yields the same event ids: the trail deduplicates by `event_id`.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payplat.audit import events as audit
from payplat.audit.dal.stream import AuditStream, Outgoing, plain_stream_record
from payplat.audit.emf import count
from payplat.audit.metrics import AUDIT_EVENTS_FORWARDED
from payplat.config import ForwarderSettings, load
from payplat.observability import logger, tracer
from payplat.payments.ledger_audit import events_from

settings = load(ForwarderSettings)
stream = AuditStream(settings.audit_stream)
LOG_GROUP = "/aws/lambda/payplat-audit-forwarder"


def context_stream() -> str:
    """This execution environment's log stream name, as CloudWatch Logs would name it."""
    return os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "local")


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    outgoing: list[Outgoing] = []
    source: list[int] = []  # the stream record each outgoing envelope came from
    types: list[list[str]] = []
    for position, record in enumerate(records):
        events = events_from(plain_stream_record(record))
        if not events:
            continue
        # One ledger change's events travel together, in the envelope the subscription
        # filter uses, keyed by payment: a payment's events stay in order within a shard.
        data = audit.envelope(
            [audit.line(e) for e in events], log_group=LOG_GROUP, log_stream=context_stream()
        )
        outgoing.append(Outgoing(partition_key=events[0].resource or "ledger", data=data))
        source.append(position)
        types.append([e.type for e in events])
    failed = stream.put(outgoing)
    for index, kinds in enumerate(types):
        if index not in failed:
            for kind in kinds:
                count(AUDIT_EVENTS_FORWARDED.name, type=kind)
    failed_records = sorted({source[index] for index in failed})
    if failed_records:
        logger.warning("audit events not forwarded", extra={"records": len(failed_records)})
    # Lambda retries from the earliest failed record on (its sequence number identifies it).
    return {
        "batchItemFailures": [
            {"itemIdentifier": records[i]["dynamodb"]["SequenceNumber"]} for i in failed_records
        ]
    }
