"""The ledger table. Layout (pk / sk):

- account `ACCOUNT#<id>` / `ACCOUNT` (balances `available`, `held`), and its immutable
  entries `ACCOUNT#<id>` / `ENTRY#<created>#<id>`;
- payment `PAYMENT#<id>` / `PAYMENT` (the authoritative state; while awaiting capture also on
  the sparse `by_expiry` index), one view per party `PAYMENT#<id>` / `VIEW#<owner>` (a copy
  on the `by_owner` index, so a tenant lists its payments with one query), and its refunds
  `PAYMENT#<id>` / `REFUND#<created>#<id>`;
- idempotency claims `IDEMPOTENCY#<client>#<sha256(key)>` / `IDEMPOTENCY`, expiring by TTL.

Accounts and payment views carry `gsi1pk = OWNER#<owner>`, `gsi1sk = <KIND>#<created>#<id>`.
Each Movement becomes ONE TransactWriteItems: the idempotency claim, the payment, the balance
updates and the entries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from payplat.payments.dal.idempotency_items import claim_from, claim_put, get_claim
from payplat.payments.idempotency import IdempotencyClaim, KeyTaken
from payplat.payments.ledger import (
    Account,
    BalanceChange,
    Entry,
    Movement,
    MovementRefused,
    Payment,
    Refund,
    TransactionConflict,
)

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize
BY_OWNER = "by_owner"
_CURSOR_KEYS = ("pk", "sk", "gsi1pk", "gsi1sk")
PENDING = "PENDING_CAPTURE"
_IN_FLIGHT = (
    "TransactionInProgressException",
    "IdempotentParameterMismatchException",
)  # the sparse expiry index's one partition


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serialize(v) for k, v in values.items() if v is not None}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserialize(v) for k, v in item.items()}


def _created_key(created: int, object_id: str) -> str:
    return f"{created:012d}#{object_id}"


def payment_item(payment: Payment) -> dict[str, Any]:
    return payment.record()


class DynamoLedgerStore:
    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self._table = table_name
        self._client: Any = client or boto3.client("dynamodb")

    # -- reads --------------------------------------------------------------------------------

    def account(self, account_id: str) -> Account | None:
        item = self._get(f"ACCOUNT#{account_id}", "ACCOUNT")
        return None if item is None else Account.from_record(item)

    def payment(self, payment_id: str) -> Payment | None:
        item = self._get(f"PAYMENT#{payment_id}", "PAYMENT")
        return None if item is None else Payment.from_record(item)

    def claim(self, namespace: str, key: str) -> IdempotencyClaim | None:
        return get_claim(self._client, self._table, namespace, key)

    def refunds(self, payment_id: str) -> list[Refund]:
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :refund)",
            ExpressionAttributeValues=_item({":pk": f"PAYMENT#{payment_id}", ":refund": "REFUND#"}),
            ScanIndexForward=False,
            ConsistentRead=True,
        )
        return [Refund.from_record(_plain(item)) for item in response["Items"]]

    def expired_authorizations(self, now: int, limit: int = 100) -> list[str]:
        response = self._client.query(
            TableName=self._table,
            IndexName="by_expiry",
            KeyConditionExpression="gsi2pk = :pending AND gsi2sk <= :now",
            ExpressionAttributeValues=_item({":pending": PENDING, ":now": f"{now:012d}"}),
            Limit=limit,
        )
        return [_plain(item)["id"] for item in response["Items"]]

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table, Key=_item({"pk": pk, "sk": sk}), ConsistentRead=True
        )
        return _plain(response["Item"]) if "Item" in response else None

    # -- tenant-scoped reads on the by_owner index ---------------------------------------------

    def owned(self, kind: str, owner: str, object_id: str) -> dict[str, Any] | None:
        """The record of `object_id` if `owner` may see it (its account, its payment view)."""
        sk = "ACCOUNT" if kind == "ACCOUNT" else f"VIEW#{owner}"
        item = self._get(f"{kind}#{object_id}", sk)
        if item is None or item.get("owner") != owner:
            return None
        return item

    def accounts_of(self, owner: str, limit: int = 50) -> list[tuple[str, str]]:
        """(account id, currency) of the holder's accounts, oldest first (the consent page)."""
        items, _ = self.page("ACCOUNT", owner, limit=limit, after=None, before=None)
        return [(item["id"], item["currency"]) for item in reversed(items)]

    def cursor(self, kind: str, owner: str, object_id: str) -> dict[str, Any] | None:
        """An opaque position just past `object_id` — only within the owner's own objects."""
        item = self.owned(kind, owner, object_id)
        return None if item is None else {name: item[name] for name in _CURSOR_KEYS}

    def page(
        self,
        kind: str,
        owner: str,
        *,
        limit: int,
        after: dict[str, Any] | None,
        before: dict[str, Any] | None,
        created_from: int | None = None,
        created_to: int | None = None,
        status: str | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of the owner's objects of `kind`, newest first; filtering by status keeps
        reading until the page is full, so `limit` and `has_more` stay exact."""
        cursor = after if after is not None else before
        newest_first = before is None
        low = f"{kind}#{(created_from or 0):012d}"
        high = f"{kind}#{(created_to if created_to is not None else 10**12 - 1):012d}~"
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BY_OWNER,
            "KeyConditionExpression": "gsi1pk = :owner AND gsi1sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": _item(
                {":owner": f"OWNER#{owner}", ":low": low, ":high": high}
            ),
            "ScanIndexForward": not newest_first,
        }
        if status is not None:
            query["FilterExpression"] = "#status = :status"
            query["ExpressionAttributeNames"] = {"#status": "status"}
            query["ExpressionAttributeValues"][":status"] = _serialize(status)
        if cursor is not None:
            query["ExclusiveStartKey"] = _item(dict(cursor))
        items: list[dict[str, Any]] = []
        while len(items) <= limit:
            response = self._client.query(**query, Limit=limit + 1 - len(items))
            items += [_plain(item) for item in response["Items"]]
            if "LastEvaluatedKey" not in response:
                break
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        has_more = len(items) > limit
        items = items[:limit]
        if not newest_first:
            items.reverse()
        return items, has_more

    def entries(
        self, account_id: str, *, limit: int, after: str | None
    ) -> tuple[list[dict[str, Any]], bool]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :entry)",
            "ExpressionAttributeValues": _item(
                {":pk": f"ACCOUNT#{account_id}", ":entry": "ENTRY#"}
            ),
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if after is not None:
            query["ExclusiveStartKey"] = _item({"pk": f"ACCOUNT#{account_id}", "sk": after})
        items = [_plain(item) for item in self._client.query(**query)["Items"]]
        return items[:limit], len(items) > limit

    # -- seeding --------------------------------------------------------------------------------

    def open_account(self, account: Account) -> None:
        values = {
            "pk": f"ACCOUNT#{account.id}",
            "sk": "ACCOUNT",
            "gsi1pk": f"OWNER#{account.owner}",
            "gsi1sk": f"ACCOUNT#{_created_key(account.created, account.id)}",
            "id": account.id,
            "object": "account",
            "owner": account.owner,
            "currency": account.currency,
            "available": account.available,
            "held": account.held,
            "created": account.created,
        }
        self._client.put_item(
            TableName=self._table,
            Item=_item(values),
            ConditionExpression="attribute_not_exists(pk)",
        )

    # -- the one transaction of a movement ------------------------------------------------------

    def commit(self, movement: Movement, entries: Sequence[Entry]) -> None:
        items: list[dict[str, Any]] = []
        refusals: list[str] = []
        if movement.claim is not None:
            items.append(claim_put(self._table, movement.claim))
            refusals.append("claim")
        for item, refusal in _payment_writes(self._table, movement):
            items.append(item)
            refusals.append(refusal)
        for change in movement.balances:
            items.append(_balance_update(self._table, change))
            refusals.append(change.refusal)
        for entry in entries:
            items.append({"Put": {"TableName": self._table, "Item": _item(_entry_item(entry))}})
            refusals.append("entry")
        if movement.refund is not None:
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _item(_refund_item(movement.refund, movement)),
                    }
                }
            )
            refusals.append("refund")
        # No ClientRequestToken: a retried request builds new ids, which DynamoDB would refuse
        # as a token mismatch for 10 minutes; the claim item already makes a second commit of
        # the same key fail on its condition, and answer with the stored outcome.
        request: dict[str, Any] = {"TransactItems": items}
        try:
            self._client.transact_write_items(**request)
        except self._client.exceptions.TransactionCanceledException as exc:
            _raise_refusal(exc.response.get("CancellationReasons", []), refusals)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _IN_FLIGHT:
                raise TransactionConflict() from exc
            raise

    # -- the operator's full read ---------------------------------------------------------------

    def scan_records(self) -> list[dict[str, Any]]:
        """Every item of the table as a plain dict, for `payplat ledger verify`. Consistent
        per page, but not a snapshot: movements committing during the scan may show half."""
        request: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        records: list[dict[str, Any]] = []
        while True:
            response = self._client.scan(**request)
            records += [_plain(item) for item in response["Items"]]
            if "LastEvaluatedKey" not in response:
                return records
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- the pending-capture gauge --------------------------------------------------------------

    def pending_captures(self) -> dict[str, tuple[int, int]]:
        """Currency -> (how many, minor units held) of every authorization awaiting capture,
        due or not: the whole sparse `by_expiry` index, a page at a time, reading only the
        amount and currency. Eventually consistent (it is a gauge)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by_expiry",
            "KeyConditionExpression": "gsi2pk = :pending",
            "ExpressionAttributeValues": _item({":pending": PENDING}),
            "ProjectionExpression": "#amount, #currency",
            "ExpressionAttributeNames": {"#amount": "amount", "#currency": "currency"},
        }
        totals: dict[str, tuple[int, int]] = {}
        while True:
            response = self._client.query(**request)
            for item in response["Items"]:
                values = _plain(item)
                count, held = totals.get(values["currency"], (0, 0))
                totals[values["currency"]] = (count + 1, held + int(values["amount"]))
            if "LastEvaluatedKey" not in response:
                return totals
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _raise_refusal(reasons: list[dict[str, Any]], refusals: list[str]) -> None:
    for reason, refusal in zip(reasons, refusals, strict=False):
        code = reason.get("Code")
        if code == "ConditionalCheckFailed":
            if refusal == "claim" and "Item" in reason:
                raise KeyTaken(claim_from(reason["Item"]))
            raise MovementRefused(refusal, _plain(reason["Item"]) if "Item" in reason else None)
        if code == "TransactionConflict":
            raise TransactionConflict()
    raise TransactionConflict()


