"""The KMS key that signs the audit trail's seals (ECDSA P-256); the private half never
leaves KMS.

A key of its own, not a token-signing key: those rotate and are retired once their tokens
expire, while a seal must still verify years later. Operators read the public half
(kms:GetPublicKey) with their own credentials to run `payplat audit verify`; no role here
needs it.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.resources import AUDIT_SEALING_KEY

# Sealing only: the sealer never verifies, and reading the public key is the verifier's job.
SEAL_ACTIONS = ("kms:Sign",)


class SealingKey(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.key = self._build_key()

    @property
    def key_arn(self) -> str:
        return self.key.key_arn

    def grant_seal(self, role: iam.IRole) -> None:
        """kms:Sign with this key, and nothing else on any key."""
        self.key.grant(role, *SEAL_ACTIONS)

    def _build_key(self) -> kms.Key:
        return kms.Key(
            self,
            "Key",
            key_spec=kms.KeySpec(AUDIT_SEALING_KEY.key_spec),
            key_usage=kms.KeyUsage(AUDIT_SEALING_KEY.key_usage),
            alias=AUDIT_SEALING_KEY.alias,
            description="payplat audit sealing key (ECDSA P-256 signatures over the seal chain)",
            # Without it no seal written so far could be verified again: kept on stack delete.
            # (KMS rotates no asymmetric key; cdk-nag's rotation rule is for symmetric ones.)
            removal_policy=RemovalPolicy.RETAIN,
        )
