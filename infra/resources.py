"""What payplat's AWS resources are, as plain data: tables, keys, streams, gateway responses.

The CDK constructs build them and the local runner creates them in moto from these same
definitions, so the two cannot drift. Nothing here imports aws_cdk: `make run` does not
install it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from payplat.config import Env

# Access tokens are minted for the resource API under /v1: audience = base URL + this path
# (CDK and the local runner both build it from here).
AUDIENCE_PATH = "/v1"


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    partition_key: str
    sort_key: str | None = None


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A DynamoDB table. Every key attribute is a string."""

    id: str  # construct id and local table name suffix
    env: str  # the env var that tells functions its name
    partition_key: str
    sort_key: str | None = None
    ttl_attribute: str | None = None
    stream: bool = False  # NEW_AND_OLD_IMAGES, feeds the audit forwarder
    indexes: tuple[Index, ...] = field(default_factory=tuple)

    @property
    def local_name(self) -> str:
        return f"payplat-{self.id}"


CLIENTS = TableSpec(id="clients", env=Env.CLIENTS_TABLE, partition_key="client_id")
TOKENS = TableSpec(
    id="tokens", env=Env.TOKENS_TABLE, partition_key="pk", sort_key="sk", ttl_attribute="ttl"
)
RATE_LIMITS = TableSpec(
    id="rate-limits", env=Env.RATE_LIMITS_TABLE, partition_key="pk", ttl_attribute="ttl"
)
LEDGER = TableSpec(
    id="ledger",
    env=Env.LEDGER_TABLE,
    partition_key="pk",
    sort_key="sk",
    ttl_attribute="ttl",
    stream=True,
    indexes=(Index("by_owner", partition_key="gsi1pk", sort_key="gsi1sk"),),
)
TABLES: tuple[TableSpec, ...] = (CLIENTS, TOKENS, RATE_LIMITS, LEDGER)


@dataclass(frozen=True, slots=True)
class SigningKeySpec:
    alias: str = "alias/payplat-token-signing"
    key_spec: str = "ECC_NIST_P256"  # ES256
    key_usage: str = "SIGN_VERIFY"


SIGNING_KEY = SigningKeySpec()


@dataclass(frozen=True, slots=True)
class StreamSpec:
    id: str
    env: str
    shards: int = 1
    retention_hours: int = 168

    @property
    def local_name(self) -> str:
        return f"payplat-{self.id}"


AUDIT_STREAM = StreamSpec(id="audit", env=Env.AUDIT_STREAM)

# The filter pattern that picks audit records out of a function's log group.
AUDIT_LOG_FILTER = '{ $.log_type = "AUDIT" }'


@dataclass(frozen=True, slots=True)
class GatewayResponse:
    """An API Gateway response the gateway itself sends (no function involved).

    `body` may use `$context.requestId`, which API Gateway (and the local gateway) fills in.
    """

    response_type: str
    status: int
    headers: dict[str, str]
    body: str


def _error_body(error_type: str, code: str, message: str) -> str:
    error = {"type": error_type, "code": code, "message": message, "param": None}
    # API Gateway fills the placeholder in; it must stay an unescaped template variable.
    return json.dumps({"error": {**error, "request_id": "$context.requestId"}})


_JSON = {"Content-Type": "application/json", "Cache-Control": "no-store"}

GATEWAY_RESPONSES: tuple[GatewayResponse, ...] = (
    GatewayResponse(
        "UNAUTHORIZED",
        401,
        {**_JSON, "WWW-Authenticate": 'Bearer realm="payplat", error="invalid_token"'},
        _error_body(
            "authentication_error",
            "invalid_token",
            "The access token is missing, malformed, expired or revoked.",
        ),
    ),
    GatewayResponse(
        "ACCESS_DENIED",
        403,
        {**_JSON, "WWW-Authenticate": 'Bearer realm="payplat", error="insufficient_scope"'},
        _error_body(
            "permission_error",
            "insufficient_scope",
            "The access token does not grant the scope this route needs.",
        ),
    ),
    GatewayResponse(
        "MISSING_AUTHENTICATION_TOKEN",  # what API Gateway answers for an unknown path
        404,
        _JSON,
        _error_body("invalid_request_error", "resource_missing", "Unrecognized request URL."),
    ),
    GatewayResponse(
        "DEFAULT_5XX",
        502,
        _JSON,
        _error_body("api_error", "gateway_error", "The gateway could not complete the request."),
    ),
)
GATEWAY_RESPONSES_BY_TYPE = {response.response_type: response for response in GATEWAY_RESPONSES}
