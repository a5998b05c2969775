"""`payplat`: the operator's command line (plans, clients, users, tokens, signing keys, ledger).

It talks to the tables named by the PAYPLAT_* environment variables, with boto3's usual
configuration (profile, region, credentials), or, when PAYPLAT_CLIENTS_TABLE is unset, to the
local platform that `make run` started (its .payplat/local.json says where).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from payplat.config import Env

if TYPE_CHECKING:
    from payplat.clients.dal.clients_table import DynamoClientStore
    from payplat.config import OperatorSettings
    from payplat.gateway.dal.rate_limit_table import DynamoBucketStore
    from payplat.gateway.plans import Limits
    from payplat.gateway.revocation import Revoker
    from payplat.oauth.dal.kms_signer import KmsKeys
    from payplat.oauth.dal.tokens_table import DynamoTokenStore
    from payplat.oauth.dal.users_table import DynamoUserStore
    from payplat.ops.admin import KeyStatus
    from payplat.payments.dal.ledger_table import DynamoLedgerStore

STATE_DIR = Path(os.environ.get("PAYPLAT_STATE_DIR", ".payplat"))
EXIT_FAILED = 1  # not found, or the operation failed
EXIT_BAD_INPUT = 2  # as argparse exits on a usage error
EXIT_INTERRUPTED = 130

EPILOG = """\
output: people-friendly text by default; --json, given before or after the command
(`payplat --json clients list` or `payplat clients list --json`), prints one JSON document
on stdout instead. Errors go to stderr.

exit status: 0 done, 1 not found (or the operation failed), 2 bad input.

Secrets are shown once, when created or rotated; passwords are never shown. Every change is
audited (actor sub "operator") onto the audit stream named by PAYPLAT_AUDIT_STREAM."""

SECRET_NOTICE = "This secret is shown only now: it cannot be shown again. Store it safely."


class _Failure(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _use_local_platform() -> bool:
    """Point boto3 and the PAYPLAT_* settings at the local platform unless configured already.
    True when it is the local platform (its loopback redirect URIs are allowed then)."""
    if os.environ.get(Env.CLIENTS_TABLE):
        return False
    path = STATE_DIR / "local.json"
    if not path.exists():
        raise _Failure(
            f"no {Env.CLIENTS_TABLE} set and no {path}: start `make run` first"
            " (or set the PAYPLAT_* variables of a deployed platform)",
            EXIT_FAILED,
        )
    local = json.loads(path.read_text())
    os.environ.setdefault("AWS_ENDPOINT_URL", local["aws_endpoint_url"])
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for key, name in local["tables"].items():
        os.environ.setdefault(key, name)
    os.environ.setdefault(Env.AUDIT_STREAM, local["audit_stream"])
    # Absent from an older local.json: the settings then say what is missing.
    for key, value in (
        (Env.SIGNING_KEY_ID, "signing_key_id"),
        (Env.ISSUER, "base_url"),
        (Env.AUDIT_ARCHIVE_BUCKET, "audit_archive_bucket"),
    ):
        if local.get(value):
            os.environ.setdefault(key, local[value])
    return True


def _audit_to_stream(changes_something: bool) -> None:
    """Operator actions are audited straight onto the audit stream (a CLI is not a request
    path: a synchronous put is the reliable choice here). A change nobody could audit is not
    made: without a stream only reading commands run."""
    from payplat.audit import events as audit

    stream = os.environ.get(Env.AUDIT_STREAM)
    if not stream:
        if changes_something:
            raise _Failure(
                f"operator changes are audited: set {Env.AUDIT_STREAM} (the stack's"
                " AuditStream output)",
                EXIT_BAD_INPUT,
            )
        audit.set_sinks(lambda line: print(line, file=sys.stderr))
        return
    import boto3

    kinesis = boto3.client("kinesis")

    def put(line: str) -> None:
        # In the subscription filter's envelope, like every record on the stream.
        data = audit.envelope([line], log_group="/payplat/operator-cli", log_stream="operator")
        kinesis.put_record(StreamName=stream, Data=data, PartitionKey="operator")

    audit.set_sinks(put)


# -- arguments ----------------------------------------------------------------------------------

_DURATION = re.compile(r"([0-9]{1,7})([smhd])")
_UNIT_S = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}


def _duration(text: str) -> int:
    """`90s`, `30m`, `24h`, `7d` in seconds (an argparse type: a bad one is a usage error)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: a whole number and a unit (s, m, h, d),"
            " e.g. 90s, 30m, 24h, 7d"
        )
    return int(match[1]) * _UNIT_S[match[2]]


