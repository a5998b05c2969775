"""What on-call and finance ops watch: alarms to an SNS topic, the finance-ops and
platform-ops dashboards, and the Contributor Insights rules that rank partners.

payplat's own metrics come from the catalogue (`payplat.audit.metrics`) and nowhere else: a chart
names a spec, never a metric or dimension string, so it cannot show a metric the code does
not write. Dimension values (`kind`, `route`) come from names.py and the route table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.names import (
    ALARM_PERIOD_S,
    API_5XX_MIN_REQUESTS,
    API_5XX_RATE_PERCENT,
    ARCHIVE_FRESHNESS_S,
    AUDIT_LAG_S,
    AUTH_FAILURES_PER_PERIOD,
    CAPTURE_KIND,
    DASHBOARD_PERIOD_S,
    FAILED_PAYMENT_KIND,
    FINANCE_DASHBOARD_NAME,
    METRICS_NAMESPACE,
    PAYMENT_KINDS,
    PLATFORM_DASHBOARD_NAME,
    RATE_LIMITED_PER_PERIOD,
    REFUND_KIND,
    RELEASE_KINDS,
    REQUEST_LOG_MESSAGE,
    SERVICE_NAME,
    TOP_CONTRIBUTORS,
    TOP_PARTNERS_BY_REQUESTS_RULE,
    TOP_PARTNERS_BY_VOLUME_RULE,
    VOLUME_KINDS,
    WAF_METRIC_NAME,
    WEBHOOK_LAG_S,
)
from infra.resources import AUDIT_SUBSCRIPTION_NAME
from payplat.audit.metrics import (
    ACCESS_DENIED,
    AUDIT_EVENTS_FORWARDED,
    AUDIT_EVENTS_SEALED,
    AUTHORIZATION_EXPIRY_FAILURES,
    AUTHORIZATIONS_EXPIRED,
    CREDENTIAL_THROTTLED,
    IDEMPOTENT_REPLAYS,
    LATENCY,
    LIMITER_UNAVAILABLE,
    LOGIN_FAILED,
    MONEY_MOVED,
    MONEY_MOVEMENTS,
    PENDING_CAPTURE_VALUE,
    PENDING_CAPTURES,
    RATE_LIMITED,
    REQUESTS,
    TOKEN_REUSE_DETECTED,
    TOKENS_ISSUED,
    TOKENS_REFUSED,
    TOKENS_REVOKED,
    MetricSpec,
)
from payplat.routes import ROUTES

# Every payplat metric carries this dimension besides its own (payplat.audit.emf).
SERVICE_DIMENSION = "service"
# The expirer writes the pending-capture gauges once a sweep, every 15 minutes.
GAUGE_PERIOD_S = 900
# AWS metric names (not ours, so not in the catalogue).
FIREHOSE_NAMESPACE = "AWS/Firehose"
FIREHOSE_FRESHNESS = "DeliveryToS3.DataFreshness"
FIREHOSE_SUCCESS = "DeliveryToS3.Success"
FIREHOSE_RECORDS = "DeliveryToS3.Records"
LAMBDA_ITERATOR_AGE = "IteratorAge"
WAF_BLOCKED = "BlockedRequests"

_PERIOD = Duration.seconds(DASHBOARD_PERIOD_S)
_ALARM_PERIOD = Duration.seconds(ALARM_PERIOD_S)
_FULL, _HALF, _THIRD = 24, 12, 8
_TEXT_HEIGHT, _GRAPH_HEIGHT = 4, 6


def metric_schema(spec: MetricSpec) -> str:
    """`{Payplat,service,kind,currency}`: a SEARCH over exactly the spec's dimension set."""
    return "{" + ",".join((METRICS_NAMESPACE, SERVICE_DIMENSION, *spec.dimensions)) + "}"


