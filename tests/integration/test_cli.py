"""The operator CLI in process (`payplat.cli.main`) against moto: what it prints, what it
stores, what it audits, and how it answers an operator's mistakes.

Audit: `cli._audit_to_stream` replaces the process's audit sinks with a Kinesis put (right for
a CLI process, wrong for a shared test process). Rather than stub it out, the `run` fixture
gives each test a sink list of its own, lets the real function run (so the lines do reach
moto's stream, which one test reads back) and then adds the `audit_lines` capture; the
original sinks come back after the test. (Stdout stays out of the list, so --json output
parses.)
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from payplat.audit import events as audit
from payplat.clients.dal.clients_table import DynamoClientStore
from payplat.clients.registry import Client
from payplat.config import Env
from payplat.oauth.dal.tokens_table import DynamoTokenStore
from payplat.oauth.dal.users_table import DynamoUserStore
from payplat.oauth.jwk import public_jwk
from payplat.oauth.signing_keys import RETIRE_AFTER_S
from payplat.oauth.users import authenticate_user
from payplat.ops import cli
from payplat.payments.dal.ledger_table import DynamoLedgerStore
from tests.conftest import AuditCapture, invoke
from tests.integration.test_oauth import token_event

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


Run = Callable[..., Result]


@pytest.fixture
def run(
    aws: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    audit_lines: AuditCapture,
) -> Iterator[Run]:
    monkeypatch.setenv(Env.SIGNING_KEY_ID, aws[Env.SIGNING_KEY_ID])
    # Restored by hand, not by monkeypatch: before `audit_lines` takes its capture out of the
    # original list, whatever order pytest tears the two down in.
    original_sinks = audit._sinks
    audit._sinks = []
    to_stream = cli._audit_to_stream

    def audit_to_stream_and_capture(*, changes_something: bool) -> None:
        to_stream(changes_something=changes_something)
        audit.add_sink(audit_lines)

    monkeypatch.setattr(cli, "_audit_to_stream", audit_to_stream_and_capture)

    def run(*args: str, stdin: str | None = None) -> Result:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = cli.main(list(args))
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return Result(code, captured.out, captured.err)

    yield run
    audit._sinks = original_sinks


@pytest.fixture
def clients(aws: dict[str, str]) -> DynamoClientStore:
    return DynamoClientStore(aws[Env.CLIENTS_TABLE])


@pytest.fixture
def bob(seeded_users: dict[str, dict[str, str]]) -> str:
    return seeded_users["bob"]["user_id"]


def create(run: Run, owner: str, *extra: str) -> dict[str, Any]:
    result = run(
        "clients", "create", "--name", "CLI shop", "--owner", owner, "--scope",
        "payments:read accounts:read", *extra, "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    document: dict[str, Any] = result.json
    return document


def stored(clients: DynamoClientStore, client_id: str) -> Client:
    client = clients.get(client_id)
    assert client is not None
    return client


# -- clients ------------------------------------------------------------------------------------


def test_a_created_client_shows_its_secret_once_and_never_again(
    run: Run, clients: DynamoClientStore, bob: str, audit_lines: AuditCapture
) -> None:
    # When an operator creates a client
    result = run(
        "clients", "create", "--name", "Bob's POS", "--owner", bob,
        "--scope", "payments:read payments:write", "--plan", "sandbox",
    )  # fmt: skip

    # Then the id and the secret are printed, with the warning that this is the only time
    assert result.code == 0, result.err
    fields = dict(
        line.split(":", 1) for line in result.out.splitlines() if line.startswith("client_")
    )
    client_id, secret = fields["client_id"].strip(), fields["client_secret"].strip()
    assert "cannot be shown again" in result.out
    client = stored(clients, client_id)
    assert client.accepts_secret(secret, int(time.time()))
    assert (client.owner, client.plan, client.grant_types) == (
        bob,
        "sandbox",
        frozenset({"client_credentials"}),
    )

    # And neither `show` nor `list` ever shows the secret or a hash
    for args in (("clients", "show", client_id), ("clients", "show", client_id, "--json")):
        shown = run(*args)
        assert shown.code == 0
        assert client_id in shown.out
        assert secret not in shown.out
        assert "hash" not in shown.out
    description = run("--json", "clients", "show", client_id).json
    assert description["status"] == "active"
    assert description["scope"] == "payments:read payments:write"
    # (no registration access token: RFC 7592 management is for dynamically registered ones)
    assert "registration_client_uri" not in description
    listed = run("clients", "list", "--json")
    assert client_id in {c["client_id"] for c in listed.json}
    assert secret not in listed.out
    assert "hash" not in listed.out

    # And the registration is audited as the operator's, without the secret
    [registered] = audit_lines.of_type("client.registered")
    assert registered["actor"] == {"sub": "operator"}
    assert registered["resource"] == f"client/{client_id}"
    assert registered["details"]["owner"] == bob
    assert secret not in "\n".join(audit_lines.lines)
    assert "hash" not in "\n".join(audit_lines.lines)


def test_rotating_a_secret_keeps_the_old_one_working_until_the_overlap_ends(
    run: Run, clients: DynamoClientStore, bob: str, audit_lines: AuditCapture
) -> None:
    # Given a client and its secret
    created = create(run, bob)
    client_id, old = created["client_id"], created["client_secret"]

    # When its secret is rotated with a 90 s overlap
    before = int(time.time())
    result = run("clients", "rotate-secret", client_id, "--overlap", "90s", "--json")

    # Then the new secret is printed once, and the old one's end
    assert result.code == 0, result.err
    assert "cannot be shown again" in result.err  # stdout stays one JSON document
    new = result.json["client_secret"]
    until = result.json["previous_secret_expires_at"]
    assert before + 90 <= until <= int(time.time()) + 90
    # And both authenticate until the overlap ends; after it, only the new one
    client = stored(clients, client_id)
    assert client.accepts_secret(old, until - 1)
    assert client.accepts_secret(new, until - 1)
    assert not client.accepts_secret(old, until)
    assert client.accepts_secret(new, until + 86_400)
    [rotated] = audit_lines.of_type("client.secret_rotated")
    assert rotated["details"]["overlap_seconds"] == 90
    assert rotated["actor"] == {"sub": "operator"}
    text = "\n".join(audit_lines.lines)
    assert old not in text
    assert new not in text

    # And the human output says until when the old one works
    again = run("clients", "rotate-secret", client_id)
    assert again.code == 0
    assert "cannot be shown again" in again.out
    assert "keeps working until" in again.out
    assert "(1d from now)" in again.out


def test_a_disabled_client_has_its_tokens_revoked_and_cannot_rotate(
    run: Run,
    aws: dict[str, str],
    clients: DynamoClientStore,
    bob: str,
    audit_lines: AuditCapture,
) -> None:
    client_id = create(run, bob)["client_id"]

    # When one token is revoked, then the whole client is disabled
    assert run("tokens", "revoke", "jti-cli-1", "--client", client_id).code == 0
    result = run("clients", "disable", client_id)

    # Then the revocation is on introspection's list and in every bucket shard
    assert result.code == 0
    assert "disabled" in result.out
    assert DynamoTokenStore(aws[Env.TOKENS_TABLE]).is_revoked("jti-cli-1")
    bucket = boto3.client("dynamodb").get_item(
        TableName=aws[Env.RATE_LIMITS_TABLE], Key={"pk": {"S": f"BUCKET#api#{client_id}#0"}}
    )["Item"]
    assert "jti-cli-1" in bucket["revoked"]["M"]
    assert int(bucket["revoked_before"]["N"]) >= int(time.time()) - 5
    assert stored(clients, client_id).status == "disabled"
    assert [e["resource"] for e in audit_lines.of_type("token.revoked")] == [f"client/{client_id}"]
    assert [e["resource"] for e in audit_lines.of_type("client.disabled")] == [
        f"client/{client_id}"
    ]
    # And its secret is not rotated any more
    refused = run("clients", "rotate-secret", client_id)
    assert refused.code == 2
    assert "disabled" in refused.err


def test_a_disabled_client_is_refused_at_once_where_its_record_is_cached(
    run: Run, oauth_handler: ModuleType, bob: str, audit_lines: AuditCapture
) -> None:
    # Given a client whose record the oauth function has just cached (it caches for 30 s)
    created = create(run, bob)
    credentials = (created["client_id"], created["client_secret"])
    form = {"grant_type": "client_credentials"}
    first = invoke(oauth_handler, token_event(form, basic=credentials))
    assert first[0] == 200, first

    # When an operator disables it
    assert run("clients", "disable", created["client_id"]).code == 0

    # Then its next token request is invalid_client, and the refusal is audited with why
    status, headers, body = invoke(oauth_handler, token_event(form, basic=credentials))
    assert (status, body["error"]) == (401, "invalid_client")
    assert headers["WWW-Authenticate"].startswith("Basic")
    [denied] = audit_lines.of_type("access.denied")
    assert (denied["reason"], denied["resource"]) == ("client_disabled", "token")
    assert not audit_lines.of_type("token.issued")[1:]


def test_a_private_key_jwt_client_gets_no_secret(
    run: Run, clients: DynamoClientStore, bob: str, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(der)]}))

    result = run(
        "clients", "create", "--name", "Signed", "--owner", bob, "--scope", "payments:read",
        "--auth-method", "private_key_jwt", "--jwks", str(jwks),
    )  # fmt: skip

    assert result.code == 0, result.err
    assert "has no secret" in result.out
    client_id = result.out.split()[1]
    client = stored(clients, client_id)
    assert (client.secret_hash, client.auth_method) == (None, "private_key_jwt")
    assert client.jwks == {"keys": [public_jwk(der)]}
    refused = run("clients", "rotate-secret", client_id)
    assert refused.code == 2
    assert "private_key_jwt" in refused.err
    # A private key where the public one belongs is refused (it has leaked)
    jwks.write_text(json.dumps({"keys": [{**public_jwk(der), "d": "c2VjcmV0"}]}))
    leaked = run(
        "clients", "create", "--name", "Leaky", "--owner", bob, "--scope", "payments:read",
        "--auth-method", "private_key_jwt", "--jwks", str(jwks),
    )  # fmt: skip
    assert (leaked.code, leaked.out) == (2, "")
    assert "public keys only" in leaked.err


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (("--owner", "usr_nobody"), 1, "no such user: usr_nobody"),
        (("--owner", "platform_admin"), 2, "user id"),
        (("--scope", "payments:read money:print"), 2, "unknown scopes: money:print"),
        (("--plan", "gold"), 2, "no such plan"),
        (("--plan", "token-ip"), 2, "no such plan"),  # an internal limit, not a tier
        (("--grant-type", "authorization_code"), 2, "redirect_uris are required"),
        (
            ("--grant-type", "authorization_code", "--redirect-uri", "http://127.0.0.1/cb"),
            2,
            "redirect_uri is not allowed",
        ),
        (("--auth-method", "private_key_jwt"), 2, "JWK Set"),
        (("--auth-method", "telepathy"), 2, "invalid choice"),
    ],
)
def test_creating_a_client_refuses_bad_input_with_a_message(
    run: Run, bob: str, extra: tuple[str, ...], code: int, message: str
) -> None:
    args = {"--name": "Bad", "--owner": bob, "--scope": "payments:read"}
    flags = list(extra)
    for flag, value in args.items():
        if flag not in flags:
            flags += [flag, value]
    result = run("clients", "create", *flags)
    assert (result.code, result.out) == (code, "")
    assert message in result.err


def test_loopback_redirect_uris_are_allowed_on_the_local_platform(
    run: Run, monkeypatch: pytest.MonkeyPatch, clients: DynamoClientStore, bob: str
) -> None:
    monkeypatch.setenv(Env.LOCAL_MODE, "1")
    created = create(
        run, bob, "--grant-type", "authorization_code", "--grant-type", "refresh_token",
        "--redirect-uri", "http://127.0.0.1:8765/callback",
    )  # fmt: skip
    client = stored(clients, created["client_id"])
    assert client.redirect_uris == ("http://127.0.0.1:8765/callback",)
    assert created["response_types"] == ["code"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("clients", "show", "ppc_missing"), 1, "no such client: ppc_missing"),
        (("clients", "rotate-secret", "ppc_missing"), 1, "no such client"),
        (("clients", "disable", "ppc_missing"), 1, "no such client"),
        (("clients", "set-plan", "ppc_missing", "sandbox"), 1, "no such client"),
        (("tokens", "revoke", "jti-x", "--client", "ppc_missing"), 1, "no such client"),
        (("clients", "rotate-secret", "ppc_x", "--overlap", "5x"), 2, "is not a duration"),
        (("clients", "rotate-secret", "ppc_x", "--overlap", "24"), 2, "is not a duration"),
        (("clients", "rotate-secret", "ppc_x", "--overlap", "8d"), 2, "between 0s and 7d"),
        (("keys", "rotate", "--publish-lead", "1w"), 2, "is not a duration"),
        (("keys", "rotate", "--publish-lead", "8d"), 2, "between 0s and 7d"),
        (("clients", "frobnicate"), 2, "invalid choice"),
    ],
)
def test_mistakes_are_messages_and_exit_codes_not_tracebacks(
    run: Run, args: tuple[str, ...], code: int, message: str
) -> None:
    result = run(*args)
    assert result.code == code
    assert result.out == ""
    assert message in result.err


def test_json_goes_before_or_after_the_command_and_changes_are_audited(
    run: Run, audit_lines: AuditCapture
) -> None:
    changed = run("plans", "set", "cli-small", "--rate", "1", "--burst", "2", "--json")
    assert changed.json["name"] == "cli-small"
    before, after = run("--json", "plans", "list"), run("plans", "list", "--json")
    assert before.json == after.json
    assert {"name": "cli-small", "rate_per_s": 1.0, "burst": 2}.items() <= next(
        plan for plan in after.json if plan["name"] == "cli-small"
    ).items()
    assert "cli-small" in run("plans", "list").out  # people get a table
    [plan] = audit_lines.of_type("plan.set")
    assert plan["resource"] == "plan/cli-small"


def test_operator_audit_lines_reach_the_audit_stream(
    run: Run, aws: dict[str, str], bob: str
) -> None:
    client_id = create(run, bob)["client_id"]

    kinesis = boto3.client("kinesis")
    stream = aws[Env.AUDIT_STREAM]
    records = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records += kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]
    events = [json.loads(line) for record in records for line in audit.unpack(record["Data"])]
    assert any(
        e["type"] == "client.registered" and e["resource"] == f"client/{client_id}" for e in events
    )


# -- users --------------------------------------------------------------------------------------


def test_a_user_is_created_with_accounts_and_can_sign_in(
    run: Run, aws: dict[str, str], audit_lines: AuditCapture
) -> None:
    username = f"carol_{uuid.uuid4().hex[:8]}"

    # When an operator creates a user with two accounts, the password on stdin
    result = run(
        "users", "create", username, "--display-name", "Carol", "--password-stdin",
        "--account", "EUR=12345", "--account", "JPY=500",
        stdin=PASSWORD + "\n",
    )  # fmt: skip

    # Then the user can sign in with it, and never sees it printed
    assert result.code == 0, result.err
    assert PASSWORD not in result.out + result.err
    assert f"acct_{username}_eur  opening balance 123.45 EUR" in result.out
    assert f"acct_{username}_jpy  opening balance 500 JPY" in result.out
    users = DynamoUserStore(aws[Env.USERS_TABLE])
    user = authenticate_user(users, username, PASSWORD)
    assert user is not None
    assert user.display_name == "Carol"
    # And the accounts are open, owned by the user, with their opening balances
    ledger = DynamoLedgerStore(aws[Env.LEDGER_TABLE])
    eur = ledger.account(f"acct_{username}_eur")
    assert eur is not None
    assert (eur.owner, eur.currency, eur.available, eur.held) == (user.user_id, "EUR", 12345, 0)
    assert ledger.accounts_of(user.user_id) == [
        (f"acct_{username}_eur", "EUR"),
        (f"acct_{username}_jpy", "JPY"),
    ]
    # And it is audited, without the password or its hash
    [created] = audit_lines.of_type("user.created")
    assert created["resource"] == f"user/{user.user_id}"
    opened = {e["resource"]: e["details"] for e in audit_lines.of_type("account.opened")}
    assert opened[f"account/acct_{username}_eur"]["opening_balance"] == 12345
    text = "\n".join(audit_lines.lines)
    assert PASSWORD not in text
    assert "scrypt$" not in text
    # And `users list` shows the user, never a hash
    listed = run("users", "list", "--json")
    assert username in {u["username"] for u in listed.json}
    assert "password" not in listed.out
    assert "scrypt$" not in listed.out


def test_a_taken_username_is_refused_before_a_password_is_asked_for(
    run: Run, seeded_users: dict[str, dict[str, str]]
) -> None:
    result = run("users", "create", "alice", stdin="")  # no --password-stdin, no terminal
    assert result.code == 2
    assert "username 'alice' is taken" in result.err


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        ((), "", "no password"),  # not a terminal: nobody to ask
        (("--password-stdin",), "short\n", "at least 12 characters"),
        (("--password-stdin", "--account", "eur=100"), PASSWORD, "codes are upper case"),
        (("--password-stdin", "--account", "EUR=ten"), PASSWORD, "CURRENCY=OPENING_BALANCE"),
        (("--password-stdin", "--account", "EUR=1", "--account", "EUR=2"), PASSWORD, "one"),
    ],
)
def test_bad_user_input_creates_nothing(
    run: Run, aws: dict[str, str], args: tuple[str, ...], stdin: str, message: str
) -> None:
    username = f"dave_{uuid.uuid4().hex[:8]}"
    result = run("users", "create", username, *args, stdin=stdin)
    assert result.code == 2
    assert message in result.err
    assert DynamoUserStore(aws[Env.USERS_TABLE]).get(username) is None


# -- signing keys -------------------------------------------------------------------------------


@pytest.fixture
def own_key_registry(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """A tokens table of the test's own: the key registry in the shared one is what the other
    integration tests' oauth handler signs with."""
    name = f"payplat-tokens-cli-{uuid.uuid4().hex[:8]}"
    boto3.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    monkeypatch.setenv(Env.TOKENS_TABLE, name)
    return name


