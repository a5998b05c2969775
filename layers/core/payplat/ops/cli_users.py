"""`payplat users ...`: account holders and their accounts."""

from __future__ import annotations

import argparse
import getpass
import sys

from payplat.ops.cli_platform import Output, Platform
from payplat.ops.cli_text import Group, major


def users_arguments(users: Group) -> None:
    users.command("list", "every user (never a password hash)")
    create_user = users.command("create", "create a user and open their accounts")
    create_user.add_argument("username")
    create_user.add_argument("--display-name", default=None)
    create_user.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from stdin (else it is asked for twice on a terminal)",
    )
    create_user.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="CURRENCY=OPENING_BALANCE",
        help="open acct_<username>_<currency> with a balance in minor units (repeatable)",
    )


def users_list(args: argparse.Namespace, platform: Platform, now: int) -> Output:
    from payplat.ops import admin

    found = sorted(platform.users.list(), key=lambda u: u.username)
    lines = [f"{u.username:<20} {u.user_id:<24} {u.status:<8} {u.display_name}" for u in found]
    return Output([admin.describe_user(u) for u in found], "\n".join(lines) or "no users")


def users_create(args: argparse.Namespace, platform: Platform, now: int) -> Output:
    from payplat.ops import admin

    openings = []
    for pair in args.account:
        currency, sep, amount = pair.partition("=")
        if not sep or not currency or not amount.strip().isdigit():
            raise ValueError(
                f"--account takes CURRENCY=OPENING_BALANCE in minor units (EUR=250000),"
                f" not {pair!r}"
            )
        openings.append(admin.Opening(currency.strip(), int(amount)))
    user, accounts = admin.create_account_holder(
        platform.users,
        platform.ledger,
        args.username,
        lambda: _password(args),
        display_name=args.display_name,
        openings=openings,
        now=now,
    )
    lines = [f"user {user.username} created ({user.user_id}, {user.display_name!r})"]
    lines += [f"account {a.id}  opening balance {major(a.available, a.currency)}" for a in accounts]
    data = {
        **admin.describe_user(user),
        "accounts": [{**a.public(), "owner": a.owner} for a in accounts],
    }
    return Output(data, "\n".join(lines))


def _password(args: argparse.Namespace) -> str:
    """From stdin with --password-stdin (one line), else asked for twice on a terminal."""
    if args.password_stdin:
        text = sys.stdin.read()
        password = text.removesuffix("\n").removesuffix("\r")
        if "\n" in password:
            raise ValueError("--password-stdin takes one line")
        return password
    if not sys.stdin.isatty():
        raise ValueError(
            "no password: pass it on stdin with --password-stdin, or run on a terminal to be"
            " asked for it"
        )
    try:
        password = getpass.getpass(f"password for {args.username}: ")
        again = getpass.getpass("the same password again: ")
    except EOFError as exc:
        raise ValueError("no password given") from exc
    if password != again:
        raise ValueError("the two passwords differ")
    return password
