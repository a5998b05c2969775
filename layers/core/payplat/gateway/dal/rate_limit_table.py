"""The rate-limits table: bucket items (pk `BUCKET#<scope>#<subject>#<shard>`) and plans
(pk `PLAN#<name>`). The limiter's writes become single conditional UpdateItems here (or one
TransactWriteItems when a request charges two buckets)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from payplat.gateway.limiter import BucketState, LimiterUnavailable, ProofReplayed, ProofUse, Write
from payplat.gateway.plans import Limits

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize

# Attribute names; every one goes through a placeholder (DAY, MONTH and TTL are reserved).
_NAMES = {
    "#tat": "tat_us",
    "#day": "day_id",
    "#day_used": "day_used",
    "#month": "month_id",
    "#month_used": "month_used",
    "#revoked": "revoked",
    "#revoked_before": "revoked_before",
    "#ttl": "ttl",
}


class DynamoBucketStore:
    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self._table = table_name
        self._client: Any = client or boto3.client("dynamodb")

    # -- the limiter's writes -------------------------------------------------------------

    def charge(
        self, writes: Sequence[Write], proof: ProofUse | None = None
    ) -> tuple[bool, list[BucketState | None]]:
        try:
            if len(writes) == 1 and proof is None:
                return self._charge_one(writes[0])
            return self._charge_all(writes, proof)
        except (BotoCoreError, ClientError) as exc:
            raise LimiterUnavailable(str(exc)) from exc

    def _charge_one(self, write: Write) -> tuple[bool, list[BucketState | None]]:
        try:
            response = self._client.update_item(
                **_update(self._table, write),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            return False, [_state(exc.response.get("Item"))]
        return True, [_state(response.get("Attributes"))]

    def _charge_all(
        self, writes: Sequence[Write], proof: ProofUse | None = None
    ) -> tuple[bool, list[BucketState | None]]:
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    **_update(self._table, w),
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
            for w in writes
        ]
        if proof is not None:
            # A small item of its own, not a set in the bucket item: DynamoDB bills a write
            # by the whole item's size, and a busy client's recent jtis would make every
            # charge cost tens of write units. One TransactWriteItems all the same.
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "pk": {"S": proof.key},
                            "ttl": {"N": str(proof.expires_at)},
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        try:
            self._client.transact_write_items(TransactItems=items)
        except self._client.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons", [])
            failed = [r.get("Code") == "ConditionalCheckFailed" for r in reasons]
            if proof is not None and len(failed) > len(writes) and failed[len(writes)]:
                raise ProofReplayed() from None
            if not any(failed):
                raise  # a conflict or throttle, not a limit: unavailable
            return False, [
                _state(r.get("Item")) if r.get("Code") == "ConditionalCheckFailed" else None
                for r in reasons[: len(writes)]
            ]
        return True, [None] * len(writes)

    # -- DPoP nonces ---------------------------------------------------------------------

    def nonce(self, window: int, expires_at: int) -> str:
        key = {"pk": {"S": f"DPOP_NONCE#{window}"}}
        found = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        if "Item" in found:
            return str(found["Item"]["nonce"]["S"])
        try:
            made = secrets.token_urlsafe(24)
            self._client.put_item(
                TableName=self._table,
                Item={**key, "nonce": {"S": made}, "ttl": {"N": str(expires_at)}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            found = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
            return str(found["Item"]["nonce"]["S"])  # another container's, a moment ago
        return made

    # -- revocation (written to every shard of a client's bucket) --------------------------

    def revoke_token(self, keys: Iterable[str], jti: str, expires_at: int) -> None:
        for key in keys:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression="SET #revoked = if_not_exists(#revoked, :empty)",
                ExpressionAttributeNames={"#revoked": "revoked"},
                ExpressionAttributeValues={":empty": {"M": {}}},
            )
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression="SET #revoked.#jti = :exp",
                ExpressionAttributeNames={"#revoked": "revoked", "#jti": jti},
                ExpressionAttributeValues={":exp": {"N": str(expires_at)}},
            )

    def revoke_before(self, keys: Iterable[str], issued_at_or_before: int) -> None:
        for key in keys:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression="SET #rb = :t",
                ExpressionAttributeNames={"#rb": "revoked_before"},
                ExpressionAttributeValues={":t": {"N": str(issued_at_or_before)}},
            )

    # -- plans ------------------------------------------------------------------------------

    def get_plan(self, name: str) -> Limits | None:
        item = self._client.get_item(TableName=self._table, Key={"pk": {"S": f"PLAN#{name}"}})
        return _plan(item["Item"]) if "Item" in item else None

    def put_plan(self, plan: Limits) -> None:
        item = {
            "pk": f"PLAN#{plan.name}",
            "name": plan.name,
            "rate_per_s": Decimal(str(plan.rate_per_s)),
            "burst": plan.burst,
            "daily_quota": plan.daily_quota,
            "monthly_quota": plan.monthly_quota,
            "shards": plan.shards,
        }
        self._client.put_item(
            TableName=self._table,
            Item={k: _serialize(v) for k, v in item.items() if v is not None},
        )

    def list_plans(self) -> list[Limits]:
        pages = self._client.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="begins_with(pk, :plan)",
            ExpressionAttributeValues={":plan": {"S": "PLAN#"}},
        )
        return [_plan(item) for page in pages for item in page["Items"]]


def _update(table: str, write: Write) -> dict[str, Any]:
    sets = ["#ttl = :ttl"]
    conditions: list[str] = []
    values: dict[str, Any] = {":ttl": write.expires_at}
    names = dict(_NAMES)
    if write.busy:
        sets.append("#tat = #tat + :inc")
        conditions.append("#tat > :now AND #tat <= :tat_limit")
        values.update({":inc": write.increment_us, ":now": write.now_us})
        values[":tat_limit"] = write.tat_limit_us
    else:
        sets.append("#tat = :new_tat")
        conditions.append("(attribute_not_exists(#tat) OR #tat <= :now)")
        values.update({":new_tat": write.new_tat_us, ":now": write.now_us})
    for prefix, window, same, room in (
        ("day", write.day, write.day_same, write.day_room),
        ("month", write.month, write.month_same, write.month_room),
    ):
        if window is None:
            continue
        values[f":{prefix}"] = window
        values[":cost"] = write.cost
        if same:
            sets.append(f"#{prefix}_used = #{prefix}_used + :cost")
            conditions.append(f"#{prefix} = :{prefix} AND #{prefix}_used <= :{prefix}_room")
            values[f":{prefix}_room"] = room
        else:
            sets.extend([f"#{prefix} = :{prefix}", f"#{prefix}_used = :cost"])
            conditions.append(f"(attribute_not_exists(#{prefix}) OR #{prefix} <> :{prefix})")
    if write.jti is not None:
        names["#jti"] = write.jti
        conditions.append("attribute_not_exists(#revoked.#jti)")
    if write.issued_at is not None:
        conditions.append("(attribute_not_exists(#revoked_before) OR #revoked_before < :iat)")
        values[":iat"] = write.issued_at
    expression = "SET " + ", ".join(sets)
    # Whole placeholders: "#revoked" is a prefix of "#revoked_before", and DynamoDB refuses
    # a name the expressions do not use.
    used = set(re.findall(r"#\w+", expression + " " + " AND ".join(conditions)))
    return {
        "TableName": table,
        "Key": {"pk": {"S": write.key}},
        "UpdateExpression": expression,
        "ConditionExpression": " AND ".join(conditions),
        "ExpressionAttributeNames": {k: v for k, v in names.items() if k in used},
        "ExpressionAttributeValues": {k: _serialize(v) for k, v in values.items()},
    }


def _state(item: dict[str, Any] | None) -> BucketState | None:
    if item is None:
        return BucketState()  # the condition failed on an item that does not exist yet
    data = {key: _deserialize(value) for key, value in item.items()}
    return BucketState(
        tat_us=int(data["tat_us"]) if "tat_us" in data else None,
        day=data.get("day_id"),
        day_used=int(data.get("day_used", 0)),
        month=data.get("month_id"),
        month_used=int(data.get("month_used", 0)),
        revoked_before=int(data["revoked_before"]) if "revoked_before" in data else None,
        revoked_jtis=frozenset(data.get("revoked", {})),
    )


def _plan(item: dict[str, Any]) -> Limits:
    data = {key: _deserialize(value) for key, value in item.items()}
    return Limits(
        name=data["name"],
        rate_per_s=float(data["rate_per_s"]),
        burst=int(data["burst"]),
        daily_quota=int(data["daily_quota"]) if "daily_quota" in data else None,
        monthly_quota=int(data["monthly_quota"]) if "monthly_quota" in data else None,
        shards=int(data.get("shards", 0)),
    )
