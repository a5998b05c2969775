"""Where a client's access tokens come from: the token endpoint's answer (`Tokens`), the
authorization server as one client sees it (`AuthServer`), and the token sources a client
draws on (`TokenSource`: a static token, client credentials, refreshing user tokens).

Below both `client` and `auth`: `client` builds its token source from here, and
`auth.AuthorizationCodeFlow` (which hands out clients) sits above `client`, so the SDK's
imports stay a DAG. The public names are re-exported from `payplat_sdk.auth`.

Tokens and secrets never appear in a repr, a log line or an exception message.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote_plus

from payplat_sdk._http import Answer, Transport, raise_for_answer
from payplat_sdk.dpop import AUTHORIZATION_SERVER, PROOF_HEADER, DpopKey, asks_for_nonce
from payplat_sdk.errors import OAuthError

__all__ = [
    "METADATA_PATH",
    "REFRESH_MARGIN_S",
    "AuthServer",
    "ClientCredentials",
    "RefreshingTokens",
    "StaticToken",
    "TokenSource",
    "Tokens",
    "is_dpop",
    "pkce_pair",
    "refresh_with",
    "scope_string",
]

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
    def is_dpop(self) -> bool:
        """The access token is DPoP-bound (`token_type` "DPoP"): sent with a proof."""
        return is_dpop(self.token_type)

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset((self.scope or "").split())

    def expires_within(self, seconds: float, *, now: float | None = None) -> bool:
        if self.expires_at is None:
            return False
        return (time.time() if now is None else now) >= self.expires_at - seconds


def is_dpop(token_type: str) -> bool:
    return token_type.lower() == "dpop"


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
    token and revocation endpoints, and this client's authentication. With a DPoP key, every
    token request carries a new proof (so the tokens are bound to the key), and a request
    the server answers with `use_dpop_nonce` is sent once more with the nonce it gave."""

    def __init__(
        self,
        transport: Transport,
        base_url: str,
        client_id: str,
        client_secret: str | None,
        dpop: DpopKey | None = None,
    ) -> None:
        self.transport = transport
        self.base_url = base_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.dpop = dpop
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
        answer = self._post(
            self.endpoint("token_endpoint"), form, safe_to_retry=safe_to_retry, proof=True
        )
        return Tokens.from_dict(answer.json_object())

    def revoke(self, token: str, token_type_hint: str | None = None) -> None:
        form = {"token": token}
        if token_type_hint is not None:
            form["token_type_hint"] = token_type_hint
        self._post(self.endpoint("revocation_endpoint"), form, safe_to_retry=True)

    def _post(
        self, url: str, form: Mapping[str, str], *, safe_to_retry: bool, proof: bool = False
    ) -> Answer:
        sent = dict(form)
        headers: dict[str, str] = {}
        if self._client_secret is not None:
            # RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self._client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            sent["client_id"] = self.client_id
        dpop = self.dpop if proof else None
        if dpop is None:
            answer = self.transport.send(
                "POST", url, headers=headers, form=sent, safe_to_retry=safe_to_retry
            )
            return raise_for_answer(answer)

        def new_proof() -> dict[str, str]:  # one per attempt: a proof is used once
            return {PROOF_HEADER: dpop.proof_for(AUTHORIZATION_SERVER, "POST", url)}

        def seen(answer: Answer) -> None:
            dpop.observe(AUTHORIZATION_SERVER, url, answer.headers)

        for nonce_retry in (False, True):
            answer = self.transport.send(
                "POST",
                url,
                headers=headers,
                attempt_headers=new_proof,
                on_answer=seen,
                form=sent,
                safe_to_retry=safe_to_retry,
            )
            # RFC 9449 §8: the server refused the request without acting on it (a refresh
            # token is not spent), so it is sent once more with a proof carrying its nonce.
            if nonce_retry or not asks_for_nonce(answer.status, answer.headers, answer.body):
                break
        return raise_for_answer(answer)


class TokenSource(Protocol):
    """Where a client's access tokens come from."""

    def token(self) -> str: ...

    def invalidate(self, token: str) -> bool:
        """`token` was refused (401): forget it. True when a new one can be had."""
        ...


class StaticToken:
    """An access token the caller obtained itself: used as is, never refreshed."""

    def __init__(self, token: str, token_type: str = "Bearer") -> None:  # noqa: S107
        self._token = token
        self.token_type = token_type

    def __repr__(self) -> str:
        return f"StaticToken(<hidden>, token_type={self.token_type!r})"

    def token(self) -> str:
        return self._token

    def credential(self) -> tuple[str, str]:
        return self._token, self.token_type

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
        return self.credential()[0]

    def credential(self) -> tuple[str, str]:
        """The access token to send and its type ("Bearer" or "DPoP"), read together."""
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
            return self._tokens.access_token, self._tokens.token_type

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
        return self.credential()[0]

    def credential(self) -> tuple[str, str]:
        """The access token to send and its type ("Bearer" or "DPoP"), read together."""
        with self._lock:
            due = self._stale or self._tokens.expires_within(REFRESH_MARGIN_S, now=self._clock())
            if due and self._tokens.refresh_token is not None:
                self._refresh_locked()
            return self._tokens.access_token, self._tokens.token_type

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
