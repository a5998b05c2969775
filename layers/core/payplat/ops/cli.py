"""`payplat`: the operator's command line (plans, clients, users, tokens, signing keys, ledger).

It talks to the tables named by the PAYPLAT_* environment variables, with boto3's usual
configuration (profile, region, credentials), or, when PAYPLAT_CLIENTS_TABLE is unset, to the
local platform that `make run` started (its .payplat/local.json says where).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from payplat.config import Env
from payplat.ops import (
    cli_audit,
    cli_clients,
    cli_ledger,
    cli_plans,
    cli_report,
    cli_tokens,
    cli_users,
)
from payplat.ops.cli_platform import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    Command,
    Failure,
    Output,
    Platform,
    use_local_platform,
)
from payplat.ops.cli_text import Group

EPILOG = """\
output: people-friendly text by default; --json, given before or after the command
(`payplat --json clients list` or `payplat clients list --json`), prints one JSON document
on stdout instead. Errors go to stderr.

exit status: 0 done, 1 not found (or the operation failed), 2 bad input.

Secrets are shown once, when created or rotated; passwords are never shown. Every change is
audited (actor sub "operator") onto the audit stream named by PAYPLAT_AUDIT_STREAM."""


def _audit_to_stream(changes_something: bool) -> None:
    """Operator actions are audited straight onto the audit stream (a CLI is not a request
    path: a synchronous put is the reliable choice here). A change nobody could audit is not
    made: without a stream only reading commands run."""
    from payplat.audit import events as audit

    stream = os.environ.get(Env.AUDIT_STREAM)
    if not stream:
        if changes_something:
            raise Failure(
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
    cli_plans.plans_arguments(Group(groups, "plans", "rate-limit plans", json_flag))
    cli_clients.clients_arguments(
        Group(groups, "clients", "partner applications (OAuth clients)", json_flag)
    )
    cli_users.users_arguments(
        Group(groups, "users", "account holders (who sign in at the authorize page)", json_flag)
    )
    cli_tokens.tokens_arguments(Group(groups, "tokens", "access tokens", json_flag))
    cli_tokens.keys_arguments(Group(groups, "keys", "token-signing keys (KMS)", json_flag))
    cli_ledger.ledger_arguments(Group(groups, "ledger", "the double-entry ledger", json_flag))
    cli_report.report_arguments(groups, json_flag)
    cli_audit.audit_arguments(
        Group(groups, "audit", "the audit trail (stream and archive)", json_flag)
    )
    return parser


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
    ("plans", "list"): cli_plans.plans_list,
    ("plans", "set"): cli_plans.plans_set,
    ("clients", "list"): cli_clients.clients_list,
    ("clients", "show"): cli_clients.clients_show,
    ("clients", "create"): cli_clients.clients_create,
    ("clients", "rotate-secret"): cli_clients.clients_rotate_secret,
    ("clients", "set-plan"): cli_clients.clients_set_plan,
    ("clients", "disable"): cli_clients.clients_disable,
    ("users", "list"): cli_users.users_list,
    ("users", "create"): cli_users.users_create,
    ("tokens", "revoke"): cli_tokens.tokens_revoke,
    ("keys", "list"): cli_tokens.keys_list,
    ("keys", "rotate"): cli_tokens.keys_rotate,
    ("ledger", "verify"): cli_ledger.ledger_verify,
    ("report", ""): cli_report.report,
    ("audit", "tail"): cli_audit.audit_tail,
    ("audit", "verify"): cli_audit.audit_verify,
}


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0), or a usage error argparse has explained (2)
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    try:
        output = _run(args)
    except Failure as exc:
        return _fail(str(exc), exc.code)
    if args.json and output.data is not None:
        print(json.dumps(output.data, indent=2))
        if output.notice:
            print(f"payplat: {output.notice}", file=sys.stderr)
    elif not args.json and output.text:
        print(output.text)
    return output.code


def _run(args: argparse.Namespace) -> Output:
    """The command, with every operator mistake turned into a message and an exit status."""
    from botocore.exceptions import BotoCoreError, ClientError

    from payplat.config import OperatorSettings, SettingsError, load
    from payplat.oauth.signing_keys import ConcurrentRotation
    from payplat.ops import admin

    try:
        local = use_local_platform() or bool(os.environ.get(Env.LOCAL_MODE))
        _audit_to_stream(changes_something=(args.group, args.command) not in READ_ONLY)
        platform = Platform(load(OperatorSettings), local)
        return COMMANDS[args.group, args.command](args, platform, int(time.time()))
    except admin.UnknownClient as exc:
        raise Failure(f"no such client: {exc}", EXIT_FAILED) from exc
    except admin.UnknownUser as exc:
        raise Failure(f"no such user: {exc}", EXIT_FAILED) from exc
    except SettingsError as exc:
        raise Failure(f"configuration: {exc}", EXIT_BAD_INPUT) from exc
    except ValueError as exc:
        raise Failure(str(exc), EXIT_BAD_INPUT) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise Failure(f"AWS: {error.get('Code')}: {error.get('Message')}", EXIT_FAILED) from exc
    except BotoCoreError as exc:
        raise Failure(f"AWS: {exc}", EXIT_FAILED) from exc
    except ConcurrentRotation as exc:
        raise Failure(str(exc), EXIT_FAILED) from exc
    except KeyboardInterrupt as exc:
        raise Failure("interrupted", EXIT_INTERRUPTED) from exc


def _fail(message: str, code: int) -> int:
    print(f"payplat: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
