"""CloudWatch Embedded Metric Format, written as one stdout line: no API call, no SDK.

Every function counts through here (the authorizer too, which must import no more than it
needs). Only metrics of the catalogue (payplat.audit.metrics) are written, each with exactly its
dimensions and unit: the dashboards are built from the catalogue, so a metric it does not
name would be a metric nobody sees. Dimensions stay bounded: a route, a reason, a status
class — never an id.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any

from payplat.audit.metrics import BY_NAME, MetricSpec

NAMESPACE = "Payplat"
SERVICE = "payplat"


class UnknownMetric(ValueError):
    """A metric, unit or dimension the catalogue does not have: a bug at the call site."""


def metric(spec: MetricSpec, value: float = 1, **dimensions: str) -> None:
    """One value of a catalogue metric, with exactly the dimensions the spec names."""
    _write(_document(((spec, value),), dimensions, None))


def metrics(
    values: Iterable[tuple[MetricSpec, float]],
    properties: Mapping[str, Any] | None = None,
    **dimensions: str,
) -> None:
    """Several catalogue metrics in one line. Each takes, of `dimensions`, those its spec
    names (one EMF directive per dimension set), so a line can carry metrics of different
    dimension sets; every dimension given must be some spec's. `properties` ride along as
    plain fields (for Logs Insights and Contributor Insights), never as dimensions."""
    _write(_document(tuple(values), dimensions, properties))


def count(name: str, value: float = 1, **dimensions: str) -> None:
    emit(name, value, "Count", **dimensions)


def emit(name: str, value: float, unit: str, **dimensions: str) -> None:
    _write(document(name, value, unit, **dimensions))


def emit_many(
    values: Mapping[str, tuple[float, str]],
    properties: Mapping[str, Any] | None = None,
    **dimensions: str,
) -> None:
    """Several metrics sharing dimensions, in one line; `properties` ride along as plain
    fields of the log line (for Logs Insights and Contributor Insights), not dimensions."""
    specs = tuple((_spec(name, unit), value) for name, (value, unit) in values.items())
    _write(_document(specs, dimensions, properties))


def document(name: str, value: float, unit: str, **dimensions: str) -> dict[str, Any]:
    """The EMF document for one metric value (what `emit` writes; audit lines embed it)."""
    return documents({name: (value, unit)}, **dimensions)


def documents(values: Mapping[str, tuple[float, str]], **dimensions: str) -> dict[str, Any]:
    specs = tuple((_spec(name, unit), value) for name, (value, unit) in values.items())
    return _document(specs, dimensions, None)


def _spec(name: str, unit: str) -> MetricSpec:
    spec = BY_NAME.get(name)
    if spec is None:
        raise UnknownMetric(f"{name} is not in the metric catalogue")
    if unit != spec.unit:
        raise UnknownMetric(f"{name} is measured in {spec.unit}, not {unit}")
    return spec


def _document(
    values: tuple[tuple[MetricSpec, float], ...],
    dimensions: Mapping[str, str],
    properties: Mapping[str, Any] | None,
) -> dict[str, Any]:
    # A dict lookup and a few tuple compares a value: cheap enough for the authorizer.
    directives: dict[tuple[str, ...], list[dict[str, str]]] = {}
    named: set[str] = set()
    for spec, _ in values:
        if BY_NAME.get(spec.name) != spec:
            raise UnknownMetric(f"{spec.name} is not in the metric catalogue")
        missing = [name for name in spec.dimensions if name not in dimensions]
        if missing:
            raise UnknownMetric(f"{spec.name} needs the dimensions {', '.join(missing)}")
        directives.setdefault(spec.dimensions, []).append({"Name": spec.name, "Unit": spec.unit})
        named.update(spec.dimensions)
    stray = sorted(set(dimensions) - named)
    if stray:
        raise UnknownMetric(f"{', '.join(stray)}: not a dimension of these metrics")
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["service", *names]],
                    "Metrics": metric_list,
                }
                for names, metric_list in directives.items()
            ],
        },
        "service": SERVICE,
        **dimensions,
        **{spec.name: value for spec, value in values},
    }
    for key, value in (properties or {}).items():
        document.setdefault(key, value)  # a property never overwrites a dimension or value
    return document


def _write(document: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, separators=(",", ":")))
    sys.stdout.write("\n")
