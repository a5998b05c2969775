"""The request-path gate shared by every rate-limited route: who is calling (the client's
live registration), may the route be called with this token's scopes, and may it be called
now (rate, quotas, revocation — one conditional write). Also the gates of the token
endpoint and of sign-ins, per source address, per credential and address, and per
credential, before any credential is checked."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from payplat.audit import events as audit
from payplat.audit.emf import metric
from payplat.audit.metrics import ACCESS_DENIED, CREDENTIAL_THROTTLED
from payplat.clients.registry import CachedClients
from payplat.errors import (
    AuthenticationFailed,
    InvalidClient,
    InvalidDpopProof,
    OAuthError,
    PermissionDenied,
)
from payplat.gateway import dpop
from payplat.gateway.enforce import TOKEN_REVOKED, RateLimited, WhenRevoked, enforce
from payplat.gateway.limiter import Charge, ProofUse, RateLimiter
from payplat.gateway.nonces import HEADER as NONCE_HEADER
from payplat.gateway.nonces import Nonces
from payplat.gateway.plans import (
    LOGIN_PER_IP,
    LOGIN_PER_USERNAME,
    LOGIN_PER_USERNAME_AND_IP,
    TOKEN_ENDPOINT_PER_CLIENT,
    TOKEN_ENDPOINT_PER_CLIENT_AND_IP,
    TOKEN_ENDPOINT_PER_IP,
    CachedPlans,
)
from payplat.principal import Principal
from payplat.routes import Route

API_SCOPE = "api"
# A disabled client at the token endpoint (and introspection, revocation): invalid_client,
# as for any credential that no longer works.
CLIENT_DISABLED = WhenRevoked("client_disabled", InvalidClient)


@dataclass(frozen=True, slots=True)
class Presented:
    """What a resource request presents for a DPoP check: its method and public URL (as the
    partner called it, stage included), and its Authorization and DPoP headers."""

    method: str
    url: str
    authorization: str | None
    dpop: str | None


class Gate:
    def __init__(
        self,
        clients: CachedClients,
        plans: CachedPlans,
        limiter: RateLimiter,
        nonces: Nonces | None = None,
        *,
        sender_constrained: bool = False,
    ) -> None:
        self.clients = clients
        self.plans = plans
        self.limiter = limiter
        self.nonces = nonces  # set where DPoP proofs must carry a server nonce
        self.sender_constrained = sender_constrained  # FAPI 2.0: DPoP-bound tokens only

    def admit(
        self,
        route: Route,
        authorizer_context: Mapping[str, Any],
        origin: audit.Origin,
        presented: Presented | None = None,
    ) -> tuple[Principal, dict[str, str]]:
        """The caller and the rate-limit headers for its response; raises ApiError
        subclasses (401, 403, 429, 503) when the request may not proceed. A DPoP-bound
        token's proof is checked here, and its one use recorded in the limiter's write."""
        try:
            principal = replace(
                principal_from(authorizer_context, self.clients), request_id=origin.request_id
            )
        except AuthenticationFailed:
            _denied(route, authorizer_context, origin, "client_inactive")
            raise
        if route.scope is not None:
            try:
                principal.require(route.scope)
            except PermissionDenied:
                _denied(route, authorizer_context, origin, "insufficient_scope")
                raise
        proof = self._proof(route, authorizer_context, origin, presented)
        limits = self.plans.get(principal.plan)
        charge = self.limiter.charge(
            API_SCOPE,
            principal.client_id,
            limits,
            cost=route.cost,
            jti=principal.jti or None,
            issued_at=principal.issued_at,
        )
        headers = enforce(
            self.limiter,
            [charge],
            fail_open=route.fails_open,
            actor=audit.Actor(client_id=principal.client_id, sub=principal.subject),
            origin=origin,
            resource=route.name,
            proof=proof,
        )
        if proof is not None and self.nonces is not None:
            headers[NONCE_HEADER] = self.nonces.current()  # the one to use next
        return principal, headers

    def _proof(
        self,
        route: Route,
        authorizer_context: Mapping[str, Any],
        origin: audit.Origin,
        presented: Presented | None,
    ) -> ProofUse | None:
        """None for a bearer token; for a bound one, the proof's use to record, or 401."""
        jkt = str(authorizer_context.get("jkt") or "")
        if not jkt and self.sender_constrained:
            _denied(route, authorizer_context, origin, "token_not_sender_constrained")
            raise AuthenticationFailed("Only DPoP-bound access tokens are accepted (FAPI 2.0).")
        if not jkt:
            return None
        try:
            if presented is None:
                raise dpop.InvalidProof("missing_proof", "A DPoP proof is required.")
            token = dpop.dpop_token(presented.authorization)
            if token is None:  # the authorizer lets a bound token through only as DPoP
                raise dpop.InvalidProof("bound_token_as_bearer", "Send the token as DPoP.")
            proof = dpop.verify_proof(
                presented.dpop,
                method=presented.method,
                url=presented.url,
                now=time.time(),
                access_token=token,
                nonces=None if self.nonces is None else self.nonces.accepted(),
            )
            if proof.jkt != jkt:
                raise dpop.InvalidProof("wrong_key", "The DPoP proof is signed by another key.")
        except dpop.InvalidProof as refused:
            _denied(route, authorizer_context, origin, f"dpop_{refused.reason}")
            nonce = self.nonces.current() if self.nonces is not None else None
            raise dpop_refusal(refused, nonce) from None
        return ProofUse(proof_key(proof), proof.expires_at)

    def admit_token_request(
        self, client_id: str, origin: audit.Origin, proof: dpop.Proof | None = None
    ) -> dict[str, str]:
        """Throttle the token endpoint per source address (credential stuffing), per client
        id and address (guessing one client's secret) and per client id (a ceiling no one
        address can reach), in one write; fails closed. A stranger guessing a partner's
        secret spends only its own address's buckets: the partner's right secret from its
        own servers still passes. The per-client bucket also carries a disabled client's
        revocation, so it is refused from the moment it is disabled, whatever client record
        a container still caches. A DPoP proof's one use is recorded in the same write."""
        ip = origin.source_ip or "unknown"
        claimed = client_id[:128] or "-"
        per_ip = self.plans.get(TOKEN_ENDPOINT_PER_IP.name)
        per_client_ip = self.plans.get(TOKEN_ENDPOINT_PER_CLIENT_AND_IP.name)
        per_client = self.plans.get(TOKEN_ENDPOINT_PER_CLIENT.name)
        charges = [
            self.limiter.charge(per_ip.name, ip, per_ip),
            self.limiter.charge(per_client_ip.name, f"{claimed}@{ip}", per_client_ip),
            # As if for the token this request would be issued now.
            self.limiter.charge(per_client.name, claimed, per_client, issued_at=int(time.time())),
        ]
        try:
            return self._throttle(
                charges,
                actor=audit.Actor(client_id=client_id[:128] or None),
                origin=origin,
                resource="token",
                when_revoked=CLIENT_DISABLED,
                proof=None if proof is None else ProofUse(proof_key(proof), proof.expires_at),
            )
        except InvalidDpopProof as replayed:  # the token endpoint answers in RFC 6749 terms
            raise OAuthError("invalid_dpop_proof", replayed.message) from None

    def admit_login(self, username: str, origin: audit.Origin) -> None:
        """Throttle account-holder sign-ins per username and source address (guessing one
        password from one place), per username (a ceiling no one address can hold down) and
        per address (spraying many usernames), in one write; fails closed."""
        ip = origin.source_ip or "unknown"
        user = username[:64] or "-"
        per_user_ip = self.plans.get(LOGIN_PER_USERNAME_AND_IP.name)
        per_user = self.plans.get(LOGIN_PER_USERNAME.name)
        per_ip = self.plans.get(LOGIN_PER_IP.name)
        self._throttle(
            [
                self.limiter.charge(per_user_ip.name, f"{user}@{ip}", per_user_ip),
                self.limiter.charge(per_user.name, user, per_user),
                self.limiter.charge(per_ip.name, ip, per_ip),
            ],
            actor=audit.Actor(),
            origin=origin,
            resource="login",
        )

    def _throttle(
        self,
        charges: list[Charge],
        *,
        actor: audit.Actor,
        origin: audit.Origin,
        resource: str,
        when_revoked: WhenRevoked = TOKEN_REVOKED,
        proof: ProofUse | None = None,
    ) -> dict[str, str]:
        """A credential gate's write; a refusal (audited as `rate_limited` with the bucket
        that refused) is also counted by bucket, so a lockout campaign shows on the
        dashboard."""
        try:
            return enforce(
                self.limiter,
                charges,
                fail_open=False,
                actor=actor,
                origin=origin,
                resource=resource,
                when_revoked=when_revoked,
                proof=proof,
            )
        except RateLimited as refused:
            metric(CREDENTIAL_THROTTLED, limit=refused.plan)
            raise


