"""One place for Powertools' logger, tracer and metrics, shared by every function.

Correlation id = API Gateway request id. Responses of token and payment calls are never
captured into traces (they hold tokens and money data).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "payplat"
NAMESPACE = "Payplat"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

__all__ = ["NAMESPACE", "SERVICE", "MetricUnit", "count", "logger", "metrics", "tracer"]


def count(name: str, value: float = 1, **dimensions: str) -> None:
    """Emit one EMF metric now, with its own bounded dimensions (never a per-request value)."""
    from aws_lambda_powertools.metrics import single_metric

    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as m:
        m.add_dimension(name="service", value=SERVICE)
        for key, dimension in dimensions.items():
            m.add_dimension(name=key, value=dimension)
