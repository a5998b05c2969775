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
from infra.resources import GATEWAY_RESPONSES, GatewayResponse
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
    assert response["StatusCode"] == str(spec.status)
    headers = {
        name.removeprefix("gatewayresponse.header."): value
        for name, value in response["ResponseParameters"].items()
    }
    assert headers == {name: f"'{value}'" for name, value in spec.headers.items()}
    assert response["ResponseTemplates"] == {"application/json": spec.body}


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


def test_outputs_give_the_base_url_as_api_url_and_issuer(synth: Synthesized) -> None:
    # Given the stack outputs
    outputs = synth.json["Outputs"]

    # Then ApiUrl and Issuer are the same https://{api}.execute-api.../{stage} URL
    assert outputs["ApiUrl"]["Value"] == outputs["Issuer"]["Value"]
    parts = outputs["Issuer"]["Value"]["Fn::Join"][1]
    assert parts[0] == "https://"
    assert parts[-1] == f"/{STAGE_NAME}"
    assert {"Ref": synth.logical_id(synth.stack.api.rest_api)} in parts
