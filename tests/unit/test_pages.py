"""The authorization server's HTML pages: what they show, the forms they post, and that nothing
interpolated into them (client names, scope words, echoed request values) can become markup."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest

from payplat.oauth.pages import (
    PAGE_HEADERS,
    consent_page,
    error_page,
    login_page,
    throttled_message,
)

HOSTILE = '<script>alert("x")</script>'
ESCAPED = html.escape(HOSTILE, quote=True)  # &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;
ATTRIBUTE_BREAKOUT = '" autofocus onfocus="alert(1)'

HIDDEN = {
    "client_id": "ppc_0123456789abcdef01234567",
    "redirect_uri": "https://partner.example/cb?a=1&b=2",
    "state": "xyz",
    "request": "req_abc",
}


class Form(HTMLParser):
    """The inputs and buttons of a page, as a browser would parse them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.forms: list[dict[str, str | None]] = []
        self.inputs: list[dict[str, str | None]] = []
        self.buttons: list[dict[str, str | None]] = []
        self.tags: list[str] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        {"form": self.forms, "input": self.inputs, "button": self.buttons}.get(tag, []).append(
            dict(attrs)
        )

    def hidden(self) -> dict[str | None, str | None]:
        return {i["name"]: i["value"] for i in self.inputs if i.get("type") == "hidden"}

    def input(self, name: str) -> dict[str, str | None]:
        return next(i for i in self.inputs if i.get("name") == name)


def login(**overrides: object) -> str:
    args: dict[str, object] = {
        "client_name": "Acme Budgeting",
        "action": "/oauth/authorize",
        "hidden": HIDDEN,
    }
    return login_page(**{**args, **overrides})  # type: ignore[arg-type]


def consent(**overrides: object) -> str:
    args: dict[str, object] = {
        "client_name": "Acme Budgeting",
        "user_name": "Alice",
        "scopes": [("accounts:read", "see your accounts and balances")],
        "accounts": [("acc_1", "EUR"), ("acc_2", "GBP")],
        "action": "/oauth/authorize",
        "hidden": HIDDEN,
    }
    return consent_page(**{**args, **overrides})  # type: ignore[arg-type]


# --- login -----------------------------------------------------------------------------------


def test_login_page_posts_credentials_and_the_request_back() -> None:
    # Given the sign-in page for a client
    page = login()
    form = Form(page)

    # Then it says who is asking
    assert "Sign in to payplat" in page
    assert "<strong>Acme Budgeting</strong> wants to connect to your payplat account" in page
    # And posts to the action with every hidden field, unchanged once parsed
    assert form.forms == [{"method": "post", "action": "/oauth/authorize"}]
    assert form.hidden() == HIDDEN
    # And asks for a username and a password the browser's password manager understands
    assert form.input("username")["autocomplete"] == "username"
    password = form.input("password")
    assert (password["type"], password["autocomplete"]) == ("password", "current-password")
    assert password.get("value") is None
    # And offers Sign in (first: Enter presses it) and Cancel, both named "action"
    assert [(b["name"], b["value"]) for b in form.buttons] == [
        ("action", "login"),
        ("action", "deny"),
    ]
    assert ">Sign in</button>" in page and ">Cancel</button>" in page
    # And Cancel works with the fields still empty
    assert "formnovalidate" in form.buttons[1]
    assert 'role="alert"' not in page


def test_login_page_shows_an_error_and_keeps_the_username() -> None:
    page = login(username="alice", error="Wrong username or password.")
    form = Form(page)

    assert '<p class="error" role="alert">Wrong username or password.</p>' in page
    assert form.input("username")["value"] == "alice"
    # The password is what is left to type
    assert "autofocus" in form.input("password")
    assert "autofocus" not in form.input("username")


def test_login_page_escapes_everything_it_interpolates() -> None:
    # Given hostile text in every value the page shows
    page = login(
        client_name=HOSTILE,
        action='/oauth/authorize?x="><script>',
        hidden={"state": HOSTILE, "redirect_uri": ATTRIBUTE_BREAKOUT},
        username=ATTRIBUTE_BREAKOUT,
        error=HOSTILE,
    )
    form = Form(page)

    # Then none of it is markup: no script tag, no injected attribute
    assert "<script" not in page
    assert ATTRIBUTE_BREAKOUT not in page
    assert page.count(ESCAPED) == 3  # client name, error, hidden state
    assert "script" not in form.tags
    assert all("onfocus" not in attrs for attrs in form.inputs)
    # And the values still arrive intact once the browser has parsed them
    assert form.hidden() == {"state": HOSTILE, "redirect_uri": ATTRIBUTE_BREAKOUT}
    assert form.input("username")["value"] == ATTRIBUTE_BREAKOUT
    assert form.forms[0]["action"] == '/oauth/authorize?x="><script>'


def test_hidden_field_names_are_escaped_too() -> None:
    page = login(hidden={'a"><script>': "1"})
    assert "<script" not in page
    assert Form(page).hidden() == {'a"><script>': "1"}


