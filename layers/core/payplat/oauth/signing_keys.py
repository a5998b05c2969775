"""The token-signing keys over time: which key signs now, which keys the JWKS publishes, and
how a rotation moves from one to the next without invalidating a single live token.

A rotation creates a new KMS key and publishes it at once, but signs with it only after
`publish_lead_s` (relying parties that cached the JWKS have seen it by then); the old key
stays published until the longest access token it can have signed has expired. With no
rotation yet, the key the deployment was configured with is the only one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from payplat.oauth.access_tokens import KeyPublisher

# Longer than the JWKS document's public cache lifetime (max-age=300), so no relying party
# meets the new kid before it could have fetched it.
PUBLISH_LEAD_S = 360
# An access token lives at most an hour (OAuthSettings), plus the validators' leeway.
RETIRE_AFTER_S = 3600 + 60
REGISTRY_CACHE_TTL_S = 30.0


@dataclass(frozen=True, slots=True)
class SigningKey:
    key_id: str  # the KMS key
    kid: str  # RFC 7638 thumbprint of its public key, as the JWKS and tokens name it
    created_at: int
    activates_at: int  # signs from then on (until a newer key activates)
    retires_at: int | None = None  # leaves the JWKS then; None while it is current

    def published(self, now: int) -> bool:
        return self.retires_at is None or now < self.retires_at

    def state(self, now: int, current: SigningKey | None) -> str:
        if not self.published(now):
            return "retired"
        if self == current:
            return "signing"
        return "next" if self.activates_at > now else "retiring"


class KeyRegistry(Protocol):
    def load_keys(self) -> tuple[list[SigningKey], int]:
        """The keys and the registry's version (0 when no rotation happened yet)."""
        ...

    def save_keys(self, keys: Sequence[SigningKey], expected_version: int) -> None:
        """Store `keys` if the version is still `expected_version` (else ConcurrentRotation)."""
        ...


class KeyFactory(Protocol):
    def create_key(self) -> str:
        """A new ES256 KMS key, tagged so the oauth function may sign with it; its id."""
        ...

    def kid(self, key_id: str) -> str: ...


class ConcurrentRotation(RuntimeError):
    pass


def current(keys: Sequence[SigningKey], now: int) -> SigningKey:
    ready = [k for k in keys if k.published(now) and k.activates_at <= now]
    if not ready:
        raise LookupError("no signing key is active")
    return max(ready, key=lambda k: (k.activates_at, k.created_at))


def keys_in_force(
    registry: KeyRegistry, factory: KeyFactory, configured_key_id: str
) -> tuple[list[SigningKey], int]:
    keys, version = registry.load_keys()
    if not keys:
        if not configured_key_id:
            raise ValueError("no rotation recorded yet: set PAYPLAT_SIGNING_KEY_ID")
        keys = [SigningKey(configured_key_id, factory.kid(configured_key_id), 0, 0)]
    return keys, version


def rotate(
    registry: KeyRegistry,
    factory: KeyFactory,
    configured_key_id: str,
    *,
    now: int,
    publish_lead_s: int = PUBLISH_LEAD_S,
    retire_after_s: int = RETIRE_AFTER_S,
) -> tuple[SigningKey, list[SigningKey]]:
    """Create the next key; returns it and the key set now in force. Keys whose tokens have
    all expired are dropped from the set (their KMS keys are left for the operator to
    schedule for deletion)."""
    keys, version = keys_in_force(registry, factory, configured_key_id)
    key_id = factory.create_key()
    new = SigningKey(key_id, factory.kid(key_id), now, now + publish_lead_s)
    # Whatever signs until `new` activates may sign until then: its tokens live that long.
    retire_at = new.activates_at + retire_after_s
    # A key already retiring keeps its date unless this rotation asks for an earlier one
    # (an emergency rotation withdraws a compromised key at once).
    kept = [
        replace(key, retires_at=min(key.retires_at or retire_at, retire_at))
        for key in keys
        if key.published(now)
    ]
    in_force = [*kept, new]
    registry.save_keys(in_force, version)
    return new, in_force


class KeyRing:
    """The oauth function's view: the signer to use now and the keys to publish, with the
    registry re-read after `ttl_s` so a rotation reaches warm functions within seconds."""

    def __init__(
        self,
        registry: KeyRegistry,
        factory: KeyFactory,
        configured_key_id: str,
        signer_for: Callable[[str], KeyPublisher],
        *,
        ttl_s: float = REGISTRY_CACHE_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._factory = factory
        self._configured = configured_key_id
        self._signer_for = signer_for
        self._ttl_s = ttl_s
        self._clock = clock
        self._signers: dict[str, KeyPublisher] = {}
        self._keys: list[SigningKey] = []
        self._loaded_at: float | None = None
        self._lock = threading.Lock()

    def keys(self) -> list[SigningKey]:
        now = self._clock()
        with self._lock:
            if self._loaded_at is None or now - self._loaded_at >= self._ttl_s:
                self._keys, _ = keys_in_force(self._registry, self._factory, self._configured)
                self._loaded_at = now
            return list(self._keys)

    def signer(self) -> KeyPublisher:
        """The signer for the key active now."""
        return self._signer(current(self.keys(), int(self._clock())).key_id)

    def published(self) -> list[KeyPublisher]:
        now = int(self._clock())
        return [self._signer(k.key_id) for k in self.keys() if k.published(now)]

    def _signer(self, key_id: str) -> KeyPublisher:
        signer = self._signers.get(key_id)
        if signer is None:
            signer = self._signers[key_id] = self._signer_for(key_id)
        return signer
