"""OAuth 2.0 against payplat's authorization server: endpoint discovery (RFC 8414), client
credentials with a cached token refreshed before it expires, and the authorization-code flow
with PKCE S256 and refresh-token rotation.

Tokens and secrets never appear in a repr, a log line or an exception message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit

from payplat_sdk._http import Answer, Transport, raise_for_answer
from payplat_sdk.errors import OAuthError

if TYPE_CHECKING:
    import requests

    from payplat_sdk.client import Payplat

__all__ = ["AuthorizationCodeFlow", "Tokens", "pkce_pair"]

METADATA_PATH = "/.well-known/oauth-authorization-server"
# Refresh this long before a token expires (at most half its lifetime), so a request never
# leaves with a token that dies on the way.
REFRESH_MARGIN_S = 60.0


@dataclass(frozen=True)
class Tokens:
    """What the token endpoint issued. `expires_at` is a Unix time in seconds. Persist with
    `to_dict()` / `Tokens.from_dict()`; the repr shows no token."""

    access_token: str = field(repr=False)
    token_type: str = "Bearer"
    expires_at: float | None = None
    refresh_token: str | None = field(default=None, repr=False)
    scope: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, now: float | None = None) -> Tokens:
        """From a token response (`expires_in`) or from `to_dict()` (`expires_at`)."""
        if not isinstance(data.get("access_token"), str):
            raise ValueError("a token response needs an access_token")
        expires_at = data.get("expires_at")
        if expires_at is None and data.get("expires_in") is not None:
            expires_at = (time.time() if now is None else now) + float(data["expires_in"])
        refresh = data.get("refresh_token")
        scope = data.get("scope")
        return cls(
            access_token=data["access_token"],
            token_type=str(data.get("token_type") or "Bearer"),
            expires_at=float(expires_at) if expires_at is not None else None,
            refresh_token=refresh if isinstance(refresh, str) else None,
            scope=scope if isinstance(scope, str) else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_at": self.expires_at,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
        }

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset((self.scope or "").split())

    def expires_within(self, seconds: float, *, now: float | None = None) -> bool:
        if self.expires_at is None:
            return False
        return (time.time() if now is None else now) >= self.expires_at - seconds


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier (86 characters) and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def scope_string(scope: str | Sequence[str] | None) -> str | None:
    if scope is None or isinstance(scope, str):
        return scope
    return " ".join(scope)


class AuthServer:
    """The authorization server as one client sees it: its metadata (fetched once), its
    token and revocation endpoints, and this client's authentication."""

    def __init__(
        self, transport: Transport, base_url: str, client_id: str, client_secret: str | None
    ) -> None:
        self.transport = transport
        self.base_url = base_url
        self.client_id = client_id
        self._client_secret = client_secret
        self._metadata: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AuthServer({self.base_url!r}, client_id={self.client_id!r})"

    def metadata(self) -> dict[str, Any]:
        """`/.well-known/oauth-authorization-server` (RFC 8414), fetched once."""
        with self._lock:
            if self._metadata is None:
                answer = raise_for_answer(self.transport.send("GET", self.base_url + METADATA_PATH))
                self._metadata = answer.json_object()
            return self._metadata

    def endpoint(self, name: str) -> str:
        value = self.metadata().get(name)
        if not isinstance(value, str) or not value:
            raise OAuthError(
                "invalid_metadata", f"The authorization server's metadata has no {name}."
            )
        return value

    def token(self, form: Mapping[str, str], *, safe_to_retry: bool) -> Tokens:
        """A token request with this client's authentication. Raises OAuthError."""
        answer = self._post(self.endpoint("token_endpoint"), form, safe_to_retry=safe_to_retry)
        return Tokens.from_dict(answer.json_object())

    def revoke(self, token: str, token_type_hint: str | None = None) -> None:
        form = {"token": token}
        if token_type_hint is not None:
            form["token_type_hint"] = token_type_hint
        self._post(self.endpoint("revocation_endpoint"), form, safe_to_retry=True)

    def _post(self, url: str, form: Mapping[str, str], *, safe_to_retry: bool) -> Answer:
        sent = dict(form)
        headers: dict[str, str] = {}
        if self._client_secret is not None:
            # RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self._client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            sent["client_id"] = self.client_id
        answer = self.transport.send(
            "POST", url, headers=headers, form=sent, safe_to_retry=safe_to_retry
        )
        return raise_for_answer(answer)


class TokenSource(Protocol):
    """Where a client's access tokens come from."""

    def token(self) -> str: ...

    def invalidate(self, token: str) -> bool:
        """`token` was refused (401): forget it. True when a new one can be had."""
        ...


