"""The Lambda functions: each with its own least-privilege role and its own log group."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.constructs.archive import AuditArchive
from infra.constructs.data import READ, READ_UPDATE, READ_WRITE, Access, Data, TableAccess
from infra.constructs.names import (
    ACCESS_TOKEN_TTL_S,
    ARCHITECTURE,
    ASSET_EXCLUDES,
    AUDIT_FORWARDER,
    AUDIT_SEALER,
    AUTHORIZER,
    DPOP_NONCE_CONTEXT,
    EXPIRER,
    FAPI_CONTEXT,
    HANDLER,
    JWKS_PATH,
    LOG_LEVEL,
    LOG_RETENTION,
    METRICS_NAMESPACE,
    OAUTH,
    PAYMENTS,
    REFRESH_TOKEN_TTL_S,
    REQUIRE_PAR_CONTEXT,
    RUNTIME,
    SERVICE_NAME,
    WEBHOOK_DISPATCHER,
    FunctionSpec,
)
from infra.constructs.sealing_key import SealingKey
from infra.constructs.signing_key import SigningKey
from infra.constructs.webhooks import WebhookQueues
from infra.resources import (
    AUDIENCE_PATH,
    AUDIT,
    AUDIT_ARCHIVE,
    AUDIT_STREAM,
    CLIENTS,
    LEDGER,
    RATE_LIMITS,
    TOKENS,
    USERS,
    WEBHOOK_DLQ,
    WEBHOOK_QUEUE,
    WEBHOOKS,
    TableSpec,
)
from payplat.config import Env
from payplat.routes import Function

# Each function's tables, what it may do there and which indexes it queries; its env gets
# each table's name.
TABLE_ACCESS: Mapping[str, Mapping[TableSpec, TableAccess]] = {
    AUTHORIZER.name: {},  # stateless JWT validation: no table, no key (DESIGN)
    # Registration writes clients; grants, codes, refresh tokens and the key registry live in
    # tokens; token, login and registration-management requests are throttled (and revocations
    # recorded) in rate-limits. Account holders are created by operators, never by it, and the
    # consent page lists a holder's accounts through by_owner: no ledger item by key.
    OAUTH.name: {
        CLIENTS: READ_WRITE,
        USERS: READ,
        TOKENS: READ_WRITE,
        RATE_LIMITS: READ_WRITE,
        LEDGER: TableAccess(Access.QUERY_INDEXES, indexes=("by_owner",)),
    },
    PAYMENTS.name: {
        CLIENTS: READ,
        # A tenant lists its accounts and payments on by_owner; the expiry sweep is not its job.
        LEDGER: TableAccess(Access.READ_WRITE, indexes=("by_owner",)),
        RATE_LIMITS: READ_WRITE,
        # Webhook endpoints and the events of its owner's objects (the routes); a
        # redelivery is a new delivery record.
        WEBHOOKS: READ_WRITE,
    },
    # Finds due authorizations on by_expiry, then releases each in one transaction.
    EXPIRER.name: {LEDGER: TableAccess(Access.READ_WRITE, indexes=("by_expiry",))},
    # Reads the ledger's changes from its stream (granted by the event source mapping), never
    # an item: the records carry the old and new images.
    AUDIT_FORWARDER.name: {},
    # Reads a shard's chain head and advances it with a conditional put or update; a head is
    # never deleted or listed.
    AUDIT_SEALER.name: {AUDIT: READ_UPDATE},
    # Writes events and deliveries; reads a payment and its refunds to put in an event, and
    # no other ledger item (accounts, entries, idempotency claims are not its business).
    WEBHOOK_DISPATCHER.name: {
        WEBHOOKS: READ_WRITE,
        LEDGER: TableAccess(Access.READ, leading_keys=("PAYMENT#*",)),
    },
}

_POWERTOOLS_ENV = {
    "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
    "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
    "LOG_LEVEL": LOG_LEVEL,
    # Token and payment responses must never land in X-Ray (DESIGN style 2), whatever a
    # handler's decorator says.
    "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
}


class PayplatFunction(Construct):
    """One function, its role (log group + X-Ray only, until granted more) and log group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        layer: lambda_.ILayerVersion,
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        self.log_group = self._build_log_group()
        self.role = self._build_role()
        self.function = self._build_function(layer, environment)
        self._suppress_findings()

    def _build_log_group(self) -> logs.LogGroup:
        # Explicit, so retention is set and the audit subscription has a group to attach to.
        return logs.LogGroup(
            self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.RETAIN
        )

    def _build_role(self) -> iam.Role:
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"payplat {self.spec.name} function",
        )
        # Instead of AWSLambdaBasicExecutionRole, which may write to any log group.
        self.log_group.grant_write(role)
        return role

    def _build_function(
        self, layer: lambda_.ILayerVersion, environment: Mapping[str, str]
    ) -> lambda_.Function:
        json_logs = self.spec.lambda_json_logs
        return lambda_.Function(
            self,
            "Function",
            description=self.spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(self.spec.code_dir), exclude=list(ASSET_EXCLUDES)),
            layers=[layer],
            role=self.role,
            log_group=self.log_group,
            memory_size=self.spec.memory_mb,
            timeout=Duration.seconds(self.spec.timeout_s),
            tracing=lambda_.Tracing.ACTIVE,
            environment={**_POWERTOOLS_ENV, **environment},
            # Powertools writes JSON itself, so the others keep Lambda's text format.
            logging_format=lambda_.LoggingFormat.JSON if json_logs else None,
            application_log_level_v2=lambda_.ApplicationLogLevel(LOG_LEVEL) if json_logs else None,
        )

    def _suppress_findings(self) -> None:
        NagSuppressions.add_resource_suppressions(
            self.role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason=(
                        "xray:PutTraceSegments/PutTelemetryRecords (added by active tracing) "
                        "support no resource-level permissions, so the resource must be *"
                    ),
                    applies_to=["Resource::*"],
                )
            ],
            apply_to_children=True,
        )
        NagSuppressions.add_resource_suppressions(
            self.function,
            [
                NagPackSuppression(
                    id="AwsSolutions-L1",
                    reason=(
                        f"{RUNTIME.name} is pinned by DESIGN.md and matches the core layer's "
                        "wheels (cp313 aarch64); moving runtimes is a deliberate upgrade"
                    ),
                )
            ],
        )