def proof_key(proof: dpop.Proof) -> str:
    """The item that records a proof's use: its key and jti, hashed to a fixed length."""
    digest = hashlib.sha256(f"{proof.jkt}.{proof.jti}".encode()).hexdigest()
    return f"DPOP#{digest[:40]}"


def dpop_refusal(refused: dpop.InvalidProof, nonce: str | None = None) -> InvalidDpopProof:
    return InvalidDpopProof(
        refused.message,
        reason=refused.reason,
        algorithms=" ".join(dpop.ALGORITHMS),
        nonce=nonce,
    )


def _denied(
    route: Route, authorizer_context: Mapping[str, Any], origin: audit.Origin, reason: str
) -> None:
    """A refusal behind the authorizer (a disabled client, a scope the cached policy let
    through): audited and counted like the authorizer's own."""
    audit.record(
        audit.AuditEvent(
            type="access.denied",
            outcome="failure",
            actor=audit.Actor(
                client_id=str(authorizer_context.get("client_id") or "") or None,
                sub=str(authorizer_context.get("sub") or "") or None,
            ),
            origin=origin,
            resource=route.name,
            reason=reason,
        ),
        metric=ACCESS_DENIED.name,
        reason=reason,
    )


def principal_from(authorizer_context: Mapping[str, Any], clients: CachedClients) -> Principal:
    client_id = str(authorizer_context.get("client_id") or "")
    client = clients.get(client_id) if client_id else None
    if client is None or not client.active:
        raise AuthenticationFailed("The client is unknown or disabled.")
    subject = str(authorizer_context.get("sub") or client_id)
    return Principal(
        client_id=client_id,
        subject=subject,
        # The token's scopes as far as the client's registration still holds them: a
        # scope removed since the token was issued is refused from the next client read.
        scopes=frozenset(str(authorizer_context.get("scope") or "").split()) & client.scopes,
        jti=str(authorizer_context.get("jti") or ""),
        # A client-credentials token's subject is the client: it acts for the client's
        # owner. Any other subject is the account holder who consented: it acts for them.
        owner=client.owner if subject == client_id else subject,
        plan=client.plan,
        issued_at=_int_or_none(authorizer_context.get("iat")),
    )


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
