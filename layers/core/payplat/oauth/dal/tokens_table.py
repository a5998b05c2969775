"""The tokens table: the authorization server's state. Layout (pk / sk), every item expiring
by TTL once it can no longer matter:

- pending authorization requests `AUTHREQ#<id>` / `AUTHREQ` (between the authorize page's
  login and consent steps);
- pushed authorization requests `PAR#<sha256(request_uri)>` / `PAR` (RFC 9126: from the
  push until the authorize page redeems them, once);
- authorization codes `CODE#<sha256(code)>` / `CODE`;
- grant families `FAMILY#<id>` / `FAMILY` (status, the jti of every access token issued);
- refresh tokens `REFRESH#<sha256(token)>` / `REFRESH`;
- revoked access tokens `REVOKED#<jti>` / `REVOKED` (what introspection consults);
- used client assertions `ASSERTION#<client>#<jti>` / `ASSERTION` (replay protection);
- the signing-key registry `SIGNING_KEYS` / `SIGNING_KEYS` (versioned, no TTL).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Literal

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from payplat.oauth.grants import (
    ACTIVE,
    REVOKED,
    ROTATED,
    AuthorizationCode,
    Family,
    PendingAuthorization,
    PushedRequest,
    RefreshToken,
)
from payplat.oauth.signing_keys import ConcurrentRotation, SigningKey

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize
_KEYS_PK = "SIGNING_KEYS"


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serialize(v) for k, v in values.items() if v is not None}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserialize(v) for k, v in item.items()}


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


class DynamoTokenStore:
    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self._table = table_name
        self._client: Any = client or boto3.client("dynamodb")
        self._conditional = self._client.exceptions.ConditionalCheckFailedException

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table, Key=_key(pk, sk), ConsistentRead=True
        )
        return _plain(response["Item"]) if "Item" in response else None

    def _put_new(self, values: dict[str, Any]) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_item(values),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._conditional:
            return False
        return True

    # -- pending authorization requests ----------------------------------------------------

    def put_pending(self, pending: PendingAuthorization) -> None:
        values = asdict(pending)
        self._put_new(
            {
                "pk": f"AUTHREQ#{pending.request_id}",
                "sk": "AUTHREQ",
                **values,
                "ttl": pending.expires_at,
            }
        )

    def get_pending(self, request_id: str) -> PendingAuthorization | None:
        item = self._get(f"AUTHREQ#{request_id}", "AUTHREQ")
        if item is None:
            return None
        fields = PendingAuthorization.__dataclass_fields__
        values = {k: v for k, v in item.items() if k in fields}
        values["expires_at"] = int(values["expires_at"])
        return PendingAuthorization(**values)

    def set_pending_user(self, request_id: str, user_id: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=_key(f"AUTHREQ#{request_id}", "AUTHREQ"),
            UpdateExpression="SET user_id = :user",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":user": {"S": user_id}},
        )

    def take_pending(self, request_id: str) -> bool:
        """Delete the request; False if it was gone already (a second submit)."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=_key(f"AUTHREQ#{request_id}", "AUTHREQ"),
                ConditionExpression="attribute_exists(pk)",
            )
        except self._conditional:
            return False
        return True

    # -- pushed authorization requests (RFC 9126) --------------------------------------------

    def put_pushed(self, pushed: PushedRequest) -> None:
        self._put_new(
            {
                "pk": f"PAR#{pushed.request_uri_hash}",
                "sk": "PAR",
                "client_id": pushed.client_id,
                "parameters": json.dumps(pushed.parameters, separators=(",", ":")),
                "expires_at": pushed.expires_at,
                "ttl": pushed.expires_at,
            }
        )

    def take_pushed(self, request_uri_hash: str, client_id: str, now: int) -> PushedRequest | None:
        """One conditional delete: of two concurrent redemptions, one gets the request."""
        try:
            response = self._client.delete_item(
                TableName=self._table,
                Key=_key(f"PAR#{request_uri_hash}", "PAR"),
                ConditionExpression=(
                    "attribute_exists(pk) AND client_id = :client AND expires_at > :now"
                ),
                ExpressionAttributeValues=_item({":client": client_id, ":now": now}),
                ReturnValues="ALL_OLD",
            )
        except self._conditional:
            return None
        item = _plain(response["Attributes"])
        return PushedRequest(
            request_uri_hash=request_uri_hash,
            client_id=item["client_id"],
            parameters=json.loads(item["parameters"]),
            expires_at=int(item["expires_at"]),
        )

    # -- authorization codes, families, refresh tokens --------------------------------------

    def put_code(self, code: AuthorizationCode) -> None:
        values = {k: v for k, v in asdict(code).items() if k != "used"}
        self._put_new(
            {"pk": f"CODE#{code.code_hash}", "sk": "CODE", **values, "ttl": code.expires_at + 3600}
        )

    def get_code(self, code_hash: str) -> AuthorizationCode | None:
        item = self._get(f"CODE#{code_hash}", "CODE")
        if item is None:
            return None
        return AuthorizationCode(
            code_hash=code_hash,
            client_id=item["client_id"],
            redirect_uri=item["redirect_uri"],
            code_challenge=item["code_challenge"],
            scope=item["scope"],
            user_id=item["user_id"],
            family_id=item["family_id"],
            expires_at=int(item["expires_at"]),
            used="used_at" in item,
        )

    def redeem_code(
        self, code_hash: str, family: Family, refresh: RefreshToken | None, now: int
    ) -> bool:
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _key(f"CODE#{code_hash}", "CODE"),
                    "UpdateExpression": "SET used_at = :now",
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(used_at)",
                    "ExpressionAttributeValues": {":now": {"N": str(now)}},
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _family_item(family),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
        if refresh is not None:
            items.append({"Put": {"TableName": self._table, "Item": _refresh_item(refresh)}})
        try:
            self._client.transact_write_items(TransactItems=items)
        except self._client.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons", [])
            if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
                return False
            raise
        return True

    def start_family(self, family: Family, refresh: RefreshToken) -> None:
        self._client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _family_item(family),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {"Put": {"TableName": self._table, "Item": _refresh_item(refresh)}},
            ]
        )

    def get_refresh(self, token_hash: str) -> RefreshToken | None:
        item = self._get(f"REFRESH#{token_hash}", "REFRESH")
        if item is None:
            return None
        return RefreshToken(
            token_hash=token_hash,
            family_id=item["family_id"],
            client_id=item["client_id"],
            user_id=item["user_id"],
            scope=item["scope"],
            expires_at=int(item["expires_at"]),
            status=item["status"],
            jkt=item.get("jkt"),
        )

    def rotate_refresh(
        self, old: RefreshToken, new: RefreshToken, jti: str, now: int
    ) -> Literal["rotated", "reused", "revoked"]:
        items = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _key(f"REFRESH#{old.token_hash}", "REFRESH"),
                    "UpdateExpression": "SET #status = :rotated, rotated_at = :now",
                    "ConditionExpression": "#status = :active",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": _item(
                        {":rotated": ROTATED, ":active": ACTIVE, ":now": now}
                    ),
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _key(f"FAMILY#{old.family_id}", "FAMILY"),
                    "UpdateExpression": "ADD jtis :jti SET expires_at = :exp, #ttl = :exp",
                    "ConditionExpression": "#status = :active",
                    "ExpressionAttributeNames": {"#status": "status", "#ttl": "ttl"},
                    "ExpressionAttributeValues": _item(
                        {":jti": {jti}, ":active": ACTIVE, ":exp": new.expires_at}
                    ),
                }
            },
            {"Put": {"TableName": self._table, "Item": _refresh_item(new)}},
        ]
        try:
            self._client.transact_write_items(TransactItems=items)
        except self._client.exceptions.TransactionCanceledException as exc:
            codes = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if codes and codes[0] == "ConditionalCheckFailed":
                return "reused"
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                return "revoked"
            raise
        return "rotated"

    def add_family_jti(self, family_id: str, jti: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=_key(f"FAMILY#{family_id}", "FAMILY"),
            UpdateExpression="ADD jtis :jti",
            ExpressionAttributeValues={":jti": {"SS": [jti]}},
        )

    def get_family(self, family_id: str) -> Family | None:
        item = self._get(f"FAMILY#{family_id}", "FAMILY")
        return None if item is None else _family(item)

    def revoke_family(self, family_id: str) -> Family | None:
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=_key(f"FAMILY#{family_id}", "FAMILY"),
                UpdateExpression="SET #status = :revoked",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":revoked": {"S": REVOKED}},
                ReturnValues="ALL_OLD",
            )
        except self._conditional:
            return None
        return _family(_plain(response["Attributes"]))

    def revoke_refresh(self, token_hash: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_key(f"REFRESH#{token_hash}", "REFRESH"),
                UpdateExpression="SET #status = :revoked",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":revoked": {"S": REVOKED}},
            )
        except self._conditional:
            return

    # -- revocation list and client assertions ------------------------------------------------

    def revoke_jti(self, jti: str, client_id: str, expires_at: int) -> None:
        self._client.put_item(
            TableName=self._table,
            Item=_item(
                {"pk": f"REVOKED#{jti}", "sk": "REVOKED", "client_id": client_id, "ttl": expires_at}
            ),
        )

    def is_revoked(self, jti: str) -> bool:
        return self._get(f"REVOKED#{jti}", "REVOKED") is not None

    def claim_assertion(self, client_id: str, jti: str, expires_at: int) -> bool:
        return self._put_new(
            {"pk": f"ASSERTION#{client_id}#{jti}", "sk": "ASSERTION", "ttl": expires_at}
        )

    # -- the signing-key registry --------------------------------------------------------------

    def load_keys(self) -> tuple[list[SigningKey], int]:
        item = self._get(_KEYS_PK, _KEYS_PK)
        if item is None:
            return [], 0
        keys = [SigningKey(**key) for key in json.loads(item["keys"])]
        return keys, int(item["version"])

    def save_keys(self, keys: Sequence[SigningKey], expected_version: int) -> None:
        condition = "attribute_not_exists(pk)" if expected_version == 0 else "version = :expected"
        values = {":expected": {"N": str(expected_version)}} if expected_version else {}
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_item(
                    {
                        "pk": _KEYS_PK,
                        "sk": _KEYS_PK,
                        "keys": json.dumps([asdict(key) for key in keys]),
                        "version": expected_version + 1,
                    }
                ),
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        except self._conditional as exc:
            raise ConcurrentRotation("another rotation changed the keys; run it again") from exc


def _family_item(family: Family) -> dict[str, Any]:
    values = asdict(family)
    values["jtis"] = set(family.jtis) or None  # DynamoDB string sets cannot be empty
    return _item(
        {"pk": f"FAMILY#{family.family_id}", "sk": "FAMILY", **values, "ttl": family.expires_at}
    )


def _family(item: dict[str, Any]) -> Family:
    return Family(
        family_id=item["family_id"],
        client_id=item["client_id"],
        user_id=item["user_id"],
        scope=item["scope"],
        grant_type=item["grant_type"],
        expires_at=int(item["expires_at"]),
        status=item["status"],
        jtis=frozenset(item.get("jtis", ())),
    )


def _refresh_item(refresh: RefreshToken) -> dict[str, Any]:
    values = asdict(refresh)
    return _item(
        {
            "pk": f"REFRESH#{refresh.token_hash}",
            "sk": "REFRESH",
            **values,
            "ttl": refresh.expires_at,
        }
    )
