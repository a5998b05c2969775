"""OAuth 2.0 against payplat's authorization server: endpoint discovery (RFC 8414), client
credentials with a cached token refreshed before it expires, and the authorization-code flow
with PKCE S256 and refresh-token rotation.

The token machinery (`Tokens`, `AuthServer`, the token sources) lives in `payplat_sdk._tokens`,
below `client`, and is re-exported here (`X as X`, explicit for type checkers). This module
adds the authorization-code flow, which hands out `Payplat` clients and so sits above `client`.

Tokens and secrets never appear in a repr, a log line or an exception message.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from payplat_sdk._http import Transport
from payplat_sdk._tokens import METADATA_PATH as METADATA_PATH  # noqa: PLC0414
from payplat_sdk._tokens import REFRESH_MARGIN_S as REFRESH_MARGIN_S  # noqa: PLC0414
from payplat_sdk._tokens import AuthServer as AuthServer  # noqa: PLC0414
from payplat_sdk._tokens import ClientCredentials as ClientCredentials  # noqa: PLC0414
from payplat_sdk._tokens import RefreshingTokens as RefreshingTokens  # noqa: PLC0414
from payplat_sdk._tokens import StaticToken as StaticToken  # noqa: PLC0414
from payplat_sdk._tokens import Tokens, pkce_pair
from payplat_sdk._tokens import TokenSource as TokenSource  # noqa: PLC0414
from payplat_sdk._tokens import refresh_with as refresh_with  # noqa: PLC0414
from payplat_sdk._tokens import scope_string as scope_string  # noqa: PLC0414
from payplat_sdk.client import Payplat
from payplat_sdk.dpop import DpopKey, dpop_key_of
from payplat_sdk.errors import OAuthError

if TYPE_CHECKING:
    import requests

    from payplat_sdk.client import DpopKeyOption

__all__ = ["AuthorizationCodeFlow", "Tokens", "pkce_pair"]


class AuthorizationCodeFlow:
    """The authorization-code flow with PKCE S256, for an app acting for an account holder.

    ```python
    flow = AuthorizationCodeFlow(base_url, client_id, client_secret, on_tokens=save)
    url, state, verifier = flow.authorization_url(redirect_uri, "accounts:read")
    # ... send the browser to `url`; at redirect_uri:
    code = flow.parse_redirect(request_url, state)
    tokens = flow.exchange(code, redirect_uri, verifier)
    client = flow.client(tokens)  # refreshes by itself, calling `save` with each new pair
    ```

    With `dpop_key` (as for `Payplat`; `True` generates a P-256 key for the flow), the code
    exchange and every refresh carry a DPoP proof, so the tokens are bound to the key, and
    `flow.client(tokens)` proves possession of the same key.
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str | None = None,
        *,
        on_tokens: Callable[[Tokens], None] | None = None,
        timeout: float = 10,
        max_retries: int = 3,
        session: requests.Session | None = None,
        dpop_key: DpopKeyOption = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.on_tokens = on_tokens
        self._timeout = timeout
        self._max_retries = max_retries
        self._session = session
        self._dpop = dpop_key_of(dpop_key)
        self._transport = Transport(session=session, timeout=timeout, max_retries=max_retries)
        self._server = AuthServer(
            self._transport, self.base_url, client_id, client_secret, self._dpop
        )

    def __repr__(self) -> str:
        return f"AuthorizationCodeFlow({self.base_url!r}, client_id={self.client_id!r})"

    @property
    def metadata(self) -> dict[str, Any]:
        return self._server.metadata()

    @property
    def dpop_key(self) -> DpopKey | None:
        """The DPoP key the flow's tokens are bound to (None: bearer tokens)."""
        return self._dpop

    def authorization_url(
        self,
        redirect_uri: str,
        scope: str | Sequence[str],
        state: str | None = None,
        **extra: str,
    ) -> tuple[str, str, str]:
        """Where to send the account holder's browser: (url, state, verifier). Keep `state`
        and `verifier` (server side, per browser session) until the redirect comes back."""
        verifier, challenge = pkce_pair()
        state = state if state is not None else secrets.token_urlsafe(32)
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": scope_string(scope) or "",
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        endpoint = self._server.endpoint("authorization_endpoint")
        separator = "&" if urlsplit(endpoint).query else "?"
        return f"{endpoint}{separator}{urlencode(query)}", state, verifier

    def parse_redirect(self, url: str, state: str) -> str:
        """The code from the redirect to `redirect_uri`, after checking `state` and the
        issuer (RFC 9207, which stops a mix-up with another authorization server). Raises
        OAuthError if the holder declined or anything does not match."""
        params = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
        returned_state = params.get("state", "")
        if not hmac.compare_digest(returned_state.encode(), state.encode()):
            raise OAuthError("invalid_state", "The state in the redirect is not the one sent.")
        metadata = self._server.metadata()
        issuer = params.get("iss")
        iss_expected = metadata.get("authorization_response_iss_parameter_supported")
        if (issuer is not None or iss_expected) and issuer != metadata.get("issuer"):
            raise OAuthError("invalid_issuer", "The redirect comes from another issuer.")
        if "error" in params:
            raise OAuthError(params["error"], params.get("error_description"))
        code = params.get("code")
        if not code:
            raise OAuthError("invalid_request", "The redirect carries no code.")
        return code

    def exchange(self, code: str, redirect_uri: str, verifier: str) -> Tokens:
        """Redeem the code (with the PKCE verifier) for tokens; calls `on_tokens`."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        tokens = self._server.token(form, safe_to_retry=False)
        self._issued(tokens)
        return tokens

    def refresh(
        self, refresh_token: str | Tokens, scope: str | Sequence[str] | None = None
    ) -> Tokens:
        """A new pair for a refresh token, which is spent (rotation); calls `on_tokens`.
        Store the new refresh token: the old one must not be used again."""
        raw = refresh_token.refresh_token if isinstance(refresh_token, Tokens) else refresh_token
        if not raw:
            raise OAuthError("invalid_grant", "There is no refresh token to refresh with.")
        tokens = refresh_with(self._server, raw, scope_string(scope))
        self._issued(tokens)
        return tokens

    def revoke(self, token: str | Tokens, token_type_hint: str | None = None) -> None:
        """Withdraw a token (RFC 7009); a Tokens' refresh token revokes the whole grant."""
        if isinstance(token, Tokens):
            raw = token.refresh_token or token.access_token
            token_type_hint = "refresh_token" if token.refresh_token else "access_token"
        else:
            raw = token
        self._server.revoke(raw, token_type_hint)

    def client(self, tokens: Tokens | Mapping[str, Any]) -> Payplat:
        """A Payplat client acting with `tokens`, refreshing them as needed."""
        return Payplat.from_tokens(
            self.base_url,
            self.client_id,
            self._client_secret,
            tokens=tokens,
            on_tokens=self.on_tokens,
            timeout=self._timeout,
            max_retries=self._max_retries,
            session=self._session,
            dpop_key=self._dpop,
        )

    def close(self) -> None:
        self._transport.close()

    def _issued(self, tokens: Tokens) -> None:
        if self.on_tokens is not None:
            self.on_tokens(tokens)
