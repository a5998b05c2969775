"""Cursor pagination, Stripe style: `limit` 1-100 (default 10), `starting_after` /
`ending_before` naming an object id, newest first, `has_more`."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from payplat.errors import InvalidRequest

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
_ID = re.compile(r"^[A-Za-z0-9_]{1,64}\Z")


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    starting_after: str | None = None
    ending_before: str | None = None


def page_request(query: Mapping[str, str]) -> PageRequest:
    raw_limit = query.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_LIMIT}.", param="limit")
    starting_after = query.get("starting_after")
    ending_before = query.get("ending_before")
    if starting_after and ending_before:
        raise InvalidRequest(
            "Use starting_after or ending_before, not both.", param="ending_before"
        )
    for name, value in (("starting_after", starting_after), ("ending_before", ending_before)):
        if value is not None and not valid_id(value):
            raise InvalidRequest(f"{name} must be an object id.", param=name)
    return PageRequest(int(raw_limit), starting_after, ending_before)


def valid_id(value: str) -> bool:
    return bool(_ID.match(value))


def page(data: Sequence[Mapping[str, Any]], has_more: bool, url: str) -> dict[str, Any]:
    return {"object": "list", "url": url, "data": list(data), "has_more": has_more}
