"""moto, made as atomic as DynamoDB (infra/local/atomic_dynamodb.py): concurrent conditional
writes to one item never both pass a condition only one of them may pass, nor lose an update.
Without the lock this fails on a busy machine (16 threads, a cap of 40: 42 writes succeeded
and 42 stored; in another run 44 succeeded and 40 were stored)."""

from __future__ import annotations

import threading
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from payplat.config import Env

THREADS = 16
CAP = 40


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_conditional_increments_stop_exactly_at_the_cap(
    aws: dict[str, str], round_: int
) -> None:
    table = aws[Env.RATE_LIMITS_TABLE]
    key = {"pk": {"S": f"atomic-{uuid.uuid4().hex}"}}
    succeeded = 0
    lock = threading.Lock()
    ready = threading.Barrier(THREADS)

    refusals: list[str] = []

    def worker() -> None:
        nonlocal succeeded
        client = boto3.client("dynamodb")
        ready.wait()
        while True:
            try:
                client.update_item(
                    TableName=table,
                    Key=key,
                    UpdateExpression="ADD n :one",
                    ConditionExpression="attribute_not_exists(n) OR n < :cap",
                    ExpressionAttributeValues={":one": {"N": "1"}, ":cap": {"N": str(CAP)}},
                )
            except ClientError as error:
                refusals.append(error.response["Error"]["Code"])
                return
            with lock:
                succeeded += 1

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stored = boto3.client("dynamodb").get_item(TableName=table, Key=key)["Item"]["n"]["N"]
    assert (succeeded, int(stored)) == (CAP, CAP)
    assert refusals == ["ConditionalCheckFailedException"] * THREADS
