"""GET /v1/payments through the real payments handler and ledger table (moto): tenancy,
cursor pagination and the Stripe-style error format."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from infra.local.seed import ALICE, BOB
from payplat.payments.idempotency import Idempotency
from payplat.payments.ledger import Account
from payplat.payments.requests import CreatePayment
from payplat.principal import Principal
from tests.conftest import invoke, load_event


def list_event(client_id: str, scope: str, **query: str) -> dict[str, Any]:
    event = load_event("apigw_rest_list_payments")
    event["requestContext"]["authorizer"].update(client_id=client_id, sub=client_id, scope=scope)
    event["queryStringParameters"] = query or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    return event


def principal_of(owner: str, client_id: str = "ppc_test") -> Principal:
    return Principal(
        client_id=client_id,
        subject=client_id,
        scopes=frozenset({"payments:read", "payments:write"}),
        jti="j",
        owner=owner,
        plan="standard",
    )


@pytest.fixture(scope="module")
def merchant(seeded: dict[str, Any]) -> Any:
    return seeded["merchant"]


@pytest.fixture(scope="module")
def payments_of_merchant(payments_handler: ModuleType, merchant: Any) -> list[str]:
    """25 payments from bob to alice (oldest first) through the real ledger, and 3 from
    alice to alice that bob must never see."""
    ledger = payments_handler.ledger
    ids = []
    for n in range(25):
        request = CreatePayment(
            source_account="acct_bob_usd",
            destination_account="acct_alice_usd",
            amount=100 + n,
            currency="USD",
        )
        key = Idempotency(merchant.client_id, f"seed-{n}", f"h{n}")
        ids.append(json.loads(ledger.create_payment(principal_of(BOB), request, key).body)["id"])
    other = [
        json.loads(
            ledger.create_payment(
                principal_of(ALICE),
                CreatePayment(
                    source_account="acct_alice_eur",
                    destination_account="acct_bob_eur",
                    amount=1,
                    currency="EUR",
                ),
                Idempotency("ppc_alice", f"alice-{n}", f"a{n}"),
            ).body
        )["id"]
        for n in range(3)
    ]
    assert other  # alice->bob payments: bob sees these too (he is the payee)
    return ids + other


@pytest.fixture(scope="module")
def foreign_payment(payments_handler: ModuleType) -> str:
    """alice pays carol: bob is neither payer nor payee."""
    payments_handler.store.open_account(Account("acct_carol_eur", "usr_carol", "EUR", 0, 0, 1))
    outcome = payments_handler.ledger.create_payment(
        principal_of(ALICE),
        CreatePayment(
            source_account="acct_alice_eur",
            destination_account="acct_carol_eur",
            amount=5,
            currency="EUR",
        ),
        Idempotency("ppc_alice", "to-carol", "c"),
    )
    payment_id: str = json.loads(outcome.body)["id"]
    return payment_id


def test_health_needs_no_token(payments_handler: ModuleType) -> None:
    event = load_event("apigw_rest_list_payments")
    event.update(resource="/health", path="/health")
    del event["requestContext"]["authorizer"]
    status, _, body = invoke(payments_handler, event)
    assert (status, body) == (200, {"status": "ok"})


def test_a_client_sees_only_its_owners_payments_newest_first(
    payments_handler: ModuleType, merchant: Any, payments_of_merchant: list[str]
) -> None:
    status, _, body = invoke(payments_handler, list_event(merchant.client_id, merchant.scope))
    assert status == 200
    assert body["object"] == "list"
    assert [p["id"] for p in body["data"]] == payments_of_merchant[::-1][:10]
    assert body["data"][0]["status"] == "succeeded"
    assert body["has_more"] is True
    assert all("owner" not in p and "pk" not in p for p in body["data"])


def test_cursors_walk_forward_and_back_without_gaps(
    payments_handler: ModuleType, merchant: Any, payments_of_merchant: list[str]
) -> None:
    newest_first = payments_of_merchant[::-1]
    seen: list[str] = []
    cursor: dict[str, str] = {}
    while True:
        event = list_event(merchant.client_id, merchant.scope, limit="7", **cursor)
        _, _, body = invoke(payments_handler, event)
        seen += [p["id"] for p in body["data"]]
        if not body["has_more"]:
            break
        cursor = {"starting_after": body["data"][-1]["id"]}
    assert seen == newest_first

    event = list_event(
        merchant.client_id, merchant.scope, limit="3", ending_before=newest_first[10]
    )
    _, _, body = invoke(payments_handler, event)
    assert [p["id"] for p in body["data"]] == newest_first[7:10]
    assert body["has_more"] is True


def test_a_cursor_from_another_tenant_is_not_found(
    payments_handler: ModuleType,
    merchant: Any,
    payments_of_merchant: list[str],
    foreign_payment: str,
) -> None:
    foreign = foreign_payment
    status, _, body = invoke(
        payments_handler, list_event(merchant.client_id, merchant.scope, starting_after=foreign)
    )
    assert status == 404
    assert body["error"]["code"] == "resource_missing"
    assert body["error"]["param"] == "starting_after"


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"starting_after": "a/b"}, "starting_after"),
        ({"starting_after": "pay_1", "ending_before": "pay_2"}, "ending_before"),
    ],
)
def test_bad_list_parameters_are_400_with_the_param_named(
    payments_handler: ModuleType, merchant: Any, query: dict[str, str], param: str
) -> None:
    status, _, body = invoke(
        payments_handler, list_event(merchant.client_id, merchant.scope, **query)
    )
    assert status == 400
    error = body["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["request_id"] == "d7bf0bd7-7b61-11e6-9a41-93e8deadbeef"
    assert "Traceback" not in json.dumps(body)


def test_the_function_rechecks_the_scope_behind_the_authorizer(
    payments_handler: ModuleType, merchant: Any
) -> None:
    status, headers, body = invoke(
        payments_handler, list_event(merchant.client_id, "accounts:read")
    )
    assert status == 403
    assert body["error"]["code"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in headers["WWW-Authenticate"]


def test_an_unknown_client_in_the_context_is_401(payments_handler: ModuleType) -> None:
    status, headers, body = invoke(payments_handler, list_event("ppc_gone", "payments:read"))
    assert status == 401
    assert body["error"]["type"] == "authentication_error"
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]


def test_an_unknown_path_is_a_404_in_the_error_format(payments_handler: ModuleType) -> None:
    event = load_event("apigw_rest_list_payments")
    event.update(resource="/v1/nothing", path="/v1/nothing")
    status, _, body = invoke(payments_handler, event)
    assert status == 404
    assert body["error"]["code"] == "resource_missing"
