"""The audit trail as deployed: the Object Lock archive and Firehose into it, the sealing key,
the two stream triggers with their DLQs, and exactly what the forwarder and sealer may do."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.constructs.functions import PayplatFunction
from infra.constructs.names import (
    ARCHIVE_BUFFER_INTERVAL_S,
    ARCHIVE_BUFFER_SIZE_MIB,
    ARCHIVE_ERRORS_PREFIX,
    AUDIT_DLQ_RETENTION_DAYS,
    AUDIT_SEALER,
    AUDITED_LEDGER_CHANGES,
    FORWARDER_BATCH_SIZE,
    SEALER_BATCH_SIZE,
)
from infra.resources import AUDIT, AUDIT_ARCHIVE, AUDIT_SEALING_KEY, AUDIT_STREAM, LEDGER
from tests.infra.synthesized import Json, Synthesized

# (action, resource as JSON) pairs: the unit a least-privilege test compares.
Grant = tuple[str, str]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _grants(statements: list[Json]) -> set[Grant]:
    """Every (action, resource) an Allow statement list gives, conditions dropped."""
    return {
        (action, json.dumps(resource, sort_keys=True))
        for statement in statements
        if statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    }


def _pairs(actions: set[str] | tuple[str, ...], resource: Any) -> set[Grant]:
    return {(action, json.dumps(resource, sort_keys=True)) for action in actions}


def _arn(synth: Synthesized, construct: Any, attribute: str = "Arn") -> Json:
    return {"Fn::GetAtt": [synth.logical_id(construct), attribute]}


def _objects(synth: Synthesized, prefix: str) -> Json:
    return {"Fn::Join": ["", [_arn(synth, synth.stack.archive.bucket), f"/{prefix}*"]]}


def _role_statements(synth: Synthesized, function: PayplatFunction) -> list[Json]:
    return synth.role_statements(synth.logical_id(function.role))


def _mapping(synth: Synthesized, function: PayplatFunction) -> Json:
    [mapping] = [
        resource["Properties"]
        for resource in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if resource["Properties"]["FunctionName"] == {"Ref": synth.logical_id(function.function)}
    ]
    return mapping


def _matches(pattern: Any, value: Any) -> bool:
    """Lambda event filtering for the pattern forms payplat uses: nested objects, and a list of
    alternatives that are exact strings or `{"prefix": ...}`."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            key in value and _matches(sub, value[key]) for key, sub in pattern.items()
        )
    return any(
        value == alternative
        if isinstance(alternative, str)
        else isinstance(value, str) and value.startswith(alternative["prefix"])
        for alternative in pattern
    )


def _stream_record(sort_key: str) -> Json:
    """A DynamoDB stream record of a ledger item (the part a filter sees)."""
    return {
        "eventName": "MODIFY",
        "dynamodb": {"Keys": {"pk": {"S": "PAYMENT#pay_1"}, LEDGER.sort_key: {"S": sort_key}}},
    }


# --- the archive ---------------------------------------------------------------------------


def test_archive_is_locked_in_compliance_mode_versioned_and_kms_encrypted(
    synth: Synthesized,
) -> None:
    # Given the archive bucket and its key
    archive = synth.stack.archive
    bucket = synth.resources[synth.logical_id(archive.bucket)]
    properties = bucket["Properties"]
    key = synth.resources[synth.logical_id(archive.key)]

    # Then every object version is locked in compliance mode for the spec's retention
    assert properties["ObjectLockEnabled"] is True
    assert properties["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": AUDIT_ARCHIVE.retention_days}},
    }
    assert AUDIT_ARCHIVE.retention_days >= 365  # PCI DSS 10.5.1: at least 12 months
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    # And objects are encrypted with the archive's own rotating key (bucket keys on)
    [rule] = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": _arn(synth, archive.key),
    }
    assert rule["BucketKeyEnabled"] is True
    assert key["Properties"]["EnableKeyRotation"] is True
    # And nothing is public, and the bucket, its key and its policy outlive the stack
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(properties["PublicAccessBlockConfiguration"]) == 4
    assert bucket["DeletionPolicy"] == key["DeletionPolicy"] == "Retain"
    assert synth.resources[synth.logical_id(archive.bucket.policy)]["DeletionPolicy"] == "Retain"


