"""The audit archive: an S3 bucket under Object Lock (compliance mode) that Firehose fills with
every record of the audit stream, and where the sealer writes its signed seals.

PCI DSS v4 10.5: audit records kept at least 12 months and protected from change. In
compliance mode nobody, the account's root user included, can delete or overwrite an object
version, or shorten its lock, before `AUDIT_ARCHIVE.retention_days` have passed.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnElement, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct, IConstruct

from infra.constructs.names import (
    ARCHIVE_ACCESS_LOG_RETENTION_DAYS,
    ARCHIVE_BUFFER_INTERVAL_S,
    ARCHIVE_BUFFER_SIZE_MIB,
    ARCHIVE_ERRORS_PREFIX,
    LOG_RETENTION,
)
from infra.resources import AUDIT_ARCHIVE

# Firehose's hourly folders: events/2026/11/29/23/<stream>-<n>-<timestamp>-<uuid>.gz
EVENTS_PREFIX = f"{AUDIT_ARCHIVE.events_prefix}!{{timestamp:yyyy/MM/dd/HH}}/"
ERRORS_PREFIX = (
    f"{ARCHIVE_ERRORS_PREFIX}!{{firehose:error-output-type}}/!{{timestamp:yyyy/MM/dd/HH}}/"
)

# Deleting is denied to every principal, whatever an IAM policy allows: no delete markers
# hiding events, no version deleted once its lock has lapsed, no bucket deleted. Object Lock
# already forbids changing a locked version. Configuration (the lock's default retention, the
# policy itself) is deliberately not denied: CloudFormation must be able to keep deploying the
# bucket, a changed default never shortens an existing lock, and every such change is a
# CloudTrail management event.
DENIED_ACTIONS = ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:DeleteBucket")

Delivery = firehose.CfnDeliveryStream  # the L1, and its property types by a shorter name

# What Firehose needs to read a Kinesis stream (Firehose developer guide, Kinesis source).
_STREAM_READ_ACTIONS = (
    "kinesis:DescribeStream",
    "kinesis:GetShardIterator",
    "kinesis:GetRecords",
    "kinesis:ListShards",
)
# SSE-KMS: S3 asks KMS for a data key on every PutObject made by the writer (and decrypts it
# for multipart uploads); never a direct KMS call, hence the kms:ViaService condition.
_PUT_ENCRYPTED_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")


class AuditArchive(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stream: kinesis.IStream) -> None:
        super().__init__(scope, construct_id)
        # Server access logs delivered under a bucket policy (scoped to the archive by
        # aws:SourceArn), not the legacy log-delivery ACL; cdk.json does not set this flag.
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        self.key = self._build_key()
        self.access_logs = self._build_access_logs()
        self.bucket = self._build_bucket()
        self.delivery_role = self._build_delivery_role()
        self.delivery_log_group = logs.LogGroup(
            self, "DeliveryLogs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.RETAIN
        )
        self.delivery = self._build_delivery(stream)

    def grant_put_seals(self, role: iam.IRole) -> None:
        """PutObject under the seals prefix only (no read, no delete, no events), and the data
        key S3 needs from the archive key to encrypt what it writes."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"{AUDIT_ARCHIVE.seals_prefix}*")],
            )
        )
        # A single PutObject per seal: the data key only, no Decrypt (multipart uploads).
        role.add_to_principal_policy(self._key_through_s3("kms:GenerateDataKey"))
        self._suppress_prefix_wildcards(role, AUDIT_ARCHIVE.seals_prefix)

    def prefix_finding(self, prefix: str) -> str:
        """How cdk-nag names a grant on every object under `prefix` of the archive."""
        bucket = self.bucket.node.default_child
        if not isinstance(bucket, CfnElement):
            raise TypeError("the archive bucket has no CloudFormation resource")
        return f"Resource::<{Stack.of(self).get_logical_id(bucket)}.Arn>/{prefix}*"

    def _suppress_prefix_wildcards(self, construct: IConstruct, *prefixes: str) -> None:
        NagSuppressions.add_resource_suppressions(
            construct,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason=(
                        "Writers of the audit archive may put objects under their own prefix "
                        "(object keys are generated per batch, so no key can be named); they "
                        "get s3:PutObject there and nothing else, and Object Lock makes every "
                        "object they write immutable"
                    ),
                    applies_to=[self.prefix_finding(prefix) for prefix in prefixes],
                )
            ],
            apply_to_children=True,
        )

    def _build_key(self) -> kms.Key:
        return kms.Key(
            self,
            "Key",
            description="payplat audit archive: SSE-KMS for the audit events and seals",
            enable_key_rotation=True,
            # Every archived object is encrypted under it: losing it loses the archive.
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _build_access_logs(self) -> s3.Bucket:
        return s3.Bucket(
            self,
            "AccessLogs",
            # S3 server access logging delivers only to SSE-S3 buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(expiration=Duration.days(ARCHIVE_ACCESS_LOG_RETENTION_DAYS))
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _build_bucket(self) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "Bucket",
            object_lock_enabled=True,
            object_lock_default_retention=s3.ObjectLockRetention.compliance(
                Duration.days(AUDIT_ARCHIVE.retention_days)
            ),
            versioned=True,  # Object Lock requires it; S3 never lets it be suspended
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            # One data key per bucket and period instead of a KMS call per object.
            bucket_key_enabled=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{AUDIT_ARCHIVE.id}/",
            removal_policy=RemovalPolicy.RETAIN,
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyDeletingTheAuditTrail",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(DENIED_ACTIONS),
                resources=[bucket.bucket_arn, bucket.arn_for_objects("*")],
            )
        )
        # The bucket outlives the stack (RETAIN); so must the statement that guards it.
        if bucket.policy is not None:
            bucket.policy.apply_removal_policy(RemovalPolicy.RETAIN)
        return bucket

    def _build_delivery_role(self) -> iam.Role:
        return iam.Role(
            self,
            "DeliveryRole",
            description="Firehose copies the payplat audit stream into the audit archive",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com",
                # Confused-deputy guard (Firehose developer guide): only on behalf of this
                # account's delivery streams.
                conditions={"StringEquals": {"sts:ExternalId": Aws.ACCOUNT_ID}},
            ),
        )

    def _build_delivery(self, stream: kinesis.IStream) -> Delivery:
        # An L1: the L2 `S3Bucket` destination always grants read-write on the whole bucket
        # (s3:DeleteObject* included); this role may only add objects under two prefixes.
        log_stream = logs.LogStream(
            self,
            "DeliveryLogStream",
            log_group=self.delivery_log_group,
            removal_policy=RemovalPolicy.RETAIN,
        )
        policy = iam.Policy(
            self,
            "DeliveryPolicy",
            roles=[self.delivery_role],
            statements=[
                iam.PolicyStatement(
                    actions=list(_STREAM_READ_ACTIONS), resources=[stream.stream_arn]
                ),
                iam.PolicyStatement(
                    actions=["s3:PutObject"],
                    resources=[
                        self.bucket.arn_for_objects(f"{AUDIT_ARCHIVE.events_prefix}*"),
                        self.bucket.arn_for_objects(f"{ARCHIVE_ERRORS_PREFIX}*"),
                    ],
                ),
                self._key_through_s3(*_PUT_ENCRYPTED_ACTIONS),
                iam.PolicyStatement(
                    actions=["logs:PutLogEvents"],
                    resources=[self.delivery_log_group.log_group_arn],
                ),
            ],
        )
        delivery = Delivery(
            self,
            "Delivery",
            delivery_stream_type="KinesisStreamAsSource",
            kinesis_stream_source_configuration=Delivery.KinesisStreamSourceConfigurationProperty(
                kinesis_stream_arn=stream.stream_arn, role_arn=self.delivery_role.role_arn
            ),
            extended_s3_destination_configuration=self._destination(log_stream),
        )
        # Firehose checks at creation that its role can read the stream.
        delivery.node.add_dependency(policy)
        self._suppress_prefix_wildcards(policy, AUDIT_ARCHIVE.events_prefix, ARCHIVE_ERRORS_PREFIX)
        NagSuppressions.add_resource_suppressions(
            delivery,
            [
                NagPackSuppression(
                    id="AwsSolutions-KDF1",
                    reason=(
                        "Server-side encryption of the delivery stream exists only for Direct "
                        "PUT sources; this one reads the audit Kinesis stream, which is "
                        "encrypted at rest (KDS3), and writes objects encrypted with the "
                        "archive's KMS key"
                    ),
                )
            ],
        )
        return delivery

    def _destination(
        self, log_stream: logs.LogStream
    ) -> Delivery.ExtendedS3DestinationConfigurationProperty:
        return Delivery.ExtendedS3DestinationConfigurationProperty(
            bucket_arn=self.bucket.bucket_arn,
            role_arn=self.delivery_role.role_arn,
            prefix=EVENTS_PREFIX,
            error_output_prefix=ERRORS_PREFIX,
            buffering_hints=Delivery.BufferingHintsProperty(
                interval_in_seconds=ARCHIVE_BUFFER_INTERVAL_S,
                size_in_m_bs=ARCHIVE_BUFFER_SIZE_MIB,
            ),
            compression_format="GZIP",
            encryption_configuration=Delivery.EncryptionConfigurationProperty(
                kms_encryption_config=Delivery.KMSEncryptionConfigProperty(
                    awskms_key_arn=self.key.key_arn
                )
            ),
            # The stream carries CloudWatch Logs subscription envelopes (the forwarder writes
            # the same): decompress them, keep each log event's message (one audit line),
            # one a line, so an archived object reads back event by event.
            processing_configuration=Delivery.ProcessingConfigurationProperty(
                enabled=True,
                processors=[
                    Delivery.ProcessorProperty(
                        type="Decompression",
                        parameters=[_parameter("CompressionFormat", "GZIP")],
                    ),
                    Delivery.ProcessorProperty(
                        type="CloudWatchLogProcessing",
                        parameters=[_parameter("DataMessageExtraction", "true")],
                    ),
                    Delivery.ProcessorProperty(type="AppendDelimiterToRecord"),
                ],
            ),
            cloud_watch_logging_options=Delivery.CloudWatchLoggingOptionsProperty(
                enabled=True,
                log_group_name=self.delivery_log_group.log_group_name,
                log_stream_name=log_stream.log_stream_name,
            ),
        )

    def _key_through_s3(self, *actions: str) -> iam.PolicyStatement:
        """`actions` on the archive key, only when S3 asks KMS on the caller's behalf."""
        return iam.PolicyStatement(
            actions=list(actions),
            resources=[self.key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}},
        )


def _parameter(name: str, value: str) -> Delivery.ProcessorParameterProperty:
    return Delivery.ProcessorParameterProperty(parameter_name=name, parameter_value=value)
