"""`payplat clients create --require-par` and `clients show`: the RFC 9126 flag, stored on
the client record and shown to the operator (the CLI in process, against moto)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from payplat.audit import events as audit
from payplat.clients.dal.clients_table import DynamoClientStore
from payplat.config import Env
from payplat.ops import cli

CALLBACK = "https://shop.example/callback"
Run = Callable[..., tuple[int, str]]


@pytest.fixture
def run(
    aws: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Run]:
    """`payplat ...` in process: (exit code, stdout). The CLI points the audit sinks at the
    stream; this process's own sinks come back afterwards."""
    monkeypatch.setenv(Env.SIGNING_KEY_ID, aws[Env.SIGNING_KEY_ID])
    original_sinks = audit._sinks
    audit._sinks = []

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = cli.main(list(args))
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return code, captured.out

    yield run
    audit._sinks = original_sinks


def create(run: Run, owner: str, *extra: str) -> dict[str, Any]:
    code, out = run(
        "--json", "clients", "create", "--name", "PAR shop", "--owner", owner,
        "--scope", "accounts:read", *extra,
    )  # fmt: skip
    assert code == 0, out
    created: dict[str, Any] = json.loads(out)
    return created


def shown_flag(run: Run, client_id: str) -> str:
    code, out = run("clients", "show", client_id)
    assert code == 0, out
    [line] = [line for line in out.splitlines() if line.startswith("require_pushed")]
    return line.split(":", 1)[1].strip()


def test_require_par_is_stored_and_shown(
    run: Run, aws: dict[str, str], seeded_users: dict[str, dict[str, str]]
) -> None:
    # When an operator creates a code-flow client that must push its requests
    created = create(
        run, seeded_users["bob"]["user_id"],
        "--grant-type", "authorization_code", "--redirect-uri", CALLBACK, "--require-par",
    )  # fmt: skip

    # Then the record carries the flag, and show says so (text and JSON)
    assert created["require_pushed_authorization_requests"] is True
    client = DynamoClientStore(aws[Env.CLIENTS_TABLE]).get(created["client_id"])
    assert client is not None and client.require_pushed_authorization_requests
    assert shown_flag(run, created["client_id"]) == "True"
    code, out = run("--json", "clients", "show", created["client_id"])
    assert code == 0, out
    assert json.loads(out)["require_pushed_authorization_requests"] is True


def test_without_the_flag_a_client_need_not_push(
    run: Run, aws: dict[str, str], seeded_users: dict[str, dict[str, str]]
) -> None:
    created = create(run, seeded_users["bob"]["user_id"])
    assert created["require_pushed_authorization_requests"] is False
    client = DynamoClientStore(aws[Env.CLIENTS_TABLE]).get(created["client_id"])
    assert client is not None and not client.require_pushed_authorization_requests
    assert shown_flag(run, created["client_id"]) == "False"
