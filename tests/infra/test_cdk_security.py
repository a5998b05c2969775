"""Least privilege, encryption and the data plane: what a security reviewer checks first."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys
from typing import Any

import pytest

from infra.constructs.functions import PayplatFunction
from infra.constructs.names import (
    ACCESS_TOKEN_TTL_S,
    AUDIT_FORWARDER,
    AUDIT_SEALER,
    AUTHORIZER,
    EXPIRER,
    OAUTH,
    PAYMENTS,
    REFRESH_TOKEN_TTL_S,
    STAGE_NAME,
    WEBHOOK_DISPATCHER,
    FunctionSpec,
)
from infra.resources import (
    AUDIT,
    AUDIT_LOG_FILTER,
    AUDIT_SEALING_KEY,
    AUDIT_STREAM,
    CLIENTS,
    LEDGER,
    RATE_LIMITS,
    SIGNING_KEY,
    TABLES,
    TOKENS,
    USERS,
    WEBHOOKS,
    TableSpec,
)
from payplat.config import (
    AuthorizerSettings,
    Env,
    ForwarderSettings,
    OAuthSettings,
    PaymentsSettings,
    SealerSettings,
    from_mapping,
)
from payplat.oauth.dal.kms_signer import PURPOSE_TAG
from tests.infra.synthesized import Json, Synthesized

WRITE_ACTIONS = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
READ_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
}
FUNCTIONS = (
    AUTHORIZER,
    OAUTH,
    PAYMENTS,
    EXPIRER,
    AUDIT_FORWARDER,
    AUDIT_SEALER,
    WEBHOOK_DISPATCHER,
)
# Every function but the audit forwarder, which reads the ledger table's stream.
NO_STREAM_READERS = tuple(spec for spec in FUNCTIONS if spec is not AUDIT_FORWARDER)
SIGN_ACTIONS = {"kms:Sign", "kms:GetPublicKey"}
# Every KMS key of the stack's account and region, as the template spells it.
ANY_KEY_ARN: Json = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":kms:",
            {"Ref": "AWS::Region"},
            ":",
            {"Ref": "AWS::AccountId"},
            ":key/*",
        ],
    ]
}


def _function(synth: Synthesized, spec: FunctionSpec) -> PayplatFunction:
    return {fn.spec.name: fn for fn in synth.stack.functions.all}[spec.name]


def _statements(synth: Synthesized, spec: FunctionSpec) -> list[Json]:
    return synth.role_statements(synth.logical_id(_function(synth, spec).role))


def _actions(statement: Json) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _resources(statement: Json) -> list[Any]:
    resources = statement["Resource"]
    return resources if isinstance(resources, list) else [resources]


def _table_arn(synth: Synthesized, spec: TableSpec) -> Json:
    return {"Fn::GetAtt": [synth.logical_id(synth.stack.data.table(spec)), "Arn"]}


def _index_grants(synth: Synthesized, spec: FunctionSpec) -> dict[str, set[str]]:
    """Index ARN (as JSON) -> actions the function's role has on that index."""
    grants: dict[str, set[str]] = {}
    for statement in _statements(synth, spec):
        for resource in _resources(statement):
            if "/index/" in json.dumps(resource):
                grants.setdefault(json.dumps(resource), set()).update(_actions(statement))
    return grants


def _index_arn(synth: Synthesized, spec: TableSpec, name: str) -> str:
    return json.dumps({"Fn::Join": ["", [_table_arn(synth, spec), f"/index/{name}"]]})


def _env(synth: Synthesized, spec: FunctionSpec) -> Json:
    variables: Json = synth.properties(_function(synth, spec).function)["Environment"]["Variables"]
    return variables


def _as_deployed(env: Json) -> dict[str, str]:
    """The env as strings, CloudFormation references standing in for what they resolve to."""
    return {name: v if isinstance(v, str) else json.dumps(v) for name, v in env.items()}


def _is_tagged_keys_statement(statement: Json) -> bool:
    """The one statement that may name every key: Sign/GetPublicKey on token-signing keys."""
    tag_key, tag_value = PURPOSE_TAG
    return (
        statement["Effect"] == "Allow"
        and set(_actions(statement)) == SIGN_ACTIONS
        and _resources(statement) == [ANY_KEY_ARN]
        and statement.get("Condition")
        == {"StringEquals": {f"aws:ResourceTag/{tag_key}": tag_value}}
    )


