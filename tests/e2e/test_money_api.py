"""The money API over real HTTP, as a hostile or careless partner would use it (OWASP API1
object-level authorization, API3 mass assignment, API8 injection-shaped input): other
tenants' objects are 404 on every route, bad input is a 4xx in the Stripe-style error format
and writes nothing, state machines refuse what they must, and Idempotency-Key replays are
byte for byte.

Every test acts for owners, accounts and clients of its own (opened in the platform's moto),
so it neither disturbs nor depends on the seeded demo data or other tests."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
import requests

from payplat.clients.dal.clients_table import DynamoClientStore
from payplat.clients.registry import register_client
from payplat.config import Env
from payplat.gateway.dal.rate_limit_table import DynamoBucketStore
from payplat.gateway.plans import Limits
from payplat.payments.dal.ledger_table import DynamoLedgerStore
from payplat.payments.ledger import Account
from tests.conftest import Platform

pytestmark = pytest.mark.e2e

MONEY_SCOPES = frozenset({"accounts:read", "payments:read", "payments:write", "refunds:write"})
NEW_KEY = "<a fresh Idempotency-Key>"
ERROR_FIELDS = {"type", "code", "message", "param", "request_id"}
LOCAL_CREDENTIALS = {
    "region_name": "us-east-1",
    "aws_access_key_id": "local",
    "aws_secret_access_key": "local",
}


# -- helpers (also used by test_money_concurrency.py) ---------------------------------------------


def fresh(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


class Aws:
    """The platform's moto server, reached directly (as the operator CLI does)."""

    def __init__(self, endpoint_url: str, tables: dict[str, str]) -> None:
        self.endpoint_url = endpoint_url
        self.tables = tables
        self._dynamodb = self.client("dynamodb")
        self._ledger = DynamoLedgerStore(tables[Env.LEDGER_TABLE], client=self._dynamodb)

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint_url, **LOCAL_CREDENTIALS)

    def resource(self, service: str) -> Any:
        return boto3.resource(service, endpoint_url=self.endpoint_url, **LOCAL_CREDENTIALS)

    def ledger(self) -> DynamoLedgerStore:
        return self._ledger

    def open_account(self, owner: str, currency: str, available: int) -> str:
        account_id = fresh(f"acct_{currency.lower()}")
        self.ledger().open_account(
            Account(account_id, owner, currency, available, 0, int(time.time()))
        )
        return account_id

    def balances(self, *account_ids: str) -> dict[str, tuple[int, int]]:
        store = self.ledger()
        found = {account_id: store.account(account_id) for account_id in account_ids}
        return {
            account_id: (account.available, account.held)
            for account_id, account in found.items()
            if account is not None
        }

    def items(self, keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """Ledger items by (pk, sk), in one BatchGetItem."""
        table = self.tables[Env.LEDGER_TABLE]
        request = {table: {"Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys]}}
        found = self._dynamodb.batch_get_item(RequestItems=request)["Responses"][table]
        return sorted(found, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))

    def roomy_plan(self) -> str:
        """A plan of its own: a new name no function has cached, so it applies at once."""
        name = fresh("e2e-money")
        buckets = DynamoBucketStore(
            self.tables[Env.RATE_LIMITS_TABLE], client=self.client("dynamodb")
        )
        buckets.put_plan(Limits(name, rate_per_s=1000, burst=1000))
        return name


def local_aws(platform: Platform) -> Aws:
    local = json.loads((platform.state_dir / "local.json").read_text())
    return Aws(platform.aws_endpoint_url, local["tables"])


@dataclass
class Tenant:
    """A partner client acting for `owner`, with one access token."""

    base_url: str
    owner: str
    client_id: str
    token: str

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        key: str | None = NEW_KEY,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        session: requests.Session | None = None,
    ) -> requests.Response:
        sent = {"Authorization": f"Bearer {self.token}"}
        if method == "POST" and key is not None:
            sent["Idempotency-Key"] = str(uuid.uuid4()) if key == NEW_KEY else key
        if body is not None:
            data = json.dumps(body)
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        http: Any = session or requests
        return http.request(  # type: ignore[no-any-return]
            method, self.base_url + path, data=data, headers=sent, params=params, timeout=30
        )

    def get(self, path: str, **params: str) -> requests.Response:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, body={} if body is None else body, **kwargs)

    def pay(self, source: str, destination: str, amount: int, **extra: Any) -> dict[str, Any]:
        body = {
            "source_account": source,
            "destination_account": destination,
            "amount": amount,
            "currency": extra.pop("currency", "EUR"),
            **extra,
        }
        response = self.post("/v1/payments", body)
        assert response.status_code == 200, response.text
        payment: dict[str, Any] = response.json()
        return payment

    def payment_ids(self) -> list[str]:
        response = self.get("/v1/payments", limit="100")
        assert response.status_code == 200, response.text
        listed = response.json()
        assert not listed["has_more"]
        return [payment["id"] for payment in listed["data"]]


