"""The delivery queue (SQS): each message is one attempt of one delivery, delayed until it is
due; and its dead-letter queue, where deliveries given up on are parked."""

from __future__ import annotations

from typing import Any

import boto3

MAX_DELAY_S = 900  # SQS's longest DelaySeconds; a longer wait is re-sent when it comes due


class SqsDeliveryQueue:
    def __init__(
        self,
        queue_url: str,
        dlq_url: str = "",
        client: Any | None = None,
        max_delay_s: int = MAX_DELAY_S,
    ) -> None:
        self._url = queue_url
        self._dlq_url = dlq_url
        self._client = client
        # Tests that move a clock instead of waiting set 0: every message is visible at once
        # and the dispatcher itself holds back what is not due yet.
        self._max_delay_s = max_delay_s

    @property
    def client(self) -> Any:
        if self._client is None:  # created on first use: most payments requests never send
            self._client = boto3.client("sqs")
        return self._client

    def send(self, body: str, delay_s: int) -> None:
        if not self._url:
            raise RuntimeError("no webhook delivery queue is configured")
        delay = max(0, min(int(delay_s), self._max_delay_s))
        self.client.send_message(QueueUrl=self._url, MessageBody=body, DelaySeconds=delay)

    def park(self, body: str) -> None:
        if not self._dlq_url:
            raise RuntimeError("no webhook dead-letter queue is configured")
        self.client.send_message(QueueUrl=self._dlq_url, MessageBody=body)
