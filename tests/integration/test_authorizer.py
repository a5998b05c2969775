"""The authorizer handler with a token from the real oauth handler (KMS via moto) and keys
fetched over real HTTP from a JWKS endpoint, as deployed."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from payplat.config import Env
from payplat.routes import ROUTES
from tests.conftest import AuditCapture, LambdaContext, invoke, load_event
from tests.integration.test_oauth import get_event, token_event

ROOT = Path(__file__).resolve().parents[2]


class JwksServer:
    def __init__(self, document: bytes) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(document)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"


@pytest.fixture(scope="module")
def jwks_server(oauth_handler: ModuleType) -> Iterator[JwksServer]:
    _, _, document = invoke(oauth_handler, get_event("/.well-known/jwks.json", "jwks"))
    server = JwksServer(json.dumps(document).encode())
    yield server
    server.server.shutdown()


@pytest.fixture(scope="module")
def authorizer(jwks_server: JwksServer) -> ModuleType:
    os.environ[Env.JWKS_URI] = jwks_server.url
    return importlib.import_module("functions.authorizer.handler")


def access_token(oauth_handler: ModuleType, client: Any, scope: str | None = None) -> str:
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    _, _, body = invoke(
        oauth_handler, token_event(form, basic=(client.client_id, client.client_secret))
    )
    token: str = body["access_token"]
    return token


def authorizer_event(token: str | None) -> dict[str, Any]:
    event = load_event("authorizer_request")
    if token is None:
        del event["headers"]["Authorization"]
    else:
        event["headers"]["Authorization"] = f"Bearer {token}"
    return event


def test_a_valid_token_gets_a_policy_for_every_route_its_scopes_allow(
    authorizer: ModuleType,
    oauth_handler: ModuleType,
    seeded: dict[str, Any],
    audit_lines: AuditCapture,
) -> None:
    merchant = seeded["merchant"]
    token = access_token(oauth_handler, merchant)
    result = authorizer.lambda_handler(authorizer_event(token), LambdaContext())

    [statement] = result["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    prefix = "arn:aws:execute-api:eu-west-1:123456789012:abc123/live/"
    expected = {
        prefix + route.arn_path
        for route in ROUTES
        if route.scope and route.scope in merchant.scope.split()
    }
    assert set(statement["Resource"]) == expected
    context = result["context"]
    assert context["client_id"] == context["sub"] == merchant.client_id
    assert set(context["scope"].split()) == set(merchant.scope.split())
    assert all(isinstance(value, str | int) for value in context.values())
    [decision] = audit_lines.of_type("access.allowed")
    assert decision["details"]["jti"] == context["jti"]
    assert token not in "\n".join(audit_lines.lines)


@pytest.mark.parametrize("token", [None, "garbage", "a.b.c"])
def test_a_missing_or_bad_token_raises_unauthorized(
    authorizer: ModuleType, token: str | None, audit_lines: AuditCapture
) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.lambda_handler(authorizer_event(token), LambdaContext())
    [denied] = audit_lines.of_type("access.denied")
    assert denied["outcome"] == "failure"
    assert denied["reason"]


def test_warm_invocations_fetch_the_jwks_once(
    authorizer: ModuleType,
    oauth_handler: ModuleType,
    seeded: dict[str, Any],
    jwks_server: JwksServer,
) -> None:
    token = access_token(oauth_handler, seeded["merchant"])
    for _ in range(20):
        authorizer.lambda_handler(authorizer_event(token), LambdaContext())
    for _ in range(20):  # forged kids do not turn into fetches either
        with pytest.raises(Exception, match="Unauthorized"):
            authorizer.lambda_handler(
                authorizer_event(
                    "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImZvcmdlZCJ9.e30.c2ln"
                ),
                LambdaContext(),
            )
    assert jwks_server.hits == 1


def test_the_authorizer_module_imports_no_boto3() -> None:
    env = {
        **os.environ,
        Env.ISSUER: "https://issuer.test",
        Env.AUDIENCE: "https://issuer.test/v1",
        Env.JWKS_URI: "https://issuer.test/.well-known/jwks.json",
    }
    probe = (
        "import sys, functions.authorizer.handler; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'payplat')))"
    )
    output = subprocess.run(  # noqa: S603
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "boto3" not in output
    assert "payplat.dal" not in output
