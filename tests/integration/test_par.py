"""Pushed authorization requests (RFC 9126): POST /oauth/par through the real oauth handler
against moto, and the authorize page redeeming what was pushed — once, for the client that
pushed it, within its 60 s (judged on an injected clock, not by waiting)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import threading
from types import ModuleType
from typing import Any
from urllib.parse import quote, urlencode

import boto3
import pytest

from payplat.audit import events as audit
from payplat.clients.dal.clients_table import DynamoClientStore
from payplat.clients.registry import GRANT_AUTHORIZATION_CODE, register_client
from payplat.config import Env
from payplat.errors import InvalidClient, OAuthError
from payplat.oauth import authorize, par
from payplat.oauth.authserver import AuthServer
from payplat.oauth.client_auth import Presented
from payplat.oauth.grants import PUSHED_REQUEST_TTL_S, REQUEST_URI_PREFIX, PushedRequest
from payplat.oauth.token_endpoint import metadata
from tests.conftest import AuditCapture, invoke, load_event

CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 Appendix B
ORIGIN = audit.Origin(source_ip="198.51.100.20", request_id="req-par")
NOW = 1_900_000_000


def par_event(
    form: dict[str, str], *, basic: tuple[str, str] | None = None, source_ip: str = "198.51.100.9"
) -> dict[str, Any]:
    event = load_event("apigw_rest_token")
    event.update(resource="/oauth/par", path="/oauth/par", body=urlencode(form))
    event["requestContext"].update(resourcePath="/oauth/par")
    event["requestContext"]["identity"]["sourceIp"] = source_ip
    if basic is not None:
        raw = f"{quote(basic[0], safe='')}:{quote(basic[1], safe='')}".encode()
        value = "Basic " + base64.b64encode(raw).decode()
        event["headers"]["Authorization"] = value
        event["multiValueHeaders"]["Authorization"] = [value]
    return event


def request_for(app: Any, **overrides: str) -> dict[str, str]:
    form = {
        "response_type": "code",
        "redirect_uri": app.redirect_uri,
        "scope": "accounts:read",
        "state": "s-par",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        **overrides,
    }
    return {name: value for name, value in form.items() if value}


def at(server: AuthServer, now: float) -> AuthServer:
    """The handler's server on a frozen clock."""
    return dataclasses.replace(server, clock=lambda: now)


def push(server: AuthServer, app: Any, **overrides: str) -> str:
    credentials = Presented(app.client_id, "client_secret_basic", secret=app.client_secret)
    body = par.push(server, request_for(app, **overrides), credentials, ORIGIN)
    request_uri: str = body["request_uri"]
    return request_uri


def open_page(server: AuthServer, client_id: str, request_uri: str, **extra: str) -> Any:
    query = {"client_id": [client_id], "request_uri": [request_uri]}
    query.update({name: [value] for name, value in extra.items()})
    return authorize.start(server, query, ORIGIN)


@pytest.fixture(scope="module")
def app(seeded: dict[str, Any]) -> Any:
    return seeded["app"]


@pytest.fixture(scope="module")
def tokens_table(aws: dict[str, str]) -> Any:
    return boto3.client("dynamodb"), aws[Env.TOKENS_TABLE]


# -- the endpoint ---------------------------------------------------------------------------


