"""The local gateway behaves as API Gateway does for a REST API with a REQUEST authorizer:
the proxy event's shape, 401/403 from the authorizer, and policy caching per identity source."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.local.gateway import HttpResponse, LocalGateway
from payplat.gateway.policy import api_prefix, build_policy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """Stands in for the functions behind the gateway (the handlers have their own tests)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": json.dumps({"ok": True}),
            "isBase64Encoded": False,
        }


class Authorizer:
    """Grants scopes by token value: `Bearer <scope>` (or raises like a real authorizer)."""

    def __init__(self, raises: Exception | None = None) -> None:
        self.calls = 0
        self.raises = raises

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if self.raises is not None:
            raise self.raises
        token = event["headers"]["Authorization"].split(" ", 1)[1]
        scopes = frozenset(token.split("+"))
        return build_policy("client-1", event["methodArn"], scopes, {"client_id": "client-1"})


def gateway(
    authorizer: Authorizer | None = None, ttl_s: int = 300, clock: Clock | None = None
) -> tuple[LocalGateway, Recorder, Authorizer]:
    backend, auth = Recorder(), authorizer or Authorizer()
    local = LocalGateway(
        cache_ttl_s=ttl_s,
        clock=clock or Clock(),
        functions={"oauth": backend, "payments": backend},
        authorizer=auth,
    )
    return local, backend, auth


def get(
    local: LocalGateway, path: str, token: str | None = None, *headers: tuple[str, str]
) -> HttpResponse:
    all_headers = [*headers] + ([("Authorization", f"Bearer {token}")] if token else [])
    return local.handle("GET", path, all_headers, b"", "198.51.100.7")


def header(response: HttpResponse, name: str) -> str:
    return next(value for key, value in response.headers if key.lower() == name.lower())


def test_the_proxy_event_has_the_rest_v1_shape() -> None:
    local, backend, _ = gateway()
    response = local.handle(
        "GET",
        "/v1/payments?limit=3&status=a&status=b",
        [
            ("Authorization", "Bearer payments:read"),
            ("X-Trace", "one"),
            ("X-Trace", "two"),
            ("User-Agent", "tests"),
        ],
        b"",
        "198.51.100.7",
    )
    assert response.status == 200
    [event] = backend.events
    assert event["resource"] == "/v1/payments"
    assert event["path"] == "/v1/payments"
    assert event["httpMethod"] == "GET"
    assert event["headers"]["X-Trace"] == "two"
    assert event["multiValueHeaders"]["X-Trace"] == ["one", "two"]
    assert event["queryStringParameters"] == {"limit": "3", "status": "b"}
    assert event["multiValueQueryStringParameters"]["status"] == ["a", "b"]
    assert event["pathParameters"] is None
    assert event["body"] is None
    context = event["requestContext"]
    assert context["identity"]["sourceIp"] == "198.51.100.7"
    assert context["identity"]["userAgent"] == "tests"
    assert context["requestId"] == header(response, "x-amzn-RequestId")
    assert context["authorizer"] == {"client_id": "client-1", "principalId": "client-1"}
    assert [v for k, v in response.headers if k == "Set-Cookie"] == ["a=1", "b=2"]


def test_public_routes_skip_the_authorizer() -> None:
    local, backend, auth = gateway()
    assert get(local, "/health").status == 200
    assert auth.calls == 0
    assert "authorizer" not in backend.events[0]["requestContext"]


def test_no_authorization_header_is_401_without_calling_the_authorizer() -> None:
    local, backend, auth = gateway()
    response = get(local, "/v1/payments")
    assert response.status == 401
    assert 'error="invalid_token"' in header(response, "WWW-Authenticate")
    assert (auth.calls, backend.events) == (0, [])


