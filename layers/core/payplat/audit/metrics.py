"""Every CloudWatch metric payplat emits (EMF, namespace `Payplat`, plus the `service`
dimension), with its unit and its dimensions. The functions emit through `payplat.audit.emf`; the
CDK dashboards and alarms are built from this catalogue, so a chart cannot name a metric or
a dimension the code does not write.

Dimensions stay bounded: a route, a reason, a currency, a status — never an id. Who the top
partners are is a question for Contributor Insights over the log lines, not for a dimension.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    unit: str  # a CloudWatch unit: Count, Milliseconds, None (amounts in minor units)
    dimensions: tuple[str, ...]
    description: str


REQUESTS = MetricSpec(
    "Requests", "Count", ("route", "status_class"), "Requests answered, by route and 2xx/4xx/5xx"
)
LATENCY = MetricSpec("Latency", "Milliseconds", ("route",), "Time in the function, by route")
ACCESS_DENIED = MetricSpec(
    "AccessDenied", "Count", ("reason",), "401/403 decisions by reason (authorizer and gate)"
)
RATE_LIMITED = MetricSpec(
    "RateLimited", "Count", ("limit",), "429s by limit: rate, daily_quota, monthly_quota"
)
LIMITER_UNAVAILABLE = MetricSpec(
    "LimiterUnavailable", "Count", ("mode",), "Limiter table unreachable: fail_open/fail_closed"
)
TOKENS_ISSUED = MetricSpec("TokensIssued", "Count", ("grant_type",), "Access tokens, by grant")
TOKENS_REFUSED = MetricSpec("TokensRefused", "Count", ("error",), "Token requests refused")
TOKENS_REVOKED = MetricSpec("TokensRevoked", "Count", ("token_type",), "Tokens revoked")
TOKEN_REUSE_DETECTED = MetricSpec(
    "TokenReuseDetected", "Count", ("kind",), "Spent codes or refresh tokens presented again"
)
LOGIN_FAILED = MetricSpec("LoginFailed", "Count", (), "Failed account-holder sign-ins")
CREDENTIAL_THROTTLED = MetricSpec(
    "CredentialThrottled",
    "Count",
    ("limit",),
    "Sign-ins and token requests refused, by bucket: login-user-ip, login-user, login-ip, "
    "token-client-ip, token-client, token-ip",
)
MONEY_MOVEMENTS = MetricSpec(
    "MoneyMovements",
    "Count",
    ("kind", "currency"),
    "Ledger movements: authorization, payment, payment_failed, capture, cancel, refund, expiry",
)
MONEY_MOVED = MetricSpec(
    "MoneyMovedMinorUnits",
    "None",
    ("kind", "currency"),
    "Value of the ledger movements, in the currency's minor units",
)
IDEMPOTENT_REPLAYS = MetricSpec(
    "IdempotentReplays", "Count", ("route",), "POSTs answered from their Idempotency-Key"
)
PENDING_CAPTURES = MetricSpec(
    "PendingCaptures", "Count", ("currency",), "Authorizations awaiting capture (expirer gauge)"
)
PENDING_CAPTURE_VALUE = MetricSpec(
    "PendingCaptureMinorUnits", "None", ("currency",), "Value held by pending authorizations"
)
AUTHORIZATIONS_EXPIRED = MetricSpec(
    "AuthorizationsExpired", "Count", (), "Authorizations released by the expiry sweep"
)
AUTHORIZATION_EXPIRY_FAILURES = MetricSpec(
    "AuthorizationExpiryFailures", "Count", (), "Authorizations the sweep could not release"
)
AUDIT_EVENTS_FORWARDED = MetricSpec(
    "AuditEventsForwarded", "Count", ("type",), "Ledger changes sent to the audit stream"
)
AUDIT_EVENTS_SEALED = MetricSpec(
    "AuditEventsSealed", "Count", (), "Audit events sealed into the hash chain"
)

CATALOGUE: tuple[MetricSpec, ...] = (
    REQUESTS,
    LATENCY,
    ACCESS_DENIED,
    RATE_LIMITED,
    LIMITER_UNAVAILABLE,
    TOKENS_ISSUED,
    TOKENS_REFUSED,
    TOKENS_REVOKED,
    TOKEN_REUSE_DETECTED,
    LOGIN_FAILED,
    CREDENTIAL_THROTTLED,
    MONEY_MOVEMENTS,
    MONEY_MOVED,
    IDEMPOTENT_REPLAYS,
    PENDING_CAPTURES,
    PENDING_CAPTURE_VALUE,
    AUTHORIZATIONS_EXPIRED,
    AUTHORIZATION_EXPIRY_FAILURES,
    AUDIT_EVENTS_FORWARDED,
    AUDIT_EVENTS_SEALED,
)
BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in CATALOGUE}
