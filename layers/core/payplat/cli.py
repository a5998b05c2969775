"""`payplat`: the operator's command line (plans, clients, tokens).

It talks to the tables named by the PAYPLAT_*_TABLE environment variables, or, when those are
unset, to the local platform that `make run` started (its .payplat/local.json says where).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from payplat.config import Env

STATE_DIR = Path(os.environ.get("PAYPLAT_STATE_DIR", ".payplat"))


def _use_local_platform() -> None:
    """Point boto3 and the table names at the local platform unless configured already."""
    if os.environ.get(Env.CLIENTS_TABLE):
        return
    path = STATE_DIR / "local.json"
    if not path.exists():
        sys.exit(f"payplat: no {Env.CLIENTS_TABLE} set and no {path}: start `make run` first")
    local = json.loads(path.read_text())
    os.environ.setdefault("AWS_ENDPOINT_URL", local["aws_endpoint_url"])
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for key, name in local["tables"].items():
        os.environ.setdefault(key, name)
    os.environ.setdefault(Env.AUDIT_STREAM, local["audit_stream"])


def _audit_to_stream() -> None:
    """Operator actions are audited straight onto the audit stream (a CLI is not a request
    path: a synchronous put is the reliable choice here)."""
    from payplat import audit

    stream = os.environ.get(Env.AUDIT_STREAM)
    if not stream:
        audit.set_sinks(lambda line: print(line, file=sys.stderr))
        return
    import boto3

    kinesis = boto3.client("kinesis")

    def put(line: str) -> None:
        kinesis.put_record(StreamName=stream, Data=line.encode(), PartitionKey="operator")

    audit.set_sinks(put)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payplat", description=__doc__.splitlines()[0])
    groups = parser.add_subparsers(dest="group", required=True)

    plans = groups.add_parser("plans", help="rate-limit plans").add_subparsers(
        dest="command", required=True
    )
    plans.add_parser("list", help="every plan in force")
    set_plan = plans.add_parser("set", help="create or change a plan (applies within seconds)")
    set_plan.add_argument("name")
    set_plan.add_argument("--rate", type=float, required=True, help="requests per second")
    set_plan.add_argument("--burst", type=int, required=True, help="bucket size (requests)")
    set_plan.add_argument("--daily", type=int, default=None, help="daily quota (UTC days)")
    set_plan.add_argument("--monthly", type=int, default=None, help="monthly quota")
    set_plan.add_argument("--shards", type=int, default=0, help="bucket shards (0: derived)")

    clients = groups.add_parser("clients", help="partner applications").add_subparsers(
        dest="command", required=True
    )
    clients.add_parser("list", help="every client (never its secret)")
    client_plan = clients.add_parser("set-plan", help="move a client to another plan")
    client_plan.add_argument("client_id")
    client_plan.add_argument("plan")
    disable = clients.add_parser("disable", help="disable a client and revoke its tokens")
    disable.add_argument("client_id")

    tokens = groups.add_parser("tokens", help="access tokens").add_subparsers(
        dest="command", required=True
    )
    revoke = tokens.add_parser("revoke", help="revoke one access token by its jti")
    revoke.add_argument("jti")
    revoke.add_argument("--client", required=True, help="the client the token was issued to")

    ledger = groups.add_parser("ledger", help="the double-entry ledger").add_subparsers(
        dest="command", required=True
    )
    verify = ledger.add_parser(
        "verify", help="check every ledger invariant over the whole table (exit 1 on a violation)"
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
    return parser


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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _use_local_platform()
    _audit_to_stream()

    from payplat import admin
    from payplat.config import PaymentsSettings, load
    from payplat.dal.clients_table import DynamoClientStore
    from payplat.dal.rate_limit_table import DynamoBucketStore
    from payplat.ratelimit.plans import Limits

    settings = load(PaymentsSettings)
    clients = DynamoClientStore(settings.clients_table)
    buckets = DynamoBucketStore(settings.rate_limits_table)
    try:
        match (args.group, args.command):
            case ("plans", "list"):
                print(
                    f"{'plan':<14}{'rate/s':>10}{'burst':>8}{'daily':>12}{'monthly':>12}{'shards':>8}"
                )
                for plan in admin.plans(buckets):
                    print(
                        f"{plan.name:<14}{plan.rate_per_s:>10g}{plan.burst:>8}"
                        f"{plan.daily_quota or '-':>12}{plan.monthly_quota or '-':>12}"
                        f"{plan.shards:>8}"
                    )
            case ("plans", "set"):
                plan = Limits(
                    args.name, args.rate, args.burst, args.daily, args.monthly, args.shards
                )
                buckets.put_plan(plan)
                print(f"plan {plan.name} set")
            case ("clients", "list"):
                for client in clients.list():
                    scopes = " ".join(sorted(client.scopes))
                    status = f"{client.status:<8} {client.plan:<10}"
                    print(f"{client.client_id}  {status} {client.name}  [{scopes}]")
            case ("clients", "set-plan"):
                admin.set_plan(clients, buckets, args.client_id, args.plan)
                print(f"client {args.client_id} is on plan {args.plan}")
            case ("clients", "disable"):
                admin.disable_client(clients, buckets, buckets, args.client_id)
                print(f"client {args.client_id} disabled; its tokens are revoked")
            case ("tokens", "revoke"):
                admin.revoke_token(clients, buckets, buckets, args.client, args.jti)
                print(f"token {args.jti} revoked")
            case ("ledger", "verify"):
                from payplat.dal.ledger_table import DynamoLedgerStore
                from payplat.ledger_verify import verify

                openings = _openings(args)
                report = verify(DynamoLedgerStore(settings.ledger_table).scan_records(), openings)
                print(report.summary())
                if not report.ok:
                    return 1
    except admin.UnknownClient as exc:
        print(f"payplat: no such client: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"payplat: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
