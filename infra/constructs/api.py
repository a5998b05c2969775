"""The REST API: routes from the route table, the JWT authorizer, RFC 6750 gateway
responses, the `live` stage with JSON access logs, and the WAF in front of it."""

from __future__ import annotations

import json
from collections.abc import Mapping

from aws_cdk import Aws, Duration, Fn, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.constructs.names import (
    AUTHORIZER_CACHE_TTL_S,
    LOG_RETENTION,
    SERVICE_NAME,
    STAGE_NAME,
    STAGE_THROTTLE_BURST,
    STAGE_THROTTLE_RATE_RPS,
    WAF_METRIC_NAME,
    WAF_RATE_LIMIT_PER_IP,
    WAF_RATE_WINDOW_S,
)
from infra.resources import (
    EDGE_MAX_AUTHORIZATION_BYTES,
    EDGE_MAX_BODY_BYTES,
    GATEWAY_RESPONSES,
    WAF_BODY_INSPECTION_LIMIT,
    WAF_BODY_TOO_LARGE,
    WAF_HEADER_TOO_LARGE,
    WAF_HEADERS_INSPECTION_BYTES,
    WAF_RATE_LIMITED,
    WAF_RESPONSES,
    GatewayResponse,
    WafResponse,
)
from payplat.routes import ROUTES, Function, Route

F = apigw.AccessLogField
# One JSON line per request. Never a body or a header value: those carry tokens.
_ACCESS_LOG_FIELDS = {
    "requestId": F.context_request_id(),
    "requestTime": F.context_request_time(),
    "ip": F.context_identity_source_ip(),
    "caller": F.context_identity_caller(),
    "userAgent": F.context_identity_user_agent(),
    "httpMethod": F.context_http_method(),
    "resourcePath": F.context_resource_path(),
    "protocol": F.context_protocol(),
    "status": F.context_status(),
    "responseLength": F.context_response_length(),
    "responseLatency": F.context_response_latency(),
    "errorType": F.context_error_response_type(),
    "authorizerStatus": F.context_authorizer_status(),
    "authorizerError": F.context_authorizer_error(),
    "authorizerLatency": F.context_authorizer_latency(),
    "principalId": F.context_authorizer_principal_id(),
    "integrationStatus": F.context_integration_status(),
    "integrationLatency": F.context_integration_latency(),
    "wafResponseCode": F.context_waf_response_code(),
    "xrayTraceId": F.context_xray_trace_id(),
}

_COGNITO_NOT_USED = (
    "payplat is its own OAuth 2.0 authorization server: a Lambda REQUEST authorizer validates "
    "its ES256 JWT access tokens and scopes, so there is no Cognito user pool to use"
)
# Why a route in the table is public (`scope=None`); a new public route needs a reason here.
_PUBLIC_ROUTE_REASONS = {
    "health": "Liveness probe for monitors; returns no data",
    "oauth_metadata": "RFC 8414 authorization server metadata is public by definition",
    "jwks": "RFC 7517 JWKS: public keys that anyone verifying tokens must fetch",
    "token": (
        "RFC 6749 token endpoint: the client authenticates with its credentials in the "
        "request, checked by the oauth function, before any token exists"
    ),
    "par": (
        "RFC 9126 pushed authorization request endpoint: the client authenticates with its "
        "credentials in the request, as at the token endpoint, checked by the oauth function"
    ),
    "authorize": (
        "RFC 6749 authorization endpoint: the account holder's browser reaches it before any "
        "token exists; the oauth function checks the client and redirect URI and shows its "
        "login page"
    ),
    "authorize_submit": (
        "The authorize page's login and consent form post: the account holder's password and a "
        "CSRF token bound to the authorization request, both checked by the oauth function"
    ),
    "introspect": (
        "RFC 7662 introspection: the calling client authenticates with its credentials in the "
        "request, checked by the oauth function; other clients' tokens read as inactive unless "
        "it holds clients:manage"
    ),
    "revoke": (
        "RFC 7009 revocation: the calling client authenticates with its credentials in the "
        "request, checked by the oauth function, and revokes only its own tokens"
    ),
    "get_registration": (
        "RFC 7592 client configuration endpoint: the registration access token is checked by "
        "the oauth function, not an API access token the authorizer could validate"
    ),
    "update_registration": (
        "RFC 7592 client configuration endpoint: the registration access token is checked by "
        "the oauth function, not an API access token the authorizer could validate"
    ),
    "delete_registration": (
        "RFC 7592 client configuration endpoint: the registration access token is checked by "
        "the oauth function, not an API access token the authorizer could validate"
    ),
    "rotate_secret": (
        "Client secret rotation on the RFC 7592 configuration endpoint: the registration "
        "access token is checked by the oauth function"
    ),
    "openapi": "The OpenAPI document partners read before they hold any credential",
    "docs": "The API reference page rendering the public OpenAPI document",
}


