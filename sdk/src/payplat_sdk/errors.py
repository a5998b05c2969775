"""Typed errors that mirror the API's.

Resource routes answer `{"error": {"type", "code", "message", "param", "request_id"}}`; the
authorization server answers RFC 6749 `{"error", "error_description"}`. Every error keeps what
the API said (`status`, `type`, `code`, `message`, `param`, `request_id`, `headers`, `body`)
and never carries a token, a secret or a request's credentials.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from payplat_sdk.models import Payment

__all__ = [
    "APIConnectionError",
    "APIError",
    "AuthenticationError",
    "IdempotencyError",
    "InvalidClientError",
    "InvalidRequestError",
    "OAuthError",
    "OAuthRateLimitError",
    "PaymentError",
    "PayplatError",
    "PermissionDeniedError",
    "RateLimitError",
    "SignatureVerificationError",
]

REQUEST_ID_HEADER = "x-amzn-RequestId"


class PayplatError(Exception):
    """The base of every error the SDK raises."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.headers: dict[str, str] = dict(headers or {})
        self.body = body

    def __str__(self) -> str:
        parts = [str(self.status)] if self.status is not None else []
        if self.code:
            parts.append(self.code)
        prefix = f"[{' '.join(parts)}] " if parts else ""
        suffix = f" (request_id: {self.request_id})" if self.request_id else ""
        return f"{prefix}{self.message}{suffix}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status={self.status!r}, "
            f"code={self.code!r}, request_id={self.request_id!r})"
        )


class InvalidRequestError(PayplatError):
    """400/404 and other 4xx: the request was wrong (`param` names what)."""


class AuthenticationError(PayplatError):
    """401: the credentials or the access token were refused."""


class PermissionDeniedError(PayplatError):
    """403: the token lacks the scope, or the caller may not do this."""


class PaymentError(PayplatError):
    """402: the request was valid, the money could not move. `payment` is the failed payment
    the API recorded, when it sent one."""

    @property
    def payment(self) -> Payment | None:
        from payplat_sdk.models import Payment

        error = self.body.get("error") if isinstance(self.body, dict) else None
        found = error.get("payment") if isinstance(error, dict) else None
        return Payment.from_dict(found) if isinstance(found, dict) else None


class IdempotencyError(PayplatError):
    """The Idempotency-Key was used before with different parameters."""


class RateLimitError(PayplatError):
    """429: too many requests, or a quota is spent. `retry_after` is in seconds."""

    @property
    def retry_after(self) -> float | None:
        return retry_after_of(self.headers)


class APIError(PayplatError):
    """5xx, 409 and anything else the API could not complete: safe to retry."""


class APIConnectionError(PayplatError):
    """The API could not be reached, or did not answer in time."""


class OAuthError(PayplatError):
    """An RFC 6749 error from the authorization server (`error`, `error_description`), or
    from an authorization response (the redirect)."""

    def __init__(
        self,
        error: str,
        error_description: str | None = None,
        *,
        status: int | None = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(
            error_description or error,
            status=status,
            type="oauth_error",
            code=error,
            request_id=request_id,
            headers=headers,
            body=body,
        )
        self.error = error
        self.error_description = error_description


class InvalidClientError(OAuthError, AuthenticationError):
    """401 `invalid_client`: the client id or secret was refused."""


class OAuthRateLimitError(OAuthError, RateLimitError):
    """429 from the authorization server (its endpoints are throttled per IP and client)."""


class SignatureVerificationError(PayplatError):
    """A webhook's `Payplat-Signature` did not verify (or its timestamp is too old)."""


def retry_after_of(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date), None when absent or bad."""
    raw = _header(headers, "retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def error_from_response(status: int, headers: Mapping[str, str], body: Any) -> PayplatError:
    """The typed error for an API answer of `status` (>= 400)."""
    request_id = _header(headers, REQUEST_ID_HEADER.lower())
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        description = body.get("error_description")
        oauth_class: type[OAuthError] = OAuthError
        if status == 401:
            oauth_class = InvalidClientError
        elif status == 429:
            oauth_class = OAuthRateLimitError
        return oauth_class(
            body["error"],
            description if isinstance(description, str) else None,
            status=status,
            request_id=request_id,
            headers=headers,
            body=body,
        )
    error = body.get("error") if isinstance(body, dict) else None
    fields: dict[str, Any] = error if isinstance(error, dict) else {}
    error_type = _str(fields.get("type"))
    message = _str(fields.get("message")) or _default_message(status)
    kwargs: dict[str, Any] = {
        "status": status,
        "type": error_type,
        "code": _str(fields.get("code")),
        "param": _str(fields.get("param")),
        "request_id": _str(fields.get("request_id")) or request_id,
        "headers": headers,
        "body": body,
    }
    return _error_class(status, error_type)(message, **kwargs)


def _error_class(status: int, error_type: str | None) -> type[PayplatError]:
    if error_type == "idempotency_error":
        return IdempotencyError
    by_status: dict[int, type[PayplatError]] = {
        401: AuthenticationError,
        402: PaymentError,
        403: PermissionDeniedError,
        409: APIError,
        429: RateLimitError,
    }
    if status in by_status:
        return by_status[status]
    return APIError if status >= 500 else InvalidRequestError


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _default_message(status: int) -> str:
    return f"The API answered {status} without an error message."