def test_a_push_is_answered_201_with_a_one_time_request_uri_stored_only_as_a_digest(
    oauth_handler: ModuleType, app: Any, tokens_table: Any, audit_lines: AuditCapture
) -> None:
    # When the app pushes its request with HTTP Basic authentication
    status, headers, body = invoke(
        oauth_handler, par_event(request_for(app), basic=(app.client_id, app.client_secret))
    )

    # Then it gets a 256-bit request_uri for 60 s, never cached
    assert status == 201, body
    assert headers["Cache-Control"] == "no-store"
    assert body["expires_in"] == PUSHED_REQUEST_TTL_S == 60
    request_uri = body["request_uri"]
    assert request_uri.startswith(REQUEST_URI_PREFIX)
    assert len(base64.urlsafe_b64decode(request_uri[len(REQUEST_URI_PREFIX) :] + "=")) == 32
    # And it was throttled as a token request is (the token endpoint's buckets)
    assert headers["RateLimit-Policy"].startswith('"token-')

    # And the table holds the digest, bound to the client, expiring within 60 s
    client, table = tokens_table
    digest = hashlib.sha256(request_uri.encode()).hexdigest()
    item = client.get_item(TableName=table, Key={"pk": {"S": f"PAR#{digest}"}, "sk": {"S": "PAR"}})
    stored = item["Item"]
    assert stored["client_id"]["S"] == app.client_id
    assert int(stored["ttl"]["N"]) - int(stored["expires_at"]["N"]) == 0
    assert request_uri not in str(stored)
    assert app.client_secret not in str(stored)  # client authentication is not kept

    # And the audit record says it was pushed, without the request_uri or the secret
    [pushed] = audit_lines.of_type("authorization.pushed")
    assert pushed["actor"]["client_id"] == app.client_id
    assert pushed["details"]["response_type"] == "code"
    text = "\n".join(audit_lines.lines)
    assert request_uri not in text and request_uri[len(REQUEST_URI_PREFIX) :] not in text
    assert app.client_secret not in text


def test_client_secret_post_authenticates_a_push(oauth_handler: ModuleType, app: Any) -> None:
    form = {**request_for(app), "client_id": app.client_id, "client_secret": app.client_secret}
    status, _, body = invoke(oauth_handler, par_event(form))
    assert status == 201, body


@pytest.mark.parametrize(
    ("basic", "form"),
    [
        (("wrong", "secret"), {}),
        (None, {}),  # no client authentication at all
        (None, {"client_id": "ppc_nobody", "client_secret": "x"}),
    ],
    ids=["unknown-client", "none", "post-unknown"],
)
def test_bad_client_authentication_is_a_401_with_a_challenge(
    oauth_handler: ModuleType,
    app: Any,
    audit_lines: AuditCapture,
    basic: tuple[str, str] | None,
    form: dict[str, str],
) -> None:
    status, headers, body = invoke(
        oauth_handler, par_event({**request_for(app), **form}, basic=basic)
    )
    assert (status, body["error"]) == (401, "invalid_client")
    assert headers["WWW-Authenticate"].startswith("Basic")
    assert headers["Cache-Control"] == "no-store"
    assert not audit_lines.of_type("authorization.pushed")


def test_a_wrong_secret_for_a_real_client_is_a_401(oauth_handler: ModuleType, app: Any) -> None:
    status, headers, body = invoke(
        oauth_handler, par_event(request_for(app), basic=(app.client_id, "not-the-secret"))
    )
    assert (status, body["error"]) == (401, "invalid_client")
    assert "WWW-Authenticate" in headers


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"request_uri": REQUEST_URI_PREFIX + "x" * 43}, "invalid_request"),  # RFC 9126 §2.1
        ({"scope": "accounts:read clients:manage"}, "invalid_scope"),
        ({"response_type": "id_token"}, "unsupported_response_type"),
        ({"code_challenge": ""}, "invalid_request"),  # PKCE, as on the page
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
        ({"state": ""}, "invalid_request"),
        ({"client_id": "ppc_someone_else"}, "invalid_request"),
    ],
    ids=[
        "request_uri",
        "scope",
        "response_type",
        "no-pkce",
        "plain-pkce",
        "redirect_uri",
        "no-state",
        "other-client_id",
    ],
)
def test_the_pushed_parameters_are_checked_as_the_page_checks_them(
    oauth_handler: ModuleType,
    app: Any,
    audit_lines: AuditCapture,
    overrides: dict[str, str],
    error: str,
) -> None:
    status, headers, body = invoke(
        oauth_handler,
        par_event(request_for(app, **overrides), basic=(app.client_id, app.client_secret)),
    )
    assert (status, body["error"]) == (400, error), body
    assert headers["Cache-Control"] == "no-store"
    assert "WWW-Authenticate" not in headers
    [refused] = audit_lines.of_type("authorization.refused")
    assert (refused["resource"], refused["reason"]) == ("oauth/par", error)