class _Group:
    """One command group (`payplat clients ...`): its commands all take --json too."""

    def __init__(self, groups: Any, name: str, help_text: str, json_flag: Any) -> None:
        parser = groups.add_parser(name, help=help_text, description=help_text)
        self._commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
        self._json_flag = json_flag

    def command(self, name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self._commands.add_parser(
            name, help=help_text, description=help_text, parents=[self._json_flag]
        )
        return parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="payplat",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    # Accepted after the command too; SUPPRESS keeps an absent flag there from resetting
    # one given before the command.
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document"
    )
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")
    _plans_arguments(_Group(groups, "plans", "rate-limit plans", json_flag))
    _clients_arguments(_Group(groups, "clients", "partner applications (OAuth clients)", json_flag))
    _users_arguments(
        _Group(groups, "users", "account holders (who sign in at the authorize page)", json_flag)
    )
    tokens = _Group(groups, "tokens", "access tokens", json_flag)
    revoke = tokens.command("revoke", "revoke one access token by its jti")
    revoke.add_argument("jti")
    revoke.add_argument("--client", required=True, help="the client the token was issued to")
    _keys_arguments(_Group(groups, "keys", "token-signing keys (KMS)", json_flag))
    _ledger_arguments(_Group(groups, "ledger", "the double-entry ledger", json_flag))
    _report_arguments(groups, json_flag)
    _audit_arguments(_Group(groups, "audit", "the audit trail (stream and archive)", json_flag))
    return parser


def _plans_arguments(plans: _Group) -> None:
    plans.command("list", "every plan in force")
    set_plan = plans.command("set", "create or change a plan (applies within seconds)")
    set_plan.add_argument("name")
    set_plan.add_argument("--rate", type=float, required=True, help="requests per second")
    set_plan.add_argument("--burst", type=int, required=True, help="bucket size (requests)")
    set_plan.add_argument("--daily", type=int, default=None, help="daily quota (UTC days)")
    set_plan.add_argument("--monthly", type=int, default=None, help="monthly quota")
    set_plan.add_argument("--shards", type=int, default=0, help="bucket shards (0: derived)")


def _clients_arguments(clients: _Group) -> None:
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
    show = clients.command("show", "one client's registration (never a secret or hash)")
    show.add_argument("client_id")
    rotate_secret = clients.command(
        "rotate-secret", "issue a new secret; the old one keeps working for a while"
    )
    rotate_secret.add_argument("client_id")
    rotate_secret.add_argument(
        "--overlap",
        type=_duration,
        default="24h",
        metavar="DURATION",
        help="how long the old secret keeps working, 0s to 7d (default 24h)",
    )
    client_plan = clients.command("set-plan", "move a client to another plan")
    client_plan.add_argument("client_id")
    client_plan.add_argument("plan")
    disable = clients.command("disable", "disable a client and revoke its tokens")
    disable.add_argument("client_id")


def _users_arguments(users: _Group) -> None:
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


