"""The authorization-code flow with PKCE over real HTTP: an account holder logs in and
consents in a browser, a partner app (authlib) redeems the code, calls the API as that
account holder, refreshes and rotates — and every way of getting it wrong is refused."""

from __future__ import annotations

import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError as AuthlibOAuthError

from tests.conftest import Platform
from tests.e2e.oauth_support import (
    App,
    Browser,
    Tokens,
    api_get,
    audit_lines,
    consent,
    introspect,
    new_holder,
    query_of,
    register,
    the_form,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def app(platform: Platform) -> App:
    return App.seeded(platform)


def test_login_consent_code_token_api_refresh_and_rotation(platform: Platform, app: App) -> None:
    # Given the seeded third-party app sends alice (the seeded consumer) to the authorize page
    browser = Browser(platform)
    login = browser.open(app.authorization_url())
    assert login.status_code == 200
    assert "Budget Buddy" in login.text
    assert login.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in login.headers["Content-Security-Policy"]
    assert login.headers["Cache-Control"] == "no-store"
    [cookie] = browser.session.cookies
    assert cookie.name.startswith("payplat_csrf_") and cookie.has_nonstandard_attr("HttpOnly")

    # When she logs in, she sees the app, the scopes in plain words and her accounts
    consent_page = browser.log_in("alice")
    assert consent_page.status_code == 200
    for words in ("See your accounts", "See your payments", "Create, capture and cancel"):
        assert words in consent_page.text
    assert "acct_alice_eur" in consent_page.text and "acct_bob_eur" not in consent_page.text

    # And approves: the app gets code, state and iss (RFC 9207) at its redirect URI
    approved = browser.press("approve")
    assert approved.status_code == 302
    location = approved.headers["Location"]
    assert location.startswith(app.redirect_uri + "?")
    params = query_of(location)
    assert params["state"] == app.state
    assert params["iss"] == platform.base_url
    assert len(params["code"]) >= 43  # 256 bits, base64url

    # Then authlib redeems it for an access token and a refresh token
    token = app.exchange(location)
    assert token["token_type"] == "Bearer"
    assert set(token["scope"].split()) == set(app.scope.split())
    assert token["refresh_token"]

    # And the API answers as alice (her accounts, not the app owner's)
    accounts = api_get(platform, "/v1/accounts", token["access_token"])
    assert accounts.status_code == 200
    assert {a["id"] for a in accounts.json()["data"]} == {"acct_alice_eur", "acct_alice_usd"}

    # When the app refreshes, the refresh token rotates and the new access token works
    refreshed = app.session(token=token).refresh_token(
        f"{platform.base_url}/oauth/token", refresh_token=token["refresh_token"]
    )
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert api_get(platform, "/v1/accounts", refreshed["access_token"]).status_code == 200
    # And the rotated one is spent
    spent = app.token_request(grant_type="refresh_token", refresh_token=token["refresh_token"])
    assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"

    # And the whole story is in the audit trail, without a token or password in it
    story = audit_lines(
        platform,
        lambda r: (
            r["actor"].get("sub") == "usr_alice"
            and r["type"] in {"login.succeeded", "consent.granted", "token.issued"}
        ),
    )
    assert {r["type"] for r in story} >= {"login.succeeded", "consent.granted", "token.issued"}
    text = "\n".join(str(r) for r in story)
    for secret in (
        token["access_token"],
        token["refresh_token"],
        params["code"],
        platform.users["alice"]["password"],
    ):
        assert secret not in text


def test_a_narrower_refresh_keeps_the_family_scope(platform: Platform, app: App) -> None:
    token = app.exchange(consent(platform, app))
    narrowed = app.token_request(
        grant_type="refresh_token", refresh_token=token["refresh_token"], scope="accounts:read"
    ).json()
    assert narrowed["scope"] == "accounts:read"
    assert api_get(platform, "/v1/payments", narrowed["access_token"]).status_code == 403
    widened = app.token_request(
        grant_type="refresh_token", refresh_token=narrowed["refresh_token"]
    ).json()
    assert set(widened["scope"].split()) == set(app.scope.split())


def test_deny_redirects_with_access_denied(platform: Platform, app: App) -> None:
    browser = Browser(platform)
    browser.open(app.authorization_url())
    browser.log_in(new_holder(platform))
    denied = browser.press("deny")
    assert denied.status_code == 302
    params = query_of(denied.headers["Location"])
    assert params["error"] == "access_denied"
    assert params["state"] == app.state and params["iss"] == platform.base_url
    assert audit_lines(platform, lambda r: r["type"] == "consent.denied")


# -- the code -----------------------------------------------------------------------------


def test_code_reuse_is_refused_and_revokes_what_the_first_use_got(
    platform: Platform, app: App
) -> None:
    # Given a code redeemed once
    location = consent(platform, app)
    first = app.exchange(location)
    assert api_get(platform, "/v1/accounts", first["access_token"]).status_code == 200

    # When it comes back a second time
    code = query_of(location)["code"]
    again = app.token_request(
        grant_type="authorization_code",
        code=code,
        redirect_uri=app.redirect_uri,
        code_verifier=app.verifier,
    )

    # Then it is refused, and the tokens from the first use are dead too
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert api_get(platform, "/v1/accounts", first["access_token"]).status_code == 401
    reuse = app.token_request(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reuse.json()["error"] == "invalid_grant"
    info = introspect(platform, first["access_token"], app.client_id, app.client_secret)
    assert info == {"active": False}
    assert audit_lines(platform, lambda r: r["type"] == "token.code_reuse_detected")


def test_an_expired_code_is_refused(platform: Platform, app: App) -> None:
    location = consent(platform, app)
    Tokens(platform).expire_code(query_of(location)["code"])  # as if 60 s had passed
    with pytest.raises(AuthlibOAuthError) as refused:
        app.exchange(location)
    assert refused.value.error == "invalid_grant"


def test_a_code_is_bound_to_its_client(platform: Platform, app: App) -> None:
    other = register(
        platform,
        grant_types=["authorization_code"],
        redirect_uris=[app.redirect_uri],
        scope="accounts:read",
    )
    location = consent(platform, app)
    stolen = requests.post(
        f"{platform.base_url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(location)["code"],
            "redirect_uri": app.redirect_uri,
            "code_verifier": app.verifier,
        },
        auth=(other["client_id"], other["client_secret"]),
        timeout=10,
    )
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    # And the rightful client can still redeem it
    assert app.exchange(location)["access_token"]


# -- PKCE -----------------------------------------------------------------------------------


def _authorize_error(platform: Platform, app: App, url: str) -> dict[str, str]:
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    assert response.headers["Location"].startswith(app.redirect_uri)
    return query_of(response.headers["Location"])


def test_pkce_missing_is_refused_at_the_redirect_uri(platform: Platform, app: App) -> None:
    url = (
        f"{platform.base_url}/oauth/authorize?response_type=code&client_id={app.client_id}"
        f"&redirect_uri={app.redirect_uri}&state=xyz&scope=accounts:read"
    )
    params = _authorize_error(platform, app, url)
    assert params["error"] == "invalid_request" and "PKCE" in params["error_description"]
    assert params["state"] == "xyz"


def test_pkce_plain_is_refused(platform: Platform, app: App) -> None:
    url = app.authorization_url().replace(
        "code_challenge_method=S256", "code_challenge_method=plain"
    )
    params = _authorize_error(platform, app, url)
    assert params["error"] == "invalid_request" and "S256" in params["error_description"]


def test_a_wrong_code_verifier_is_refused(platform: Platform, app: App) -> None:
    location = consent(platform, app)
    app.verifier = "x" * 64  # not the verifier behind the challenge
    with pytest.raises(AuthlibOAuthError) as refused:
        app.exchange(location)
    assert refused.value.error == "invalid_grant"


# -- redirect URIs --------------------------------------------------------------------------


def test_an_unregistered_redirect_uri_is_shown_on_the_page_never_redirected(
    platform: Platform, app: App
) -> None:
    url = app.authorization_url().replace("8765%2Fcallback", "8765%2Fevil")
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "redirect URI" in response.text


def test_an_unknown_client_is_shown_on_the_page(platform: Platform) -> None:
    response = requests.get(
        f"{platform.base_url}/oauth/authorize?client_id=ppc_nobody&response_type=code"
        "&redirect_uri=https://evil.example/cb&state=s",
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 400 and "Location" not in response.headers


def test_a_redirect_uri_mismatch_at_the_token_endpoint_is_refused(
    platform: Platform, app: App
) -> None:
    code = query_of(consent(platform, app))["code"]
    response = app.token_request(
        grant_type="authorization_code",
        code=code,
        redirect_uri="http://127.0.0.1:8765/other",
        code_verifier=app.verifier,
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


# -- refresh tokens ---------------------------------------------------------------------------


def test_refresh_reuse_revokes_the_whole_family(platform: Platform, app: App) -> None:
    # Given a family two refreshes long
    first = app.exchange(consent(platform, app))
    second = app.token_request(
        grant_type="refresh_token", refresh_token=first["refresh_token"]
    ).json()
    third = app.token_request(
        grant_type="refresh_token", refresh_token=second["refresh_token"]
    ).json()

    # When the first (rotated) refresh token is replayed
    replay = app.token_request(grant_type="refresh_token", refresh_token=first["refresh_token"])

    # Then it is refused and every token of the family is dead, even the newest
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    newest = app.token_request(grant_type="refresh_token", refresh_token=third["refresh_token"])
    assert newest.json()["error"] == "invalid_grant"
    for token in (first, second, third):
        assert api_get(platform, "/v1/accounts", token["access_token"]).status_code == 401
    reuse = audit_lines(platform, lambda r: r["type"] == "token.refresh_reuse_detected")
    assert reuse and len(reuse[-1]["details"]["revoked_jtis"]) == 3


# -- the login page -------------------------------------------------------------------------


def test_a_wrong_password_shows_the_form_again_and_is_audited(platform: Platform, app: App) -> None:
    browser = Browser(platform)
    browser.open(app.authorization_url())
    page = browser.log_in(new_holder(platform), password="not-the-password")
    assert page.status_code == 200
    assert "username or password is wrong" in page.text
    assert 'name="password"' in page.text
    failed = audit_lines(platform, lambda r: r["type"] == "login.failed")
    assert failed and "not-the-password" not in str(failed)


def test_login_brute_force_is_throttled(platform: Platform, app: App) -> None:
    # Given an attacker guessing an account holder's password, fast
    victim = new_holder(platform)
    browser = Browser(platform)
    browser.open(app.authorization_url())
    statuses = []
    for attempt in range(8):
        statuses.append(browser.log_in(victim, password=f"guess-{attempt}").status_code)
        if statuses[-1] == 429:
            break
    # Then after the burst of five the page refuses, and says when to try again
    assert statuses[:5] == [200] * 5
    assert statuses[-1] == 429
    assert int(browser.page.headers["Retry-After"]) > 0  # type: ignore[union-attr]
    assert "Too many sign-in attempts" in browser.page.text  # type: ignore[union-attr]
    # And the right password does not get through either while the limit holds
    assert browser.log_in(victim).status_code == 429


def test_a_form_from_another_browser_is_refused(platform: Platform, app: App) -> None:
    # Given the login page served to one browser
    victim = Browser(platform)
    victim.open(app.authorization_url())
    # When another browser (without the CSRF cookie) submits its form
    attacker = Browser(platform, page=victim.page)
    refused = attacker.log_in(new_holder(platform))
    # Then it is refused
    assert refused.status_code == 403


def test_the_same_consent_cannot_be_submitted_twice(platform: Platform, app: App) -> None:
    browser = Browser(platform)
    browser.open(app.authorization_url())
    consent_page = browser.log_in(new_holder(platform))
    assert browser.press("approve").status_code == 302
    browser.page = consent_page
    assert browser.press("approve").status_code == 400


def test_scope_beyond_the_client_is_refused_at_the_redirect_uri(
    platform: Platform, app: App
) -> None:
    app.scope = "accounts:read refunds:write"
    params = _authorize_error(platform, app, app.authorization_url())
    assert params["error"] == "invalid_scope"


def test_an_unknown_or_expired_request_is_an_error_page(platform: Platform, app: App) -> None:
    browser = Browser(platform)
    page = browser.open(app.authorization_url())
    action, hidden = the_form(page.text)
    response = browser.session.post(
        platform.base_url + action,
        data={**hidden, "request_id": "not-a-request", "action": "login"},
        allow_redirects=False,
    )
    assert response.status_code == 400 and "expired" in response.text
