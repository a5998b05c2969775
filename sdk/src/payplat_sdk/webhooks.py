"""Verify the webhooks payplat sends.

Each delivery carries `Payplat-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`, where each
v1 is HMAC-SHA256 over `f"{t}.{body}"` keyed with an endpoint's signing secret (two while a
rolled secret overlaps with the old one). Verify the raw body exactly as received — before
any JSON parsing — and refuse old timestamps, which stops replays:

    event = payplat_sdk.webhooks.verify(
        request.body, request.headers["Payplat-Signature"], secret
    )
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

from payplat_sdk.errors import SignatureVerificationError
from payplat_sdk.models import Event

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "EVENT_ID_HEADER",
    "SIGNATURE_HEADER",
    "SignatureVerificationError",
    "compute_signature",
    "construct_event",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "Payplat-Signature"
EVENT_ID_HEADER = "Payplat-Event-Id"  # deliveries are at least once: deduplicate by it
DEFAULT_TOLERANCE_S = 300
SCHEME = "v1"
MAX_HEADER_CHARS = 4096


def verify(
    payload: bytes | str,
    header: str,
    secret: str | Sequence[str],
    tolerance: int = DEFAULT_TOLERANCE_S,
    now: int | None = None,
) -> dict[str, Any]:
    """The event (parsed JSON) if `header` signs `payload` with `secret` (or any of a list
    of secrets, while one is being rolled) within `tolerance` seconds of `now`; raises
    SignatureVerificationError otherwise."""
    body = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    timestamp, signatures = _parse(header)
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets or not all(isinstance(s, str) and s for s in secrets):
        raise SignatureVerificationError("No webhook signing secret to verify with.")
    matched = False
    for candidate in secrets:
        expected = compute_signature(body, candidate, timestamp)
        for signature in signatures:
            # compare_digest on every pair: no early exit that times how much matched
            matched |= hmac.compare_digest(expected, signature)
    if not matched:
        raise SignatureVerificationError(
            "No signature matches the payload for the expected secret."
        )
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureVerificationError("The signature's timestamp is outside the tolerance.")
    try:
        event = json.loads(body)
    except ValueError:
        raise SignatureVerificationError("The payload is not valid JSON.") from None
    if not isinstance(event, dict):
        raise SignatureVerificationError("The payload is not a JSON object.")
    return event


def construct_event(
    payload: bytes | str,
    header: str,
    secret: str | Sequence[str],
    tolerance: int = DEFAULT_TOLERANCE_S,
    now: int | None = None,
) -> Event:
    """`verify`, then the event as an `Event`."""
    return Event.from_dict(verify(payload, header, secret, tolerance, now))


def compute_signature(payload: bytes | str, secret: str, timestamp: int) -> str:
    """The hex v1 signature of `payload` at `timestamp`."""
    body = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(payload: bytes | str, secret: str | Sequence[str], timestamp: int | None = None) -> str:
    """A `Payplat-Signature` header value for `payload`, as payplat would send it: for
    testing a webhook handler."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    moment = int(time.time()) if timestamp is None else timestamp
    signatures = ",".join(f"{SCHEME}={compute_signature(payload, s, moment)}" for s in secrets)
    return f"t={moment},{signatures}"


def _parse(header: str) -> tuple[int, list[str]]:
    if not isinstance(header, str) or not header or len(header) > MAX_HEADER_CHARS:
        raise SignatureVerificationError("The Payplat-Signature header is missing or too long.")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "t":
            if not value.isascii() or not value.isdigit():
                raise SignatureVerificationError("The signature's timestamp is not a number.")
            timestamp = int(value)
        elif key == SCHEME and value.isascii():
            signatures.append(value.lower())
    if timestamp is None:
        raise SignatureVerificationError("The Payplat-Signature header has no timestamp.")
    if not signatures:
        raise SignatureVerificationError("The Payplat-Signature header has no v1 signature.")
    return timestamp, signatures