def _keys_arguments(keys: _Group) -> None:
    keys.command("list", "the keys in force and their state")
    rotate_key = keys.command(
        "rotate",
        "create the next signing key; the old one stays published until its tokens have expired",
    )
    rotate_key.add_argument(
        "--publish-lead",
        type=_duration,
        default="6m",
        metavar="DURATION",
        help="published for this long before it signs (default 6m, longer than JWKS caching);"
        " 0s signs at once: for a compromised key",
    )
    rotate_key.add_argument(
        "--retire-after",
        type=_duration,
        default=None,
        metavar="DURATION",
        help="how long the old key stays published once the new one signs (default 61m, the"
        " longest token lifetime and leeway); 0s withdraws it at once, so every token it"
        " signed stops verifying: for a compromised key",
    )


def _ledger_arguments(ledger: _Group) -> None:
    verify = ledger.command(
        "verify",
        "check every ledger invariant over the whole table (exit 1 on a violation)",
    )
    verify.add_argument(
        "--opening",
        action="append",
        default=[],
        metavar="ACCOUNT=AMOUNT",
        help="an account's opening available balance in minor units (repeatable)",
    )
    verify.add_argument(
        "--openings",
        type=Path,
        default=None,
        metavar="FILE",
        help='a JSON object of opening balances, {"acct_...": 250000, ...}',
    )


def _audit_arguments(audit: _Group) -> None:
    tail = audit.command(
        "tail", "print the audit stream's events readably, each once (--json: one per line)"
    )
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    tail.add_argument(
        "--type", default=None, help="only this type (payment.captured), or a prefix (payment.)"
    )
    tail.add_argument("--client", default=None, help="only events of this client id")
    tail.add_argument("--limit", type=int, default=None, help="only the last N events")
    verify = audit.command(
        "verify",
        "check the archived events against their signed, hash-chained seals; report the first"
        " break (exit 1)",
    )
    when = "a duration back from now (24h, 7d), now, an ISO date or date-time (UTC)"
    verify.add_argument("--since", default=None, metavar="WHEN", help=f"seals from: {when}")
    verify.add_argument("--until", default=None, metavar="WHEN", help="seals before (excluded)")


def _report_arguments(groups: Any, json_flag: argparse.ArgumentParser) -> None:
    help_text = (
        "finance-ops figures per currency: payments, success and failure, captures pending,"
        " refunds, net volume, top partners, payments over time"
    )
    report = groups.add_parser(
        "report",
        help=help_text,
        description=help_text + ". Amounts are in the currency's units (--json: minor units).",
        parents=[json_flag],
    )
    report.set_defaults(command="")  # one command, no sub-commands: COMMANDS["report", ""]
    when = "a duration back from now (24h, 7d), now, an ISO date or date-time (UTC)"
    report.add_argument(
        "--since", default="24h", metavar="WHEN", help=f"from (default 24h): {when}"
    )
    report.add_argument(
        "--until", default="now", metavar="WHEN", help="to, excluded (default now, this second in)"
    )
    report.add_argument(
        "--currency",
        type=_report_currency,
        default=None,
        help="one currency only (ISO 4217, e.g. EUR)",
    )
    report.add_argument(
        "--top",
        type=_report_top,
        default=5,
        metavar="N",
        help="top partners per currency (default 5)",
    )


def _report_currency(text: str) -> str:
    from payplat.payments.money import EXPONENTS

    code = text.strip().upper()
    if code not in EXPONENTS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a currency payplat settles")
    return code


