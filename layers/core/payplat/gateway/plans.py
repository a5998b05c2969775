"""Plans: how much a client may call. Stored in DynamoDB so they change without a redeploy,
cached briefly in each function; the defaults below apply until a plan is stored."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Protocol

# One DynamoDB partition takes ~1,000 writes/s; keep each bucket item well under it.
MAX_RATE_PER_SHARD = 400.0


@dataclass(frozen=True, slots=True)
class Limits:
    """A token bucket (`rate_per_s`, `burst`) and optional fixed-window quotas."""

    name: str
    rate_per_s: float
    burst: int
    daily_quota: int | None = None
    monthly_quota: int | None = None
    shards: int = 0  # 0: derived from the rate

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.burst < 1:
            raise ValueError("a plan needs a positive rate and a burst of at least 1")
        for quota in (self.daily_quota, self.monthly_quota):
            if quota is not None and quota < 1:
                raise ValueError("quotas must be positive (or absent)")
        if self.shards == 0:
            object.__setattr__(
                self, "shards", max(1, math.ceil(self.rate_per_s / MAX_RATE_PER_SHARD))
            )

    def per_shard(self) -> Limits:
        """What one of `shards` bucket items enforces: each takes an equal share, rounded
        down, so the shards together never admit more than the plan."""
        n = self.shards
        if n == 1:
            return self
        return replace(
            self,
            rate_per_s=self.rate_per_s / n,
            burst=max(1, self.burst // n),
            daily_quota=None if self.daily_quota is None else max(1, self.daily_quota // n),
            monthly_quota=None if self.monthly_quota is None else max(1, self.monthly_quota // n),
            shards=1,
        )


# The token endpoint and account-holder sign-ins (the authorize page, the password grant) are
# throttled per source address, per (credential, source address) and per credential, all in
# one write. The per-source buckets stop guessing; the per-credential ceiling stops a botnet,
# and is high enough that one stranger, held by the per-source buckets, cannot spend it: a
# lockout hits the guesser's own address, never the real holder or partner elsewhere. Stored
# plans of the same names override these like any plan.
#
# Token endpoint: per address, generous enough for a partner's fleet behind one NAT; per
# client and address (guessing one client's secret from one place); per client, ten times
# what one address may send, so one address can never hold it down. The per-client bucket
# also carries a disabled client's revocation.
TOKEN_ENDPOINT_PER_IP = Limits("token-ip", rate_per_s=10, burst=50)
TOKEN_ENDPOINT_PER_CLIENT_AND_IP = Limits("token-client-ip", rate_per_s=5, burst=50)
TOKEN_ENDPOINT_PER_CLIENT = Limits("token-client", rate_per_s=100, burst=500)
# Sign-ins, charged per attempt: five tries at once per username and address, then one a
# minute (online guessing needs millions); per username, 100 at once and 6 a minute, so
# holding one holder down takes more than six addresses each guessing at its limit; per
# address enough for an office behind one NAT, not for spraying many usernames.
LOGIN_PER_USERNAME_AND_IP = Limits("login-user-ip", rate_per_s=1 / 60, burst=5)
LOGIN_PER_USERNAME = Limits("login-user", rate_per_s=1 / 10, burst=100)
LOGIN_PER_IP = Limits("login-ip", rate_per_s=0.5, burst=30)

CREDENTIAL_LIMITS = (
    TOKEN_ENDPOINT_PER_IP,
    TOKEN_ENDPOINT_PER_CLIENT_AND_IP,
    TOKEN_ENDPOINT_PER_CLIENT,
    LOGIN_PER_USERNAME_AND_IP,
    LOGIN_PER_USERNAME,
    LOGIN_PER_IP,
)


# The platform's own limits, not tiers a partner can be put on.
INTERNAL_PLANS = frozenset(plan.name for plan in CREDENTIAL_LIMITS)

DEFAULT_PLANS: dict[str, Limits] = {
    plan.name: plan
    for plan in (
        Limits("sandbox", rate_per_s=5, burst=10, daily_quota=1_000, monthly_quota=20_000),
        Limits("standard", rate_per_s=25, burst=50, daily_quota=100_000, monthly_quota=2_000_000),
        Limits("premium", rate_per_s=1_000, burst=2_000),
        *CREDENTIAL_LIMITS,
    )
}


class PlanStore(Protocol):
    def get_plan(self, name: str) -> Limits | None: ...

    def put_plan(self, plan: Limits) -> None: ...

    def list_plans(self) -> Iterable[Limits]: ...


class CachedPlans:
    """Plans by name, re-read after `ttl_s` so a change applies without a restart."""

    def __init__(
        self, store: PlanStore, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[float, Limits]] = {}

    def get(self, name: str) -> Limits:
        now = self._clock()
        hit = self._entries.get(name)
        if hit is not None and now - hit[0] < self._ttl_s:
            return hit[1]
        plan = self._store.get_plan(name) or DEFAULT_PLANS.get(name) or DEFAULT_PLANS["sandbox"]
        self._entries[name] = (now, plan)
        return plan
