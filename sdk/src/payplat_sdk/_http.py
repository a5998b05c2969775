"""One HTTP exchange with retries: exponential backoff with jitter on connection errors, 409,
429 and 5xx, honouring `Retry-After`; never on another 4xx.

Nothing here logs a header, a body or a URL's query: only method, path, status and request id.
"""

from __future__ import annotations

import logging
import platform
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from payplat_sdk._version import __version__
from payplat_sdk.errors import (
    REQUEST_ID_HEADER,
    APIConnectionError,
    APIError,
    error_from_response,
    retry_after_of,
)
from payplat_sdk.models import ResponseInfo

logger = logging.getLogger("payplat_sdk")

RETRY_STATUSES = frozenset({409, 429}) | frozenset(range(500, 600))
INITIAL_DELAY_S = 0.5
MAX_DELAY_S = 8.0
# A Retry-After longer than this (a spent daily quota, say) is not slept through: the error
# goes to the caller, whose `RateLimitError.retry_after` says when to come back.
MAX_RETRY_AFTER_S = 60.0
USER_AGENT = (
    f"payplat-python/{__version__} requests/{metadata.version('requests')} "
    f"python/{platform.python_version()}"
)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str] = field(repr=False)
    body: Any = field(repr=False)  # a token response holds tokens: never in a repr
    info: ResponseInfo

    def json_object(self) -> dict[str, Any]:
        if not isinstance(self.body, dict):
            raise APIError(
                "The API answered with something other than a JSON object.",
                status=self.status,
                request_id=self.info.request_id,
                headers=self.headers,
            )
        return self.body


class Transport:
    """Sends requests on one `requests.Session` and retries what is safe to retry."""

    def __init__(
        self,
        *,
        session: requests.Session | None,
        timeout: float,
        max_retries: int,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self.session = session if session is not None else requests.Session()
        self.owns_session = session is None
        self.timeout = timeout
        self.max_retries = max_retries
        # Seams for tests: how to wait and how to draw jitter.
        self.sleep: Callable[[float], None] = time.sleep
        self.random: Callable[[], float] = random.random

    def close(self) -> None:
        if self.owns_session:
            self.session.close()

    def send(
        self,
        method: str,
        url: str,
        *,
        authorization: Callable[[], str | None] | None = None,
        headers: Mapping[str, str] | None = None,
        attempt_headers: Callable[[], Mapping[str, str]] | None = None,
        on_answer: Callable[[Answer], None] | None = None,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        safe_to_retry: bool = True,
    ) -> Answer:
        """The answer (any status), after retries. `safe_to_retry`: the request may be sent
        again even if the server may have handled it (a GET, or a POST with an
        Idempotency-Key); otherwise only a request that never left and a 429 are retried.
        `attempt_headers` is called before each attempt, its headers sent with that attempt
        only (a DPoP proof is good for one request); `on_answer` sees every answer, retried
        ones too. Raises APIConnectionError when no answer came."""
        path = urlsplit(url).path
        attempt = 0
        while True:
            sent = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
            if authorization is not None:
                value = authorization()
                if value is not None:
                    sent["Authorization"] = value
            if attempt_headers is not None:
                sent.update(attempt_headers())
            try:
                response = self.session.request(
                    method,
                    url,
                    headers=sent,
                    params=params,
                    json=json_body,
                    data=form,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                retry = attempt < self.max_retries and (safe_to_retry or _never_sent(exc))
                if not retry:
                    raise APIConnectionError(_connection_message(exc, attempt)) from exc
                delay = self._delay(attempt, None)
                logger.info(
                    "payplat: %s %s failed (%s); retry %d in %.2f s",
                    method,
                    path,
                    type(exc).__name__,
                    attempt + 1,
                    delay,
                )
                self.sleep(delay)
                attempt += 1
                continue
            answer = _answer(response)
            if on_answer is not None:
                on_answer(answer)
            logger.debug(
                "payplat: %s %s -> %d (request_id %s)",
                method,
                path,
                answer.status,
                answer.info.request_id,
            )
            if answer.status in RETRY_STATUSES and attempt < self.max_retries:
                retry_after = retry_after_of(answer.headers)
                may_retry = safe_to_retry or answer.status == 429
                if may_retry and (retry_after is None or retry_after <= MAX_RETRY_AFTER_S):
                    delay = self._delay(attempt, retry_after)
                    logger.info(
                        "payplat: %s %s -> %d (request_id %s); retry %d in %.2f s",
                        method,
                        path,
                        answer.status,
                        answer.info.request_id,
                        attempt + 1,
                        delay,
                    )
                    self.sleep(delay)
                    attempt += 1
                    continue
            return answer

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter (50-100 % of the step), never less than the
        server's Retry-After."""
        step = min(INITIAL_DELAY_S * 2.0**attempt, MAX_DELAY_S)
        jittered = step * (0.5 + self.random() / 2)
        return max(jittered, retry_after or 0.0)


def raise_for_answer(answer: Answer) -> Answer:
    if answer.status >= 400:
        raise error_from_response(answer.status, answer.headers, answer.body)
    return answer


def _answer(response: requests.Response) -> Answer:
    headers = dict(response.headers)
    body: Any = None
    if response.content:
        try:
            body = response.json()
        except ValueError:
            body = None
    request_id = response.headers.get(REQUEST_ID_HEADER)
    if request_id is None and isinstance(body, dict) and isinstance(body.get("error"), dict):
        found = body["error"].get("request_id")
        request_id = found if isinstance(found, str) else None
    info = ResponseInfo(response.status_code, headers, request_id)
    return Answer(response.status_code, headers, body, info)


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request certainly did not reach the server (so resending it cannot do
    anything twice)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def _connection_message(exc: requests.RequestException, attempt: int) -> str:
    kind = "timed out" if isinstance(exc, requests.Timeout) else "could not be completed"
    tries = f" after {attempt + 1} attempts" if attempt else ""
    return f"The request to payplat {kind}{tries} ({type(exc).__name__})."
