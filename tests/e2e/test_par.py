"""Pushed authorization requests (RFC 9126) over real HTTP: the partner app (authlib) pushes
its authorization request to /oauth/par with its client authentication, sends the browser to
the authorize page with only client_id and the request_uri, the account holder logs in and
consents, and authlib redeems the code — and every way of misusing a request_uri is refused
on the page, never redirected. (Expiry is judged on an injected clock in
tests/integration/test_par.py: no test waits 60 s.)"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.conftest import Platform
from tests.e2e.oauth_support import (
    App,
    Browser,
    Holder,
    api_get,
    audit_lines,
    new_holder,
    query_of,
    register,
)

pytestmark = pytest.mark.e2e
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"


@pytest.fixture
def app(platform: Platform) -> App:
    return App.seeded(platform)


def push(platform: Platform, app: App, **extra: str) -> requests.Response:
    """What the app does instead of putting its request in the browser's URL: authlib builds
    the authorization request (state, PKCE S256 from the app's verifier) and posts it, with
    HTTP Basic client authentication, to the PAR endpoint."""
    session = app.session()
    url, app.state = session.create_authorization_url(
        f"{platform.base_url}/oauth/authorize", code_verifier=app.verifier
    )
    parameters = {**dict(parse_qsl(urlsplit(url).query)), **extra}
    response: requests.Response = session.post(
        f"{platform.base_url}/oauth/par",
        data=parameters,
        auth=session.client_auth("client_secret_basic"),
        timeout=10,
    )
    return response


def pushed_uri(platform: Platform, app: App, **extra: str) -> str:
    response = push(platform, app, **extra)
    assert response.status_code == 201, response.text
    request_uri: str = response.json()["request_uri"]
    return request_uri


def authorize_url(platform: Platform, client_id: str, request_uri: str, **extra: str) -> str:
    query = urlencode({"client_id": client_id, "request_uri": request_uri, **extra})
    return f"{platform.base_url}/oauth/authorize?{query}"


def refused_on_the_page(response: requests.Response) -> None:
    assert response.status_code == 400, response.text
    assert "Location" not in response.headers
    assert "<form" not in response.text  # an error page, not a sign-in form


def schema_validator(platform: Platform, name: str) -> Draft202012Validator:
    document = requests.get(f"{platform.base_url}/openapi.json", timeout=10).json()
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("urn:payplat:openapi", resource)
    return Draft202012Validator(
        {"$ref": f"urn:payplat:openapi#/components/schemas/{name}"}, registry=registry
    )


def test_push_then_login_consent_and_code_exchange(platform: Platform, app: App) -> None:
    # Given the app pushes its authorization request
    response = push(platform, app)

    # Then it gets a one-time request_uri for 60 s, never cached, as the document says
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["expires_in"] == 60
    assert body["request_uri"].startswith(REQUEST_URI_PREFIX)
    assert len(body["request_uri"]) >= len(REQUEST_URI_PREFIX) + 43  # 256 bits, base64url
    schema_validator(platform, "PushedAuthorizationResponse").validate(body)

    # When the browser opens the authorize page with only client_id and the request_uri
    browser = Browser(platform)
    login = browser.open(authorize_url(platform, app.client_id, body["request_uri"]))
    assert login.status_code == 200, login.text
    assert "Budget Buddy" in login.text

    # And alice (a seeded holder) logs in and approves
    consent_page = browser.log_in(Holder.seeded(platform, "alice"))
    assert consent_page.status_code == 200, consent_page.text
    assert "acct_alice_eur" in consent_page.text
    approved = browser.press("approve")
    assert approved.status_code == 302, approved.text
    location = approved.headers["Location"]
    assert location.startswith(app.redirect_uri + "?")
    params = query_of(location)
    assert params["state"] == app.state and params["iss"] == platform.base_url

    # Then authlib redeems the code (with the verifier of the pushed challenge)
    token = app.exchange(location)
    assert token["token_type"] == "Bearer" and token["refresh_token"]
    assert set(token["scope"].split()) == set(app.scope.split())
    accounts = api_get(platform, "/v1/accounts", token["access_token"])
    assert {a["id"] for a in accounts.json()["data"]} == {"acct_alice_eur", "acct_alice_usd"}

    # And the push is audited, never with its request_uri or the app's secret
    pushes = audit_lines(
        platform,
        lambda r: r["type"] == "authorization.pushed" and r["actor"]["client_id"] == app.client_id,
    )
    assert pushes
    log = (platform.state_dir / "functions.log").read_text()
    assert body["request_uri"] not in log
    assert body["request_uri"][len(REQUEST_URI_PREFIX) :] not in log
    assert app.client_secret not in log


def test_the_pushed_parameters_win_over_the_query(platform: Platform, app: App) -> None:
    request_uri = pushed_uri(platform, app, scope="accounts:read")
    browser = Browser(platform)
    # Parameters next to request_uri are ignored (RFC 9126 §4): not this scope, nor this
    # redirect_uri
    page = browser.open(
        authorize_url(
            platform,
            app.client_id,
            request_uri,
            scope="payments:write",
            redirect_uri="https://evil.example/cb",
        )
    )
    assert page.status_code == 200, page.text
    consent_page = browser.log_in(new_holder(platform))
    assert "See your accounts" in consent_page.text
    assert "Create, capture and cancel" not in consent_page.text
    location = browser.press("approve").headers["Location"]
    assert location.startswith(app.redirect_uri + "?")
    assert app.exchange(location)["scope"] == "accounts:read"


def test_a_request_uri_works_once(platform: Platform, app: App) -> None:
    request_uri = pushed_uri(platform, app)
    url = authorize_url(platform, app.client_id, request_uri)
    assert Browser(platform).open(url).status_code == 200

    again = Browser(platform).open(url)
    refused_on_the_page(again)
    assert "already used" in again.text


def test_another_clients_request_uri_is_refused_on_the_page(platform: Platform, app: App) -> None:
    other = register(
        platform,
        grant_types=["authorization_code"],
        redirect_uris=[app.redirect_uri],
        scope="accounts:read",
    )
    request_uri = pushed_uri(platform, app)

    refused_on_the_page(
        Browser(platform).open(authorize_url(platform, other["client_id"], request_uri))
    )
    # And the refusal did not spend it: the app's own browser still gets the sign-in page
    page = Browser(platform).open(authorize_url(platform, app.client_id, request_uri))
    assert page.status_code == 200, page.text


def test_an_unknown_request_uri_is_refused_on_the_page(platform: Platform, app: App) -> None:
    made_up = REQUEST_URI_PREFIX + "A" * 43
    refused_on_the_page(Browser(platform).open(authorize_url(platform, app.client_id, made_up)))


@pytest.mark.parametrize(
    "auth",
    [("wrong", "secret"), None],
    ids=["bad-credentials", "no-credentials"],
)
def test_a_push_with_bad_client_authentication_is_a_401(
    platform: Platform, app: App, auth: tuple[str, str] | None
) -> None:
    response = requests.post(
        f"{platform.base_url}/oauth/par",
        data={
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": app.redirect_uri,
            "state": "s",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        },
        auth=auth,
        timeout=10,
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"] == 'Basic realm="payplat"'
    assert response.headers["Cache-Control"] == "no-store"


def test_a_wrong_secret_is_a_401(platform: Platform, app: App) -> None:
    app.client_secret = "not-the-secret"
    response = push(platform, app)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_a_push_carrying_a_request_uri_is_refused(platform: Platform, app: App) -> None:
    first = pushed_uri(platform, app)
    response = push(platform, app, request_uri=first)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert "request_uri" in response.json()["error_description"]
    assert response.headers["Cache-Control"] == "no-store"


def test_a_push_is_checked_as_the_page_checks_a_request(platform: Platform, app: App) -> None:
    wider = push(platform, app, scope="accounts:read clients:manage")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    plain = push(platform, app, code_challenge_method="plain")
    assert plain.status_code == 400 and plain.json()["error"] == "invalid_request"


def test_a_client_that_must_push_is_refused_on_the_page_with_query_parameters(
    platform: Platform,
) -> None:
    # Given a client registered with require_pushed_authorization_requests (RFC 9126 §6)
    registered = register(
        platform,
        grant_types=["authorization_code"],
        redirect_uris=[App.seeded(platform).redirect_uri],
        scope="accounts:read",
        require_pushed_authorization_requests=True,
    )
    assert registered["require_pushed_authorization_requests"] is True
    strict = App(
        platform,
        registered["client_id"],
        registered["client_secret"],
        registered["redirect_uris"][0],
        "accounts:read",
    )

    # When its authorization request comes in the query: refused on the page
    refused = Browser(platform).open(strict.authorization_url())
    refused_on_the_page(refused)
    assert "push" in refused.text

    # And pushed, the same request goes through to a token
    browser = Browser(platform)
    page = browser.open(authorize_url(platform, strict.client_id, pushed_uri(platform, strict)))
    assert page.status_code == 200, page.text
    browser.log_in(new_holder(platform))
    location = browser.press("approve").headers["Location"]
    assert strict.exchange(location)["access_token"]


def test_the_flag_is_read_back_and_may_be_turned_on_but_not_off(platform: Platform) -> None:
    registered = register(
        platform,
        grant_types=["authorization_code"],
        redirect_uris=[App.seeded(platform).redirect_uri],
        scope="accounts:read",
    )
    uri = registered["registration_client_uri"]
    headers = {"Authorization": f"Bearer {registered['registration_access_token']}"}
    assert registered["require_pushed_authorization_requests"] is False
    body = {
        key: registered[key]
        for key in ("client_id", "client_name", "grant_types", "redirect_uris", "scope")
    }

    on = requests.put(
        uri,
        json={**body, "require_pushed_authorization_requests": True},
        headers=headers,
        timeout=10,
    )
    assert on.status_code == 200, on.text
    assert on.json()["require_pushed_authorization_requests"] is True
    read = requests.get(uri, headers=headers, timeout=10).json()
    assert read["require_pushed_authorization_requests"] is True

    off = requests.put(
        uri,
        json={**body, "require_pushed_authorization_requests": False},
        headers=headers,
        timeout=10,
    )
    assert off.status_code == 400, off.text
    assert off.json()["error"] == "invalid_client_metadata"
    read = requests.get(uri, headers=headers, timeout=10).json()
    assert read["require_pushed_authorization_requests"] is True


def test_the_metadata_names_the_par_endpoint(platform: Platform) -> None:
    document = requests.get(
        f"{platform.base_url}/.well-known/oauth-authorization-server", timeout=10
    ).json()
    assert document["pushed_authorization_request_endpoint"] == f"{platform.base_url}/oauth/par"
    # The platform under test runs without PAYPLAT_REQUIRE_PAR
    assert document["require_pushed_authorization_requests"] is False
