"""Carries audit log lines to the Kinesis stream `audit`, as the CloudWatch Logs subscription
filter does in AWS: off the request path, in gzip-compressed subscription envelopes of a
batch of lines each, and retried until delivered."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Any

from payplat.audit import events as audit

BATCH_MAX = 500  # lines taken from the queue at a time
LINES_PER_ENVELOPE = 50  # a subscription record holds a batch of log events
LOG_GROUP = "/aws/lambda/payplat-local"  # the one process serves every function locally
FLUSH_INTERVAL_S = 0.2


class AuditShipper:
    """An audit sink: lines are queued at once and shipped by a background thread."""

    def __init__(self, kinesis: Any, stream_name: str) -> None:
        self._kinesis = kinesis
        self._stream = stream_name
        self._queue: queue.Queue[str] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-shipper", daemon=True)
        self.shipped = 0

    def start(self) -> None:
        audit.add_sink(self)
        self._thread.start()

    def stop(self) -> None:
        audit.remove_sink(self)
        self._stop.set()
        self._thread.join(timeout=10)

    def __call__(self, line: str) -> None:
        self._queue.put(line)

    def _run(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            batch = self._drain()
            if batch:
                self._ship(batch)
            else:
                time.sleep(FLUSH_INTERVAL_S)

    def _drain(self) -> list[str]:
        batch: list[str] = []
        while len(batch) < BATCH_MAX:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _ship(self, lines: list[str]) -> None:
        records = [
            {
                "Data": audit.envelope(
                    lines[start : start + LINES_PER_ENVELOPE],
                    log_group=LOG_GROUP,
                    log_stream="local",
                ),
                "PartitionKey": _partition(lines[start]),
            }
            for start in range(0, len(lines), LINES_PER_ENVELOPE)
        ]
        delay = 0.1
        while records:
            try:
                response = self._kinesis.put_records(StreamName=self._stream, Records=records)
            except Exception:  # the stream is down: keep the records, try again
                logging.getLogger(__name__).exception("audit shipping failed; retrying")
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            failed = [
                record
                for record, result in zip(records, response["Records"], strict=True)
                if "ErrorCode" in result
            ]
            self.shipped += len(records) - len(failed)
            records = failed


def _partition(line: str) -> str:
    try:
        actor = json.loads(line).get("actor", {})
    except ValueError:
        return "unparsed"
    return str(actor.get("client_id") or "anonymous")
