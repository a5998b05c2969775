"""The REST API as deployed: routes, authorizer, gateway responses, stage and WAF."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.constructs.names import (
    AUTHORIZER_CACHE_TTL_S,
    STAGE_NAME,
    STAGE_THROTTLE_BURST,
    STAGE_THROTTLE_RATE_RPS,
    WAF_RATE_LIMIT_PER_IP,
)
from infra.resources import (
    EDGE_MAX_AUTHORIZATION_BYTES,
    EDGE_MAX_BODY_BYTES,
    GATEWAY_RESPONSES,
    GATEWAY_RESPONSES_BY_TYPE,
    WAF_BODY_INSPECTION_LIMIT,
    WAF_BODY_TOO_LARGE,
    WAF_HEADER_TOO_LARGE,
    WAF_HEADERS_INSPECTION_BYTES,
    WAF_RATE_LIMITED,
    WAF_RESPONSES,
    GatewayResponse,
    WafResponse,
)
from payplat.routes import ROUTES, Route
from tests.infra.synthesized import Json, Synthesized


def _methods_by_route(synth: Synthesized) -> dict[tuple[str, str], Json]:
    """(HTTP method, full path) -> method properties, paths rebuilt from the resource tree."""
    resources = synth.resources

    def path_of(resource_id: Any) -> str:
        if "Ref" not in resource_id:  # Fn::GetAtt RestApi.RootResourceId
            return ""
        properties = resources[resource_id["Ref"]]["Properties"]
        return f"{path_of(properties['ParentId'])}/{properties['PathPart']}"

    return {
        (method["Properties"]["HttpMethod"], path_of(method["Properties"]["ResourceId"])): method[
            "Properties"
        ]
        for method in synth.of_type("AWS::ApiGateway::Method").values()
    }


def _gateway_responses(synth: Synthesized) -> dict[str, Json]:
    """Response type -> gateway response properties."""
    return {
        response["Properties"]["ResponseType"]: response["Properties"]
        for response in synth.of_type("AWS::ApiGateway::GatewayResponse").values()
    }


def _web_acl(synth: Synthesized) -> Json:
    [acl] = synth.of_type("AWS::WAFv2::WebACL").values()
    properties: Json = acl["Properties"]
    return properties


def _waf_rules(synth: Synthesized) -> dict[str, Json]:
    """Rule name -> rule, of the one web ACL."""
    return {rule["Name"]: rule for rule in _web_acl(synth)["Rules"]}


def _assert_error_shape(body: str, *, error_type: str, request_id: object) -> Json:
    """The Stripe-style error body every payplat error has; returns the `error` object."""
    document = json.loads(body)
    assert set(document) == {"error"}
    error: Json = document["error"]
    assert set(error) == {"type", "code", "message", "param", "request_id"}
    assert error["type"] == error_type
    assert error["code"]
    assert error["message"]
    assert error["param"] is None
    assert error["request_id"] == request_id
    return error


def _integration_function(method: Json) -> str:
    """The logical id of the Lambda function a proxy integration invokes."""
    uri = json.dumps(method["Integration"]["Uri"])
    functions = [part.split('"')[0] for part in uri.split('"Fn::GetAtt": ["')[1:]]
    assert len(set(functions)) == 1, uri
    return functions[0]


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
def test_every_route_has_a_method_calling_its_function(synth: Synthesized, route: Route) -> None:
    # Given the route table and the synthesized API
    methods = _methods_by_route(synth)
    handlers = synth.stack.functions.route_handlers

    # When the route's method is looked up by HTTP method and full path
    method = methods.get((route.method, route.path))

    # Then it exists and proxies to the function the table names
    assert method is not None, f"no {route.method} {route.path} in {sorted(methods)}"
    assert method["Integration"]["Type"] == "AWS_PROXY"
    assert _integration_function(method) == synth.logical_id(handlers[route.function])


def test_the_api_has_no_method_the_route_table_does_not_list(synth: Synthesized) -> None:
    # Given the synthesized methods
    methods = set(_methods_by_route(synth))

    # Then they are exactly the route table's
    assert methods == {(route.method, route.path) for route in ROUTES}


def test_protected_routes_use_the_single_request_authorizer(synth: Synthesized) -> None:
    # Given the one authorizer in the template
    authorizers = synth.of_type("AWS::ApiGateway::Authorizer")
    assert len(authorizers) == 1
    [(authorizer_id, authorizer)] = authorizers.items()
    methods = _methods_by_route(synth)

    # Then it is a cached REQUEST authorizer on the Authorization header backed by the λ
    assert authorizer["Properties"]["Type"] == "REQUEST"
    assert authorizer["Properties"]["IdentitySource"] == "method.request.header.Authorization"
    assert authorizer["Properties"]["AuthorizerResultTtlInSeconds"] == AUTHORIZER_CACHE_TTL_S
    authorizer_fn = synth.logical_id(synth.stack.functions.authorizer.function)
    assert authorizer_fn in json.dumps(authorizer["Properties"]["AuthorizerUri"])
    # And every protected route uses it, every public one uses none
    protected = [route for route in ROUTES if route.protected]
    assert protected, "the route table has no protected route to check"
    for route in ROUTES:
        method = methods[(route.method, route.path)]
        if route.protected:
            assert method["AuthorizationType"] == "CUSTOM", route.name
            assert method["AuthorizerId"] == {"Ref": authorizer_id}, route.name
        else:
            assert method["AuthorizationType"] == "NONE", route.name
            assert "AuthorizerId" not in method, route.name


def test_the_authorization_server_routes_are_public_but_registration(
    synth: Synthesized,
) -> None:
    # Given the methods under /oauth and the oauth function
    methods = {
        key: method
        for key, method in _methods_by_route(synth).items()
        if key[1].startswith("/oauth")
    }
    [authorizer_id] = synth.of_type("AWS::ApiGateway::Authorizer")
    oauth = synth.logical_id(synth.stack.functions.oauth.function)

    # Then they are the authorization server's endpoints, every one served by oauth
    assert set(methods) == {
        ("POST", "/oauth/token"),
        ("POST", "/oauth/par"),
        ("GET", "/oauth/authorize"),
        ("POST", "/oauth/authorize"),
        ("POST", "/oauth/introspect"),
        ("POST", "/oauth/revoke"),
        ("POST", "/oauth/register"),
        ("GET", "/oauth/register/{client_id}"),
        ("PUT", "/oauth/register/{client_id}"),
        ("DELETE", "/oauth/register/{client_id}"),
        ("POST", "/oauth/register/{client_id}/secret"),
    }
    assert {_integration_function(method) for method in methods.values()} == {oauth}
    # And registration (RFC 7591) takes a clients:manage access token, checked by the
    # authorizer; everything else authenticates in the function (client credentials, the
    # login form, the RFC 7592 registration access token), so the gateway checks nothing
    register = methods.pop(("POST", "/oauth/register"))
    assert register["AuthorizationType"] == "CUSTOM"
    assert register["AuthorizerId"] == {"Ref": authorizer_id}
    for key, method in methods.items():
        assert method["AuthorizationType"] == "NONE", key
        assert "AuthorizerId" not in method, key


def test_no_request_validation_or_model_stands_between_a_request_and_its_function(
    synth: Synthesized,
) -> None:
    # Given the API's methods and the REST API itself
    methods = _methods_by_route(synth)
    [rest_api] = synth.of_type("AWS::ApiGateway::RestApi").values()

    # Then no validator or model exists: HTML form posts, JSON registrations, PUT and DELETE
    # reach the function, which answers RFC 6749/7591 errors itself
    assert not synth.of_type("AWS::ApiGateway::RequestValidator")
    assert not synth.of_type("AWS::ApiGateway::Model")
    for key, method in methods.items():
        assert "RequestValidatorId" not in method, key
        assert "RequestModels" not in method, key
        assert not any(method.get("RequestParameters", {}).values()), key
    # And no media type is binary, so form and JSON bodies arrive as text
    assert "BinaryMediaTypes" not in rest_api["Properties"]


@pytest.mark.parametrize("spec", GATEWAY_RESPONSES, ids=lambda spec: spec.response_type)
def test_gateway_responses_match_their_spec(synth: Synthesized, spec: GatewayResponse) -> None:
    # Given the gateway responses in the template, by type
    responses = {
        response["Properties"]["ResponseType"]: response["Properties"]
        for response in synth.of_type("AWS::ApiGateway::GatewayResponse").values()
    }

    # When the spec's response is looked up
    response = responses.get(spec.response_type)

    # Then it answers with the spec's status, headers (as static literals) and JSON body
    assert response is not None, f"no {spec.response_type} gateway response"
    assert response.get("StatusCode") == (None if spec.status is None else str(spec.status))
    headers = {
        name.removeprefix("gatewayresponse.header."): value
        for name, value in response["ResponseParameters"].items()
    }
    assert headers == {name: f"'{value}'" for name, value in spec.headers.items()}
    assert response["ResponseTemplates"] == {"application/json": spec.body}


@pytest.mark.parametrize(
    ("response_type", "status", "error_type", "code"),
    [
        ("UNAUTHORIZED", 401, "authentication_error", "invalid_token"),
        ("ACCESS_DENIED", 403, "permission_error", "insufficient_scope"),
        ("THROTTLED", 429, "rate_limit_error", "rate_limited"),
        ("QUOTA_EXCEEDED", 429, "rate_limit_error", "quota_exceeded"),
        ("REQUEST_TOO_LARGE", 413, "invalid_request_error", "request_too_large"),
        ("WAF_FILTERED", 403, "invalid_request_error", "request_blocked"),
    ],
)
def test_edge_refusals_answer_the_documented_error_shape(
    synth: Synthesized, response_type: str, status: int, error_type: str, code: str
) -> None:
    # Given the gateway response of a refusal API Gateway makes without calling a function
    response = _gateway_responses(synth).get(response_type)

    # Then it exists with its status, uncacheable JSON and the Stripe-style body whose
    # request_id API Gateway fills in
    assert response is not None, f"no {response_type} gateway response"
    assert response["StatusCode"] == str(status)
    headers = response["ResponseParameters"]
    assert headers["gatewayresponse.header.Content-Type"] == "'application/json'"
    assert headers["gatewayresponse.header.Cache-Control"] == "'no-store'"
    body = response["ResponseTemplates"]["application/json"]
    error = _assert_error_shape(body, error_type=error_type, request_id="$context.requestId")
    assert error["code"] == code


def test_every_429_says_when_to_retry(synth: Synthesized) -> None:
    # Given every 429 the gateway itself can answer
    throttling = {
        response_type: properties
        for response_type, properties in _gateway_responses(synth).items()
        if properties.get("StatusCode") == "429"
    }

    # Then stage throttling and quotas are among them, and each carries Retry-After (seconds)
    assert set(throttling) == {"THROTTLED", "QUOTA_EXCEEDED"}
    for response_type, properties in throttling.items():
        retry_after = properties["ResponseParameters"].get("gatewayresponse.header.Retry-After")
        assert retry_after == "'1'", response_type
    # And the local gateway reads the same specs
    assert GATEWAY_RESPONSES_BY_TYPE["THROTTLED"].headers["Retry-After"] == "1"


def test_auth_failures_carry_rfc6750_www_authenticate(synth: Synthesized) -> None:
    # Given the 401 and 403 responses
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]["ResponseParameters"]
        for r in synth.of_type("AWS::ApiGateway::GatewayResponse").values()
    }

    # Then both say Bearer with the RFC 6750 error code
    unauthorized = responses["UNAUTHORIZED"]["gatewayresponse.header.WWW-Authenticate"]
    denied = responses["ACCESS_DENIED"]["gatewayresponse.header.WWW-Authenticate"]
    assert unauthorized.startswith("'Bearer ")
    assert 'error="invalid_token"' in unauthorized
    assert denied.startswith("'Bearer ")
    assert 'error="insufficient_scope"' in denied


def test_stage_logs_json_access_lines_traces_and_throttles(synth: Synthesized) -> None:
    # Given the single stage
    [stage] = synth.of_type("AWS::ApiGateway::Stage").values()
    properties = stage["Properties"]

    # Then it is the constant stage name, traced, with JSON access logs to a log group
    assert properties["StageName"] == STAGE_NAME
    assert properties["TracingEnabled"] is True
    access_log = properties["AccessLogSetting"]
    access_logs_id = synth.logical_id(synth.stack.api.node.find_child("AccessLogs"))
    assert {"Ref": access_logs_id} in access_log["DestinationArn"]["Fn::Join"][1]
    fields = json.loads(access_log["Format"])
    for field in ("requestId", "ip", "caller", "httpMethod", "resourcePath", "status"):
        assert field in fields
    for field in ("authorizerError", "principalId", "authorizerLatency", "integrationLatency"):
        assert field in fields
    # And never logs bodies or headers (they carry tokens)
    assert not any("header" in value.lower() or "body" in value for value in fields.values())
    [settings] = properties["MethodSettings"]
    assert (settings["HttpMethod"], settings["ResourcePath"]) == ("*", "/*")
    assert settings["DataTraceEnabled"] is False
    assert settings["MetricsEnabled"] is True
    assert settings["LoggingLevel"] in {"ERROR", "INFO"}
    assert settings["ThrottlingRateLimit"] == STAGE_THROTTLE_RATE_RPS
    assert settings["ThrottlingBurstLimit"] == STAGE_THROTTLE_BURST


def test_waf_with_ip_rate_limit_and_managed_rules_guards_the_stage(synth: Synthesized) -> None:
    # Given the web ACL and its association
    [(acl_id, acl)] = synth.of_type("AWS::WAFv2::WebACL").items()
    [association] = synth.of_type("AWS::WAFv2::WebACLAssociation").values()
    [stage_id] = synth.of_type("AWS::ApiGateway::Stage")

    # Then the regional ACL is associated with the live stage
    assert acl["Properties"]["Scope"] == "REGIONAL"
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    assert {"Ref": stage_id} in association["Properties"]["ResourceArn"]["Fn::Join"][1]
    # And it limits each IP and runs the AWS common and known-bad-inputs rule groups
    statements = [rule["Statement"] for rule in acl["Properties"]["Rules"]]
    rate = [s["RateBasedStatement"] for s in statements if "RateBasedStatement" in s]
    assert rate == [
        {"AggregateKeyType": "IP", "Limit": WAF_RATE_LIMIT_PER_IP, "EvaluationWindowSec": 300}
    ]
    managed = {
        s["ManagedRuleGroupStatement"]["Name"]
        for s in statements
        if "ManagedRuleGroupStatement" in s
    }
    assert managed == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"}


def test_waf_rules_run_rate_limit_then_size_limits_then_managed_groups(
    synth: Synthesized,
) -> None:
    # Given the web ACL's rules in evaluation order
    rules = sorted(_web_acl(synth)["Rules"], key=lambda rule: rule["Priority"])

    # Then the per-IP rate counts every request first, and the size limits block before the
    # common rule set (whose own body size rule would answer a bare 403)
    assert [rule["Name"] for rule in rules] == [
        "RateLimitPerIp",
        "BodyTooLarge",
        "HeadersTooLarge",
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
    ]
    assert len({rule["Priority"] for rule in rules}) == len(rules)
    # And the managed groups keep their own (block) actions
    for rule in rules[3:]:
        assert rule["OverrideAction"] == {"None": {}}


def test_waf_blocks_bodies_over_the_limit_with_a_json_413(synth: Synthesized) -> None:
    # Given the body size rule and the web ACL's inspection settings
    acl = _web_acl(synth)
    rule = _waf_rules(synth)["BodyTooLarge"]
    size = rule["Statement"]["SizeConstraintStatement"]
    inspected = acl["AssociationConfig"]["RequestBody"]["API_GATEWAY"]

    # Then bodies larger than the edge limit match, including those too large to inspect
    assert size["FieldToMatch"] == {"Body": {"OversizeHandling": "MATCH"}}
    assert size["ComparisonOperator"] == "GT"
    assert size["Size"] == EDGE_MAX_BODY_BYTES
    # And the limit is within what API Gateway forwards to WAF, so it is measured exactly
    inspected_limit = inspected["DefaultSizeInspectionLimit"]
    assert inspected_limit == WAF_BODY_INSPECTION_LIMIT
    assert inspected_limit in {"KB_16", "KB_32", "KB_48", "KB_64"}
    assert size["Size"] <= int(inspected_limit.removeprefix("KB_")) * 1024
    # And such a request is blocked with the 413 response
    assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 413
    assert _custom_response(synth, rule) == WAF_BODY_TOO_LARGE


def test_waf_blocks_oversized_authorization_headers_with_a_json_413(
    synth: Synthesized,
) -> None:
    # Given the header size rule
    rule = _waf_rules(synth)["HeadersTooLarge"]
    [authorization, oversize] = [
        statement["SizeConstraintStatement"]
        for statement in rule["Statement"]["OrStatement"]["Statements"]
    ]

    # Then an Authorization header longer than the limit matches (WAF wants it lower case)
    assert authorization["FieldToMatch"] == {"SingleHeader": {"Name": "authorization"}}
    assert authorization["ComparisonOperator"] == "GT"
    assert authorization["Size"] == EDGE_MAX_AUTHORIZATION_BYTES
    # And the limit is one WAF can measure (it sees only the first 8 KB of headers) ...
    assert EDGE_MAX_AUTHORIZATION_BYTES < WAF_HEADERS_INSPECTION_BYTES
    # ... while headers past what WAF sees match too, instead of passing unmeasured
    headers = oversize["FieldToMatch"]["Headers"]
    assert headers["MatchPattern"] == {"All": {}}
    assert headers["OversizeHandling"] == "MATCH"
    assert (oversize["ComparisonOperator"], oversize["Size"]) == (
        "GT",
        WAF_HEADERS_INSPECTION_BYTES,
    )
    # And such a request is blocked with the 413 response
    assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 413
    assert _custom_response(synth, rule) == WAF_HEADER_TOO_LARGE


def test_waf_rate_limit_answers_a_json_429_with_retry_after(synth: Synthesized) -> None:
    # Given the per-IP rate rule
    rule = _waf_rules(synth)["RateLimitPerIp"]

    # Then it blocks with the 429 response, which says when to retry
    assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    assert _custom_response(synth, rule) == WAF_RATE_LIMITED
    assert int(WAF_RATE_LIMITED.headers["Retry-After"]) > 0


@pytest.mark.parametrize("spec", WAF_RESPONSES, ids=lambda spec: spec.key)
def test_waf_custom_responses_are_uncacheable_json_errors(
    synth: Synthesized, spec: WafResponse
) -> None:
    # Given a custom response body of the web ACL
    body = _web_acl(synth)["CustomResponseBodies"][spec.key]

    # Then it is JSON in the documented error shape (WAF fills in no request id)
    assert body == {"ContentType": "APPLICATION_JSON", "Content": spec.body}
    error_type = "rate_limit_error" if spec.status == 429 else "invalid_request_error"
    _assert_error_shape(spec.body, error_type=error_type, request_id=None)
    # And its headers forbid caching and leave Content-Type to WAF (it rejects one)
    assert spec.headers["Cache-Control"] == "no-store"
    assert "content-type" not in {name.lower() for name in spec.headers}
    # And every body is used by a rule (an unused one is a rule that lost its response)
    keys = {
        rule["Action"]["Block"]["CustomResponse"].get("CustomResponseBodyKey")
        for rule in _web_acl(synth)["Rules"]
        if "Block" in rule.get("Action", {})
    }
    assert spec.key in keys


def _custom_response(synth: Synthesized, rule: Json) -> WafResponse:
    """The rule's block response, rebuilt from the template (status, headers, body)."""
    custom = rule["Action"]["Block"]["CustomResponse"]
    key = custom["CustomResponseBodyKey"]
    return WafResponse(
        key=key,
        status=custom["ResponseCode"],
        headers={header["Name"]: header["Value"] for header in custom["ResponseHeaders"]},
        body=_web_acl(synth)["CustomResponseBodies"][key]["Content"],
    )


def test_the_largest_valid_payment_body_passes_the_edge(synth: Synthesized) -> None:
    # Given the largest body a payment may have (50 metadata keys of 40 + 500 characters)
    largest_payment = 50 * (40 + 500 + 6) + 1024
    # Then our limit admits it, and the common rule set's own 8 KB body rule only counts
    assert largest_payment <= EDGE_MAX_BODY_BYTES
    [common] = [
        rule for rule in _web_acl(synth)["Rules"] if rule["Name"] == "AWSManagedRulesCommonRuleSet"
    ]
    overrides = common["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"]
    assert overrides == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]
