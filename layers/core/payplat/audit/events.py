"""Audit records: one structured JSON line per security decision or money movement, in one
versioned schema (`json_schema()`, published as docs/audit-event.schema.json).

Decisions are written here: a local write to stdout, never a network call; in AWS a
CloudWatch Logs subscription filter (pattern in infra/resources.py) carries the lines to the
Kinesis stream `audit`, locally the runner does the same. Money movements reach the same
stream from the ledger table's stream (payplat.payments.ledger_audit, λ audit_forwarder).
Raw tokens, secrets and passwords are never passed in: a token appears as its `jti`, a
client secret, password or card-like number not at all.
"""

from __future__ import annotations

import gzip
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from payplat.audit import emf

SCHEMA_VERSION = 1
_MAX_USER_AGENT = 512


@dataclass(frozen=True, slots=True)
class EventType:
    description: str
    details: tuple[str, ...] = ()  # what `details` must hold for this type


_PAYMENT_DETAILS = ("payment", "amount", "currency", "status")

# Every type an audit record may have. A record of any other type is a programming error.
EVENT_TYPES: dict[str, EventType] = {
    # the authorization server
    "token.issued": EventType("An access token was issued", ("grant_type", "jti", "scope")),
    "token.refused": EventType("A token request was refused", ("grant_type",)),
    "token.introspected": EventType("A client introspected a token", ("active",)),
    "token.revoked": EventType("A token (or a refresh token's family) was revoked"),
    "token.code_reuse_detected": EventType(
        "A spent authorization code came back: its tokens were revoked", ("family_id",)
    ),
    "token.refresh_reuse_detected": EventType(
        "A rotated refresh token came back: its family was revoked", ("family_id",)
    ),
    "login.succeeded": EventType("An account holder signed in"),
    "login.failed": EventType("A sign-in failed (never the password)"),
    "consent.granted": EventType("An account holder approved an app", ("scope",)),
    "consent.denied": EventType("An account holder denied an app"),
    "authorization.refused": EventType("An authorization request was refused"),
    "authorization.pushed": EventType(
        "A client pushed an authorization request (RFC 9126; never its request_uri)",
        ("response_type",),
    ),
    # the API gateway's decisions
    "access.allowed": EventType("The authorizer allowed a token"),
    "access.denied": EventType("A request was refused: 401 or 403, with the reason"),
    "rate_limited": EventType("A request was refused by a limit (429)", ("plan",)),
    "ratelimit.unavailable": EventType("The limiter's table was unreachable"),
    # partners, users, plans and keys (operators and registrations)
    "client.registered": EventType("A client was registered"),
    "client.updated": EventType("A client's registration was changed"),
    "client.deleted": EventType("A client deleted its registration (tokens stopped)"),
    "client.disabled": EventType("An operator disabled a client (tokens stopped)"),
    "client.plan_changed": EventType("An operator moved a client to another plan"),
    "client.secret_rotated": EventType("A client secret was rotated"),
    "key.rotated": EventType("The token-signing key was rotated"),
    "plan.set": EventType("An operator created or changed a rate-limit plan"),
    "user.created": EventType("An operator created an account holder"),
    "account.opened": EventType("An account was opened with its opening balance"),
    "webhook_endpoint.created": EventType("A partner registered a webhook endpoint", ("url",)),
    "webhook_endpoint.deleted": EventType("A partner deleted a webhook endpoint"),
    "webhook_endpoint.secret_rolled": EventType("A webhook signing secret was rolled"),
    # money (from the ledger table's stream)
    "payment.created": EventType("A payment was created", _PAYMENT_DETAILS),
    "payment.failed": EventType("A payment failed (funds did not move)", _PAYMENT_DETAILS),
    "payment.captured": EventType("A payment's funds moved to the payee", _PAYMENT_DETAILS),
    "payment.canceled": EventType("An authorization was canceled", _PAYMENT_DETAILS),
    "payment.expired": EventType("An authorization expired uncaptured", _PAYMENT_DETAILS),
    "payment.refunded": EventType("A payment was refunded", (*_PAYMENT_DETAILS, "refund")),
}


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
    line_ = line(event, metric, **dimensions)
    for sink in _sinks:
        sink(line_)


