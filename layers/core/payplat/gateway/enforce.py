"""The request-path check every rate-limited route shares (and the token endpoint): charge
the caller's bucket, fold in revocation, and say where the caller stands in headers.

Headers follow the IETF RateLimit draft: `RateLimit-Policy: "<plan>";q=<limit>;w=<window s>`
and `RateLimit: "<plan>";r=<remaining>;t=<reset s>`, one item per limit (the token bucket,
then the daily and monthly quotas); every 429 carries `Retry-After`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from payplat.audit import events as audit
from payplat.audit.emf import metric
from payplat.audit.metrics import ACCESS_DENIED, LIMITER_UNAVAILABLE, RATE_LIMITED
from payplat.errors import ApiError, AuthenticationFailed, InvalidDpopProof
from payplat.gateway.dpop import ALGORITHMS
from payplat.gateway.limiter import (
    Charge,
    Decision,
    LimiterUnavailable,
    ProofReplayed,
    ProofUse,
    RateLimiter,
)
from payplat.gateway.plans import Limits

_QUOTA_WINDOWS = {"daily": 86_400, "monthly": 2_592_000}
_MESSAGES = {
    "rate": "Too many requests: slow down and retry after the time in Retry-After.",
    "daily_quota": "The daily request quota of your plan is used up.",
    "monthly_quota": "The monthly request quota of your plan is used up.",
}


class RateLimited(ApiError):
    status = 429
    type = "rate_limit_error"

    def __init__(self, limit: str, headers: dict[str, str], plan: str = "") -> None:
        super().__init__(
            _MESSAGES[limit], code=f"{limit}_exceeded" if limit != "rate" else "rate_limited"
        )
        self.limit = limit
        self.headers = headers
        self.plan = plan  # the bucket that refused: which of a request's limits it met


class LimiterDown(ApiError):
    status = 503
    type = "api_error"
    code = "temporarily_unavailable"

    def __init__(self) -> None:
        super().__init__("Rate limiting is unavailable; this route fails closed. Retry shortly.")
        self.headers = {"Retry-After": "1"}


@dataclass(frozen=True, slots=True)
class WhenRevoked:
    """What a refusal for revocation means where the charge was made: the reason audited
    and counted, and the error the caller gets."""

    reason: str
    error: Callable[[], Exception]


# A resource request whose token was revoked (one token, or all a client holds).
TOKEN_REVOKED = WhenRevoked(
    "token_revoked", lambda: AuthenticationFailed("The access token has been revoked.")
)


def policy_header(limits: Limits) -> str:
    window_s = max(1, math.ceil(limits.burst / limits.rate_per_s))
    items = [f'"{limits.name}";q={limits.burst};w={window_s}']
    for name, quota in (("daily", limits.daily_quota), ("monthly", limits.monthly_quota)):
        if quota is not None:
            items.append(f'"{limits.name}-{name}";q={quota};w={_QUOTA_WINDOWS[name]}')
    return ", ".join(items)


def headers_for(decision: Decision) -> dict[str, str]:
    limits = decision.limits
    headers = {"RateLimit-Policy": policy_header(limits)}
    refusal = decision.refusal
    if refusal is None:
        items = [f'"{limits.name}";r={decision.remaining};t={decision.reset_s}']
        for name, (remaining, reset_s) in decision.quota_remaining.items():
            items.append(f'"{limits.name}-{name}";r={remaining};t={reset_s}')
    else:
        wait = refusal.retry_after_s
        name = limits.name if refusal.limit == "rate" else f"{limits.name}-{refusal.limit[:-6]}"
        items = [f'"{name}";r=0;t={wait}']
        headers["Retry-After"] = str(wait)
    headers["RateLimit"] = ", ".join(items)
    return headers


def enforce(
    limiter: RateLimiter,
    charges: Sequence[Charge],
    *,
    fail_open: bool,
    actor: audit.Actor,
    origin: audit.Origin,
    resource: str,
    when_revoked: WhenRevoked = TOKEN_REVOKED,
    proof: ProofUse | None = None,
) -> dict[str, str]:
    """Admit the request or raise (429 RateLimited, `when_revoked.error` for a revocation,
    401 for a replayed DPoP proof, 503 when the limiter is down and the route fails
    closed). Returns the headers for the response."""
    try:
        decision = limiter.check(charges, proof)
    except ProofReplayed:
        metric(ACCESS_DENIED, reason="dpop_replayed")
        _record(
            "access.denied",
            "failure",
            "dpop_replayed",
            actor=actor,
            origin=origin,
            resource=resource,
        )
        raise InvalidDpopProof(
            "This DPoP proof was used before: make a new one for every request.",
            reason="replayed",
            algorithms=" ".join(ALGORITHMS),
        ) from None
    except LimiterUnavailable:
        outcome = "fail_open" if fail_open else "fail_closed"
        metric(LIMITER_UNAVAILABLE, mode=outcome)
        _record(
            "ratelimit.unavailable",
            "success" if fail_open else "failure",
            outcome,
            actor=actor,
            origin=origin,
            resource=resource,
        )
        if fail_open:
            return {}
        raise LimiterDown() from None
    if decision.admitted:
        return headers_for(decision)
    refusal = decision.refusal
    assert refusal is not None  # noqa: S101 - a refused decision always says why
    if refusal.limit == "revoked":
        metric(ACCESS_DENIED, reason=when_revoked.reason)
        _record(
            "access.denied",
            "failure",
            when_revoked.reason,
            actor=actor,
            origin=origin,
            resource=resource,
        )
        raise when_revoked.error()
    metric(RATE_LIMITED, limit=refusal.limit)
    _record(
        "rate_limited",
        "failure",
        refusal.limit,
        actor=actor,
        origin=origin,
        resource=resource,
        plan=decision.limits.name,
    )
    raise RateLimited(refusal.limit, headers_for(decision), decision.limits.name)


def _record(
    event_type: str,
    outcome: str,
    reason: str,
    *,
    actor: audit.Actor,
    origin: audit.Origin,
    resource: str,
    **details: str,
) -> None:
    audit.record(
        audit.AuditEvent(
            type=event_type,
            outcome=outcome,
            actor=actor,
            origin=origin,
            resource=resource,
            reason=reason,
            details=dict(details),
        )
    )
