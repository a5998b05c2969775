"""The verification keys, fetched from the issuer's JWKS over HTTPS and kept in memory.

A warm authorizer makes no network call: keys are fetched at cold start and again only when a
token names a kid we do not hold, at most once per `min_refresh_interval_s`, so a flood of
forged kids cannot become a flood of fetches.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol

from jwt.algorithms import ECAlgorithm

logger = logging.getLogger(__name__)

MAX_JWKS_BYTES = 64 * 1024
FETCH_TIMEOUT_S = 3.0
MIN_REFRESH_INTERVAL_S = 60.0

Fetch = Callable[[str], bytes]


class KeySource(Protocol):
    def get(self, kid: str) -> Any | None:
        """The public key for `kid`, or None if the issuer does not publish it."""
        ...


def parse_jwks(document: bytes) -> dict[str, Any]:
    """kid -> public key for every ES256 signing key in a JWKS; other keys are ignored."""
    body = json.loads(document)
    # RFC 7517 §5: `keys` is required. Anything else (an error page served with a 200, say)
    # is not a key set and must not replace the keys we hold; `{"keys": []}` is, and does.
    if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
        raise ValueError("not a JWK Set: no `keys` array")
    keys: dict[str, Any] = {}
    for jwk in body["keys"]:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        usable = jwk.get("kty") == "EC" and jwk.get("crv") == "P-256"
        if not isinstance(kid, str) or not usable or jwk.get("use", "sig") != "sig":
            continue
        if kid in keys:
            raise ValueError(f"duplicate kid in JWKS: {kid}")
        keys[kid] = ECAlgorithm.from_jwk(jwk)
    return keys


def http_fetch(uri: str) -> bytes:
    if not uri.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ValueError("the JWKS must be fetched over https")
    request = urllib.request.Request(uri, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_S) as response:  # noqa: S310
        data: bytes = response.read(MAX_JWKS_BYTES + 1)
    if len(data) > MAX_JWKS_BYTES:
        raise ValueError("JWKS document too large")
    return data


class RemoteKeySet:
    """A JWKS fetched from `uri`, refreshed lazily and rate-limited."""

    def __init__(
        self,
        uri: str,
        *,
        fetch: Fetch = http_fetch,
        min_refresh_interval_s: float = MIN_REFRESH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._uri = uri
        self._fetch = fetch
        self._interval = min_refresh_interval_s
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._last_fetch: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0

    def get(self, kid: str) -> Any | None:
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            if kid not in self._keys and self._may_refresh():
                self._refresh()
        return self._keys.get(kid)

    def _may_refresh(self) -> bool:
        return self._last_fetch is None or self._clock() - self._last_fetch >= self._interval

    def _refresh(self) -> None:
        self._last_fetch = self._clock()
        self.fetches += 1
        try:
            self._keys = parse_jwks(self._fetch(self._uri))
        except Exception:  # keep the keys we have; tokens with unknown kids fail closed
            logger.exception("JWKS refresh failed from %s", self._uri)


class StaticKeySet:
    """Keys known in advance (tests, or a JWKS pinned in configuration)."""

    def __init__(self, keys: dict[str, Any]) -> None:
        self._keys = dict(keys)

    def get(self, kid: str) -> Any | None:
        return self._keys.get(kid)
