"""What the SDK tests share: partners of their own (a fresh account holder, its EUR account
and a client registered for it), and HTTP adapters that watch or disturb the wire under the
SDK's own `requests.Session` (the SDK under test is the installed `payplat_sdk`)."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from payplat_sdk import Payplat
from requests.adapters import HTTPAdapter

from tests.conftest import Platform, payplat_cli
from tests.e2e.oauth_support import Holder, new_holder, register

MONEY_SCOPE = "accounts:read payments:read payments:write refunds:write"


@dataclass(frozen=True)
class Partner:
    """An account holder with one EUR account, and a client acting for them."""

    platform: Platform
    holder: Holder
    client_id: str
    client_secret: str

    @property
    def account(self) -> str:
        assert self.holder.account_id is not None
        return self.holder.account_id

    def client(self, **options: Any) -> Payplat:
        return Payplat(self.platform.base_url, self.client_id, self.client_secret, **options)


def new_partner(platform: Platform, balance: int = 100_000, scope: str = MONEY_SCOPE) -> Partner:
    holder = new_holder(platform, balance=balance)
    registered = register(
        platform, owner=holder.user_id, grant_types=["client_credentials"], scope=scope
    )
    return Partner(platform, holder, registered["client_id"], registered["client_secret"])


def tiny_plan(platform: Platform, client_id: str, rate: str = "1", burst: str = "2") -> str:
    """Move a client to a plan of its own (a new name, which no function has cached)."""
    name = f"sdk-tiny-{secrets.token_hex(3)}"
    payplat_cli(platform, "plans", "set", name, "--rate", rate, "--burst", burst)
    payplat_cli(platform, "clients", "set-plan", client_id, name)
    return name


def jti_of(access_token: str) -> str:
    """The token's id, read from its (unverified) payload."""
    payload = access_token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    jti: str = claims["jti"]
    return jti


@dataclass
class Exchange:
    method: str
    path: str
    headers: dict[str, str]
    status: int | None  # None: the answer was lost on the way
    answer_headers: dict[str, str] = field(default_factory=dict)


class Recorder(HTTPAdapter):
    """Passes everything through and records each exchange (method, path, request and
    answer headers). `lose_first` names a (method, path) whose first answer is dropped
    after the server has handled the request, as a reset connection would."""

    def __init__(self, lose_first: tuple[str, str] | None = None) -> None:
        super().__init__(max_retries=0)
        self.exchanges: list[Exchange] = []
        self._lose = lose_first

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        path = request.path_url.split("?")[0]
        headers = {k: str(v) for k, v in request.headers.items()}
        record = Exchange(str(request.method), path, headers, None)
        self.exchanges.append(record)
        response = super().send(request, *args, **kwargs)
        if self._lose == (request.method, path):
            self._lose = None
            response.close()
            raise requests.ConnectionError("connection reset after the request was handled")
        record.status = response.status_code
        record.answer_headers = dict(response.headers)
        return response

    def calls(self, method: str, path: str) -> list[Exchange]:
        return [e for e in self.exchanges if (e.method, e.path) == (method, path)]

    def statuses(self, method: str, path: str) -> list[int | None]:
        return [e.status for e in self.calls(method, path)]


def recorded_session(adapter: Recorder) -> requests.Session:
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A partner's webhook receiver on 127.0.0.1 (the local platform delivers to loopback
    over http): records every POST and answers 200."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self._arrived = threading.Condition()
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                delivery = Delivery(dict(self.headers.items()), self.rfile.read(length))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with received._arrived:
                    received.deliveries.append(delivery)
                    received._arrived.notify_all()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def wait_for(self, matches: Callable[[Delivery], bool], timeout_s: float = 30) -> Delivery:
        """The first delivery (arrived or to come) that `matches`."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while True:
                for delivery in self.deliveries:
                    if matches(delivery):
                        return delivery
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching delivery within {timeout_s} s")
                self._arrived.wait(left)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
