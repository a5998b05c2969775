"""The scheduled expiry sweep through the real expirer handler and ledger table (moto).

Each test authorizes on its own accounts at its own past epoch, so no sweep here reaches an
authorization another test (here or in another module) left awaiting capture, whatever the
order: a sweep at `epoch + 7 days + 1 s` only covers authorizations made by then, and every
test releases what it leaves due before it ends.
"""

from __future__ import annotations

import importlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from payplat.config import Env
from payplat.payments.dal.ledger_table import DynamoLedgerStore
from payplat.payments.idempotency import Idempotency
from payplat.payments.ledger import AUTHORIZATION_TTL_S, Account, Ledger, Payment
from payplat.payments.requests import CreatePayment
from payplat.principal import Principal
from tests.conftest import LambdaContext

DAY_S = 24 * 3600
# Two months back: authorizations other modules make now are due in 7 days, never before.
BASE = int(time.time()) - 60 * DAY_S
BALANCE = 10_000
AMOUNT = 2_500
SetClock = Callable[[int], None]


class ScheduledContext(LambdaContext):
    def __init__(self, remaining_ms: int = 300_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def scheduled_event() -> dict[str, Any]:
    """What EventBridge sends for a `rate(...)` rule."""
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-01-01T00:15:00Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:events:eu-west-1:123456789012:rule/payplat-ExpirySweep"],
        "detail": {},
    }


@dataclass(frozen=True)
class Authorization:
    payment_id: str
    source: str
    authorized_at: int

    @property
    def deadline(self) -> int:
        return self.authorized_at + AUTHORIZATION_TTL_S


@pytest.fixture(scope="module")
def expirer(aws: dict[str, str]) -> ModuleType:
    return importlib.import_module("functions.expirer.handler")


@pytest.fixture(scope="module")
def store(aws: dict[str, str]) -> DynamoLedgerStore:
    return DynamoLedgerStore(aws[Env.LEDGER_TABLE])


@pytest.fixture
def at(expirer: ModuleType, monkeypatch: pytest.MonkeyPatch) -> SetClock:
    """`at(t)` sets the handler's clock (the sweep's `now` and its ledger's) to `t`."""

    def set_clock(now: int) -> None:
        monkeypatch.setattr(expirer, "clock", lambda: float(now))

    return set_clock


def authorize(store: DynamoLedgerStore, now: int) -> Authorization:
    """A manual-capture payment of AMOUNT from a fresh account holding BALANCE."""
    suffix = secrets.token_hex(6)
    payer, payee = f"usr_payer_{suffix}", f"usr_payee_{suffix}"
    source, destination = f"acct_src_{suffix}", f"acct_dst_{suffix}"
    store.open_account(Account(source, payer, "USD", BALANCE, 0, now))
    store.open_account(Account(destination, payee, "USD", 0, 0, now))
    principal = Principal(
        client_id=f"ppc_{suffix}",
        subject=f"ppc_{suffix}",
        scopes=frozenset({"payments:write"}),
        jti="j",
        owner=payer,
        plan="standard",
    )
    request = CreatePayment(
        source_account=source,
        destination_account=destination,
        amount=AMOUNT,
        currency="USD",
        capture_method="manual",
    )
    outcome = Ledger(store, clock=lambda: now).create_payment(
        principal, request, Idempotency(principal.client_id, f"auth-{suffix}", "h")
    )
    assert outcome.status == 200, outcome.body
    body = json.loads(outcome.body)
    assert body["status"] == "requires_capture"
    assert body["capture_before"] == now + AUTHORIZATION_TTL_S
    return Authorization(body["id"], source, now)


def payment(store: DynamoLedgerStore, authorization: Authorization) -> Payment:
    found = store.payment(authorization.payment_id)
    assert found is not None
    return found


def balances(store: DynamoLedgerStore, authorization: Authorization) -> tuple[int, int]:
    """(available, held) of the authorization's source account."""
    account = store.account(authorization.source)
    assert account is not None
    return account.available, account.held


def metrics(output: str) -> dict[str, float]:
    """Metric name -> value of the EMF lines in `output`."""
    values: dict[str, float] = {}
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        for metric in document.get("_aws", {}).get("CloudWatchMetrics", [{}])[0].get("Metrics", []):
            values[metric["Name"]] = document[metric["Name"]]
    return values


