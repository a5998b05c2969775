"""What the OAuth end-to-end tests share: an account holder's browser (cookies, HTML forms,
no JavaScript: the pages need none), a partner app built on authlib, the admin's initial
access token for dynamic registration, and direct reads of the platform's state."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from payplat.oauth.dal.users_table import DynamoUserStore
from payplat.oauth.users import create_user
from payplat.payments.dal.ledger_table import DynamoLedgerStore
from payplat.payments.ledger import Account
from tests.conftest import Platform

LOCAL_CREDENTIALS = {
    "region_name": "us-east-1",
    "aws_access_key_id": "local",
    "aws_secret_access_key": "local",
}
CALLBACK = "http://127.0.0.1:8765/callback"


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attributes.get("action"), "fields": {}})
        elif tag == "input" and self.forms and attributes.get("type") == "hidden":
            self.forms[-1]["fields"][attributes["name"]] = attributes.get("value") or ""


def the_form(html: str) -> tuple[str, dict[str, str]]:
    """The page's one form: its action and hidden fields."""
    parser = _Forms()
    parser.feed(html)
    [form] = parser.forms
    return form["action"], form["fields"]


@dataclass
class Browser:
    """An account holder's browser: keeps cookies, submits the page's form as a person
    would (the hidden fields as served, plus what they type and the button they press)."""

    platform: Platform
    session: requests.Session = field(default_factory=requests.Session)
    page: requests.Response | None = None

    def open(self, url: str) -> requests.Response:
        self.page = self.session.get(url, allow_redirects=False)
        return self.page

    def press(self, button: str, **typed: str) -> requests.Response:
        assert self.page is not None
        action, hidden = the_form(self.page.text)
        self.page = self.session.post(
            self.platform.base_url + action,
            data={**hidden, **typed, "action": button},
            allow_redirects=False,
        )
        return self.page

    def log_in(self, user: Holder | str, password: str | None = None) -> requests.Response:
        holder = user if isinstance(user, Holder) else Holder.seeded(self.platform, user)
        return self.press(
            "login",
            username=holder.username,
            password=password if password is not None else holder.password,
        )


@dataclass(frozen=True)
class Holder:
    """An account holder who can log in. Tests make their own (`new_holder`): sign-ins are
    throttled per username, and a suite that logged alice in forty times would be a brute
    force in its own right."""

    username: str
    password: str
    user_id: str
    account_id: str | None = None

    @classmethod
    def seeded(cls, platform: Platform, label: str) -> Holder:
        user = platform.users[label]
        return cls(user["username"], user["password"], user["user_id"])


def new_holder(platform: Platform, currency: str = "EUR", balance: int = 100_000) -> Holder:
    """A fresh account holder with one account, created as `payplat users create` would."""
    local = json.loads((platform.state_dir / "local.json").read_text())
    dynamodb = boto3.resource(
        "dynamodb", endpoint_url=platform.aws_endpoint_url, **LOCAL_CREDENTIALS
    )
    username = f"holder_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    user = create_user(
        DynamoUserStore(local["tables"]["PAYPLAT_USERS_TABLE"], resource=dynamodb),
        username,
        password,
    )
    account_id = f"acct_{username}_{currency.lower()}"
    ledger_client = boto3.client(
        "dynamodb", endpoint_url=platform.aws_endpoint_url, **LOCAL_CREDENTIALS
    )
    DynamoLedgerStore(local["tables"]["PAYPLAT_LEDGER_TABLE"], client=ledger_client).open_account(
        Account(account_id, user.user_id, currency, balance, 0, int(time.time()))
    )
    return Holder(username, password, user.user_id, account_id)


