"""Webhook signatures: `Payplat-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>`,
one v1 per live secret, and the check a receiver runs on every delivery (the SDK carries the
same check; neither imports the other)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from typing import Any

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
SIGNATURE_HEADER = "Payplat-Signature"
EVENT_ID_HEADER = "Payplat-Event-Id"
SIGNATURE_SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300
MAX_SIGNATURE_HEADER_CHARS = 4096


class SignatureVerificationError(ValueError):
    """A `Payplat-Signature` that does not sign the payload with any of the secrets, or whose
    timestamp is outside the tolerance."""


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def compute_signature(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(payload: bytes, secrets_: Sequence[str], timestamp: int) -> str:
    """The `Payplat-Signature` value: one v1 per live secret, newest first."""
    signatures = ",".join(
        f"{SIGNATURE_SCHEME}={compute_signature(payload, secret, timestamp)}" for secret in secrets_
    )
    return f"t={timestamp},{signatures}"


def verify_signature(
    payload: bytes,
    header: str,
    secrets: list[str],
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: int | None = None,
) -> dict[str, Any]:
    """The event a delivery carries, if `header` signs `payload` (the raw body, before any
    JSON parsing) with one of `secrets` within `tolerance_s` of `now`; raises
    SignatureVerificationError otherwise. What a receiver runs on every POST."""
    timestamp, signatures = _parse_signature(header)
    if not secrets or not all(isinstance(s, str) and s for s in secrets):
        raise SignatureVerificationError("No signing secret to verify with.")
    matched = False
    for secret in secrets:
        expected = compute_signature(payload, secret, timestamp)
        for signature in signatures:
            matched |= hmac.compare_digest(expected, signature)  # no early exit to time
    if not matched:
        raise SignatureVerificationError("No signature matches the payload and secrets.")
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureVerificationError("The signature's timestamp is outside the tolerance.")
    try:
        event = json.loads(payload)
    except ValueError:
        raise SignatureVerificationError("The payload is not JSON.") from None
    if not isinstance(event, dict):
        raise SignatureVerificationError("The payload is not a JSON object.")
    return event


def _parse_signature(header: str) -> tuple[int, list[str]]:
    if not isinstance(header, str) or not header or len(header) > MAX_SIGNATURE_HEADER_CHARS:
        raise SignatureVerificationError("The signature header is missing or too long.")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not (value.isascii() and value.isdigit()) or timestamp is not None:
                raise SignatureVerificationError("The signature header's t is not one number.")
            timestamp = int(value)
        elif key == SIGNATURE_SCHEME and value.isascii():
            signatures.append(value.lower())
    if timestamp is None:
        raise SignatureVerificationError("The signature header has no timestamp.")
    if not signatures:
        raise SignatureVerificationError("The signature header has no v1 signature.")
    return timestamp, signatures
