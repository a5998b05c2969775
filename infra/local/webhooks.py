"""What AWS runs around λ webhook_dispatcher, run locally by the runner (one background
thread), against moto:

- the queues of infra/resources.py (the delivery queue with its redrive policy into the DLQ);
- Lambda's Kinesis event source: the audit stream, shard by shard in order, into the
  dispatcher; a reported record failure is retried from that record on (the records before
  it are done), up to the attempts the CDK mapping allows, then skipped with an error logged;
- Lambda's SQS event source: batches of up to 10 messages from the delivery queue (moto
  honours DelaySeconds, visibility timeouts and the redrive policy); what the function did
  not report as failed is deleted, the rest comes back after the visibility timeout.

Deliveries go wherever the endpoints point: in local mode, http on loopback is allowed, so a
test's receiver on 127.0.0.1 gets them.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import boto3

from infra.resources import QUEUES, QueueSpec

logger = logging.getLogger(__name__)

# Each poll is two calls to moto when idle (GetRecords, ReceiveMessage): light next to the
# audit pipeline's readers, and a webhook still arrives within a second or two.
POLL_INTERVAL_S = 0.25
SQS_BATCH_SIZE = 10  # Lambda's SQS event source default
KINESIS_BATCH_SIZE = 100
KINESIS_MAX_ATTEMPTS = 10  # as the CDK event source mapping (infra/constructs)
MAX_BATCHES_PER_POLL = 20

Invoke = Callable[[dict[str, Any]], Any]


def provision_queues(session: boto3.Session | None = None) -> dict[str, str]:
    """Create the queues in moto as the CDK app declares them; env var -> queue URL."""
    sqs = (session or boto3.Session()).client("sqs")
    urls: dict[str, str] = {}
    arns: dict[str, str] = {}
    for spec in _dead_letters_first(QUEUES):
        attributes = {
            "MessageRetentionPeriod": str(spec.retention_s),
            "VisibilityTimeout": str(spec.visibility_timeout_s),
        }
        if spec.dead_letter is not None:
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": arns[spec.dead_letter],
                    "maxReceiveCount": str(spec.max_receive_count),
                }
            )
        url = sqs.create_queue(QueueName=spec.local_name, Attributes=attributes)["QueueUrl"]
        arns[spec.id] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        urls[spec.env] = url
    return urls


def _dead_letters_first(specs: tuple[QueueSpec, ...]) -> list[QueueSpec]:
    return sorted(specs, key=lambda spec: spec.dead_letter is not None)


class DeliveryQueueSource:
    """The delivery queue as Lambda's SQS event source reads it."""

    def __init__(self, sqs: Any, queue_url: str, queue_arn: str, invoke: Invoke) -> None:
        self._sqs = sqs
        self._url = queue_url
        self._arn = queue_arn
        self._invoke = invoke
        self.delivered = 0

    def poll(self) -> None:
        for _ in range(MAX_BATCHES_PER_POLL):
            messages = self._sqs.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=SQS_BATCH_SIZE,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return
            event = {"Records": [self._record(message) for message in messages]}
            try:
                result = self._invoke(event) or {}
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            except Exception:  # the function crashed: every message comes back
                logger.exception("webhook dispatcher failed on a delivery batch")
                failed = {message["MessageId"] for message in messages}
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                self._sqs.delete_message_batch(
                    QueueUrl=self._url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(done)
                    ],
                )
            self.delivered += len(done)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._arn,
            "awsRegion": self._arn.split(":")[3],
        }


