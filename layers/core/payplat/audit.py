"""Audit records: one structured JSON line per security decision or money movement.

Writing one is a local `print`, never a network call: in AWS a CloudWatch Logs subscription
filter (pattern in infra/resources.py) carries the lines to the Kinesis stream `audit`;
locally the runner does the same. Raw tokens, secrets and passwords are never passed in: a
token appears as its `jti`, a client secret not at all.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
LOGGER_NAME = "payplat.audit"


class Actor(BaseModel):
    model_config = ConfigDict(frozen=True)

    client_id: str | None = None
    sub: str | None = None


class Origin(BaseModel):
    model_config = ConfigDict(frozen=True)

    source_ip: str | None = None
    user_agent: str | None = Field(default=None, max_length=512)
    request_id: str | None = None


class AuditEvent(BaseModel):
    """Schema version 1 of an audit record."""

    model_config = ConfigDict(frozen=True)

    log_type: str = "AUDIT"  # what the subscription filter matches
    schema_version: int = SCHEMA_VERSION
    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    time: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))
    type: str
    outcome: str  # "success" | "failure"
    actor: Actor = Actor()
    origin: Origin = Origin()
    resource: str | None = None
    reason: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


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
    _audit_logger.info(
        json.dumps(event.model_dump(mode="json", exclude_none=True), separators=(",", ":"))
    )
