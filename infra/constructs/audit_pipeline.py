"""What runs on a stream: the ledger table's stream drives the audit forwarder, the audit
stream drives the sealer. Each event source mapping has its own on-failure queue, so a batch
that could not be handled leaves a record (its shard and sequence range) instead of nothing.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.constructs.names import (
    AUDIT_DLQ_RETENTION_DAYS,
    AUDITED_LEDGER_CHANGES,
    FORWARDER_BATCH_SIZE,
    FORWARDER_MAX_RECORD_AGE_S,
    FORWARDER_RETRY_ATTEMPTS,
    SEALER_BATCH_SIZE,
    SEALER_MAX_RECORD_AGE_S,
    SEALER_PARALLELIZATION,
    SEALER_RETRY_ATTEMPTS,
)


class AuditPipeline(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        ledger: dynamodb.ITable,
        stream: kinesis.IStream,
        forwarder: lambda_.Function,
        sealer: lambda_.Function,
    ) -> None:
        super().__init__(scope, construct_id)
        self.forwarder_dlq = self._build_dlq("ForwarderDlq")
        self.sealer_dlq = self._build_dlq("SealerDlq")
        self.ledger_changes = self._build_ledger_changes(ledger, forwarder)
        self.audit_records = self._build_audit_records(stream, sealer)

    @property
    def dlqs(self) -> dict[str, sqs.Queue]:
        """Each on-failure queue, by the function whose failed batches it holds."""
        return {"forwarder": self.forwarder_dlq, "sealer": self.sealer_dlq}

    def _build_ledger_changes(
        self, ledger: dynamodb.ITable, forwarder: lambda_.Function
    ) -> sources.DynamoEventSource:
        source = sources.DynamoEventSource(
            ledger,
            # From the oldest record the stream still holds: a new or re-enabled mapping
            # forwards what changed while it was away.
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=FORWARDER_BATCH_SIZE,
            # Only payment and refund changes invoke it (filtered before Lambda is billed).
            filters=[lambda_.FilterCriteria.filter(AUDITED_LEDGER_CHANGES)],
            # The handler names the records it could not forward; the rest of the batch is
            # not sent twice. A failing batch is halved until the bad record stands alone.
            report_batch_item_failures=True,
            bisect_batch_on_error=True,
            retry_attempts=FORWARDER_RETRY_ATTEMPTS,
            max_record_age=Duration.seconds(FORWARDER_MAX_RECORD_AGE_S),
            on_failure=sources.SqsDlq(self.forwarder_dlq),
        )
        forwarder.add_event_source(source)
        if forwarder.role is not None:
            NagSuppressions.add_resource_suppressions(
                forwarder.role,
                [
                    NagPackSuppression(
                        id="AwsSolutions-IAM5",
                        reason=(
                            "dynamodb:ListStreams (added with the stream-read grant; Lambda "
                            "checks it when the event source mapping is created) supports no "
                            "resource-level permission, so the resource must be *; it lists "
                            "stream ARNs only, no data"
                        ),
                        applies_to=["Resource::*"],
                    )
                ],
                apply_to_children=True,
            )
        return source

    def _build_audit_records(
        self, stream: kinesis.IStream, sealer: lambda_.Function
    ) -> sources.KinesisEventSource:
        source = sources.KinesisEventSource(
            stream,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=SEALER_BATCH_SIZE,
            parallelization_factor=SEALER_PARALLELIZATION,
            # A seal covers a batch in sequence order: splitting one would seal records out of
            # the order they were read in, so a failing batch is retried whole.
            bisect_batch_on_error=False,
            retry_attempts=SEALER_RETRY_ATTEMPTS,
            max_record_age=Duration.seconds(SEALER_MAX_RECORD_AGE_S),
            on_failure=sources.SqsDlq(self.sealer_dlq),
        )
        sealer.add_event_source(source)
        return source

    def _build_dlq(self, construct_id: str) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            construct_id,
            # SSE-SQS: encrypted at rest, and Lambda sends with no KMS grant on the roles.
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(AUDIT_DLQ_RETENTION_DAYS),
        )
        NagSuppressions.add_resource_suppressions(
            queue,
            [
                NagPackSuppression(
                    id="AwsSolutions-SQS3",
                    reason=(
                        "This queue is itself a dead-letter queue: the on-failure destination "
                        "of an audit event source mapping, alarmed on its first message; a "
                        "queue behind it would only move the same failure pointers one hop on"
                    ),
                )
            ],
        )
        return queue
