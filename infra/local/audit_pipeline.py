"""What AWS runs around the audit stream, run locally by the runner (one background thread):

- Lambda's DynamoDB-stream event source: the ledger table's stream, filtered to payments and
  refunds as the CDK filter criteria do, in batches to λ audit_forwarder; failed records are
  retried from the first failure (`batchItemFailures`), with backoff, up to the same number
  of attempts as in AWS, then the batch's description goes to the DLQ (an SQS queue);
- Lambda's Kinesis event source: the audit stream, shard by shard in order, to λ
  audit_sealer; a failed batch is retried whole;
- Firehose: the audit stream, buffered, its subscription envelopes decompressed and their
  messages extracted (the Decompression and CloudWatchLogProcessing processors), delivered
  to the archive bucket as gzip JSON lines under `events/YYYY/MM/DD/HH/`.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from infra.resources import AUDIT_ARCHIVE
from payplat.audit.chain import StreamRecord
from payplat.audit.dal.archive import AuditArchive
from payplat.audit.dal.stream import AuditStream
from payplat.audit.events import unpack

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.3
MAX_ATTEMPTS = 10  # as the event source mappings in AWS (infra/constructs)
BACKOFF_MAX_S = 4.0
FIREHOSE_BUFFER_S = 2.0  # 60 s in AWS; short here so the archive keeps up with a test
BATCH_SIZE = 100

Invoke = Callable[[dict[str, Any]], Any]


def is_money(record: dict[str, Any]) -> bool:
    """The CDK event source's filter: payment and refund items only."""
    sk = record.get("dynamodb", {}).get("Keys", {}).get("sk", {}).get("S", "")
    return bool(sk == "PAYMENT" or sk.startswith("REFUND#"))


class LedgerStreamSource:
    """The ledger table's stream as Lambda's event source reads it, into the forwarder.

    moto applies a transaction item by item and rolls back a cancelled one by restoring the
    table, stream included, so a reader polling at that instant can see records that never
    happened (DynamoDB never shows them). Records are therefore taken only once they are
    `SETTLE_S` old, re-reading after the last one delivered."""

    SETTLE_S = 1.0

    def __init__(
        self, streams: Any, stream_arn: str, invoke: Invoke, dead_letters: Callable[[str], Any]
    ) -> None:
        self._streams = streams
        self._arn = stream_arn
        self._invoke = invoke
        self._dead_letters = dead_letters
        self._after: dict[str, str] = {}
        self.delivered = 0

    def poll(self) -> None:
        shards = self._streams.describe_stream(StreamArn=self._arn)["StreamDescription"]["Shards"]
        settled = datetime.now(UTC).timestamp() - self.SETTLE_S
        for shard in shards:
            shard_id = shard["ShardId"]
            after = self._after.get(shard_id)
            position: dict[str, Any] = (
                {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
                if after
                else {"ShardIteratorType": "TRIM_HORIZON"}
            )
            iterator = self._streams.get_shard_iterator(
                StreamArn=self._arn, ShardId=shard_id, **position
            )["ShardIterator"]
            response = self._streams.get_records(ShardIterator=iterator, Limit=BATCH_SIZE)
            records = []
            for raw in response["Records"]:
                if raw["dynamodb"]["ApproximateCreationDateTime"].timestamp() > settled:
                    break
                records.append(_lambda_record(raw, self._arn))
            if not records:
                continue
            money = [r for r in records if is_money(r)]
            if money:
                self._deliver(money)
            self._after[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        pending, delay = records, 0.2
        for _ in range(MAX_ATTEMPTS):
            try:
                result = self._invoke({"Records": pending}) or {}
                failures = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])]
            except Exception:  # the function crashed: the whole batch is retried
                logger.exception("audit forwarder failed")
                failures = [pending[0]["dynamodb"]["SequenceNumber"]]
            if not failures:
                self.delivered += len(pending)
                return
            first = min(int(sequence) for sequence in failures)
            done = [r for r in pending if int(r["dynamodb"]["SequenceNumber"]) < first]
            self.delivered += len(done)
            pending = [r for r in pending if int(r["dynamodb"]["SequenceNumber"]) >= first]
            time.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)
        first_sequence = pending[0]["dynamodb"]["SequenceNumber"]
        logger.error("audit forwarding gave up; batch sent to the DLQ")
        self._dead_letters(
            f'{{"source": "ledger-stream", "first_sequence": "{first_sequence}", '
            f'"records": {len(pending)}}}'
        )


