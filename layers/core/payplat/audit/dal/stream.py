"""The Kinesis audit stream: writing events (the forwarder) and reading them back in order
(`payplat audit tail`, the local runner's stand-ins for Lambda's and Firehose's readers)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer

from payplat.audit.chain import StreamRecord

PUT_RECORDS_MAX = 500  # the Kinesis limit per PutRecords call


@dataclass(frozen=True, slots=True)
class Outgoing:
    partition_key: str
    data: bytes


class AuditStream:
    def __init__(self, stream: str, client: Any | None = None) -> None:
        self.name = stream
        self._client: Any = client or boto3.client("kinesis")

    def put(self, records: Sequence[Outgoing]) -> set[int]:
        """Write `records`; returns the positions of those Kinesis refused (throttled, or the
        whole call failed), for the caller to retry."""
        failed: set[int] = set()
        for start in range(0, len(records), PUT_RECORDS_MAX):
            chunk = records[start : start + PUT_RECORDS_MAX]
            try:
                response = self._client.put_records(
                    StreamName=self.name,
                    Records=[{"Data": r.data, "PartitionKey": r.partition_key} for r in chunk],
                )
            except Exception:  # the stream is unreachable: every record of the chunk failed
                failed.update(range(start, start + len(chunk)))
                continue
            failed.update(
                start + i for i, result in enumerate(response["Records"]) if "ErrorCode" in result
            )
        return failed

    def shards(self) -> list[str]:
        return [s["ShardId"] for s in self._client.list_shards(StreamName=self.name)["Shards"]]

    def read(
        self,
        shard: str,
        *,
        after: str | None = None,
        latest: bool = False,
        limit: int = 1000,
    ) -> Iterator[list[StreamRecord]]:
        """Batches of the shard's records from the start (or after a sequence number, or
        from now), until the shard has nothing more right now."""
        iterator = self._iterator(shard, after, latest)
        while iterator:
            response = self._client.get_records(ShardIterator=iterator, Limit=limit)
            records = [
                StreamRecord(
                    sequence=r["SequenceNumber"],
                    data=bytes(r["Data"]),
                    arrived=_iso(r.get("ApproximateArrivalTimestamp")),
                )
                for r in response["Records"]
            ]
            if not records:
                return
            yield records
            iterator = response.get("NextShardIterator")

    def _iterator(self, shard: str, after: str | None, latest: bool) -> str:
        position: dict[str, Any] = {"ShardIteratorType": "TRIM_HORIZON"}
        if after is not None:
            position = {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "StartingSequenceNumber": after,
            }
        elif latest:
            position = {"ShardIteratorType": "LATEST"}
        iterator: str = self._client.get_shard_iterator(
            StreamName=self.name, ShardId=shard, **position
        )["ShardIterator"]
        return iterator


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds")
    return datetime.now(UTC).isoformat(timespec="milliseconds")


_deserialize = TypeDeserializer().deserialize


def plain_stream_record(record: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB stream record with its keys and images as plain values (what
    payplat.payments.ledger_audit reads), the rest as delivered."""
    images = dict(record.get("dynamodb") or {})
    for name in ("Keys", "NewImage", "OldImage"):
        if name in images:
            images[name] = {k: _deserialize(v) for k, v in images[name].items()}
    return {**record, "dynamodb": images}