def test_a_client_without_the_code_grant_is_unauthorized_client(
    oauth_handler: ModuleType, aws: dict[str, str], app: Any
) -> None:
    machine, secret = register_client(
        DynamoClientStore(aws[Env.CLIENTS_TABLE]),
        name="Machine app",
        scopes={"accounts:read"},
        owner="usr_bob",
        redirect_uris=(app.redirect_uri,),  # client_credentials only
    )
    assert secret is not None
    status, headers, body = invoke(
        oauth_handler, par_event(request_for(app), basic=(machine.client_id, secret))
    )
    assert (status, body["error"]) == (400, "unauthorized_client")
    assert headers["Cache-Control"] == "no-store"


# -- the authorize page ---------------------------------------------------------------------


def test_the_page_uses_the_pushed_parameters_and_ignores_the_query(
    oauth_handler: ModuleType, app: Any
) -> None:
    server = at(oauth_handler.server, NOW)
    request_uri = push(server, app, scope="accounts:read", state="pushed-state")

    # When the browser opens the page with the request_uri and other (ignored) parameters
    screen = open_page(
        server, app.client_id, request_uri, scope="payments:write", state="from-the-query"
    )

    # Then it is the sign-in page, for the pushed request
    assert isinstance(screen, authorize.LoginScreen), screen
    pending = server.pending.get_pending(screen.request_id)
    assert pending is not None
    assert (pending.scope, pending.state) == ("accounts:read", "pushed-state")
    assert pending.code_challenge == CHALLENGE
    assert pending.redirect_uri == app.redirect_uri


def test_a_request_uri_works_once(oauth_handler: ModuleType, app: Any) -> None:
    server = at(oauth_handler.server, NOW)
    request_uri = push(server, app)
    assert isinstance(open_page(server, app.client_id, request_uri), authorize.LoginScreen)

    again = open_page(server, app.client_id, request_uri)
    assert isinstance(again, authorize.ErrorScreen)
    assert again.status == 400 and "already used" in again.message


def test_a_request_uri_expires_after_60_seconds(oauth_handler: ModuleType, app: Any) -> None:
    pushed_at = at(oauth_handler.server, NOW)
    # Within its 60 s it works
    fresh = push(pushed_at, app)
    in_time = open_page(at(oauth_handler.server, NOW + 59), app.client_id, fresh)
    assert isinstance(in_time, authorize.LoginScreen)
    # From the 60th second on it does not (and is not redirected anywhere)
    late = push(pushed_at, app)
    expired = open_page(at(oauth_handler.server, NOW + 60), app.client_id, late)
    assert isinstance(expired, authorize.ErrorScreen) and expired.status == 400


def test_another_clients_request_uri_is_refused_and_not_spent(
    oauth_handler: ModuleType, aws: dict[str, str], app: Any, audit_lines: AuditCapture
) -> None:
    # Given a second client with the same redirect URI
    other, _ = register_client(
        DynamoClientStore(aws[Env.CLIENTS_TABLE]),
        name="Other app",
        scopes={"accounts:read"},
        owner="usr_bob",
        grant_types=frozenset({GRANT_AUTHORIZATION_CODE}),
        redirect_uris=(app.redirect_uri,),
    )
    server = at(oauth_handler.server, NOW)
    request_uri = push(server, app)

    # When the other client's id is sent with the app's request_uri
    stolen = open_page(server, other.client_id, request_uri)

    # Then it is shown on the page, audited, and the request_uri still works for the app
    assert isinstance(stolen, authorize.ErrorScreen) and stolen.status == 400
    [refused] = audit_lines.of_type("authorization.refused")
    assert (refused["actor"]["client_id"], refused["reason"]) == (
        other.client_id,
        "invalid_request_uri",
    )
    assert request_uri not in "\n".join(audit_lines.lines)
    assert isinstance(open_page(server, app.client_id, request_uri), authorize.LoginScreen)


@pytest.mark.parametrize(
    "request_uri",
    ["", "urn:ietf:params:oauth:request_uri:unknown", "https://evil.example/request.jwt"],
    ids=["empty", "unknown", "not-ours"],
)
def test_an_unknown_request_uri_is_shown_on_the_page(
    oauth_handler: ModuleType, app: Any, request_uri: str
) -> None:
    screen = open_page(at(oauth_handler.server, NOW), app.client_id, request_uri)
    assert isinstance(screen, authorize.ErrorScreen) and screen.status == 400