def search(
    spec: MetricSpec,
    statistic: str,
    where: Mapping[str, Sequence[str]] | None = None,
    period_s: int = DASHBOARD_PERIOD_S,
) -> str:
    """A SEARCH expression for `spec`'s time series (one per dimension combination), narrowed
    to the given values of its dimensions."""
    terms = [f'MetricName="{spec.name}"', f'{SERVICE_DIMENSION}="{SERVICE_NAME}"']
    for dimension, values in (where or {}).items():
        if dimension not in spec.dimensions:
            raise ValueError(f"{spec.name} has no dimension {dimension}")
        terms.append("(" + " OR ".join(f'{dimension}="{value}"' for value in values) + ")")
    return f"SEARCH('{metric_schema(spec)} {' '.join(terms)}', '{statistic}', {period_s})"


def insights_sum(spec: MetricSpec) -> str:
    """A Metrics Insights query: `spec` summed over every value of its dimensions, one time
    series an alarm can watch (alarms cannot use SEARCH). Every identifier is quoted: `limit`
    is a reserved word there."""
    labels = ", ".join(f'"{name}"' for name in (SERVICE_DIMENSION, *spec.dimensions))
    # Not SQL run on a database: a CloudWatch query built from the catalogue's constants.
    return f'SELECT SUM("{spec.name}") FROM SCHEMA("{METRICS_NAMESPACE}", {labels})'  # noqa: S608


def subscription_delivery_errors() -> str:
    """A Metrics Insights query: DeliveryErrors summed over every log group's audit
    subscription (found by its name, so no log group or destination type is spelled here)."""
    return (
        'SELECT SUM(DeliveryErrors) FROM SCHEMA("AWS/Logs", DestinationType, FilterName, '  # noqa: S608
        f"LogGroupName) WHERE FilterName = '{AUDIT_SUBSCRIPTION_NAME}'"
    )


def _searched(
    spec: MetricSpec,
    statistic: str,
    label: str,
    where: Mapping[str, Sequence[str]] | None = None,
    period_s: int = DASHBOARD_PERIOD_S,
) -> cloudwatch.MathExpression:
    return cloudwatch.MathExpression(
        expression=search(spec, statistic, where, period_s),
        using_metrics={},
        label=label,
        period=Duration.seconds(period_s),
    )


def _total(
    spec: MetricSpec, label: str, where: Mapping[str, Sequence[str]] | None = None
) -> cloudwatch.MathExpression:
    """One line: the Sum of every series the search finds."""
    return cloudwatch.MathExpression(
        expression=f"SUM({search(spec, 'Sum', where)})",
        using_metrics={},
        label=label,
        period=_PERIOD,
    )


def _dim(name: str) -> str:
    """A dynamic label showing a series' value of dimension `name`."""
    return f"${{PROP('Dim.{name}')}}"


