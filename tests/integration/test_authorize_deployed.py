"""The authorize page as deployed: the real oauth handler against moto, with the issuer's
stage path (`/live`) and no local mode — the forms post under the stage, the CSRF cookie is
Secure and scoped to that path, and the whole login-and-consent round trip holds."""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.conftest import LambdaContext, load_event
from tests.integration.conftest import ISSUER

STAGE_PATH = urlsplit(ISSUER).path  # "/live"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 Appendix B


def _event(method: str, query: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    event = load_event("apigw_rest_token")
    event.update(
        resource="/oauth/authorize",
        path="/oauth/authorize",
        httpMethod=method,
        body=extra.pop("body", None),
        queryStringParameters=query,
        multiValueQueryStringParameters={k: [v] for k, v in (query or {}).items()} or None,
    )
    event["requestContext"].update(resourcePath="/oauth/authorize", httpMethod=method)
    for name, value in extra.items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    return event


def _call(handler: ModuleType, event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = handler.lambda_handler(event, LambdaContext())
    return response


def _hidden(html: str) -> dict[str, str]:
    return dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', html))


def test_the_authorize_round_trip_under_the_stage_path(
    oauth_handler: ModuleType, seeded: dict[str, Any], seeded_users: dict[str, dict[str, str]]
) -> None:
    app = seeded["app"]
    # Given the app's authorization request
    query = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": app.redirect_uri,
        "scope": "accounts:read",
        "state": "s-1",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    page = _call(oauth_handler, _event("GET", query))

    # Then the login form posts under the stage, and the cookie is Secure and scoped to it
    assert page["statusCode"] == 200
    assert f'action="{STAGE_PATH}/oauth/authorize"' in page["body"]
    [cookie] = page["multiValueHeaders"]["Set-Cookie"]
    assert f"Path={STAGE_PATH}/oauth/authorize" in cookie
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    jar = cookie.split(";", 1)[0]

    # When alice logs in and approves through the same forms
    form = urlencode(
        {
            **_hidden(page["body"]),
            "action": "login",
            "username": "alice",
            "password": seeded_users["alice"]["password"],
        }
    )
    headers = {"content-type": "application/x-www-form-urlencoded", "cookie": jar}
    consent = _call(oauth_handler, _event("POST", body=form, **headers))
    assert consent["statusCode"] == 200, consent["body"]
    form = urlencode({**_hidden(consent["body"]), "action": "approve"})
    redirect = _call(oauth_handler, _event("POST", body=form, **headers))

    # Then the app gets its code, state and our issuer, and the cookie is cleared
    assert redirect["statusCode"] == 302
    location = (redirect.get("headers") or {}).get("Location") or redirect["multiValueHeaders"][
        "Location"
    ][0]
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert location.startswith(app.redirect_uri)
    assert params["state"] == "s-1" and params["iss"] == ISSUER and params["code"]
    [cleared] = redirect["multiValueHeaders"]["Set-Cookie"]
    assert "Max-Age=0" in cleared
