"""POST /oauth/token, the metadata and the JWKS: the real oauth handler against moto (KMS
signing, DynamoDB clients), driven by real-shaped API Gateway events."""

from __future__ import annotations

import base64
import json
from types import ModuleType
from typing import Any
from urllib.parse import quote, urlencode

import jwt
import pytest

from payplat.gateway.keyset import parse_jwks
from tests.conftest import AuditCapture, invoke, load_event
from tests.integration.conftest import AUDIENCE, ISSUER


def token_event(
    form: dict[str, str] | str, *, basic: tuple[str, str] | None = None, **headers: str
) -> dict[str, Any]:
    event = load_event("apigw_rest_token")
    event["body"] = form if isinstance(form, str) else urlencode(form)
    if basic is not None:
        raw = f"{quote(basic[0], safe='')}:{quote(basic[1], safe='')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
    for name, value in headers.items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    return event


def get_event(path: str, name: str) -> dict[str, Any]:
    event = load_event("apigw_rest_token")
    event.update(resource=path, path=path, httpMethod="GET", body=None)
    event["requestContext"].update(resourcePath=path, httpMethod="GET")
    return event


@pytest.fixture(scope="module")
def merchant(seeded: dict[str, Any]) -> Any:
    return seeded["merchant"]


def test_client_credentials_with_basic_auth_issues_an_rfc9068_token(
    oauth_handler: ModuleType, merchant: Any, audit_lines: AuditCapture
) -> None:
    # Given the seeded merchant client
    # When it asks for a token with HTTP Basic authentication
    status, headers, body = invoke(
        oauth_handler,
        token_event(
            {"grant_type": "client_credentials"},
            basic=(merchant.client_id, merchant.client_secret),
        ),
    )
    # Then it gets a Bearer JWT that is never cached
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert set(body["scope"].split()) == set(merchant.scope.split())
    header = jwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    # And the token verifies against the published JWKS with every RFC 9068 claim
    _, _, key_set = invoke(oauth_handler, get_event("/.well-known/jwks.json", "jwks"))
    key = parse_jwks(json.dumps(key_set).encode())[header["kid"]]
    claims = jwt.decode(
        body["access_token"], key, algorithms=["ES256"], audience=AUDIENCE, issuer=ISSUER
    )
    assert claims["sub"] == claims["client_id"] == merchant.client_id
    assert claims["exp"] - claims["iat"] == 600
    assert {"jti", "scope", "nbf"} <= claims.keys()
    # And exactly one audit record says so, naming the jti and never the token or secret
    [issued] = audit_lines.of_type("token.issued")
    assert issued["details"]["jti"] == claims["jti"]
    assert issued["origin"]["request_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    text = "\n".join(audit_lines.lines)
    assert body["access_token"] not in text
    assert merchant.client_secret not in text


def test_client_secret_post_is_accepted(oauth_handler: ModuleType, merchant: Any) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": merchant.client_id,
        "client_secret": merchant.client_secret,
    }
    status, _, body = invoke(oauth_handler, token_event(form))
    assert status == 200
    assert body["access_token"]


def test_scope_may_be_narrowed_but_not_widened(oauth_handler: ModuleType, merchant: Any) -> None:
    credentials = (merchant.client_id, merchant.client_secret)
    status, _, body = invoke(
        oauth_handler,
        token_event(
            {"grant_type": "client_credentials", "scope": "payments:read"}, basic=credentials
        ),
    )
    assert (status, body["scope"]) == (200, "payments:read")

    status, headers, body = invoke(
        oauth_handler,
        token_event(
            {"grant_type": "client_credentials", "scope": "payments:read clients:manage"},
            basic=credentials,
        ),
    )
    assert (status, body["error"]) == (400, "invalid_scope")
    assert headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("secret", ["wrong-secret", "", "x" * 5000], ids=["wrong", "empty", "huge"])
def test_a_bad_secret_is_invalid_client_with_a_challenge(
    oauth_handler: ModuleType, merchant: Any, audit_lines: AuditCapture, secret: str
) -> None:
    status, headers, body = invoke(
        oauth_handler,
        token_event({"grant_type": "client_credentials"}, basic=(merchant.client_id, secret)),
    )
    assert status == 401
    assert body["error"] == "invalid_client"
    assert headers["WWW-Authenticate"].startswith("Basic")
    [refused] = audit_lines.of_type("token.refused")
    assert refused["reason"] == "invalid_client"
    assert secret[:20] not in json.dumps(refused) or not secret