def tenant(platform: Platform, aws: Aws, plan: str, label: str) -> Tenant:
    owner = fresh(f"usr_{label}")
    clients = DynamoClientStore(aws.tables[Env.CLIENTS_TABLE], resource=aws.resource("dynamodb"))
    client, secret = register_client(
        clients, name=f"money e2e {label}", scopes=MONEY_SCOPES, owner=owner, plan=plan
    )
    response = requests.post(
        f"{platform.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return Tenant(platform.base_url, owner, client.client_id, response.json()["access_token"])


def assert_error(
    response: requests.Response, status: int, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """A 4xx in the Stripe-style format, with the request id the gateway gave the call."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == ERROR_FIELDS, error
    assert error["request_id"] == response.headers["x-amzn-RequestId"]
    assert isinstance(error["message"], str) and error["message"]
    assert "Traceback" not in response.text
    if code is not None:
        assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    return error


# -- the world of this module -------------------------------------------------------------------


@dataclass
class World:
    aws: Aws
    alice: Tenant  # a consumer paying bob and carol
    bob: Tenant  # a merchant
    alice_eur: str
    alice_usd: str
    bob_eur: str
    bob_usd: str
    carol_eur: str  # carol has no client: she is only ever a third party here
    watched: list[str] = field(default_factory=list)  # payments every snapshot re-reads

    def snapshot(self) -> dict[str, Any]:
        """What a write would change, read straight from the ledger table: every account (its
        balances) and its newest entry, the newest payments alice is party to (every payment
        here is hers; a new one would come first) and the module's long-lived payments."""
        store = self.aws.ledger()
        accounts = (self.alice_eur, self.alice_usd, self.bob_eur, self.bob_usd, self.carol_eur)
        newest, _ = store.page("PAYMENT", self.alice.owner, limit=3, after=None, before=None)
        return {
            "items": self.aws.items(
                [(f"ACCOUNT#{a}", "ACCOUNT") for a in accounts]
                + [(f"PAYMENT#{p}", "PAYMENT") for p in self.watched]
            ),
            "entries": {a: store.entries(a, limit=1, after=None)[0] for a in accounts},
            "newest": newest,
        }


@pytest.fixture(scope="module")
def world(platform: Platform) -> World:
    aws = local_aws(platform)
    plan = aws.roomy_plan()
    alice, bob = tenant(platform, aws, plan, "alice"), tenant(platform, aws, plan, "bob")
    return World(
        aws=aws,
        alice=alice,
        bob=bob,
        alice_eur=aws.open_account(alice.owner, "EUR", 250_000),
        alice_usd=aws.open_account(alice.owner, "USD", 100_000),
        bob_eur=aws.open_account(bob.owner, "EUR", 1_000_000),
        bob_usd=aws.open_account(bob.owner, "USD", 500_000),
        carol_eur=aws.open_account(fresh("usr_carol"), "EUR", 0),
    )


@pytest.fixture
def unchanged(world: World) -> Iterator[None]:
    """The test must write nothing at all."""
    before = world.snapshot()
    yield
    assert world.snapshot() == before


@dataclass(frozen=True)
class Pair:
    authorized: dict[str, Any]  # awaiting capture: 1,000 held on alice's account
    paid: dict[str, Any]  # succeeded: 1,000 moved


@pytest.fixture(scope="module")
def alice_and_carol(world: World) -> Pair:
    """alice's payments to carol: bob is no party to them."""
    pair = Pair(
        authorized=world.alice.pay(
            world.alice_eur, world.carol_eur, 1_000, capture_method="manual"
        ),
        paid=world.alice.pay(world.alice_eur, world.carol_eur, 1_000),
    )
    world.watched += [pair.authorized["id"], pair.paid["id"]]
    return pair


@pytest.fixture(scope="module")
def alice_and_bob(world: World) -> Pair:
    """alice's payments to bob, which the tests below only ever fail to change (writes are
    kept few: moto copies the whole ledger table on every TransactWriteItems)."""
    pair = Pair(
        authorized=world.alice.pay(world.alice_eur, world.bob_eur, 1_000, capture_method="manual"),
        paid=world.alice.pay(world.alice_eur, world.bob_eur, 1_000),
    )
    world.watched += [pair.authorized["id"], pair.paid["id"]]
    return pair


def valid_payment(world: World, **changes: Any) -> dict[str, Any]:
    body = {
        "source_account": world.alice_eur,
        "destination_account": world.bob_eur,
        "amount": 100,
        "currency": "EUR",
    }
    return {**body, **changes}


# -- object-level authorization (OWASP API1) ------------------------------------------------------

FOREIGN_ROUTES = [
    # (id, method, path, query, body, param)
    ("get_account", "GET", "/v1/accounts/{account}", None, None, "account_id"),
    ("transactions", "GET", "/v1/accounts/{account}/transactions", None, None, "account_id"),
    ("get_payment", "GET", "/v1/payments/{authorized}", None, None, "payment_id"),
    ("get_paid", "GET", "/v1/payments/{paid}", None, None, "payment_id"),
    ("capture", "POST", "/v1/payments/{authorized}/capture", None, {}, "payment_id"),
    (
        "capture_some",
        "POST",
        "/v1/payments/{authorized}/capture",
        None,
        {"amount": 1},
        "payment_id",
    ),
    ("cancel", "POST", "/v1/payments/{authorized}/cancel", None, {}, "payment_id"),
    ("refund", "POST", "/v1/payments/{paid}/refunds", None, {}, "payment_id"),
    ("refund_some", "POST", "/v1/payments/{paid}/refunds", None, {"amount": 1}, "payment_id"),
    ("refund_auth", "POST", "/v1/payments/{authorized}/refunds", None, {}, "payment_id"),
    ("list_refunds", "GET", "/v1/payments/{paid}/refunds", None, None, "payment_id"),
    ("payments_after", "GET", "/v1/payments", {"starting_after": "{paid}"}, None, "starting_after"),
    ("payments_before", "GET", "/v1/payments", {"ending_before": "{paid}"}, None, "ending_before"),
    (
        "accounts_after",
        "GET",
        "/v1/accounts",
        {"starting_after": "{account}"},
        None,
        "starting_after",
    ),
    (
        "accounts_before",
        "GET",
        "/v1/accounts",
        {"ending_before": "{account}"},
        None,
        "ending_before",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "param"),
    [pytest.param(*route[1:], id=route[0]) for route in FOREIGN_ROUTES],
)
def test_another_tenants_object_is_not_found_on_every_route(
    world: World,
    alice_and_carol: Pair,
    unchanged: None,
    method: str,
    path: str,
    query: dict[str, str] | None,
    body: dict[str, Any] | None,
    param: str,
) -> None:
    names = {
        "account": world.alice_eur,
        "authorized": alice_and_carol.authorized["id"],
        "paid": alice_and_carol.paid["id"],
    }
    # When bob asks about, or acts on, alice's objects
    params = {name: value.format(**names) for name, value in (query or {}).items()} or None
    response = world.bob.request(method, path.format(**names), body=body, params=params)

    # Then they do not exist for him (404, not 403: no oracle for other tenants' ids)
    error = assert_error(response, 404, "resource_missing", param)
    assert error["type"] == "invalid_request_error"

    # And the answer is the one an id that exists nowhere gets, word for word
    ghosts = {name: fresh(value.split("_")[0]) for name, value in names.items()}
    ghost_params = {name: value.format(**ghosts) for name, value in (query or {}).items()} or None
    ghost = world.bob.request(method, path.format(**ghosts), body=body, params=ghost_params)
    ghost_error = assert_error(ghost, 404)
    for name, value in names.items():
        error["message"] = error["message"].replace(value, "<id>")
        ghost_error["message"] = ghost_error["message"].replace(ghosts[name], "<id>")
    del error["request_id"], ghost_error["request_id"]
    assert error == ghost_error


def test_their_parties_still_see_the_payments_as_made(world: World, alice_and_carol: Pair) -> None:
    for made in (alice_and_carol.authorized, alice_and_carol.paid):
        response = world.alice.get(f"/v1/payments/{made['id']}")
        assert (response.status_code, response.json()) == (200, made)
        refunds = world.alice.get(f"/v1/payments/{made['id']}/refunds").json()
        assert refunds["data"] == []


@pytest.mark.parametrize(
    "direction", ["alice_debits_bob", "bob_debits_alice", "alice_debits_bob_to_carol"]
)
def test_no_one_can_debit_another_tenants_account(
    world: World, unchanged: None, direction: str
) -> None:
    payer, source, destination = {
        "alice_debits_bob": (world.alice, world.bob_eur, world.alice_eur),
        "bob_debits_alice": (world.bob, world.alice_eur, world.bob_eur),
        "alice_debits_bob_to_carol": (world.alice, world.bob_eur, world.carol_eur),
    }[direction]
    for capture_method in ("automatic", "manual"):
        body = valid_payment(
            world,
            source_account=source,
            destination_account=destination,
            capture_method=capture_method,
        )
        response = payer.post("/v1/payments", body)
        assert_error(response, 404, "resource_missing", "source_account")


@pytest.mark.parametrize(
    ("action", "body"),
    [
        pytest.param("capture", {}, id="capture"),
        pytest.param("capture", {"amount": 1_000}, id="capture_all"),
        pytest.param("refunds", {}, id="refund"),
        pytest.param("refunds", {"amount": 1}, id="refund_some"),
    ],
)
def test_the_payer_may_neither_capture_nor_refund(
    world: World, alice_and_bob: Pair, unchanged: None, action: str, body: dict[str, Any]
) -> None:
    payment = alice_and_bob.authorized if action == "capture" else alice_and_bob.paid
    response = world.alice.post(f"/v1/payments/{payment['id']}/{action}", body)
    error = assert_error(response, 400, "payee_action_only")
    assert "payee" in error["message"]


# -- bad input writes nothing (OWASP API3 mass assignment, API8) ----------------------------------

BAD_PAYMENTS = [
    # (id, changes to a valid body, param)
    ("negative", {"amount": -100}, "amount"),
    ("zero", {"amount": 0}, "amount"),
    ("fractional", {"amount": 10.5}, "amount"),
    ("whole_float", {"amount": 100.0}, "amount"),
    ("string", {"amount": "100"}, "amount"),
    ("boolean", {"amount": True}, "amount"),
    ("null", {"amount": None}, "amount"),
    ("huge", {"amount": 10**20}, "amount"),
    ("just_over_max", {"amount": 10**11 + 1}, "amount"),
    ("missing_amount", {"amount": ...}, "amount"),
    ("unknown_currency", {"currency": "XYZ"}, "currency"),
    ("lowercase_currency", {"currency": "eur"}, "currency"),
    ("long_currency", {"currency": "EURO"}, "currency"),
    ("wrong_currency_account", {"currency": "USD"}, "source_account"),
    ("other_currency_destination", {"destination_account": "{bob_usd}"}, "destination_account"),
    ("same_account", {"destination_account": "{alice_eur}"}, "destination_account"),
    ("path_in_account", {"source_account": "../acct"}, "source_account"),
    ("capture_method", {"capture_method": "later"}, "capture_method"),
    ("metadata_51_keys", {"metadata": {f"k{i}": "v" for i in range(51)}}, "metadata"),
    ("metadata_long_key", {"metadata": {"k" * 41: "v"}}, "metadata"),
    ("metadata_long_value", {"metadata": {"k": "v" * 501}}, "metadata"),
    ("metadata_number", {"metadata": {"k": 1}}, "metadata.k"),
    ("metadata_nested", {"metadata": {"k": {"a": "b"}}}, "metadata.k"),
    ("description_long", {"description": "d" * 1001}, "description"),
    ("mass_assign_status", {"status": "succeeded"}, "status"),
    ("mass_assign_refunded", {"amount_refunded": 0}, "amount_refunded"),
    ("mass_assign_captured", {"amount_captured": 100}, "amount_captured"),
    ("mass_assign_payee", {"payee": "usr_mallory"}, "payee"),
    ("mass_assign_id", {"id": "pay_mine"}, "id"),
]


@pytest.mark.parametrize(
    ("changes", "param"), [pytest.param(*case[1:], id=case[0]) for case in BAD_PAYMENTS]
)
def test_a_bad_payment_is_a_400_naming_the_parameter_and_writes_nothing(
    world: World, unchanged: None, changes: dict[str, Any], param: str
) -> None:
    body = valid_payment(world)
    for name, value in changes.items():
        if value is ...:
            del body[name]
        elif isinstance(value, str) and value.startswith("{"):
            body[name] = value.format(**vars(world))
        else:
            body[name] = value
    assert_error(world.alice.post("/v1/payments", body), 400, "parameter_invalid", param)


def test_an_unknown_destination_is_a_404_and_writes_nothing(world: World, unchanged: None) -> None:
    body = valid_payment(world, destination_account=fresh("acct_nobody"))
    response = world.alice.post("/v1/payments", body)
    assert_error(response, 404, "resource_missing", "destination_account")


def test_a_fractional_amount_says_amounts_are_in_minor_units(world: World, unchanged: None) -> None:
    body = valid_payment(
        world,
        source_account=world.alice_usd,
        destination_account=world.bob_usd,
        amount=10.5,
        currency="USD",
    )
    error = assert_error(world.alice.post("/v1/payments", body), 400, param="amount")
    assert "minor units" in error["message"]
    assert "1050" in error["message"]


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        pytest.param('{"amount": ', "application/json", id="truncated_json"),
        pytest.param("{'amount': 100}", "application/json", id="single_quotes"),
        pytest.param("[]", "application/json", id="array"),
        pytest.param('"payment"', "application/json", id="string"),
        pytest.param("null", "application/json", id="json_null"),
        pytest.param("amount=100&currency=EUR", "application/x-www-form-urlencoded", id="form"),
        pytest.param("<valid>", "text/plain", id="text_plain"),
        pytest.param("<valid>", None, id="no_content_type"),
        pytest.param("<valid>", "application/xml", id="xml"),
        pytest.param(b"\xff\xfe{}", "application/json", id="not_utf8"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_400_and_writes_nothing(
    world: World, unchanged: None, data: str | bytes, content_type: str | None
) -> None:
    payload = json.dumps(valid_payment(world)) if data == "<valid>" else data
    headers = {"Content-Type": content_type} if content_type else {}
    response = world.alice.request("POST", "/v1/payments", data=payload, headers=headers)
    assert_error(response, 400, "parameter_invalid")


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("k" * 256, id="256_chars"),
    ],
)
def test_a_post_without_a_usable_idempotency_key_is_a_400_and_writes_nothing(
    world: World, unchanged: None, key: str | None
) -> None:
    response = world.alice.post("/v1/payments", valid_payment(world), key=key)
    assert_error(response, 400, "parameter_invalid", "Idempotency-Key")


BAD_CAPTURES = [
    ("more_than_authorized", {"amount": 1_001}, "amount"),
    ("zero", {"amount": 0}, "amount"),
    ("negative", {"amount": -1}, "amount"),
    ("fractional", {"amount": 999.5}, "amount"),
    ("string", {"amount": "1000"}, "amount"),
    ("huge", {"amount": 10**20}, "amount"),
    ("mass_assign_status", {"status": "succeeded"}, "status"),
    ("mass_assign_captured", {"amount_captured": 1}, "amount_captured"),
]


@pytest.mark.parametrize(
    ("body", "param"), [pytest.param(*case[1:], id=case[0]) for case in BAD_CAPTURES]
)
def test_a_bad_capture_is_a_400_and_writes_nothing(
    world: World, alice_and_bob: Pair, unchanged: None, body: dict[str, Any], param: str
) -> None:
    response = world.bob.post(f"/v1/payments/{alice_and_bob.authorized['id']}/capture", body)
    assert_error(response, 400, "parameter_invalid", param)


BAD_REFUNDS = [
    ("more_than_captured", {"amount": 1_001}, "amount"),
    ("zero", {"amount": 0}, "amount"),
    ("negative", {"amount": -5}, "amount"),
    ("fractional", {"amount": 10.5}, "amount"),
    ("string", {"amount": "10"}, "amount"),
    ("huge", {"amount": 10**20}, "amount"),
    ("reason", {"reason": "because"}, "reason"),
    ("metadata_51_keys", {"metadata": {f"k{i}": "v" for i in range(51)}}, "metadata"),
    ("metadata_long_key", {"metadata": {"k" * 41: "v"}}, "metadata"),
    ("metadata_long_value", {"metadata": {"k": "v" * 501}}, "metadata"),
    ("mass_assign_refunded", {"amount_refunded": 0}, "amount_refunded"),
    ("mass_assign_status", {"status": "refunded"}, "status"),
    ("mass_assign_payment", {"payment": "pay_other"}, "payment"),
]


@pytest.mark.parametrize(
    ("body", "param"), [pytest.param(*case[1:], id=case[0]) for case in BAD_REFUNDS]
)
def test_a_bad_refund_is_a_400_and_writes_nothing(
    world: World, alice_and_bob: Pair, unchanged: None, body: dict[str, Any], param: str
) -> None:
    response = world.bob.post(f"/v1/payments/{alice_and_bob.paid['id']}/refunds", body)
    assert_error(response, 400, "parameter_invalid", param)


def test_cancel_takes_no_parameters(world: World, alice_and_bob: Pair, unchanged: None) -> None:
    path = f"/v1/payments/{alice_and_bob.authorized['id']}/cancel"
    assert_error(world.alice.post(path, {"status": "canceled"}), 400, "parameter_invalid", "status")


# -- the payment state machine refuses, and writes nothing -----------------------------------------


def test_an_uncaptured_payment_cannot_be_refunded(
    world: World, alice_and_bob: Pair, unchanged: None
) -> None:
    path = f"/v1/payments/{alice_and_bob.authorized['id']}/refunds"
    assert_error(world.bob.post(path, {"amount": 1}), 400, "payment_invalid_state")


def test_a_captured_payment_can_be_neither_captured_again_nor_canceled(world: World) -> None:
    authorized = world.alice.pay(world.alice_eur, world.bob_eur, 1_000, capture_method="manual")
    path = f"/v1/payments/{authorized['id']}"
    captured = world.bob.post(f"{path}/capture", {"amount": 600})
    assert captured.status_code == 200, captured.text
    assert (captured.json()["status"], captured.json()["amount_captured"]) == ("succeeded", 600)
    before = world.snapshot()

    for actor, action, body in (
        (world.bob, "capture", {}),
        (world.bob, "capture", {"amount": 400}),  # the released rest
        (world.bob, "capture", {"amount": 600}),
        (world.bob, "cancel", {}),
        (world.alice, "cancel", {}),
    ):
        response = actor.post(f"{path}/{action}", body)
        assert_error(response, 400, "payment_invalid_state")
    assert world.snapshot() == before


def test_a_canceled_payment_can_be_neither_refunded_nor_captured(world: World) -> None:
    start = world.aws.balances(world.alice_eur)[world.alice_eur]
    authorized = world.alice.pay(world.alice_eur, world.bob_eur, 1_000, capture_method="manual")
    path = f"/v1/payments/{authorized['id']}"
    canceled = world.alice.post(f"{path}/cancel")
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    assert world.aws.balances(world.alice_eur)[world.alice_eur] == start  # the hold is back
    before = world.snapshot()

    for action, body in (("refunds", {}), ("refunds", {"amount": 1}), ("capture", {})):
        response = world.bob.post(f"{path}/{action}", body)
        assert_error(response, 400, "payment_invalid_state")
    for canceller in (world.alice, world.bob):
        assert_error(canceller.post(f"{path}/cancel"), 400, "payment_invalid_state")
    assert world.snapshot() == before


def test_a_payment_refunded_in_full_refuses_one_more_cent(world: World) -> None:
    paid = world.alice.pay(world.alice_eur, world.bob_eur, 1_000)
    path = f"/v1/payments/{paid['id']}/refunds"
    assert world.bob.post(path, {"amount": 999}).status_code == 201
    before = world.snapshot()
    assert_error(world.bob.post(path, {"amount": 2}), 400, "parameter_invalid", "amount")
    assert world.snapshot() == before

    assert world.bob.post(path).status_code == 201  # the rest: 1
    before = world.snapshot()
    assert_error(world.bob.post(path, {"amount": 1}), 400, "payment_invalid_state")
    assert_error(world.bob.post(path), 400, "payment_invalid_state")
    assert world.snapshot() == before
    refunds = world.bob.get(path).json()["data"]
    assert sorted(refund["amount"] for refund in refunds) == [1, 999]
    assert world.bob.get(f"/v1/payments/{paid['id']}").json()["amount_refunded"] == 1_000


# -- idempotency ----------------------------------------------------------------------------------


def test_a_replay_is_byte_for_byte_and_says_so(world: World) -> None:
    body = valid_payment(world)
    key = secrets.token_hex(128)[:255]  # the longest key there may be
    before = world.aws.balances(world.alice_eur, world.bob_eur)

    first = world.alice.post("/v1/payments", body, key=key)
    replay = world.alice.post("/v1/payments", body, key=key)

    assert first.status_code == 200, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert (replay.status_code, replay.content) == (200, first.content)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.headers["x-amzn-RequestId"] != first.headers["x-amzn-RequestId"]
    after = world.aws.balances(world.alice_eur, world.bob_eur)
    assert after[world.alice_eur][0] == before[world.alice_eur][0] - 100  # moved once
    assert after[world.bob_eur][0] == before[world.bob_eur][0] + 100
    assert world.alice.payment_ids().count(first.json()["id"]) == 1


def test_capture_and_refund_replays_are_byte_for_byte(world: World) -> None:
    authorized = world.alice.pay(world.alice_eur, world.bob_eur, 1_000, capture_method="manual")
    path = f"/v1/payments/{authorized['id']}"
    for action, body, status in (
        ("capture", {"amount": 800}, 200),
        ("refunds", {"amount": 300}, 201),
    ):
        key = fresh("key")
        first = world.bob.post(f"{path}/{action}", body, key=key)
        assert first.status_code == status, first.text
        before = world.snapshot()
        replay = world.bob.post(f"{path}/{action}", body, key=key)
        assert (replay.status_code, replay.content) == (status, first.content)
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert world.snapshot() == before
    refunds = world.bob.get(f"{path}/refunds").json()["data"]
    assert [refund["amount"] for refund in refunds] == [300]


def test_the_same_key_with_another_body_or_on_another_route_is_a_422(
    world: World, alice_and_bob: Pair
) -> None:
    # Given alice's payment under key K
    body = valid_payment(world, metadata={"order": "1"})
    key = fresh("key")
    first = world.alice.post("/v1/payments", body, key=key)
    assert first.status_code == 200, first.text
    before = world.snapshot()

    # When she sends K with anything else
    authorized, paid = alice_and_bob.authorized["id"], alice_and_bob.paid["id"]
    for path, other in (
        ("/v1/payments", {**body, "amount": 101}),
        ("/v1/payments", {**body, "metadata": {"order": "2"}}),
        ("/v1/payments", {**body, "capture_method": "manual"}),
        (f"/v1/payments/{authorized}/cancel", {}),  # she may cancel it: the key stops her
        (f"/v1/payments/{authorized}/capture", {}),
        (f"/v1/payments/{paid}/refunds", {}),
    ):
        # Then it is a 422 that names the key, and nothing is written
        response = world.alice.post(path, other, key=key)
        error = assert_error(response, 422, "idempotency_key_reused", "Idempotency-Key")
        assert error["type"] == "idempotency_error"
    assert world.snapshot() == before

    # And the original request still replays, byte for byte
    replay = world.alice.post("/v1/payments", body, key=key)
    assert (replay.content, replay.headers["Idempotent-Replayed"]) == (first.content, "true")

    # And K is alice's client's only: bob's K makes bob's own payment
    mirrored = valid_payment(
        world, source_account=world.bob_eur, destination_account=world.alice_eur
    )
    bobs = world.bob.post("/v1/payments", mirrored, key=key)
    assert bobs.status_code == 200, bobs.text
    assert "Idempotent-Replayed" not in bobs.headers
    assert bobs.json()["id"] != first.json()["id"]


def test_a_refused_request_does_not_use_up_its_key(world: World) -> None:
    body = valid_payment(world)
    key = fresh("key")
    refused = world.alice.post("/v1/payments", {**body, "amount": 0}, key=key)
    assert_error(refused, 400, "parameter_invalid", "amount")
    accepted = world.alice.post("/v1/payments", body, key=key)
    assert accepted.status_code == 200, accepted.text
    assert "Idempotent-Replayed" not in accepted.headers
