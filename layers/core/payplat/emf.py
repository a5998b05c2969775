"""CloudWatch Embedded Metric Format, written as one stdout line: no API call, no SDK.

Every function counts through here (the authorizer too, which must import no more than it
needs). Dimensions must stay bounded: a route, a reason, a status class — never an id.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

NAMESPACE = "Payplat"
SERVICE = "payplat"


def count(name: str, value: float = 1, **dimensions: str) -> None:
    emit(name, value, "Count", **dimensions)


def emit(name: str, value: float, unit: str, **dimensions: str) -> None:
    sys.stdout.write(json.dumps(document(name, value, unit, **dimensions), separators=(",", ":")))
    sys.stdout.write("\n")


def document(name: str, value: float, unit: str, **dimensions: str) -> dict[str, Any]:
    """The EMF document for one metric value (what `emit` writes; audit lines embed it)."""
    dims = {"service": SERVICE, **dimensions}
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [list(dims)],
                    "Metrics": [{"Name": name, "Unit": unit}],
                }
            ],
        },
        **dims,
        name: value,
    }
