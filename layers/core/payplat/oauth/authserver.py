"""The authorization server's dependencies in one place, and what every endpoint shares:
issuing an access token, authenticating a client, auditing a decision.

The endpoints (`token_endpoint`: token and metadata; `authorize`; `token_services`:
introspection and revocation; `registration`) are functions of an `AuthServer`; the
handler builds it once per cold start on DynamoDB and KMS, tests build it on moto.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from payplat.audit import events as audit
from payplat.clients.registry import CachedClients, Client
from payplat.config import OAuthSettings
from payplat.errors import InvalidClient
from payplat.gateway.revocation import Revoker
from payplat.oauth import fapi
from payplat.oauth.access_tokens import IssuedToken, issue_access_token
from payplat.oauth.client_auth import AssertionLog, Authenticated, Presented, authenticate
from payplat.oauth.grants import GrantStore, PendingStore, PushedRequestStore
from payplat.oauth.signing_keys import KeyRing
from payplat.oauth.users import UserStore

# Holder id -> its accounts as (account id, currency), for the consent page.
AccountLookup = Callable[[str], list[tuple[str, str]]]
# Charge the login rate limits for (username, origin); raises RateLimited when exhausted.
LoginThrottle = Callable[[str, audit.Origin], None]


@dataclass(frozen=True)
class AuthServer:
    settings: OAuthSettings
    clients: CachedClients
    users: UserStore
    grants: GrantStore
    pending: PendingStore
    keys: KeyRing
    revoker: Revoker
    assertions: AssertionLog
    accounts: AccountLookup
    login_throttle: LoginThrottle
    pushed: PushedRequestStore  # RFC 9126 pushed authorization requests
    clock: Callable[[], float] = time.time

    @property
    def issuer(self) -> str:
        return self.settings.issuer.rstrip("/")

    @property
    def local(self) -> bool:
        return bool(self.settings.local)

    @property
    def fapi(self) -> bool:
        """The FAPI 2.0 Security Profile is on for the whole server (payplat.oauth.fapi)."""
        return self.settings.fapi

    def now(self) -> int:
        return int(self.clock())

    def authenticate(self, credentials: Presented) -> Authenticated:
        """Against the cached registration, and once more against the stored one when that
        fails: a secret rotated (or keys replaced) a moment ago must work at once."""
        try:
            return self._authenticate(credentials)
        except InvalidClient:
            if not self.clients.forget(credentials.client_id):
                raise
            return self._authenticate(credentials)

    def _authenticate(self, credentials: Presented) -> Authenticated:
        authenticated = authenticate(
            credentials,
            clients=self.clients,
            assertions=self.assertions,
            issuer=self.issuer,
            clock=self.clock,
        )
        fapi.check_client_authentication(self.settings, credentials, authenticated)
        return authenticated

    def access_token(
        self, client: Client, *, subject: str, scope: str, jkt: str | None = None
    ) -> IssuedToken:
        return issue_access_token(
            self.keys.signer(),
            issuer=self.settings.issuer,
            audience=self.settings.audience,
            subject=subject,
            client_id=client.client_id,
            scope=scope,
            ttl_s=self.settings.access_token_ttl_s,
            plan=client.plan,
            now=self.now(),
            jkt=jkt,
        )


def record(
    event_type: str,
    outcome: str,
    *,
    origin: audit.Origin,
    client_id: str | None = None,
    sub: str | None = None,
    resource: str | None = None,
    reason: str | None = None,
    **details: Any,
) -> None:
    """One audit record from the authorization server (never a secret, token or password:
    tokens appear as their jti, users as their id)."""
    audit.record(
        audit.AuditEvent(
            type=event_type,
            outcome=outcome,
            actor=audit.Actor(client_id=client_id[:64] if client_id else None, sub=sub),
            origin=origin,
            resource=resource,
            reason=reason,
            details={k: v for k, v in details.items() if v is not None},
        )
    )
