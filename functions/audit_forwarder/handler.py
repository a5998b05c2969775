"""λ audit_forwarder: the ledger table's stream in, money-movement audit events out to the
Kinesis stream `audit` (payplat.ledger_audit says which change is which event).

Partial batch failures are reported per stream record, so Lambda retries from the first
record whose events did not reach the stream (and, after its retries, the batch goes to the
DLQ). A retried record yields the same event ids: the trail deduplicates by `event_id`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payplat import audit
from payplat.config import ForwarderSettings, load
from payplat.dal.audit_stream import AuditStream, Outgoing, plain_stream_record
from payplat.emf import count
from payplat.ledger_audit import events_from
from payplat.metrics import AUDIT_EVENTS_FORWARDED
from payplat.observability import logger, tracer

settings = load(ForwarderSettings)
stream = AuditStream(settings.audit_stream)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    outgoing: list[Outgoing] = []
    source: list[int] = []  # the stream record each outgoing event came from
    types: list[str] = []
    for position, record in enumerate(records):
        for audit_event in events_from(plain_stream_record(record)):
            line = audit.line(audit_event)
            # One payment's events share a partition: they stay in order within a shard.
            key = audit_event.resource or audit_event.event_id
            outgoing.append(Outgoing(partition_key=key, data=line.encode("utf-8")))
            source.append(position)
            types.append(audit_event.type)
    failed = stream.put(outgoing)
    for index, type_ in enumerate(types):
        if index not in failed:
            count(AUDIT_EVENTS_FORWARDED.name, type=type_)
    failed_records = sorted({source[index] for index in failed})
    if failed_records:
        logger.warning("audit events not forwarded", extra={"records": len(failed_records)})
    # Lambda retries from the earliest failed record on (its sequence number identifies it).
    return {
        "batchItemFailures": [
            {"itemIdentifier": records[i]["dynamodb"]["SequenceNumber"]} for i in failed_records
        ]
    }
