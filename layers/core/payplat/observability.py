"""One place for Powertools' logger and tracer, shared by the oauth and payments functions.

Correlation id = API Gateway request id. Responses of token and payment calls are never
captured into traces (they hold tokens and money data). Metrics are EMF lines written by
payplat.audit.emf, which the authorizer uses too without importing Powertools: `metric(SPEC, ...)`
with a spec of the catalogue (payplat.audit.metrics), which checks the dimensions against it.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Tracer

from payplat.audit.emf import NAMESPACE, SERVICE, count, metric, metrics

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)

__all__ = ["NAMESPACE", "SERVICE", "count", "logger", "metric", "metrics", "tracer"]
