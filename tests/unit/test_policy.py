"""The authorizer's policy (every route a token's scopes allow) and its decision + audit.

Expectations are computed from the route table, so they stay right as routes are added.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import re
from pathlib import Path

import pytest

from infra.resources import AUDIT_LOG_FILTER
from payplat.audit import events as audit
from payplat.gateway.authorizer import AuthorizationRequest, Unauthenticated, authorize
from payplat.gateway.policy import api_prefix, build_policy, is_allowed
from payplat.routes import ROUTES, SCOPES, Route

EVENT = json.loads(
    (Path(__file__).parents[2] / "events" / "authorizer_request.json").read_text("utf-8")
)
METHOD_ARN = EVENT["methodArn"]  # what API Gateway sends, e.g. .../abc123/live/GET/v1/payments
PREFIX = api_prefix(METHOD_ARN)
PROTECTED = [route for route in ROUTES if route.protected]
PUBLIC = [route for route in ROUTES if not route.protected]
CONTEXT: dict[str, str | int] = {"client_id": "client-abc", "sub": "user-123"}


def concrete_arn(route: Route, prefix: str = PREFIX) -> str:
    """The method ARN API Gateway would send for a real call of `route` (ids, not `{param}`)."""
    path = re.sub(r"\{([^}/]+)\}", lambda m: f"{m.group(1)}_8f3a2c", route.path)
    return f"{prefix}/{route.method}{path}"


def expected_resources(scopes: frozenset[str], prefix: str = PREFIX) -> set[str]:
    return {f"{prefix}/{route.arn_path}" for route in ROUTES if route.scope in scopes}


def statements(policy: dict) -> list[dict]:
    return policy["policyDocument"]["Statement"]


def test_the_route_table_has_protected_routes_to_test() -> None:
    # Guards the parametrized tests below against silently running over nothing
    assert PROTECTED
    assert all(route.scope in SCOPES for route in PROTECTED)
    assert METHOD_ARN in {concrete_arn(route) for route in PROTECTED}


# --- api_prefix --------------------------------------------------------------------------------


def test_api_prefix_is_the_api_and_stage() -> None:
    arn = "arn:aws:execute-api:eu-west-1:123456789012:abc123/live/GET/v1/payments/pay_1"
    assert api_prefix(arn) == "arn:aws:execute-api:eu-west-1:123456789012:abc123/live"


@pytest.mark.parametrize(
    "arn", ["", "GET/v1/payments", "arn:aws:execute-api:eu-west-1:1:abc", "abc123/live/GET"]
)
def test_api_prefix_refuses_what_is_not_a_method_arn(arn) -> None:
    with pytest.raises(ValueError, match="ARN"):
        api_prefix(arn)


# --- build_policy ------------------------------------------------------------------------------


def test_payments_read_allows_exactly_its_routes() -> None:
    # Given a token holding payments:read
    scopes = frozenset({"payments:read"})

    # When the policy is built for the call being made
    policy = build_policy("user-123", METHOD_ARN, scopes, CONTEXT)

    # Then one Allow names exactly the routes whose scope it holds, under this api/stage
    [statement] = statements(policy)
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "execute-api:Invoke"
    assert sorted(statement["Resource"]) == sorted(expected_resources(scopes))
    assert len(statement["Resource"]) == len(set(statement["Resource"]))
    assert all(resource.startswith(PREFIX + "/") for resource in statement["Resource"])


@pytest.mark.parametrize(
    "scopes",
    [frozenset({scope}) for scope in SCOPES] + [frozenset(SCOPES)],
    ids=[*SCOPES, "all-scopes"],
)
def test_policy_lists_every_route_of_the_held_scopes(scopes) -> None:
    # Given any scope set
    policy = build_policy("user-123", METHOD_ARN, scopes, CONTEXT)

    # Then Allow lists exactly its routes, or, if it allows none, one Deny for the whole stage
    [statement] = statements(policy)
    expected = expected_resources(scopes)
    if expected:
        assert statement["Effect"] == "Allow"
        assert set(statement["Resource"]) == expected
    else:
        assert statement["Effect"] == "Deny"
        assert statement["Resource"] == [f"{PREFIX}/*"]


def test_policy_shape_is_what_api_gateway_expects() -> None:
    policy = build_policy("user-123", METHOD_ARN, frozenset({"payments:read"}), CONTEXT)
    assert policy["principalId"] == "user-123"
    assert policy["policyDocument"]["Version"] == "2012-10-17"
    assert policy["context"] == CONTEXT


def test_public_routes_are_never_in_a_policy() -> None:
    # Public routes have no authorizer; a policy naming them would be meaningless
    policy = build_policy("user-123", METHOD_ARN, frozenset(SCOPES), CONTEXT)
    resources = set(statements(policy)[0]["Resource"])
    assert not {f"{PREFIX}/{route.arn_path}" for route in PUBLIC} & resources


@pytest.mark.parametrize("route", PROTECTED, ids=lambda route: route.name)
def test_is_allowed_for_every_route_the_scope_allows(route) -> None:
    # Given a policy built (and cached by API Gateway) while calling some other route
    scopes = frozenset({route.scope})
    policy = build_policy("user-123", METHOD_ARN, scopes, CONTEXT)

    # Then the cached policy is right for a real call of `route` too
    assert is_allowed(policy, concrete_arn(route))


@pytest.mark.parametrize(
    ("scope", "route"),
    [(scope, route) for scope in SCOPES for route in ROUTES if route.scope != scope],
    ids=lambda value: value if isinstance(value, str) else value.name,
)
def test_is_not_allowed_outside_the_scopes(scope, route) -> None:
    # Given a token holding one scope, and a route that needs another (or is public)
    policy = build_policy("user-123", METHOD_ARN, frozenset({scope}), CONTEXT)

    # Then the policy does not cover a call of that route
    assert not is_allowed(policy, concrete_arn(route))


def test_no_route_pattern_covers_a_route_needing_another_scope() -> None:
    # An execute-api `*` also matches `/`, so `GET/v1/payments/*` (say payments:read) would
    # cover a call of `GET/v1/payments/{id}/refunds` even if that needed another scope. The
    # policy is only as tight as the table: check every pair of routes in it.
    overlaps = [
        (owner.name, call.name)
        for owner in PROTECTED
        for call in PROTECTED
        if owner.scope != call.scope
        and fnmatch.fnmatchcase(concrete_arn(call), f"{PREFIX}/{owner.arn_path}")
    ]
    assert overlaps == []


@pytest.mark.parametrize("route", PROTECTED, ids=lambda route: route.name)
def test_policy_does_not_reach_other_apis_or_stages(route) -> None:
    # Given a policy for this api/stage
    policy = build_policy("user-123", METHOD_ARN, frozenset(SCOPES), CONTEXT)
    account_region = PREFIX.rsplit(":", 1)[0]
    api_id, stage = PREFIX.rsplit(":", 1)[1].split("/")

    # Then the same route on another stage or API is not covered
    assert not is_allowed(policy, concrete_arn(route, f"{account_region}:{api_id}/{stage}x"))
    assert not is_allowed(policy, concrete_arn(route, f"{account_region}:other1/{stage}"))


# (A path deeper than any route, like GET/v1/payments/x/y/z, matches `*` as it would in API
# Gateway; API Gateway answers it 404 before any authorizer runs, as the local gateway does.)
@pytest.mark.parametrize("suffix", ["DELETE/v1/payments", "GET/v1/admin", "GET/", "GET"])
def test_unknown_methods_and_paths_are_not_allowed(suffix) -> None:
    policy = build_policy("user-123", METHOD_ARN, frozenset(SCOPES), CONTEXT)
    arn = f"{PREFIX}/{suffix}"
    assert not any(concrete_arn(route) == arn for route in PROTECTED)
    assert not is_allowed(policy, arn)


@pytest.mark.parametrize("scopes", [frozenset(), frozenset({"admin", "payments:*", "*"})])
def test_no_usable_scope_gets_an_explicit_deny(scopes) -> None:
    # Given a token whose scopes allow no route (none at all, or unknown/wildcard-looking)
    policy = build_policy("user-123", METHOD_ARN, scopes, CONTEXT)

    # Then the policy is one explicit Deny and nothing is allowed
    [statement] = statements(policy)
    assert statement["Effect"] == "Deny"
    assert not any(is_allowed(policy, concrete_arn(route)) for route in ROUTES)


# --- is_allowed semantics -----------------------------------------------------------------------


def _policy(*statement: tuple[str, str | list[str]]) -> dict:
    return {
        "principalId": "user-123",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}
                for effect, resource in statement
            ],
        },
    }


@pytest.mark.parametrize("deny_first", [True, False])
def test_explicit_deny_wins_over_allow(deny_first) -> None:
    # Given an Allow for the whole stage and a Deny for one method, in either order
    allow = ("Allow", [f"{PREFIX}/*"])
    deny = ("Deny", f"{PREFIX}/GET/v1/payments")
    policy = _policy(deny, allow) if deny_first else _policy(allow, deny)

    # Then the denied method is refused and the rest is allowed
    assert not is_allowed(policy, f"{PREFIX}/GET/v1/payments")
    assert is_allowed(policy, f"{PREFIX}/POST/v1/payments")


def test_wildcards_match_like_api_gateway() -> None:
    policy = _policy(("Allow", f"{PREFIX}/GET/v1/payments/*"))
    assert is_allowed(policy, f"{PREFIX}/GET/v1/payments/pay_1")
    assert not is_allowed(policy, f"{PREFIX}/POST/v1/payments/pay_1")
    assert not is_allowed(_policy(("Allow", f"{PREFIX}/GET/v1/payment?")), f"{PREFIX}/GET/v1/x")


def test_empty_policy_allows_nothing() -> None:
    assert not is_allowed(_policy(), METHOD_ARN)


# --- authorize ---------------------------------------------------------------------------------


ORIGIN = audit.Origin(source_ip="203.0.113.7", user_agent="partner-sdk/1.0", request_id="req-1")


def request(authorization: str | None, method_arn: str = METHOD_ARN) -> AuthorizationRequest:
    return AuthorizationRequest(authorization=authorization, method_arn=method_arn, origin=ORIGIN)


def test_audit_lines_carry_what_the_subscription_filter_matches(audit_lines) -> None:
    audit.record(audit.AuditEvent(type="login.succeeded", outcome="success"))
    [line] = audit_lines.lines
    assert json.loads(line)["log_type"] == "AUDIT"
    assert '$.log_type = "AUDIT"' in AUDIT_LOG_FILTER


def test_valid_token_is_allowed_with_a_gateway_safe_context(issue, verifier, audit_lines) -> None:
    # Given a valid token for the route being called
    issued = issue(scope="payments:read")

    # When the authorizer decides
    policy = authorize(request(f"Bearer {issued.token}"), verifier)

    # Then the call is allowed and the context carries only str/int (API Gateway's rule)
    assert is_allowed(policy, METHOD_ARN)
    context = policy["context"]
    assert set(context) == {"client_id", "sub", "scope", "jti", "exp", "iat", "plan", "jkt"}
    assert all(type(value) in (str, int) for value in context.values())
    assert context == {
        "client_id": "client-abc",
        "sub": "user-123",
        "scope": "payments:read",
        "jti": issued.jti,
        "exp": context["exp"],
        "iat": context["iat"],
        "plan": "",  # this token names no plan; the backend reads the client's live plan
        "jkt": "",  # a bearer token: bound to no DPoP key
    }
    assert isinstance(context["exp"], int)
    assert context["exp"] - context["iat"] == 600
    assert policy["principalId"] == "user-123"

    # And one audit line records the decision, with the jti and never the token
    [line] = audit_lines.lines
    record = json.loads(line)
    assert record["type"] == "access.allowed"
    assert record["outcome"] == "success"
    assert record["resource"] == METHOD_ARN
    assert record["actor"] == {"client_id": "client-abc", "sub": "user-123"}
    assert record["details"]["jti"] == issued.jti
    assert record["origin"]["request_id"] == "req-1"
    assert issued.token not in line


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing_token"),
        ("Basic dXNlcjpwYXNz", "malformed_authorization_header"),
        ("Bearer not.a.jwt", "malformed_header"),
    ],
)
def test_bad_authorization_header_is_unauthenticated(verifier, audit_lines, header, reason):
    # When the authorizer sees no usable bearer token
    with pytest.raises(Unauthenticated) as caught:
        authorize(request(header), verifier)

    # Then it raises (API Gateway answers 401) and audits one denial with the reason
    assert str(caught.value) == reason
    [line] = audit_lines.lines
    record = json.loads(line)
    assert (record["type"], record["outcome"], record["reason"]) == (
        "access.denied",
        "failure",
        reason,
    )


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (lambda make_token: make_token(header={"alg": "none"}), "algorithm_not_allowed"),
        (lambda make_token: make_token(claims={"exp": 1}), "expired"),
        (lambda make_token: make_token(claims={"aud": "https://elsewhere"}), "wrong_audience"),
        (lambda make_token: make_token(signature=bytes(64)), "bad_signature"),
        (lambda make_token: make_token(header={"typ": "JWT"}), "wrong_type"),
    ],
    ids=["alg-none", "expired", "wrong-aud", "r=s=0", "typ-jwt"],
)
def test_bad_token_is_unauthenticated_and_audited_without_the_token(
    make_token, verifier, audit_lines, caplog, capfd, forge, reason
) -> None:
    # Given a rejected token
    token = forge(make_token)

    # When the authorizer decides
    with pytest.raises(Unauthenticated) as caught:
        authorize(request(f"Bearer {token}"), verifier)

    # Then exactly one audit line says why, and no output anywhere holds the token
    assert str(caught.value) == reason
    [line] = audit_lines.lines
    record = json.loads(line)
    assert (record["type"], record["reason"]) == ("access.denied", reason)
    assert "actor" not in record or record["actor"] == {}
    app_log = [json.dumps(vars(record), default=str) for record in caplog.records]
    out, err = capfd.readouterr()
    for text in (line, out, err, str(caught.value), *app_log):
        assert token not in text
        assert token.split(".")[2] not in text  # not even its signature


def test_token_outside_the_called_route_gets_a_deny_not_a_401(issue, verifier, audit_lines):
    # Given a valid token whose scopes do not include the called route's
    called = next(route for route in PROTECTED if concrete_arn(route) == METHOD_ARN)
    other_scope = next(scope for scope in SCOPES if scope != called.scope)
    issued = issue(scope=other_scope)

    # When the authorizer decides
    policy = authorize(request(f"Bearer {issued.token}"), verifier)

    # Then it answers a policy (403 at the gateway) and audits insufficient_scope
    assert not is_allowed(policy, METHOD_ARN)
    [line] = audit_lines.lines
    record = json.loads(line)
    assert (record["type"], record["outcome"], record["reason"]) == (
        "access.denied",
        "failure",
        "insufficient_scope",
    )
    assert issued.token not in line


def test_one_audit_line_per_call(issue, verifier, audit_lines) -> None:
    # Given alternating good and bad calls
    good = f"Bearer {issue().token}"
    for header in (good, None, good, "Bearer x.y.z", good):
        with contextlib.suppress(Unauthenticated):
            authorize(request(header), verifier)

    # Then there is one line per decision, in order
    types = [event["type"] for event in audit_lines.events]
    assert types == ["access.allowed", "access.denied"] * 2 + ["access.allowed"]
    assert all(good.split()[1] not in line for line in audit_lines.lines)
