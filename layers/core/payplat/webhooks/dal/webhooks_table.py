"""The webhooks table. Layout (pk / sk):

- endpoint `OWNER#<owner>` / `ENDPOINT#<we_id>` (its URL, subscribed types, secrets, version);
- the owner's copy of an event `OWNER#<owner>` / `EVENT#<evt_id>` (its body and how many of
  the owner's deliveries are pending), one per owner: a tenant lists its events with one
  query, newest first (ids sort by time);
- the event `EVENT#<evt_id>` / `EVENT` (body, owners, whether its deliveries are queued),
  written with a conditional put: the audit event it comes from makes it once;
- its deliveries `EVENT#<evt_id>` / `DELIVERY#<whd_id>` (status, attempts claimed, lease,
  next retry) and their attempts `EVENT#<evt_id>` / `ATTEMPT#<whd_id>#<n>`.

Events, deliveries and attempts expire by TTL (`ttl`); endpoints stay until deleted.
"""

from __future__ import annotations

from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from payplat.payments.dal.idempotency_items import claim_from, claim_put, get_claim
from payplat.payments.idempotency import IdempotencyClaim, KeyTaken
from payplat.webhooks.objects import (
    ENDPOINT,
    EVENT,
    PENDING,
    Attempt,
    Delivery,
    Endpoint,
    Event,
    endpoint_from_record,
)

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize
_CONDITION_FAILED = "ConditionalCheckFailedException"


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serialize(v) for k, v in values.items() if v is not None}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserialize(v) for k, v in item.items()}


def _owner(owner: str) -> str:
    return f"OWNER#{owner}"


def _event_pk(event_id: str) -> str:
    return f"EVENT#{event_id}"


def _condition_failed(exc: ClientError) -> bool:
    return bool(exc.response["Error"]["Code"] == _CONDITION_FAILED)