def _dynamodb_grants(synth: Synthesized, spec: FunctionSpec) -> dict[str, set[str]]:
    """Table logical id -> DynamoDB actions the function's role has on the table itself."""
    grants: dict[str, set[str]] = {}
    for statement in _statements(synth, spec):
        actions = {a for a in _actions(statement) if a.startswith("dynamodb:")}
        for resource in _resources(statement):
            if actions and "Fn::GetAtt" in resource:
                grants.setdefault(resource["Fn::GetAtt"][0], set()).update(actions)
    return grants


# --- roles ---------------------------------------------------------------------------------


def test_each_function_has_its_own_role_without_managed_policies(synth: Synthesized) -> None:
    # Given the functions
    functions = synth.of_type("AWS::Lambda::Function").values()
    roles = [fn["Properties"]["Role"]["Fn::GetAtt"][0] for fn in functions]

    # Then there is one per spec, no two share a role and none carries an AWS managed policy
    assert len(roles) == len(set(roles)) == len(FUNCTIONS)
    for role in roles:
        assert not synth.resources[role]["Properties"].get("ManagedPolicyArns"), role


def test_authorizer_role_has_no_data_or_key_permissions(synth: Synthesized) -> None:
    # Given every statement of the authorizer's role
    statements = _statements(synth, AUTHORIZER)

    # Then it holds no DynamoDB and no KMS action, only its logs and X-Ray
    actions = {action for statement in statements for action in _actions(statement)}
    assert not {a for a in actions if a.split(":")[0] in {"dynamodb", "kms", "kinesis"}}
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }


def test_oauth_can_sign_with_the_signing_key_and_tagged_keys_only(synth: Synthesized) -> None:
    # Given the oauth role's KMS statements
    key_arn = {"Fn::GetAtt": [synth.logical_id(synth.stack.signing_key.key), "Arn"]}
    kms = [s for s in _statements(synth, OAUTH) if any(a.startswith("kms:") for a in _actions(s))]

    # Then there are two, each granting Sign and GetPublicKey and nothing else: one on the
    # deployed key, one on the keys `payplat keys rotate` creates, narrowed by their tag
    assert len(kms) == 2, kms
    [by_arn] = [s for s in kms if _resources(s) == [key_arn]]
    [by_tag] = [s for s in kms if s is not by_arn]
    assert set(_actions(by_arn)) == SIGN_ACTIONS
    assert "Condition" not in by_arn
    assert _is_tagged_keys_statement(by_tag), by_tag
    assert by_tag["Condition"] == {
        "StringEquals": {"aws:ResourceTag/payplat:purpose": "token-signing"}
    }


def test_only_oauth_may_use_tagged_keys(synth: Synthesized) -> None:
    # Given every function's statements
    tagged = {
        spec.name
        for spec in FUNCTIONS
        for statement in _statements(synth, spec)
        if "kms:" in json.dumps(statement.get("Action")) and _is_tagged_keys_statement(statement)
    }

    # Then the tag-scoped signing statement is oauth's alone
    assert tagged == {OAUTH.name}


def test_the_signing_key_carries_the_purpose_tag_rotated_keys_get(synth: Synthesized) -> None:
    # Given the deployed signing key
    tags = synth.properties(synth.stack.signing_key.key).get("Tags", [])

    # Then it is tagged as `payplat keys rotate` tags its keys, so one rule covers both
    tag_key, tag_value = PURPOSE_TAG
    assert {"Key": tag_key, "Value": tag_value} in tags


def test_payments_cannot_use_the_signing_key(synth: Synthesized) -> None:
    # Given the payments role
    actions = {a for s in _statements(synth, PAYMENTS) for a in _actions(s)}

    # Then it has no KMS action at all
    assert not {a for a in actions if a.startswith("kms:")}


