"""Webhooks as deployed: the delivery queue and its DLQs, the dispatcher's two event sources,
exactly what the dispatcher (and the payments function, for redeliveries) may do, and the
alarms on what was given up on."""

from __future__ import annotations

import json
from typing import Any

from infra.constructs.functions import PayplatFunction
from infra.constructs.names import (
    WEBHOOK_DELIVERY_BATCH_SIZE,
    WEBHOOK_DELIVERY_MAX_CONCURRENCY,
    WEBHOOK_DISPATCHER,
    WEBHOOK_EVENTS_BATCH_SIZE,
    WEBHOOK_EVENTS_RETRY_ATTEMPTS,
)
from infra.resources import LEDGER, WEBHOOK_DLQ, WEBHOOK_QUEUE, WEBHOOKS
from payplat.config import Env, PaymentsSettings, WebhookSettings, from_mapping
from payplat.webhooks.objects import DELIVERY_LEASE_S, DELIVERY_TIMEOUT_S
from tests.infra.synthesized import Json, Synthesized

Grant = tuple[str, str]
TABLE_WRITE = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
}
TABLE_READ = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _arn(synth: Synthesized, construct: Any) -> Json:
    return {"Fn::GetAtt": [synth.logical_id(construct), "Arn"]}


def _statements(synth: Synthesized, function: PayplatFunction) -> list[Json]:
    return synth.role_statements(synth.logical_id(function.role))


def _grants(statements: list[Json], *, conditioned: bool = False) -> set[Grant]:
    """(action, resource) pairs of the Allow statements with (or without) a condition."""
    return {
        (action, json.dumps(resource, sort_keys=True))
        for statement in statements
        if statement["Effect"] == "Allow" and ("Condition" in statement) == conditioned
        for action in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    }


def _pairs(actions: set[str] | tuple[str, ...], resource: Any) -> set[Grant]:
    return {(action, json.dumps(resource, sort_keys=True)) for action in actions}


def _mappings(synth: Synthesized, function: PayplatFunction) -> dict[str, Json]:
    """The function's event source mappings by source type (kinesis, sqs)."""
    found = {}
    for resource in synth.of_type("AWS::Lambda::EventSourceMapping").values():
        properties = resource["Properties"]
        if properties["FunctionName"] == {"Ref": synth.logical_id(function.function)}:
            kind = json.dumps(properties["EventSourceArn"])
            found["kinesis" if "AuditStream" in kind else "sqs"] = properties
    return found


def _queue_policy(synth: Synthesized, queue: Any) -> list[Json]:
    [statements] = [
        policy["Properties"]["PolicyDocument"]["Statement"]
        for policy in synth.of_type("AWS::SQS::QueuePolicy").values()
        if {"Ref": synth.logical_id(queue)} in policy["Properties"]["Queues"]
    ]
    return list(statements)


def test_the_queues_are_encrypted_tls_only_and_shaped_by_their_specs(synth: Synthesized) -> None:
    # Given the delivery queue and the two dead-letter queues
    queues = synth.stack.webhook_queues
    deliveries = synth.properties(queues.deliveries)
    dlq = synth.properties(queues.dlq)

    # Then each is SSE-encrypted and refuses plain HTTP
    for queue in (queues.deliveries, queues.dlq, queues.events_dlq):
        assert synth.properties(queue)["SqsManagedSseEnabled"] is True
        assert any(
            s["Effect"] == "Deny"
            and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in _queue_policy(synth, queue)
        )
    # And the delivery queue keeps a message invisible while an attempt runs (6 x the
    # dispatcher's timeout, longer than an attempt's lease), and moves one that keeps failing
    # in the dispatcher to the DLQ
    assert deliveries["VisibilityTimeout"] == WEBHOOK_QUEUE.visibility_timeout_s
    assert deliveries["VisibilityTimeout"] >= 6 * WEBHOOK_DISPATCHER.timeout_s
    assert deliveries["VisibilityTimeout"] > DELIVERY_LEASE_S > WEBHOOK_DISPATCHER.timeout_s
    assert deliveries["MessageRetentionPeriod"] == WEBHOOK_QUEUE.retention_s
    assert deliveries["RedrivePolicy"] == {
        "deadLetterTargetArn": _arn(synth, queues.dlq),
        "maxReceiveCount": WEBHOOK_QUEUE.max_receive_count,
    }
    # And the DLQ keeps what it is given for 14 days (SQS's longest)
    assert dlq["MessageRetentionPeriod"] == WEBHOOK_DLQ.retention_s == 14 * 86_400
    assert "RedrivePolicy" not in dlq


