"""The SDK against the real local platform, as a partner would use it: client credentials,
accounts, the life of a payment, refunds, auto-pagination, idempotent retries, 429s that say
when to come back, a refused token replaced once, and the typed errors.

Each test acts for account holders and clients of its own (new_holder + registration)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from payplat_sdk import (
    Account,
    APIConnectionError,
    AuthenticationError,
    IdempotencyError,
    InvalidClientError,
    InvalidRequestError,
    LedgerEntry,
    ListObject,
    OAuthError,
    Payment,
    PaymentError,
    Payplat,
    PermissionDeniedError,
    RateLimitError,
    Refund,
)

from tests.conftest import Platform, free_port, payplat_cli
from tests.sdk.support import (
    Partner,
    Recorder,
    jti_of,
    new_partner,
    recorded_session,
    tiny_plan,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def payee(platform: Platform) -> Partner:
    """A merchant: receives, captures and refunds."""
    return new_partner(platform, balance=0)


@pytest.fixture
def payer(platform: Platform) -> Partner:
    """A consumer with 1,000.00 EUR, new for each test."""
    return new_partner(platform)


def test_client_credentials_reads_the_holders_own_accounts(payer: Partner) -> None:
    with payer.client() as client:
        accounts = client.accounts.list()

        assert isinstance(accounts, ListObject)
        assert [a.id for a in accounts] == [payer.account]
        [account] = accounts.data
        assert isinstance(account, Account)
        assert (account.currency, account.available, account.held) == ("EUR", 100_000, 0)
        assert account.raw["object"] == "account"
        assert account["balances"] == [{"currency": "EUR", "available": 100_000, "held": 0}]
        assert accounts.last_response is not None
        assert accounts.last_response.request_id

        assert client.accounts.retrieve(payer.account) == account
        # One token for all of it, cached, with the scope the client was registered with
        assert client.tokens is not None
        assert client.tokens.scopes == {
            "accounts:read",
            "payments:read",
            "payments:write",
            "refunds:write",
        }


def test_create_capture_refund_and_the_ledger_behind_it(payer: Partner, payee: Partner) -> None:
    consumer, merchant = payer.client(), payee.client()

    # Given alice authorizes 50.00 EUR to the merchant, to be captured later
    payment = consumer.payments.create(
        source_account=payer.account,
        destination_account=payee.account,
        amount=5_000,
        currency="EUR",
        capture_method="manual",
        description="Order 42",
        metadata={"order": "42"},
    )
    assert isinstance(payment, Payment)
    assert payment.id.startswith("pay_")
    assert (payment.status, payment.amount, payment.amount_captured) == (
        "requires_capture",
        5_000,
        0,
    )
    assert payment.metadata == {"order": "42"}
    assert payment.capture_before is not None
    assert payment.last_response is not None
    assert not payment.last_response.idempotent_replayed
    assert consumer.accounts.retrieve(payer.account).held == 5_000

    # When the merchant captures 30.00 of it and refunds 10.00
    captured = merchant.payments.capture(payment.id, amount=3_000)
    assert (captured.status, captured.amount_captured) == ("succeeded", 3_000)
    refund = merchant.refunds.create(payment.id, amount=1_000, reason="requested_by_customer")
    assert isinstance(refund, Refund)
    assert (refund.payment, refund.amount, refund.status) == (payment.id, 1_000, "succeeded")
    assert refund.reason == "requested_by_customer"

    # Then both sides see it the same way
    assert consumer.payments.retrieve(payment.id).amount_refunded == 1_000
    assert [r.id for r in merchant.refunds.list(payment.id)] == [refund.id]
    account = consumer.accounts.retrieve(payer.account)
    assert (account.available, account.held) == (100_000 - 3_000 + 1_000, 0)
    entries = consumer.accounts.transactions(payer.account, limit=100)
    assert all(isinstance(e, LedgerEntry) for e in entries)
    assert {e.payment for e in entries} == {payment.id}
    assert sum(e.amount for e in entries if e.bucket == "available") == -2_000


def test_cancel_releases_the_hold(payer: Partner, payee: Partner) -> None:
    client = payer.client()
    payment = client.payments.create(
        source_account=payer.account,
        destination_account=payee.account,
        amount=2_500,
        currency="EUR",
        capture_method="manual",
    )
    canceled = client.payments.cancel(payment.id)
    assert canceled.status == "canceled"
    assert canceled.canceled_at is not None
    account = client.accounts.retrieve(payer.account)
    assert (account.available, account.held) == (100_000, 0)
    assert [p.id for p in client.payments.list(status="canceled")] == [payment.id]
    assert list(client.payments.list(status="requires_capture")) == []


def test_auto_pagination_walks_every_page(payer: Partner, payee: Partner) -> None:
    client = payer.client()
    started = int(time.time())
    made = [
        client.payments.create(
            source_account=payer.account,
            destination_account=payee.account,
            amount=100 + n,
            currency="EUR",
        ).id
        for n in range(5)
    ]

    first = client.payments.list(limit=2)
    assert (len(first), first.has_more) == (2, True)
    every = [p.id for p in first.auto_paging_iter()]
    assert sorted(every) == sorted(made)  # all 5, over 3 pages, none twice
    assert len(set(every)) == 5
    # Newest first, as the API lists them; filters carry over to the next pages
    assert every == [p.id for p in client.payments.list(limit=100)]
    filtered = client.payments.list(status="succeeded", created_gte=started, limit=2)
    assert sorted(p.id for p in filtered.auto_paging_iter()) == sorted(made)
    assert list(client.payments.list(created_lte=started - 3600, limit=2).auto_paging_iter()) == []
    # And backwards from the oldest: ending_before pages toward newer objects
    oldest = every[-1]
    newer = [p.id for p in client.payments.list(ending_before=oldest, limit=2).auto_paging_iter()]
    assert newer == list(reversed(every[:-1]))
    # Ledger entries page the same way
    walked = client.accounts.transactions(payer.account, limit=2).auto_paging_iter()
    entries = [str(e.payment) for e in walked]
    assert sorted(entries) == sorted(made)  # one debit of the payer's account each


def test_a_lost_answer_is_retried_with_the_same_key_and_pays_once(
    payer: Partner, payee: Partner
) -> None:
    # Given the answer to the first POST /v1/payments is lost after the server handled it
    wire = Recorder(lose_first=("POST", "/v1/payments"))
    client = payer.client(session=recorded_session(wire))

    # When the partner pays once
    payment = client.payments.create(
        source_account=payer.account,
        destination_account=payee.account,
        amount=1_234,
        currency="EUR",
    )

    # Then the SDK sent it twice with one Idempotency-Key, and the second answer was a replay
    first, second = wire.calls("POST", "/v1/payments")
    assert (first.status, second.status) == (None, 200)
    key = first.headers["Idempotency-Key"]
    assert uuid.UUID(key).version == 4
    assert second.headers["Idempotency-Key"] == key
    assert second.answer_headers.get("Idempotent-Replayed") == "true"
    assert payment.last_response is not None
    assert payment.last_response.idempotent_replayed
    # And the money moved once
    assert [p.id for p in client.payments.list(limit=100)] == [payment.id]
    assert client.accounts.retrieve(payer.account).available == 100_000 - 1_234


def test_each_call_gets_its_own_key_and_a_callers_key_replays(
    payer: Partner, payee: Partner
) -> None:
    wire = Recorder()
    client = payer.client(session=recorded_session(wire))
    body: dict[str, Any] = {
        "source_account": payer.account,
        "destination_account": payee.account,
        "amount": 700,
        "currency": "EUR",
    }
    one = client.payments.create(**body)
    two = client.payments.create(**body)
    keys = [e.headers["Idempotency-Key"] for e in wire.calls("POST", "/v1/payments")]
    assert one.id != two.id
    assert len(set(keys)) == 2

    # A key of the caller's: the same request again is the same payment, not a new one
    key = f"order-{uuid.uuid4()}"
    first = client.payments.create(**body, idempotency_key=key)
    again = client.payments.create(**body, idempotency_key=key)
    assert again.id == first.id
    assert again.last_response is not None
    assert again.last_response.idempotent_replayed
    # And other parameters under it are refused, not retried
    with pytest.raises(IdempotencyError) as reused:
        client.payments.create(**{**body, "amount": 701}, idempotency_key=key)
    assert (reused.value.status, reused.value.code) == (422, "idempotency_key_reused")
    assert wire.statuses("POST", "/v1/payments")[-1] == 422
    assert len(wire.calls("POST", "/v1/payments")) == 5


def test_429_is_retried_after_retry_after(platform: Platform) -> None:
    # Given a client on a plan of 1 request a second, burst 2
    partner = new_partner(platform, scope="accounts:read")
    tiny_plan(platform, partner.client_id)
    wire = Recorder()
    client = partner.client(session=recorded_session(wire))

    # When it makes 4 calls at once
    started = time.monotonic()
    pages = [client.accounts.list() for _ in range(4)]
    elapsed = time.monotonic() - started

    # Then every call succeeded: the 429s were waited out as Retry-After said
    assert all(len(page) == 1 for page in pages)
    statuses = wire.statuses("GET", "/v1/accounts")
    assert 429 in statuses
    assert statuses[-1] == 200
    limited = [e for e in wire.calls("GET", "/v1/accounts") if e.status == 429]
    waited = sum(float(e.answer_headers["Retry-After"]) for e in limited)
    assert waited >= 1
    assert elapsed >= waited


def test_429_without_retries_says_when_to_come_back(platform: Platform) -> None:
    partner = new_partner(platform, scope="accounts:read")
    tiny_plan(platform, partner.client_id, burst="1")
    client = partner.client(max_retries=0)
    client.accounts.list()
    with pytest.raises(RateLimitError) as limited:
        client.accounts.list()
    error = limited.value
    assert (error.status, error.type, error.code) == (429, "rate_limit_error", "rate_limited")
    assert error.retry_after is not None
    assert error.retry_after >= 1
    assert error.headers["RateLimit-Policy"].startswith('"sdk-tiny-')


def test_a_refused_token_is_replaced_once(platform: Platform, payer: Partner) -> None:
    # Given a client whose cached token the operator has revoked
    wire = Recorder()
    client = payer.client(session=recorded_session(wire))
    client.accounts.list()
    token = client.tokens.access_token if client.tokens else ""
    payplat_cli(platform, "tokens", "revoke", "--client", payer.client_id, "--", jti_of(token))

    # When it calls again, the API refuses the token; the SDK gets a new one and succeeds
    assert [a.id for a in client.accounts.list()] == [payer.account]
    assert wire.statuses("GET", "/v1/accounts") == [200, 401, 200]
    assert wire.statuses("POST", "/oauth/token") == [200, 200]
    sent = [e.headers["Authorization"] for e in wire.calls("GET", "/v1/accounts")]
    assert sent[0] == sent[1] != sent[2]


def test_a_bad_static_token_is_an_authentication_error_not_retried(platform: Platform) -> None:
    wire = Recorder()
    client = Payplat(platform.base_url, "any", token="not-a-token", session=recorded_session(wire))
    with pytest.raises(AuthenticationError) as refused:
        client.payments.list()
    error = refused.value
    assert (error.status, error.type, error.code) == (401, "authentication_error", "invalid_token")
    assert error.request_id == error.headers["x-amzn-RequestId"]
    assert not isinstance(error, OAuthError)
    assert wire.statuses("GET", "/v1/payments") == [401]
    assert "not-a-token" not in repr(client) + str(error) + repr(error)


def test_a_bad_client_secret_is_an_oauth_and_authentication_error(payer: Partner) -> None:
    wrong = "wrong-" + payer.client_secret
    client = Payplat(payer.platform.base_url, payer.client_id, wrong)
    with pytest.raises(InvalidClientError) as refused:
        client.accounts.list()
    error = refused.value
    assert isinstance(error, OAuthError)
    assert isinstance(error, AuthenticationError)
    assert (error.status, error.error, error.code) == (401, "invalid_client", "invalid_client")
    assert error.error_description
    assert error.headers["WWW-Authenticate"].startswith("Basic")
    for text in (str(error), repr(error), repr(client), str(error.body)):
        assert wrong not in text
        assert payer.client_secret not in text


def test_not_found_payment_error_and_bad_parameters(payer: Partner, payee: Partner) -> None:
    wire = Recorder()
    client = payer.client(session=recorded_session(wire))

    with pytest.raises(InvalidRequestError) as missing:
        client.payments.retrieve("pay_doesnotexist")
    assert (missing.value.status, missing.value.code) == (404, "resource_missing")
    assert missing.value.param == "payment_id"
    assert missing.value.request_id
    # An id cannot change the path
    with pytest.raises(InvalidRequestError) as escaped:
        client.payments.retrieve("../accounts")
    assert escaped.value.status == 404

    with pytest.raises(PaymentError) as declined:
        client.payments.create(
            source_account=payer.account,
            destination_account=payee.account,
            amount=100_001,
            currency="EUR",
        )
    error = declined.value
    assert (error.status, error.type, error.code) == (402, "payment_error", "insufficient_funds")
    assert error.param == "amount"
    assert error.payment is not None
    assert (error.payment.status, error.payment.failure_code) == ("failed", "insufficient_funds")
    assert wire.statuses("POST", "/v1/payments") == [402]  # a 4xx is never retried

    with pytest.raises(InvalidRequestError) as invalid:
        client.payments.create(
            source_account=payer.account,
            destination_account=payee.account,
            amount=100,
            currency="EURO",
        )
    assert (invalid.value.status, invalid.value.param) == (400, "currency")

    # The payer may not capture (only the payee may)
    held = client.payments.create(
        source_account=payer.account,
        destination_account=payee.account,
        amount=100,
        currency="EUR",
        capture_method="manual",
    )
    with pytest.raises(InvalidRequestError) as not_yours:
        client.payments.capture(held.id)
    assert not_yours.value.code == "payee_action_only"


def test_a_narrowed_token_is_refused_the_other_routes(payer: Partner) -> None:
    client = payer.client(scope=["accounts:read"])
    assert len(client.accounts.list()) == 1
    with pytest.raises(PermissionDeniedError) as denied:
        client.payments.list()
    assert (denied.value.status, denied.value.code) == (403, "insufficient_scope")
    # A scope the client was never granted is refused by the authorization server
    wider = payer.client(scope="clients:manage")
    with pytest.raises(OAuthError) as refused:
        wider.accounts.list()
    assert refused.value.error == "invalid_scope"


def test_an_unreachable_api_is_a_connection_error_after_the_retries() -> None:
    client = Payplat(f"http://127.0.0.1:{free_port()}", "id", "secret", max_retries=1)
    client._transport.sleep = lambda _: None  # no need to wait for nothing
    with pytest.raises(APIConnectionError) as unreachable:
        client.accounts.list()
    assert "after 2 attempts" in str(unreachable.value)
    assert "secret" not in str(unreachable.value)
