"""`payplat clients ...`: partner applications (OAuth clients) and their secrets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from payplat.ops.cli_platform import Output, Platform
from payplat.ops.cli_text import Group, duration, fields, iso, span

SECRET_NOTICE = "This secret is shown only now: it cannot be shown again. Store it safely."


def clients_arguments(clients: Group) -> None:
    clients.command("list", "every client (never a secret)")
    create = clients.command(
        "create", "register a client; its secret is printed once, and only then"
    )
    create.add_argument("--name", required=True, help="the application's name")
    create.add_argument(
        "--owner", required=True, help="the account holder it acts for (a user id, usr_...)"
    )
    create.add_argument("--scope", required=True, help='space-separated, e.g. "payments:read"')
    create.add_argument(
        "--grant-type",
        action="append",
        default=[],
        metavar="GRANT",
        help="repeatable (default: client_credentials)",
    )
    create.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        metavar="URI",
        help="repeatable; https (http to loopback on the local platform only)",
    )
    create.add_argument("--plan", default="standard", help="rate-limit plan (default standard)")
    create.add_argument(
        "--auth-method",
        default="client_secret_basic",
        choices=("client_secret_basic", "client_secret_post", "private_key_jwt"),
        help="token endpoint authentication (default client_secret_basic)",
    )
    create.add_argument(
        "--jwks",
        type=Path,
        default=None,
        metavar="FILE",
        help="the client's public keys, a JWK Set (private_key_jwt only)",
    )
    create.add_argument(
        "--require-par",
        action="store_true",
        help="its authorization requests must be pushed first (RFC 9126 PAR)",
    )
    create.add_argument(
        "--dpop-bound",
        action="store_true",
        help="it gets DPoP-bound access tokens only (RFC 9449), never bearer ones",
    )
    show = clients.command("show", "one client's registration (never a secret or hash)")
    show.add_argument("client_id")
    rotate_secret = clients.command(
        "rotate-secret", "issue a new secret; the old one keeps working for a while"
    )
    rotate_secret.add_argument("client_id")
    rotate_secret.add_argument(
        "--overlap",
        type=duration,
        default="24h",
        metavar="DURATION",
        help="how long the old secret keeps working, 0s to 7d (default 24h)",
    )
    client_plan = clients.command("set-plan", "move a client to another plan")
    client_plan.add_argument("client_id")
    client_plan.add_argument("plan")
    disable = clients.command("disable", "disable a client and revoke its tokens")
    disable.add_argument("client_id")


def clients_list(args: argparse.Namespace, platform: Platform, now: int) -> Output:
    from payplat.ops import admin

    found = sorted(platform.clients.list(), key=lambda c: (c.created_at, c.client_id))
    lines = [
        f"{c.client_id}  {c.status:<8} {c.plan:<10} {c.name}  owner {c.owner}"
        f"  [{' '.join(sorted(c.scopes))}]"
        for c in found
    ]
    data = [admin.describe_client(c, platform.settings.issuer) for c in found]
    return Output(data, "\n".join(lines) or "no clients")


def clients_show(args: argparse.Namespace, platform: Platform, now: int) -> Output:
    from payplat.ops import admin

    client = admin.get_client(platform.clients, args.client_id)
    description = admin.describe_client(client, platform.settings.issuer)
    shown = dict(description)
    shown["client_id_issued_at"] = iso(description["client_id_issued_at"])
    if "previous_secret_expires_at" in shown:
        shown["previous_secret_expires_at"] = iso(shown["previous_secret_expires_at"])
    if client.jwks is not None:
        kids = [str(key.get("kid", "?")) for key in client.jwks.get("keys", [])]
        shown["jwks"] = f"{len(kids)} key(s): {' '.join(kids)}"
    return Output(description, fields(shown))


def clients_create(args: argparse.Namespace, platform: Platform, now: int) -> Output:
    from payplat.ops import admin

    jwks = None
    if args.jwks is not None:
        try:
            jwks = json.loads(args.jwks.read_text())
        except OSError as exc:
            raise ValueError(f"cannot read {args.jwks}: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise ValueError(f"{args.jwks} is not JSON: {exc.msg}") from exc
    client, secret = admin.create_client(
        platform.clients,
        platform.users,
        platform.buckets,
        name=args.name,
        owner=args.owner,
        scopes=args.scope.split(),
        grant_types=args.grant_type or ["client_credentials"],
        redirect_uris=args.redirect_uri,
        plan=args.plan,
        auth_method=args.auth_method,
        jwks=jwks,
        local=platform.local,
        require_pushed_authorization_requests=args.require_par,
        dpop_bound_access_tokens=args.dpop_bound,
    )
    data = admin.describe_client(client, platform.settings.issuer)
    lines = [
        f"client {client.client_id} created: {client.name!r}, for {client.owner},"
        f" plan {client.plan}, scope {data['scope']}",
        f"client_id:     {client.client_id}",
    ]
    if secret is None:
        lines.append("It authenticates with private_key_jwt: it has no secret.")
    else:
        data["client_secret"] = secret
        lines += [f"client_secret: {secret}", SECRET_NOTICE]
    return Output(data, "\n".join(lines), notice=None if secret is None else SECRET_NOTICE)


def clients_rotate_secret(args: argparse.Namespace, platform: Platform, now: int) -> Output:
    from payplat.ops import admin

    client, secret = admin.rotate_client_secret(
        platform.clients, args.client_id, overlap_s=args.overlap, now=now
    )
    until = client.previous_secret_expires_at
    data = {
        "client_id": client.client_id,
        "client_secret": secret,
        "previous_secret_expires_at": until,
    }
    old = (
        f"The previous secret keeps working until {iso(until)} ({span(args.overlap)} from now)."
        if args.overlap
        else "The previous secret no longer works."
    )
    text = "\n".join(
        [
            f"new secret for client {client.client_id}",
            f"client_secret: {secret}",
            SECRET_NOTICE,
            old,
        ]
    )
    return Output(data, text, notice=SECRET_NOTICE)


def clients_set_plan(args: argparse.Namespace, platform: Platform, now: int) -> Output:
    from payplat.ops import admin

    client = admin.set_plan(platform.clients, platform.buckets, args.client_id, args.plan)
    return Output(
        admin.describe_client(client, platform.settings.issuer),
        f"client {args.client_id} is on plan {args.plan}",
    )


def clients_disable(args: argparse.Namespace, platform: Platform, now: int) -> Output:
    from payplat.ops import admin

    client = admin.disable_client(platform.clients, platform.revoker, args.client_id)
    return Output(
        admin.describe_client(client, platform.settings.issuer),
        f"client {args.client_id} disabled; its tokens are revoked",
    )
