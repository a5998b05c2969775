"""The API's resources: accounts, payments, refunds, webhook endpoints and events.

Every POST carries an Idempotency-Key (a fresh uuid4 unless the caller passes
`idempotency_key=`), and the same key goes with each of its retries, so a retried request is
answered from the first one instead of moving money twice.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from payplat_sdk._http import Answer, Transport, raise_for_answer
from payplat_sdk._tokens import TokenSource, is_dpop
from payplat_sdk.dpop import PROOF_HEADER, RESOURCE_SERVER, DpopKey, asks_for_nonce
from payplat_sdk.errors import AuthenticationError
from payplat_sdk.models import (
    Account,
    Deleted,
    Event,
    LedgerEntry,
    ListObject,
    Payment,
    PayplatObject,
    Redelivery,
    Refund,
    WebhookEndpoint,
)

__all__ = ["Accounts", "Events", "Payments", "Refunds", "WebhookEndpoints"]

T = TypeVar("T", bound=PayplatObject)
Timestamp = int | datetime


class Requestor:
    """Authenticated calls to the API: a token from the token source (a refused one is
    replaced once), retries by the transport. A DPoP token goes as `Authorization: DPoP`
    with a new proof for each attempt; an answer asking for a DPoP nonce is retried once
    with it."""

    def __init__(
        self,
        transport: Transport,
        base_url: str,
        tokens: TokenSource,
        dpop: DpopKey | None = None,
    ) -> None:
        self.transport = transport
        self.base_url = base_url
        self.tokens = tokens
        self.dpop = dpop

    def _credential(self) -> tuple[str, str]:
        """(access token, token type), read together from the token source."""
        credential = getattr(self.tokens, "credential", None)
        if callable(credential):
            token, token_type = credential()
            return str(token), str(token_type)
        return self.tokens.token(), "Bearer"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Answer:
        """Every POST is answered from its first answer when its Idempotency-Key comes
        back, so any POST may be resent with the same key."""
        headers: dict[str, str] = {}
        json_body: Any = None
        if method == "POST":
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
            json_body = dict(body or {})
        query = {key: value for key, value in (params or {}).items() if value is not None}
        url = self.base_url + path
        used: list[str] = []  # the tokens sent, newest last
        dpop = self.dpop

        def credentials() -> dict[str, str]:  # before each attempt: a proof is used once
            token, token_type = self._credential()
            used.append(token)
            if not is_dpop(token_type):
                return {"Authorization": f"Bearer {token}"}
            if dpop is None:
                raise AuthenticationError(
                    "The token is DPoP-bound: pass the dpop_key it is bound to."
                )
            proof = dpop.proof_for(RESOURCE_SERVER, method, url, access_token=token)
            return {"Authorization": f"DPoP {token}", PROOF_HEADER: proof}

        def seen(answer: Answer) -> None:
            if dpop is not None:
                dpop.observe(RESOURCE_SERVER, url, answer.headers)

        refreshed = nonce_retried = False
        while True:
            answer = self.transport.send(
                method,
                url,
                headers=headers,
                attempt_headers=credentials,
                on_answer=seen,
                params=query or None,
                json_body=json_body,
            )
            if (
                answer.status == 401
                and dpop is not None
                and not nonce_retried
                and asks_for_nonce(answer.status, answer.headers, answer.body)
            ):
                nonce_retried = True  # RFC 9449 §9: once more, with the nonce it sent
                continue
            if answer.status == 401 and not refreshed and used:
                refreshed = True
                if self.tokens.invalidate(used[-1]):
                    continue
            return raise_for_answer(answer)


class _Resource:
    def __init__(self, requestor: Requestor) -> None:
        self._requestor = requestor

    def _one(
        self,
        model: type[T],
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> T:
        answer = self._requestor.request(
            method, path, body=_compact(body or {}), idempotency_key=idempotency_key
        )
        return model.from_dict(answer.json_object(), answer.info)

    def _list(self, model: type[T], path: str, params: Mapping[str, Any]) -> ListObject[T]:
        params = {key: _param(value) for key, value in params.items() if value is not None}
        answer = self._requestor.request("GET", path, params=params)
        body = answer.json_object()
        data = body.get("data")
        return ListObject(
            [model.from_dict(item) for item in data] if isinstance(data, list) else [],
            has_more=bool(body.get("has_more")),
            url=str(body.get("url", path)),
            raw=body,
            last_response=answer.info,
            fetch=lambda next_params: self._list(model, path, next_params),
            params=params,
        )


def _segment(value: str) -> str:
    """A path parameter, escaped so an id can never change the path."""
    return quote(str(value), safe="")


def _param(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp())
    return value


def _compact(body: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}


class Accounts(_Resource):
    """`client.accounts`: the caller's accounts and their ledger entries."""

    def list(
        self,
        *,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> ListObject[Account]:
        return self._list(
            Account,
            "/v1/accounts",
            {"limit": limit, "starting_after": starting_after, "ending_before": ending_before},
        )

    def retrieve(self, account_id: str) -> Account:
        return self._one(Account, "GET", f"/v1/accounts/{_segment(account_id)}")

    def transactions(
        self, account_id: str, *, limit: int | None = None, starting_after: str | None = None
    ) -> ListObject[LedgerEntry]:
        """The account's ledger entries, newest first (they page forward only)."""
        return self._list(
            LedgerEntry,
            f"/v1/accounts/{_segment(account_id)}/transactions",
            {"limit": limit, "starting_after": starting_after},
        )


class Payments(_Resource):
    """`client.payments`. Amounts are integers in minor units (5000 is 50.00 EUR)."""

    def create(
        self,
        *,
        source_account: str,
        destination_account: str,
        amount: int,
        currency: str,
        capture_method: Literal["automatic", "manual"] | None = None,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Payment:
        """Pay from one of the caller's accounts. A manual capture holds the money until
        the payee captures it. Raises PaymentError (402) when the balance is too low."""
        body = {
            "source_account": source_account,
            "destination_account": destination_account,
            "amount": amount,
            "currency": currency,
            "capture_method": capture_method,
            "description": description,
            "metadata": dict(metadata) if metadata is not None else None,
        }
        return self._one(Payment, "POST", "/v1/payments", body, idempotency_key)

    def retrieve(self, payment_id: str) -> Payment:
        return self._one(Payment, "GET", f"/v1/payments/{_segment(payment_id)}")

    def list(
        self,
        *,
        status: str | None = None,
        created_gte: Timestamp | None = None,
        created_lte: Timestamp | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> ListObject[Payment]:
        """Payments the caller is party to, newest first. `created_gte` / `created_lte`:
        Unix seconds or datetimes."""
        return self._list(
            Payment,
            "/v1/payments",
            {
                "status": status,
                "created[gte]": created_gte,
                "created[lte]": created_lte,
                "limit": limit,
                "starting_after": starting_after,
                "ending_before": ending_before,
            },
        )

    def capture(
        self, payment_id: str, amount: int | None = None, *, idempotency_key: str | None = None
    ) -> Payment:
        """Capture a payment awaiting capture (payee only); less than the authorized
        amount releases the rest to the payer."""
        return self._one(
            Payment,
            "POST",
            f"/v1/payments/{_segment(payment_id)}/capture",
            {"amount": amount},
            idempotency_key,
        )

    def cancel(self, payment_id: str, *, idempotency_key: str | None = None) -> Payment:
        """Cancel a payment awaiting capture; the held money goes back to the payer."""
        return self._one(
            Payment, "POST", f"/v1/payments/{_segment(payment_id)}/cancel", {}, idempotency_key
        )


class Refunds(_Resource):
    """`client.refunds`: refunds of a payment (payee only), partial or whole."""

    def create(
        self,
        payment_id: str,
        amount: int | None = None,
        reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None = None,
        *,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Refund:
        body = {
            "amount": amount,
            "reason": reason,
            "metadata": dict(metadata) if metadata is not None else None,
        }
        return self._one(
            Refund, "POST", f"/v1/payments/{_segment(payment_id)}/refunds", body, idempotency_key
        )

    def list(self, payment_id: str) -> ListObject[Refund]:
        return self._list(Refund, f"/v1/payments/{_segment(payment_id)}/refunds", {})


class WebhookEndpoints(_Resource):
    """`client.webhook_endpoints` (scope webhooks:manage). The signing secret is in the
    answers to `create` and `roll_secret` only: store it then."""

    def create(
        self,
        url: str,
        enabled_events: Sequence[str] = ("*",),
        description: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> WebhookEndpoint:
        body = {"url": url, "enabled_events": builtins.list(enabled_events)}
        if description is not None:
            body["description"] = description
        return self._one(WebhookEndpoint, "POST", "/v1/webhook_endpoints", body, idempotency_key)

    def list(
        self,
        *,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> ListObject[WebhookEndpoint]:
        return self._list(
            WebhookEndpoint,
            "/v1/webhook_endpoints",
            {"limit": limit, "starting_after": starting_after, "ending_before": ending_before},
        )

    def retrieve(self, endpoint_id: str) -> WebhookEndpoint:
        return self._one(WebhookEndpoint, "GET", f"/v1/webhook_endpoints/{_segment(endpoint_id)}")

    def delete(self, endpoint_id: str) -> Deleted:
        path = f"/v1/webhook_endpoints/{_segment(endpoint_id)}"
        answer = self._requestor.request("DELETE", path)
        body = answer.body if isinstance(answer.body, dict) else {}
        return Deleted.from_dict(
            {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True, **body},
            answer.info,
        )

    def roll_secret(
        self,
        endpoint_id: str,
        expires_in: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> WebhookEndpoint:
        """A new signing secret; the old one keeps signing next to it for `expires_in`
        seconds (the API's default, a day, when None; 0 stops it at once), so deploy the new
        one and verify with both meanwhile."""
        return self._one(
            WebhookEndpoint,
            "POST",
            f"/v1/webhook_endpoints/{_segment(endpoint_id)}/roll_secret",
            {"expires_in": expires_in},
            idempotency_key,
        )


class Events(_Resource):
    """`client.events` (scope webhooks:manage): what happened, newest first."""

    def list(
        self,
        *,
        type: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> ListObject[Event]:
        return self._list(
            Event,
            "/v1/events",
            {
                "type": type,
                "limit": limit,
                "starting_after": starting_after,
                "ending_before": ending_before,
            },
        )

    def retrieve(self, event_id: str) -> Event:
        return self._one(Event, "GET", f"/v1/events/{_segment(event_id)}")

    def redeliver(self, event_id: str, *, idempotency_key: str | None = None) -> Redelivery:
        """Send the event again to each of the caller's enabled endpoints subscribed to its
        type (a new delivery, retried as usual). InvalidRequestError
        `no_webhook_endpoints` when there is none."""
        return self._one(
            Redelivery, "POST", f"/v1/events/{_segment(event_id)}/redeliver", {}, idempotency_key
        )
