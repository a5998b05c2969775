"""A synthesized stack and the lookups the infra tests share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import CfnElement, Stack
from aws_cdk.assertions import Template
from constructs import IConstruct

from infra.stack import PayplatStack

Json = dict[str, Any]


@dataclass(frozen=True)
class Synthesized:
    stack: PayplatStack
    template: Template
    json: Json

    @property
    def resources(self) -> dict[str, Json]:
        resources: dict[str, Json] = self.json["Resources"]
        return resources

    def of_type(self, resource_type: str) -> dict[str, Json]:
        return {
            logical_id: resource
            for logical_id, resource in self.resources.items()
            if resource["Type"] == resource_type
        }

    def logical_id(self, construct: IConstruct) -> str:
        """The logical id of an L2 construct's CloudFormation resource (or of an L1)."""
        element = construct if isinstance(construct, CfnElement) else construct.node.default_child
        assert isinstance(element, CfnElement), f"{construct.node.path} has no resource"
        logical_id: str = Stack.of(element).resolve(element.logical_id)
        return logical_id

    def properties(self, construct: IConstruct) -> Json:
        properties: Json = self.resources[self.logical_id(construct)]["Properties"]
        return properties

    def role_statements(self, role_logical_id: str) -> list[Json]:
        """Every statement of every IAM policy attached to the role (inline ones included)."""
        statements: list[Json] = []
        for policy in self.of_type("AWS::IAM::Policy").values():
            if {"Ref": role_logical_id} in policy["Properties"].get("Roles", []):
                statements += _as_list(policy["Properties"]["PolicyDocument"]["Statement"])
        role = self.resources[role_logical_id]["Properties"]
        for inline in role.get("Policies", []):
            statements += _as_list(inline["PolicyDocument"]["Statement"])
        return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