class DynamoWebhookStore:
    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self._table = table_name
        self._given = client

    @property
    def _client(self) -> Any:
        # Made on first use, not at import: most payments requests never touch webhooks, and
        # the cold start should not pay for it.
        if self._given is None:
            self._given = boto3.client("dynamodb")
        return self._given

    # -- endpoints ------------------------------------------------------------------------------

    def put_endpoint(self, endpoint: Endpoint, claim: IdempotencyClaim | None = None) -> None:
        """A new endpoint, with the claim of the key it was asked with, if any (one
        transaction: raises KeyTaken if the key was spent before)."""
        put = {
            "TableName": self._table,
            "Item": _item(_endpoint_item(endpoint)),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        if claim is None:
            self._client.put_item(**put)
        elif not self._with_claim({"Put": put}, claim):
            raise RuntimeError(f"endpoint id {endpoint.id} exists already")

    def endpoint(self, owner: str, endpoint_id: str) -> Endpoint | None:
        item = self._get(_owner(owner), f"{ENDPOINT}#{endpoint_id}")
        return None if item is None else endpoint_from_record(item)

    def endpoints_of(self, owner: str) -> list[Endpoint]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :kind)",
            "ExpressionAttributeValues": _item({":pk": _owner(owner), ":kind": f"{ENDPOINT}#"}),
            "ConsistentRead": True,
        }
        endpoints: list[Endpoint] = []
        while True:
            response = self._client.query(**query)
            endpoints += [endpoint_from_record(_plain(item)) for item in response["Items"]]
            if "LastEvaluatedKey" not in response:
                return endpoints
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def replace_endpoint(
        self, endpoint: Endpoint, expected_version: int, claim: IdempotencyClaim | None = None
    ) -> bool:
        """False if the endpoint is not at `expected_version` any more; with a claim, one
        transaction that raises KeyTaken if the key was spent before."""
        put = {
            "TableName": self._table,
            "Item": _item(_endpoint_item(endpoint)),
            "ConditionExpression": "version = :expected",
            "ExpressionAttributeValues": _item({":expected": expected_version}),
        }
        if claim is not None:
            return self._with_claim({"Put": put}, claim)
        try:
            self._client.put_item(**put)
        except ClientError as exc:
            if _condition_failed(exc):
                return False
            raise
        return True

    # -- idempotency keys -------------------------------------------------------------------

    def idempotency_claim(self, namespace: str, key: str) -> IdempotencyClaim | None:
        return get_claim(self._client, self._table, namespace, key)

    def put_claim(self, claim: IdempotencyClaim) -> None:
        """Spend a key on its own (raises KeyTaken if it was spent before)."""
        try:
            self._client.put_item(**claim_put(self._table, claim)["Put"])
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            raise KeyTaken(claim_from(exc.response["Item"])) from None

    def _with_claim(self, write: dict[str, Any], claim: IdempotencyClaim) -> bool:
        """`write` and the claim in one transaction; False if the write's own condition
        failed, KeyTaken if the key was spent before."""
        try:
            self._client.transact_write_items(TransactItems=[write, claim_put(self._table, claim)])
        except self._client.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons") or []
            if len(reasons) == 2 and "Item" in reasons[1]:
                raise KeyTaken(claim_from(reasons[1]["Item"])) from None
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return False
            raise
        return True

    def delete_endpoint(self, owner: str, endpoint_id: str) -> bool:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=_item({"pk": _owner(owner), "sk": f"{ENDPOINT}#{endpoint_id}"}),
                ConditionExpression="attribute_exists(pk)",
            )
        except ClientError as exc:
            if _condition_failed(exc):
                return False
            raise
        return True

    # -- an owner's endpoints and events, a page at a time ---------------------------------------

    def page(
        self,
        kind: str,
        owner: str,
        *,
        limit: int,
        after: str | None,
        before: str | None,
        event_type: str | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of the owner's `kind` items, newest first (ids sort by time); filtering
        by type reads on until the page is full, so `limit` and `has_more` stay exact. The
        cursor ids must be the owner's (the caller checks)."""
        cursor = after if after is not None else before
        newest_first = before is None
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :kind)",
            "ExpressionAttributeValues": _item({":pk": _owner(owner), ":kind": f"{kind}#"}),
            "ScanIndexForward": not newest_first,
            "ConsistentRead": True,
        }
        if event_type is not None:
            query["FilterExpression"] = "#type = :type"
            query["ExpressionAttributeNames"] = {"#type": "type"}
            query["ExpressionAttributeValues"][":type"] = _serialize(event_type)
        if cursor is not None:
            query["ExclusiveStartKey"] = _item({"pk": _owner(owner), "sk": f"{kind}#{cursor}"})
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

    # -- events ----------------------------------------------------------------------------------

    def put_event(self, event: Event, expires_at: int) -> bool:
        main = {
            "pk": _event_pk(event.id),
            "sk": EVENT,
            "id": event.id,
            "type": event.type,
            "created": event.created,
            "owners": list(event.owners),
            "body": event.body,
            "audit_event": event.audit_event,
            "dispatched": False,
            "ttl": expires_at,
        }
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _item(main),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        for owner in event.owners:
            copy = {
                "pk": _owner(owner),
                "sk": f"{EVENT}#{event.id}",
                "id": event.id,
                "type": event.type,
                "created": event.created,
                "body": event.body,
                "pending_webhooks": 0,
                "ttl": expires_at,
            }
            items.append({"Put": {"TableName": self._table, "Item": _item(copy)}})
        try:
            self._client.transact_write_items(TransactItems=items)
        except self._client.exceptions.TransactionCanceledException as exc:
            if _reason(exc, 0) == "ConditionalCheckFailed":
                return False
            raise
        return True

    def event(self, event_id: str) -> Event | None:
        item = self._get(_event_pk(event_id), EVENT)
        if item is None:
            return None
        return Event(
            id=item["id"],
            type=item["type"],
            created=int(item["created"]),
            owners=tuple(item.get("owners") or ()),
            body=item["body"],
            audit_event=item.get("audit_event") or "",
            dispatched=bool(item.get("dispatched")),
        )

    def owner_event(self, owner: str, event_id: str) -> tuple[Event, int] | None:
        item = self._get(_owner(owner), f"{EVENT}#{event_id}")
        if item is None:
            return None
        event = Event(
            id=item["id"],
            type=item["type"],
            created=int(item["created"]),
            owners=(owner,),
            body=item["body"],
            audit_event="",
        )
        return event, int(item.get("pending_webhooks") or 0)

    def mark_dispatched(self, event_id: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=_item({"pk": _event_pk(event_id), "sk": EVENT}),
            UpdateExpression="SET dispatched = :yes",
            ExpressionAttributeValues=_item({":yes": True}),
        )

    # -- deliveries ------------------------------------------------------------------------------

    def add_delivery(self, delivery: Delivery, expires_at: int) -> bool:
        record = {
            "pk": _event_pk(delivery.event),
            "sk": f"DELIVERY#{delivery.id}",
            "id": delivery.id,
            "event": delivery.event,
            "endpoint": delivery.endpoint,
            "owner": delivery.owner,
            "created": delivery.created,
            "status": PENDING,
            "attempts": 0,
            "lease_until": 0,
            "ttl": expires_at,
        }
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": _item(record),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    _count_pending(self._table, delivery, +1),
                ]
            )
        except self._client.exceptions.TransactionCanceledException as exc:
            if _reason(exc, 0) == "ConditionalCheckFailed":
                return False
            raise
        return True

    def delivery(self, event_id: str, delivery_id: str) -> Delivery | None:
        item = self._get(_event_pk(event_id), f"DELIVERY#{delivery_id}")
        return None if item is None else _delivery_from(item)

    def deliveries(self, event_id: str) -> list[Delivery]:
        """Every delivery of an event (operators and tests)."""
        return [_delivery_from(item) for item in self._query_event(event_id, "DELIVERY#")]

    def attempts(self, event_id: str) -> list[dict[str, Any]]:
        """Every recorded attempt of an event's deliveries, in order (operators and tests)."""
        return self._query_event(event_id, "ATTEMPT#")

    def claim(
        self, event_id: str, delivery_id: str, attempt: int, now: int, lease_until: int
    ) -> Delivery | None:
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=_item({"pk": _event_pk(event_id), "sk": f"DELIVERY#{delivery_id}"}),
                UpdateExpression=(
                    "SET attempts = :n, lease_until = :lease, last_attempt_at = :now, "
                    "first_attempt_at = if_not_exists(first_attempt_at, :now)"
                ),
                # Attempt n goes after n-1, or again when attempt n was claimed by a run that
                # crashed (its lease, set and not yet released, has run out).
                ConditionExpression=(
                    "#status = :pending AND (attempts = :previous OR "
                    "(attempts = :n AND lease_until > :zero AND lease_until < :now))"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_item(
                    {
                        ":n": attempt,
                        ":previous": attempt - 1,
                        ":lease": lease_until,
                        ":now": now,
                        ":zero": 0,
                        ":pending": PENDING,
                    }
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _condition_failed(exc):
                return None
            raise
        return _delivery_from(_plain(response["Attributes"]))

    def reschedule(self, delivery: Delivery, attempt: int, next_retry_at: int, result: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_item({"pk": _event_pk(delivery.event), "sk": f"DELIVERY#{delivery.id}"}),
                UpdateExpression=(
                    "SET next_retry_at = :next, last_result = :result, lease_until = :zero"
                ),
                ConditionExpression="#status = :pending AND attempts = :n",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_item(
                    {
                        ":next": next_retry_at,
                        ":result": result,
                        ":zero": 0,
                        ":pending": PENDING,
                        ":n": attempt,
                    }
                ),
            )
        except ClientError as exc:
            if not _condition_failed(exc):  # the next attempt has begun already: fine
                raise

    def finish(self, delivery: Delivery, attempt: int, status: str, result: str, now: int) -> bool:
        update = {
            "Update": {
                "TableName": self._table,
                "Key": _item({"pk": _event_pk(delivery.event), "sk": f"DELIVERY#{delivery.id}"}),
                "UpdateExpression": (
                    "SET #status = :status, last_result = :result, finished_at = :now, "
                    "lease_until = :zero REMOVE next_retry_at"
                ),
                "ConditionExpression": "#status = :pending AND attempts = :n",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": _item(
                    {
                        ":status": status,
                        ":result": result,
                        ":now": now,
                        ":zero": 0,
                        ":pending": PENDING,
                        ":n": attempt,
                    }
                ),
            }
        }
        try:
            self._client.transact_write_items(
                TransactItems=[update, _count_pending(self._table, delivery, -1)]
            )
        except self._client.exceptions.TransactionCanceledException as exc:
            if _reason(exc, 0) == "ConditionalCheckFailed":
                return False  # finished by another copy of the message
            if _reason(exc, 1) != "ConditionalCheckFailed":
                raise
            # The owner's copy of the event has expired: the delivery still gets its ending.
            self._client.update_item(**update["Update"])
        return True

    def record_attempt(self, attempt: Attempt, expires_at: int) -> None:
        values = {
            "pk": _event_pk(attempt.event),
            "sk": f"ATTEMPT#{attempt.delivery}#{attempt.number:04d}",
            "delivery": attempt.delivery,
            "endpoint": attempt.endpoint,
            "attempt": attempt.number,
            "at": attempt.at,
            "result": attempt.result,
            "delivered": attempt.delivered,
            "duration_ms": attempt.duration_ms,
            "next_retry_at": attempt.next_retry_at,
            "ttl": expires_at,
        }
        self._client.put_item(TableName=self._table, Item=_item(values))

    # -- reads ---------------------------------------------------------------------------------

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table, Key=_item({"pk": pk, "sk": sk}), ConsistentRead=True
        )
        return _plain(response["Item"]) if "Item" in response else None

    def _query_event(self, event_id: str, prefix: str) -> list[dict[str, Any]]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": _item({":pk": _event_pk(event_id), ":prefix": prefix}),
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:
            response = self._client.query(**query)
            items += [_plain(item) for item in response["Items"]]
            if "LastEvaluatedKey" not in response:
                return items
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _endpoint_item(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "pk": _owner(endpoint.owner),
        "sk": f"{ENDPOINT}#{endpoint.id}",
        "id": endpoint.id,
        "owner": endpoint.owner,
        "url": endpoint.url,
        "enabled_events": list(endpoint.enabled_events),
        "description": endpoint.description,
        "status": endpoint.status,
        "created": endpoint.created,
        "client_id": endpoint.client_id,
        "version": endpoint.version,
        # Signing secrets are stored as they are (HMAC needs them), in a table encrypted at
        # rest that only the payments and dispatcher functions may read.
        "secrets": [_secret_item(secret.value, secret.expires_at) for secret in endpoint.secrets],
    }


def _secret_item(value: str, expires_at: int | None) -> dict[str, Any]:
    return {"value": value} if expires_at is None else {"value": value, "expires_at": expires_at}


def _count_pending(table: str, delivery: Delivery, change: int) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": table,
            "Key": _item({"pk": _owner(delivery.owner), "sk": f"{EVENT}#{delivery.event}"}),
            "UpdateExpression": "ADD pending_webhooks :change",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": _item({":change": change}),
        }
    }


def _delivery_from(item: dict[str, Any]) -> Delivery:
    def number(name: str) -> int | None:
        value = item.get(name)
        return None if value is None else int(value)

    return Delivery(
        id=item["id"],
        event=item["event"],
        endpoint=item["endpoint"],
        owner=item["owner"],
        created=int(item["created"]),
        status=item["status"],
        attempts=int(item.get("attempts") or 0),
        first_attempt_at=number("first_attempt_at"),
        next_retry_at=number("next_retry_at"),
        last_result=item.get("last_result"),
    )


def _reason(exc: Exception, index: int) -> str | None:
    reasons = getattr(exc, "response", {}).get("CancellationReasons", [])
    return reasons[index].get("Code") if index < len(reasons) else None
