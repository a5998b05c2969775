"""The payplat stack: composes the constructs; each construct owns one concern."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.constructs import Api, Audit, CoreLayer, Data, Functions, Schedules, SigningKey


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

        CfnOutput(self, "ApiUrl", value=self.api.base_url, description="Base URL of the API")
        CfnOutput(self, "Issuer", value=self.api.base_url, description="Access-token issuer")