def test_the_dispatcher_reads_the_audit_stream_in_order_with_partial_failures(
    synth: Synthesized,
) -> None:
    # Given the dispatcher's mapping on the audit stream
    kinesis = _mappings(synth, synth.stack.functions.webhook_dispatcher)["kinesis"]

    # Then it reads every record the stream holds, a shard at a time in order, reports the
    # record it failed on, halves a failing batch, and gives up into the events DLQ
    assert kinesis["EventSourceArn"] == _arn(synth, synth.stack.audit.stream)
    assert kinesis["StartingPosition"] == "TRIM_HORIZON"
    assert kinesis["ParallelizationFactor"] == 1
    assert kinesis["BatchSize"] == WEBHOOK_EVENTS_BATCH_SIZE
    assert kinesis["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert kinesis["BisectBatchOnFunctionError"] is True
    assert kinesis["MaximumRetryAttempts"] == WEBHOOK_EVENTS_RETRY_ATTEMPTS
    assert kinesis["DestinationConfig"]["OnFailure"]["Destination"] == _arn(
        synth, synth.stack.webhook_queues.events_dlq
    )


def test_the_dispatcher_works_the_delivery_queue_reporting_its_own_failures_only(
    synth: Synthesized,
) -> None:
    # Given the dispatcher's mapping on the delivery queue
    sqs = _mappings(synth, synth.stack.functions.webhook_dispatcher)["sqs"]

    # Then it takes batches of attempts, reports failed messages one by one, and never runs
    # more than its share of concurrency
    assert sqs["EventSourceArn"] == _arn(synth, synth.stack.webhook_queues.deliveries)
    assert sqs["BatchSize"] == WEBHOOK_DELIVERY_BATCH_SIZE
    assert sqs["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert sqs["ScalingConfig"] == {"MaximumConcurrency": WEBHOOK_DELIVERY_MAX_CONCURRENCY}
    # And a batch that does not fit in the timeout is put back, not timed out
    assert WEBHOOK_DISPATCHER.timeout_s > DELIVERY_TIMEOUT_S + 5


def test_the_dispatcher_may_do_exactly_what_it_needs(synth: Synthesized) -> None:
    # Given every statement of the dispatcher's role
    stack = synth.stack
    dispatcher = stack.functions.webhook_dispatcher
    statements = _statements(synth, dispatcher)
    webhooks_table = _arn(synth, stack.data.table(WEBHOOKS))
    ledger_table = _arn(synth, stack.data.table(LEDGER))
    queues = stack.webhook_queues
    stream = _arn(synth, stack.audit.stream)

    # Then, unconditioned: its logs and X-Ray; the webhooks table; sending attempts and
    # parking deliveries; and what its two event sources need (read the audit stream,
    # receive and delete deliveries, report a failed batch to the events DLQ)
    expected = (
        _pairs(("logs:CreateLogStream", "logs:PutLogEvents"), _arn(synth, dispatcher.log_group))
        | _pairs(("xray:PutTraceSegments", "xray:PutTelemetryRecords"), "*")
        | _pairs(TABLE_READ | TABLE_WRITE, webhooks_table)
        | _pairs(("sqs:SendMessage",), _arn(synth, queues.deliveries))
        | _pairs(("sqs:SendMessage",), _arn(synth, queues.dlq))
        | _pairs(
            ("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"),
            _arn(synth, queues.events_dlq),
        )
        | _pairs(
            (
                "kinesis:DescribeStream",
                "kinesis:DescribeStreamConsumer",
                "kinesis:DescribeStreamSummary",
                "kinesis:GetRecords",
                "kinesis:GetShardIterator",
                "kinesis:ListShards",
                "kinesis:ListStreams",
                "kinesis:SubscribeToShard",
            ),
            stream,
        )
        | _pairs(
            (
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ReceiveMessage",
            ),
            _arn(synth, queues.deliveries),
        )
    )
    assert _grants(statements) == expected
    # And the ledger only to read, only the items of payments (the payment and its refunds)
    [ledger] = [s for s in statements if "Condition" in s]
    assert set(_as_list(ledger["Action"])) == TABLE_READ
    assert ledger["Resource"] == ledger_table
    assert ledger["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["PAYMENT#*"]}
    }


def test_the_dispatcher_runs_outside_any_vpc_and_never_in_local_mode(synth: Synthesized) -> None:
    # Given the dispatcher as deployed
    properties = synth.properties(synth.stack.functions.webhook_dispatcher.function)
    env = properties["Environment"]["Variables"]

    # Then it reaches partners' endpoints on the internet (payplat.webhooks.ssrf keeps it off
    # internal addresses), and http or loopback endpoints are never allowed
    assert "VpcConfig" not in properties
    assert Env.LOCAL_MODE not in env
    # And its settings load from what the stack gives it
    settings = from_mapping(
        WebhookSettings, {k: v if isinstance(v, str) else json.dumps(v) for k, v in env.items()}
    )
    queues = synth.stack.webhook_queues
    assert settings.queue_url == json.dumps({"Ref": synth.logical_id(queues.deliveries)})
    assert settings.dlq_url == json.dumps({"Ref": synth.logical_id(queues.dlq)})
    assert settings.webhooks_table == json.dumps(
        {"Ref": synth.logical_id(synth.stack.data.table(WEBHOOKS))}
    )
    assert (settings.retry_base_s, settings.retry_cap_s, settings.local) == (30, 6 * 3600, "")


def test_payments_may_queue_a_redelivery_and_nothing_else_on_the_queues(
    synth: Synthesized,
) -> None:
    # Given the payments function
    payments = synth.stack.functions.payments
    statements = _statements(synth, payments)
    env = synth.properties(payments.function)["Environment"]["Variables"]

    # Then its only SQS grant is SendMessage on the delivery queue, whose URL it is given
    sqs = {grant for grant in _grants(statements) if grant[0].startswith("sqs:")}
    assert sqs == _pairs(("sqs:SendMessage",), _arn(synth, synth.stack.webhook_queues.deliveries))
    assert env[Env.WEBHOOK_QUEUE_URL] == {
        "Ref": synth.logical_id(synth.stack.webhook_queues.deliveries)
    }
    settings = from_mapping(
        PaymentsSettings, {k: v if isinstance(v, str) else json.dumps(v) for k, v in env.items()}
    )
    assert settings.webhooks_table and settings.webhook_queue_url
    assert settings.local == ""


def test_each_webhook_dlq_alarms_on_its_first_message(synth: Synthesized) -> None:
    # Given the alarms by name
    alarms = {
        alarm["Properties"]["AlarmName"]: alarm["Properties"]
        for alarm in synth.of_type("AWS::CloudWatch::Alarm").values()
    }
    queues = synth.stack.webhook_queues

    for name, queue in (("deliveries", queues.dlq), ("events", queues.events_dlq)):
        alarm = alarms[f"payplat-webhook-{name}-dlq-not-empty"]
        # Then it watches the queue's visible messages, fires on one, and stays raised while a
        # message waits (an idle queue stops reporting)
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["Namespace"] == "AWS/SQS"
        assert alarm["Dimensions"] == [
            {"Name": "QueueName", "Value": {"Fn::GetAtt": [synth.logical_id(queue), "QueueName"]}}
        ]
        assert alarm["Threshold"] == 0
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["TreatMissingData"] == "ignore"
    # And the dispatcher's own failures and lag page too
    dispatcher = synth.logical_id(synth.stack.functions.webhook_dispatcher.function)
    for name, metric in (("errors", "Errors"), ("lag", "IteratorAge")):
        alarm = alarms[f"payplat-webhook-dispatcher-{name}"]
        assert alarm["MetricName"] == metric
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": dispatcher}}]
