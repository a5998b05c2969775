"""The authorizer's decision: validate the access token (Bearer, or DPoP-bound: then only
with the DPoP scheme), answer with a policy covering every route its scopes allow, and audit
the decision. No AWS call, no boto3. The DPoP proof itself is the backend gate's to check."""

from __future__ import annotations

from dataclasses import dataclass

from payplat.audit import events as audit
from payplat.audit.metrics import ACCESS_DENIED
from payplat.gateway.policy import Policy, build_policy, is_allowed
from payplat.gateway.verify import (
    AccessClaims,
    InvalidToken,
    TokenVerifier,
    check_binding,
    presented_token,
)


class Unauthenticated(Exception):
    """No valid token: API Gateway answers 401 (the handler raises "Unauthorized")."""


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    authorization: str | None
    method_arn: str
    origin: audit.Origin


def authorize(request: AuthorizationRequest, verifier: TokenVerifier) -> Policy:
    try:
        scheme, token = presented_token(request.authorization)
        claims = verifier.verify(token)
        check_binding(scheme, claims)
    except InvalidToken as exc:
        _record(request, "failure", reason=exc.reason)
        raise Unauthenticated(exc.reason) from exc

    context: dict[str, str | int] = {
        "client_id": claims.client_id,
        "sub": claims.subject,
        "scope": claims.scope,
        "jti": claims.jti,
        "exp": claims.expires_at,
        "iat": claims.issued_at,
        "plan": claims.plan or "",
        # The DPoP key the token is bound to: the backend's gate checks each request's
        # proof against it (the proof changes every request; a cached policy cannot).
        "jkt": claims.jkt or "",
    }
    policy = build_policy(claims.subject, request.method_arn, claims.scopes, context)
    covered = is_allowed(policy, request.method_arn)
    reason = None if covered else "insufficient_scope"
    _record(request, "success" if covered else "failure", reason=reason, claims=claims)
    return policy


def _record(
    request: AuthorizationRequest,
    outcome: str,
    *,
    reason: str | None,
    claims: AccessClaims | None = None,
) -> None:
    actor = audit.Actor()
    details: dict[str, object] = {}
    if claims is not None:
        actor = audit.Actor(client_id=claims.client_id, sub=claims.subject)
        details = {"jti": claims.jti, "scope": claims.scope}
    allowed = outcome == "success"
    event = audit.AuditEvent(
        type="access.allowed" if allowed else "access.denied",
        outcome=outcome,
        actor=actor,
        origin=request.origin,
        resource=request.method_arn,
        reason=reason,
        details=details,
    )
    if allowed:
        # Admitted requests are counted where they are answered (Requests, by route): the
        # authorizer runs once per cached token, so a count here would mean little.
        audit.record(event)
    else:
        # A refusal's metric rides on its audit line: one write per request. The reasons
        # are InvalidToken's fixed codes and insufficient_scope: a bounded dimension.
        audit.record(event, metric=ACCESS_DENIED.name, reason=reason or "denied")
