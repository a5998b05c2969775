"""The seal chain: sealing is idempotent under retries, and verification finds a modified, a
removed and a reordered event, and a forged, altered or missing seal — the first one first."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace

import pytest

from payplat.audit.chain import (
    ChainHead,
    ConcurrentSealing,
    Seal,
    StreamRecord,
    seal_batch,
    verify,
)

STREAM, SHARD = "payplat-audit", "shardId-000000000000"


@dataclass
class MemoryStore:
    heads: dict[tuple[str, str], ChainHead] = field(default_factory=dict)
    seals: dict[tuple[str, str, int], Seal] = field(default_factory=dict)
    writes: int = 0

    def head(self, stream: str, shard: str) -> ChainHead | None:
        return self.heads.get((stream, shard))

    def put_seal(self, seal: Seal) -> None:
        self.writes += 1
        self.seals[(seal.stream, seal.shard, seal.index)] = seal

    def advance(self, stream: str, expected: ChainHead | None, new: ChainHead) -> bool:
        if self.heads.get((stream, new.shard)) != expected:
            return False
        self.heads[(stream, new.shard)] = new
        return True


class HmacSigner:
    """A stand-in for the KMS key: a keyed hash the verifier can check."""

    key_id = "test-key"

    def sign_digest(self, digest: str) -> str:
        return hashlib.sha256(b"secret-key" + digest.encode()).hexdigest()


def signature_valid(key_id: str, digest: str, signature: str) -> bool:
    return key_id == "test-key" and signature == HmacSigner().sign_digest(digest)


def event(n: int) -> bytes:
    return json.dumps({"event_id": f"ev-{n}", "type": "token.issued", "n": n}).encode()


def records(start: int, stop: int) -> list[StreamRecord]:
    return [
        StreamRecord(str(1000 + n), event(n), f"2026-11-29T00:00:{n:02d}.000+00:00")
        for n in range(start, stop)
    ]


@pytest.fixture
def sealed() -> tuple[MemoryStore, list[bytes]]:
    """Ten events sealed in three batches; the archive holds them in stream order."""
    store = MemoryStore()
    for start, stop in ((0, 3), (3, 7), (7, 10)):
        seal_batch(store, HmacSigner(), stream=STREAM, shard=SHARD, records=records(start, stop))
    return store, [event(n) for n in range(10)]


def test_an_intact_trail_verifies(sealed: tuple[MemoryStore, list[bytes]]) -> None:
    store, archived = sealed
    result = verify(store.seals.values(), archived, signature_valid)
    assert result.ok
    assert (result.seals, result.events) == (3, 10)
    assert [s.index for s in sorted(store.seals.values(), key=lambda s: s.index)] == [0, 1, 2]


def test_a_retried_batch_seals_only_what_is_new() -> None:
    store = MemoryStore()
    seal_batch(store, HmacSigner(), stream=STREAM, shard=SHARD, records=records(0, 5))
    # Lambda retries an overlapping batch: only the two new records are sealed
    second = seal_batch(store, HmacSigner(), stream=STREAM, shard=SHARD, records=records(3, 7))
    assert second is not None and [e[0] for e in second.events] == ["ev-5", "ev-6"]
    # and a batch entirely sealed already writes nothing
    assert (
        seal_batch(store, HmacSigner(), stream=STREAM, shard=SHARD, records=records(0, 7)) is None
    )
    assert store.writes == 2


def test_a_concurrent_sealer_loses_cleanly() -> None:
    store = MemoryStore()
    stale = store.head(STREAM, SHARD)
    seal_batch(store, HmacSigner(), stream=STREAM, shard=SHARD, records=records(0, 2))

    class Racing(MemoryStore):
        def head(self, stream: str, shard: str) -> ChainHead | None:
            return stale  # read before the other sealer moved the head

    racing = Racing(heads=store.heads, seals=store.seals)
    with pytest.raises(ConcurrentSealing):
        seal_batch(racing, HmacSigner(), stream=STREAM, shard=SHARD, records=records(2, 4))


def test_a_modified_event_is_found(sealed: tuple[MemoryStore, list[bytes]]) -> None:
    store, archived = sealed
    tampered = json.loads(archived[4])
    tampered["n"] = 999
    archived[4] = json.dumps(tampered).encode()
    result = verify(store.seals.values(), archived, signature_valid)
    assert result.first_break is not None
    assert (result.first_break.kind, "ev-4" in result.first_break.where) == ("modified", True)


def test_a_removed_event_is_found(sealed: tuple[MemoryStore, list[bytes]]) -> None:
    store, archived = sealed
    del archived[6]
    result = verify(store.seals.values(), archived, signature_valid)
    assert result.first_break is not None
    assert result.first_break.kind == "missing" and "ev-6" in result.first_break.where


def test_reordered_events_are_found(sealed: tuple[MemoryStore, list[bytes]]) -> None:
    store, archived = sealed
    archived[2], archived[8] = archived[8], archived[2]
    result = verify(store.seals.values(), archived, signature_valid)
    assert result.first_break is not None
    assert result.first_break.kind == "reordered"


def test_a_retried_record_archived_twice_is_one_event(
    sealed: tuple[MemoryStore, list[bytes]],
) -> None:
    store, archived = sealed
    archived.insert(5, archived[5])  # a forwarder retry: the same bytes again
    result = verify(store.seals.values(), archived, signature_valid)
    assert result.ok and result.duplicates == 1


def test_an_altered_seal_is_found(sealed: tuple[MemoryStore, list[bytes]]) -> None:
    store, archived = sealed
    key = (STREAM, SHARD, 1)
    store.seals[key] = replace(store.seals[key], events=store.seals[key].events[:-1])
    result = verify(store.seals.values(), archived, signature_valid)
    assert result.first_break is not None and result.first_break.kind == "digest"


def test_a_re_signed_forgery_fails_the_signature(
    sealed: tuple[MemoryStore, list[bytes]],
) -> None:
    store, archived = sealed
    key = (STREAM, SHARD, 2)
    forged = replace(store.seals[key], events=store.seals[key].events[:1])
    forged = replace(forged, digest=forged.computed_digest(), signature="not-kms")
    store.seals[key] = forged
    result = verify(store.seals.values(), archived, signature_valid)
    assert [b.kind for b in result.breaks][:1] == ["signature"]


def test_a_removed_seal_breaks_the_chain(sealed: tuple[MemoryStore, list[bytes]]) -> None:
    store, archived = sealed
    del store.seals[(STREAM, SHARD, 1)]
    result = verify(store.seals.values(), archived, signature_valid)
    assert result.first_break is not None and result.first_break.kind == "chain"


def test_seals_round_trip_through_their_document(
    sealed: tuple[MemoryStore, list[bytes]],
) -> None:
    store, _ = sealed
    for seal in store.seals.values():
        again = Seal.from_document(json.loads(json.dumps(seal.document())))
        assert again == seal and again.computed_digest() == seal.digest