def test_table_grants_are_exactly_what_each_function_needs(synth: Synthesized) -> None:
    # Given the DynamoDB grants of the data-using functions
    oauth = _dynamodb_grants(synth, OAUTH)
    payments = _dynamodb_grants(synth, PAYMENTS)
    expirer = _dynamodb_grants(synth, EXPIRER)

    def table(spec: TableSpec) -> str:
        return synth.logical_id(synth.stack.data.table(spec))

    # Then oauth reads and writes clients, tokens and its throttling buckets and only reads
    # users; no ledger item by key (its index grant is checked below)
    assert set(oauth) == {table(CLIENTS), table(USERS), table(TOKENS), table(RATE_LIMITS)}
    assert oauth[table(USERS)] == READ_ACTIONS
    for spec in (CLIENTS, TOKENS, RATE_LIMITS):
        assert oauth[table(spec)] >= READ_ACTIONS | WRITE_ACTIONS, spec.id
    # And payments reads clients, reads and writes the ledger, the rate-limit buckets and
    # the webhooks table (endpoints, events, redeliveries)
    assert set(payments) == {table(CLIENTS), table(LEDGER), table(RATE_LIMITS), table(WEBHOOKS)}
    assert not payments[table(CLIENTS)] & WRITE_ACTIONS
    assert payments[table(LEDGER)] >= WRITE_ACTIONS
    assert payments[table(RATE_LIMITS)] >= WRITE_ACTIONS
    assert payments[table(WEBHOOKS)] >= READ_ACTIONS | WRITE_ACTIONS
    # And the expirer reads and writes the ledger and nothing else (no clients, no buckets)
    assert set(expirer) == {table(LEDGER)}
    assert expirer[table(LEDGER)] >= {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
    # And the sealer reads and advances the audit chain's heads, never deletes or lists them
    # (the forwarder's stream-only grants are checked in test_cdk_audit.py)
    assert _dynamodb_grants(synth, AUDIT_SEALER) == {
        table(AUDIT): {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
    }


def test_no_function_policy_has_a_wildcard_outside_xray(synth: Synthesized) -> None:
    # Given every statement of every function role
    for spec in FUNCTIONS:
        for statement in _statements(synth, spec):
            # Then "*" resources are only X-Ray's and ListStreams' (neither has resource-level
            # permissions; ListStreams only for the forwarder's stream trigger), the
            # tag-conditioned statement for signing keys created after deployment, and the
            # archive writers' own object prefixes
            if "*" in _resources(statement) or "*" in json.dumps(statement["Resource"]):
                assert (
                    all(_is_resource_free(a, spec) for a in _actions(statement))
                    or _is_tagged_keys_statement(statement)
                    or _actions(statement) == ["s3:PutObject"]
                ), statement
            # And no action is a wildcard
            assert not [a for a in _actions(statement) if "*" in a], statement


def test_payments_queries_only_the_owner_index_by_name(synth: Synthesized) -> None:
    # Given the ledger indexes payments' role names
    indexes = _index_grants(synth, PAYMENTS)

    # Then it may only Query by_owner (tenant listings), named by ARN; the expiry index is not
    # its business
    assert indexes == {_index_arn(synth, LEDGER, "by_owner"): {"dynamodb:Query"}}


def test_oauth_reads_the_ledger_only_through_the_owner_index(synth: Synthesized) -> None:
    # Given the oauth role (the consent page lists the account holder's accounts)
    indexes = _index_grants(synth, OAUTH)
    ledger = synth.logical_id(synth.stack.data.table(LEDGER))

    # Then it may only Query by_owner, named by ARN, and touch no ledger item by key
    assert indexes == {_index_arn(synth, LEDGER, "by_owner"): {"dynamodb:Query"}}
    assert ledger not in _dynamodb_grants(synth, OAUTH)
    assert ledger not in json.dumps(
        [s for s in _statements(synth, OAUTH) if "/index/" not in json.dumps(s["Resource"])]
    )


def _is_resource_free(action: str, spec: FunctionSpec) -> bool:
    """An action that takes no resource-level permission: X-Ray's, and the forwarder's
    dynamodb:ListStreams (Lambda checks it when the stream's event source mapping is made)."""
    return action.startswith("xray:") or (
        spec is AUDIT_FORWARDER and action == "dynamodb:ListStreams"
    )


@pytest.mark.parametrize("spec", NO_STREAM_READERS, ids=lambda spec: spec.name)
def test_no_function_may_scan_or_read_streams(synth: Synthesized, spec: FunctionSpec) -> None:
    # Given every action of the function's role
    actions = {a for s in _statements(synth, spec) for a in _actions(s)}

    # Then none reads a whole table or a table's stream (scans are the operator CLI's)
    assert not {a for a in actions if a.startswith(("dynamodb:Scan", "dynamodb:GetRecords"))}
    assert not {a for a in actions if a.startswith("dynamodb:") and "Stream" in a}


def test_expirer_queries_the_expiry_index_by_name_and_moves_ledger_items(
    synth: Synthesized,
) -> None:
    # Given the expirer's role
    indexes = _index_grants(synth, EXPIRER)
    actions = {a for s in _statements(synth, EXPIRER) for a in _actions(s)}
    ledger = synth.logical_id(synth.stack.data.table(LEDGER))

    # Then it may only Query by_expiry, named by ARN (not index/*)
    assert indexes == {_index_arn(synth, LEDGER, "by_expiry"): {"dynamodb:Query"}}
    # And it may read, put and update ledger items (the release is one TransactWriteItems)
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"} <= _dynamodb_grants(
        synth, EXPIRER
    )[ledger]
    # And it holds no key, no stream and no scan
    assert not {a for a in actions if a.split(":")[0] in {"kms", "kinesis"}}
    assert not {a for a in actions if a.startswith(("dynamodb:Scan", "dynamodb:GetRecords"))}


def test_no_grant_names_an_index_its_table_does_not_have(synth: Synthesized) -> None:
    # Given every index ARN in every function role
    named = {arn for spec in FUNCTIONS for arn in _index_grants(synth, spec)}

    # Then each is an index of the ledger spec, by name
    assert named <= {_index_arn(synth, LEDGER, index.name) for index in LEDGER.indexes}


# --- data ----------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", TABLES, ids=lambda spec: spec.id)
def test_every_table_is_encrypted_recoverable_and_shaped_by_its_spec(
    synth: Synthesized, spec: TableSpec
) -> None:
    # Given the table built for the spec
    resource = synth.resources[synth.logical_id(synth.stack.data.table(spec))]
    properties = resource["Properties"]

    # Then it is encrypted with KMS, has PITR, is on demand and keeps its data on delete
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert resource["DeletionPolicy"] == "Retain"
    assert "TableName" not in properties  # CloudFormation names it; functions get it by env
    # And keys, TTL, stream and indexes are the spec's
    keys = {k["AttributeName"]: k["KeyType"] for k in properties["KeySchema"]}
    expected = {spec.partition_key: "HASH"} | ({spec.sort_key: "RANGE"} if spec.sort_key else {})
    assert keys == expected
    assert all(a["AttributeType"] == "S" for a in properties["AttributeDefinitions"])
    ttl = properties.get("TimeToLiveSpecification")
    assert (ttl["AttributeName"] if ttl else None) == spec.ttl_attribute
    stream = properties.get("StreamSpecification", {}).get("StreamViewType")
    assert stream == ("NEW_AND_OLD_IMAGES" if spec.stream else None)
    indexes = {i["IndexName"]: i for i in properties.get("GlobalSecondaryIndexes", [])}
    assert set(indexes) == {index.name for index in spec.indexes}
    assert all(i["Projection"]["ProjectionType"] == "ALL" for i in indexes.values())


def test_money_and_partner_tables_have_deletion_protection(synth: Synthesized) -> None:
    # Given the tables by spec
    def protected(spec: TableSpec) -> bool:
        properties = synth.properties(synth.stack.data.table(spec))
        return properties.get("DeletionProtectionEnabled") is True

    # Then the ledger, the clients, the account holders, the audit chain's heads and the
    # partners' webhook endpoints cannot be deleted by accident
    assert protected(LEDGER)
    assert protected(CLIENTS)
    assert protected(USERS)
    assert protected(AUDIT)
    assert protected(WEBHOOKS)


@pytest.mark.parametrize(
    ("construct", "spec"),
    [("signing_key", SIGNING_KEY), ("sealing_key", AUDIT_SEALING_KEY)],
    ids=["token-signing", "audit-sealing"],
)
def test_signing_keys_are_retained_p256_signing_keys_with_their_alias(
    synth: Synthesized, construct: str, spec: Any
) -> None:
    # Given the key and the aliases
    key_id = synth.logical_id(getattr(synth.stack, construct).key)
    key = synth.resources[key_id]
    aliases = {
        alias["Properties"]["AliasName"]: alias["Properties"]
        for alias in synth.of_type("AWS::KMS::Alias").values()
    }

    # Then it is ECC_NIST_P256 for SIGN_VERIFY, kept on stack delete, and carries its alias
    assert key["Properties"]["KeySpec"] == "ECC_NIST_P256" == spec.key_spec
    assert key["Properties"]["KeyUsage"] == "SIGN_VERIFY" == spec.key_usage
    assert key["DeletionPolicy"] == "Retain"
    assert set(aliases) == {SIGNING_KEY.alias, AUDIT_SEALING_KEY.alias}
    assert key_id in json.dumps(aliases[spec.alias]["TargetKeyId"])


# --- audit ---------------------------------------------------------------------------------


def test_audit_stream_is_encrypted_and_keeps_the_spec_retention(synth: Synthesized) -> None:
    # Given the audit stream
    [stream] = synth.of_type("AWS::Kinesis::Stream").values()
    properties = stream["Properties"]

    # Then it is KMS encrypted at rest and retains records as long as the spec says
    assert properties["StreamEncryption"]["EncryptionType"] == "KMS"
    assert properties["StreamEncryption"]["KeyId"]
    assert properties["RetentionPeriodHours"] == AUDIT_STREAM.retention_hours
    assert properties["ShardCount"] == AUDIT_STREAM.shards


def test_each_audited_function_log_group_feeds_the_audit_stream(synth: Synthesized) -> None:
    # Given the subscription filters and the log groups of the functions that write audit lines
    filters = list(synth.of_type("AWS::Logs::SubscriptionFilter").values())
    functions = synth.stack.functions
    log_groups = {synth.logical_id(fn.log_group) for fn in functions.audited}
    stream_arn = {"Fn::GetAtt": [synth.logical_id(synth.stack.audit.stream), "Arn"]}

    # Then there is exactly one per such log group, with the audit pattern, to the stream
    assert sorted(f["Properties"]["LogGroupName"]["Ref"] for f in filters) == sorted(log_groups)
    # And none on the functions that read the stream or put on it themselves: the forwarder
    # puts on the stream itself, and a subscription on the sealer or the webhook dispatcher
    # would feed the stream it reads
    assert set(functions.all) - set(functions.audited) == {
        functions.audit_forwarder,
        functions.audit_sealer,
        functions.webhook_dispatcher,
    }
    for subscription in filters:
        assert subscription["Properties"]["FilterPattern"] == AUDIT_LOG_FILTER
        assert subscription["Properties"]["DestinationArn"] == stream_arn
        assert "RoleArn" in subscription["Properties"]


def test_logs_role_can_only_put_records_on_the_audit_stream(synth: Synthesized) -> None:
    # Given the role CloudWatch Logs assumes for the subscriptions
    [subscription, *_] = synth.of_type("AWS::Logs::SubscriptionFilter").values()
    role_id = subscription["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    trust = synth.resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    stream_arn = {"Fn::GetAtt": [synth.logical_id(synth.stack.audit.stream), "Arn"]}

    # Then only CloudWatch Logs of this account may assume it
    assert [s["Principal"] for s in trust] == [{"Service": "logs.amazonaws.com"}]
    assert "aws:SourceArn" in json.dumps(trust)
    # And it writes to the stream and nothing else (PassRole is on itself)
    for statement in synth.role_statements(role_id):
        if statement["Action"] == "iam:PassRole":
            assert statement["Resource"] == {"Fn::GetAtt": [role_id, "Arn"]}
        else:
            assert {a.split(":")[0] for a in _actions(statement)} == {"kinesis"}
            assert _resources(statement) == [stream_arn]


# --- functions -----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_functions_run_python313_arm64_traced_with_the_layer(
    synth: Synthesized, spec: FunctionSpec
) -> None:
    # Given the function built for the spec
    fn = _function(synth, spec)
    properties = synth.properties(fn.function)
    layer_id = synth.logical_id(synth.stack.layer.layer)

    # Then it runs the pinned runtime on arm64 with the core layer, traced, sized per spec
    assert properties["Runtime"] == "python3.13"
    assert properties["Architectures"] == ["arm64"]
    assert properties["Handler"] == "handler.lambda_handler"
    assert properties["Layers"] == [{"Ref": layer_id}]
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert properties["MemorySize"] == spec.memory_mb
    assert properties["Timeout"] == spec.timeout_s
    # And it logs to its own retained log group
    log_group_id = synth.logical_id(fn.log_group)
    assert properties["LoggingConfig"]["LogGroup"] == {"Ref": log_group_id}
    assert synth.resources[log_group_id]["DeletionPolicy"] == "Retain"
    assert synth.resources[log_group_id]["Properties"]["RetentionInDays"] >= 365
    env = properties["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "payplat"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Payplat"


def test_authorizer_logs_in_lambdas_json_format_at_info(synth: Synthesized) -> None:
    # Given the authorizer's logging config (it logs through the standard library only)
    logging_config = synth.properties(synth.stack.functions.authorizer.function)["LoggingConfig"]

    # Then Lambda writes its log records as JSON and drops those below INFO
    assert logging_config["LogFormat"] == "JSON"
    assert logging_config["ApplicationLogLevel"] == "INFO"


@pytest.mark.parametrize(
    "spec",
    [OAUTH, PAYMENTS, EXPIRER, AUDIT_FORWARDER, AUDIT_SEALER, WEBHOOK_DISPATCHER],
    ids=lambda spec: spec.name,
)
def test_powertools_functions_keep_lambdas_text_format(
    synth: Synthesized, spec: FunctionSpec
) -> None:
    # Given a function whose Powertools logger writes JSON lines itself
    logging_config = synth.properties(_function(synth, spec).function)["LoggingConfig"]

    # Then Lambda passes its lines through as they are, filtered by Powertools' LOG_LEVEL
    assert logging_config.get("LogFormat", "Text") == "Text"
    assert "ApplicationLogLevel" not in logging_config


def test_layer_is_for_python313_arm64(synth: Synthesized) -> None:
    # Given the core layer
    properties = synth.properties(synth.stack.layer.layer)

    # Then functions of the pinned runtime and architecture can use it
    assert properties["CompatibleRuntimes"] == ["python3.13"]
    assert properties["CompatibleArchitectures"] == ["arm64"]


def test_token_settings_are_built_from_the_api_id_not_the_stage(synth: Synthesized) -> None:
    # Given the env of the authorizer and of oauth
    stage_and_deployment = set(synth.of_type("AWS::ApiGateway::Stage")) | set(
        synth.of_type("AWS::ApiGateway::Deployment")
    )
    rest_api = {"Ref": synth.logical_id(synth.stack.api.rest_api)}

    for spec in (AUTHORIZER, OAUTH):
        env = synth.properties(_function(synth, spec).function)["Environment"]["Variables"]
        # Then issuer, audience (and the JWKS URI) are https://{api}.../live[/suffix]
        issuer = env[Env.ISSUER]["Fn::Join"][1]
        assert issuer[0] == "https://"
        assert rest_api in issuer
        assert issuer[-1] == f"/{STAGE_NAME}"
        assert env[Env.AUDIENCE]["Fn::Join"][1][-1] == f"/{STAGE_NAME}/v1"
        # And nothing in the env references the stage or deployment (a dependency cycle)
        assert not any(logical_id in json.dumps(env) for logical_id in stage_and_deployment)
    authorizer_env = synth.properties(synth.stack.functions.authorizer.function)["Environment"]
    jwks = authorizer_env["Variables"][Env.JWKS_URI]["Fn::Join"][1]
    assert jwks[-1] == f"/{STAGE_NAME}/.well-known/jwks.json"


def test_functions_get_the_names_of_exactly_their_tables(synth: Synthesized) -> None:
    # Given each function's env
    def env(spec: FunctionSpec) -> Json:
        return _env(synth, spec)

    def table_ref(spec: TableSpec) -> Json:
        return {"Ref": synth.logical_id(synth.stack.data.table(spec))}

    # Then each table env var names the table built for that spec, and only needed ones exist
    assert not {t.env for t in TABLES} & set(env(AUTHORIZER))
    assert {k: v for k, v in env(OAUTH).items() if k in {t.env for t in TABLES}} == {
        CLIENTS.env: table_ref(CLIENTS),
        USERS.env: table_ref(USERS),
        TOKENS.env: table_ref(TOKENS),
        RATE_LIMITS.env: table_ref(RATE_LIMITS),
        LEDGER.env: table_ref(LEDGER),
    }
    assert {k: v for k, v in env(PAYMENTS).items() if k in {t.env for t in TABLES}} == {
        CLIENTS.env: table_ref(CLIENTS),
        LEDGER.env: table_ref(LEDGER),
        RATE_LIMITS.env: table_ref(RATE_LIMITS),
        WEBHOOKS.env: table_ref(WEBHOOKS),
    }
    assert {k: v for k, v in env(WEBHOOK_DISPATCHER).items() if k in {t.env for t in TABLES}} == {
        LEDGER.env: table_ref(LEDGER),
        WEBHOOKS.env: table_ref(WEBHOOKS),
    }
    assert {k: v for k, v in env(EXPIRER).items() if k in {t.env for t in TABLES}} == {
        LEDGER.env: table_ref(LEDGER),
    }
    # And the forwarder needs no table name (it reads the ledger's stream), the sealer only
    # the audit chain's
    assert not {t.env for t in TABLES} & set(env(AUDIT_FORWARDER))
    assert {k: v for k, v in env(AUDIT_SEALER).items() if k in {t.env for t in TABLES}} == {
        AUDIT.env: table_ref(AUDIT),
    }
    assert env(OAUTH)[Env.SIGNING_KEY_ID] == {
        "Fn::GetAtt": [synth.logical_id(synth.stack.signing_key.key), "Arn"]
    }
    assert env(OAUTH)[Env.ACCESS_TOKEN_TTL_S] == "600"
    assert env(OAUTH)[Env.REFRESH_TOKEN_TTL_S] == str(14 * 86_400)


def test_oauth_settings_load_from_the_deployed_env(synth: Synthesized) -> None:
    # Given the oauth function's env as deployed (references stand in for their values)
    env = _env(synth, OAUTH)

    # When the function's settings are read from it, as its cold start does
    settings = from_mapping(OAuthSettings, _as_deployed(env))

    # Then every table is the one built for its spec, the key is the deployed key, the token
    # lifetimes are the stack's, and local mode (loopback http redirect URIs) is off
    def ref(spec: TableSpec) -> str:
        return json.dumps({"Ref": synth.logical_id(synth.stack.data.table(spec))})

    assert (
        settings.clients_table,
        settings.users_table,
        settings.tokens_table,
        settings.rate_limits_table,
        settings.ledger_table,
    ) == (ref(CLIENTS), ref(USERS), ref(TOKENS), ref(RATE_LIMITS), ref(LEDGER))
    key_arn = {"Fn::GetAtt": [synth.logical_id(synth.stack.signing_key.key), "Arn"]}
    assert settings.signing_key_id == json.dumps(key_arn)
    assert settings.access_token_ttl_s == ACCESS_TOKEN_TTL_S
    assert settings.refresh_token_ttl_s == REFRESH_TOKEN_TTL_S
    assert settings.local == ""


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_no_function_runs_in_local_mode(synth: Synthesized, spec: FunctionSpec) -> None:
    # Given a deployed function's env
    env = _env(synth, spec)

    # Then it never turns on local mode (it would accept http loopback redirect URIs)
    assert Env.LOCAL_MODE not in env


def _cold_start(spec: FunctionSpec, env: Json, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Import the function's handler as Lambda would (a top-level `handler` module from its
    code folder) with the deployed env, CloudFormation references standing in as strings."""
    for name in [name for name in os.environ if name.startswith("PAYPLAT_")]:
        monkeypatch.delenv(name)
    for name, value in _as_deployed(env).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # Lambda sets it
    module_spec = importlib.util.spec_from_file_location(
        f"handler_{spec.name}", spec.code_dir / "handler.py"
    )
    assert module_spec is not None
    assert module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    monkeypatch.setitem(sys.modules, module_spec.name, module)
    module_spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("spec", "settings"),
    [
        (AUTHORIZER, AuthorizerSettings),
        (OAUTH, OAuthSettings),
        (PAYMENTS, PaymentsSettings),
        # Its settings class lives in its handler, which loads it at import (its cold start)
        (EXPIRER, "ExpirerSettings"),
        (AUDIT_FORWARDER, ForwarderSettings),
        (AUDIT_SEALER, SealerSettings),
    ],
    ids=lambda value: getattr(value, "name", ""),
)
def test_every_setting_a_function_requires_is_in_its_env(
    synth: Synthesized, spec: FunctionSpec, settings: type | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the deployed env and the settings class the function loads at cold start
    variables = synth.properties(_function(synth, spec).function)["Environment"]["Variables"]
    if isinstance(settings, str):
        # (a missing variable fails this import exactly as it would fail the cold start)
        settings = getattr(_cold_start(spec, variables, monkeypatch), settings)
    assert isinstance(settings, type)
    required = {
        field.metadata["env"]
        for field in dataclasses.fields(settings)
        if field.default is dataclasses.MISSING
    }
    # Then the deployed env sets every one of them (a missing one fails every cold start)
    assert required
    assert required <= set(variables)