def _payment_writes(table: str, movement: Movement) -> list[tuple[dict[str, Any], str]]:
    write = movement.payment
    payment = write.payment
    key = {"pk": f"PAYMENT#{payment.id}"}
    owners = sorted({payment.payer, payment.payee})
    writes: list[tuple[dict[str, Any], str]] = []
    if movement.refund is not None:
        # Refunds add to amount_refunded (concurrent refunds commute) under the invariant.
        amount = movement.refund.amount
        writes.append(
            (
                {
                    "Update": {
                        "TableName": table,
                        "Key": _item({**key, "sk": "PAYMENT"}),
                        "UpdateExpression": "ADD amount_refunded :r SET actor = :actor",
                        "ConditionExpression": "#status = :succeeded AND amount_refunded <= :room",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": _item(
                            {
                                ":r": amount,
                                ":succeeded": "succeeded",
                                ":room": write.refundable_before,
                                ":actor": _actor(movement),
                            }
                        ),
                    }
                },
                "state",
            )
        )
        for owner in owners:
            writes.append(
                (
                    {
                        "Update": {
                            "TableName": table,
                            "Key": _item({**key, "sk": f"VIEW#{owner}"}),
                            "UpdateExpression": "ADD amount_refunded :r",
                            "ExpressionAttributeValues": _item({":r": amount}),
                        }
                    },
                    "view",
                )
            )
        return writes
    # Who made this change: the ledger stream's audit records name them (payments only: the
    # owners' views need not carry it).
    main = {
        **key,
        "sk": "PAYMENT",
        "object": "payment",
        **payment_item(payment),
        "actor": _actor(movement),
    }
    if payment.status == "requires_capture" and payment.expires_at is not None:
        main |= {"gsi2pk": PENDING, "gsi2sk": f"{payment.expires_at:012d}"}
    put: dict[str, Any] = {"TableName": table, "Item": _item(main)}
    if write.expect_status is None:
        put["ConditionExpression"] = "attribute_not_exists(pk)"
    else:
        put["ConditionExpression"] = "#status = :expected"
        put["ExpressionAttributeNames"] = {"#status": "status"}
        put["ExpressionAttributeValues"] = _item({":expected": write.expect_status})
    writes.append(({"Put": put}, "state"))
    for owner in owners:
        view = {
            **key,
            "sk": f"VIEW#{owner}",
            "gsi1pk": f"OWNER#{owner}",
            "gsi1sk": f"PAYMENT#{_created_key(payment.created, payment.id)}",
            "object": "payment",
            "owner": owner,
            **payment_item(payment),
        }
        writes.append(({"Put": {"TableName": table, "Item": _item(view)}}, "view"))
    return writes


