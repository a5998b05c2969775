"""Clients in DynamoDB (one item per client, key `client_id`)."""

from __future__ import annotations

import json
from typing import Any

import boto3

from payplat.clients.registry import SECRET_BASIC, Client

# Stored as a JSON string: a JWK Set's members are not all DynamoDB-friendly (empty strings
# in lists, numbers as Decimals) and nothing queries inside it.
_JSON_ATTRIBUTES = frozenset({"jwks"})
_SET_ATTRIBUTES = frozenset({"scopes", "grant_types", "redirect_uris"})
MAX_CLIENT_ID_CHARS = 128  # ours are 28; anything longer is not one of ours


class DynamoClientStore:
    def __init__(self, table_name: str, resource: Any | None = None) -> None:
        self._table = (resource or boto3.resource("dynamodb")).Table(table_name)

    def get(self, client_id: str) -> Client | None:
        # An empty or oversized id is no client (DynamoDB would refuse it as a key: a 500).
        if not client_id or len(client_id) > MAX_CLIENT_ID_CHARS:
            return None
        item = self._table.get_item(Key={"client_id": client_id}, ConsistentRead=True).get("Item")
        return None if item is None else _client(item)

    def put(self, client: Client) -> None:
        item = {
            "client_id": client.client_id,
            "name": client.name,
            "secret_hash": client.secret_hash,
            "scopes": client.scopes,
            "grant_types": client.grant_types,
            "owner": client.owner,
            "plan": client.plan,
            "status": client.status,
            "created_at": client.created_at,
            "redirect_uris": client.redirect_uris,
            "auth_method": client.auth_method,
            "jwks": client.jwks,
            "previous_secret_hash": client.previous_secret_hash,
            "previous_secret_expires_at": client.previous_secret_expires_at,
            "registration_token_hash": client.registration_token_hash,
            "dpop_bound_access_tokens": client.dpop_bound_access_tokens or None,
            "require_pushed_authorization_requests": (
                client.require_pushed_authorization_requests or None
            ),
        }
        self._table.put_item(
            Item={name: _stored(name, value) for name, value in item.items() if value is not None},
            ConditionExpression="attribute_not_exists(client_id)",
        )

    def update(self, client_id: str, **attributes: Any) -> Client | None:
        """Set `attributes` on an existing client (None removes one); None if there is no
        such client."""
        names = {f"#{name}": name for name in attributes}
        values = {
            f":{name}": _stored(name, value)
            for name, value in attributes.items()
            if value is not None
        }
        sets = [f"#{name} = :{name}" for name, value in attributes.items() if value is not None]
        removes = [f"#{name}" for name, value in attributes.items() if value is None]
        expression = " ".join(
            part
            for part in (
                "SET " + ", ".join(sets) if sets else "",
                "REMOVE " + ", ".join(removes) if removes else "",
            )
            if part
        )
        request: dict[str, Any] = {
            "Key": {"client_id": client_id},
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(client_id)",
            "ExpressionAttributeNames": names,
            "ReturnValues": "ALL_NEW",
        }
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            response = self._table.update_item(**request)
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            return None
        return _client(response["Attributes"])

    def list(self) -> list[Client]:
        pages = self._table.meta.client.get_paginator("scan").paginate(TableName=self._table.name)
        # The resource's client hands back plain Python values, as the table does.
        return [_client(item) for page in pages for item in page["Items"]]


def _stored(name: str, value: Any) -> Any:
    if name in _JSON_ATTRIBUTES:
        return json.dumps(value, separators=(",", ":"))
    if name in _SET_ATTRIBUTES:
        return sorted(value)  # a list: DynamoDB sets cannot be empty
    return value


def _client(item: dict[str, Any]) -> Client:
    expires = item.get("previous_secret_expires_at")
    return Client(
        client_id=item["client_id"],
        name=item["name"],
        secret_hash=item.get("secret_hash"),
        scopes=frozenset(item.get("scopes", [])),
        grant_types=frozenset(item.get("grant_types", [])),
        owner=item["owner"],
        plan=item.get("plan", "standard"),
        status=item.get("status", "active"),
        created_at=item.get("created_at", ""),
        redirect_uris=tuple(item.get("redirect_uris", [])),
        auth_method=item.get("auth_method", SECRET_BASIC),
        jwks=json.loads(item["jwks"]) if "jwks" in item else None,
        previous_secret_hash=item.get("previous_secret_hash"),
        previous_secret_expires_at=None if expires is None else int(expires),
        registration_token_hash=item.get("registration_token_hash"),
        dpop_bound_access_tokens=bool(item.get("dpop_bound_access_tokens", False)),
        require_pushed_authorization_requests=bool(
            item.get("require_pushed_authorization_requests", False)
        ),
    )
