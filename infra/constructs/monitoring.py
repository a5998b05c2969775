"""What on-call and finance ops watch: alarms to an SNS topic, the finance-ops and
platform-ops dashboards, and the Contributor Insights rules that rank partners.

One module a concern: `alarms` (the topic and every alarm), `contributor_insights` (the rules),
`dashboards` (both dashboards and their graph helpers), over `metric_queries` (payplat's
catalogue metrics as SEARCH and Metrics Insights queries, Firehose's metrics). Their builders
are plain classes, not constructs: every resource is made in this construct, where it always
was, so its construct path and logical ID stay as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.alarms import Alarms
from infra.constructs.contributor_insights import ContributorInsights
from infra.constructs.dashboards import Dashboards
from infra.constructs.metric_queries import Watched


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: apigw.Stage,
        authorizer: lambda_.IFunction,
        functions: Mapping[str, lambda_.IFunction],
        forwarder: lambda_.IFunction,
        sealer: lambda_.IFunction,
        dlqs: Mapping[str, sqs.IQueue],
        webhook_dispatcher: lambda_.IFunction,
        webhook_dlqs: Mapping[str, sqs.IQueue],
        delivery: firehose.CfnDeliveryStream,
        request_log_groups: Sequence[logs.ILogGroup],
        money_log_groups: Sequence[logs.ILogGroup],
    ) -> None:
        super().__init__(scope, construct_id)
        watched = Watched(
            stage=stage,
            authorizer=authorizer,
            functions=functions,
            forwarder=forwarder,
            sealer=sealer,
            dlqs=dlqs,
            webhook_dispatcher=webhook_dispatcher,
            webhook_dlqs=webhook_dlqs,
            delivery_stream_name=delivery.ref,
        )
        alarms = Alarms(self, watched)
        self.topic = alarms.topic
        self.alarms = alarms.alarms
        insights = ContributorInsights(
            self, request_log_groups=request_log_groups, money_log_groups=money_log_groups
        )
        self.top_partners_by_requests = insights.top_partners_by_requests
        self.top_partners_by_volume = insights.top_partners_by_volume
        dashboards = Dashboards(
            self,
            watched,
            requests_rule_name=self.top_partners_by_requests.attr_rule_name,
            volume_rule_name=self.top_partners_by_volume.attr_rule_name,
        )
        self.finance_dashboard = dashboards.finance
        self.platform_dashboard = dashboards.platform
