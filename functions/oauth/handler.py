"""λ oauth: the authorization server's public endpoints (token, metadata, JWKS)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from payplat import oauth
from payplat.config import OAuthSettings, load
from payplat.dal.kms_signer import KmsSigner
from payplat.dal.wiring import dynamo_gate
from payplat.http import (
    NO_STORE,
    RESPONSE_HEADERS,
    bind,
    form_body,
    json_response,
    make_resolver,
    origin,
)
from payplat.observability import logger, tracer
from payplat.routes import Function

settings = load(OAuthSettings)
signer = KmsSigner(settings.signing_key_id)
gate = dynamo_gate(settings.clients_table, settings.rate_limits_table, settings.config_cache_ttl_s)
app = make_resolver(Function.OAUTH)

# Public documents: cacheable, so relying parties need not call us per token.
_PUBLIC_CACHE = {"Cache-Control": "public, max-age=300"}


@bind(app, "token")
def token() -> Response[str]:
    form = form_body(app)
    credentials = oauth.client_credentials(app.current_event.headers.get("authorization"), form)
    caller = origin(app)
    app.append_context(
        **{RESPONSE_HEADERS: gate.admit_token_request(credentials.client_id, caller)}
    )
    body = oauth.token(
        form, credentials, clients=gate.clients, signer=signer, settings=settings, origin=caller
    )
    return json_response(200, body, NO_STORE)


@bind(app, "oauth_metadata")
def metadata() -> Response[str]:
    return json_response(200, oauth.metadata(settings), _PUBLIC_CACHE)


@bind(app, "jwks")
def jwks() -> Response[str]:
    return json_response(200, oauth.jwks(signer), _PUBLIC_CACHE)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)  # responses hold tokens
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
