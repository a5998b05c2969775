"""The KMS key that signs access tokens (ES256); the private half never leaves KMS.

`payplat keys rotate` creates further signing keys at run time and tags them with
`PURPOSE_TAG`; this key carries the same tag, so one rule describes every signing key.
"""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.resources import SIGNING_KEY
from payplat.oauth.dal.kms_signer import PURPOSE_TAG

# Sign tokens and read the public halves for the JWKS; nothing else, on any key.
SIGN_ACTIONS = ("kms:Sign", "kms:GetPublicKey")
# Every key of this account and region, narrowed by the tag condition below. Built from the
# pseudo parameters, not `Stack.format_arn`: with a concrete stack env that would render
# literal values and the cdk-nag suppression below would no longer match the finding.
TAGGED_KEYS_ARN = f"arn:{Aws.PARTITION}:kms:{Aws.REGION}:{Aws.ACCOUNT_ID}:key/*"
_TAGGED_KEYS_FINDING = "Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*"


class SigningKey(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.key = self._build_key()

    @property
    def key_arn(self) -> str:
        return self.key.key_arn

    def grant_sign(self, role: iam.Role) -> None:
        """Sign with this key and with the tagged keys `payplat keys rotate` creates later."""
        self.key.grant(role, *SIGN_ACTIONS)
        role.add_to_principal_policy(self._tagged_keys_statement())
        NagSuppressions.add_resource_suppressions(
            role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason=(
                        "Signing keys are also created after deployment by `payplat keys "
                        "rotate`, so their ARNs cannot be named here; the statement is limited "
                        "to kms:Sign/GetPublicKey and, by an aws:ResourceTag condition, to "
                        "keys tagged as token-signing keys"
                    ),
                    applies_to=[_TAGGED_KEYS_FINDING],
                )
            ],
            apply_to_children=True,
        )

    def _build_key(self) -> kms.Key:
        key = kms.Key(
            self,
            "Key",
            key_spec=kms.KeySpec(SIGNING_KEY.key_spec),
            key_usage=kms.KeyUsage(SIGNING_KEY.key_usage),
            alias=SIGNING_KEY.alias,
            description="payplat access-token signing key (ES256, RFC 9068 JWTs)",
            # Deleting it would invalidate every token and the published JWKS at once.
            removal_policy=RemovalPolicy.RETAIN,
        )
        Tags.of(key).add(*PURPOSE_TAG)
        return key

    @staticmethod
    def _tagged_keys_statement() -> iam.PolicyStatement:
        tag_key, tag_value = PURPOSE_TAG
        return iam.PolicyStatement(
            sid="SignWithTaggedKeys",
            actions=list(SIGN_ACTIONS),
            resources=[TAGGED_KEYS_ARN],
            conditions={"StringEquals": {f"aws:ResourceTag/{tag_key}": tag_value}},
        )
