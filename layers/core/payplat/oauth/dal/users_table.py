"""Users in DynamoDB (one item per user, key `username`)."""

from __future__ import annotations

from typing import Any

import boto3

from payplat.oauth.users import User, UserExists


class DynamoUserStore:
    def __init__(self, table_name: str, resource: Any | None = None) -> None:
        self._table = (resource or boto3.resource("dynamodb")).Table(table_name)

    def get(self, username: str) -> User | None:
        item = self._table.get_item(Key={"username": username}, ConsistentRead=True).get("Item")
        return None if item is None else _user(item)

    def put(self, user: User) -> None:
        try:
            self._table.put_item(
                Item={
                    "username": user.username,
                    "user_id": user.user_id,
                    "display_name": user.display_name,
                    "password_hash": user.password_hash,
                    "status": user.status,
                    "created_at": user.created_at,
                },
                # Two sign-ups for one name: the second must fail, not overwrite the first.
                ConditionExpression="attribute_not_exists(username)",
            )
        except self._table.meta.client.exceptions.ConditionalCheckFailedException as error:
            raise UserExists(f"username {user.username!r} is taken") from error

    def list(self) -> list[User]:
        pages = self._table.meta.client.get_paginator("scan").paginate(TableName=self._table.name)
        # The resource's client hands back plain Python values, as the table does.
        return [_user(item) for page in pages for item in page["Items"]]


def _user(item: dict[str, Any]) -> User:
    return User(
        username=item["username"],
        user_id=item["user_id"],
        display_name=item["display_name"],
        password_hash=item["password_hash"],
        status=item.get("status", "active"),
        created_at=item.get("created_at", ""),
    )
