"""What the alarms and dashboards read: the deployed pieces they watch (`Watched`), and the
metrics no L2 construct builds: payplat's own, from the catalogue (`payplat.audit.metrics`), as
SEARCH and Metrics Insights queries over exactly a spec's dimensions, and AWS's that a construct
here has no method for (Firehose's, by name).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs

from infra.constructs.names import DASHBOARD_PERIOD_S, METRICS_NAMESPACE, SERVICE_NAME
from infra.resources import AUDIT_SUBSCRIPTION_NAME
from payplat.audit.metrics import MetricSpec

# Every payplat metric carries this dimension besides its own (payplat.audit.emf).
SERVICE_DIMENSION = "service"
# AWS metric names (not ours, so not in the catalogue).
FIREHOSE_NAMESPACE = "AWS/Firehose"
FIREHOSE_FRESHNESS = "DeliveryToS3.DataFreshness"
FIREHOSE_SUCCESS = "DeliveryToS3.Success"
FIREHOSE_RECORDS = "DeliveryToS3.Records"
LAMBDA_ITERATOR_AGE = "IteratorAge"
WAF_BLOCKED = "BlockedRequests"


@dataclass(frozen=True)
class Watched:
    """The deployed pieces the alarms and dashboards read the metrics of."""

    stage: apigw.Stage
    authorizer: lambda_.IFunction
    functions: Mapping[str, lambda_.IFunction]
    forwarder: lambda_.IFunction
    sealer: lambda_.IFunction
    dlqs: Mapping[str, sqs.IQueue]
    webhook_dispatcher: lambda_.IFunction
    webhook_dlqs: Mapping[str, sqs.IQueue]
    delivery_stream_name: str


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


def firehose_metric(
    delivery_stream_name: str,
    metric_name: str,
    statistic: str,
    period: Duration,
    label: str | None = None,
) -> cloudwatch.Metric:
    """One of the archive delivery stream's metrics (FIREHOSE_*)."""
    return cloudwatch.Metric(
        namespace=FIREHOSE_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={"DeliveryStreamName": delivery_stream_name},
        statistic=statistic,
        period=period,
        label=label,
    )
