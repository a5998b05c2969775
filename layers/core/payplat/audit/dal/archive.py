"""The audit archive (an S3 bucket under Object Lock) and the seal chain's heads (the audit
table), and the KMS key that signs seals.

Layout of the bucket: `events/YYYY/MM/DD/HH/<object>` — what Firehose delivers from the audit
stream, gzip-compressed JSON lines; `seals/<stream>/<shard>/<index>.json` — the seals. The
table holds one head per shard, `HEAD#<stream>#<shard>`, moved by a conditional write.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from payplat.audit.chain import ChainHead, Seal

EVENTS_PREFIX = "events/"
SEALS_PREFIX = "seals/"


class AuditArchive:
    def __init__(
        self,
        bucket: str,
        table: str | None = None,
        *,
        s3: Any | None = None,
        dynamodb: Any | None = None,
    ) -> None:
        self._bucket = bucket
        self._table = table
        self._s3: Any = s3 or boto3.client("s3")
        self._dynamodb: Any = dynamodb or (boto3.client("dynamodb") if table else None)

    # -- the chain's heads (the sealer) -----------------------------------------------------

    def head(self, stream: str, shard: str) -> ChainHead | None:
        item = self._dynamodb.get_item(
            TableName=self._table, Key={"pk": {"S": _head_key(stream, shard)}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        return ChainHead(
            shard=shard,
            next_index=int(item["next_index"]["N"]),
            last_sequence=item["last_sequence"]["S"],
            digest=item["digest"]["S"],
        )

    def advance(self, stream: str, expected: ChainHead | None, new: ChainHead) -> bool:
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if expected is None
            else {
                "ConditionExpression": "next_index = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(expected.next_index)}},
            }
        )
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": _head_key(stream, new.shard)},
                    "next_index": {"N": str(new.next_index)},
                    "last_sequence": {"S": new.last_sequence},
                    "digest": {"S": new.digest},
                    "updated_at": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
                },
                **condition,
            )
        except self._dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def put_seal(self, seal: Seal) -> None:
        self._s3.put_object(
            Bucket=self._bucket,
            Key=seal_key(seal.stream, seal.shard, seal.index),
            Body=json.dumps(seal.document(), sort_keys=True).encode("utf-8"),
            ContentType="application/json",
            ChecksumAlgorithm="SHA256",  # Object Lock buckets take no upload without one
        )

    # -- reading back (payplat audit verify) ---------------------------------------------

    def seals(self) -> list[Seal]:
        return [Seal.from_document(json.loads(body)) for _, body in self._objects(SEALS_PREFIX)]

    def archived_events(self) -> list[bytes]:
        """Every archived record, in delivery order (object keys sort by delivery time)."""
        records: list[bytes] = []
        for _, stored in self._objects(EVENTS_PREFIX):
            body = gzip.decompress(stored) if stored[:2] == b"\x1f\x8b" else stored
            records += [line for line in body.split(b"\n") if line.strip()]
        return records

    def put_events(self, key: str, records: list[bytes]) -> None:
        """Deliver a batch as Firehose does (the local runner's stand-in for it)."""
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=gzip.compress(b"\n".join(records) + b"\n"),
            ChecksumAlgorithm="SHA256",
        )

    def _objects(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=prefix
        )
        keys = sorted(item["Key"] for page in pages for item in page.get("Contents", []))
        for key in keys:
            yield key, self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()


def seal_key(stream: str, shard: str, index: int) -> str:
    return f"{SEALS_PREFIX}{stream}/{shard}/{index:012d}.json"


def _head_key(stream: str, shard: str) -> str:
    return f"HEAD#{stream}#{shard}"


class KmsDigestSigner:
    """Signs a seal's digest with the audit sealing key (ECDSA P-256, SHA-256); the private
    key never leaves KMS. The message is the digest's hex string, signed RAW: KMS hashes it."""

    def __init__(self, key_id: str, client: Any | None = None) -> None:
        self.key_id = key_id
        self._client: Any = client or boto3.client("kms")

    def sign_digest(self, digest: str) -> str:
        response = self._client.sign(
            KeyId=self.key_id,
            Message=digest.encode("ascii"),
            MessageType="RAW",
            SigningAlgorithm="ECDSA_SHA_256",
        )
        return base64.b64encode(response["Signature"]).decode("ascii")


class KmsSignatureCheck:
    """Verifies seal signatures with the sealing keys' public halves (fetched once each)."""

    def __init__(self, client: Any | None = None) -> None:
        self._client: Any = client or boto3.client("kms")
        self._keys: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, key_id: str, digest: str, signature: str) -> bool:
        try:
            key = self._public_key(key_id)
            key.verify(
                base64.b64decode(signature), digest.encode("ascii"), ec.ECDSA(hashes.SHA256())
            )
        except (InvalidSignature, ValueError):
            return False
        return True

    def _public_key(self, key_id: str) -> Any:
        with self._lock:
            if key_id not in self._keys:
                der = self._client.get_public_key(KeyId=key_id)["PublicKey"]
                self._keys[key_id] = load_der_public_key(bytes(der))
            return self._keys[key_id]