def test_archive_access_is_logged_to_its_own_bucket(synth: Synthesized) -> None:
    # Given the archive and the access-log bucket
    archive = synth.stack.archive
    logging = synth.properties(archive.bucket)["LoggingConfiguration"]
    access_logs = synth.properties(archive.access_logs)
    [policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.of_type("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": synth.logical_id(archive.access_logs)}
    ]

    # Then the archive's server access logs go there, under the archive's prefix
    assert logging["DestinationBucketName"] == {"Ref": synth.logical_id(archive.access_logs)}
    assert logging["LogFilePrefix"] == f"{AUDIT_ARCHIVE.id}/"
    # And that bucket is encrypted (SSE-S3: all server access logging accepts), private,
    # expires its logs, and takes log deliveries only for the archive, only over TLS
    [rule] = access_logs["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert set(access_logs["PublicAccessBlockConfiguration"].values()) == {True}
    [lifecycle] = access_logs["LifecycleConfiguration"]["Rules"]
    assert lifecycle["ExpirationInDays"] >= AUDIT_ARCHIVE.retention_days
    [delivery] = [s for s in policy if s["Effect"] == "Allow"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Condition"]["ArnLike"]["aws:SourceArn"] == _arn(synth, archive.bucket)
    assert any(s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for s in policy)


def test_archive_policy_denies_deleting_to_everyone_and_allows_nothing(
    synth: Synthesized,
) -> None:
    # Given the archive's bucket policy
    archive = synth.stack.archive
    statements = synth.properties(archive.bucket.policy)["PolicyDocument"]["Statement"]
    bucket_arn = _arn(synth, archive.bucket)
    every_object = {"Fn::Join": ["", [bucket_arn, "/*"]]}

    # Then one statement denies every principal deleting objects, versions or the bucket
    [deny] = [s for s in statements if s.get("Sid") == "DenyDeletingTheAuditTrail"]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == {"AWS": "*"}
    assert "Condition" not in deny
    assert set(deny["Action"]) >= {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:DeleteBucket"}
    assert deny["Resource"] == [bucket_arn, every_object]
    # And another refuses plain HTTP; the policy grants nothing (writers hold IAM grants)
    assert any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    assert all(s["Effect"] == "Deny" for s in statements)
    # And it does not deny policy or configuration changes: CloudFormation must still deploy
    assert not {a for a in deny["Action"] if a.startswith("s3:Put")}


def test_firehose_copies_the_audit_stream_into_the_events_prefix_as_gzip_json_lines(
    synth: Synthesized,
) -> None:
    # Given the one delivery stream
    [(delivery_id, delivery)] = synth.of_type("AWS::KinesisFirehose::DeliveryStream").items()
    properties = delivery["Properties"]
    archive = synth.stack.archive
    destination = properties["ExtendedS3DestinationConfiguration"]
    role = _arn(synth, archive.delivery_role)

    # Then it reads the audit Kinesis stream with its own role
    assert properties["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert properties["KinesisStreamSourceConfiguration"] == {
        "KinesisStreamARN": _arn(synth, synth.stack.audit.stream),
        "RoleARN": role,
    }
    # And writes the archive under events/<hour>/ (failures under errors/<type>/<hour>/)
    assert destination["BucketARN"] == _arn(synth, archive.bucket)
    assert destination["RoleARN"] == role
    assert destination["Prefix"] == f"{AUDIT_ARCHIVE.events_prefix}!{{timestamp:yyyy/MM/dd/HH}}/"
    assert destination["ErrorOutputPrefix"].startswith(ARCHIVE_ERRORS_PREFIX)
    assert "!{firehose:error-output-type}" in destination["ErrorOutputPrefix"]
    # And gzips a minute (or 5 MiB) of records a line each, encrypted with the archive key
    assert destination["CompressionFormat"] == "GZIP"
    assert destination["BufferingHints"] == {
        "IntervalInSeconds": ARCHIVE_BUFFER_INTERVAL_S,
        "SizeInMBs": ARCHIVE_BUFFER_SIZE_MIB,
    }
    assert destination["ProcessingConfiguration"] == {
        "Enabled": True,
        "Processors": [
            {
                "Type": "Decompression",
                "Parameters": [{"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}],
            },
            {
                "Type": "CloudWatchLogProcessing",
                "Parameters": [
                    {"ParameterName": "DataMessageExtraction", "ParameterValue": "true"}
                ],
            },
            {"Type": "AppendDelimiterToRecord"},
        ],
    }
    assert destination["EncryptionConfiguration"] == {
        "KMSEncryptionConfig": {"AWSKMSKeyARN": _arn(synth, archive.key)}
    }
    # And logs its delivery errors to its own log group
    logging = destination["CloudWatchLoggingOptions"]
    assert logging["Enabled"] is True
    assert logging["LogGroupName"] == {"Ref": synth.logical_id(archive.delivery_log_group)}
    # And is created only once its role may read the stream (Firehose checks at creation)
    policy = synth.logical_id(archive.node.find_child("DeliveryPolicy"))
    assert policy in delivery["DependsOn"], delivery_id


def test_firehose_role_reads_the_stream_and_only_adds_objects(synth: Synthesized) -> None:
    # Given the delivery role: its trust and every statement of its policies
    archive = synth.stack.archive
    role_id = synth.logical_id(archive.delivery_role)
    trust = synth.resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    statements = synth.role_statements(role_id)

    # Then only Firehose, for this account, may assume it
    [assume] = trust
    assert assume["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert assume["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "AWS::AccountId"}}}
    # And it may read the stream, put objects under events/ and errors/, have S3 use the
    # archive key for them, and write its error log: nothing else (no read, no delete)
    stream = _arn(synth, synth.stack.audit.stream)
    expected = (
        _pairs(
            (
                "kinesis:DescribeStream",
                "kinesis:GetShardIterator",
                "kinesis:GetRecords",
                "kinesis:ListShards",
            ),
            stream,
        )
        | _pairs(("s3:PutObject",), _objects(synth, AUDIT_ARCHIVE.events_prefix))
        | _pairs(("s3:PutObject",), _objects(synth, ARCHIVE_ERRORS_PREFIX))
        | _pairs(("kms:GenerateDataKey", "kms:Decrypt"), _arn(synth, archive.key))
        | _pairs(("logs:PutLogEvents",), _arn(synth, archive.delivery_log_group))
    )
    assert _grants(statements) == expected
    # And the key is usable only through S3
    [kms] = [s for s in statements if "kms:Decrypt" in _as_list(s["Action"])]
    assert set(kms["Condition"]["StringEquals"]) == {"kms:ViaService"}


# --- the sealing key -----------------------------------------------------------------------


def test_the_sealing_key_signs_for_the_sealer_only(synth: Synthesized) -> None:
    # Given the sealing key and every function role
    key = synth.stack.sealing_key.key
    key_arn = json.dumps(_arn(synth, key), sort_keys=True)
    grants = {
        fn.spec.name: {
            action
            for action, resource in _grants(_role_statements(synth, fn))
            if resource == key_arn
        }
        for fn in synth.stack.functions.all
    }

    # Then the sealer may sign with it (nothing else: operators read the public key
    # themselves), and no other function may do anything with it
    assert {name: actions for name, actions in grants.items() if actions} == {
        AUDIT_SEALER.name: {"kms:Sign"}
    }
    # And it is an ES256-capable key of its own, not a token-signing key
    properties = synth.properties(key)
    assert (properties["KeySpec"], properties["KeyUsage"]) == (
        AUDIT_SEALING_KEY.key_spec,
        AUDIT_SEALING_KEY.key_usage,
    )
    assert key is not synth.stack.signing_key.key
    assert "Tags" not in properties  # not tagged as a token-signing key


# --- the stream triggers -------------------------------------------------------------------


def test_the_forwarder_runs_on_the_ledger_stream_from_its_oldest_record(
    synth: Synthesized,
) -> None:
    # Given the forwarder's event source mapping
    functions = synth.stack.functions
    mapping = _mapping(synth, functions.audit_forwarder)
    ledger = synth.stack.data.table(LEDGER)

    # Then it reads the ledger table's stream from the oldest record, 100 at a time
    assert mapping["EventSourceArn"] == _arn(synth, ledger, "StreamArn")
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["BatchSize"] == FORWARDER_BATCH_SIZE == 100
    # And the handler reports the records it failed; a failing batch is halved, retried 10
    # times for up to a day, then its pointers go to the forwarder's DLQ
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == 10
    assert mapping["MaximumRecordAgeInSeconds"] == 86_400
    dlq = synth.stack.audit_pipeline.forwarder_dlq
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": _arn(synth, dlq)}}


@pytest.mark.parametrize(
    ("sort_key", "forwarded"),
    [
        ("PAYMENT", True),
        ("REFUND#000001764460800#re_1", True),
        ("VIEW#usr_alice", False),  # a party's copy of the payment
        ("ACCOUNT", False),
        ("ENTRY#000001764460800#en_1", False),
        ("IDEMPOTENCY", False),
        ("PAYMENTS", False),  # exact, not a prefix
    ],
)
def test_only_payment_and_refund_changes_invoke_the_forwarder(
    synth: Synthesized, sort_key: str, forwarded: bool
) -> None:
    # Given the mapping's one filter
    [event_filter] = _mapping(synth, synth.stack.functions.audit_forwarder)["FilterCriteria"][
        "Filters"
    ]
    pattern = json.loads(event_filter["Pattern"])

    # When a change to a ledger item with this sort key reaches it
    matched = _matches(pattern, _stream_record(sort_key))

    # Then payments (`PAYMENT`) and refunds (`REFUND#...`) invoke the forwarder, nothing else
    assert pattern == AUDITED_LEDGER_CHANGES
    assert matched is forwarded


def test_the_sealer_reads_each_shard_in_order_until_it_succeeds(synth: Synthesized) -> None:
    # Given the sealer's event source mapping
    mapping = _mapping(synth, synth.stack.functions.audit_sealer)
    dlq = synth.stack.audit_pipeline.sealer_dlq

    # Then it reads the audit stream from its oldest record, up to 500 records a batch
    assert mapping["EventSourceArn"] == _arn(synth, synth.stack.audit.stream)
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["BatchSize"] == SEALER_BATCH_SIZE == 500
    # And one batch per shard at a time, never split (a seal covers a batch in order)
    assert mapping["ParallelizationFactor"] == 1
    assert mapping["BisectBatchOnFunctionError"] is False
    assert "FunctionResponseTypes" not in mapping
    # And a failing batch is retried until it succeeds, or until a day before the stream
    # would drop it, when its pointers go to the sealer's DLQ
    assert mapping["MaximumRetryAttempts"] == -1
    assert mapping["MaximumRecordAgeInSeconds"] < AUDIT_STREAM.retention_hours * 3600
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": _arn(synth, dlq)}}


@pytest.mark.parametrize("name", ["forwarder", "sealer"])
def test_each_dlq_is_encrypted_tls_only_and_keeps_messages_14_days(
    synth: Synthesized, name: str
) -> None:
    # Given the DLQ and its queue policy
    queue = synth.stack.audit_pipeline.dlqs[name]
    properties = synth.properties(queue)
    [policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.of_type("AWS::SQS::QueuePolicy").values()
        if {"Ref": synth.logical_id(queue)} in p["Properties"]["Queues"]
    ]

    # Then it is encrypted at rest, refuses plain HTTP and keeps a failure for 14 days
    assert properties["SqsManagedSseEnabled"] is True
    assert properties["MessageRetentionPeriod"] == AUDIT_DLQ_RETENTION_DAYS * 86_400 == 1_209_600
    [deny] = policy
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# --- the forwarder's and the sealer's roles ------------------------------------------------


def _basics(synth: Synthesized, function: PayplatFunction) -> set[Grant]:
    """What every function role holds: its own log group, and X-Ray."""
    return _pairs(
        ("logs:CreateLogStream", "logs:PutLogEvents"), _arn(synth, function.log_group)
    ) | _pairs(("xray:PutTraceSegments", "xray:PutTelemetryRecords"), "*")


def _dlq_send(synth: Synthesized, name: str) -> set[Grant]:
    queue = synth.stack.audit_pipeline.dlqs[name]
    return _pairs(
        ("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"), _arn(synth, queue)
    )


def test_the_forwarder_reads_the_ledger_stream_and_only_puts_on_the_audit_stream(
    synth: Synthesized,
) -> None:
    # Given every grant of the forwarder's role
    forwarder = synth.stack.functions.audit_forwarder
    grants = _grants(_role_statements(synth, forwarder))
    ledger = synth.stack.data.table(LEDGER)

    # Then it holds exactly: its logs and X-Ray; the ledger's stream (read, and the
    # ListStreams Lambda checks for); PutRecord(s) on the audit stream; its DLQ
    assert grants == (
        _basics(synth, forwarder)
        | _pairs(("dynamodb:ListStreams",), "*")
        | _pairs(
            ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"),
            _arn(synth, ledger, "StreamArn"),
        )
        | _pairs(("kinesis:PutRecord", "kinesis:PutRecords"), _arn(synth, synth.stack.audit.stream))
        | _dlq_send(synth, "forwarder")
    )
    # So no table item, no KMS key, no S3
    assert not {a for a, _ in grants if a.split(":")[0] in {"kms", "s3"}}
    assert not {r for _, r in grants if r == json.dumps(_arn(synth, ledger), sort_keys=True)}


def test_the_sealer_reads_the_audit_stream_advances_its_chain_and_writes_only_seals(
    synth: Synthesized,
) -> None:
    # Given every grant of the sealer's role
    sealer = synth.stack.functions.audit_sealer
    grants = _grants(_role_statements(synth, sealer))
    stream = json.dumps(_arn(synth, synth.stack.audit.stream), sort_keys=True)
    archive = synth.stack.archive

    # Then, besides reading the audit stream (read actions only), it holds exactly: its logs
    # and X-Ray; Get/Put/Update on the audit chain's table; PutObject under seals/ and the
    # data key S3 needs for it; kms:Sign on the sealing key; its DLQ
    reads = {(a, r) for a, r in grants if r == stream}
    assert {a for a, _ in reads} >= {"kinesis:GetRecords", "kinesis:GetShardIterator"}
    assert not {a for a, _ in reads if a.startswith("kinesis:Put")}
    assert grants - reads == (
        _basics(synth, sealer)
        | _pairs(
            ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
            _arn(synth, synth.stack.data.table(AUDIT)),
        )
        | _pairs(("s3:PutObject",), _objects(synth, AUDIT_ARCHIVE.seals_prefix))
        | _pairs(("kms:GenerateDataKey",), _arn(synth, archive.key))
        | _pairs(("kms:Sign",), _arn(synth, synth.stack.sealing_key.key))
        | _dlq_send(synth, "sealer")
    )
    # So it can neither read nor delete an archived object
    assert not {a for a, _ in grants if a.startswith(("s3:Get", "s3:Delete", "s3:List"))}
    # And it is sized for a 500-record batch: one KMS Sign and one PutObject a seal
    properties = synth.properties(sealer.function)
    assert (properties["MemorySize"], properties["Timeout"]) == (512, 60)