def test_unauthorized_from_the_authorizer_is_401_and_not_cached() -> None:
    local, backend, auth = gateway(Authorizer(raises=Exception("Unauthorized")))
    for _ in range(2):
        response = get(local, "/v1/payments", "bad")
        assert response.status == 401
        body = json.loads(response.body)
        assert body["error"]["request_id"] == header(response, "x-amzn-RequestId")
    assert auth.calls == 2
    assert backend.events == []


def test_an_authorizer_crash_is_a_5xx_never_a_pass() -> None:
    local, backend, _ = gateway(Authorizer(raises=RuntimeError("boom")))
    assert get(local, "/v1/payments", "x").status >= 500
    assert backend.events == []


def test_a_policy_without_the_route_is_403() -> None:
    local, backend, _ = gateway()
    response = get(local, "/v1/payments", "accounts:read")
    assert response.status == 403
    assert 'error="insufficient_scope"' in header(response, "WWW-Authenticate")
    assert backend.events == []


def test_a_cached_policy_is_evaluated_against_each_route_it_is_reused_for() -> None:
    # Given an authorizer whose policy (for this token) names a route other than the one called
    def other_route_only(event: dict[str, Any]) -> dict[str, Any]:
        prefix = api_prefix(event["methodArn"])
        return {
            "principalId": "client-1",
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Action": "execute-api:Invoke",
                        "Effect": "Allow",
                        "Resource": [f"{prefix}/GET/v1/accounts"],
                    }
                ],
            },
            "context": {},
        }

    local = LocalGateway(
        functions={"payments": Recorder(), "oauth": Recorder()}, authorizer=other_route_only
    )
    # Then the route it does not name is denied, from the first call and from the cache
    assert get(local, "/v1/payments", "t").status == 403
    assert get(local, "/v1/payments", "t").status == 403


def test_policies_are_cached_per_token_until_the_ttl() -> None:
    clock = Clock()
    local, _, auth = gateway(ttl_s=300, clock=clock)
    for _ in range(3):
        assert get(local, "/v1/payments", "payments:read").status == 200
    assert auth.calls == 1
    assert get(local, "/v1/payments", "payments:read+accounts:read").status == 200
    assert auth.calls == 2  # another identity source, another entry
    clock.now += 301
    assert get(local, "/v1/payments", "payments:read").status == 200
    assert auth.calls == 3


def test_a_ttl_of_zero_disables_the_cache() -> None:
    local, _, auth = gateway(ttl_s=0)
    get(local, "/v1/payments", "payments:read")
    get(local, "/v1/payments", "payments:read")
    assert auth.calls == 2


@pytest.mark.parametrize(("method", "path"), [("GET", "/nope"), ("DELETE", "/v1/payments")])
def test_unknown_routes_are_404_in_the_error_format(method: str, path: str) -> None:
    local, _, _ = gateway()
    response = local.handle(method, path, [], b"", "198.51.100.7")
    assert response.status == 404
    assert json.loads(response.body)["error"]["code"] == "resource_missing"


def test_a_crashing_function_is_a_502() -> None:
    def crash(event: dict[str, Any]) -> Any:
        raise RuntimeError("boom")

    local = LocalGateway(functions={"payments": crash, "oauth": crash}, authorizer=Authorizer())
    response = get(local, "/health")
    assert response.status == 502
    assert b"boom" not in response.body


@pytest.mark.parametrize(
    ("headers", "body", "code"),
    [
        ([], b"x" * (32 * 1024 + 1), "request_too_large"),
        ([("Authorization", "Bearer " + "a" * 5000)], b"", "header_too_large"),
    ],
    ids=["body", "authorization"],
)
def test_the_edge_refuses_oversized_requests_before_any_function(
    headers: list[tuple[str, str]], body: bytes, code: str
) -> None:
    local, backend, auth = gateway()
    response = local.handle("POST", "/oauth/token", headers, body, "198.51.100.7")
    assert response.status == 413
    assert json.loads(response.body)["error"]["code"] == code
    assert (backend.events, auth.calls) == ([], 0)
