"""The audit Kinesis stream and the log subscriptions that feed it.

Audit records are structured log lines; a subscription filter on each function's log group
carries them to the stream, so audit never costs the request path a network call.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as destinations
from constructs import Construct

from infra.resources import AUDIT_LOG_FILTER, AUDIT_STREAM, AUDIT_SUBSCRIPTION_NAME


class Audit(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.stream = self._build_stream()
        self._destination = destinations.KinesisDestination(
            self.stream, role=self._build_logs_role()
        )

    def subscribe(self, name: str, log_group: logs.ILogGroup) -> logs.SubscriptionFilter:
        """Send the audit lines of `log_group` to the stream."""
        return logs.SubscriptionFilter(
            self,
            f"{name}Subscription",
            log_group=log_group,
            filter_name=AUDIT_SUBSCRIPTION_NAME,
            destination=self._destination,
            filter_pattern=logs.FilterPattern.literal(AUDIT_LOG_FILTER),
        )

    def _build_stream(self) -> kinesis.Stream:
        return kinesis.Stream(
            self,
            "Stream",
            stream_mode=kinesis.StreamMode.PROVISIONED,
            shard_count=AUDIT_STREAM.shards,
            retention_period=Duration.hours(AUDIT_STREAM.retention_hours),
            # The aws/kinesis key (cdk-nag KDS3): encrypted at rest, and producers and
            # consumers need no kms:* grants on a key of ours.
            encryption=kinesis.StreamEncryption.MANAGED,
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _build_logs_role(self) -> iam.Role:
        """One role for every subscription; only this account's log groups may assume it."""
        return iam.Role(
            self,
            "LogsRole",
            description="CloudWatch Logs writes audit lines to the payplat audit stream",
            assumed_by=iam.ServicePrincipal(
                "logs.amazonaws.com",
                # Confused-deputy guard: only log groups of this account and region.
                conditions={
                    "StringLike": {
                        "aws:SourceArn": Stack.of(self).format_arn(service="logs", resource="*")
                    }
                },
            ),
        )
