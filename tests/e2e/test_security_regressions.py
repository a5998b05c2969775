"""The attacks of the adversarial review, replayed over HTTP against the local platform as an
attacker would try them; each must now fail.

1. An idempotency key of one account holder replayed by another holder of the same app.
2. A refresh token keeping a scope its client's registration lost.
3. A stranger locking out an account holder (wrong passwords) or a partner (wrong secrets),
   from another source address.
4. Malformed framing (`Content-Length: -1`, `abc`) hanging the local gateway.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from requests.adapters import HTTPAdapter

from tests.conftest import CONFIG_CACHE_TTL_S, Platform, payplat_cli
from tests.e2e.oauth_support import (
    CALLBACK,
    App,
    Browser,
    Holder,
    audit_lines,
    client_token,
    consent,
    introspect,
    new_holder,
    register,
)

pytestmark = pytest.mark.e2e

HOLDER_SCOPES = "accounts:read payments:read payments:write refunds:write webhooks:manage"
STRANGER_IP = "127.0.0.2"  # loopback, but another source address than the tests' own


class FromAddress(HTTPAdapter):
    """Requests sent from `address` (a loopback alias): a second machine, as the platform
    sees it."""

    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self._address, 0)
        super().init_poolmanager(*args, **kwargs)


def from_address(session: requests.Session, address: str) -> requests.Session:
    session.mount("http://", FromAddress(address))
    return session


@dataclass
class HolderSession:
    """One account holder's access token for the shared app."""

    platform: Platform
    holder: Holder
    token: str

    def post(self, path: str, body: dict[str, Any], key: str) -> requests.Response:
        return requests.post(
            f"{self.platform.base_url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}", "Idempotency-Key": key},
            timeout=15,
        )

    def get(self, path: str) -> requests.Response:
        return requests.get(
            f"{self.platform.base_url}{path}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=15,
        )

    def pay(self, to: HolderSession, amount: int, **extra: Any) -> dict[str, Any]:
        response = self.post("/v1/payments", payment(self, to, amount, **extra), fresh())
        assert response.status_code == 200, response.text
        paid: dict[str, Any] = response.json()
        return paid


def payment(source: HolderSession, to: HolderSession, amount: int, **extra: Any) -> dict[str, Any]:
    return {
        "source_account": source.holder.account_id,
        "destination_account": to.holder.account_id,
        "amount": amount,
        "currency": "EUR",
        **extra,
    }


def fresh() -> str:
    return f"key-{secrets.token_hex(8)}"


def shared_app(platform: Platform, scope: str = HOLDER_SCOPES) -> tuple[App, dict[str, Any]]:
    """A third-party app of its own (authorization code + refresh), so this module's
    consents and narrowing touch no other test's client; and its RFC 7591 registration."""
    registered = register(
        platform,
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=[CALLBACK],
        scope=scope,
    )
    app = App(platform, registered["client_id"], registered["client_secret"], CALLBACK, scope)
    return app, registered


def holder_session(platform: Platform, app: App) -> tuple[HolderSession, dict[str, Any]]:
    holder = new_holder(platform)
    token = app.exchange(consent(platform, app, holder))
    return HolderSession(platform, holder, token["access_token"]), token


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def holders(platform: Platform) -> tuple[HolderSession, HolderSession]:
    """alice and bob, two account holders behind ONE app (one client id)."""
    app, _ = shared_app(platform)
    alice, _ = holder_session(platform, app)
    bob, _ = holder_session(platform, app)
    return alice, bob


def assert_fresh(response: requests.Response, status: int) -> None:
    """Answered as a request of its own: not a replay of anyone's answer."""
    assert response.status_code == status, response.text
    assert "Idempotent-Replayed" not in response.headers


# -- 1. idempotency keys are the principal's, not the app's ------------------------------------


def test_payment_keys_of_two_holders_behind_one_app_never_meet(
    holders: tuple[HolderSession, HolderSession],
) -> None:
    alice, bob = holders
    key = fresh()
    # Given alice's payment to bob with key K
    sent = alice.post("/v1/payments", payment(alice, bob, 101), key)
    assert_fresh(sent, 200)
    # When bob sends K with alice's very body: a request of his own, refused (not his account)
    copied = bob.post("/v1/payments", payment(alice, bob, 101), key)
    assert copied.status_code in {400, 404}, copied.text
    assert "Idempotent-Replayed" not in copied.headers
    # And K with his own payment is a new payment, not a 422 for "another body"
    own = bob.post("/v1/payments", payment(bob, alice, 102), key)
    assert_fresh(own, 200)
    assert own.json()["id"] != sent.json()["id"]
    # While alice's own retry still replays her answer
    again = alice.post("/v1/payments", payment(alice, bob, 101), key)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == sent.json()["id"]


