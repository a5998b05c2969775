"""The KMS key that signs access tokens (ES256); the private half never leaves KMS."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.resources import SIGNING_KEY


class SigningKey(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            key_spec=kms.KeySpec(SIGNING_KEY.key_spec),
            key_usage=kms.KeyUsage(SIGNING_KEY.key_usage),
            alias=SIGNING_KEY.alias,
            description="payplat access-token signing key (ES256, RFC 9068 JWTs)",
            # Deleting it would invalidate every token and the published JWKS at once.
            removal_policy=RemovalPolicy.RETAIN,
        )

    @property
    def key_arn(self) -> str:
        return self.key.key_arn

    def grant_sign(self, grantee: iam.IGrantable) -> None:
        """Sign tokens and read the public half for the JWKS; nothing else on this key."""
        self.key.grant(grantee, "kms:Sign", "kms:GetPublicKey")
