"""The payplat stack: composes the constructs; each construct owns one concern."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.constructs import Api, Audit, CoreLayer, Data, Functions, Schedules, SigningKey
from infra.resources import AUDIT_STREAM, TABLES
from payplat.config import Env

_ENV_PREFIX = "PAYPLAT_"


class PayplatStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.data = Data(self, "Data")
        self.signing_key = SigningKey(self, "SigningKey")
        self.audit = Audit(self, "Audit")
        self.layer = CoreLayer(self, "CoreLayer")
        # The API comes before the functions: their env carries its URL (issuer, JWKS).
        self.api = Api(self, "Api")
        self.functions = Functions(
            self,
            "Functions",
            layer=self.layer.layer,
            data=self.data,
            signing_key=self.signing_key,
            base_url=self.api.base_url,
        )
        self.api.add_routes(
            self.functions.route_handlers, authorizer=self.functions.authorizer.function
        )
        self.schedules = Schedules(self, "Schedules", expirer=self.functions.expirer.function)
        for function in self.functions.all:
            self.audit.subscribe(function.spec.name.capitalize(), function.log_group)
        self._build_outputs()

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

    def _env_output(self, env: str, value: str, what: str) -> CfnOutput:
        """An output for one env var: `PAYPLAT_RATE_LIMITS_TABLE` -> `RateLimitsTable`, its
        description starting with the variable's name, so a script can export them all."""
        if not env.startswith(_ENV_PREFIX):
            raise ValueError(f"{env} is not a payplat environment variable")
        output_id = "".join(part.capitalize() for part in env.removeprefix(_ENV_PREFIX).split("_"))
        return CfnOutput(self, output_id, value=value, description=f"{env}: the {what}")