class Api(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.rest_api = self._build_rest_api()
        self._build_gateway_responses()
        self._build_waf()
        self._suppress_findings()
        # https://{id}.execute-api.{region}.{suffix}/{stage}, from tokens that do not depend
        # on the deployment, so functions can carry it in their env without a cycle.
        self.base_url = Fn.join(
            "",
            [
                "https://",
                self.rest_api.rest_api_id,
                ".execute-api.",
                Aws.REGION,
                ".",
                Aws.URL_SUFFIX,
                f"/{STAGE_NAME}",
            ],
        )

    def add_routes(
        self, handlers: Mapping[Function, lambda_.IFunction], authorizer: lambda_.IFunction
    ) -> None:
        """A method per route in `ROUTES`; protected ones share one REQUEST authorizer."""
        integrations = {
            function: apigw.LambdaIntegration(handler, allow_test_invoke=False)
            for function, handler in handlers.items()
        }
        request_authorizer = (
            self._build_authorizer(authorizer) if any(r.protected for r in ROUTES) else None
        )
        for route in ROUTES:
            if route.function not in integrations:
                raise ValueError(f"no function given for {route.function} ({route.name})")
            method = self.rest_api.root.resource_for_path(route.path).add_method(
                route.method,
                integrations[route.function],
                operation_name=route.name,
                authorization_type=(
                    apigw.AuthorizationType.CUSTOM
                    if route.protected
                    else apigw.AuthorizationType.NONE
                ),
                authorizer=request_authorizer if route.protected else None,
            )
            self._suppress_method_findings(method, route)

    def _build_rest_api(self) -> apigw.RestApi:
        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.RETAIN
        )
        return apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=SERVICE_NAME,
            description="payplat partner API: OAuth 2.0 and payments",
            endpoint_configuration=apigw.EndpointConfiguration(types=[apigw.EndpointType.REGIONAL]),
            # API Gateway can only write access and execution logs through the account's
            # CloudWatch role; CDK creates it and keeps it on stack deletion.
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(_ACCESS_LOG_FIELDS)),
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                # Execution logs with data trace would record request and response bodies:
                # access tokens, client secrets.
                data_trace_enabled=False,
                throttling_rate_limit=STAGE_THROTTLE_RATE_RPS,
                throttling_burst_limit=STAGE_THROTTLE_BURST,
            ),
        )

    def _build_authorizer(self, handler: lambda_.IFunction) -> apigw.RequestAuthorizer:
        # The authorizer's policy lists every route the token's scopes allow, so one cached
        # policy per token is right for every route.
        return apigw.RequestAuthorizer(
            self,
            "Authorizer",
            authorizer_name=f"{SERVICE_NAME}-jwt",
            handler=handler,
            identity_sources=[apigw.IdentitySource.header("Authorization")],
            results_cache_ttl=Duration.seconds(AUTHORIZER_CACHE_TTL_S),
        )

    def _build_gateway_responses(self) -> None:
        for response in GATEWAY_RESPONSES:
            self.rest_api.add_gateway_response(
                f"Response{_pascal(response.response_type)}",
                type=apigw.ResponseType.of(response.response_type),
                status_code=None if response.status is None else str(response.status),
                response_headers=_static_headers(response),
                templates={"application/json": response.body},
            )

    def _build_waf(self) -> None:
        # Rules run in priority order and a block ends evaluation: the per-IP rate counts every
        # request first, then the size limits answer 413 before the common rule set would
        # answer its own bare 403 for a large body.
        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(WAF_METRIC_NAME),
            custom_response_bodies={
                response.key: wafv2.CfnWebACL.CustomResponseBodyProperty(
                    content_type="APPLICATION_JSON", content=response.body
                )
                for response in WAF_RESPONSES
            },
            # The size of request body API Gateway forwards for inspection; the body limit
            # below must stay under it to be measured.
            association_config=wafv2.CfnWebACL.AssociationConfigProperty(
                request_body={
                    "API_GATEWAY": wafv2.CfnWebACL.RequestBodyAssociatedResourceTypeConfigProperty(
                        default_size_inspection_limit=WAF_BODY_INSPECTION_LIMIT
                    )
                }
            ),
            rules=[
                _blocking_rule(
                    "RateLimitPerIp",
                    priority=0,
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            aggregate_key_type="IP",
                            limit=WAF_RATE_LIMIT_PER_IP,
                            evaluation_window_sec=WAF_RATE_WINDOW_S,
                        )
                    ),
                    # A flood is answered like the API's own limiter: 429, not 403.
                    response=WAF_RATE_LIMITED,
                ),
                _blocking_rule(
                    "BodyTooLarge",
                    priority=1,
                    statement=_larger_than(
                        wafv2.CfnWebACL.FieldToMatchProperty(
                            # Past the inspection limit WAF cannot measure: count it as too large.
                            body=wafv2.CfnWebACL.BodyProperty(oversize_handling="MATCH")
                        ),
                        EDGE_MAX_BODY_BYTES,
                    ),
                    response=WAF_BODY_TOO_LARGE,
                ),
                _blocking_rule(
                    "HeadersTooLarge",
                    priority=2,
                    statement=wafv2.CfnWebACL.StatementProperty(
                        or_statement=wafv2.CfnWebACL.OrStatementProperty(
                            statements=[_authorization_too_large(), _headers_past_inspection()]
                        )
                    ),
                    response=WAF_HEADER_TOO_LARGE,
                ),
                # Its 8 KB body rule would refuse payments with full metadata (50 keys of
                # 500 characters); the BodyTooLarge rule above sets the limit instead.
                _managed_rule_group(
                    "AWSManagedRulesCommonRuleSet",
                    priority=3,
                    count_only=("SizeRestrictions_BODY",),
                ),
                _managed_rule_group("AWSManagedRulesKnownBadInputsRuleSet", priority=4),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.rest_api.deployment_stage.stage_arn,
            web_acl_arn=acl.attr_arn,
        )

    def _suppress_findings(self) -> None:
        NagSuppressions.add_resource_suppressions(
            self.rest_api,
            [
                NagPackSuppression(
                    id="AwsSolutions-APIG2",
                    reason=(
                        "Requests are validated in the functions (pydantic models), which "
                        "answer the documented RFC 6749/Stripe-style error bodies that "
                        "API Gateway's validator cannot produce"
                    ),
                )
            ],
        )
        NagSuppressions.add_resource_suppressions(
            self.rest_api.node.find_child("CloudWatchRole"),
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM4",
                    reason=(
                        "AmazonAPIGatewayPushToCloudWatchLogs is the AWS-documented policy for "
                        "the account-wide API Gateway logging role, which must serve any "
                        "API's log groups"
                    ),
                    applies_to=[
                        "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                        "AmazonAPIGatewayPushToCloudWatchLogs"
                    ],
                )
            ],
        )

    @staticmethod
    def _suppress_method_findings(method: apigw.Method, route: Route) -> None:
        suppressions = [NagPackSuppression(id="AwsSolutions-COG4", reason=_COGNITO_NOT_USED)]
        if not route.protected:
            if route.name not in _PUBLIC_ROUTE_REASONS:
                raise ValueError(f"public route {route.name} needs a reason in api.py")
            suppressions.append(
                NagPackSuppression(
                    id="AwsSolutions-APIG4", reason=_PUBLIC_ROUTE_REASONS[route.name]
                )
            )
        NagSuppressions.add_resource_suppressions(method, suppressions)


