"""The limiter: GCRA (one stored value per bucket, its theoretical arrival time `tat`) plus
fixed-window daily and monthly quotas, and the revocation checks, all decided in ONE
conditional write to one bucket item.

Why this is exact under concurrency: the write's condition states the assumption it was
computed under (the bucket is busy and has room; or idle; the quota window is today's with
room; the token is not revoked). Writes to one item are serialised by DynamoDB, and the busy
path's update (`tat = tat + cost·T`, `used = used + cost`) commutes, so concurrent requests
all succeed while there is room and none succeeds past it: no read-then-write, no lost
update. When the assumption was wrong (a bucket gone idle, a new day), the failed condition
returns the item as it is, and the second write is computed from that.

Rejecting needs no write: `tat`, and the used counts within a window, only grow, so a state
we saw is never ahead of the real one, and a request it rejects is rejected by the real one.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from payplat.gateway.plans import Limits

US = 1_000_000
MAX_ATTEMPTS = 6  # writes that met a changed bucket, plus moves to another shard
BUCKET_TTL_S = 40 * 24 * 3600  # outlives a monthly window; an idle client's item expires


@dataclass(frozen=True, slots=True)
class BucketState:
    """A bucket item as stored (all absent for a new bucket)."""

    tat_us: int | None = None
    day: str | None = None
    day_used: int = 0
    month: str | None = None
    month_used: int = 0
    revoked_before: int | None = None  # tokens issued at or before this (unix s) are revoked
    revoked_jtis: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Charge:
    """One bucket to charge `cost` against, with the token's revocation facts if any."""

    key: str
    limits: Limits  # the whole plan; the bucket enforces its per-shard share
    cost: int = 1
    jti: str | None = None
    issued_at: int | None = None
    # Other shards of the same plan to try when this one refuses: with random placement one
    # shard can be spent while another has room, and the plan as a whole still does.
    other_shards: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Write:
    """A conditional update, in terms the store turns into one UpdateItem."""

    key: str
    busy: bool  # tat > now: add to it; else start from now
    tat_limit_us: int  # busy: admit only while tat <= this
    new_tat_us: int  # idle: the new value
    increment_us: int
    now_us: int
    day: str | None  # None: no daily quota
    day_same: bool
    day_room: int  # same day: admit only while used <= this
    month: str | None
    month_same: bool
    month_room: int
    cost: int
    jti: str | None
    issued_at: int | None
    expires_at: int


@dataclass(frozen=True, slots=True)
class Admitted:
    charge: Charge
    write: Write
    remaining: int
    reset_s: int


