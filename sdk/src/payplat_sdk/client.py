"""The client: `Payplat(base_url, client_id, client_secret)`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import requests

from payplat_sdk._http import Transport
from payplat_sdk._tokens import (
    AuthServer,
    ClientCredentials,
    RefreshingTokens,
    StaticToken,
    Tokens,
    TokenSource,
    scope_string,
)
from payplat_sdk.dpop import DpopKey, dpop_key_of
from payplat_sdk.resources import (
    Accounts,
    Events,
    Payments,
    Refunds,
    Requestor,
    WebhookEndpoints,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    DpopKeyOption = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | DpopKey | bool | None

__all__ = ["Payplat"]


class Payplat:
    """A client of the payplat API.

        client = Payplat("https://api.payplat.example", client_id, client_secret)
        payment = client.payments.create(
            source_account="acct_1", destination_account="acct_2", amount=5000, currency="EUR"
        )

    With `client_secret`, the client gets client-credentials tokens (narrowed to `scope` when
    given), caches them and fetches a new one before they expire or once after a 401. With
    `token`, it uses that access token as is. For an account holder's tokens from the
    authorization-code flow, use `Payplat.from_tokens` (or `AuthorizationCodeFlow.client`).

    Requests that fail on the way (connection errors, 409, 429, 5xx) are retried up to
    `max_retries` times with exponential backoff and jitter, honouring `Retry-After`; every
    POST carries one Idempotency-Key across its retries. Safe to share across threads.

    With `dpop_key` (a `cryptography` EC P-256 or RSA private key, a `DpopKey`, or `True` for
    a P-256 key generated for this client), tokens are DPoP-bound (RFC 9449): every token
    request and every API request carries a new proof signed by the key, so a copied token
    is useless without it. With `token=` and `dpop_key`, that token is sent as a DPoP one.
    """

    accounts: Accounts
    payments: Payments
    refunds: Refunds
    webhook_endpoints: WebhookEndpoints
    events: Events

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str | None = None,
        *,
        token: str | None = None,
        scope: str | Sequence[str] | None = None,
        timeout: float = 10,
        max_retries: int = 3,
        session: requests.Session | None = None,
        dpop_key: DpopKeyOption = None,
    ) -> None:
        self._setup(base_url, client_id, client_secret, timeout, max_retries, session, dpop_key)
        tokens: TokenSource
        if token is not None:
            tokens = StaticToken(token, "DPoP" if self._dpop is not None else "Bearer")
        elif client_secret is not None:
            tokens = ClientCredentials(self._server, scope_string(scope))
        else:
            raise ValueError("Payplat needs a client_secret or an access token (token=...)")
        self._use(tokens)

    @classmethod
    def from_tokens(
        cls,
        base_url: str,
        client_id: str,
        client_secret: str | None = None,
        *,
        tokens: Tokens | Mapping[str, Any],
        on_tokens: Callable[[Tokens], None] | None = None,
        timeout: float = 10,
        max_retries: int = 3,
        session: requests.Session | None = None,
        dpop_key: DpopKeyOption = None,
    ) -> Payplat:
        """A client acting with tokens from the authorization-code flow (a `Tokens`, or its
        `to_dict()` / a token response). The access token is refreshed before it expires and
        once after a 401; the refresh token rotates and `on_tokens` gets every new pair —
        persist it there, the old refresh token is spent. DPoP-bound tokens need the
        `dpop_key` they are bound to (the same `DpopKey`, or the same private key)."""
        held = tokens if isinstance(tokens, Tokens) else Tokens.from_dict(tokens)
        if held.is_dpop and (dpop_key is None or dpop_key is False or dpop_key is True):
            raise ValueError("these tokens are DPoP-bound: pass the dpop_key they are bound to")
        client = cls.__new__(cls)
        client._setup(base_url, client_id, client_secret, timeout, max_retries, session, dpop_key)
        client._use(RefreshingTokens(client._server, held, on_tokens))
        return client

    def _setup(  # noqa: PLR0917 - internal, mirrors __init__
        self,
        base_url: str,
        client_id: str,
        client_secret: str | None,
        timeout: float,
        max_retries: int,
        session: requests.Session | None,
        dpop_key: DpopKeyOption,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._dpop = dpop_key_of(dpop_key)
        self._transport = Transport(session=session, timeout=timeout, max_retries=max_retries)
        self._server = AuthServer(
            self._transport, self.base_url, client_id, client_secret, self._dpop
        )

    def _use(self, tokens: TokenSource) -> None:
        self._tokens = tokens
        requestor = Requestor(self._transport, self.base_url, tokens, self._dpop)
        self.accounts = Accounts(requestor)
        self.payments = Payments(requestor)
        self.refunds = Refunds(requestor)
        self.webhook_endpoints = WebhookEndpoints(requestor)
        self.events = Events(requestor)

    @property
    def tokens(self) -> Tokens | None:
        """The tokens in use (client credentials or from_tokens), None for a static token."""
        held = getattr(self._tokens, "tokens", None)
        return held if isinstance(held, Tokens) else None

    @property
    def dpop_key(self) -> DpopKey | None:
        """The DPoP key this client proves possession of (None: bearer tokens)."""
        return self._dpop

    @property
    def max_retries(self) -> int:
        return self._transport.max_retries

    @property
    def oauth_metadata(self) -> dict[str, Any]:
        """The authorization server's metadata (RFC 8414), fetched once."""
        return self._server.metadata()

    def close(self) -> None:
        """Close the HTTP session (unless it was passed in)."""
        self._transport.close()

    def __enter__(self) -> Payplat:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Payplat({self.base_url!r}, client_id={self.client_id!r})"