def _static_headers(response: GatewayResponse) -> dict[str, str]:
    """Header values as API Gateway static literals: `'value'` (double quotes are fine)."""
    for name, value in response.headers.items():
        if "'" in value:
            raise ValueError(f"{response.response_type} {name}: a ' cannot be in a literal")
    return {name: f"'{value}'" for name, value in response.headers.items()}


def _blocking_rule(
    name: str,
    *,
    priority: int,
    statement: wafv2.CfnWebACL.StatementProperty,
    response: WafResponse,
) -> wafv2.CfnWebACL.RuleProperty:
    """A rule that blocks with one of `WAF_RESPONSES`: its status, headers and JSON body."""
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        statement=statement,
        action=wafv2.CfnWebACL.RuleActionProperty(
            block=wafv2.CfnWebACL.BlockActionProperty(
                custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                    response_code=response.status,
                    custom_response_body_key=response.key,
                    response_headers=[
                        wafv2.CfnWebACL.CustomHTTPHeaderProperty(name=header, value=value)
                        for header, value in response.headers.items()
                    ],
                )
            )
        ),
        visibility_config=_visibility(name),
    )


def _larger_than(
    field_to_match: wafv2.CfnWebACL.FieldToMatchProperty, size_bytes: int
) -> wafv2.CfnWebACL.StatementProperty:
    return wafv2.CfnWebACL.StatementProperty(
        size_constraint_statement=wafv2.CfnWebACL.SizeConstraintStatementProperty(
            field_to_match=field_to_match,
            comparison_operator="GT",
            size=size_bytes,
            text_transformations=[
                wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")
            ],
        )
    )