class StaticToken:
    """An access token the caller obtained itself: used as is, never refreshed."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "StaticToken(<hidden>)"

    def token(self) -> str:
        return self._token

    def invalidate(self, token: str) -> bool:
        return False


class ClientCredentials:
    """Client-credentials tokens, cached and fetched again before they expire (one fetch at
    a time across threads)."""

    def __init__(
        self,
        server: AuthServer,
        scope: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._server = server
        self._scope = scope
        self._clock = clock
        self._tokens: Tokens | None = None
        self._margin_s = REFRESH_MARGIN_S
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self._server.client_id!r}, scope={self._scope!r})"

    @property
    def tokens(self) -> Tokens | None:
        return self._tokens

    def token(self) -> str:
        with self._lock:
            if self._tokens is None or self._tokens.expires_within(
                self._margin_s, now=self._clock()
            ):
                form = {"grant_type": "client_credentials"}
                if self._scope:
                    form["scope"] = self._scope
                issued_at = self._clock()
                self._tokens = self._server.token(form, safe_to_retry=True)
                self._margin_s = _margin(self._tokens, issued_at)
            return self._tokens.access_token

    def invalidate(self, token: str) -> bool:
        with self._lock:
            if self._tokens is not None and self._tokens.access_token == token:
                self._tokens = None
        return True


class RefreshingTokens:
    """An account holder's tokens from the authorization-code flow: the access token is
    refreshed before it expires (or once after a 401) with the refresh token, which rotates;
    the newest pair is kept and handed to `on_tokens` to be persisted."""

    def __init__(
        self,
        server: AuthServer,
        tokens: Tokens,
        on_tokens: Callable[[Tokens], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._server = server
        self._tokens = tokens
        self._on_tokens = on_tokens
        self._clock = clock
        self._stale = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RefreshingTokens(client_id={self._server.client_id!r}, tokens={self._tokens!r})"

    @property
    def tokens(self) -> Tokens:
        return self._tokens

    def token(self) -> str:
        with self._lock:
            due = self._stale or self._tokens.expires_within(REFRESH_MARGIN_S, now=self._clock())
            if due and self._tokens.refresh_token is not None:
                self._refresh_locked()
            return self._tokens.access_token

    def refresh(self, scope: str | None = None) -> Tokens:
        with self._lock:
            return self._refresh_locked(scope)

    def invalidate(self, token: str) -> bool:
        with self._lock:
            if self._tokens.access_token != token:
                return True  # another thread has refreshed already
            if self._tokens.refresh_token is None:
                return False
            self._stale = True
            return True

    def _refresh_locked(self, scope: str | None = None) -> Tokens:
        refresh_token = self._tokens.refresh_token
        if refresh_token is None:
            raise OAuthError("invalid_grant", "There is no refresh token to refresh with.")
        self._tokens = refresh_with(self._server, refresh_token, scope)
        self._stale = False
        if self._on_tokens is not None:
            self._on_tokens(self._tokens)
        return self._tokens


def refresh_with(server: AuthServer, refresh_token: str, scope: str | None = None) -> Tokens:
    """Redeem a refresh token. Never resent once it may have reached the server: a refresh
    token is spent on first use, and presenting it again revokes the whole grant."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if scope:
        form["scope"] = scope
    tokens = server.token(form, safe_to_retry=False)
    if tokens.refresh_token is None:  # a server that does not rotate: keep using the old one
        tokens = Tokens(
            tokens.access_token, tokens.token_type, tokens.expires_at, refresh_token, tokens.scope
        )
    return tokens


def _margin(tokens: Tokens, issued_at: float) -> float:
    if tokens.expires_at is None:
        return REFRESH_MARGIN_S
    return min(REFRESH_MARGIN_S, max(tokens.expires_at - issued_at, 0.0) / 2)


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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.on_tokens = on_tokens
        self._timeout = timeout
        self._max_retries = max_retries
        self._session = session
        self._transport = Transport(session=session, timeout=timeout, max_retries=max_retries)
        self._server = AuthServer(self._transport, self.base_url, client_id, client_secret)

    def __repr__(self) -> str:
        return f"AuthorizationCodeFlow({self.base_url!r}, client_id={self.client_id!r})"

    @property
    def metadata(self) -> dict[str, Any]:
        return self._server.metadata()

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
        from payplat_sdk.client import Payplat

        return Payplat.from_tokens(
            self.base_url,
            self.client_id,
            self._client_secret,
            tokens=tokens,
            on_tokens=self.on_tokens,
            timeout=self._timeout,
            max_retries=self._max_retries,
            session=self._session,
        )

    def close(self) -> None:
        self._transport.close()

    def _issued(self, tokens: Tokens) -> None:
        if self.on_tokens is not None:
            self.on_tokens(tokens)