@dataclass(frozen=True, slots=True)
class Refused:
    """`limit` is "rate", "daily_quota", "monthly_quota" or "revoked"."""

    charge: Charge
    limit: str
    retry_after_s: int


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for the request: admitted (with header figures) or the refusal."""

    admitted: bool
    limits: Limits
    remaining: int = 0
    reset_s: int = 0
    refusal: Refused | None = None
    quota_remaining: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProofUse:
    """A DPoP proof's one use, recorded in the same write as the request's charge: a second
    request with the same proof finds it there and is refused. `key` names the proof (its
    key's thumbprint and jti), `expires_at` is when a replay would be stale anyway."""

    key: str
    expires_at: int


class LimiterUnavailable(Exception):
    """The bucket store could not be reached; the route decides to fail open or closed."""


class ProofReplayed(Exception):
    """The request's DPoP proof was used before: nothing was charged or recorded."""


class BucketStore(Protocol):
    def charge(
        self, writes: Sequence[Write], proof: ProofUse | None = None
    ) -> tuple[bool, list[BucketState | None]]:
        """Apply every write, and record the proof's use, or none. Returns (True, per write
        the item as the write left it, where known) or (False, per write the item as it is
        now, where its condition failed); raises ProofReplayed if the proof was used."""
        ...


def day_window(now: datetime) -> tuple[str, int]:
    """Today's window id (UTC) and the seconds until it ends."""
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return now.strftime("%Y%m%d"), math.ceil((tomorrow - now).total_seconds())


def month_window(now: datetime) -> tuple[str, int]:
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (first + timedelta(days=32)).replace(day=1)
    return now.strftime("%Y%m"), math.ceil((following - now).total_seconds())


def decide(charge: Charge, state: BucketState, now_s: float) -> Admitted | Refused:
    limits = charge.limits.per_shard()
    if charge.jti is not None and charge.jti in state.revoked_jtis:
        return Refused(charge, "revoked", 0)
    if (
        charge.issued_at is not None
        and state.revoked_before is not None
        and charge.issued_at <= state.revoked_before
    ):
        return Refused(charge, "revoked", 0)
    if charge.cost > limits.burst:
        return Refused(charge, "rate", 0)  # can never pass; the route costs too much

    now_us = int(now_s * US)
    interval_us = math.ceil(US / limits.rate_per_s)
    increment_us = charge.cost * interval_us
    tat_limit_us = now_us + (limits.burst - charge.cost) * interval_us
    busy = state.tat_us is not None and state.tat_us > now_us
    base_us = state.tat_us if busy and state.tat_us is not None else now_us
    if base_us > tat_limit_us:
        return Refused(charge, "rate", max(1, math.ceil((base_us - tat_limit_us) / US)))

    now = datetime.fromtimestamp(now_s, UTC)
    day, day_left_s = day_window(now)
    month, month_left_s = month_window(now)
    day_same = state.day == day
    month_same = state.month == month
    for quota, used_same, used, left_s, name in (
        (limits.daily_quota, day_same, state.day_used, day_left_s, "daily_quota"),
        (limits.monthly_quota, month_same, state.month_used, month_left_s, "monthly_quota"),
    ):
        if quota is not None and (used if used_same else 0) + charge.cost > quota:
            return Refused(charge, name, left_s)

    new_tat_us = base_us + increment_us
    write = Write(
        key=charge.key,
        busy=busy,
        tat_limit_us=tat_limit_us,
        new_tat_us=new_tat_us,
        increment_us=increment_us,
        now_us=now_us,
        day=day if limits.daily_quota is not None else None,
        day_same=day_same,
        day_room=(limits.daily_quota or 0) - charge.cost,
        month=month if limits.monthly_quota is not None else None,
        month_same=month_same,
        month_room=(limits.monthly_quota or 0) - charge.cost,
        cost=charge.cost,
        jti=charge.jti,
        issued_at=charge.issued_at,
        expires_at=int(now_s) + BUCKET_TTL_S,
    )
    return Admitted(
        charge,
        write,
        remaining=_remaining(new_tat_us, now_us, interval_us, limits.burst),
        reset_s=math.ceil((new_tat_us - now_us) / US),
    )


def _remaining(tat_us: int, now_us: int, interval_us: int, burst: int) -> int:
    return max(0, (now_us + burst * interval_us - tat_us) // interval_us)


class RateLimiter:
    """Charges buckets through `store`; remembers the last state it saw of each bucket (per
    container) so the usual request takes one write."""

    def __init__(
        self,
        store: BucketStore,
        clock: Callable[[], float] = time.time,
        pick_shard: Callable[[int], int] = random.randrange,
    ) -> None:
        self._store = store
        self._clock = clock
        self._pick_shard = pick_shard
        self._seen: dict[str, BucketState] = {}

    def charge(
        self,
        scope: str,
        subject: str,
        limits: Limits,
        *,
        cost: int = 1,
        jti: str | None = None,
        issued_at: int | None = None,
    ) -> Charge:
        """A charge on a random shard, with up to two others to fall back on."""
        first = self._pick_shard(limits.shards) if limits.shards > 1 else 0
        others = [(first + step) % limits.shards for step in range(1, min(limits.shards, 3))]
        return Charge(
            key=self.key(scope, subject, first),
            limits=limits,
            cost=cost,
            jti=jti,
            issued_at=issued_at,
            other_shards=tuple(self.key(scope, subject, shard) for shard in others),
        )

    @staticmethod
    def key(scope: str, subject: str, shard: int) -> str:
        return f"BUCKET#{scope}#{subject}#{shard}"

    def check(self, charges: Sequence[Charge], proof: ProofUse | None = None) -> Decision:
        """Admit the request against every charge (all or none), or say which limit refused.
        With a DPoP proof, its use is recorded in the same write (ProofReplayed if used)."""
        states = [self._seen.get(charge.key, BucketState()) for charge in charges]
        for _ in range(MAX_ATTEMPTS):
            now_s = self._clock()
            outcomes = [decide(c, s, now_s) for c, s in zip(charges, states, strict=True)]
            refusals = [o for o in outcomes if isinstance(o, Refused)]
            movable = [r for r in refusals if r.limit != "revoked" and r.charge.other_shards]
            if refusals and len(movable) == len(refusals):
                charges = [
                    _next_shard(c) if c in {r.charge for r in movable} else c for c in charges
                ]
                states = [self._seen.get(charge.key, BucketState()) for charge in charges]
                continue
            if refusals:
                return _refused(refusals)
            admitted = [o for o in outcomes if isinstance(o, Admitted)]
            writes = [a.write for a in admitted]
            ok, items = self._store.charge(writes, proof) if proof else self._store.charge(writes)
            if ok:
                return self._admitted(admitted, items)
            states = [
                fresh if fresh is not None else state
                for fresh, state in zip(items, states, strict=True)
            ]
            for charge, state in zip(charges, states, strict=True):
                self._seen[charge.key] = state
        # Only reachable under extreme churn of one bucket: answer as limited, briefly.
        return _refused([Refused(charges[0], "rate", 1)])

    def _admitted(self, admitted: list[Admitted], items: list[BucketState | None]) -> Decision:
        for item, after in zip(admitted, items, strict=True):
            self._seen[item.write.key] = after or _assumed_state(item.write)
        primary, after = admitted[0], items[0]
        limits = primary.charge.limits
        share = limits.per_shard()
        now_us = primary.write.now_us
        remaining, reset_s = primary.remaining, primary.reset_s
        quotas: dict[str, tuple[int, int]] = {}
        if after is not None and after.tat_us is not None:
            # The item as written: exact figures even with concurrent writers.
            interval_us = math.ceil(US / share.rate_per_s)
            remaining = _remaining(after.tat_us, now_us, interval_us, share.burst)
            reset_s = math.ceil(max(0, after.tat_us - now_us) / US)
            now = datetime.fromtimestamp(now_us / US, UTC)
            for name, quota, used, window in (
                ("daily", share.daily_quota, after.day_used, day_window(now)),
                ("monthly", share.monthly_quota, after.month_used, month_window(now)),
            ):
                if quota is not None:
                    quotas[name] = (max(0, quota - used) * limits.shards, window[1])
        return Decision(
            admitted=True,
            limits=limits,
            remaining=remaining * limits.shards,
            reset_s=reset_s,
            quota_remaining=quotas,
        )


def _next_shard(charge: Charge) -> Charge:
    key, *rest = charge.other_shards
    return replace(charge, key=key, other_shards=tuple(rest))


def _assumed_state(write: Write) -> BucketState:
    return BucketState(
        tat_us=write.new_tat_us,
        day=write.day,
        day_used=0,
        month=write.month,
        month_used=0,
    )


def _refused(refusals: list[Refused]) -> Decision:
    # Revocation first (it is not a matter of waiting), then the longest wait.
    worst = max(refusals, key=lambda r: (r.limit == "revoked", r.retry_after_s))
    return Decision(admitted=False, limits=worst.charge.limits, refusal=worst)