def _authorization_too_large() -> wafv2.CfnWebACL.StatementProperty:
    # WAF wants a single header's name in lower case and matches it in any case.
    authorization = wafv2.CfnWebACL.FieldToMatchProperty(single_header={"Name": "authorization"})
    return _larger_than(authorization, EDGE_MAX_AUTHORIZATION_BYTES)


def _headers_past_inspection() -> wafv2.CfnWebACL.StatementProperty:
    """Matches exactly when the headers go past what WAF sees (where an Authorization header
    could hide unmeasured): what it does see can never be larger than that."""
    all_header_values = wafv2.CfnWebACL.FieldToMatchProperty(
        headers=wafv2.CfnWebACL.HeadersProperty(
            match_pattern=wafv2.CfnWebACL.HeaderMatchPatternProperty(all={}),
            match_scope="VALUE",
            oversize_handling="MATCH",
        )
    )
    return _larger_than(all_header_values, WAF_HEADERS_INSPECTION_BYTES)


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True,
        metric_name=metric_name,
        sampled_requests_enabled=True,
    )


def _managed_rule_group(
    name: str, *, priority: int, count_only: tuple[str, ...] = ()
) -> wafv2.CfnWebACL.RuleProperty:
    """An AWS managed rule group; rules in `count_only` only count (our own rule decides)."""
    overrides = [
        wafv2.CfnWebACL.RuleActionOverrideProperty(
            name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
        )
        for rule in count_only
    ]
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        statement=wafv2.CfnWebACL.StatementProperty(
            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                vendor_name="AWS", name=name, rule_action_overrides=overrides or None
            )
        ),
        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        visibility_config=_visibility(name),
    )


def _pascal(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.lower().split("_"))
