"""The DynamoDB tables, one per `TableSpec`, and the grants functions get on them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.resources import AUDIT, CLIENTS, LEDGER, TABLES, USERS, WEBHOOKS, TableSpec

# Money, partner registrations and account holders cannot be recreated; nor can the audit
# seal chain's heads (without them the next seal cannot link to the last one), nor partners'
# webhook endpoints and their signing secrets. Tokens and rate-limit buckets expire by TTL
# anyway, so a mistaken delete of those costs nothing lasting.
_DELETION_PROTECTED = frozenset({CLIENTS.id, USERS.id, LEDGER.id, AUDIT.id, WEBHOOKS.id})

# Explicit action lists instead of `table.grant_*_data`: those add `<table>/index/*` and
# Scan/stream actions no function needs. TransactWriteItems/TransactGetItems are authorized
# per item through these same actions.
_READ_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
)
_WRITE_ACTIONS = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
)


class Access(Enum):
    # Query on the indexes a `TableAccess` names and nothing on the table's own items: for a
    # function that only ever lists through an index.
    QUERY_INDEXES = "query_indexes"
    READ = "read"
    # Get, put and update items by key, and nothing else (no query, no delete): for items that
    # only ever move forward, like the audit seal chain's heads.
    READ_UPDATE = "read_update"
    READ_WRITE = "read_write"


_TABLE_ACTIONS = {
    Access.QUERY_INDEXES: (),
    Access.READ: _READ_ACTIONS,
    Access.READ_UPDATE: ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
    Access.READ_WRITE: _READ_ACTIONS + _WRITE_ACTIONS,
}


@dataclass(frozen=True, slots=True)
class TableAccess:
    """What a function may do on a table, and which of its indexes it queries (by name: a
    function gets Query on exactly these, never on `index/*`)."""

    access: Access
    indexes: tuple[str, ...] = ()
    # Only items whose partition key matches one of these (IAM `dynamodb:LeadingKeys`, `*`
    # wildcards): for a function that reads one kind of item of a table holding many.
    leading_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.access is Access.QUERY_INDEXES and not self.indexes:
            raise ValueError("QUERY_INDEXES access names at least one index")
        if self.leading_keys and self.indexes:
            raise ValueError("leading_keys narrows item access, not index queries")


READ = TableAccess(Access.READ)
READ_UPDATE = TableAccess(Access.READ_UPDATE)
READ_WRITE = TableAccess(Access.READ_WRITE)


class Data(Construct):
    """Every table in `infra.resources.TABLES`; names come from CloudFormation."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self._tables = {spec.id: self._build_table(spec) for spec in TABLES}

    def table(self, spec: TableSpec) -> dynamodb.Table:
        return self._tables[spec.id]

    def grant(self, grantee: iam.IGrantable, spec: TableSpec, access: TableAccess) -> None:
        """Give `grantee` exactly `access` on the table, and Query on the indexes it names."""
        table = self.table(spec)
        actions = _TABLE_ACTIONS[access.access]
        if actions and access.leading_keys:
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=list(actions),
                    resources=[table.table_arn],
                    conditions={
                        "ForAllValues:StringLike": {
                            "dynamodb:LeadingKeys": list(access.leading_keys)
                        }
                    },
                )
            )
        elif actions:
            iam.Grant.add_to_principal(
                grantee=grantee, actions=list(actions), resource_arns=[table.table_arn]
            )
        if access.indexes:
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=["dynamodb:Query"],
                resource_arns=[
                    f"{table.table_arn}/index/{name}" for name in _index_names(spec, access.indexes)
                ],
            )

    def _build_table(self, spec: TableSpec) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            _construct_id(spec.id),
            partition_key=_string_key(spec.partition_key),
            sort_key=_string_key(spec.sort_key) if spec.sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            # The aws/dynamodb key: encrypted at rest and audited in CloudTrail, without
            # putting kms:* data-key actions into every function's role.
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=spec.id in _DELETION_PROTECTED,
            time_to_live_attribute=spec.ttl_attribute,
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES if spec.stream else None,
            removal_policy=RemovalPolicy.RETAIN,
        )
        for index in spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_string_key(index.partition_key),
                sort_key=_string_key(index.sort_key) if index.sort_key else None,
                projection_type=dynamodb.ProjectionType.ALL,
            )
        return table


def _index_names(spec: TableSpec, names: Sequence[str]) -> list[str]:
    """`names`, each checked against the spec: a typo must fail synth, not a Query at run time."""
    unknown = set(names) - {index.name for index in spec.indexes}
    if unknown:
        raise ValueError(f"table {spec.id} has no index {sorted(unknown)}")
    return list(names)


def _string_key(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


def _construct_id(spec_id: str) -> str:
    """`rate-limits` -> `RateLimits`: CloudFormation logical ids are alphanumeric."""
    return "".join(part.capitalize() for part in spec_id.split("-"))
