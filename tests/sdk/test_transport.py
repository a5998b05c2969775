"""The SDK's retry, idempotency and token-caching rules, exactly: a scripted server behind a
requests adapter answers what each case needs (a 409, a lost connection, a Retry-After of an
hour), which the real platform cannot be made to do on cue. No network."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from payplat_sdk import (
    APIConnectionError,
    APIError,
    InvalidRequestError,
    OAuthError,
    Payplat,
    RateLimitError,
    Tokens,
)
from requests.adapters import BaseAdapter

BASE = "https://api.payplat.test"
SECRET = "s3cret-client-secret"
ACCESS = "eyJ.access-token.sig"
METADATA = {
    "issuer": BASE,
    "token_endpoint": f"{BASE}/oauth/token",
    "authorization_endpoint": f"{BASE}/oauth/authorize",
    "revocation_endpoint": f"{BASE}/oauth/revoke",
}
PAYMENT = {
    "id": "pay_1",
    "object": "payment",
    "amount": 100,
    "currency": "EUR",
    "status": "succeeded",
}
Reply = tuple[int, dict[str, str], Any] | Exception


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: str | None


@dataclass
class Scripted(BaseAdapter):
    """Answers the discovery document and tokens by itself, and each API call with the next
    reply scripted for its path."""

    replies: dict[str, list[Reply]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    token_delay_s: float = 0.0
    expires_in: int = 600
    tokens_issued: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        super().__init__()

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        path = request.path_url.split("?")[0]
        raw = request.body
        body = raw.decode() if isinstance(raw, bytes) else raw if isinstance(raw, str) else None
        headers = {k: str(v) for k, v in request.headers.items()}
        with self.lock:
            self.seen.append(Seen(str(request.method), path, headers, body))
        if path == "/.well-known/oauth-authorization-server":
            return respond(request, 200, {}, METADATA)
        if path == "/oauth/token" and "/oauth/token" not in self.replies:
            time.sleep(self.token_delay_s)
            with self.lock:
                self.tokens_issued += 1
                token = f"{ACCESS}{self.tokens_issued}"
            return respond(
                request,
                200,
                {},
                {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in},
            )
        with self.lock:
            queue = self.replies.get(path) or [(200, {}, PAYMENT)]
            reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(reply, Exception):
            raise reply
        return respond(request, *reply)

    def close(self) -> None:
        pass

    def calls(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


def respond(
    request: requests.PreparedRequest, status: int, headers: dict[str, str], body: Any
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers.update({"Content-Type": "application/json", **headers})
    response._content = json.dumps(body).encode()
    response.request = request
    response.url = str(request.url)
    return response


def api_error(status: int, error_type: str, code: str, **headers: str) -> Reply:
    body = {
        "error": {
            "type": error_type,
            "code": code,
            "message": code,
            "param": None,
            "request_id": "r1",
        }
    }
    return (status, headers, body)


def client_for(server: Scripted, **options: Any) -> tuple[Payplat, list[float]]:
    session = requests.Session()
    session.mount("https://", server)
    client = Payplat(BASE, "ppc_test", SECRET, session=session, **options)
    slept: list[float] = []
    client._transport.sleep = slept.append
    return client, slept


def pay(client: Payplat, **options: Any) -> Any:
    return client.payments.create(
        source_account="acct_a", destination_account="acct_b", amount=100, currency="EUR", **options
    )


def test_409_and_5xx_are_retried_with_backoff_and_one_idempotency_key() -> None:
    server = Scripted(
        {
            "/v1/payments": [
                api_error(409, "api_error", "conflict"),
                api_error(500, "api_error", "api_error"),
                api_error(503, "api_error", "unavailable"),
                (200, {"Idempotent-Replayed": "true"}, PAYMENT),
            ]
        }
    )
    client, slept = client_for(server)
    payment = pay(client)
    assert payment.id == "pay_1"
    calls = server.calls("/v1/payments")
    assert len(calls) == 4
    assert len({c.headers["Idempotency-Key"] for c in calls}) == 1
    assert json.loads(calls[0].body or "") == {
        "source_account": "acct_a",
        "destination_account": "acct_b",
        "amount": 100,
        "currency": "EUR",
    }
    # Exponential: 0.5, 1, 2 s steps, each jittered to 50-100 % of the step
    for delay, step in zip(slept, (0.5, 1.0, 2.0), strict=True):
        assert step / 2 <= delay <= step


def test_retries_stop_at_max_retries() -> None:
    server = Scripted({"/v1/payments": [api_error(502, "api_error", "gateway_error")]})
    client, slept = client_for(server, max_retries=2)
    with pytest.raises(APIError) as failed:
        client.payments.list()
    assert failed.value.status == 502
    assert len(server.calls("/v1/payments")) == 3
    assert len(slept) == 2
    client, slept = client_for(server, max_retries=0)
    with pytest.raises(APIError):
        client.payments.list()
    assert slept == []


@pytest.mark.parametrize(
    ("status", "error_type", "code"),
    [
        (400, "invalid_request_error", "parameter_invalid"),
        (404, "invalid_request_error", "resource_missing"),
        (422, "idempotency_error", "idempotency_key_reused"),
        (402, "payment_error", "insufficient_funds"),
        (403, "permission_error", "insufficient_scope"),
    ],
)
def test_other_4xx_are_never_retried(status: int, error_type: str, code: str) -> None:
    server = Scripted({"/v1/payments": [api_error(status, error_type, code)]})
    client, slept = client_for(server)
    with pytest.raises(Exception) as failed:  # noqa: PT011 - the class is checked below
        pay(client)
    assert getattr(failed.value, "status", None) == status
    assert getattr(failed.value, "code", None) == code
    assert len(server.calls("/v1/payments")) == 1
    assert slept == []


def test_retry_after_is_honoured_and_a_long_one_is_left_to_the_caller() -> None:
    server = Scripted(
        {
            "/v1/payments": [
                api_error(429, "rate_limit_error", "rate_limited", **{"Retry-After": "3"}),
                (200, {}, PAYMENT),
            ]
        }
    )
    client, slept = client_for(server)
    pay(client)
    assert slept == [3.0]  # at least the server's word, even though the backoff step is 0.5 s

    server = Scripted(
        {
            "/v1/payments": [
                api_error(
                    429, "rate_limit_error", "daily_quota_exceeded", **{"Retry-After": "3600"}
                )
            ]
        }
    )
    client, slept = client_for(server)
    with pytest.raises(RateLimitError) as limited:
        client.payments.list()
    assert limited.value.retry_after == 3600
    assert limited.value.code == "daily_quota_exceeded"
    assert slept == []


def test_connection_errors_are_retried_with_the_same_key() -> None:
    server = Scripted(
        {
            "/v1/payments": [
                requests.ConnectionError("reset"),
                requests.ReadTimeout("slow"),
                (200, {}, PAYMENT),
            ]
        }
    )
    client, slept = client_for(server)
    assert pay(client, idempotency_key="order-7").id == "pay_1"
    assert [c.headers["Idempotency-Key"] for c in server.calls("/v1/payments")] == ["order-7"] * 3
    assert len(slept) == 2

    server = Scripted({"/v1/payments": [requests.ConnectionError("down")]})
    client, _ = client_for(server, max_retries=1)
    with pytest.raises(APIConnectionError):
        client.payments.list()
    assert len(server.calls("/v1/payments")) == 2


def test_a_refresh_token_is_never_resent_once_it_may_have_arrived() -> None:
    # A read timeout on the token endpoint: the server may have rotated the refresh token,
    # and resending the old one would revoke the grant
    server = Scripted({"/oauth/token": [requests.ReadTimeout("slow")]})
    session = requests.Session()
    session.mount("https://", server)
    tokens = Tokens("old", expires_at=time.time() - 1, refresh_token="refresh-1")
    client = Payplat.from_tokens(BASE, "ppc_test", SECRET, tokens=tokens, session=session)
    client._transport.sleep = lambda _: None
    with pytest.raises(APIConnectionError):
        client.accounts.list()
    assert len(server.calls("/oauth/token")) == 1
    # A 429 there was refused before anything happened: that one is retried
    server.replies["/oauth/token"] = [
        (429, {"Retry-After": "1"}, {"error": "rate_limited", "error_description": "slow down"}),
        (200, {}, {"access_token": "new", "expires_in": 600, "refresh_token": "refresh-2"}),
    ]
    client.accounts.list()
    assert client.tokens is not None
    assert client.tokens.refresh_token == "refresh-2"


def test_a_token_is_cached_shared_across_threads_and_refreshed_before_expiry() -> None:
    server = Scripted(token_delay_s=0.2, expires_in=600)
    client, _ = client_for(server)
    threads = [threading.Thread(target=client.payments.list) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert server.tokens_issued == 1
    sent = {c.headers["Authorization"] for c in server.calls("/v1/payments")}
    assert sent == {f"Bearer {ACCESS}1"}

    # A minute before expiry, the next call fetches a new token first
    source = client._tokens
    now = time.time()
    source._clock = lambda: now + 600 - 59  # type: ignore[attr-defined]
    client.payments.list()
    assert server.tokens_issued == 2
    assert server.calls("/v1/payments")[-1].headers["Authorization"] == f"Bearer {ACCESS}2"


def test_a_401_replaces_a_client_credentials_token_once_only() -> None:
    refused = api_error(401, "authentication_error", "invalid_token")
    server = Scripted({"/v1/payments": [refused, (200, {}, PAYMENT)]})
    client, _ = client_for(server)
    client.payments.list()
    assert server.tokens_issued == 2

    server = Scripted({"/v1/payments": [refused]})
    client, _ = client_for(server)
    with pytest.raises(Exception) as still:  # noqa: PT011
        client.payments.list()
    assert getattr(still.value, "status", None) == 401
    assert len(server.calls("/v1/payments")) == 2
    assert server.tokens_issued == 2


def test_oauth_errors_from_the_token_endpoint() -> None:
    server = Scripted(
        {
            "/oauth/token": [
                (400, {}, {"error": "invalid_scope", "error_description": "Not granted."})
            ]
        }
    )
    client, _ = client_for(server, scope=["payments:read", "clients:manage"])
    with pytest.raises(OAuthError) as refused:
        client.payments.list()
    assert (refused.value.error, refused.value.error_description) == (
        "invalid_scope",
        "Not granted.",
    )
    [token_call] = server.calls("/oauth/token")
    assert "scope=payments%3Aread+clients%3Amanage" in (token_call.body or "")
    assert token_call.headers["Authorization"].startswith("Basic ")


def test_nothing_secret_in_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="payplat_sdk")
    server = Scripted({"/v1/payments": [api_error(503, "api_error", "x"), (200, {}, PAYMENT)]})
    client, _ = client_for(server)
    pay(client)
    tokens = client.tokens
    assert tokens is not None
    shown = " ".join([repr(client), repr(tokens), str(tokens), repr(client._tokens), caplog.text])
    for secret in (SECRET, tokens.access_token, ACCESS):
        assert secret not in shown
    assert "POST /v1/payments -> 503" in caplog.text


def test_path_ids_are_escaped() -> None:
    server = Scripted()
    client, _ = client_for(server)
    client.payments.retrieve("../accounts/acct_x")
    assert server.seen[-1].path == "/v1/payments/..%2Faccounts%2Facct_x"


def test_unparseable_answers_are_api_errors() -> None:
    server = Scripted({"/v1/payments/pay_1": [(200, {}, ["not", "an", "object"])]})
    client, _ = client_for(server)
    with pytest.raises(APIError):
        client.payments.retrieve("pay_1")
    with pytest.raises(InvalidRequestError):
        client_for(Scripted({"/v1/payments": [(413, {}, {"message": "too large"})]}))[
            0
        ].payments.list()


def test_a_client_needs_a_secret_or_a_token() -> None:
    with pytest.raises(ValueError, match="client_secret"):
        Payplat(BASE, "ppc_test")
    sleep: Callable[[float], None] = Payplat(BASE, "ppc_test", token="t")._transport.sleep
    assert sleep is time.sleep