class AuditStreamSource:
    """The audit stream as Lambda's Kinesis event source reads it, into the sealer."""

    def __init__(self, stream: AuditStream, stream_arn: str, invoke: Invoke) -> None:
        self._stream = stream
        self._arn = stream_arn
        self._invoke = invoke
        self._after: dict[str, str | None] = {}

    def poll(self) -> None:
        for shard in self._stream.shards():
            for batch in self._stream.read(shard, after=self._after.get(shard), limit=500):
                self._deliver(shard, batch)
                self._after[shard] = batch[-1].sequence

    def _deliver(self, shard: str, batch: list[StreamRecord]) -> None:
        """A failure propagates: the shard's position stays, so the next poll retries the
        batch (the chain must not skip one) while the other readers carry on."""
        self._invoke({"Records": [_kinesis_record(shard, r, self._arn) for r in batch]})


class FirehoseDelivery:
    """Firehose's stand-in: the audit stream, buffered, into the archive's events/ prefix."""

    def __init__(self, stream: AuditStream, archive: AuditArchive) -> None:
        self._stream = stream
        self._archive = archive
        self._after: dict[str, str | None] = {}
        self._buffer: list[bytes] = []
        self._since = time.monotonic()

    def poll(self) -> None:
        for shard in self._stream.shards():
            for batch in self._stream.read(shard, after=self._after.get(shard), limit=500):
                # Firehose's processors: decompress, extract the messages, one per line
                self._buffer += [line for record in batch for line in unpack(record.data)]
                self._after[shard] = batch[-1].sequence
        if self._buffer and time.monotonic() - self._since >= FIREHOSE_BUFFER_S:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        now = datetime.now(UTC)
        key = (
            f"{AUDIT_ARCHIVE.events_prefix}{now:%Y/%m/%d/%H}/"
            f"payplat-audit-{now:%Y-%m-%d-%H-%M-%S-%f}-{uuid.uuid4()}.gz"
        )
        self._archive.put_events(key, self._buffer)
        self._buffer, self._since = [], time.monotonic()


class AuditPipeline:
    """Runs the three readers on one background thread until stopped."""

    def __init__(self, *readers: Any) -> None:
        self._readers = readers
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-pipeline", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.poll()  # what arrived last still reaches the archive
        for reader in self._readers:
            if isinstance(reader, FirehoseDelivery):
                reader.flush()

    def poll(self) -> None:
        for reader in self._readers:
            try:
                reader.poll()
            except Exception:  # moto restarting, a network blip: the next tick tries again
                logger.exception("audit pipeline poll failed")

    def _run(self) -> None:
        while not self._stop.wait(POLL_INTERVAL_S):
            self.poll()


def _lambda_record(record: dict[str, Any], arn: str) -> dict[str, Any]:
    """A DynamoDB stream record as Lambda delivers it (times as epoch seconds)."""
    images = dict(record["dynamodb"])
    created = images.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        images["ApproximateCreationDateTime"] = created.timestamp()
    return {**record, "dynamodb": images, "eventSourceARN": arn}


def _kinesis_record(shard: str, record: StreamRecord, arn: str) -> dict[str, Any]:
    arrived = datetime.fromisoformat(record.arrived).timestamp()
    return {
        "eventSource": "aws:kinesis",
        "eventID": f"{shard}:{record.sequence}",
        "eventSourceARN": arn,
        "kinesis": {
            "sequenceNumber": record.sequence,
            "data": base64.b64encode(record.data).decode("ascii"),
            "approximateArrivalTimestamp": arrived,
            "partitionKey": "",
        },
    }
