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
# Account holders who log in at the authorize page (consumers and merchants).
USERS = TableSpec(id="users", env=Env.USERS_TABLE, partition_key="username")
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
    indexes=(
        Index("by_owner", partition_key="gsi1pk", sort_key="gsi1sk"),
        # Sparse: only authorizations awaiting capture, by deadline, for the expiry sweep.
        Index("by_expiry", partition_key="gsi2pk", sort_key="gsi2sk"),
    ),
)
# The audit seal chain: one head item per stream shard (last sequence sealed, last digest).
AUDIT = TableSpec(id="audit", env=Env.AUDIT_TABLE, partition_key="pk")
# Webhook endpoints, events and their deliveries (payplat/dal/webhooks_table.py); events and
# deliveries expire by TTL after 30 days, endpoints stay until deleted.
WEBHOOKS = TableSpec(
    id="webhooks", env=Env.WEBHOOKS_TABLE, partition_key="pk", sort_key="sk", ttl_attribute="ttl"
)
TABLES: tuple[TableSpec, ...] = (CLIENTS, USERS, TOKENS, RATE_LIMITS, LEDGER, AUDIT, WEBHOOKS)


@dataclass(frozen=True, slots=True)
class SigningKeySpec:
    alias: str = "alias/payplat-token-signing"
    key_spec: str = "ECC_NIST_P256"  # ES256
    key_usage: str = "SIGN_VERIFY"


SIGNING_KEY = SigningKeySpec()
# Signs the audit trail's seals (a key of its own: token keys rotate, seals must verify for
# years).
AUDIT_SEALING_KEY = SigningKeySpec(alias="alias/payplat-audit-sealing")


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


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """An SQS queue (SSE-SQS, TLS only). `dead_letter` names the queue a message moves to
    after `max_receive_count` receives without being deleted."""

    id: str
    env: str  # the env var that tells functions its URL
    retention_s: int = 4 * 86_400
    visibility_timeout_s: int = 30
    dead_letter: str | None = None
    max_receive_count: int = 5

    @property
    def local_name(self) -> str:
        return f"payplat-{self.id}"


# Deliveries given up on (retries exhausted) and messages the dispatcher kept failing on:
# kept SQS's longest, alarmed on the first.
WEBHOOK_DLQ = QueueSpec(id="webhook-dlq", env=Env.WEBHOOK_DLQ_URL, retention_s=14 * 86_400)
# One message per delivery attempt, delayed until it is due. A message is invisible for six
# times the dispatcher's timeout while an attempt runs (what Lambda's SQS source advises), and
# longer than an attempt's lease, so a crashed attempt's message comes back claimable.
WEBHOOK_DISPATCHER_TIMEOUT_S = 60
WEBHOOK_QUEUE = QueueSpec(
    id="webhook-deliveries",
    env=Env.WEBHOOK_QUEUE_URL,
    retention_s=4 * 86_400,  # a message waits at most 15 minutes; this is for outages
    visibility_timeout_s=6 * WEBHOOK_DISPATCHER_TIMEOUT_S,
    dead_letter=WEBHOOK_DLQ.id,
    max_receive_count=5,
)
QUEUES: tuple[QueueSpec, ...] = (WEBHOOK_DLQ, WEBHOOK_QUEUE)


@dataclass(frozen=True, slots=True)
class ArchiveSpec:
    """The audit archive: an S3 bucket under Object Lock. Firehose writes the stream's
    records under `events_prefix`; the sealer writes signed, hash-chained seals under
    `seals_prefix`."""

    id: str
    env: str
    retention_days: int  # Object Lock, compliance mode: nobody can delete before then
    events_prefix: str = "events/"
    seals_prefix: str = "seals/"

    @property
    def local_name(self) -> str:
        return f"payplat-{self.id}"


# PCI DSS v4 10.5.1: at least 12 months; 400 days leaves room for a late audit.
AUDIT_ARCHIVE = ArchiveSpec(id="audit-archive", env=Env.AUDIT_ARCHIVE_BUCKET, retention_days=400)

# The filter pattern that picks audit records out of a function's log group.
AUDIT_LOG_FILTER = '{ $.log_type = "AUDIT" }'
# The name of that subscription on every function's log group (the alarm on its delivery
# errors finds them all by it).
AUDIT_SUBSCRIPTION_NAME = "payplat-audit"


@dataclass(frozen=True, slots=True)
class GatewayResponse:
    """An API Gateway response the gateway itself sends (no function involved).

    `body` may use `$context.requestId`, which API Gateway (and the local gateway) fills in.
    """

    response_type: str
    status: int | None  # None: keep the status API Gateway chose
    headers: dict[str, str]
    body: str


# API Gateway fills the placeholder in; it must stay an unescaped template variable.
REQUEST_ID_TEMPLATE = "$context.requestId"