def _balance_update(table: str, change: BalanceChange) -> dict[str, Any]:
    conditions = ["attribute_exists(pk)", "currency = :cur"]
    values: dict[str, Any] = {":cur": change.currency, ":da": change.available, ":dh": change.held}
    if change.available < 0:
        conditions.append("available >= :need_available")
        values[":need_available"] = -change.available
    if change.held < 0:
        conditions.append("held >= :need_held")
        values[":need_held"] = -change.held
    names = {}
    if change.owner is not None:
        conditions.append("#owner = :owner")
        names["#owner"] = "owner"
        values[":owner"] = change.owner
    update: dict[str, Any] = {
        "TableName": table,
        "Key": _item({"pk": f"ACCOUNT#{change.account}", "sk": "ACCOUNT"}),
        "UpdateExpression": "SET available = available + :da, held = held + :dh",
        "ConditionExpression": " AND ".join(conditions),
        "ExpressionAttributeValues": _item(values),
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    if names:
        update["ExpressionAttributeNames"] = names
    return {"Update": update}


def _entry_item(entry: Entry) -> dict[str, Any]:
    return {
        "pk": f"ACCOUNT#{entry.account}",
        "sk": f"ENTRY#{entry.id}",  # ids sort by time
        "id": entry.id,
        "object": "ledger_entry",
        "account": entry.account,
        "bucket": entry.bucket,
        "amount": entry.amount,
        "currency": entry.currency,
        "payment": entry.payment,
        "kind": entry.kind,
        "created": entry.created,
    }


def _actor(movement: Movement) -> dict[str, str]:
    return movement.actor.record() if movement.actor else {}


def _refund_item(refund: Refund, movement: Movement | None = None) -> dict[str, Any]:
    return {
        "pk": f"PAYMENT#{refund.payment}",
        "sk": f"REFUND#{_created_key(refund.created, refund.id)}",
        "id": refund.id,
        "payment": refund.payment,
        "amount": refund.amount,
        "currency": refund.currency,
        "created": refund.created,
        "reason": refund.reason,
        "metadata": dict(refund.metadata),
        "actor": _actor(movement) if movement else None,
    }
