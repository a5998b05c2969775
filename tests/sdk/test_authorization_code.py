"""The SDK's authorization-code helper end to end: the URL it builds (PKCE S256, state) is
opened in an account holder's browser, she logs in and approves, the SDK checks the redirect,
redeems the code, calls the API as her, and refreshes with rotation — by hand, before the
access token expires, and after a 401."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import pytest
from payplat_sdk import AuthorizationCodeFlow, OAuthError, Payplat, Tokens

from tests.conftest import Platform
from tests.e2e.oauth_support import CALLBACK, Browser, Holder, new_holder, query_of, register

pytestmark = pytest.mark.e2e

SCOPE = "accounts:read payments:read"


@pytest.fixture
def app(platform: Platform) -> dict[str, Any]:
    return register(
        platform,
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=[CALLBACK],
        scope=SCOPE,
    )


def flow_for(platform: Platform, app: dict[str, Any], saved: list[Tokens]) -> AuthorizationCodeFlow:
    return AuthorizationCodeFlow(
        platform.base_url, app["client_id"], app["client_secret"], on_tokens=saved.append
    )


def approve(platform: Platform, url: str, holder: Holder, button: str = "approve") -> str:
    """The holder logs in on the page at `url` and presses `button`: the redirect."""
    browser = Browser(platform)
    assert browser.open(url).status_code == 200
    assert browser.log_in(holder).status_code == 200
    pressed = browser.press(button)
    assert pressed.status_code == 302, pressed.text
    location: str = pressed.headers["Location"]
    return location


def test_log_in_approve_exchange_call_and_refresh(platform: Platform, app: dict[str, Any]) -> None:
    saved: list[Tokens] = []
    flow = flow_for(platform, app, saved)
    holder = new_holder(platform)

    # The URL: the discovered authorize endpoint, PKCE S256 and a fresh state
    url, state, verifier = flow.authorization_url(CALLBACK, ["accounts:read"])
    assert url.startswith(flow.metadata["authorization_endpoint"] + "?")
    sent = query_of(url)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    assert sent["code_challenge"] == challenge.rstrip(b"=").decode()
    assert sent["code_challenge_method"] == "S256"
    assert (sent["state"], sent["scope"], sent["client_id"]) == (
        state,
        "accounts:read",
        app["client_id"],
    )
    assert len(state) >= 32 and 43 <= len(verifier) <= 128

    # The holder approves; the SDK checks state and issuer and redeems the code
    code = flow.parse_redirect(approve(platform, url, holder), state)
    tokens = flow.exchange(code, CALLBACK, verifier)
    assert tokens.scope == "accounts:read"
    assert tokens.refresh_token
    assert tokens.expires_at is not None and tokens.expires_at > time.time() + 60
    assert saved == [tokens]
    assert tokens.access_token not in repr(tokens) and str(tokens.refresh_token) not in repr(tokens)

    # The client acts as her: her account, not the app owner's
    client = flow.client(tokens)
    assert [a.id for a in client.accounts.list()] == [holder.account_id]

    # A refresh by hand rotates the refresh token
    refreshed = flow.refresh(tokens)
    assert refreshed.refresh_token not in (None, tokens.refresh_token)
    assert saved[-1] == refreshed
    assert [a.id for a in flow.client(refreshed).accounts.list()] == [holder.account_id]

    # And the spent one is refused (which revokes the grant, as RFC 9700 asks)
    with pytest.raises(OAuthError) as spent:
        flow.refresh(tokens)
    assert spent.value.error == "invalid_grant"
    assert spent.value.status == 400


def test_the_client_refreshes_before_expiry_and_after_a_401(
    platform: Platform, app: dict[str, Any]
) -> None:
    saved: list[Tokens] = []
    flow = flow_for(platform, app, saved)
    holder = new_holder(platform)
    url, state, verifier = flow.authorization_url(CALLBACK, SCOPE)
    tokens = flow.exchange(
        flow.parse_redirect(approve(platform, url, holder), state), CALLBACK, verifier
    )

    # Given tokens persisted as a dict whose access token has (almost) expired
    persisted = {**tokens.to_dict(), "expires_at": time.time() + 5}
    rotated: list[Tokens] = []
    client = Payplat.from_tokens(
        platform.base_url,
        app["client_id"],
        app["client_secret"],
        tokens=persisted,
        on_tokens=rotated.append,
    )
    # When the client calls, it refreshes first, and hands over the new pair
    assert [a.id for a in client.accounts.list()] == [holder.account_id]
    [first] = rotated
    assert first.refresh_token != tokens.refresh_token
    assert client.tokens == first
    # And a second call uses the new access token as is
    client.accounts.list()
    assert len(rotated) == 1

    # Given an access token the API refuses (revoked, say) with a live refresh token
    refused = Tokens("not-a-token", expires_at=time.time() + 600, refresh_token=first.refresh_token)
    client = Payplat.from_tokens(
        platform.base_url,
        app["client_id"],
        app["client_secret"],
        tokens=refused,
        on_tokens=rotated.append,
    )
    # Then the 401 makes it refresh once and the call succeeds
    assert [a.id for a in client.accounts.list()] == [holder.account_id]
    assert len(rotated) == 2
    assert rotated[-1].refresh_token not in (None, first.refresh_token)


def test_the_redirect_is_checked(platform: Platform, app: dict[str, Any]) -> None:
    flow = flow_for(platform, app, [])
    holder = new_holder(platform)
    url, state, _ = flow.authorization_url(CALLBACK, SCOPE)
    location = approve(platform, url, holder, button="deny")

    # A state that is not the one sent is refused before anything else
    with pytest.raises(OAuthError) as forged:
        flow.parse_redirect(location, state + "x")
    assert forged.value.error == "invalid_state"
    # A redirect that names another issuer (RFC 9207 mix-up) is refused
    other = location.replace("iss=", "iss=https%3A%2F%2Fevil.example&was=")
    with pytest.raises(OAuthError) as mixed_up:
        flow.parse_redirect(other, state)
    assert mixed_up.value.error == "invalid_issuer"
    # And the holder's refusal is the server's error
    with pytest.raises(OAuthError) as denied:
        flow.parse_redirect(location, state)
    assert denied.value.error == "access_denied"
    assert denied.value.error_description
