"""The ledger table: payments (and, later, accounts, entries and idempotency records).

A payment item: pk `PAYMENT#<id>`, sk `PAYMENT`, and on the `by_owner` index gsi1pk
`OWNER#<owner>`, gsi1sk `PAYMENT#<created>#<id>` so a tenant's payments list newest first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key

BY_OWNER = "by_owner"
_CURSOR_KEYS = ("pk", "sk", "gsi1pk", "gsi1sk")
_INTERNAL = (*_CURSOR_KEYS, "ttl", "owner")


class DynamoLedgerStore:
    def __init__(self, table_name: str, resource: Any | None = None) -> None:
        self._table = (resource or boto3.resource("dynamodb")).Table(table_name)

    def get_payment(self, owner: str, payment_id: str) -> Mapping[str, Any] | None:
        item = self._table.get_item(Key={"pk": f"PAYMENT#{payment_id}", "sk": "PAYMENT"}).get(
            "Item"
        )
        if item is None or item.get("owner") != owner:
            return None
        return dict(item)

    def list_payments(
        self,
        owner: str,
        *,
        limit: int,
        after: Mapping[str, Any] | None,
        before: Mapping[str, Any] | None,
    ) -> tuple[Sequence[Mapping[str, Any]], bool]:
        # The cursor's own keys resume the index walk just past it, in either direction.
        cursor = after if after is not None else before
        newest_first = before is None
        query: dict[str, Any] = {
            "IndexName": BY_OWNER,
            "KeyConditionExpression": Key("gsi1pk").eq(f"OWNER#{owner}")
            & Key("gsi1sk").begins_with("PAYMENT#"),
            "ScanIndexForward": not newest_first,
            "Limit": limit + 1,
        }
        if cursor is not None:
            query["ExclusiveStartKey"] = {name: cursor[name] for name in _CURSOR_KEYS}
        response = self._table.query(**query)
        items = response.get("Items", [])
        has_more = len(items) > limit
        items = items[:limit]
        if not newest_first:
            items.reverse()
        return [_public(item) for item in items], has_more


def _public(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key not in _INTERNAL}
