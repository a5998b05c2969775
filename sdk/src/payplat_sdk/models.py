"""Typed API objects: small frozen dataclasses built from the API's JSON.

Every object keeps the JSON it was built from (`obj.raw`, `obj["field"]`, `obj.to_dict()`),
so a field the SDK does not know yet is never lost, and the answer it came with
(`obj.last_response`: status, headers, request id, whether it was an idempotent replay).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar

__all__ = [
    "Account",
    "Balance",
    "Deleted",
    "Event",
    "LedgerEntry",
    "ListObject",
    "Payment",
    "PayplatObject",
    "Redelivery",
    "Refund",
    "ResponseInfo",
    "WebhookEndpoint",
]


@dataclass(frozen=True, slots=True)
class ResponseInfo:
    """What an answer said besides its body."""

    status: int
    headers: Mapping[str, str] = field(repr=False)
    request_id: str | None = None

    @property
    def idempotent_replayed(self) -> bool:
        """True when the API answered from an earlier request with the same Idempotency-Key."""
        return _header(self.headers, "idempotent-replayed") == "true"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


@dataclass(frozen=True, kw_only=True)
class PayplatObject:
    """The base of every API object."""

    id: str
    object: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    last_response: ResponseInfo | None = field(default=None, repr=False, compare=False)

    # Fields whose JSON is itself an object (or a list of them): name -> builder.
    _nested: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], response: ResponseInfo | None = None) -> Self:
        """Build from the API's JSON; unknown fields stay in `raw`, missing ones default."""
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            if item.name in ("raw", "last_response") or item.name not in data:
                continue
            value = data[item.name]
            builder = cls._nested.get(item.name)
            values[item.name] = (
                builder(value) if builder is not None and value is not None else value
            )
        values.setdefault("id", str(data.get("id", "")))
        values.setdefault("object", str(data.get("object", "")))
        return cls(**values, raw=copy.deepcopy(dict(data)), last_response=response)

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        """The JSON the object was built from (a copy)."""
        return copy.deepcopy(dict(self.raw))


@dataclass(frozen=True, slots=True)
class Balance:
    currency: str
    available: int
    held: int = 0


def _balances(value: Sequence[Mapping[str, Any]]) -> list[Balance]:
    return [
        Balance(str(b["currency"]), int(b.get("available", 0)), int(b.get("held", 0)))
        for b in value
    ]


@dataclass(frozen=True, kw_only=True)
class Account(PayplatObject):
    """An account of the caller's owner. Amounts are integers in minor units."""

    currency: str = ""
    balances: list[Balance] = field(default_factory=list)
    created: int = 0

    _nested: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"balances": _balances}

    @property
    def available(self) -> int:
        """The available balance in the account's own currency."""
        return sum(b.available for b in self.balances if b.currency == self.currency)

    @property
    def held(self) -> int:
        """The amount held for payments awaiting capture."""
        return sum(b.held for b in self.balances if b.currency == self.currency)


@dataclass(frozen=True, kw_only=True)
class LedgerEntry(PayplatObject):
    """One entry on an account's ledger (`client.accounts.transactions(id)`)."""

    account: str = ""
    bucket: str = ""  # available | held
    amount: int = 0
    currency: str = ""
    payment: str | None = None
    kind: str = ""
    created: int = 0


@dataclass(frozen=True, kw_only=True)
class Payment(PayplatObject):
    """A payment. `status`: requires_capture | succeeded | canceled | failed."""

    amount: int = 0
    currency: str = ""
    status: str = ""
    capture_method: str = "automatic"
    source_account: str = ""
    destination_account: str = ""
    amount_captured: int = 0
    amount_refunded: int = 0
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    created: int = 0
    capture_before: int | None = None
    failure_code: str | None = None
    canceled_at: int | None = None
    cancellation_reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class Refund(PayplatObject):
    payment: str = ""
    amount: int = 0
    currency: str = ""
    status: str = ""
    reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    created: int = 0


@dataclass(frozen=True, kw_only=True)
class WebhookEndpoint(PayplatObject):
    """A webhook endpoint. `secret` (the signing secret) is only in the answers to create and
    roll_secret, and never in the repr."""

    url: str = ""
    enabled_events: list[str] = field(default_factory=list)
    description: str | None = None
    status: str | None = None
    secret: str | None = field(default=None, repr=False)
    created: int = 0


@dataclass(frozen=True, kw_only=True)
class Event(PayplatObject):
    """Something that happened (`type`, e.g. "payment.succeeded"); `data["object"]` is the
    object as it was then."""

    type: str = ""
    created: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    pending_webhooks: int | None = None  # deliveries of it still being attempted


@dataclass(frozen=True, kw_only=True)
class Redelivery(PayplatObject):
    """The answer to `client.events.redeliver(id)`: `id` is the event's."""

    redelivery: str = ""  # "queued"


@dataclass(frozen=True, kw_only=True)
class Deleted(PayplatObject):
    deleted: bool = True


T = TypeVar("T", bound=PayplatObject)


class ListObject(Generic[T]):
    """One page of a list: iterate it for this page, or `auto_paging_iter()` for every item
    across pages (it fetches the next page with `starting_after` as it goes)."""

    def __init__(
        self,
        data: list[T],
        *,
        has_more: bool,
        url: str,
        raw: Mapping[str, Any],
        last_response: ResponseInfo | None,
        fetch: Callable[[dict[str, Any]], ListObject[T]] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.object = "list"
        self.data = data
        self.has_more = has_more
        self.url = url
        self.raw = raw
        self.last_response = last_response
        self._fetch = fetch
        self._params = dict(params or {})

    def __iter__(self) -> Iterator[T]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> T:
        return self.data[index]

    def __repr__(self) -> str:
        return f"<ListObject {self.url} data={len(self.data)} has_more={self.has_more}>"

    @property
    def _backwards(self) -> bool:
        return self._params.get("ending_before") is not None and not self._params.get(
            "starting_after"
        )

    def next_page(self) -> ListObject[T] | None:
        """The page after this one (older objects; newer ones when the list was asked for
        with `ending_before`), or None at the end."""
        if not self.has_more or not self.data or self._fetch is None:
            return None
        params = dict(self._params)
        if self._backwards:
            params["ending_before"] = self.data[0].id
        else:
            params.pop("ending_before", None)
            params["starting_after"] = self.data[-1].id
        return self._fetch(params)

    def auto_paging_iter(self) -> Iterator[T]:
        """Every item from this page on, fetching pages as needed (newest first; oldest
        first when the list was asked for with `ending_before`)."""
        page: ListObject[T] | None = self
        while page is not None:
            yield from (reversed(page.data) if page._backwards else page.data)
            page = page.next_page()
