"""The limiter's arithmetic (GCRA + fixed-window quotas + revocation), with no store: what
one decision admits or refuses, and the figures its headers report."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from payplat.gateway.enforce import headers_for, policy_header
from payplat.gateway.limiter import (
    US,
    Admitted,
    BucketState,
    Charge,
    Decision,
    RateLimiter,
    Refused,
    Write,
    decide,
)
from payplat.gateway.plans import Limits

NOW = datetime(2026, 11, 29, 23, 59, 50, tzinfo=UTC).timestamp()  # 10 s before midnight
PLAN = Limits("standard", rate_per_s=10, burst=5, daily_quota=100, monthly_quota=1000)
T_US = US // 10  # one request's worth of time at 10/s


def charge(cost: int = 1, limits: Limits = PLAN, **kwargs: object) -> Charge:
    return Charge(key="BUCKET#api#c#0", limits=limits, cost=cost, **kwargs)  # type: ignore[arg-type]


def test_a_new_bucket_admits_and_starts_from_now() -> None:
    outcome = decide(charge(), BucketState(), NOW)
    assert isinstance(outcome, Admitted)
    assert outcome.write.busy is False
    assert outcome.write.new_tat_us == int(NOW * US) + T_US
    assert outcome.remaining == 4
    assert outcome.write.day == "20261129" and outcome.write.day_same is False


def test_a_busy_bucket_admits_until_the_burst_is_spent() -> None:
    now_us = int(NOW * US)
    # Given a bucket whose tat is 4 requests ahead of now (burst 5)
    state = BucketState(tat_us=now_us + 4 * T_US, day="20261129", month="202611")
    outcome = decide(charge(), state, NOW)
    assert isinstance(outcome, Admitted)
    assert outcome.write.busy and outcome.write.day_same and outcome.write.month_same
    assert outcome.remaining == 0
    # And one more request at the same instant is refused for about one interval
    full = BucketState(tat_us=now_us + 5 * T_US, day="20261129", month="202611")
    refused = decide(charge(), full, NOW)
    assert isinstance(refused, Refused)
    assert (refused.limit, refused.retry_after_s) == ("rate", 1)


def test_a_route_costing_more_takes_more_of_the_bucket() -> None:
    now_us = int(NOW * US)
    state = BucketState(tat_us=now_us + 3 * T_US)
    assert isinstance(decide(charge(cost=2), state, NOW), Admitted)
    assert isinstance(decide(charge(cost=3), state, NOW), Refused)
    assert decide(charge(cost=6), BucketState(), NOW) == Refused(charge(cost=6), "rate", 0)


def test_the_request_that_crosses_the_daily_quota_is_refused_until_midnight() -> None:
    state = BucketState(day="20261129", day_used=100, month="202611", month_used=100)
    refused = decide(charge(), state, NOW)
    assert isinstance(refused, Refused)
    assert refused.limit == "daily_quota"
    assert refused.retry_after_s == 10  # seconds to 00:00 UTC

    # And the next day's window admits again (the counter starts over)
    admitted = decide(charge(), state, NOW + 11)
    assert isinstance(admitted, Admitted)
    assert admitted.write.day == "20261130" and admitted.write.day_same is False


def test_the_monthly_quota_is_counted_across_days() -> None:
    month_end = datetime(2026, 11, 30, 23, 59, 55, tzinfo=UTC).timestamp()
    state = BucketState(day="20261128", day_used=3, month="202611", month_used=1000)
    refused = decide(charge(), state, month_end)
    assert isinstance(refused, Refused)
    assert (refused.limit, refused.retry_after_s) == ("monthly_quota", 5)
    assert isinstance(decide(charge(), state, month_end + 6), Admitted)  # December


def test_a_revoked_jti_or_a_token_issued_before_a_revocation_is_refused() -> None:
    state = BucketState(revoked_jtis=frozenset({"j1"}), revoked_before=1000)
    assert decide(charge(jti="j1", issued_at=2000), state, NOW).limit == "revoked"  # type: ignore[union-attr]
    assert decide(charge(jti="j2", issued_at=1000), state, NOW).limit == "revoked"  # type: ignore[union-attr]
    assert isinstance(decide(charge(jti="j2", issued_at=1001), state, NOW), Admitted)


def test_shards_split_the_plan_so_together_they_never_exceed_it() -> None:
    hot = Limits("hot", rate_per_s=1000, burst=2000, daily_quota=10_001, shards=3)
    share = hot.per_shard()
    assert share.rate_per_s * hot.shards == pytest.approx(1000)
    assert share.burst * hot.shards <= hot.burst
    assert share.daily_quota is not None and share.daily_quota * hot.shards <= 10_001
    assert Limits("derived", rate_per_s=1000, burst=10).shards == 3


def test_sharded_buckets_spread_over_their_shards() -> None:
    limiter = RateLimiter(store=None, pick_shard=lambda n: n - 1)  # type: ignore[arg-type]
    hot = Limits("hot", rate_per_s=10, burst=9, shards=3)
    charge = limiter.charge("api", "c", hot)
    assert charge.key == "BUCKET#api#c#2"
    assert charge.other_shards == ("BUCKET#api#c#0", "BUCKET#api#c#1")
    assert limiter.charge("api", "c", PLAN).key == "BUCKET#api#c#0"


def test_headers_follow_the_ratelimit_draft() -> None:
    assert policy_header(PLAN) == (
        '"standard";q=5;w=1, "standard-daily";q=100;w=86400, "standard-monthly";q=1000;w=2592000'
    )
    admitted = Decision(
        admitted=True,
        limits=PLAN,
        remaining=3,
        reset_s=1,
        quota_remaining={"daily": (42, 10), "monthly": (900, 10)},
    )
    assert headers_for(admitted)["RateLimit"] == (
        '"standard";r=3;t=1, "standard-daily";r=42;t=10, "standard-monthly";r=900;t=10'
    )
    refused = Decision(admitted=False, limits=PLAN, refusal=Refused(charge(), "daily_quota", 10))
    headers = headers_for(refused)
    assert headers["Retry-After"] == "10"
    assert headers["RateLimit"] == '"standard-daily";r=0;t=10'


class ScriptedStore:
    """Answers charge() from a script, recording the writes (the real store is tested
    against moto in tests/e2e/test_rate_limits.py)."""

    def __init__(self, *answers: tuple[bool, list[BucketState | None]]) -> None:
        self.answers = list(answers)
        self.writes: list[list[Write]] = []

    def charge(self, writes: list[Write]) -> tuple[bool, list[BucketState | None]]:
        self.writes.append(list(writes))
        return self.answers.pop(0)


def test_a_failed_assumption_is_retried_from_the_state_the_store_returned() -> None:
    now_us = int(NOW * US)
    # Given a limiter that believes the bucket is new, but it is busy
    busy = BucketState(tat_us=now_us + 2 * T_US, day="20261129", day_used=7, month="202611")
    store = ScriptedStore((False, [busy]), (True, [None]))
    limiter = RateLimiter(store, clock=lambda: NOW)  # type: ignore[arg-type]
    decision = limiter.check([charge()])
    # Then the second write is the busy variant, and the request is admitted
    assert decision.admitted
    first, second = store.writes
    assert first[0].busy is False and second[0].busy is True
    assert second[0].day_same is True


def test_a_rejection_from_a_seen_state_costs_no_write() -> None:
    now_us = int(NOW * US)
    full = BucketState(tat_us=now_us + 5 * T_US)
    store = ScriptedStore((False, [full]))
    limiter = RateLimiter(store, clock=lambda: NOW)  # type: ignore[arg-type]
    assert not limiter.check([charge()]).admitted  # one write, learns the bucket is full
    assert not limiter.check([charge()]).admitted  # refused from what it saw: no write
    assert len(store.writes) == 1
