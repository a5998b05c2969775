"""What finance ops and platform ops look at: the finance-ops dashboard (money moving on the
ledger, per currency) and the platform-ops dashboard (requests, latency, errors, throttles, auth
failures, the audit pipeline), with the graph helpers both are drawn with.

payplat's own metrics come from the catalogue (`payplat.audit.metrics`) and nowhere else: a chart
names a spec, never a metric or dimension string, so it cannot show a metric the code does
not write. Dimension values (`kind`, `route`) come from names.py and the route table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from infra.constructs.metric_queries import (
    FIREHOSE_FRESHNESS,
    FIREHOSE_RECORDS,
    LAMBDA_ITERATOR_AGE,
    SERVICE_DIMENSION,
    WAF_BLOCKED,
    Watched,
    firehose_metric,
    search,
)
from infra.constructs.names import (
    CAPTURE_KIND,
    DASHBOARD_PERIOD_S,
    FAILED_PAYMENT_KIND,
    FINANCE_DASHBOARD_NAME,
    METRICS_NAMESPACE,
    PAYMENT_KINDS,
    PLATFORM_DASHBOARD_NAME,
    REFUND_KIND,
    RELEASE_KINDS,
    SERVICE_NAME,
    TOP_CONTRIBUTORS,
    WAF_METRIC_NAME,
)
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

# The expirer writes the pending-capture gauges once a sweep, every 15 minutes.
GAUGE_PERIOD_S = 900

_PERIOD = Duration.seconds(DASHBOARD_PERIOD_S)
_FULL, _HALF, _THIRD = 24, 12, 8
_TEXT_HEIGHT, _GRAPH_HEIGHT = 4, 6


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


class Dashboards:
    """The finance-ops and platform-ops dashboards.

    Made in `scope`, the Monitoring construct: see there why not in a construct of its own.
    """

    def __init__(
        self,
        scope: Construct,
        watched: Watched,
        *,
        requests_rule_name: str,
        volume_rule_name: str,
    ) -> None:
        self._scope = scope
        self._watched = watched
        self._requests_rule_name = requests_rule_name
        self._volume_rule_name = volume_rule_name
        self.finance = self._build_finance_dashboard()
        self.platform = self._build_platform_dashboard()

    def _build_finance_dashboard(self) -> cloudwatch.Dashboard:
        kind = MONEY_MOVEMENTS.dimensions[0]
        by_kind_currency = f"{_dim('kind')} {_dim('currency')}"
        paid = {kind: PAYMENT_KINDS}
        succeeded = _total(MONEY_MOVEMENTS, "succeeded (payment + authorization)", paid)
        failed = _total(MONEY_MOVEMENTS, "failed", {kind: (FAILED_PAYMENT_KIND,)})
        return cloudwatch.Dashboard(
            self._scope,
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
                        rule_name=self._volume_rule_name,
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
        stage = self._watched.stage
        protected_routes = tuple(route.name for route in ROUTES if route.protected)
        status_class = REQUESTS.dimensions[1]
        route_status = f"{_dim('route')} {_dim('status_class')}"
        cache_hit_rate = cloudwatch.MathExpression(
            expression=(
                "100 * (1 - invocations / "
                f"SUM({search(REQUESTS, 'Sum', {'route': protected_routes})}))"
            ),
            using_metrics={
                "invocations": self._watched.authorizer.metric_invocations(
                    statistic="Sum", period=_PERIOD
                )
            },
            label="authorizer cache hit rate % (approximate)",
            period=_PERIOD,
        )
        return cloudwatch.Dashboard(
            self._scope,
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
                                for name, function in self._watched.functions.items()
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
                            self._watched.forwarder.metric(
                                LAMBDA_ITERATOR_AGE,
                                statistic="Maximum",
                                period=_PERIOD,
                                label="forwarder",
                            ),
                            self._watched.sealer.metric(
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
                            for name, queue in self._watched.dlqs.items()
                        ],
                        width=_THIRD,
                    ),
                    _graph(
                        "Archive (Firehose): data freshness (s), records delivered",
                        [
                            firehose_metric(
                                self._watched.delivery_stream_name,
                                FIREHOSE_FRESHNESS,
                                "Maximum",
                                _PERIOD,
                                "freshness",
                            )
                        ],
                        right=[
                            firehose_metric(
                                self._watched.delivery_stream_name,
                                FIREHOSE_RECORDS,
                                "Sum",
                                _PERIOD,
                                "records",
                            )
                        ],
                        width=_THIRD,
                    ),
                ],
                [
                    ContributorsWidget(
                        rule_name=self._requests_rule_name,
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