class AuditRecordsSource:
    """The audit stream as Lambda's Kinesis event source reads it for the dispatcher (its own
    position: the sealer's reader is another consumer of the same stream). Each shard's
    iterator is kept between polls, so an idle poll is one GetRecords call."""

    def __init__(self, kinesis: Any, stream_name: str, stream_arn: str, invoke: Invoke) -> None:
        self._kinesis = kinesis
        self._stream = stream_name
        self._arn = stream_arn
        self._invoke = invoke
        self._shards: list[str] = []
        self._iterators: dict[str, str | None] = {}
        self._after: dict[str, str] = {}  # shard -> last sequence handled
        self._attempts: dict[str, int] = {}  # sequence -> failed attempts

    def poll(self) -> None:
        if not self._shards:  # one shard locally, and it never splits
            self._shards = [
                shard["ShardId"]
                for shard in self._kinesis.list_shards(StreamName=self._stream)["Shards"]
            ]
        for shard in self._shards:
            for _ in range(MAX_BATCHES_PER_POLL):
                try:
                    more = self._read(shard)
                except Exception:
                    self._iterators[shard] = None  # a fresh one from the position next time
                    raise
                if not more:
                    break

    def _read(self, shard: str) -> bool:
        """One batch of the shard into the dispatcher; True if there may be more now."""
        iterator = self._iterators.get(shard) or self._iterator(shard)
        response = self._kinesis.get_records(ShardIterator=iterator, Limit=KINESIS_BATCH_SIZE)
        records = response["Records"]
        self._iterators[shard] = response.get("NextShardIterator")
        if not records:
            return False
        done = self._deliver(shard, records)
        if done is not None:
            self._after[shard] = done
        if done != records[-1]["SequenceNumber"]:
            self._iterators[shard] = None  # read again from the failed record
            return False
        return True

    def _iterator(self, shard: str) -> str:
        after = self._after.get(shard)
        position: dict[str, Any] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after}
            if after
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        iterator: str = self._kinesis.get_shard_iterator(
            StreamName=self._stream, ShardId=shard, **position
        )["ShardIterator"]
        return iterator

    def _deliver(self, shard: str, records: list[dict[str, Any]]) -> str | None:
        """The sequence number of the last record handled (None: none was)."""
        event = {"Records": [self._record(shard, record) for record in records]}
        sequences = [str(record["SequenceNumber"]) for record in records]
        try:
            result = self._invoke(event) or {}
            failures = [str(f["itemIdentifier"]) for f in result.get("batchItemFailures", [])]
        except Exception:  # the function crashed: the batch is retried whole
            logger.exception("webhook dispatcher failed on an audit batch")
            failures = [sequences[0]]
        if not failures:
            return sequences[-1]
        first = min(failures, key=int)
        attempts = self._attempts[first] = self._attempts.get(first, 0) + 1
        if attempts >= KINESIS_MAX_ATTEMPTS:  # as Lambda gives up: past it, with a record
            logger.error("webhook dispatcher gave up on audit record %s", first)
            return first
        position = sequences.index(first)
        return sequences[position - 1] if position else self._after.get(shard)

    def _record(self, shard: str, record: dict[str, Any]) -> dict[str, Any]:
        arrived = record.get("ApproximateArrivalTimestamp")
        return {
            "eventSource": "aws:kinesis",
            "eventID": f"{shard}:{record['SequenceNumber']}",
            "eventSourceARN": self._arn,
            "kinesis": {
                "sequenceNumber": record["SequenceNumber"],
                "data": base64.b64encode(bytes(record["Data"])).decode("ascii"),
                "approximateArrivalTimestamp": (
                    arrived.timestamp() if isinstance(arrived, datetime) else time.time()
                ),
                "partitionKey": record.get("PartitionKey", ""),
            },
        }


class WebhookPipeline:
    """Runs the two event sources on one background thread until stopped."""

    def __init__(self, *sources: Any) -> None:
        self._sources = sources
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-pipeline", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def poll(self) -> None:
        for source in self._sources:
            try:
                source.poll()
            except Exception:  # moto restarting, a network blip: the next tick tries again
                logger.exception("webhook pipeline poll failed")

    def _run(self) -> None:
        while not self._stop.wait(POLL_INTERVAL_S):
            self.poll()


def webhook_pipeline(names: dict[str, str]) -> WebhookPipeline:
    """The dispatcher on the audit stream and on the delivery queue (what its two event
    source mappings do in AWS). One function instance serves both, one call at a time."""
    from infra.local.gateway import LocalFunction
    from infra.resources import AUDIT_STREAM, WEBHOOK_DISPATCHER_TIMEOUT_S, WEBHOOK_QUEUE

    dispatcher = LocalFunction("webhook_dispatcher", timeout_s=WEBHOOK_DISPATCHER_TIMEOUT_S)
    kinesis = boto3.client("kinesis")
    stream = names[AUDIT_STREAM.env]
    stream_arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
        "StreamARN"
    ]
    sqs = boto3.client("sqs")
    queue_url = names[WEBHOOK_QUEUE.env]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    return WebhookPipeline(
        AuditRecordsSource(kinesis, stream, stream_arn, dispatcher.invoke),
        DeliveryQueueSource(sqs, queue_url, queue_arn, dispatcher.invoke),
    )
