"""Pushed authorization requests (RFC 9126) at the unit level: the server-wide setting, the
client metadata `require_pushed_authorization_requests` (RFC 9126 §6) through registration
and its update, the metadata document, and the route and its OpenAPI description."""

from __future__ import annotations

from typing import Any

import pytest

from payplat.api import openapi
from payplat.config import Env, OAuthSettings, SettingsError, TokenSettings, from_mapping
from payplat.oauth.token_endpoint import metadata
from payplat.routes import ROUTES_BY_NAME, Function
from tests.unit.test_registration_metadata import (
    do_register,
    refused,
    registered_with,
)
from tests.unit.test_registration_metadata import (
    metadata as registration_body,
)

REQUIRED_ENV = {
    Env.ISSUER: "https://api.payplat.test",
    Env.AUDIENCE: "https://api.payplat.test/v1",
    Env.SIGNING_KEY_ID: "key",
    Env.CLIENTS_TABLE: "clients",
    Env.USERS_TABLE: "users",
    Env.TOKENS_TABLE: "tokens",
    Env.RATE_LIMITS_TABLE: "rate-limits",
    Env.LEDGER_TABLE: "ledger",
}
FLAG = "require_pushed_authorization_requests"


# -- the server-wide setting ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, False), ("", False), ("false", False), ("0", False), ("true", True), ("TRUE", True)],
)
def test_par_is_required_server_wide_only_when_set(raw: str | None, expected: bool) -> None:
    env = dict(REQUIRED_ENV)
    if raw is not None:
        env[Env.REQUIRE_PAR] = raw
    assert from_mapping(OAuthSettings, env).require_par is expected


def test_a_setting_that_is_not_a_boolean_fails_the_cold_start() -> None:
    with pytest.raises(SettingsError, match=Env.REQUIRE_PAR):
        from_mapping(OAuthSettings, {**REQUIRED_ENV, Env.REQUIRE_PAR: "sometimes"})


@pytest.mark.parametrize("required", [False, True])
def test_the_metadata_names_the_endpoint_and_says_whether_par_is_required(
    required: bool,
) -> None:
    document = metadata(
        TokenSettings(issuer="https://api.payplat.test/live/", audience="x"),
        require_par=required,
    )
    assert document["pushed_authorization_request_endpoint"] == (
        "https://api.payplat.test/live/oauth/par"
    )
    assert document["require_pushed_authorization_requests"] is required


# -- the client metadata (RFC 7591, RFC 7592) -----------------------------------------------


def test_a_registration_does_not_require_par_unless_asked() -> None:
    assert do_register(registration_body())[FLAG] is False


def test_a_registration_may_require_par() -> None:
    registered = registered_with(**{FLAG: True})
    assert registered.answer[FLAG] is True
    assert registered.client.require_pushed_authorization_requests is True


@pytest.mark.parametrize("value", ["true", 1, None, [True]], ids=["str", "int", "null", "list"])
def test_the_flag_must_be_a_json_boolean(value: Any) -> None:
    body = {**registration_body(), FLAG: value}
    error = refused(body)
    assert error.error == "invalid_client_metadata"
    assert FLAG in error.description


def test_an_update_may_turn_par_on() -> None:
    registered = registered_with()
    answer = registered.update(**{FLAG: True})
    assert answer[FLAG] is True
    stored = registered.store.get(registered.client.client_id)
    assert stored is not None and stored.require_pushed_authorization_requests is True


def test_an_update_may_not_turn_par_off() -> None:
    registered = registered_with(**{FLAG: True})
    error = registered.refused(**{FLAG: False})
    assert error.error == "invalid_client_metadata"
    assert "never off" in error.description


def test_an_update_that_leaves_the_flag_out_keeps_it() -> None:
    registered = registered_with(**{FLAG: True})
    answer = registered.update(scope="payments:read")
    assert answer[FLAG] is True


# -- the route ------------------------------------------------------------------------------


def test_the_route_is_public_on_the_oauth_function() -> None:
    route = ROUTES_BY_NAME["par"]
    assert (route.method, route.path, route.function) == ("POST", "/oauth/par", Function.OAUTH)
    assert not route.protected  # the client authenticates in the function, as at /oauth/token


def test_the_openapi_document_describes_the_push_and_its_answer() -> None:
    document = openapi.document("https://api.payplat.test/live")
    operation = document["paths"]["/oauth/par"]["post"]
    assert operation["operationId"] == "par"
    form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]
    assert form["schema"]["$ref"].endswith("/PushedAuthorizationRequest")
    created = operation["responses"]["201"]["content"]["application/json"]
    assert created["schema"]["$ref"].endswith("/PushedAuthorizationResponse")
    assert {"400", "401", "429"} <= operation["responses"].keys()
    schemas = document["components"]["schemas"]
    assert "request_uri" not in schemas["PushedAuthorizationRequest"]["properties"]
    assert schemas["PushedAuthorizationResponse"]["required"] == ["request_uri", "expires_in"]
    authorize = document["paths"]["/oauth/authorize"]["get"]
    assert {"$ref": "#/components/parameters/request_uri"} in authorize["parameters"]
