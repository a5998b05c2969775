"""Key rotation over time: the new key is published before it signs, the old one stays
published until every token it signed has expired, and warm functions follow a rotation
within their cache lifetime."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from payplat.oauth.signing_keys import (
    ConcurrentRotation,
    KeyRing,
    SigningKey,
    current,
    keys_in_force,
    rotate,
)

CONFIGURED = "arn:aws:kms:eu-west-1:123456789012:key/configured"
T0 = 1_800_000_000


@dataclass
class FakeRegistry:
    keys: list[SigningKey] = field(default_factory=list)
    version: int = 0
    loads: int = 0

    def load_keys(self) -> tuple[list[SigningKey], int]:
        self.loads += 1
        return list(self.keys), self.version

    def save_keys(self, keys: Sequence[SigningKey], expected_version: int) -> None:
        if expected_version != self.version:
            raise ConcurrentRotation("stale")
        self.keys, self.version = list(keys), self.version + 1


@dataclass
class FakeKms:
    created: list[str] = field(default_factory=list)

    def create_key(self) -> str:
        key_id = f"key-{len(self.created) + 1}"
        self.created.append(key_id)
        return key_id

    def kid(self, key_id: str) -> str:
        return f"kid-of-{key_id.rsplit('/', 1)[-1]}"


@dataclass
class FakeSigner:
    key_id: str

    @property
    def kid(self) -> str:
        return FakeKms().kid(self.key_id)

    def sign_der(self, message: bytes) -> bytes:
        return b""

    def public_key_der(self) -> bytes:
        return self.key_id.encode()


def test_before_any_rotation_the_configured_key_is_the_only_one() -> None:
    keys, version = keys_in_force(FakeRegistry(), FakeKms(), CONFIGURED)
    assert version == 0
    assert [(k.key_id, k.retires_at) for k in keys] == [(CONFIGURED, None)]
    assert current(keys, T0) == keys[0]


def test_a_rotation_publishes_first_signs_later_and_retires_the_old_key_after_its_tokens() -> None:
    # Given the configured key, and a rotation with a 6-minute publish lead
    registry, kms = FakeRegistry(), FakeKms()
    new, in_force = rotate(
        registry, kms, CONFIGURED, now=T0, publish_lead_s=360, retire_after_s=3660
    )
    old = next(k for k in in_force if k.key_id == CONFIGURED)

    # Then both are stored; the new one signs from T0+360, the old one is published until
    # the longest token it can still sign (until T0+360) has expired
    assert new.activates_at == T0 + 360 and new.retires_at is None
    assert old.retires_at == T0 + 360 + 3660
    assert registry.version == 1

    # And over time: old signs, then new signs while old stays published, then old is gone
    assert current(in_force, T0 + 359) == old
    assert current(in_force, T0 + 360) == new
    assert old.published(T0 + 360 + 3659) and not old.published(T0 + 360 + 3660)
    assert old.state(T0, current(in_force, T0)) == "signing"
    assert new.state(T0, current(in_force, T0)) == "next"
    assert old.state(T0 + 400, new) == "retiring"
    assert old.state(T0 + 5000, new) == "retired"


def test_a_second_rotation_drops_keys_whose_tokens_are_all_expired() -> None:
    registry, kms = FakeRegistry(), FakeKms()
    rotate(registry, kms, CONFIGURED, now=T0, publish_lead_s=0, retire_after_s=100)
    second, in_force = rotate(
        registry, kms, "unused", now=T0 + 500, publish_lead_s=0, retire_after_s=100
    )
    assert [k.key_id for k in in_force] == ["key-1", "key-2"]
    assert current(in_force, T0 + 500) == second


def test_an_emergency_rotation_withdraws_a_retiring_key_at_once() -> None:
    # Given a routine rotation: the configured key retires in an hour or so
    registry, kms = FakeRegistry(), FakeKms()
    rotate(registry, kms, CONFIGURED, now=T0, publish_lead_s=0)
    # When the new key is found compromised and rotated with no lead and no retirement
    _, in_force = rotate(registry, kms, CONFIGURED, now=T0 + 60, publish_lead_s=0, retire_after_s=0)
    # Then only the newest key is published from now on
    published = [k.key_id for k in in_force if k.published(T0 + 60)]
    assert published == ["key-2"]


def test_without_a_rotation_or_a_configured_key_there_is_nothing_to_sign_with() -> None:
    with pytest.raises(ValueError, match="PAYPLAT_SIGNING_KEY_ID"):
        keys_in_force(FakeRegistry(), FakeKms(), "")


def test_concurrent_rotations_do_not_both_win() -> None:
    registry, kms = FakeRegistry(), FakeKms()
    keys, version = registry.load_keys()
    rotate(registry, kms, CONFIGURED, now=T0)
    with pytest.raises(ConcurrentRotation):
        registry.save_keys(keys, version)  # the loser's stale write


def test_the_key_ring_follows_a_rotation_after_its_cache_lifetime() -> None:
    # Given a warm function's key ring, caching the registry for 30 s
    now = [float(T0)]
    registry, kms = FakeRegistry(), FakeKms()
    ring = KeyRing(registry, kms, CONFIGURED, FakeSigner, ttl_s=30, clock=lambda: now[0])
    assert ring.signer().kid == kms.kid(CONFIGURED)

    # When an operator rotates with immediate effect
    rotate(registry, kms, CONFIGURED, now=T0, publish_lead_s=0)
    loads_before = registry.loads

    # Then the cached view holds for its lifetime, and then the new key signs
    now[0] += 29
    assert ring.signer().kid == kms.kid(CONFIGURED)
    now[0] += 1
    assert ring.signer().kid == "kid-of-key-1"
    # And both keys are published until the old one retires
    assert {s.kid for s in ring.published()} == {kms.kid(CONFIGURED), "kid-of-key-1"}
    assert registry.loads - loads_before == 1  # one read per cache lifetime, not per token
