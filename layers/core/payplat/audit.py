"""Audit records: one structured JSON line per security decision or money movement.

Writing one is a local write to stdout, never a network call: in AWS a CloudWatch Logs
subscription filter (pattern in infra/resources.py) carries the lines to the Kinesis stream
`audit`; locally the runner does the same. Raw tokens, secrets and passwords are never passed
in: a token appears as its `jti`, a client secret not at all.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from payplat import emf

SCHEMA_VERSION = 1
_MAX_USER_AGENT = 512


@dataclass(frozen=True, slots=True)
class Actor:
    client_id: str | None = None
    sub: str | None = None


@dataclass(frozen=True, slots=True)
class Origin:
    source_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    def __post_init__(self) -> None:
        if self.user_agent is not None and len(self.user_agent) > _MAX_USER_AGENT:
            object.__setattr__(self, "user_agent", self.user_agent[:_MAX_USER_AGENT])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Schema version 1 of an audit record."""

    type: str
    outcome: str  # "success" | "failure"
    actor: Actor = Actor()
    origin: Origin = Origin()
    resource: str | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    log_type: str = "AUDIT"  # what the subscription filter matches
    schema_version: int = SCHEMA_VERSION
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: str = field(default_factory=_now)

    def as_dict(self) -> dict[str, Any]:
        """The record as written; absent (None) fields are left out. Built by hand: it runs
        on every request, and dataclasses.asdict's deep copy costs more than the rest."""
        record: dict[str, Any] = {
            "log_type": self.log_type,
            "schema_version": self.schema_version,
            "event_id": self.event_id,
            "time": self.time,
            "type": self.type,
            "outcome": self.outcome,
            "actor": _present(client_id=self.actor.client_id, sub=self.actor.sub),
            "origin": _present(
                source_ip=self.origin.source_ip,
                user_agent=self.origin.user_agent,
                request_id=self.origin.request_id,
            ),
        }
        if self.resource is not None:
            record["resource"] = self.resource
        if self.reason is not None:
            record["reason"] = self.reason
        record["details"] = self.details
        return record


def _present(**values: str | None) -> dict[str, str]:
    return {key: value for key, value in values.items() if value is not None}


Sink = Callable[[str], None]


def _stdout(line: str) -> None:
    # sys.stdout read per call: Lambda's, or the file the local runner points it at.
    sys.stdout.write(line + "\n")


# Where audit lines go: stdout (in AWS, the log group and its subscription filter); the local
# runner adds a sink that ships to moto's Kinesis, tests add one that captures.
_sinks: list[Sink] = [_stdout]


def add_sink(sink: Sink) -> None:
    _sinks.append(sink)


def remove_sink(sink: Sink) -> None:
    _sinks.remove(sink)


def set_sinks(*sinks: Sink) -> None:
    _sinks[:] = sinks


def record(event: AuditEvent, metric: str | None = None, **dimensions: str) -> None:
    """Write `event` as one JSON line. With `metric`, the same line is also a CloudWatch EMF
    document counting one `metric` with `dimensions` (one line, one serialisation, for the
    hot path)."""
    document = event.as_dict()
    if metric is not None:
        document.update(emf.document(metric, 1, "Count", **dimensions))
    line = json.dumps(document, separators=(",", ":"))
    for sink in _sinks:
        sink(line)
