"""The read side: accounts, their transactions, payments and refunds as the caller sees them.
Object-level authorization lives here: a caller only ever sees what belongs to the owner it
acts for; anyone else's object, or a cursor naming one, is answered as if it did not exist."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from payplat.errors import InvalidRequest, NotFound
from payplat.pagination import PageRequest, page, valid_id
from payplat.payments import models
from payplat.payments.ledger import Account, Ledger, Payment, Refund
from payplat.principal import Principal

PAYMENT = "PAYMENT"
ACCOUNT = "ACCOUNT"
STATUSES = ("requires_capture", "succeeded", "canceled", "failed")


class LedgerReader(Protocol):
    def owned(self, kind: str, owner: str, object_id: str) -> dict[str, Any] | None: ...

    def cursor(self, kind: str, owner: str, object_id: str) -> dict[str, Any] | None: ...

    def page(
        self,
        kind: str,
        owner: str,
        *,
        limit: int,
        after: dict[str, Any] | None,
        before: dict[str, Any] | None,
        created_from: int | None = None,
        created_to: int | None = None,
        status: str | None = None,
    ) -> tuple[list[dict[str, Any]], bool]: ...

    def entries(
        self, account_id: str, *, limit: int, after: str | None
    ) -> tuple[list[dict[str, Any]], bool]: ...

    def refunds(self, payment_id: str) -> list[Refund]: ...


def list_accounts(
    principal: Principal, request: PageRequest, store: LedgerReader
) -> dict[str, Any]:
    records, has_more = _page(ACCOUNT, principal, request, store)
    return page([Account.from_record(r).public() for r in records], has_more, "/v1/accounts")


def get_account(principal: Principal, account_id: str, store: LedgerReader) -> dict[str, Any]:
    return Account.from_record(_owned(ACCOUNT, principal, account_id, store, "account_id")).public()


def list_transactions(
    principal: Principal, account_id: str, request: PageRequest, store: LedgerReader
) -> dict[str, Any]:
    _owned(ACCOUNT, principal, account_id, store, "account_id")
    if request.ending_before is not None:
        raise InvalidRequest("Transactions page forward only.", param="ending_before")
    # Entry ids sort by time, and entries live in the account's own partition: the id is
    # the position, and another account's entry id names nothing here.
    after = None if request.starting_after is None else f"ENTRY#{request.starting_after}"
    records, has_more = store.entries(account_id, limit=request.limit, after=after)
    data = [
        models.LedgerEntry.model_validate(
            {key: _plain(value) for key, value in record.items() if key not in ("pk", "sk")}
        ).body()
        for record in records
    ]
    return page(data, has_more, f"/v1/accounts/{account_id}/transactions")


def list_payments(
    principal: Principal,
    request: PageRequest,
    query: Mapping[str, str],
    store: LedgerReader,
) -> dict[str, Any]:
    status = query.get("status")
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}.", param="status")
    created_from = _timestamp(query, "created[gte]")
    created_to = _timestamp(query, "created[lte]")
    records, has_more = _page(
        PAYMENT,
        principal,
        request,
        store,
        created_from=created_from,
        created_to=created_to,
        status=status,
    )
    return page([Payment.from_record(r).public() for r in records], has_more, "/v1/payments")


def get_payment(principal: Principal, payment_id: str, ledger: Ledger) -> dict[str, Any]:
    if not valid_id(payment_id):
        raise NotFound(f"No such payment: '{payment_id[:64]}'", param="payment_id")
    return ledger.payment_of(principal, payment_id).public()


def list_refunds(
    principal: Principal, payment_id: str, ledger: Ledger, store: LedgerReader
) -> dict[str, Any]:
    get_payment(principal, payment_id, ledger)
    refunds = [refund.public() for refund in store.refunds(payment_id)]
    return page(refunds, False, f"/v1/payments/{payment_id}/refunds")


def _page(
    kind: str,
    principal: Principal,
    request: PageRequest,
    store: LedgerReader,
    **filters: Any,
) -> tuple[list[dict[str, Any]], bool]:
    after = _cursor(kind, principal, store, request.starting_after, "starting_after")
    before = _cursor(kind, principal, store, request.ending_before, "ending_before")
    return store.page(
        kind, principal.owner, limit=request.limit, after=after, before=before, **filters
    )


def _owned(
    kind: str, principal: Principal, object_id: str, store: LedgerReader, param: str
) -> dict[str, Any]:
    record = store.owned(kind, principal.owner, object_id) if valid_id(object_id) else None
    if record is None:
        raise NotFound(f"No such {kind.lower()}: '{object_id[:64]}'", param=param)
    return record


def _cursor(
    kind: str, principal: Principal, store: LedgerReader, object_id: str | None, param: str
) -> dict[str, Any] | None:
    if object_id is None:
        return None
    cursor = store.cursor(kind, principal.owner, object_id)
    if cursor is None:
        raise NotFound(f"No such {kind.lower()}: '{object_id}'", param=param)
    return cursor


def _timestamp(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 11:
        raise InvalidRequest(f"{name} must be a Unix timestamp in seconds.", param=name)
    return int(raw)


def _plain(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value)
    return value
