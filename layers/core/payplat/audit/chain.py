"""Tamper evidence for the audit trail: seals, hash-chained per stream shard and signed.

The sealer reads the audit stream in order, one shard at a time, and for each batch writes
a seal: the id and SHA-256 of every audit line in it (records are subscription envelopes of
lines, payplat.audit.unpack), in stream order, the digest of the previous
seal of the shard, and a KMS signature over its own digest. Seals go to the Object Lock
archive. `verify` recomputes everything from the archived events and the seals and reports
the first break: a modified event (hash), a removed one (missing), a reordered one (order), a
seal altered or forged (digest, signature) or removed (chain).

A record that appears twice with identical bytes (a forwarder retry) is one event: the trail
deduplicates by `event_id`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from payplat.audit.events import unpack

GENESIS = "0" * 64  # the `previous` of a shard's first seal


def record_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def event_id_of(data: bytes) -> str:
    """The record's event id ("" for a record that is not an audit event)."""
    try:
        value = json.loads(data).get("event_id")
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True)
class StreamRecord:
    sequence: str  # Kinesis sequence number (a decimal string, ordered within the shard)
    data: bytes
    arrived: str  # ISO time the stream received it


@dataclass(frozen=True, slots=True)
class Seal:
    stream: str
    shard: str
    index: int  # 0, 1, 2... within the shard's chain
    first_sequence: str
    last_sequence: str
    sealed_through: str  # arrival time of the batch's last record (deterministic on retry)
    events: tuple[tuple[str, str], ...]  # (event_id, sha256 of the record), stream order
    previous: str
    key_id: str
    digest: str = ""
    signature: str = ""  # base64 DER ECDSA P-256 over the digest's hex string

    def canonical(self) -> bytes:
        body = {k: v for k, v in asdict(self).items() if k not in ("digest", "signature")}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def computed_digest(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    def document(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Seal:
        values = dict(document)
        values["events"] = tuple(tuple(pair) for pair in values["events"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class ChainHead:
    shard: str
    next_index: int
    last_sequence: str
    digest: str


class SealStore(Protocol):
    def head(self, stream: str, shard: str) -> ChainHead | None: ...

    def put_seal(self, seal: Seal) -> None: ...

    def advance(self, stream: str, expected: ChainHead | None, new: ChainHead) -> bool:
        """Move the shard's head from `expected` to `new`; False if it moved meanwhile."""
        ...


class DigestSigner(Protocol):
    key_id: str

    def sign_digest(self, digest: str) -> str: ...


class ConcurrentSealing(RuntimeError):
    """Another sealer advanced this shard's chain: the batch is retried."""


def seal_batch(
    store: SealStore,
    signer: DigestSigner,
    *,
    stream: str,
    shard: str,
    records: Sequence[StreamRecord],
) -> Seal | None:
    """Seal the records not sealed yet (a retried batch skips what the chain already holds);
    None when there is nothing new."""
    head = store.head(stream, shard)
    done = int(head.last_sequence) if head else -1
    fresh = [r for r in records if int(r.sequence) > done]
    if not fresh:
        return None
    seal = Seal(
        stream=stream,
        shard=shard,
        index=head.next_index if head else 0,
        first_sequence=fresh[0].sequence,
        last_sequence=fresh[-1].sequence,
        sealed_through=fresh[-1].arrived,
        events=tuple(
            (event_id_of(line), record_hash(line)) for r in fresh for line in unpack(r.data)
        ),
        previous=head.digest if head else GENESIS,
        key_id=signer.key_id,
    )
    digest = seal.computed_digest()
    seal = replace(seal, digest=digest, signature=signer.sign_digest(digest))
    # The seal is written before the head moves: a crash between the two re-seals the same
    # records into the same (deterministic) seal, never a gap.
    store.put_seal(seal)
    new_head = ChainHead(shard, seal.index + 1, seal.last_sequence, digest)
    if not store.advance(stream, head, new_head):
        raise ConcurrentSealing(f"{stream}/{shard}")
    return seal


# -- verification ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Break:
    kind: str  # modified | missing | reordered | digest | signature | chain
    where: str
    detail: str


@dataclass
class Verification:
    seals: int = 0
    events: int = 0
    duplicates: int = 0
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first_break(self) -> Break | None:
        return self.breaks[0] if self.breaks else None


SignatureCheck = Callable[[str, str, str], bool]  # (key_id, digest, signature) -> valid


def verify(
    seals: Iterable[Seal], archived: Sequence[bytes], signature_valid: SignatureCheck
) -> Verification:
    """Check `seals` (any shards, any order) against the archived event records (in archive
    order). Every break found is listed, the first one first."""
    result = Verification()
    positions: dict[str, list[tuple[int, str]]] = {}
    for position, data in enumerate(archived):
        positions.setdefault(event_id_of(data), []).append((position, record_hash(data)))
    result.duplicates = sum(len(found) - 1 for found in positions.values())
    by_shard: dict[tuple[str, str], list[Seal]] = {}
    for seal in seals:
        by_shard.setdefault((seal.stream, seal.shard), []).append(seal)
    for (stream, shard), chain in sorted(by_shard.items()):
        _verify_chain(
            f"{stream}/{shard}",
            sorted(chain, key=lambda s: s.index),
            positions,
            signature_valid,
            result,
        )
    return result


def _verify_chain(
    name: str,
    chain: list[Seal],
    positions: dict[str, list[tuple[int, str]]],
    signature_valid: SignatureCheck,
    result: Verification,
) -> None:
    previous_digest, expected_index, last_position = GENESIS, chain[0].index, -1
    if chain[0].index != 0:
        previous_digest = chain[0].previous  # a range that starts mid-chain
    for seal in chain:
        result.seals += 1
        where = f"{name} seal {seal.index}"
        if seal.index != expected_index or seal.previous != previous_digest:
            result.breaks.append(
                Break("chain", where, "a seal before this one is missing or was replaced")
            )
        if seal.computed_digest() != seal.digest:
            result.breaks.append(
                Break("digest", where, "the seal's content does not match its digest")
            )
        elif not signature_valid(seal.key_id, seal.digest, seal.signature):
            result.breaks.append(Break("signature", where, "the seal's signature does not verify"))
        seen: set[str] = set()
        for event_id, expected_hash in seal.events:
            if event_id in seen:
                continue  # a retried record sealed twice in one batch
            seen.add(event_id)
            result.events += 1
            found = positions.get(event_id)
            if not found:
                result.breaks.append(
                    Break("missing", f"{where}, event {event_id}", "sealed but not in the archive")
                )
                continue
            if all(hash_ != expected_hash for _, hash_ in found):
                result.breaks.append(
                    Break(
                        "modified",
                        f"{where}, event {event_id}",
                        "the archived record differs from what was sealed",
                    )
                )
                continue
            later = [p for p, hash_ in found if hash_ == expected_hash and p > last_position]
            if not later:
                result.breaks.append(
                    Break(
                        "reordered",
                        f"{where}, event {event_id}",
                        "archived before an event sealed ahead of it",
                    )
                )
                continue
            last_position = later[0]
        previous_digest, expected_index = seal.digest, seal.index + 1
