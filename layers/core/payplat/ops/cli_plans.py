"""`payplat plans ...`: the rate-limit plans."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from payplat.ops.cli_platform import Output, Platform
from payplat.ops.cli_text import Group

if TYPE_CHECKING:
    from payplat.gateway.plans import Limits


def plans_arguments(plans: Group) -> None:
    plans.command("list", "every plan in force")
    set_plan = plans.command("set", "create or change a plan (applies within seconds)")
    set_plan.add_argument("name")
    set_plan.add_argument("--rate", type=float, required=True, help="requests per second")
    set_plan.add_argument("--burst", type=int, required=True, help="bucket size (requests)")
    set_plan.add_argument("--daily", type=int, default=None, help="daily quota (UTC days)")
    set_plan.add_argument("--monthly", type=int, default=None, help="monthly quota")
    set_plan.add_argument("--shards", type=int, default=0, help="bucket shards (0: derived)")


def plans_list(args: argparse.Namespace, platform: Platform, now: int) -> Output:
    from payplat.ops import admin

    found = admin.plans(platform.buckets)
    lines = [f"{'plan':<14}{'rate/s':>10}{'burst':>8}{'daily':>12}{'monthly':>12}{'shards':>8}"]
    lines += [
        f"{plan.name:<14}{plan.rate_per_s:>10g}{plan.burst:>8}"
        f"{plan.daily_quota or '-':>12}{plan.monthly_quota or '-':>12}{plan.shards:>8}"
        for plan in found
    ]
    return Output([_plan(plan) for plan in found], "\n".join(lines))


def _plan(plan: Limits) -> dict[str, Any]:
    return {
        "name": plan.name,
        "rate_per_s": plan.rate_per_s,
        "burst": plan.burst,
        "daily_quota": plan.daily_quota,
        "monthly_quota": plan.monthly_quota,
        "shards": plan.shards,
    }


def plans_set(args: argparse.Namespace, platform: Platform, now: int) -> Output:
    from payplat.gateway.plans import Limits
    from payplat.ops import admin

    plan = admin.put_plan(
        platform.buckets,
        Limits(args.name, args.rate, args.burst, args.daily, args.monthly, args.shards),
    )
    return Output(_plan(plan), f"plan {plan.name} set")