def test_an_unknown_client_is_indistinguishable_from_a_bad_secret(
    oauth_handler: ModuleType, merchant: Any
) -> None:
    unknown = invoke(
        oauth_handler,
        token_event({"grant_type": "client_credentials"}, basic=("ppc_nobody", "secret")),
    )
    wrong = invoke(
        oauth_handler,
        token_event({"grant_type": "client_credentials"}, basic=(merchant.client_id, "secret")),
    )
    assert unknown[0] == wrong[0] == 401
    assert unknown[2] == wrong[2]


@pytest.mark.parametrize(
    ("form", "headers", "status", "error"),
    [
        (
            {"grant_type": "urn:ietf:params:oauth:grant-type:device_code"},
            {},
            400,
            "unsupported_grant_type",
        ),
        ({}, {}, 400, "invalid_request"),
        ("grant_type=client_credentials&grant_type=client_credentials", {}, 400, "invalid_request"),
        (
            {"grant_type": "client_credentials"},
            {"Content-Type": "application/json"},
            400,
            "invalid_request",
        ),
    ],
    ids=["unsupported-grant", "no-grant", "repeated-param", "json-body"],
)
def test_malformed_token_requests_get_rfc6749_errors(
    oauth_handler: ModuleType,
    merchant: Any,
    form: dict[str, str] | str,
    headers: dict[str, str],
    status: int,
    error: str,
) -> None:
    event = token_event(form, basic=(merchant.client_id, merchant.client_secret), **headers)
    got_status, got_headers, body = invoke(oauth_handler, event)
    assert (got_status, body["error"]) == (status, error)
    assert body["error_description"]
    assert got_headers["Cache-Control"] == "no-store"


def test_two_authentication_methods_at_once_are_refused(
    oauth_handler: ModuleType, merchant: Any
) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": merchant.client_id,
        "client_secret": merchant.client_secret,
    }
    status, _, body = invoke(
        oauth_handler, token_event(form, basic=(merchant.client_id, merchant.client_secret))
    )
    assert (status, body["error"]) == (400, "invalid_request")


def test_no_client_authentication_is_invalid_client(oauth_handler: ModuleType) -> None:
    status, headers, body = invoke(oauth_handler, token_event({"grant_type": "client_credentials"}))
    assert (status, body["error"]) == (401, "invalid_client")
    assert "WWW-Authenticate" in headers


def test_metadata_names_the_endpoints_and_what_they_support(oauth_handler: ModuleType) -> None:
    path = "/.well-known/oauth-authorization-server"
    status, _, body = invoke(oauth_handler, get_event(path, "oauth_metadata"))
    assert status == 200
    assert body["issuer"] == ISSUER
    assert body["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert body["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert set(body["grant_types_supported"]) == {
        "client_credentials",
        "authorization_code",
        "refresh_token",
        "password",
        "implicit",
    }
    assert set(body["legacy_grant_types_require_explicit_registration"]) == {"password", "implicit"}
    assert body["response_types_supported"] == ["code", "token"]
    assert body["code_challenge_methods_supported"] == ["S256"]  # never "plain"
    assert body["authorization_response_iss_parameter_supported"] is True
    for endpoint in ("token", "introspection", "revocation"):
        assert set(body[f"{endpoint}_endpoint_auth_methods_supported"]) == {
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        }
    # Every endpoint the document names is a route the API serves.
    from payplat.routes import ROUTES

    served = {ISSUER + route.path for route in ROUTES}
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "registration_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
    ):
        assert body[name] in served, name


def test_jwks_publishes_the_kms_public_key_only(oauth_handler: ModuleType) -> None:
    status, headers, body = invoke(oauth_handler, get_event("/.well-known/jwks.json", "jwks"))
    assert status == 200
    assert "max-age" in headers["Cache-Control"]
    [key] = body["keys"]
    assert {key["kty"], key["crv"], key["alg"], key["use"]} == {"EC", "P-256", "ES256", "sig"}
    assert "d" not in key  # never the private part