def test_before_any_rotation_the_configured_key_signs(
    run: Run, aws: dict[str, str], own_key_registry: str
) -> None:
    [key] = run("keys", "list", "--json").json
    assert key["key_id"] == aws[Env.SIGNING_KEY_ID]
    assert key["state"] == "signing"
    assert (key["activates_at"], key["retires_at"]) == (None, None)
    assert key["kid"] in run("keys", "list").out


def test_a_rotation_publishes_the_next_key_and_retires_the_old_one_later(
    run: Run, aws: dict[str, str], own_key_registry: str, audit_lines: AuditCapture
) -> None:
    [old] = run("keys", "list", "--json").json

    # When an operator rotates with the default publish lead
    rotated = run("keys", "rotate", "--json")

    # Then the new key is next (published, not yet signing) and the old one still signs,
    # with a retirement an hour and a minute after the new one takes over
    assert rotated.code == 0, rotated.err
    new = rotated.json
    assert new["state"] == "next"
    keys = {key["kid"]: key for key in run("keys", "list", "--json").json}
    assert keys[new["kid"]]["state"] == "next"
    assert keys[old["kid"]]["state"] == "signing"
    activates = _epoch(keys[new["kid"]]["activates_at"])
    assert _epoch(keys[old["kid"]]["retires_at"]) == activates + RETIRE_AFTER_S
    assert 0 <= activates - int(time.time()) <= 360
    [event] = audit_lines.of_type("key.rotated")
    assert event["details"]["kid"] == new["kid"]
    assert event["actor"] == {"sub": "operator"}