def line(event: AuditEvent, metric: str | None = None, **dimensions: str) -> str:
    """The record as one JSON line (what `record` writes; the forwarder sends it as is)."""
    if event.type not in EVENT_TYPES:
        raise ValueError(f"not an audit event type: {event.type}")
    document = event.as_dict()
    if metric is not None:
        document.update(emf.document(metric, 1, "Count", **dimensions))
    return _COMPACT.encode(document)


# Built once: json.dumps with any option builds a new encoder per call, and this runs on
# every request.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) every audit record satisfies, this version. Other fields may
    ride on a line (a decision's EMF metric); what is named here is always there."""
    strings = {"type": "string", "minLength": 1}
    per_type = [
        {
            "if": {"properties": {"type": {"const": name}}},
            "then": {"properties": {"details": {"required": list(spec.details)}}},
        }
        for name, spec in EVENT_TYPES.items()
        if spec.details
    ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://payplat.dev/schemas/audit-event/{SCHEMA_VERSION}",
        "title": "payplat audit event",
        "type": "object",
        "required": [
            "log_type",
            "schema_version",
            "event_id",
            "time",
            "type",
            "outcome",
            "actor",
            "origin",
            "details",
        ],
        "properties": {
            "log_type": {"const": "AUDIT"},
            "schema_version": {"const": SCHEMA_VERSION},
            "event_id": {**strings, "maxLength": 64},
            "time": {"type": "string", "format": "date-time"},
            "type": {"enum": sorted(EVENT_TYPES)},
            "outcome": {"enum": ["success", "failure"]},
            "actor": {
                "type": "object",
                "properties": {"client_id": strings, "sub": strings},
                "additionalProperties": False,
            },
            "origin": {
                "type": "object",
                "properties": {
                    "source_ip": strings,
                    "user_agent": {"type": "string", "maxLength": _MAX_USER_AGENT},
                    "request_id": strings,
                },
                "additionalProperties": False,
            },
            "resource": strings,
            "reason": strings,
            "details": {"type": "object"},
        },
        "allOf": per_type,
    }


# -- the stream's record format ---------------------------------------------------------------
#
# A CloudWatch Logs subscription filter puts gzip-compressed envelopes on the stream, each
# holding a batch of log events whose `message` is one audit line. The forwarder writes the
# same envelope, so every reader of the stream (the sealer, Firehose's processors, `payplat
# audit tail`) reads one format.

DATA_MESSAGE = "DATA_MESSAGE"


def envelope(lines: list[str], *, log_group: str, log_stream: str) -> bytes:
    """Audit lines as one CloudWatch Logs subscription record."""
    now_ms = int(time.time() * 1000)
    document = {
        "messageType": DATA_MESSAGE,
        "owner": "payplat",
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": ["payplat-audit"],
        "logEvents": [
            {"id": str(uuid.uuid4().int)[:56], "timestamp": now_ms, "message": line}
            for line in lines
        ],
    }
    return gzip.compress(json.dumps(document, separators=(",", ":")).encode("utf-8"))


def unpack(data: bytes) -> list[bytes]:
    """The audit lines a stream record carries: every message of a subscription envelope
    (none for a control message), or the record itself when it is a bare line."""
    if data[:2] != b"\x1f\x8b":
        return [data.strip()] if data.strip() else []
    try:
        document = json.loads(gzip.decompress(data))
    except (OSError, ValueError):
        return []
    if not isinstance(document, dict) or document.get("messageType") != DATA_MESSAGE:
        return []
    return [
        str(event.get("message", "")).strip().encode("utf-8")
        for event in document.get("logEvents", [])
        if str(event.get("message", "")).strip()
    ]
