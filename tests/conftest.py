"""Fixtures shared by every test layer."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from payplat.audit import LOGGER_NAME

EVENTS = Path(__file__).resolve().parent.parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """A real-shaped sample event from events/ (a fresh copy each time)."""
    return copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))


class AuditCapture(logging.Handler):
    """Collects the audit lines written through payplat.audit, parsed."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == event_type]


@pytest.fixture
def audit_lines() -> Iterator[AuditCapture]:
    capture = AuditCapture()
    audit_logger = logging.getLogger(LOGGER_NAME)
    audit_logger.addHandler(capture)
    yield capture
    audit_logger.removeHandler(capture)