@pytest.mark.parametrize("name", ["action", "username", "password"])
def test_a_hidden_field_may_not_shadow_the_forms_own(name: str) -> None:
    with pytest.raises(ValueError, match="clash"):
        login(hidden={name: "x"})


# --- consent ---------------------------------------------------------------------------------


def test_consent_page_lists_what_is_asked_and_for_which_accounts() -> None:
    # Given a client asking for two scopes over alice's two accounts
    page = consent(
        scopes=[
            ("accounts:read", "see your accounts and balances"),
            ("payments:write", "make payments from your accounts"),
        ]
    )
    form = Form(page)

    # Then the page says it in plain words, with the scope codes in small print
    assert "<strong>Acme Budgeting</strong> wants to:" in page
    assert "<li>see your accounts and balances <code>accounts:read</code></li>" in page
    assert "<li>make payments from your accounts <code>payments:write</code></li>" in page
    assert "for the accounts of <strong>Alice</strong>:" in page
    assert "<li><code>acc_1</code> EUR</li>" in page
    assert "<li><code>acc_2</code> GBP</li>" in page
    # And the decision posts back with the request
    assert form.forms == [{"method": "post", "action": "/oauth/authorize"}]
    assert form.hidden() == HIDDEN
    assert [(b["name"], b["value"]) for b in form.buttons] == [
        ("action", "approve"),
        ("action", "deny"),
    ]
    assert ">Allow</button>" in page and ">Deny</button>" in page
    # And it says how to take the access back
    assert "revoking" in page and "tokens" in page


def test_consent_page_without_accounts_says_so() -> None:
    page = consent(accounts=[])
    assert "You have no accounts yet." in page
    assert "<code>acc_" not in page


def test_consent_page_escapes_everything_it_interpolates() -> None:
    # Given hostile text in the client name, scope, words, user name, accounts and hidden values
    page = consent(
        client_name=HOSTILE,
        user_name=HOSTILE,
        scopes=[(HOSTILE, HOSTILE)],
        accounts=[(HOSTILE, HOSTILE)],
        action=ATTRIBUTE_BREAKOUT,
        hidden={"state": HOSTILE, "nonce": ATTRIBUTE_BREAKOUT},
    )
    form = Form(page)

    # Then no markup got through, and every value is there escaped
    assert "<script" not in page
    assert ATTRIBUTE_BREAKOUT not in page
    assert "script" not in form.tags
    # client name 4 times (title, heading, "wants to", revoke note), scope words and code,
    # user name, account id and currency, hidden state
    assert page.count(ESCAPED) == 10
    assert form.hidden() == {"state": HOSTILE, "nonce": ATTRIBUTE_BREAKOUT}
    assert form.forms[0]["action"] == ATTRIBUTE_BREAKOUT


# --- error and throttled ---------------------------------------------------------------------


def test_error_page_shows_title_and_message_escaped() -> None:
    page = error_page(title="Unknown app", message="This link is not valid.")
    assert "<h1>Unknown app</h1>" in page
    assert "<p>This link is not valid.</p>" in page
    assert "<form" not in page

    hostile = error_page(title=HOSTILE, message=HOSTILE)
    assert "<script" not in hostile
    assert hostile.count(ESCAPED) == 3  # <title>, heading, message


def test_the_throttled_message_says_when_to_try_again() -> None:
    assert throttled_message(retry_after_s=30) == (
        "Too many sign-in attempts. Try again in 30 seconds."
    )
    assert throttled_message(retry_after_s=1).endswith("Try again in 1 second.")
    # A wait that has already elapsed still reads sensibly
    assert throttled_message(retry_after_s=0).endswith("Try again in 1 second.")


# --- every page ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "page",
    [
        login(),
        consent(),
        error_page(title="Expired", message="Start again from the app."),
    ],
)
def test_pages_are_self_contained(page: str) -> None:
    # Nothing loaded from elsewhere and no script: the CSP would refuse it anyway
    assert page.startswith("<!doctype html>")
    assert '<meta charset="utf-8">' in page
    assert 'name="viewport"' in page
    assert "max-width:28rem" in page
    assert "<script" not in page
    assert not re.search(r"\b(src|href)=", page)
    assert "url(" not in page and "@import" not in page
    assert page.count("<style>") == 1


def test_page_headers_keep_pages_out_of_caches_and_frames() -> None:
    assert PAGE_HEADERS["Content-Type"] == "text/html; charset=utf-8"
    assert PAGE_HEADERS["Cache-Control"] == "no-store"
    assert PAGE_HEADERS["Pragma"] == "no-cache"
    assert PAGE_HEADERS["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    )
    # form-action would also block the redirect to the partner that follows the consent POST
    assert "form-action" not in PAGE_HEADERS["Content-Security-Policy"]
    assert PAGE_HEADERS["X-Frame-Options"] == "DENY"
    assert PAGE_HEADERS["X-Content-Type-Options"] == "nosniff"
    assert PAGE_HEADERS["Referrer-Policy"] == "no-referrer"
