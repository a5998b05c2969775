"""Audit records: one structured JSON line per security decision or money movement.

Writing one is a local write to stdout, never a network call: in AWS a CloudWatch Logs
subscription filter (pattern in infra/resources.py) carries the lines to the Kinesis stream
`audit`; locally the runner does the same. Raw tokens, secrets and passwords are never passed
in: a token appears as its `jti`, a client secret not at all.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = 1
LOGGER_NAME = "payplat.audit"
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

    def to_json(self) -> str:
        return json.dumps(_without_none(asdict(self)), separators=(",", ":"))


def _without_none(value: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _without_none(item) if isinstance(item, dict) and key != "details" else item
        for key, item in value.items()
        if item is not None
    }


def _build_logger() -> logging.Logger:
    audit_logger = logging.getLogger(LOGGER_NAME)
    audit_logger.setLevel(logging.INFO)
    audit_logger.propagate = False  # never mixed into, or re-formatted by, the app logger
    if not audit_logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        audit_logger.addHandler(handler)
    return audit_logger


_audit_logger = _build_logger()


def record(event: AuditEvent) -> None:
    """Write `event` as one JSON log line."""
    _audit_logger.info(event.to_json())
