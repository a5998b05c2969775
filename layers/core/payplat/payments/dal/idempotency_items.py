"""Idempotency claims as DynamoDB items, in whichever table holds the change they answer for
(the ledger, webhooks): `IDEMPOTENCY#<namespace>#<sha256 of the key>` (the namespace: the client, or
the client and the account holder it acts for) / `IDEMPOTENCY`, expiring
by the table's `ttl`. The key itself is not stored: it is the partner's, and only its digest
is needed to find the claim."""

from __future__ import annotations

import hashlib
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from payplat.payments.idempotency import IdempotencyClaim

SK = "IDEMPOTENCY"

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


def claim_key(namespace: str, key: str) -> dict[str, Any]:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return {"pk": {"S": f"IDEMPOTENCY#{namespace}#{digest}"}, "sk": {"S": SK}}


def claim_put(table: str, claim: IdempotencyClaim) -> dict[str, Any]:
    """A transaction's Put of the claim: it fails (returning the stored one) if the key was
    claimed before."""
    values = {
        "namespace": claim.namespace,
        "request_hash": claim.request_hash,
        "status": claim.status,
        "body": claim.body,
        "ttl": claim.expires_at,
    }
    return {
        "Put": {
            "TableName": table,
            "Item": {
                **claim_key(claim.namespace, claim.key),
                **{k: _serialize(v) for k, v in values.items()},
            },
            "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def claim_from(item: dict[str, Any]) -> IdempotencyClaim:
    """A claim from its item, in DynamoDB's typed form (as GetItem and cancellation reasons
    return it)."""
    data = {k: _deserialize(v) for k, v in item.items()}
    return IdempotencyClaim(
        # Claims stored before namespaces had the client's id (the same value for a client
        # acting for itself); they expire within a day.
        namespace=data.get("namespace", data.get("client_id", "")),
        key="",
        request_hash=data["request_hash"],
        status=int(data["status"]),
        body=data["body"],
        expires_at=int(data["ttl"]),
    )


def get_claim(client: Any, table: str, namespace: str, key: str) -> IdempotencyClaim | None:
    item = client.get_item(TableName=table, Key=claim_key(namespace, key), ConsistentRead=True).get(
        "Item"
    )
    return None if item is None else claim_from(item)