@pytest.mark.parametrize("action", ["capture", "cancel"])
def test_capture_and_cancel_keys_of_two_holders_never_meet(
    holders: tuple[HolderSession, HolderSession], action: str
) -> None:
    alice, bob = holders
    # Given an authorization each holder is the payee of
    to_bob = alice.pay(bob, 201, capture_method="manual")
    to_alice = bob.pay(alice, 202, capture_method="manual")
    key = fresh()
    # When bob (payee) acts on his with key K
    assert_fresh(bob.post(f"/v1/payments/{to_bob['id']}/{action}", {}, key), 200)
    # Then alice sending K for bob's payment gets her own answer, not his (the payer may
    # not capture; a canceled payment cannot be canceled again)
    copied = alice.post(f"/v1/payments/{to_bob['id']}/{action}", {}, key)
    assert_fresh(copied, 400)
    assert copied.json()["error"]["code"] in {"payee_action_only", "payment_invalid_state"}
    # And K on her own payment acts on it
    assert_fresh(alice.post(f"/v1/payments/{to_alice['id']}/{action}", {}, key), 200)


def test_refund_keys_of_two_holders_never_meet(
    holders: tuple[HolderSession, HolderSession],
) -> None:
    alice, bob = holders
    to_bob, to_alice = alice.pay(bob, 301), bob.pay(alice, 302)
    key = fresh()
    first = bob.post(f"/v1/payments/{to_bob['id']}/refunds", {"amount": 1}, key)
    assert_fresh(first, 201)
    copied = alice.post(f"/v1/payments/{to_bob['id']}/refunds", {"amount": 1}, key)
    assert copied.status_code == 400 and "Idempotent-Replayed" not in copied.headers
    own = alice.post(f"/v1/payments/{to_alice['id']}/refunds", {"amount": 1}, key)
    assert_fresh(own, 201)
    assert own.json()["id"] != first.json()["id"]


def test_webhook_keys_never_hand_one_holder_anothers_endpoint_or_secret(
    holders: tuple[HolderSession, HolderSession], receiver: str
) -> None:
    alice, bob = holders
    body = {"url": receiver, "enabled_events": ["payment.created"]}
    key = fresh()
    # Given alice's endpoint created with key K
    hers = alice.post("/v1/webhook_endpoints", body, key)
    assert_fresh(hers, 200)
    # When bob sends K with the same body, he gets an endpoint of his own
    his = bob.post("/v1/webhook_endpoints", body, key)
    assert_fresh(his, 200)
    assert his.json()["id"] != hers.json()["id"]
    assert his.json()["secret"] != hers.json()["secret"]
    assert bob.get(f"/v1/webhook_endpoints/{hers.json()['id']}").status_code == 404

    # Given alice rolls her secret with key R
    roll_key = fresh()
    path = f"/v1/webhook_endpoints/{hers.json()['id']}/roll_secret"
    rolled = alice.post(path, {"expires_in": 0}, roll_key)
    assert_fresh(rolled, 200)
    # Then bob's R for her endpoint is refused as not his, never her new secret
    copied = bob.post(path, {"expires_in": 0}, roll_key)
    assert_fresh(copied, 404)
    assert rolled.json()["secret"] not in copied.text
    # And R for his own endpoint rolls his
    own = bob.post(f"/v1/webhook_endpoints/{his.json()['id']}/roll_secret", {}, roll_key)
    assert_fresh(own, 200)

    # Given an event of alice's (not bob's: he is neither payer nor payee) redelivered with D
    stranger = new_holder(alice.platform)
    to_stranger = {**payment(alice, bob, 401), "destination_account": stranger.account_id}
    assert_fresh(alice.post("/v1/payments", to_stranger, fresh()), 200)
    deadline = time.monotonic() + 30
    events: list[dict[str, Any]] = []
    while not events and time.monotonic() < deadline:
        events = [
            event
            for event in alice.get("/v1/events?type=payment.created").json()["data"]
            if event["data"]["object"]["destination_account"] == stranger.account_id
        ]
        time.sleep(0.3)
    assert events, "alice's payment.created never reached her events"
    redeliver_key = fresh()
    path = f"/v1/events/{events[0]['id']}/redeliver"
    assert_fresh(alice.post(path, {}, redeliver_key), 200)
    # Then bob's D for her event is a 404, not her answer
    assert_fresh(bob.post(path, {}, redeliver_key), 404)
    for session, endpoint in ((alice, hers), (bob, his)):
        requests.delete(
            f"{session.platform.base_url}/v1/webhook_endpoints/{endpoint.json()['id']}",
            headers={"Authorization": f"Bearer {session.token}"},
            timeout=15,
        )


@pytest.mark.parametrize(
    "key", [pytest.param("clé-42", id="non_ascii"), pytest.param("k\x7fk", id="control")]
)
def test_an_idempotency_key_outside_printable_ascii_is_a_400(
    holders: tuple[HolderSession, HolderSession], key: str
) -> None:
    alice, bob = holders
    response = alice.post("/v1/payments", payment(alice, bob, 1), key)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "Idempotency-Key"


# -- 2. a narrowed registration bounds every later token --------------------------------------


