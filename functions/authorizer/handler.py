"""λ authorizer: API Gateway REQUEST authorizer for /v1/*.

Stateless: validates the JWT against keys fetched once from the issuer's JWKS and answers with
a policy covering every route the token's scopes allow. Imports no boto3 and no Powertools
(cold start: pyjwt, cryptography and pydantic only); a warm invocation makes no network call.
Its own log lines go through the standard library, which Lambda's JSON log format wraps.
"""

from __future__ import annotations

from typing import Any

from payplat.audit import events as audit
from payplat.config import AuthorizerSettings, load
from payplat.gateway.authorizer import AuthorizationRequest, Unauthenticated, authorize
from payplat.gateway.keyset import RemoteKeySet
from payplat.gateway.verify import TokenVerifier

settings = load(AuthorizerSettings)
verifier = TokenVerifier(
    RemoteKeySet(settings.jwks_uri, min_refresh_interval_s=settings.jwks_min_refresh_s),
    issuer=settings.issuer,
    audience=settings.audience,
)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    identity = (event.get("requestContext") or {}).get("identity") or {}
    request = AuthorizationRequest(
        authorization=headers.get("authorization"),
        method_arn=event["methodArn"],
        origin=audit.Origin(
            source_ip=identity.get("sourceIp"),
            user_agent=headers.get("user-agent"),
            request_id=(event.get("requestContext") or {}).get("requestId"),
        ),
    )
    try:
        return authorize(request, verifier)
    except Unauthenticated:
        # The exact message API Gateway turns into a 401 (UNAUTHORIZED gateway response).
        raise Exception("Unauthorized") from None
