"""Who is calling a resource route: the client, the subject it acts as, the owner whose
accounts and payments it reaches, and its scopes (built by the gateway's gate from the
authorizer's context and the client's registration)."""

from __future__ import annotations

from dataclasses import dataclass

from payplat.errors import PermissionDenied


@dataclass(frozen=True, slots=True)
class Principal:
    client_id: str
    subject: str
    scopes: frozenset[str]
    jti: str
    owner: str  # whose accounts and payments this caller acts for
    plan: str  # the client's current plan (its registration, not the token, is the truth)
    issued_at: int | None = None  # the token's iat, checked against revocations
    request_id: str | None = None  # API Gateway's, for the audit trail of what it changes

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise PermissionDenied(f"This route needs the scope {scope}.")
