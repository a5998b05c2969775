"""The ledger table: accounts and payments (and, later, entries and idempotency records).

An object item: pk `<KIND>#<id>`, sk `<KIND>`, and on the `by_owner` index gsi1pk
`OWNER#<owner>`, gsi1sk `<KIND>#<created>#<id>`, so a tenant's objects of one kind list newest
first. A cursor is the named object's own keys, and resumes the index walk just past it.
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

    def get(self, kind: str, owner: str, object_id: str) -> dict[str, Any] | None:
        """The object as the API shows it, if it exists and belongs to `owner`."""
        item = self._item(kind, owner, object_id)
        return None if item is None else _public(item)

    def cursor(self, kind: str, owner: str, object_id: str) -> Mapping[str, Any] | None:
        """An opaque position just past `object_id` — only within the owner's own objects."""
        item = self._item(kind, owner, object_id)
        return None if item is None else {name: item[name] for name in _CURSOR_KEYS}

    def list(
        self,
        kind: str,
        owner: str,
        *,
        limit: int,
        after: Mapping[str, Any] | None,
        before: Mapping[str, Any] | None,
    ) -> tuple[Sequence[Mapping[str, Any]], bool]:
        cursor = after if after is not None else before
        newest_first = before is None
        query: dict[str, Any] = {
            "IndexName": BY_OWNER,
            "KeyConditionExpression": Key("gsi1pk").eq(f"OWNER#{owner}")
            & Key("gsi1sk").begins_with(f"{kind}#"),
            "ScanIndexForward": not newest_first,
            "Limit": limit + 1,
        }
        if cursor is not None:
            query["ExclusiveStartKey"] = dict(cursor)
        items = self._table.query(**query).get("Items", [])
        has_more = len(items) > limit
        items = items[:limit]
        if not newest_first:
            items.reverse()
        return [_public(item) for item in items], has_more

    def _item(self, kind: str, owner: str, object_id: str) -> dict[str, Any] | None:
        key = {"pk": f"{kind}#{object_id}", "sk": kind}
        item = self._table.get_item(Key=key).get("Item")
        if item is None or item.get("owner") != owner:
            return None
        return dict(item)


def _public(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key not in _INTERNAL}