def _report_top(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1")
    return int(text)


def _openings(args: argparse.Namespace) -> dict[str, int] | None:
    """Opening balances are not entries (the ledger keeps none): the operator supplies them,
    or the reconciliation of `available` to its opening is skipped."""
    openings: dict[str, int] = {}
    if args.openings is not None:
        try:
            loaded = json.loads(args.openings.read_text())
        except OSError as exc:
            raise ValueError(f"cannot read {args.openings}: {exc.strerror}") from exc
        if not isinstance(loaded, dict):
            raise ValueError(f"{args.openings} is not a JSON object of account -> amount")
        openings |= {str(account): int(amount) for account, amount in loaded.items()}
    for pair in args.opening:
        account, sep, amount = pair.partition("=")
        if not sep or not account:
            raise ValueError(f"--opening takes ACCOUNT=AMOUNT, not {pair!r}")
        openings[account] = int(amount)
    return openings if openings or args.openings is not None else None


# -- the platform a command works on -------------------------------------------------------------


class _Platform:
    """The stores, built on first use (so `plans list` creates no KMS client)."""

    def __init__(self, settings: OperatorSettings, local: bool) -> None:
        self.settings = settings
        self.local = local

    @cached_property
    def clients(self) -> DynamoClientStore:
        from payplat.clients.dal.clients_table import DynamoClientStore

        return DynamoClientStore(self.settings.clients_table)

    @cached_property
    def buckets(self) -> DynamoBucketStore:
        from payplat.gateway.dal.rate_limit_table import DynamoBucketStore

        return DynamoBucketStore(self.settings.rate_limits_table)

    @cached_property
    def users(self) -> DynamoUserStore:
        from payplat.oauth.dal.users_table import DynamoUserStore

        return DynamoUserStore(self.settings.users_table)

    @cached_property
    def tokens(self) -> DynamoTokenStore:
        from payplat.oauth.dal.tokens_table import DynamoTokenStore

        return DynamoTokenStore(self.settings.tokens_table)

    @cached_property
    def ledger(self) -> DynamoLedgerStore:
        from payplat.payments.dal.ledger_table import DynamoLedgerStore

        return DynamoLedgerStore(self.settings.ledger_table)

    @cached_property
    def kms(self) -> KmsKeys:
        from payplat.oauth.dal.kms_signer import KmsKeys

        return KmsKeys()

    @cached_property
    def revoker(self) -> Revoker:
        from payplat.gateway.revocation import Revoker

        return Revoker(self.clients, self.buckets, self.buckets, self.tokens)


@dataclass(frozen=True)
class _Output:
    data: Any  # the --json document
    text: str  # what people read
    code: int = 0
    notice: str | None = None  # to stderr with --json, where `text` is not printed


Command = Callable[[argparse.Namespace, _Platform, int], _Output]


# -- formatting ---------------------------------------------------------------------------------


def _iso(epoch: int | None) -> str | None:
    """ISO 8601 UTC; None for no time (and for 0: a key in force since the deployment)."""
    if not epoch:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _span(seconds: int) -> str:
    """The largest whole unit: 86400 -> 1d, 360 -> 6m."""
    for unit, size in _UNIT_S.items():
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _fields(document: dict[str, Any]) -> str:
    width = max(len(name) for name in document) + 1
    lines = []
    for name, value in document.items():
        if isinstance(value, list):
            shown = " ".join(str(v) for v in value) or "-"
        elif isinstance(value, dict):
            shown = json.dumps(value, separators=(",", ":"))
        else:
            shown = "-" if value is None or value == "" else str(value)
        lines.append(f"{name + ':':<{width}} {shown}")
    return "\n".join(lines)


def _major(amount: int, currency: str) -> str:
    from payplat.payments.money import EXPONENTS

    exponent = EXPONENTS.get(currency, 2)
    return f"{Decimal(amount).scaleb(-exponent):.{exponent}f} {currency}"


# -- commands -----------------------------------------------------------------------------------


def _plans_list(args: argparse.Namespace, platform: _Platform, now: int) -> _Output:
    from payplat.ops import admin

    found = admin.plans(platform.buckets)
    lines = [f"{'plan':<14}{'rate/s':>10}{'burst':>8}{'daily':>12}{'monthly':>12}{'shards':>8}"]
    lines += [
        f"{plan.name:<14}{plan.rate_per_s:>10g}{plan.burst:>8}"
        f"{plan.daily_quota or '-':>12}{plan.monthly_quota or '-':>12}{plan.shards:>8}"
        for plan in found
    ]
    return _Output([_plan(plan) for plan in found], "\n".join(lines))


def _plan(plan: Limits) -> dict[str, Any]:
    return {
        "name": plan.name,
        "rate_per_s": plan.rate_per_s,
        "burst": plan.burst,
        "daily_quota": plan.daily_quota,
        "monthly_quota": plan.monthly_quota,
        "shards": plan.shards,
    }


def _plans_set(args: argparse.Namespace, platform: _Platform, now: int) -> _Output:
    from payplat.gateway.plans import Limits
    from payplat.ops import admin

    plan = admin.put_plan(
        platform.buckets,
        Limits(args.name, args.rate, args.burst, args.daily, args.monthly, args.shards),
    )
    return _Output(_plan(plan), f"plan {plan.name} set")


def _clients_list(args: argparse.Namespace, platform: _Platform, now: int) -> _Output:
    from payplat.ops import admin

    found = sorted(platform.clients.list(), key=lambda c: (c.created_at, c.client_id))
    lines = [
        f"{c.client_id}  {c.status:<8} {c.plan:<10} {c.name}  owner {c.owner}"
        f"  [{' '.join(sorted(c.scopes))}]"
        for c in found
    ]
    data = [admin.describe_client(c, platform.settings.issuer) for c in found]
    return _Output(data, "\n".join(lines) or "no clients")


def _clients_show(args: argparse.Namespace, platform: _Platform, now: int) -> _Output:
    from payplat.ops import admin

    client = admin.get_client(platform.clients, args.client_id)
    description = admin.describe_client(client, platform.settings.issuer)
    shown = dict(description)
    shown["client_id_issued_at"] = _iso(description["client_id_issued_at"])
    if "previous_secret_expires_at" in shown:
        shown["previous_secret_expires_at"] = _iso(shown["previous_secret_expires_at"])
    if client.jwks is not None:
        kids = [str(key.get("kid", "?")) for key in client.jwks.get("keys", [])]
        shown["jwks"] = f"{len(kids)} key(s): {' '.join(kids)}"
    return _Output(description, _fields(shown))


def _clients_create(args: argparse.Namespace, platform: _Platform, now: int) -> _Output:
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
    return _Output(data, "\n".join(lines), notice=None if secret is None else SECRET_NOTICE)


def _clients_rotate_secret(args: argparse.Namespace, platform: _Platform, now: int) -> _Output:
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
        f"The previous secret keeps working until {_iso(until)} ({_span(args.overlap)} from now)."
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
    return _Output(data, text, notice=SECRET_NOTICE)


def _clients_set_plan(args: argparse.Namespace, platform: _Platform, now: int) -> _Output:
    from payplat.ops import admin

    client = admin.set_plan(platform.clients, platform.buckets, args.client_id, args.plan)
    return _Output(
        admin.describe_client(client, platform.settings.issuer),
        f"client {args.client_id} is on plan {args.plan}",
    )


def _clients_disable(args: argparse.Namespace, platform: _Platform, now: int) -> _Output:
    from payplat.ops import admin

    client = admin.disable_client(platform.clients, platform.revoker, args.client_id)
    return _Output(
        admin.describe_client(client, platform.settings.issuer),
        f"client {args.client_id} disabled; its tokens are revoked",
    )


def _users_list(args: argparse.Namespace, platform: _Platform, now: int) -> _Output:
    from payplat.ops import admin

    found = sorted(platform.users.list(), key=lambda u: u.username)
    lines = [f"{u.username:<20} {u.user_id:<24} {u.status:<8} {u.display_name}" for u in found]
    return _Output([admin.describe_user(u) for u in found], "\n".join(lines) or "no users")


def _users_create(args: argparse.Namespace, platform: _Platform, now: int) -> _Output:
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
    lines += [
        f"account {a.id}  opening balance {_major(a.available, a.currency)}" for a in accounts
    ]
    data = {
        **admin.describe_user(user),
        "accounts": [{**a.public(), "owner": a.owner} for a in accounts],
    }
    return _Output(data, "\n".join(lines))


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


def _tokens_revoke(args: argparse.Namespace, platform: _Platform, now: int) -> _Output:
    from payplat.ops import admin

    admin.revoke_token(platform.clients, platform.revoker, args.client, args.jti)
    return _Output(
        {"jti": args.jti, "client_id": args.client, "revoked": True}, f"token {args.jti} revoked"
    )


def _key(status: KeyStatus) -> dict[str, Any]:
    key = status.key
    return {
        "kid": key.kid,
        "key_id": key.key_id,
        "state": status.state,
        "created_at": _iso(key.created_at),
        "activates_at": _iso(key.activates_at),
        "retires_at": _iso(key.retires_at),
    }


def _keys_list(args: argparse.Namespace, platform: _Platform, now: int) -> _Output:
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
    return _Output(rows, "\n".join(lines))


def _keys_rotate(args: argparse.Namespace, platform: _Platform, now: int) -> _Output:
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
        else f"signs from {_iso(new.activates_at)} ({_span(args.publish_lead)} from now)"
    )
    lines = [f"new signing key {new.kid} (KMS {new.key_id}) is published now and {starts}"]
    for key in older:
        if key.published(now):
            lines.append(f"key {key.kid} stays published until {_iso(key.retires_at)}")
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
            {"kid": key.kid, "key_id": key.key_id, "retires_at": _iso(key.retires_at)}
            for key in older
        ],
    }
    return _Output(data, "\n".join(lines))


