"""Reads of the ledger table for finance reports (`payplat report`, the local /ops page).

The table has no index by creation time across owners, so a report scans; the filter and
projection keep what crosses the wire to the payment and refund items of the range, and to
the fields a report reads (a scan still reads, and is billed for, the whole table — fine for
an operator's report, not for a request path)."""

from __future__ import annotations

from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize
# What payplat.ops.finance reads of a payment or refund item.
REPORT_FIELDS = (
    "pk", "sk", "id", "payment", "payee", "currency", "amount", "amount_captured",
    "amount_refunded", "status", "cancellation_reason", "created",
)  # fmt: skip


def money_records(
    table_name: str, since: int, until: int, client: Any | None = None
) -> list[dict[str, Any]]:
    """The payment and refund items created in [since, until), as plain dicts."""
    names = {f"#f{i}": name for i, name in enumerate(REPORT_FIELDS)}
    alias = {name: key for key, name in names.items()}
    request: dict[str, Any] = {
        "TableName": table_name,
        "ConsistentRead": True,
        "ProjectionExpression": ", ".join(names),
        "FilterExpression": (
            f"({alias['sk']} = :payment OR begins_with({alias['sk']}, :refund))"
            f" AND {alias['created']} BETWEEN :since AND :last"
        ),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {
            ":payment": _serialize("PAYMENT"),
            ":refund": _serialize("REFUND#"),
            ":since": _serialize(since),
            ":last": _serialize(until - 1),
        },
    }
    dynamodb: Any = client or boto3.client("dynamodb")
    records: list[dict[str, Any]] = []
    while True:
        response = dynamodb.scan(**request)
        records += [{k: _deserialize(v) for k, v in item.items()} for item in response["Items"]]
        if "LastEvaluatedKey" not in response:
            return records
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
