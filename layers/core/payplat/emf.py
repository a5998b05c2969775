"""CloudWatch Embedded Metric Format, written as one stdout line: no API call, no SDK.

Every function counts through here (the authorizer too, which must import no more than it
needs). Dimensions must stay bounded: a route, a reason, a status class — never an id.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import Any

NAMESPACE = "Payplat"
SERVICE = "payplat"


def count(name: str, value: float = 1, **dimensions: str) -> None:
    emit(name, value, "Count", **dimensions)


def emit(name: str, value: float, unit: str, **dimensions: str) -> None:
    sys.stdout.write(json.dumps(document(name, value, unit, **dimensions), separators=(",", ":")))
    sys.stdout.write("\n")


def emit_many(
    values: Mapping[str, tuple[float, str]],
    properties: Mapping[str, Any] | None = None,
    **dimensions: str,
) -> None:
    """Several metrics sharing dimensions, in one line; `properties` ride along as plain
    fields of the log line (for Logs Insights and Contributor Insights), not dimensions."""
    document = documents(values, **dimensions)
    document.update({k: v for k, v in (properties or {}).items() if k not in document})
    sys.stdout.write(json.dumps(document, separators=(",", ":")))
    sys.stdout.write("\n")


def document(name: str, value: float, unit: str, **dimensions: str) -> dict[str, Any]:
    """The EMF document for one metric value (what `emit` writes; audit lines embed it)."""
    return documents({name: (value, unit)}, **dimensions)


def documents(values: Mapping[str, tuple[float, str]], **dimensions: str) -> dict[str, Any]:
    dims = {"service": SERVICE, **dimensions}
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [list(dims)],
                    "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
                }
            ],
        },
        **dims,
        **{name: value for name, (value, _) in values.items()},
    }