def _ledger_verify(args: argparse.Namespace, platform: _Platform, now: int) -> _Output:
    from payplat.payments.ledger_verify import verify

    openings = _openings(args)
    report = verify(platform.ledger.scan_records(), openings)
    data = {
        "ok": report.ok,
        "accounts": report.accounts,
        "payments": report.payments,
        "entries": report.entries,
        "refunds": report.refunds,
        "views": report.views,
        "violations": list(report.violations),
        "notes": list(report.notes),
    }
    return _Output(data, report.summary(), 0 if report.ok else EXIT_FAILED)


def _report(args: argparse.Namespace, platform: _Platform, now: int) -> _Output:
    from payplat.ops import finance
    from payplat.ops.dal.ledger_reports import money_records

    end = now + 1  # the current second is in: a payment made just now is on the report
    window = finance.Window(finance.instant(args.since, end), finance.instant(args.until, end))
    records = money_records(platform.settings.ledger_table, window.since, window.until)
    found = finance.report(records, window, currency=args.currency, top=args.top)
    return _Output(finance.document(found), finance.summary(found))


def _audit_tail(args: argparse.Namespace, platform: _Platform, now: int) -> _Output:
    from payplat.audit.dal.stream import AuditStream
    from payplat.ops.audit_view import Filter, events

    if not platform.settings.audit_stream:
        raise ValueError(f"set {Env.AUDIT_STREAM} (the stack's AuditStream output)")
    stream = AuditStream(platform.settings.audit_stream)
    where = Filter(type=args.type, client=args.client)
    found = list(events(stream, where))
    if args.limit is not None:
        found = found[-args.limit :] if args.limit > 0 else []
    for event in found:
        _print_event(event, as_json=args.json)
    if args.follow:
        seen = {str(e.get("event_id")) for e in events(stream, Filter())}
        for event in events(stream, where, follow=True, poll=lambda: time.sleep(1), seen=seen):
            _print_event(event, as_json=args.json)
    return _Output(None, "")


