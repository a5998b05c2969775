"""The public shapes of the money routes' objects: what the API answers, what an idempotent
replay sends again byte for byte, what a webhook event carries. The ledger builds every body
through these models and the OpenAPI document derives its schemas from them, so the two
cannot drift apart.

The names are the public ones (`Payment` here is the body; `payments.ledger.Payment` is the
record it is made from): import the module, `from payplat.payments import models`. A field
whose default is `MISSING` is left out of the body when it is not set, and is the only kind
of field a schema does not require.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import MISSING, BaseModel, ConfigDict, Field

Amount = Annotated[int, Field(description="Minor units of the currency (5000 is 50.00 EUR).")]
Timestamp = Annotated[int, Field(description="Unix time, seconds.")]
Metadata = Annotated[dict[str, str], Field(description="Your own key-value pairs, as given.")]
PaymentStatus = Literal["requires_capture", "succeeded", "canceled", "failed"]
CancellationReason = Literal["requested_by_customer", "expired"]
RefundReason = Literal["duplicate", "fraudulent", "requested_by_customer"]


class Shape(BaseModel):
    """A response body: built from our own records (strict: a wrong type is our bug, found
    at once), never from a request."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    def body(self) -> dict[str, Any]:
        """The JSON body, fields in declaration order, unset `MISSING` fields left out."""
        return self.model_dump(mode="json")


class Balance(Shape):
    currency: str
    available: Amount
    held: Annotated[int, Field(description="Authorized, awaiting capture.")]


class Account(Shape):
    id: str
    object: Literal["account"] = "account"
    currency: str
    balances: list[Balance]
    created: Timestamp


class LedgerEntry(Shape):
    id: str
    object: Literal["ledger_entry"] = "ledger_entry"
    account: str
    bucket: Literal["available", "held"]
    amount: Annotated[int, Field(description="Into (or, negative, out of) the bucket.")]
    currency: str
    payment: str
    kind: Annotated[
        str, Field(description="payment, authorization, capture, cancel, expiry, refund")
    ]
    created: Timestamp | MISSING = MISSING


class Payment(Shape):
    id: str
    object: Literal["payment"] = "payment"
    amount: Amount
    currency: str
    status: PaymentStatus
    capture_method: Literal["automatic", "manual"]
    source_account: str
    destination_account: str
    amount_captured: Amount
    amount_refunded: Amount
    description: str | None
    metadata: Metadata
    created: Timestamp
    failure_code: Annotated[str | MISSING, Field(description="failed payments only")] = MISSING
    capture_before: Annotated[
        int | MISSING | None,
        Field(description="requires_capture only: released after this (7 days; Unix time)."),
    ] = MISSING
    canceled_at: Timestamp | MISSING = MISSING
    cancellation_reason: CancellationReason | MISSING | None = MISSING


class Refund(Shape):
    id: str
    object: Literal["refund"] = "refund"
    payment: str
    amount: Amount
    currency: str
    status: Literal["succeeded"] = "succeeded"
    reason: RefundReason | None = None
    metadata: Metadata
    created: Timestamp


# The bodies the OpenAPI document names, by their schema names.
RESPONSE_MODELS: tuple[type[Shape], ...] = (Balance, Account, LedgerEntry, Payment, Refund)
