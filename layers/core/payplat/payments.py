"""Accounts and payments as the caller sees them. Object-level authorization lives here: a
caller only ever sees objects of the owner it acts for; anyone else's object, or a cursor
naming one, is answered as if it did not exist."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from payplat.errors import NotFound
from payplat.pagination import PageRequest, page, valid_id
from payplat.principal import Principal

PAYMENT = "PAYMENT"
ACCOUNT = "ACCOUNT"


class LedgerReader(Protocol):
    def get(self, kind: str, owner: str, object_id: str) -> Mapping[str, Any] | None: ...

    def cursor(self, kind: str, owner: str, object_id: str) -> Mapping[str, Any] | None: ...

    def list(
        self,
        kind: str,
        owner: str,
        *,
        limit: int,
        after: Mapping[str, Any] | None,
        before: Mapping[str, Any] | None,
    ) -> tuple[Sequence[Mapping[str, Any]], bool]: ...


def list_payments(
    principal: Principal, request: PageRequest, store: LedgerReader
) -> dict[str, Any]:
    return _list(PAYMENT, "/v1/payments", principal, request, store)


def list_accounts(
    principal: Principal, request: PageRequest, store: LedgerReader
) -> dict[str, Any]:
    return _list(ACCOUNT, "/v1/accounts", principal, request, store)


def get_payment(principal: Principal, payment_id: str, store: LedgerReader) -> dict[str, Any]:
    payment = store.get(PAYMENT, principal.owner, payment_id) if valid_id(payment_id) else None
    if payment is None:
        raise NotFound(f"No such payment: '{payment_id[:64]}'", param="payment_id")
    return dict(payment)


def _list(
    kind: str, url: str, principal: Principal, request: PageRequest, store: LedgerReader
) -> dict[str, Any]:
    after = _cursor(kind, principal, store, request.starting_after, "starting_after")
    before = _cursor(kind, principal, store, request.ending_before, "ending_before")
    objects, has_more = store.list(
        kind, principal.owner, limit=request.limit, after=after, before=before
    )
    return page(objects, has_more, url)


def _cursor(
    kind: str, principal: Principal, store: LedgerReader, object_id: str | None, param: str
) -> Mapping[str, Any] | None:
    if object_id is None:
        return None
    cursor = store.cursor(kind, principal.owner, object_id)
    if cursor is None:
        raise NotFound(f"No such {kind.lower()}: '{object_id}'", param=param)
    return cursor
