"""Create payplat's AWS resources in moto from the definitions the CDK app uses
(infra/resources.py), and return the environment the functions need to find them."""

from __future__ import annotations

from typing import Any

import boto3

from infra.resources import (
    AUDIT_ARCHIVE,
    AUDIT_SEALING_KEY,
    AUDIT_STREAM,
    SIGNING_KEY,
    TABLES,
    SigningKeySpec,
    TableSpec,
)
from payplat.config import Env


def provision(session: boto3.Session | None = None) -> dict[str, str]:
    session = session or boto3.Session()
    dynamodb = session.client("dynamodb")
    for spec in TABLES:
        _create_table(dynamodb, spec)
    kms = session.client("kms")
    key_id = _create_key(kms, SIGNING_KEY, "payplat access-token signing key (local)")
    sealing_key_id = _create_key(kms, AUDIT_SEALING_KEY, "payplat audit sealing key (local)")
    kinesis = session.client("kinesis")
    kinesis.create_stream(StreamName=AUDIT_STREAM.local_name, ShardCount=AUDIT_STREAM.shards)
    kinesis.get_waiter("stream_exists").wait(StreamName=AUDIT_STREAM.local_name)
    _create_archive(session.client("s3"))
    return {
        **{spec.env: spec.local_name for spec in TABLES},
        Env.SIGNING_KEY_ID: key_id,
        Env.AUDIT_SEALING_KEY_ID: sealing_key_id,
        AUDIT_STREAM.env: AUDIT_STREAM.local_name,
        AUDIT_ARCHIVE.env: AUDIT_ARCHIVE.local_name,
    }


def _create_archive(s3: Any) -> None:
    """The archive bucket under Object Lock in compliance mode, as the CDK app makes it."""
    region = s3.meta.region_name
    location = {} if region == "us-east-1" else {"LocationConstraint": region}
    s3.create_bucket(
        Bucket=AUDIT_ARCHIVE.local_name,
        ObjectLockEnabledForBucket=True,
        **({"CreateBucketConfiguration": location} if location else {}),
    )
    s3.put_object_lock_configuration(
        Bucket=AUDIT_ARCHIVE.local_name,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {
                "DefaultRetention": {"Mode": "COMPLIANCE", "Days": AUDIT_ARCHIVE.retention_days}
            },
        },
    )


def _create_table(dynamodb: Any, spec: TableSpec) -> None:
    keys = [(spec.partition_key, "HASH")]
    if spec.sort_key:
        keys.append((spec.sort_key, "RANGE"))
    attributes = {name for name, _ in keys}
    indexes = []
    for index in spec.indexes:
        index_keys = [(index.partition_key, "HASH")]
        if index.sort_key:
            index_keys.append((index.sort_key, "RANGE"))
        attributes |= {name for name, _ in index_keys}
        indexes.append(
            {
                "IndexName": index.name,
                "KeySchema": [{"AttributeName": n, "KeyType": t} for n, t in index_keys],
                "Projection": {"ProjectionType": "ALL"},
            }
        )
    request: dict[str, Any] = {
        "TableName": spec.local_name,
        "KeySchema": [{"AttributeName": n, "KeyType": t} for n, t in keys],
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"} for name in sorted(attributes)
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "SSESpecification": {"Enabled": True},
    }
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    if spec.stream:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
    dynamodb.create_table(**request)
    if spec.ttl_attribute:
        dynamodb.update_time_to_live(
            TableName=spec.local_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
        )


def _create_key(kms: Any, spec: SigningKeySpec, description: str) -> str:
    key_id: str = kms.create_key(
        KeySpec=spec.key_spec, KeyUsage=spec.key_usage, Description=description
    )["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=spec.alias, TargetKeyId=key_id)
    return key_id