def _error_body(
    error_type: str, code: str, message: str, *, request_id: str | None = REQUEST_ID_TEMPLATE
) -> str:
    error = {"type": error_type, "code": code, "message": message, "param": None}
    return json.dumps({"error": {**error, "request_id": request_id}})


_JSON = {"Content-Type": "application/json", "Cache-Control": "no-store"}
# Stage throttling is a token bucket refilled every second: one second is enough to wait.
_RETRY_AFTER_THROTTLED = {"Retry-After": "1"}

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
        "DEFAULT_5XX",  # no status of its own: a 504 stays a 504, a 500 a 500
        None,
        _JSON,
        _error_body("api_error", "gateway_error", "The gateway could not complete the request."),
    ),
    GatewayResponse(
        "THROTTLED",  # stage (or method) throttling: the coarse outer limit
        429,
        {**_JSON, **_RETRY_AFTER_THROTTLED},
        _error_body(
            "rate_limit_error",
            "rate_limited",
            "Too many requests: slow down and retry after the time in Retry-After.",
        ),
    ),
    GatewayResponse(
        # Only a usage plan with API keys can send it; payplat has none today, but if one is
        # added its 429 still has the documented shape.
        "QUOTA_EXCEEDED",
        429,
        {**_JSON, **_RETRY_AFTER_THROTTLED},
        _error_body(
            "rate_limit_error",
            "quota_exceeded",
            "The request quota for this API key is used up.",
        ),
    ),
    GatewayResponse(
        "REQUEST_TOO_LARGE",  # API Gateway's own payload limit; the WAF's is far lower
        413,
        _JSON,
        _error_body("invalid_request_error", "request_too_large", "The request body is too large."),
    ),
    GatewayResponse(
        # A managed WAF rule blocked the request (the WAF's own rules answer with their
        # custom responses, which take precedence over gateway responses).
        "WAF_FILTERED",
        403,
        _JSON,
        _error_body(
            "invalid_request_error",
            "request_blocked",
            "The request was blocked by the API's firewall.",
        ),
    ),
)
GATEWAY_RESPONSES_BY_TYPE = {response.response_type: response for response in GATEWAY_RESPONSES}


# --- the WAF in front of the stage ---------------------------------------------------------

# Larger bodies are refused at the edge with 413. 32 KB holds the largest valid payment (50
# metadata keys of 500 characters is ~27 KB); the common rule set's own 8 KB body rule only
# counts. WAF is told to inspect 48 KB of body (WAF_BODY_INSPECTION_LIMIT), so every size up
# to the limit is measured exactly and anything past what WAF sees counts as too large.
EDGE_MAX_BODY_BYTES = 32 * 1024
WAF_BODY_INSPECTION_LIMIT = "KB_48"  # above the 16 KB default: billed per extra 16 KB
# Access tokens are well under 2 KB. WAF sees at most 8 KB of a request's headers (a limit of
# the host service, not a setting), so the Authorization limit must be below that to be
# measurable, and headers past what WAF sees count as too large too.
EDGE_MAX_AUTHORIZATION_BYTES = 4 * 1024
WAF_HEADERS_INSPECTION_BYTES = 8 * 1024


@dataclass(frozen=True, slots=True)
class WafResponse:
    """A response the WAF sends itself when one of its rules blocks a request.

    Static: WAF fills no variables in, so `request_id` is null. WAF sets Content-Type from the
    body's content type and rejects it in `headers`.
    """

    key: str  # the web ACL's custom response body key
    status: int
    headers: dict[str, str]
    body: str


_NO_STORE = {"Cache-Control": "no-store"}

WAF_RATE_LIMITED = WafResponse(
    "RateLimited",
    429,
    # The per-IP rate is measured over minutes: a client over it should back off for a while.
    {**_NO_STORE, "Retry-After": "60"},
    _error_body(
        "rate_limit_error",
        "rate_limited",
        "Too many requests from this address: retry after the time in Retry-After.",
        request_id=None,
    ),
)
WAF_BODY_TOO_LARGE = WafResponse(
    "BodyTooLarge",
    413,
    _NO_STORE,
    _error_body(
        "invalid_request_error",
        "request_too_large",
        f"The request body is larger than {EDGE_MAX_BODY_BYTES} bytes.",
        request_id=None,
    ),
)
WAF_HEADER_TOO_LARGE = WafResponse(
    "HeaderTooLarge",
    413,
    _NO_STORE,
    _error_body(
        "invalid_request_error",
        "header_too_large",
        "The Authorization header or the request headers are too large.",
        request_id=None,
    ),
)
WAF_RESPONSES: tuple[WafResponse, ...] = (
    WAF_RATE_LIMITED,
    WAF_BODY_TOO_LARGE,
    WAF_HEADER_TOO_LARGE,
)