def test_an_emergency_rotation_signs_at_once_and_keeps_the_old_key_published(
    run: Run, own_key_registry: str
) -> None:
    [old] = run("keys", "list", "--json").json
    rotated = run("keys", "rotate", "--publish-lead", "0s")
    assert rotated.code == 0, rotated.err
    assert f"key {old['kid']} stays published until" in rotated.out
    keys = {key["kid"]: key for key in run("keys", "list", "--json").json}
    assert keys[old["kid"]]["state"] == "retiring"
    assert keys[old["kid"]]["retires_at"] is not None
    [new] = [key for kid, key in keys.items() if kid != old["kid"]]
    assert new["state"] == "signing"


def test_a_compromised_key_is_withdrawn_at_once(run: Run, own_key_registry: str) -> None:
    [old] = run("keys", "list", "--json").json

    # When the signing key is compromised: a new one signs at once, the old one leaves the JWKS
    rotated = run("keys", "rotate", "--publish-lead", "0s", "--retire-after", "0s")

    assert rotated.code == 0, rotated.err
    assert "signs from now on" in rotated.out
    assert f"key {old['kid']} is withdrawn from the JWKS now" in rotated.out
    states = {key["kid"]: key["state"] for key in run("keys", "list", "--json").json}
    assert states.pop(old["kid"]) == "retired"
    assert list(states.values()) == ["signing"]


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def test_without_an_audit_stream_only_reading_commands_run(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployment whose audit stream the operator did not configure
    monkeypatch.delenv(Env.AUDIT_STREAM)
    # Then reading works, and a change is refused before anything is written
    assert run("plans", "list").code == 0
    refused = run("plans", "set", "unaudited", "--rate", "1", "--burst", "1")
    assert refused.code == 2
    assert Env.AUDIT_STREAM in refused.err
    assert "unaudited" not in run("plans", "list").out