class ContributorsWidget(cloudwatch.ConcreteWidget):
    """A Contributor Insights graph: a rule's top contributors over time. CloudWatch
    dashboards have this widget (a metric widget with `insightRule`); CDK has no L2 for it."""

    def __init__(
        self, *, rule_name: str, title: str, order_by: str, width: int, height: int
    ) -> None:
        super().__init__(width, height)
        self._rule_name = rule_name
        self._title = title
        self._order_by = order_by

    def to_json(self) -> list[Any]:
        return [
            {
                "type": "metric",
                "width": self.width,
                "height": self.height,
                "x": self._x,
                "y": self._y,
                "properties": {
                    "title": self._title,
                    "region": Aws.REGION,
                    "view": "timeSeries",
                    "stacked": False,
                    "period": DASHBOARD_PERIOD_S,
                    "legend": {"position": "right"},
                    "insightRule": {
                        "ruleName": self._rule_name,
                        "orderBy": self._order_by,
                        "maxContributorCount": TOP_CONTRIBUTORS,
                    },
                },
            }
        ]


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
        self._stage = stage
        self._authorizer = authorizer
        self._functions = functions
        self._forwarder = forwarder
        self._sealer = sealer
        self._dlqs = dlqs
        self._webhook_dispatcher = webhook_dispatcher
        self._webhook_dlqs = webhook_dlqs
        self._delivery_stream_name = delivery.ref
        self.topic = self._build_topic()
        self.alarms = self._build_alarms()
        self.top_partners_by_requests = self._build_insight_rule(
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
        self.top_partners_by_volume = self._build_insight_rule(
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
        self.finance_dashboard = self._build_finance_dashboard()
        self.platform_dashboard = self._build_platform_dashboard()

    # --- alarms --------------------------------------------------------------------------

    def _build_topic(self) -> sns.Topic:
        # A key of ours: CloudWatch cannot publish to a topic under the aws/sns key, whose
        # policy no one can extend to the CloudWatch service.
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="payplat alarm topic encryption",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        return sns.Topic(
            self,
            "AlarmTopic",
            display_name="payplat alarms",
            master_key=key,
            enforce_ssl=True,
        )

    def _build_alarms(self) -> list[cloudwatch.Alarm]:
        action = actions.SnsAction(self.topic)
        alarms = [
            self._api_5xx_rate(),
            self._alarm(
                "AuthFailureSpike",
                "auth-failure-spike",
                self._insights(ACCESS_DENIED, "access denied"),
                threshold=AUTH_FAILURES_PER_PERIOD,
                description=(
                    f"More than {AUTH_FAILURES_PER_PERIOD} access-denied decisions (401/403, "
                    "every reason) in 5 minutes: token guessing, a leaked or revoked token in "
                    "use, or a partner whose tokens broke. See AccessDenied by reason on "
                    f"{PLATFORM_DASHBOARD_NAME}."
                ),
            ),
            self._alarm(
                "ThrottleSpike",
                "throttle-spike",
                self._insights(RATE_LIMITED, "rate limited"),
                threshold=RATE_LIMITED_PER_PERIOD,
                description=(
                    f"More than {RATE_LIMITED_PER_PERIOD} requests refused by the rate limiter "
                    "(429) in 5 minutes: a client ignoring Retry-After or a plan set too low. "
                    f"See RateLimited by limit and top partners on {PLATFORM_DASHBOARD_NAME}."
                ),
            ),
        ]
        for name, function in (("Forwarder", self._forwarder), ("Sealer", self._sealer)):
            slug = name.lower()
            alarms.append(
                self._alarm(
                    f"{name}Lag",
                    f"audit-{slug}-lag",
                    function.metric(LAMBDA_ITERATOR_AGE, statistic="Maximum", period=_ALARM_PERIOD),
                    threshold=AUDIT_LAG_S * 1000,
                    description=(
                        f"The audit {slug} is more than {AUDIT_LAG_S // 60} minutes behind its "
                        "stream (IteratorAge): it is failing or throttled, and the audit trail "
                        "is not being "
                        + ("forwarded" if name == "Forwarder" else "sealed")
                        + ". Check its errors and logs."
                    ),
                )
            )
            alarms.append(
                self._alarm(
                    f"{name}Errors",
                    f"audit-{slug}-errors",
                    function.metric_errors(statistic="Sum", period=_ALARM_PERIOD),
                    threshold=0,
                    description=(
                        f"The audit {slug} failed a batch (Errors > 0): it is retried, but a "
                        "batch that keeps failing ends in the DLQ. Check its logs."
                    ),
                )
            )
        for name, queue in self._dlqs.items():
            alarms.append(
                self._alarm(
                    f"{name.capitalize()}DlqNotEmpty",
                    f"audit-{name}-dlq-not-empty",
                    queue.metric_approximate_number_of_messages_visible(
                        statistic="Maximum", period=_ALARM_PERIOD
                    ),
                    threshold=0,
                    description=(
                        f"The audit {name}'s on-failure queue holds a batch it gave up on: "
                        "those records are NOT in the audit trail yet. The message names the "
                        "shard and sequence range; replay them before the stream expires them."
                    ),
                    # An idle queue stops reporting after a few hours: a message still waiting
                    # must keep the alarm raised, so missing data keeps the current state.
                    missing=cloudwatch.TreatMissingData.IGNORE,
                )
            )
        alarms += self._webhook_alarms()
        alarms.append(
            self._alarm(
                "AuditSubscriptionErrors",
                "audit-subscription-errors",
                cloudwatch.MathExpression(
                    expression=subscription_delivery_errors(),
                    using_metrics={},
                    label="audit lines not delivered",
                    period=_ALARM_PERIOD,
                ),
                threshold=0,
                description=(
                    "CloudWatch Logs could not deliver audit lines to the audit stream "
                    "(DeliveryErrors > 0 on a payplat-audit subscription): access decisions "
                    "and credential changes are not reaching the trail. Logs retries for up "
                    "to 24 hours; check the stream (throttling, KMS) and the subscription role."
                ),
            )
        )
        alarms.append(
            self._alarm(
                "ArchiveFreshness",
                "audit-archive-freshness",
                self._firehose(FIREHOSE_FRESHNESS, "Maximum", _ALARM_PERIOD),
                threshold=ARCHIVE_FRESHNESS_S,
                description=(
                    f"The oldest audit record not yet in the archive is over "
                    f"{ARCHIVE_FRESHNESS_S // 60} minutes old: Firehose cannot write to S3 "
                    "(permissions, KMS, Object Lock). See its error logs."
                ),
            )
        )
        alarms.append(
            self._alarm(
                "ArchiveDeliveryFailures",
                "audit-archive-delivery-failures",
                self._firehose(FIREHOSE_SUCCESS, "Minimum", _ALARM_PERIOD),
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                description=(
                    "A Firehose delivery to the audit archive failed (DeliveryToS3.Success < 1): "
                    "Firehose retries, then writes the records under the errors/ prefix."
                ),
            )
        )
        for alarm in alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        return alarms

    def _webhook_alarms(self) -> list[cloudwatch.Alarm]:
        dispatcher = self._webhook_dispatcher
        alarms = [
            self._alarm(
                "WebhookDispatcherLag",
                "webhook-dispatcher-lag",
                dispatcher.metric(LAMBDA_ITERATOR_AGE, statistic="Maximum", period=_ALARM_PERIOD),
                threshold=WEBHOOK_LAG_S * 1000,
                description=(
                    f"The webhook dispatcher is more than {WEBHOOK_LAG_S // 60} minutes behind "
                    "the audit stream (IteratorAge): partners' webhooks are late. Check its "
                    "errors and logs."
                ),
            ),
            self._alarm(
                "WebhookDispatcherErrors",
                "webhook-dispatcher-errors",
                dispatcher.metric_errors(statistic="Sum", period=_ALARM_PERIOD),
                threshold=0,
                description=(
                    "The webhook dispatcher failed an invocation (Errors > 0): a table or "
                    "queue it needs was unreachable. A partner's failing endpoint is not an "
                    "error. Check its logs."
                ),
            ),
        ]
        meaning = {
            "deliveries": (
                "a webhook delivery was given up on after three days of failed attempts (or "
                "a delivery message kept failing in the dispatcher). The message names the "
                "delivery, event and endpoint; the partner can redeliver the event with "
                "POST /v1/events/{id}/redeliver once their endpoint answers"
            ),
            "events": (
                "an audit-stream batch the webhook dispatcher could not make events of: those "
                "money movements have NO webhook events yet. The message names the shard and "
                "sequence range; replay them before the stream expires them"
            ),
        }
        for name, queue in self._webhook_dlqs.items():
            alarms.append(
                self._alarm(
                    f"Webhook{name.capitalize()}DlqNotEmpty",
                    f"webhook-{name}-dlq-not-empty",
                    queue.metric_approximate_number_of_messages_visible(
                        statistic="Maximum", period=_ALARM_PERIOD
                    ),
                    threshold=0,
                    description=f"The webhook {name} DLQ holds a message: {meaning[name]}.",
                    # A message still waiting must keep the alarm raised (see the audit DLQs).
                    missing=cloudwatch.TreatMissingData.IGNORE,
                )
            )
        return alarms

    def _api_5xx_rate(self) -> cloudwatch.Alarm:
        rate = cloudwatch.MathExpression(
            expression=(f"IF(requests >= {API_5XX_MIN_REQUESTS}, 100 * errors / requests, 0)"),
            using_metrics={
                "errors": self._stage.metric_server_error(statistic="Sum", period=_ALARM_PERIOD),
                "requests": self._stage.metric_count(statistic="Sum", period=_ALARM_PERIOD),
            },
            label="5xx % of requests",
            period=_ALARM_PERIOD,
        )
        return self._alarm(
            "Api5xxRate",
            "api-5xx-rate",
            rate,
            threshold=API_5XX_RATE_PERCENT,
            description=(
                f"More than {API_5XX_RATE_PERCENT}% of the API's requests answered 5xx in 5 "
                f"minutes (periods under {API_5XX_MIN_REQUESTS} requests are not judged). See "
                f"errors by route on {PLATFORM_DASHBOARD_NAME}."
            ),
        )

    def _alarm(
        self,
        construct_id: str,
        name: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        comparison: cloudwatch.ComparisonOperator = (
            cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
        ),
        # No data means nothing happened (no traffic, no batch, no delivery): all is well.
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=f"{SERVICE_NAME}-{name}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=1,
            treat_missing_data=missing,
        )

    @staticmethod
    def _insights(spec: MetricSpec, label: str) -> cloudwatch.MathExpression:
        return cloudwatch.MathExpression(
            expression=insights_sum(spec), using_metrics={}, label=label, period=_ALARM_PERIOD
        )

    def _firehose(
        self, metric_name: str, statistic: str, period: Duration, label: str | None = None
    ) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=FIREHOSE_NAMESPACE,
            metric_name=metric_name,
            dimensions_map={"DeliveryStreamName": self._delivery_stream_name},
            statistic=statistic,
            period=period,
            label=label,
        )

    # --- Contributor Insights ------------------------------------------------------------

    def _build_insight_rule(
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
            self,
            construct_id,
            rule_name=rule_name,
            rule_state="ENABLED",
            rule_body=Stack.of(self).to_json_string(body),
        )

    # --- dashboards ----------------------------------------------------------------------

    def _build_finance_dashboard(self) -> cloudwatch.Dashboard:
        kind = MONEY_MOVEMENTS.dimensions[0]
        by_kind_currency = f"{_dim('kind')} {_dim('currency')}"
        paid = {kind: PAYMENT_KINDS}
        succeeded = _total(MONEY_MOVEMENTS, "succeeded (payment + authorization)", paid)
        failed = _total(MONEY_MOVEMENTS, "failed", {kind: (FAILED_PAYMENT_KIND,)})
        return cloudwatch.Dashboard(
            self,
            "FinanceDashboard",
            dashboard_name=FINANCE_DASHBOARD_NAME,
            default_interval=Duration.days(1),
            widgets=[
                [cloudwatch.TextWidget(markdown=_FINANCE_INTRO, width=_FULL, height=_TEXT_HEIGHT)],
                [
                    _graph(
                        "Payments by currency (count)",
                        [_searched(MONEY_MOVEMENTS, "Sum", by_kind_currency, paid)],
                        width=_HALF,
                    ),
                    _graph(
                        "Payment value by currency (minor units)",
                        [_searched(MONEY_MOVED, "Sum", by_kind_currency, paid)],
                        width=_HALF,
                    ),
                ],
                [
                    _graph(
                        "Payments succeeded vs failed (insufficient funds)",
                        [succeeded, failed],
                        right=[
                            cloudwatch.MathExpression(
                                expression="100 * FILL(failed, 0) / (succeeded + FILL(failed, 0))",
                                using_metrics={"succeeded": succeeded, "failed": failed},
                                label="failure rate %",
                                period=_PERIOD,
                            )
                        ],
                        width=_HALF,
                    ),
                    _graph(
                        "Refunds by currency (count, value in minor units)",
                        [
                            _searched(
                                MONEY_MOVEMENTS, "Sum", _dim("currency"), {kind: (REFUND_KIND,)}
                            )
                        ],
                        right=[
                            _searched(MONEY_MOVED, "Sum", _dim("currency"), {kind: (REFUND_KIND,)})
                        ],
                        width=_HALF,
                    ),
                ],
                [
                    _graph(
                        "Captures pending by currency (count, value held)",
                        [
                            _searched(
                                PENDING_CAPTURES, "Maximum", _dim("currency"), None, GAUGE_PERIOD_S
                            )
                        ],
                        right=[
                            _searched(
                                PENDING_CAPTURE_VALUE,
                                "Maximum",
                                _dim("currency"),
                                None,
                                GAUGE_PERIOD_S,
                            )
                        ],
                        width=_THIRD,
                    ),
                    _graph(
                        "Captured by currency (count, value in minor units)",
                        [
                            _searched(
                                MONEY_MOVEMENTS, "Sum", _dim("currency"), {kind: (CAPTURE_KIND,)}
                            )
                        ],
                        right=[
                            _searched(MONEY_MOVED, "Sum", _dim("currency"), {kind: (CAPTURE_KIND,)})
                        ],
                        width=_THIRD,
                    ),
                    _graph(
                        "Held money released (cancelled, expired) and expiry failures",
                        [
                            _searched(
                                MONEY_MOVEMENTS, "Sum", by_kind_currency, {kind: RELEASE_KINDS}
                            ),
                            _metric(AUTHORIZATIONS_EXPIRED, "expired by the sweep"),
                            _metric(AUTHORIZATION_EXPIRY_FAILURES, "sweep could not release"),
                        ],
                        width=_THIRD,
                    ),
                ],
                [
                    ContributorsWidget(
                        rule_name=self.top_partners_by_volume.attr_rule_name,
                        title=(
                            f"Top {TOP_CONTRIBUTORS} partners by volume (payments + captures, "
                            "minor units, per currency)"
                        ),
                        order_by="Sum",
                        width=_FULL,
                        height=_GRAPH_HEIGHT + 2,
                    )
                ],
            ],
        )

    def _build_platform_dashboard(self) -> cloudwatch.Dashboard:
        stage = self._stage
        protected_routes = tuple(route.name for route in ROUTES if route.protected)
        status_class = REQUESTS.dimensions[1]
        route_status = f"{_dim('route')} {_dim('status_class')}"
        cache_hit_rate = cloudwatch.MathExpression(
            expression=(
                "100 * (1 - invocations / "
                f"SUM({search(REQUESTS, 'Sum', {'route': protected_routes})}))"
            ),
            using_metrics={
                "invocations": self._authorizer.metric_invocations(statistic="Sum", period=_PERIOD)
            },
            label="authorizer cache hit rate % (approximate)",
            period=_PERIOD,
        )
        return cloudwatch.Dashboard(
            self,
            "PlatformDashboard",
            dashboard_name=PLATFORM_DASHBOARD_NAME,
            default_interval=Duration.hours(3),
            widgets=[
                [cloudwatch.TextWidget(markdown=_PLATFORM_INTRO, width=_FULL, height=_TEXT_HEIGHT)],
                [
                    _graph(
                        "Requests by route and status class",
                        [_searched(REQUESTS, "Sum", route_status)],
                        width=_HALF,
                    ),
                    _graph(
                        "API Gateway: requests, 4xx (incl. 401/403/429 at the edge), 5xx",
                        [
                            stage.metric_count(statistic="Sum", period=_PERIOD, label="requests"),
                            stage.metric_client_error(statistic="Sum", period=_PERIOD, label="4xx"),
                            stage.metric_server_error(statistic="Sum", period=_PERIOD, label="5xx"),
                        ],
                        width=_HALF,
                    ),
                ],
                [
                    _graph(
                        "Latency p50 by route (in the function, ms)",
                        [_searched(LATENCY, "p50", _dim("route"))],
                        width=_THIRD,
                    ),
                    _graph(
                        "Latency p99 by route (in the function, ms)",
                        [_searched(LATENCY, "p99", _dim("route"))],
                        width=_THIRD,
                    ),
                    _graph(
                        "API Gateway latency p99 (ms): total and integration",
                        [
                            stage.metric_latency(statistic="p99", period=_PERIOD, label="latency"),
                            stage.metric_integration_latency(
                                statistic="p99", period=_PERIOD, label="integration"
                            ),
                        ],
                        width=_THIRD,
                    ),
                ],
                [
                    _graph(
                        "Errors: 5xx by route, function errors",
                        [
                            _searched(
                                REQUESTS, "Sum", f"5xx {_dim('route')}", {status_class: ("5xx",)}
                            ),
                            *(
                                function.metric_errors(
                                    statistic="Sum", period=_PERIOD, label=f"{name} errors"
                                )
                                for name, function in self._functions.items()
                            ),
                        ],
                        width=_HALF,
                    ),
                    _graph(
                        "Throttles: limiter 429s by limit, limiter unavailable, WAF blocks",
                        [
                            _searched(RATE_LIMITED, "Sum", _dim("limit")),
                            _searched(LIMITER_UNAVAILABLE, "Sum", f"limiter {_dim('mode')}"),
                            cloudwatch.MathExpression(
                                expression=(
                                    "SEARCH('{AWS/WAFV2,Region,Rule,WebACL} "
                                    f'MetricName="{WAF_BLOCKED}" WebACL="{WAF_METRIC_NAME}"\', '
                                    f"'Sum', {DASHBOARD_PERIOD_S})"
                                ),
                                using_metrics={},
                                label=f"WAF {_dim('Rule')}",
                                period=_PERIOD,
                            ),
                        ],
                        width=_HALF,
                    ),
                ],
                [
                    _graph(
                        "Auth failures: access denied by reason, sign-ins failed, lockouts by "
                        "bucket, reuse",
                        [
                            _searched(ACCESS_DENIED, "Sum", _dim("reason")),
                            _metric(LOGIN_FAILED, "sign-ins failed"),
                            _searched(CREDENTIAL_THROTTLED, "Sum", f"throttled {_dim('limit')}"),
                            _searched(TOKEN_REUSE_DETECTED, "Sum", f"reused {_dim('kind')}"),
                        ],
                        width=_THIRD,
                    ),
                    _graph(
                        "Token endpoint: issued by grant, refused by error, revoked",
                        [
                            _searched(TOKENS_ISSUED, "Sum", f"issued {_dim('grant_type')}"),
                            _searched(TOKENS_REFUSED, "Sum", f"refused {_dim('error')}"),
                            _searched(TOKENS_REVOKED, "Sum", f"revoked {_dim('token_type')}"),
                        ],
                        width=_THIRD,
                    ),
                    _graph(
                        "Authorizer cache hit rate (approximate) and idempotent replays",
                        [cache_hit_rate],
                        right=[_searched(IDEMPOTENT_REPLAYS, "Sum", f"replayed {_dim('route')}")],
                        width=_THIRD,
                    ),
                ],
                [
                    cloudwatch.TextWidget(
                        markdown=_AUDIT_INTRO, width=_FULL, height=_TEXT_HEIGHT - 1
                    )
                ],
                [
                    _graph(
                        "Audit lag: iterator age (ms)",
                        [
                            self._forwarder.metric(
                                LAMBDA_ITERATOR_AGE,
                                statistic="Maximum",
                                period=_PERIOD,
                                label="forwarder",
                            ),
                            self._sealer.metric(
                                LAMBDA_ITERATOR_AGE,
                                statistic="Maximum",
                                period=_PERIOD,
                                label="sealer",
                            ),
                        ],
                        width=_THIRD,
                    ),
                    _graph(
                        "Audit events forwarded and sealed; DLQ depth",
                        [
                            _searched(AUDIT_EVENTS_FORWARDED, "Sum", f"forwarded {_dim('type')}"),
                            _metric(AUDIT_EVENTS_SEALED, "sealed"),
                        ],
                        right=[
                            queue.metric_approximate_number_of_messages_visible(
                                statistic="Maximum", period=_PERIOD, label=f"{name} DLQ"
                            )
                            for name, queue in self._dlqs.items()
                        ],
                        width=_THIRD,
                    ),
                    _graph(
                        "Archive (Firehose): data freshness (s), records delivered",
                        [self._firehose(FIREHOSE_FRESHNESS, "Maximum", _PERIOD, "freshness")],
                        right=[self._firehose(FIREHOSE_RECORDS, "Sum", _PERIOD, "records")],
                        width=_THIRD,
                    ),
                ],
                [
                    ContributorsWidget(
                        rule_name=self.top_partners_by_requests.attr_rule_name,
                        title=f"Top {TOP_CONTRIBUTORS} partners by requests",
                        order_by="Sum",
                        width=_FULL,
                        height=_GRAPH_HEIGHT,
                    )
                ],
            ],
        )


def _graph(
    title: str,
    left: Sequence[cloudwatch.IMetric],
    *,
    width: int,
    right: Sequence[cloudwatch.IMetric] = (),
) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(
        title=title,
        left=list(left),
        right=list(right) or None,
        width=width,
        height=_GRAPH_HEIGHT,
        period=_PERIOD,
        legend_position=cloudwatch.LegendPosition.BOTTOM,
    )


def _metric(spec: MetricSpec, label: str) -> cloudwatch.Metric:
    """A catalogue metric without dimensions of its own (only `service`)."""
    if spec.dimensions:
        raise ValueError(f"{spec.name} has dimensions: search it instead")
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=spec.name,
        dimensions_map={SERVICE_DIMENSION: SERVICE_NAME},
        statistic="Sum",
        period=_PERIOD,
        label=label,
    )


