"""Clients in DynamoDB (one item per client, key `client_id`)."""

from __future__ import annotations

from typing import Any

import boto3

from payplat.clients import Client


class DynamoClientStore:
    def __init__(self, table_name: str, resource: Any | None = None) -> None:
        self._table = (resource or boto3.resource("dynamodb")).Table(table_name)

    def get(self, client_id: str) -> Client | None:
        item = self._table.get_item(Key={"client_id": client_id}, ConsistentRead=True).get("Item")
        return None if item is None else _client(item)

    def put(self, client: Client) -> None:
        self._table.put_item(
            Item={
                "client_id": client.client_id,
                "name": client.name,
                "secret_hash": client.secret_hash,
                "scopes": sorted(client.scopes),
                "grant_types": sorted(client.grant_types),
                "owner": client.owner,
                "plan": client.plan,
                "status": client.status,
                "created_at": client.created_at,
            },
            ConditionExpression="attribute_not_exists(client_id)",
        )

    def update(self, client_id: str, **attributes: str) -> Client | None:
        """Set `attributes` on an existing client; None if there is no such client."""
        names = {f"#{name}": name for name in attributes}
        values = {f":{name}": value for name, value in attributes.items()}
        try:
            response = self._table.update_item(
                Key={"client_id": client_id},
                UpdateExpression="SET " + ", ".join(f"#{n} = :{n}" for n in attributes),
                ConditionExpression="attribute_exists(client_id)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            return None
        return _client(response["Attributes"])

    def list(self) -> list[Client]:
        pages = self._table.meta.client.get_paginator("scan").paginate(TableName=self._table.name)
        # The resource's client hands back plain Python values, as the table does.
        return [_client(item) for page in pages for item in page["Items"]]


def _client(item: dict[str, Any]) -> Client:
    return Client(
        client_id=item["client_id"],
        name=item["name"],
        secret_hash=item["secret_hash"],
        scopes=frozenset(item.get("scopes", [])),
        grant_types=frozenset(item.get("grant_types", [])),
        owner=item["owner"],
        plan=item.get("plan", "standard"),
        status=item.get("status", "active"),
        created_at=item.get("created_at", ""),
    )