def test_concurrent_redemptions_get_the_request_once(oauth_handler: ModuleType, app: Any) -> None:
    server = at(oauth_handler.server, NOW)
    request_uri = push(server, app)
    digest = hashlib.sha256(request_uri.encode()).hexdigest()
    results: list[PushedRequest | None] = []
    barrier = threading.Barrier(8)

    def take() -> None:
        barrier.wait()
        results.append(server.pushed.take_pushed(digest, app.client_id, NOW))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([r for r in results if r is not None]) == 1


# -- PAR required ---------------------------------------------------------------------------


def test_a_client_registered_for_par_is_refused_with_query_parameters(
    oauth_handler: ModuleType, aws: dict[str, str], app: Any, audit_lines: AuditCapture
) -> None:
    strict, secret = register_client(
        DynamoClientStore(aws[Env.CLIENTS_TABLE]),
        name="Strict app",
        scopes={"accounts:read"},
        owner="usr_bob",
        grant_types=frozenset({GRANT_AUTHORIZATION_CODE}),
        redirect_uris=(app.redirect_uri,),
        require_pushed_authorization_requests=True,
    )
    assert secret is not None
    server = at(oauth_handler.server, NOW)
    query = {"client_id": strict.client_id, **request_for(app)}
    refused = authorize.start(server, {k: [v] for k, v in query.items()}, ORIGIN)
    assert isinstance(refused, authorize.ErrorScreen) and refused.status == 400
    assert "push" in refused.message
    [record] = audit_lines.of_type("authorization.refused")
    assert record["reason"] == "pushed_request_required"

    # And pushed, the same request goes through
    strict_app = dataclasses.replace(app, client_id=strict.client_id, client_secret=secret)
    request_uri = push(server, strict_app)
    assert isinstance(open_page(server, strict.client_id, request_uri), authorize.LoginScreen)


def test_the_server_wide_setting_requires_par_of_every_client(
    oauth_handler: ModuleType, app: Any
) -> None:
    server = at(oauth_handler.server, NOW)
    strict = dataclasses.replace(
        server, settings=dataclasses.replace(server.settings, require_par=True)
    )
    query = {"client_id": [app.client_id], **{k: [v] for k, v in request_for(app).items()}}
    assert isinstance(authorize.start(server, query, ORIGIN), authorize.LoginScreen)
    refused = authorize.start(strict, query, ORIGIN)
    assert isinstance(refused, authorize.ErrorScreen) and refused.status == 400
    assert isinstance(open_page(strict, app.client_id, push(strict, app)), authorize.LoginScreen)
    assert metadata(strict.settings, require_par=True)["require_pushed_authorization_requests"]


def test_the_metadata_names_the_endpoint_and_the_setting(oauth_handler: ModuleType) -> None:
    event = load_event("apigw_rest_token")
    path = "/.well-known/oauth-authorization-server"
    event.update(resource=path, path=path, httpMethod="GET", body=None)
    event["requestContext"].update(resourcePath=path, httpMethod="GET")
    status, _, body = invoke(oauth_handler, event)
    assert status == 200
    assert body["pushed_authorization_request_endpoint"] == body["issuer"] + "/oauth/par"
    assert body["require_pushed_authorization_requests"] is False  # not set here


def test_push_errors_are_oauth_errors_before_anything_is_stored(
    oauth_handler: ModuleType, app: Any
) -> None:
    server = at(oauth_handler.server, NOW)
    credentials = Presented(app.client_id, "client_secret_basic", secret="wrong")
    with pytest.raises(InvalidClient):
        par.push(server, request_for(app), credentials, ORIGIN)
    good = Presented(app.client_id, "client_secret_basic", secret=app.client_secret)
    with pytest.raises(OAuthError) as refused:
        par.push(server, {**request_for(app), "request_uri": "x"}, good, ORIGIN)
    assert refused.value.error == "invalid_request" and refused.value.status == 400