@dataclass
class App:
    """A partner app using the authorization-code flow through authlib (PKCE S256)."""

    platform: Platform
    client_id: str
    client_secret: str
    redirect_uri: str
    scope: str
    verifier: str = field(default_factory=lambda: generate_token(64))
    state: str = ""

    @classmethod
    def seeded(cls, platform: Platform) -> App:
        app = platform.clients["app"]
        return cls(
            platform, app["client_id"], app["client_secret"], app["redirect_uri"], app["scope"]
        )

    def session(self, **kwargs: Any) -> OAuth2Session:
        return OAuth2Session(
            self.client_id,
            self.client_secret,
            scope=self.scope,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            **kwargs,
        )

    def authorization_url(self, **extra: str) -> str:
        url, self.state = self.session().create_authorization_url(
            f"{self.platform.base_url}/oauth/authorize", code_verifier=self.verifier, **extra
        )
        return str(url)

    def exchange(self, redirect_location: str) -> dict[str, Any]:
        """What authlib does with the redirect: check state, redeem the code with the
        verifier (raises OAuthError on an error answer)."""
        token: dict[str, Any] = self.session(state=self.state).fetch_token(
            f"{self.platform.base_url}/oauth/token",
            authorization_response=redirect_location,
            code_verifier=self.verifier,
        )
        return token

    def token_request(self, **form: str) -> requests.Response:
        return requests.post(
            f"{self.platform.base_url}/oauth/token",
            data=form,
            auth=(self.client_id, self.client_secret),
            timeout=10,
        )


def consent(platform: Platform, app: App, user: Holder | None = None, **extra: str) -> str:
    """Log an account holder in (a new one unless given) and approve: the redirect the app
    receives."""
    browser = Browser(platform)
    page = browser.open(app.authorization_url(**extra))
    assert page.status_code == 200, page.text
    assert browser.log_in(user or new_holder(platform)).status_code == 200
    approved = browser.press("approve")
    assert approved.status_code == 302, approved.text
    return approved.headers["Location"]


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def fragment_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).fragment).items()}


def client_token(platform: Platform, client_id: str, secret: str, **form: str) -> requests.Response:
    return requests.post(
        f"{platform.base_url}/oauth/token",
        data={"grant_type": "client_credentials", **form},
        auth=(client_id, secret),
        timeout=10,
    )


def admin_token(platform: Platform) -> str:
    admin = platform.clients["admin"]
    response = client_token(platform, admin["client_id"], admin["client_secret"])
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def register(platform: Platform, **metadata: Any) -> dict[str, Any]:
    """A new partner client through RFC 7591, acting for bob unless told otherwise."""
    body = {
        "client_name": f"e2e {secrets.token_hex(3)}",
        "owner": platform.users["bob"]["user_id"],
        **metadata,
    }
    response = requests.post(
        f"{platform.base_url}/oauth/register",
        json=body,
        headers={"Authorization": f"Bearer {admin_token(platform)}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    registered: dict[str, Any] = response.json()
    return registered


def api_get(platform: Platform, path: str, token: str) -> requests.Response:
    return requests.get(
        f"{platform.base_url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def introspect(platform: Platform, token: str, client_id: str, secret: str) -> dict[str, Any]:
    response = requests.post(
        f"{platform.base_url}/oauth/introspect",
        data={"token": token},
        auth=(client_id, secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


class Tokens:
    """The platform's tokens table, reached directly: only to make time pass for a stored
    record (a code's expiry), which no test can wait for."""

    def __init__(self, platform: Platform) -> None:
        local = json.loads((platform.state_dir / "local.json").read_text())
        self._table = local["tables"]["PAYPLAT_TOKENS_TABLE"]
        self._client = boto3.client(
            "dynamodb", endpoint_url=platform.aws_endpoint_url, **LOCAL_CREDENTIALS
        )

    def expire_code(self, code: str) -> None:
        digest = hashlib.sha256(code.encode()).hexdigest()
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": f"CODE#{digest}"}, "sk": {"S": "CODE"}},
            UpdateExpression="SET expires_at = :past",
            ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
        )


def audit_lines(
    platform: Platform, where: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """Audit records the functions wrote (functions.log), matching `where`."""
    found = []
    for line in (platform.state_dir / "functions.log").read_text().splitlines():
        if '"log_type":"AUDIT"' not in line:
            continue
        record = json.loads(line)
        if where(record):
            found.append(record)
    return found
