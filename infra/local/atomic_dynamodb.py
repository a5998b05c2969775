"""DynamoDB's atomicity, restored in moto.

DynamoDB applies each request to an item atomically: a conditional write's condition and its
update are one step, and a transaction is all-or-nothing before anyone reads. moto evaluates a
condition, then applies the update, as separate Python steps, and its server answers requests
on many threads: two concurrent conditional writes can both pass a condition only one of them
should (the limiter admitted one request past its burst that way), and a reader can see a
transaction half applied or a cancelled one not yet rolled back. Everything payplat promises
about money and limits rests on those conditions, so the local platform and the tests run
moto with every DynamoDB request (and stream read) made one step under one lock.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

_LOCK = threading.RLock()


def _atomic(call_action: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(call_action)
    def locked(self: Any) -> Any:
        with _LOCK:
            return call_action(self)

    locked.payplat_atomic = True  # type: ignore[attr-defined]
    return locked


def make_dynamodb_atomic() -> None:
    """Idempotent: patches moto's DynamoDB and DynamoDB Streams request handlers once."""
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        if not getattr(handler.call_action, "payplat_atomic", False):
            handler.call_action = _atomic(handler.call_action)  # type: ignore[method-assign]
