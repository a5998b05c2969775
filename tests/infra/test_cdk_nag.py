"""cdk-nag AwsSolutions: nothing unsuppressed, and every suppression explains itself."""

from __future__ import annotations

from aws_cdk.assertions import Annotations, Match

from payplat.routes import ROUTES
from tests.infra.synthesized import Json, Synthesized

XRAY_FINDING = "Resource::*"
TAGGED_KEYS_FINDING = "Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*"

# A new kind of suppression is a decision for review, not a side effect of a change.
REVIEWED_RULES = {
    "AwsSolutions-APIG2",  # request validation lives in the functions
    "AwsSolutions-APIG4",  # public routes (RFC 8414/7517 documents, token endpoint, health)
    "AwsSolutions-COG4",  # own OAuth server, Lambda authorizer instead of Cognito
    "AwsSolutions-IAM4",  # the account-wide API Gateway CloudWatch role
    "AwsSolutions-IAM5",  # X-Ray's resource "*", signing keys created after deployment
    "AwsSolutions-L1",  # python3.13 pinned by DESIGN
}


def _suppressions(resource: Json) -> list[Json]:
    rules: list[Json] = resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    return rules


def _format(messages: list[object]) -> list[str]:
    return [f"{m.id}: {m.entry.data}" for m in messages]  # type: ignore[attr-defined]


def test_no_unsuppressed_aws_solutions_errors(synth: Synthesized) -> None:
    # Given the stack's synthesis annotations
    annotations = Annotations.from_stack(synth.stack)

    # When the AwsSolutions errors are collected
    errors = annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*"))

    # Then there are none
    assert _format(errors) == []


def test_no_unsuppressed_aws_solutions_warnings(synth: Synthesized) -> None:
    # Given the stack's synthesis annotations
    annotations = Annotations.from_stack(synth.stack)

    # When the AwsSolutions warnings are collected
    warnings = annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*"))

    # Then there are none
    assert _format(warnings) == []


def test_every_suppression_has_a_reason_and_a_reviewed_rule(synth: Synthesized) -> None:
    # Given every suppression in the template metadata
    suppressions = [
        (logical_id, rule)
        for logical_id, resource in synth.resources.items()
        for rule in _suppressions(resource)
    ]

    # Then there are some, each with a written reason, each for a reviewed rule
    assert suppressions
    for logical_id, rule in suppressions:
        assert len(rule.get("reason", "").strip()) >= 10, (logical_id, rule)
        assert rule["id"] in REVIEWED_RULES, (logical_id, rule)


def test_only_public_routes_suppress_the_authorization_rule(synth: Synthesized) -> None:
    # Given the methods whose APIG4 (no authorization) finding is suppressed
    suppressed = {
        (method["Properties"]["HttpMethod"], logical_id)
        for logical_id, method in synth.of_type("AWS::ApiGateway::Method").items()
        if any(rule["id"] == "AwsSolutions-APIG4" for rule in _suppressions(method))
    }
    public = [route for route in ROUTES if not route.protected]

    # Then there is one per public route and every one of them has AuthorizationType NONE
    assert len(suppressed) == len(public)
    for _, logical_id in suppressed:
        assert synth.resources[logical_id]["Properties"]["AuthorizationType"] == "NONE"


def test_wildcard_resource_suppressions_name_exactly_what_they_allow(synth: Synthesized) -> None:
    # Given every IAM5 (wildcard permission) suppression, by the resource it sits on
    suppressed = [
        (logical_id, tuple(rule.get("applies_to", ())))
        for logical_id, resource in synth.resources.items()
        for rule in _suppressions(resource)
        if rule["id"] == "AwsSolutions-IAM5"
    ]
    oauth_role = synth.stack.functions.oauth.role
    oauth_policy = oauth_role.node.find_child("DefaultPolicy")

    # Then each names the one wildcard it allows (never the whole rule): X-Ray's "*", or every
    # KMS key of the account (narrowed by tag), and the latter only for the oauth role
    assert {applies_to for _, applies_to in suppressed} == {
        (XRAY_FINDING,),
        (TAGGED_KEYS_FINDING,),
    }
    assert {
        logical_id for logical_id, applies_to in suppressed if applies_to[0] != XRAY_FINDING
    } == {
        synth.logical_id(oauth_role),
        synth.logical_id(oauth_policy),
    }
