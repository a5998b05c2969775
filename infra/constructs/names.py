"""Names, sizes and limits of the deployed pieces, in one place.

Environment-variable keys live in `payplat.config.Env` and resource shapes in
`infra.resources`; this module holds only what the CDK code alone decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from infra.resources import AUDIT_ARCHIVE, AUDIT_STREAM, LEDGER, WEBHOOK_DISPATCHER_TIMEOUT_S
from payplat.audit import emf
from payplat.routes import ROUTES_BY_NAME, Function

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO_ROOT / "functions"
CORE_LAYER_DIR = REPO_ROOT / "layers" / "core"
UV_LOCK = REPO_ROOT / "uv.lock"

# Never ship bytecode from the build machine: it is for the wrong interpreter.
ASSET_EXCLUDES = ("**/__pycache__", "**/*.pyc")

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
HANDLER = "handler.lambda_handler"

# The EMF writer's own names: a dashboard or alarm on another namespace would stay empty.
SERVICE_NAME = emf.SERVICE
METRICS_NAMESPACE = emf.NAMESPACE
LOG_LEVEL = "INFO"
LOG_RETENTION = logs.RetentionDays.ONE_YEAR

# The stage is part of the issuer URL, so it is a constant, never read back from the stage.
STAGE_NAME = "live"
JWKS_PATH = ROUTES_BY_NAME["jwks"].path
ACCESS_TOKEN_TTL_S = 600
# Explicit (it is also OAuthSettings' default) so the template shows what partners get.
REFRESH_TOKEN_TTL_S = 14 * 86_400
# `cdk deploy -c requirePar=true`: every client must push its authorization requests
# (RFC 9126), not only those registered with require_pushed_authorization_requests.
REQUIRE_PAR_CONTEXT = "requirePar"
# `cdk deploy -c dpopNonce=true`: DPoP proofs must carry a server nonce (RFC 9449 §8-9), at
# the token endpoint and the resource routes.
DPOP_NONCE_CONTEXT = "dpopNonce"
# `cdk deploy -c fapi=true`: the FAPI 2.0 Security Profile for the whole server (PAR,
# private_key_jwt, DPoP-bound tokens only; payplat.oauth.fapi).
FAPI_CONTEXT = "fapi"

AUTHORIZER_CACHE_TTL_S = 300  # DESIGN: policy cached <= 300 s
STAGE_THROTTLE_RATE_RPS = 100
STAGE_THROTTLE_BURST = 200
WAF_RATE_LIMIT_PER_IP = 2000  # requests per WAF_RATE_WINDOW_S from one IP
WAF_RATE_WINDOW_S = 300
# The web ACL's CloudWatch metric name (its rules' metrics carry it as the WebACL dimension).
WAF_METRIC_NAME = f"{SERVICE_NAME}-api"

# Authorizations expire on a 7-day deadline: a quarter-hour sweep releases held funds at most
# 15 minutes late, and one run (EXPIRER.timeout_s) ends long before the next one starts.
EXPIRY_SWEEP_RATE_MIN = 15


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """One Lambda function: its folder under functions/ and its size."""

    name: str
    description: str
    memory_mb: int = 512
    timeout_s: int = 10
    # Logs through the standard library only (no Powertools): Lambda's JSON log format makes
    # its lines structured and filters them at LOG_LEVEL. Lines written straight to stdout
    # (audit records, EMF) stay as they are, so the audit subscription still matches them.
    lambda_json_logs: bool = False

    @property
    def code_dir(self) -> Path:
        return FUNCTIONS_DIR / self.name

    @property
    def construct_id(self) -> str:
        """`audit_forwarder` -> `AuditForwarder` (`oauth` -> `Oauth`, as before)."""
        return "".join(part.capitalize() for part in self.name.split("_"))


AUTHORIZER = FunctionSpec(
    "authorizer",
    "Validates ES256 access tokens and returns a scope-wide policy",
    memory_mb=256,
    timeout_s=5,
    lambda_json_logs=True,
)
OAUTH = FunctionSpec(
    Function.OAUTH,
    "OAuth 2.0 authorization server: token, authorize, introspect, revoke, registration, "
    "metadata, JWKS",
)
PAYMENTS = FunctionSpec(Function.PAYMENTS, "Payments resource API behind the authorizer")
EXPIRER = FunctionSpec(
    "expirer",
    "Releases uncaptured authorizations past their capture deadline (scheduled)",
    memory_mb=256,
    # A sweep stops itself 10 s before the timeout; whatever is left waits for the next run.
    timeout_s=300,
)
AUDIT_FORWARDER = FunctionSpec(
    "audit_forwarder",
    "Forwards payment and refund changes from the ledger table's stream to the audit stream",
    memory_mb=256,
    # One batch is at most FORWARDER_BATCH_SIZE records: one or two PutRecords calls.
    timeout_s=30,
)
AUDIT_SEALER = FunctionSpec(
    "audit_sealer",
    "Seals the audit stream into a KMS-signed hash chain per shard, archived under Object Lock",
    memory_mb=512,
    timeout_s=60,
)
WEBHOOK_DISPATCHER = FunctionSpec(
    "webhook_dispatcher",
    "Makes webhook events of money movements on the audit stream and delivers them, signed, "
    "to partners' endpoints (retried through the delivery queue)",
    memory_mb=256,
    # Sized with the delivery queue's visibility timeout (infra/resources.py): one batch of
    # WEBHOOK_DELIVERY_BATCH_SIZE attempts, each at most payplat.webhooks.DELIVERY_TIMEOUT_S;
    # what does not fit goes back on the queue for the next invocation.
    timeout_s=WEBHOOK_DISPATCHER_TIMEOUT_S,
)

# --- the audit trail -----------------------------------------------------------------------

# The ledger items whose changes are audit events (payplat/dal/ledger_table.py's layout):
# payments `PAYMENT#<id>` / `PAYMENT` and refunds `PAYMENT#<id>` / `REFUND#<created>#<id>`.
# Accounts, entries, payment views and idempotency claims never invoke the forwarder.
AUDITED_LEDGER_SORT_KEY = "PAYMENT"
AUDITED_LEDGER_SORT_KEY_PREFIX = "REFUND#"
# A Lambda event filter on a DynamoDB stream record: the sort key is one of the above.
AUDITED_LEDGER_CHANGES = {
    "dynamodb": {
        "Keys": {
            LEDGER.sort_key: {
                "S": [AUDITED_LEDGER_SORT_KEY, {"prefix": AUDITED_LEDGER_SORT_KEY_PREFIX}]
            }
        }
    }
}
FORWARDER_BATCH_SIZE = 100
FORWARDER_RETRY_ATTEMPTS = 10
# A DynamoDB stream keeps records 24 hours: older ones are gone whatever the mapping says.
FORWARDER_MAX_RECORD_AGE_S = 86_400

# Kinesis GetRecords returns up to 10,000 records; 500 keeps a batch (one seal) well inside
# AUDIT_SEALER.timeout_s with one KMS Sign and one S3 PutObject per batch.
SEALER_BATCH_SIZE = 500
# The seal chain is per shard and in order: one batch at a time per shard, never concurrent.
SEALER_PARALLELIZATION = 1
# Retried until it succeeds (-1): a chain cannot skip a batch and stay a chain. A stuck shard
# costs nothing on the request path (the archive's Firehose reads the stream on its own), and
# the audit-lag alarm pages within minutes. Records older than a day short of the stream's
# retention go to the DLQ instead, so the shard and sequence range of a batch that never
# sealed are on record before the stream would drop the records silently.
SEALER_RETRY_ATTEMPTS = -1
SEALER_MAX_RECORD_AGE_S = (AUDIT_STREAM.retention_hours - 24) * 3600

# Failed-batch pointers (shard, sequence numbers) of both event source mappings; SQS's longest.
AUDIT_DLQ_RETENTION_DAYS = 14

# Firehose: objects every minute (or 5 MiB), so the archive trails the stream by about that.
ARCHIVE_BUFFER_INTERVAL_S = 60
ARCHIVE_BUFFER_SIZE_MIB = 5
# Records Firehose could not deliver as events, kept apart under their error type.
ARCHIVE_ERRORS_PREFIX = "errors/"
# The access logs of the archive: kept as long as the archive's own objects.
ARCHIVE_ACCESS_LOG_RETENTION_DAYS = AUDIT_ARCHIVE.retention_days

# --- webhooks ------------------------------------------------------------------------------

# The audit stream into the dispatcher: a shard's records in order, one batch at a time, so
# a payment's events are made in the order its changes happened.
WEBHOOK_EVENTS_BATCH_SIZE = 100
WEBHOOK_EVENTS_PARALLELIZATION = 1
# A record the dispatcher cannot make events of is retried (it names the failed record, the
# batch is halved around it), then its pointer goes to the events DLQ (alarmed).
WEBHOOK_EVENTS_RETRY_ATTEMPTS = 10
WEBHOOK_EVENTS_MAX_RECORD_AGE_S = (AUDIT_STREAM.retention_hours - 24) * 3600
# The delivery queue into the dispatcher: up to 10 attempts an invocation, and at most
# WEBHOOK_DELIVERY_MAX_CONCURRENCY invocations at once, so a burst of events (or a slow
# partner) cannot take the account's Lambda concurrency from the request path.
WEBHOOK_DELIVERY_BATCH_SIZE = 10
WEBHOOK_DELIVERY_MAX_CONCURRENCY = 20
# The events DLQ holds failed-batch pointers of the audit-stream mapping; SQS's longest.
WEBHOOK_EVENTS_DLQ_RETENTION_DAYS = 14
# Webhook lag: how far the dispatcher trails the audit stream before it pages.
WEBHOOK_LAG_S = 300

# --- monitoring ----------------------------------------------------------------------------

FINANCE_DASHBOARD_NAME = f"{SERVICE_NAME}-finance-ops"
PLATFORM_DASHBOARD_NAME = f"{SERVICE_NAME}-platform-ops"
TOP_PARTNERS_BY_REQUESTS_RULE = f"{SERVICE_NAME}-top-partners-by-requests"
TOP_PARTNERS_BY_VOLUME_RULE = f"{SERVICE_NAME}-top-partners-by-volume"
TOP_CONTRIBUTORS = 10
# The message of the one log line payplat.http writes per answered request.
REQUEST_LOG_MESSAGE = "request"
DASHBOARD_PERIOD_S = 300

# The `kind` dimension of MoneyMovements / MoneyMovedMinorUnits (payplat.ledger.Movement).
PAYMENT_KINDS = ("payment", "authorization")  # money leaving a payer: at once, or held
CAPTURE_KIND = "capture"
REFUND_KIND = "refund"
FAILED_PAYMENT_KIND = "payment_failed"
RELEASE_KINDS = ("cancel", "expiry")  # held money going back to the payer
# What the top-partners-by-volume rule adds up: money that moved to a payee.
VOLUME_KINDS = ("payment", CAPTURE_KIND)

ALARM_PERIOD_S = 300
# API 5xx: more than 1% of the stage's requests in 5 minutes; below API_5XX_MIN_REQUESTS a
# period is not judged (one 500 among 20 requests is a bug report, not an outage).
API_5XX_RATE_PERCENT = 1
API_5XX_MIN_REQUESTS = 20
# Refused credentials (401/403, AccessDenied over every reason) in 5 minutes: partners refresh
# tokens before they expire, so a healthy base sends a handful; token guessing sends hundreds.
AUTH_FAILURES_PER_PERIOD = 50
# Limiter 429s in 5 minutes (1 a second): clients honouring Retry-After stay far below it; above
# it a client ignores Retry-After or a plan is set too low.
RATE_LIMITED_PER_PERIOD = 300
# Audit lag: the oldest record a forwarder or sealer batch held when it was read.
AUDIT_LAG_S = 300
# Firehose: the oldest record not yet in S3. Normally about ARCHIVE_BUFFER_INTERVAL_S; 15
# minutes means delivery has been failing for several retries.
ARCHIVE_FRESHNESS_S = 900
