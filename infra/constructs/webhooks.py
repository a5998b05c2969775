"""Webhooks: the delivery queue and its DLQ (from infra/resources.py, as the local runner
makes them), and λ webhook_dispatcher's two event sources — the audit stream (events made,
deliveries queued) and the delivery queue (one attempt a message).

The queues come first (the functions' env carries their URLs); the event sources are wired
once the dispatcher exists. The dispatcher runs outside any VPC: it calls partners' HTTPS
endpoints on the internet, and payplat.webhooks.ssrf keeps it off every internal address.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.constructs.names import (
    WEBHOOK_DELIVERY_BATCH_SIZE,
    WEBHOOK_DELIVERY_MAX_CONCURRENCY,
    WEBHOOK_EVENTS_BATCH_SIZE,
    WEBHOOK_EVENTS_DLQ_RETENTION_DAYS,
    WEBHOOK_EVENTS_MAX_RECORD_AGE_S,
    WEBHOOK_EVENTS_PARALLELIZATION,
    WEBHOOK_EVENTS_RETRY_ATTEMPTS,
)
from infra.resources import WEBHOOK_DLQ, WEBHOOK_QUEUE, QueueSpec


class WebhookQueues(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # Deliveries given up on after three days, and messages the dispatcher kept
        # failing on (the delivery queue's redrive target, so cdk-nag knows it is a DLQ).
        self.dlq = self._build_queue("DeliveryDlq", WEBHOOK_DLQ, None)
        self.deliveries = self._build_queue("Deliveries", WEBHOOK_QUEUE, self.dlq)
        # The audit-stream mapping's on-failure destination: pointers (shard, sequence range)
        # to records no webhook event was made of.
        self.events_dlq = sqs.Queue(
            self,
            "EventsDlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(WEBHOOK_EVENTS_DLQ_RETENTION_DAYS),
        )
        NagSuppressions.add_resource_suppressions(
            self.events_dlq,
            [
                NagPackSuppression(
                    id="AwsSolutions-SQS3",
                    reason=(
                        "This queue is itself a dead-letter queue: the on-failure destination "
                        "of the webhook dispatcher's audit-stream mapping, alarmed on its first "
                        "message"
                    ),
                )
            ],
        )

    @property
    def dlqs(self) -> dict[str, sqs.Queue]:
        """Each dead-letter queue, by what it holds."""
        return {"deliveries": self.dlq, "events": self.events_dlq}

    def _build_queue(
        self, construct_id: str, spec: QueueSpec, dead_letter: sqs.IQueue | None
    ) -> sqs.Queue:
        return sqs.Queue(
            self,
            construct_id,
            # SSE-SQS: encrypted at rest, and senders need no KMS grant.
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.seconds(spec.retention_s),
            visibility_timeout=Duration.seconds(spec.visibility_timeout_s),
            dead_letter_queue=(
                sqs.DeadLetterQueue(queue=dead_letter, max_receive_count=spec.max_receive_count)
                if dead_letter is not None
                else None
            ),
        )


class WebhookPipeline(Construct):
    """The dispatcher's event sources."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stream: kinesis.IStream,
        queues: WebhookQueues,
        dispatcher: lambda_.Function,
    ) -> None:
        super().__init__(scope, construct_id)
        self.audit_records = self._build_audit_records(stream, queues, dispatcher)
        self.deliveries = self._build_deliveries(queues, dispatcher)

    def _build_audit_records(
        self, stream: kinesis.IStream, queues: WebhookQueues, dispatcher: lambda_.Function
    ) -> sources.KinesisEventSource:
        source = sources.KinesisEventSource(
            stream,
            # From the oldest record the stream holds: a new or re-enabled mapping makes the
            # events of what moved while it was away (events are made once, by their id).
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=WEBHOOK_EVENTS_BATCH_SIZE,
            parallelization_factor=WEBHOOK_EVENTS_PARALLELIZATION,
            # The handler names the first record it could not handle; the ones before it are
            # done. A batch that keeps failing is halved until the bad record stands alone.
            report_batch_item_failures=True,
            bisect_batch_on_error=True,
            retry_attempts=WEBHOOK_EVENTS_RETRY_ATTEMPTS,
            max_record_age=Duration.seconds(WEBHOOK_EVENTS_MAX_RECORD_AGE_S),
            on_failure=sources.SqsDlq(queues.events_dlq),
        )
        dispatcher.add_event_source(source)
        return source

    def _build_deliveries(
        self, queues: WebhookQueues, dispatcher: lambda_.Function
    ) -> sources.SqsEventSource:
        source = sources.SqsEventSource(
            queues.deliveries,
            batch_size=WEBHOOK_DELIVERY_BATCH_SIZE,
            # A failed POST is the next attempt queued, not a failed message: only payplat's
            # own failures are reported, and only those messages come back.
            report_batch_item_failures=True,
            max_concurrency=WEBHOOK_DELIVERY_MAX_CONCURRENCY,
        )
        dispatcher.add_event_source(source)
        return source
