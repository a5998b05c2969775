"""What an account holder's consent leaves behind: authorization codes, refresh tokens and the
grant family that ties them (and the access tokens issued from them) together.

Codes and refresh tokens are opaque 256-bit random strings; only their SHA-256 digest is
stored (as for client secrets, that much entropy needs no slow hash). A family is one chain of
consent: the code, every refresh token rotated from it and the jti of every access token they
yielded. Reusing a spent code or a rotated refresh token is the sign of a stolen credential
(RFC 9700 §4.14.2), so it revokes the whole family.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Literal, Protocol

CODE_TTL_S = 60  # RFC 9700 §4.2.1: short-lived; the client redeems it at once
# From the authorize page's first screen to the consent click.
AUTHORIZATION_REQUEST_TTL_S = 600
# RFC 9126 §2.2: a pushed request's request_uri is short-lived (the client redirects at once).
PUSHED_REQUEST_TTL_S = 60
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
OPAQUE_BYTES = 32  # 256 bits
ACTIVE = "active"
ROTATED = "rotated"
REVOKED = "revoked"

# RFC 7636 §4.1: 43-128 unreserved characters; an S256 challenge is 32 bytes, base64url.
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}\Z")
_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}\Z")


def new_opaque() -> str:
    return secrets.token_urlsafe(OPAQUE_BYTES)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def valid_challenge(challenge: str) -> bool:
    return bool(_S256_CHALLENGE.match(challenge))


def pkce_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 §4.6, S256: BASE64URL(SHA256(verifier)) == challenge."""
    if not _VERIFIER.match(verifier):
        return False
    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest())
    return hmac.compare_digest(computed.rstrip(b"=").decode("ascii"), challenge)


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    """An authorization request that passed validation, waiting for login and consent. The
    browser holds `request_id` and a CSRF token; only the token's digest is kept here."""

    request_id: str
    client_id: str
    redirect_uri: str
    response_type: str  # "code", or "token" for the implicit grant
    scope: str
    state: str
    code_challenge: str  # "" for the implicit grant (no code to bind it to)
    csrf_hash: str
    expires_at: int
    user_id: str | None = None  # set once the account holder has logged in


@dataclass(frozen=True, slots=True)
class PushedRequest:
    """An authorization request a client pushed (RFC 9126), waiting for its browser to open
    the authorize page with the request_uri. Only the request_uri's digest is kept; the
    parameters are the authorization request's own (never client credentials)."""

    request_uri_hash: str
    client_id: str  # only this client may redeem it
    parameters: dict[str, str]
    expires_at: int


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    code_hash: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    scope: str
    user_id: str
    family_id: str  # the family its redemption starts (and a second redemption revokes)
    expires_at: int
    used: bool = False


@dataclass(frozen=True, slots=True)
class RefreshToken:
    token_hash: str
    family_id: str
    client_id: str
    user_id: str
    scope: str
    expires_at: int
    status: str = ACTIVE
    jkt: str | None = None  # the DPoP key a bound grant's refresh needs a proof of


@dataclass(frozen=True, slots=True)
class Family:
    family_id: str
    client_id: str
    user_id: str
    scope: str
    grant_type: str  # how the chain began: authorization_code or password
    expires_at: int  # moves forward with each rotation (an idle family lapses)
    status: str = ACTIVE
    jtis: frozenset[str] = field(default_factory=frozenset)


class PendingStore(Protocol):
    def put_pending(self, pending: PendingAuthorization) -> None: ...

    def get_pending(self, request_id: str) -> PendingAuthorization | None: ...

    def set_pending_user(self, request_id: str, user_id: str) -> None: ...

    def take_pending(self, request_id: str) -> bool:
        """Delete the request; False if it was gone already (a second submit)."""
        ...


class PushedRequestStore(Protocol):
    def put_pushed(self, pushed: PushedRequest) -> None: ...

    def take_pushed(self, request_uri_hash: str, client_id: str, now: int) -> PushedRequest | None:
        """Delete the request if it is there, is `client_id`'s and has not expired, and
        return it; None otherwise (unknown, another client's, expired or used: one use)."""
        ...


class GrantStore(Protocol):
    def put_code(self, code: AuthorizationCode) -> None: ...

    def get_code(self, code_hash: str) -> AuthorizationCode | None: ...

    def redeem_code(
        self, code_hash: str, family: Family, refresh: RefreshToken | None, now: int
    ) -> bool:
        """Mark the code used and start `family` (with `refresh`) in one transaction; False
        when the code was used already (the condition failed: nothing was written)."""
        ...

    def start_family(self, family: Family, refresh: RefreshToken) -> None:
        """A family that begins without a code (the password grant)."""
        ...

    def get_refresh(self, token_hash: str) -> RefreshToken | None: ...

    def rotate_refresh(
        self, old: RefreshToken, new: RefreshToken, jti: str, now: int
    ) -> Literal["rotated", "reused", "revoked"]:
        """In one transaction: `old` active -> rotated, the family still active gains `jti`
        and the new expiry, `new` is stored. Returns "rotated", or "reused" when `old` was
        no longer active, or "revoked" when the family was (nothing written either way)."""
        ...

    def get_family(self, family_id: str) -> Family | None: ...

    def revoke_family(self, family_id: str) -> Family | None:
        """Mark the family revoked; returns it as it was (with every jti), None if absent."""
        ...

    def revoke_refresh(self, token_hash: str) -> None: ...

    def add_family_jti(self, family_id: str, jti: str) -> None:
        """Record an access token issued from the family (so revoking the family reaches it)."""
        ...
