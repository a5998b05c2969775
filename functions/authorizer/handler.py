"""λ authorizer: API Gateway REQUEST authorizer for /v1/*.

Stateless: validates the JWT against keys fetched once from the issuer's JWKS and answers with
a policy covering every route the token's scopes allow. Imports no boto3; a warm invocation
makes no network call.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payplat import audit
from payplat.auth.authorizer import AuthorizationRequest, Unauthenticated, authorize
from payplat.auth.keyset import RemoteKeySet
from payplat.auth.verify import TokenVerifier
from payplat.config import AuthorizerSettings, load
from payplat.observability import logger

settings = load(AuthorizerSettings)
verifier = TokenVerifier(
    RemoteKeySet(settings.jwks_uri), issuer=settings.issuer, audience=settings.audience
)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
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