def test_a_sweep_past_the_deadline_releases_the_hold_once(
    expirer: ModuleType,
    store: DynamoLedgerStore,
    at: SetClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given an authorization, and another made 2 s later (still capturable when the sweep runs)
    due = authorize(store, BASE)
    not_yet = authorize(store, BASE + 2)
    assert balances(store, due) == (BALANCE - AMOUNT, AMOUNT)

    # When the sweep runs 7 days and 1 s after the first
    now = due.deadline + 1
    at(now)
    result = expirer.lambda_handler(scheduled_event(), ScheduledContext())

    # Then the first is canceled as expired, at the sweep's time
    assert result == {"expired": 1}
    expired = payment(store, due)
    assert expired.status == "canceled"
    assert expired.cancellation_reason == "expired"
    assert expired.canceled_at == now
    assert expired.expires_at is None
    # And its payer's held funds are available again
    assert balances(store, due) == (BALANCE, 0)
    # And the second still awaits capture, its funds still held
    assert payment(store, not_yet).status == "requires_capture"
    assert balances(store, not_yet) == (BALANCE - AMOUNT, AMOUNT)
    # And the run counted what it released
    assert metrics(capsys.readouterr().out)["AuthorizationsExpired"] == 1

    # When it runs again at the same time
    again = expirer.lambda_handler(scheduled_event(), ScheduledContext())

    # Then it expires nothing and moves no money
    assert again == {"expired": 0}
    assert metrics(capsys.readouterr().out)["AuthorizationsExpired"] == 0
    assert balances(store, due) == (BALANCE, 0)
    assert payment(store, due).canceled_at == now
    assert balances(store, not_yet) == (BALANCE - AMOUNT, AMOUNT)


def test_an_authorization_is_not_expired_before_its_deadline(
    expirer: ModuleType, store: DynamoLedgerStore, at: SetClock
) -> None:
    # Given an authorization
    authorization = authorize(store, BASE - 3 * DAY_S)

    # When the sweep runs 1 s before its deadline
    at(authorization.deadline - 1)
    early = expirer.lambda_handler(scheduled_event(), ScheduledContext())

    # Then it is left alone
    assert early == {"expired": 0}
    assert payment(store, authorization).status == "requires_capture"

    # When it runs at the deadline itself
    at(authorization.deadline)
    on_time = expirer.lambda_handler(scheduled_event(), ScheduledContext())

    # Then it is released
    assert on_time == {"expired": 1}
    assert balances(store, authorization) == (BALANCE, 0)


def test_a_sweep_with_under_10_s_left_starts_nothing(
    expirer: ModuleType, store: DynamoLedgerStore, at: SetClock
) -> None:
    # Given a due authorization
    authorization = authorize(store, BASE - DAY_S)
    at(authorization.deadline + 1)

    # When the sweep is invoked with 9.999 s of its time left
    result = expirer.lambda_handler(scheduled_event(), ScheduledContext(remaining_ms=9_999))

    # Then it releases nothing (it would risk the timeout mid-page)
    assert result == {"expired": 0}
    assert payment(store, authorization).status == "requires_capture"

    # When the next one runs with time to spare
    later = expirer.lambda_handler(scheduled_event(), ScheduledContext())

    # Then it takes what the first left
    assert later == {"expired": 1}
    assert balances(store, authorization) == (BALANCE, 0)


def test_one_payment_that_fails_does_not_hold_up_the_rest(
    expirer: ModuleType,
    store: DynamoLedgerStore,
    at: SetClock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given two due authorizations, the first of which cannot be released right now
    poison = authorize(store, BASE - 2 * DAY_S)
    healthy = authorize(store, BASE - 2 * DAY_S + 1)
    at(healthy.deadline + 1)
    release = expirer.ledger.expire

    def flaky_expire(payment_id: str) -> bool:
        if payment_id == poison.payment_id:
            raise RuntimeError("the store failed")
        result: bool = release(payment_id)
        return result

    # When the sweep runs
    with monkeypatch.context() as patch:
        patch.setattr(expirer.ledger, "expire", flaky_expire)
        with pytest.raises(expirer.SweepFailed):
            expirer.lambda_handler(scheduled_event(), ScheduledContext())

    # Then the healthy one is released and counted anyway, and the run fails for the other
    assert payment(store, healthy).status == "canceled"
    assert payment(store, poison).status == "requires_capture"
    counted = metrics(capsys.readouterr().out)
    assert counted["AuthorizationsExpired"] == 1
    assert counted["AuthorizationExpiryFailures"] == 1

    # When the next run finds the store working
    assert expirer.lambda_handler(scheduled_event(), ScheduledContext()) == {"expired": 1}

    # Then it releases the one left
    assert payment(store, poison).cancellation_reason == "expired"
    assert balances(store, poison) == (BALANCE, 0)