def _print_event(event: dict[str, Any], *, as_json: bool) -> None:
    from payplat.ops.audit_view import render

    print(json.dumps(event, separators=(",", ":")) if as_json else render(event), flush=True)


def _audit_verify(args: argparse.Namespace, platform: _Platform, now: int) -> _Output:
    from datetime import UTC, datetime

    from payplat.audit.dal.archive import AuditArchive, KmsSignatureCheck
    from payplat.ops import finance
    from payplat.ops.audit_view import as_json, summary, verify_archive

    if not platform.settings.audit_archive_bucket:
        raise ValueError(f"set {Env.AUDIT_ARCHIVE_BUCKET} (the stack's AuditArchiveBucket)")

    def moment(text: str | None) -> datetime | None:
        return None if text is None else datetime.fromtimestamp(finance.instant(text, now), UTC)

    result = verify_archive(
        AuditArchive(platform.settings.audit_archive_bucket),
        KmsSignatureCheck(),
        since=moment(args.since),
        until=moment(args.until),
    )
    return _Output(as_json(result), "\n".join(summary(result)), 0 if result.ok else EXIT_FAILED)


READ_ONLY = frozenset(
    {
        ("audit", "tail"),
        ("audit", "verify"),
        ("plans", "list"),
        ("clients", "list"),
        ("clients", "show"),
        ("users", "list"),
        ("keys", "list"),
        ("ledger", "verify"),
        ("report", ""),
    }
)
COMMANDS: dict[tuple[str, str], Command] = {
    ("plans", "list"): _plans_list,
    ("plans", "set"): _plans_set,
    ("clients", "list"): _clients_list,
    ("clients", "show"): _clients_show,
    ("clients", "create"): _clients_create,
    ("clients", "rotate-secret"): _clients_rotate_secret,
    ("clients", "set-plan"): _clients_set_plan,
    ("clients", "disable"): _clients_disable,
    ("users", "list"): _users_list,
    ("users", "create"): _users_create,
    ("tokens", "revoke"): _tokens_revoke,
    ("keys", "list"): _keys_list,
    ("keys", "rotate"): _keys_rotate,
    ("ledger", "verify"): _ledger_verify,
    ("report", ""): _report,
    ("audit", "tail"): _audit_tail,
    ("audit", "verify"): _audit_verify,
}


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0), or a usage error argparse has explained (2)
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    try:
        output = _run(args)
    except _Failure as exc:
        return _fail(str(exc), exc.code)
    if args.json and output.data is not None:
        print(json.dumps(output.data, indent=2))
        if output.notice:
            print(f"payplat: {output.notice}", file=sys.stderr)
    elif not args.json and output.text:
        print(output.text)
    return output.code


