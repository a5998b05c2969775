"""Payments as the caller sees them. Object-level authorization lives here: a caller only
ever sees payments of the owner it acts for, and a cursor naming anyone else's payment is
answered as if it did not exist."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from payplat.errors import NotFound
from payplat.pagination import PageRequest, page
from payplat.principal import Principal


class PaymentStore(Protocol):
    def get_payment(self, owner: str, payment_id: str) -> Mapping[str, Any] | None: ...

    def list_payments(
        self,
        owner: str,
        *,
        limit: int,
        after: Mapping[str, Any] | None,
        before: Mapping[str, Any] | None,
    ) -> tuple[Sequence[Mapping[str, Any]], bool]: ...


def list_payments(
    principal: Principal, request: PageRequest, store: PaymentStore
) -> dict[str, Any]:
    after = _cursor(principal, store, request.starting_after, "starting_after")
    before = _cursor(principal, store, request.ending_before, "ending_before")
    payments, has_more = store.list_payments(
        principal.owner, limit=request.limit, after=after, before=before
    )
    return page(payments, has_more, "/v1/payments")


def _cursor(
    principal: Principal, store: PaymentStore, payment_id: str | None, param: str
) -> Mapping[str, Any] | None:
    if payment_id is None:
        return None
    payment = store.get_payment(principal.owner, payment_id)
    if payment is None:
        raise NotFound(f"No such payment: '{payment_id}'", param=param)
    return payment
