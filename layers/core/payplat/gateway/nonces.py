"""DPoP nonces (RFC 9449 §8-9): where a deployment requires them, a proof must carry a
value the server handed out recently, so a proof cannot be made ahead of time and kept.

A nonce belongs to a time window (5 minutes); the first container to need a window's nonce
makes it with a conditional write, every other one reads the same value, and each caches
it: one read per container per window. A proof may carry this window's nonce or the last
one's, so a client that learned a nonce just before the change is not refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

WINDOW_S = 300
HEADER = "DPoP-Nonce"


class NonceStore(Protocol):
    def nonce(self, window: int, expires_at: int) -> str:
        """The window's nonce, made now if nobody made it yet (the first write wins)."""
        ...


class Nonces:
    def __init__(self, store: NonceStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._known: dict[int, str] = {}

    def current(self) -> str:
        return self._of(self._window())

    def accepted(self) -> frozenset[str]:
        window = self._window()
        return frozenset({self._of(window), self._of(window - 1)})

    def _window(self) -> int:
        return int(self._clock()) // WINDOW_S

    def _of(self, window: int) -> str:
        if window not in self._known:
            self._known = {w: n for w, n in self._known.items() if w >= window - 1}
            self._known[window] = self._store.nonce(window, (window + 3) * WINDOW_S)
        return self._known[window]
