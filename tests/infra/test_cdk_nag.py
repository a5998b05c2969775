"""cdk-nag AwsSolutions: nothing unsuppressed, and every suppression explains itself."""

from __future__ import annotations

from aws_cdk.assertions import Annotations, Match
from constructs import Construct

from infra.constructs.names import ARCHIVE_ERRORS_PREFIX
from infra.resources import AUDIT_ARCHIVE
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
    # X-Ray's and dynamodb:ListStreams' resource "*", signing keys created after deployment,
    # the audit archive's writers each on their own object prefix
    "AwsSolutions-IAM5",
    "AwsSolutions-KDF1",  # Firehose SSE exists only for Direct PUT; its source is encrypted
    "AwsSolutions-L1",  # python3.13 pinned by DESIGN
    "AwsSolutions-SQS3",  # the audit DLQs are themselves dead-letter queues
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
    functions = synth.stack.functions
    archive = synth.stack.archive
    events, errors, seals = (
        archive.prefix_finding(prefix)
        for prefix in (
            AUDIT_ARCHIVE.events_prefix,
            ARCHIVE_ERRORS_PREFIX,
            AUDIT_ARCHIVE.seals_prefix,
        )
    )

    def role_and_policy(role: Construct) -> set[str]:
        return {synth.logical_id(role), synth.logical_id(role.node.find_child("DefaultPolicy"))}

    # Then each names the wildcards it allows (never the whole rule): X-Ray's "*" (and
    # ListStreams'), every KMS key of the account (narrowed by tag), or an archive prefix
    assert {applies_to for _, applies_to in suppressed} == {
        (XRAY_FINDING,),
        (TAGGED_KEYS_FINDING,),
        (events, errors),
        (seals,),
    }

    def holders(applies_to: tuple[str, ...]) -> set[str]:
        return {logical_id for logical_id, named in suppressed if named == applies_to}

    # And the tag-wide key statement is the oauth role's alone, the events and errors prefixes
    # Firehose's, the seals prefix the sealer's
    assert holders((TAGGED_KEYS_FINDING,)) == role_and_policy(functions.oauth.role)
    assert holders((events, errors)) == {
        synth.logical_id(archive.node.find_child("DeliveryPolicy"))
    }
    assert holders((seals,)) == role_and_policy(functions.audit_sealer.role)


def test_list_streams_is_the_only_other_action_on_every_resource(synth: Synthesized) -> None:
    # Given every function role's statements on resource "*"
    wildcard_actions = {
        fn.spec.name: {
            action
            for statement in synth.role_statements(synth.logical_id(fn.role))
            if statement["Resource"] == "*"
            for action in _as_list(statement["Action"])
        }
        for fn in synth.stack.functions.all
    }

    # Then they are X-Ray's, and the forwarder's dynamodb:ListStreams (its stream trigger's)
    xray = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    forwarder = synth.stack.functions.audit_forwarder.spec.name
    for name, actions in wildcard_actions.items():
        assert actions == (xray | {"dynamodb:ListStreams"} if name == forwarder else xray), name


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]