def test_a_refresh_after_the_client_lost_a_scope_drops_it(platform: Platform) -> None:
    # Given a holder's grant of accounts:read and payments:read
    app, registered = shared_app(platform, "accounts:read payments:read")
    holder, token = holder_session(platform, app)
    assert holder.get("/v1/payments").status_code == 200
    # When the partner narrows its registration to accounts:read (RFC 7592)
    metadata = {
        key: registered[key]
        for key in ("client_name", "grant_types", "redirect_uris", "owner")
        if key in registered
    }
    narrowed = requests.put(
        registered["registration_client_uri"],
        json={**metadata, "client_id": app.client_id, "scope": "accounts:read"},
        headers={"Authorization": f"Bearer {registered['registration_access_token']}"},
        timeout=10,
    )
    assert narrowed.status_code == 200, narrowed.text
    time.sleep(CONFIG_CACHE_TTL_S + 0.2)  # the functions' cached client records
    # Then the access token it had no longer reaches payments, and introspection says so
    before = holder.get("/v1/payments")
    assert before.status_code == 403, before.text
    for kind in ("access_token", "refresh_token"):
        seen = introspect(platform, token[kind], app.client_id, app.client_secret)
        assert (seen["active"], seen["scope"]) == (True, "accounts:read")
    # And a refresh returns only what the client holds now, also on the next rotation
    refreshed = app.token_request(grant_type="refresh_token", refresh_token=token["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["scope"] == "accounts:read"
    again = app.token_request(
        grant_type="refresh_token", refresh_token=refreshed.json()["refresh_token"]
    )
    assert again.json()["scope"] == "accounts:read"
    asked = app.token_request(
        grant_type="refresh_token",
        refresh_token=again.json()["refresh_token"],
        scope="payments:read",
    )
    assert (asked.status_code, asked.json()["error"]) == (400, "invalid_scope")
    fresh_token = HolderSession(platform, holder.holder, again.json()["access_token"])
    assert fresh_token.get("/v1/payments").status_code == 403
    assert fresh_token.get("/v1/accounts").status_code == 200


# -- 3. a stranger locks out only itself --------------------------------------------------------


def test_a_stranger_guessing_a_password_cannot_lock_out_the_holder(platform: Platform) -> None:
    app = App.seeded(platform)
    victim = new_holder(platform)
    # Given a stranger at another address guessing the victim's password until refused
    stranger = Browser(platform, from_address(requests.Session(), STRANGER_IP))
    stranger.open(app.authorization_url())
    statuses = [stranger.log_in(victim, f"guess-{n}").status_code for n in range(6)]
    assert statuses == [200] * 5 + [429]
    # Then the right password from the stranger's address is refused too
    assert stranger.log_in(victim).status_code == 429
    # But the holder, from their own address, signs in at once
    own = Browser(platform)
    own.open(app.authorization_url())
    page = own.log_in(victim)
    assert page.status_code == 200 and "approve" in page.text
    # And the lockout is audited with the bucket that held (and where from), never the password
    locked = audit_lines(
        platform,
        lambda r: (
            r["type"] == "rate_limited"
            and r.get("resource") == "login"
            and r.get("origin", {}).get("source_ip") == STRANGER_IP
        ),
    )
    assert locked and locked[-1]["details"]["plan"] == "login-user-ip"
    assert "guess-" not in str(locked)


def test_a_stranger_guessing_a_client_secret_cannot_lock_out_the_partner(
    platform: Platform,
) -> None:
    partner = register(platform, grant_types=["client_credentials"], scope="payments:read")
    client_id, secret = partner["client_id"], partner["client_secret"]
    payplat_cli(platform, "plans", "set", "token-client-ip", "--rate", "0.5", "--burst", "3")
    time.sleep(CONFIG_CACHE_TTL_S + 0.2)
    try:
        # Given a stranger at another address sending wrong secrets until refused
        stranger = from_address(requests.Session(), STRANGER_IP)
        statuses = [
            stranger.post(
                f"{platform.base_url}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, f"guess-{n}"),
                timeout=5,
            ).status_code
            for n in range(4)
        ]
        assert statuses == [401, 401, 401, 429]
        # Then the partner, from its own address with the right secret, gets its token
        own = client_token(platform, client_id, secret)
        assert own.status_code == 200, own.text
        # While the right secret from the stranger's address is still held
        held = stranger.post(
            f"{platform.base_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
            timeout=5,
        )
        assert held.status_code == 429
    finally:
        payplat_cli(platform, "plans", "set", "token-client-ip", "--rate", "5", "--burst", "50")
        time.sleep(CONFIG_CACHE_TTL_S + 0.2)


# -- 4. malformed framing is answered at once ---------------------------------------------------


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "5, 6"])
def test_a_malformed_content_length_is_a_400_at_once(platform: Platform, length: str) -> None:
    parts = urlsplit(platform.base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=3) as sock:
        sock.sendall(
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Length: {length}\r\n\r\n".encode()
        )
        started = time.monotonic()
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
    assert time.monotonic() - started < 3
