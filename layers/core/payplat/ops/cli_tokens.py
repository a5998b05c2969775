"""`payplat tokens ...` and `payplat keys ...`: access tokens and the KMS keys that sign them."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from payplat.ops.cli_platform import Output, Platform
from payplat.ops.cli_text import Group, duration, iso, span

if TYPE_CHECKING:
    from payplat.ops.admin import KeyStatus


def tokens_arguments(tokens: Group) -> None:
    revoke = tokens.command("revoke", "revoke one access token by its jti")
    revoke.add_argument("jti")
    revoke.add_argument("--client", required=True, help="the client the token was issued to")


def tokens_revoke(args: argparse.Namespace, platform: Platform, now: int) -> Output:
    from payplat.ops import admin

    admin.revoke_token(platform.clients, platform.revoker, args.client, args.jti)
    return Output(
        {"jti": args.jti, "client_id": args.client, "revoked": True}, f"token {args.jti} revoked"
    )


def keys_arguments(keys: Group) -> None:
    keys.command("list", "the keys in force and their state")
    rotate_key = keys.command(
        "rotate",
        "create the next signing key; the old one stays published until its tokens have expired",
    )
    rotate_key.add_argument(
        "--publish-lead",
        type=duration,
        default="6m",
        metavar="DURATION",
        help="published for this long before it signs (default 6m, longer than JWKS caching);"
        " 0s signs at once: for a compromised key",
    )
    rotate_key.add_argument(
        "--retire-after",
        type=duration,
        default=None,
        metavar="DURATION",
        help="how long the old key stays published once the new one signs (default 61m, the"
        " longest token lifetime and leeway); 0s withdraws it at once, so every token it"
        " signed stops verifying: for a compromised key",
    )


def _key(status: KeyStatus) -> dict[str, Any]:
    key = status.key
    return {
        "kid": key.kid,
        "key_id": key.key_id,
        "state": status.state,
        "created_at": iso(key.created_at),
        "activates_at": iso(key.activates_at),
        "retires_at": iso(key.retires_at),
    }


def keys_list(args: argparse.Namespace, platform: Platform, now: int) -> Output:
    from payplat.ops import admin

    statuses = admin.signing_keys(
        platform.tokens, platform.kms, platform.settings.signing_key_id, now=now
    )
    rows = [_key(status) for status in statuses]
    lines = [f"{'kid':<44} {'state':<9} {'activates_at':<21} {'retires_at':<21} kms key"]
    lines += [
        f"{row['kid']:<44} {row['state']:<9} {row['activates_at'] or '(deployment)':<21}"
        f" {row['retires_at'] or '-':<21} {row['key_id']}"
        for row in rows
    ]
    return Output(rows, "\n".join(lines))


def keys_rotate(args: argparse.Namespace, platform: Platform, now: int) -> Output:
    from payplat.oauth.signing_keys import current
    from payplat.ops import admin

    retire_after_s = (
        admin.DEFAULT_RETIRE_AFTER_S if args.retire_after is None else args.retire_after
    )
    new, in_force = admin.rotate_signing_key(
        platform.tokens,
        platform.kms,
        platform.settings.signing_key_id,
        now=now,
        publish_lead_s=args.publish_lead,
        retire_after_s=retire_after_s,
    )
    signing = admin.KeyStatus(new, new.state(now, current(in_force, now)))
    older = [key for key in in_force if key != new]
    starts = (
        "signs from now on"
        if new.activates_at <= now
        else f"signs from {iso(new.activates_at)} ({span(args.publish_lead)} from now)"
    )
    lines = [f"new signing key {new.kid} (KMS {new.key_id}) is published now and {starts}"]
    for key in older:
        if key.published(now):
            lines.append(f"key {key.kid} stays published until {iso(key.retires_at)}")
        else:
            lines.append(f"key {key.kid} is withdrawn from the JWKS now")
    if args.publish_lead < admin.DEFAULT_PUBLISH_LEAD_S:
        lines.append(
            "note: relying parties with a cached JWKS may meet the new kid before they fetch"
            " it; the oauth function picks the new key up within its config cache TTL"
        )
    if retire_after_s < admin.DEFAULT_RETIRE_AFTER_S:
        lines.append(
            "note: tokens the old key signed stop verifying when it leaves the JWKS, before"
            " they expire"
        )
    data = {
        **_key(signing),
        "retiring": [
            {"kid": key.kid, "key_id": key.key_id, "retires_at": iso(key.retires_at)}
            for key in older
        ],
    }
    return Output(data, "\n".join(lines))