_FINANCE_INTRO = f"""\
## payplat finance ops
Money moving on the ledger, from the payments and expirer functions' **EMF metrics** (namespace
`{METRICS_NAMESPACE}`, one data point per ledger movement: `{MONEY_MOVEMENTS.name}` counts,
`{MONEY_MOVED.name}` values in the currency's **minor units** — 5000 EUR is 50.00 EUR, JPY has
none). A payment captured at once is `payment`; a manual-capture payment is an `authorization`
(money held) and later a `capture`. Pending captures are the expirer's gauge, refreshed every 15
minutes. Top partners come from a **Contributor Insights** rule over the payments function's
log lines (`client_id` rides on each money line, never as a metric dimension). Amounts never add
up across currencies: every chart splits them."""

_PLATFORM_INTRO = f"""\
## payplat platform ops
Requests, latency and errors per route from the functions' **EMF metrics** (namespace
`{METRICS_NAMESPACE}`; `{REQUESTS.name}` and `{LATENCY.name}` are measured inside the function),
next to **API Gateway**'s own view of the `live` stage (which also sees what the WAF, the
authorizer and stage throttling answered before any function ran). The **authorizer cache hit
rate** is approximate: 1 - authorizer invocations / requests to protected routes that reached a
function. Requests the authorizer refused never reach a function, so under a flood of bad tokens
the rate reads low. Top partners by requests come from a Contributor Insights rule over the
`request` log lines of the oauth and payments functions."""

_AUDIT_INTRO = """\
### Audit trail
Ledger stream → **audit forwarder** → Kinesis `audit` ← audit log lines (subscription filters);
Kinesis → **Firehose** → S3 archive under Object Lock, and Kinesis → **audit sealer** → signed
hash-chain seals. Iterator age is how far each function trails its stream; a message in a DLQ is
a batch that is **not** in the trail yet (alarmed)."""
