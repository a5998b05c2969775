"""The payplat stack: composes the constructs; each construct owns one concern."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.constructs import (
    Api,
    Audit,
    AuditArchive,
    AuditPipeline,
    CoreLayer,
    Data,
    Functions,
    Monitoring,
    Schedules,
    SealingKey,
    SigningKey,
    WebhookPipeline,
    WebhookQueues,
)
from infra.resources import AUDIT_ARCHIVE, AUDIT_STREAM, LEDGER, TABLES
from payplat.config import Env

_ENV_PREFIX = "PAYPLAT_"


class PayplatStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.data = Data(self, "Data")
        self.signing_key = SigningKey(self, "SigningKey")
        self.audit = Audit(self, "Audit")
        self.sealing_key = SealingKey(self, "SealingKey")
        self.archive = AuditArchive(self, "AuditArchive", stream=self.audit.stream)
        self.layer = CoreLayer(self, "CoreLayer")
        # Before the functions: their env carries the queues' URLs.
        self.webhook_queues = WebhookQueues(self, "WebhookQueues")
        # The API comes before the functions: their env carries its URL (issuer, JWKS).
        self.api = Api(self, "Api")
        self.functions = Functions(
            self,
            "Functions",
            layer=self.layer.layer,
            data=self.data,
            signing_key=self.signing_key,
            base_url=self.api.base_url,
            audit_stream=self.audit.stream,
            archive=self.archive,
            sealing_key=self.sealing_key,
            webhook_queues=self.webhook_queues,
        )
        self.api.add_routes(
            self.functions.route_handlers, authorizer=self.functions.authorizer.function
        )
        self.schedules = Schedules(self, "Schedules", expirer=self.functions.expirer.function)
        self.audit_pipeline = AuditPipeline(
            self,
            "AuditPipeline",
            ledger=self.data.table(LEDGER),
            stream=self.audit.stream,
            forwarder=self.functions.audit_forwarder.function,
            sealer=self.functions.audit_sealer.function,
        )
        self.webhook_pipeline = WebhookPipeline(
            self,
            "WebhookPipeline",
            stream=self.audit.stream,
            queues=self.webhook_queues,
            dispatcher=self.functions.webhook_dispatcher.function,
        )
        for function in self.functions.audited:
            self.audit.subscribe(function.spec.construct_id, function.log_group)
        self.monitoring = self._build_monitoring()
        self._build_outputs()

    def _build_monitoring(self) -> Monitoring:
        functions = self.functions
        return Monitoring(
            self,
            "Monitoring",
            stage=self.api.rest_api.deployment_stage,
            authorizer=functions.authorizer.function,
            functions={fn.spec.name: fn.function for fn in functions.all},
            forwarder=functions.audit_forwarder.function,
            sealer=functions.audit_sealer.function,
            dlqs=self.audit_pipeline.dlqs,
            webhook_dispatcher=functions.webhook_dispatcher.function,
            webhook_dlqs=self.webhook_queues.dlqs,
            delivery=self.archive.delivery,
            # The functions that write a `request` line per answered request, and the one
            # whose money lines carry the partner (the expirer's releases are nobody's).
            request_log_groups=[functions.payments.log_group, functions.oauth.log_group],
            money_log_groups=[functions.payments.log_group],
        )

    def _build_outputs(self) -> None:
        # On the stack itself, not in a construct: there an output's id would carry a path and
        # a hash, and operators look these up by id.
        CfnOutput(self, "ApiUrl", value=self.api.base_url, description="Base URL of the API")
        # What the `payplat` CLI reads to work on this deployment instead of a local one.
        self._env_output(Env.ISSUER, self.api.base_url, "access-token issuer (the base URL)")
        for table in TABLES:
            self._env_output(table.env, self.data.table(table).table_name, f"{table.id} table")
        self._env_output(
            Env.SIGNING_KEY_ID, self.signing_key.key_arn, "signing key created at deployment"
        )
        self._env_output(AUDIT_STREAM.env, self.audit.stream.stream_name, "audit stream")
        # What `payplat audit verify` reads: the archived events and seals, and the key whose
        # public half checks the seals' signatures.
        self._env_output(AUDIT_ARCHIVE.env, self.archive.bucket.bucket_name, "audit archive bucket")
        self._env_output(Env.AUDIT_SEALING_KEY_ID, self.sealing_key.key_arn, "audit sealing key")
        monitoring = self.monitoring
        CfnOutput(
            self,
            "AlarmTopicArn",
            value=monitoring.topic.topic_arn,
            description="SNS topic every payplat alarm notifies: subscribe on-call to it",
        )
        CfnOutput(
            self,
            "FinanceOpsDashboard",
            value=monitoring.finance_dashboard.dashboard_name,
            description="CloudWatch dashboard: payments, refunds, captures, top partners",
        )
        CfnOutput(
            self,
            "PlatformOpsDashboard",
            value=monitoring.platform_dashboard.dashboard_name,
            description="CloudWatch dashboard: requests, latency, errors, auth, audit trail",
        )

    def _env_output(self, env: str, value: str, what: str) -> CfnOutput:
        """An output for one env var: `PAYPLAT_RATE_LIMITS_TABLE` -> `RateLimitsTable`, its
        description starting with the variable's name, so a script can export them all."""
        if not env.startswith(_ENV_PREFIX):
            raise ValueError(f"{env} is not a payplat environment variable")
        output_id = "".join(part.capitalize() for part in env.removeprefix(_ENV_PREFIX).split("_"))
        return CfnOutput(self, output_id, value=value, description=f"{env}: the {what}")
