"""The Contributor Insights rules that rank partners, over the functions' JSON log lines: by
requests (the `request` line payplat.http writes per answered request) and by volume (the
money lines, per currency). The dashboards chart their top contributors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.names import (
    REQUEST_LOG_MESSAGE,
    TOP_PARTNERS_BY_REQUESTS_RULE,
    TOP_PARTNERS_BY_VOLUME_RULE,
    VOLUME_KINDS,
)
from payplat.audit.metrics import MONEY_MOVED


class ContributorInsights:
    """The two rules.

    Made in `scope`, the Monitoring construct: see there why not in a construct of its own.
    """

    def __init__(
        self,
        scope: Construct,
        *,
        request_log_groups: Sequence[logs.ILogGroup],
        money_log_groups: Sequence[logs.ILogGroup],
    ) -> None:
        self._scope = scope
        self.top_partners_by_requests = self._build_rule(
            "TopPartnersByRequests",
            TOP_PARTNERS_BY_REQUESTS_RULE,
            request_log_groups,
            {
                "Keys": ["$.client_id"],
                "Filters": [
                    {"Match": "$.message", "In": [REQUEST_LOG_MESSAGE]},
                    {"Match": "$.client_id", "IsPresent": True},
                ],
            },
            aggregate_on="Count",
        )
        self.top_partners_by_volume = self._build_rule(
            "TopPartnersByVolume",
            TOP_PARTNERS_BY_VOLUME_RULE,
            money_log_groups,
            {
                # Amounts only add up within a currency: a contributor is a partner and one.
                "Keys": ["$.client_id", "$.currency"],
                "ValueOf": f"$.{MONEY_MOVED.name}",
                "Filters": [
                    {"Match": "$.kind", "In": list(VOLUME_KINDS)},
                    {"Match": f"$.{MONEY_MOVED.name}", "IsPresent": True},
                ],
            },
            aggregate_on="Sum",
        )

    def _build_rule(
        self,
        construct_id: str,
        rule_name: str,
        log_groups: Sequence[logs.ILogGroup],
        contribution: Mapping[str, Any],
        *,
        aggregate_on: str,
    ) -> cloudwatch.CfnInsightRule:
        body = {
            "Schema": {"Name": "CloudWatchLogRule", "Version": 1},
            "LogGroupNames": [group.log_group_name for group in log_groups],
            "LogFormat": "JSON",
            "Contribution": contribution,
            "AggregateOn": aggregate_on,
        }
        return cloudwatch.CfnInsightRule(
            self._scope,
            construct_id,
            rule_name=rule_name,
            rule_state="ENABLED",
            rule_body=Stack.of(self._scope).to_json_string(body),
        )