class Functions(Construct):
    """The authorizer, the two route-serving functions, the scheduled expirer and the audit
    trail's forwarder and sealer, wired to what they may use."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        layer: lambda_.ILayerVersion,
        data: Data,
        signing_key: SigningKey,
        base_url: str,
        audit_stream: kinesis.IStream,
        archive: AuditArchive,
        sealing_key: SealingKey,
        webhook_queues: WebhookQueues,
    ) -> None:
        super().__init__(scope, construct_id)
        self._layer = layer
        self._data = data
        # Issuer and audience are built from the API id, not read from the deployed stage:
        # a function env that referenced the stage would make a dependency cycle.
        self._token_env = {Env.ISSUER: base_url, Env.AUDIENCE: base_url + AUDIENCE_PATH}
        self.authorizer = self._build_authorizer(base_url + JWKS_PATH)
        self.oauth = self._build_oauth(signing_key)
        self.payments = self._build_payments(webhook_queues.deliveries)
        self.expirer = self._build_expirer()
        self.audit_forwarder = self._build_audit_forwarder(audit_stream)
        self.audit_sealer = self._build_audit_sealer(archive, sealing_key)
        self.webhook_dispatcher = self._build_webhook_dispatcher(webhook_queues)

    @property
    def all(self) -> tuple[PayplatFunction, ...]:
        return (*self.audited, self.audit_forwarder, self.audit_sealer, self.webhook_dispatcher)

    @property
    def audited(self) -> tuple[PayplatFunction, ...]:
        """The functions that write audit lines to their logs. Not the forwarder (it puts
        ledger changes on the stream itself), nor the sealer or the webhook dispatcher (they
        write none, and a subscription on them would feed the stream they read)."""
        return (self.authorizer, self.oauth, self.payments, self.expirer)

    @property
    def route_handlers(self) -> dict[Function, lambda_.IFunction]:
        """The function behind each `Route.function`."""
        return {Function.OAUTH: self.oauth.function, Function.PAYMENTS: self.payments.function}

    def _build_authorizer(self, jwks_uri: str) -> PayplatFunction:
        # Fetches the JWKS over HTTPS from the API itself: no AWS permissions at all.
        return self._build(AUTHORIZER, {**self._token_env, Env.JWKS_URI: jwks_uri})

    def _build_oauth(self, signing_key: SigningKey) -> PayplatFunction:
        oauth = self._build(
            OAUTH,
            {
                **self._token_env,
                Env.SIGNING_KEY_ID: signing_key.key_arn,
                Env.ACCESS_TOKEN_TTL_S: str(ACCESS_TOKEN_TTL_S),
                Env.REFRESH_TOKEN_TTL_S: str(REFRESH_TOKEN_TTL_S),
                Env.REQUIRE_PAR: self._context_flag(REQUIRE_PAR_CONTEXT),
                Env.DPOP_NONCE: self._context_flag(DPOP_NONCE_CONTEXT),
                Env.FAPI: self._context_flag(FAPI_CONTEXT),
            },
        )
        signing_key.grant_sign(oauth.role)
        return oauth

    def _context_flag(self, name: str) -> str:
        """A deployment switch as the functions read it ("true"/"false"), from the context
        value: a boolean from cdk.json, a string from `-c` on the CLI; off when unset."""
        value = self.node.try_get_context(name)
        if value is None or isinstance(value, bool):
            return "true" if value else "false"
        if str(value).strip().lower() not in ("true", "false"):
            raise ValueError(f"context {name} must be true or false, not {value!r}")
        return str(value).strip().lower()

    def _build_payments(self, deliveries: sqs.IQueue) -> PayplatFunction:
        payments = self._build(
            PAYMENTS,
            {
                WEBHOOK_QUEUE.env: deliveries.queue_url,
                Env.DPOP_NONCE: self._context_flag(DPOP_NONCE_CONTEXT),
                Env.FAPI: self._context_flag(FAPI_CONTEXT),
            },
        )
        _grant_send(payments, deliveries)  # a redelivery queues its first attempt
        return payments

    def _build_expirer(self) -> PayplatFunction:
        # Invoked by its schedule only (see `Schedules`): no route, no token settings.
        return self._build(EXPIRER, {})

    def _build_audit_forwarder(self, audit_stream: kinesis.IStream) -> PayplatFunction:
        # Its trigger (and the stream-read grant that comes with it) is `AuditPipeline`'s.
        forwarder = self._build(AUDIT_FORWARDER, {AUDIT_STREAM.env: audit_stream.stream_name})
        # Put only: stream.grant_write would add ListShards, which PutRecords does not need.
        iam.Grant.add_to_principal(
            grantee=forwarder.role,
            actions=["kinesis:PutRecord", "kinesis:PutRecords"],
            resource_arns=[audit_stream.stream_arn],
        )
        return forwarder

    def _build_audit_sealer(
        self, archive: AuditArchive, sealing_key: SealingKey
    ) -> PayplatFunction:
        sealer = self._build(
            AUDIT_SEALER,
            {
                AUDIT_ARCHIVE.env: archive.bucket.bucket_name,
                Env.AUDIT_SEALING_KEY_ID: sealing_key.key_arn,
            },
        )
        archive.grant_put_seals(sealer.role)
        sealing_key.grant_seal(sealer.role)
        return sealer

    def _build_webhook_dispatcher(self, queues: WebhookQueues) -> PayplatFunction:
        # Its triggers (and the receive/delete grants that come with them) are
        # `WebhookPipeline`'s; it sends the next attempts and parks what it gives up on.
        dispatcher = self._build(
            WEBHOOK_DISPATCHER,
            {
                WEBHOOK_QUEUE.env: queues.deliveries.queue_url,
                WEBHOOK_DLQ.env: queues.dlq.queue_url,
            },
        )
        _grant_send(dispatcher, queues.deliveries)
        _grant_send(dispatcher, queues.dlq)
        return dispatcher

    def _build(self, spec: FunctionSpec, environment: Mapping[str, str]) -> PayplatFunction:
        tables = TABLE_ACCESS[spec.name]
        table_env = {table.env: self._data.table(table).table_name for table in tables}
        function = PayplatFunction(
            self,
            spec.construct_id,
            spec=spec,
            layer=self._layer,
            environment={**environment, **table_env},
        )
        for table, access in tables.items():
            self._data.grant(function.role, table, access)
        return function


def _grant_send(function: PayplatFunction, queue: sqs.IQueue) -> None:
    # SendMessage only: queue.grant_send_messages adds GetQueueAttributes and GetQueueUrl,
    # which a sender that has the URL in its env never calls.
    iam.Grant.add_to_principal(
        grantee=function.role, actions=["sqs:SendMessage"], resource_arns=[queue.queue_arn]
    )