def _run(args: argparse.Namespace) -> _Output:
    """The command, with every operator mistake turned into a message and an exit status."""
    from botocore.exceptions import BotoCoreError, ClientError

    from payplat.config import OperatorSettings, SettingsError, load
    from payplat.oauth.signing_keys import ConcurrentRotation
    from payplat.ops import admin

    try:
        local = _use_local_platform() or bool(os.environ.get(Env.LOCAL_MODE))
        _audit_to_stream(changes_something=(args.group, args.command) not in READ_ONLY)
        platform = _Platform(load(OperatorSettings), local)
        return COMMANDS[args.group, args.command](args, platform, int(time.time()))
    except admin.UnknownClient as exc:
        raise _Failure(f"no such client: {exc}", EXIT_FAILED) from exc
    except admin.UnknownUser as exc:
        raise _Failure(f"no such user: {exc}", EXIT_FAILED) from exc
    except SettingsError as exc:
        raise _Failure(f"configuration: {exc}", EXIT_BAD_INPUT) from exc
    except ValueError as exc:
        raise _Failure(str(exc), EXIT_BAD_INPUT) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise _Failure(f"AWS: {error.get('Code')}: {error.get('Message')}", EXIT_FAILED) from exc
    except BotoCoreError as exc:
        raise _Failure(f"AWS: {exc}", EXIT_FAILED) from exc
    except ConcurrentRotation as exc:
        raise _Failure(str(exc), EXIT_FAILED) from exc
    except KeyboardInterrupt as exc:
        raise _Failure("interrupted", EXIT_INTERRUPTED) from exc


def _fail(message: str, code: int) -> int:
    print(f"payplat: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
