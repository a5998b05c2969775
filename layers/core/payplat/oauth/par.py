"""Pushed authorization requests (RFC 9126): a client posts its authorization request
straight to the authorization server, authenticated as at the token endpoint, and sends the
browser to the authorize page with only `client_id` and the `request_uri` it got back. The
parameters never travel through the browser, so they can be neither read nor altered there.

The request is checked with the authorize page's own checks (`authorize.check_request`) and
kept, under the digest of its request_uri, for `PUSHED_REQUEST_TTL_S`; the authorize page
redeems it once, for the client that pushed it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from payplat.audit import events as audit
from payplat.errors import OAuthError
from payplat.oauth.authorize import check_request
from payplat.oauth.authserver import AuthServer, record
from payplat.oauth.client_auth import Presented
from payplat.oauth.grants import (
    PUSHED_REQUEST_TTL_S,
    REQUEST_URI_PREFIX,
    PushedRequest,
    digest,
    new_opaque,
)

# Client authentication travels in the form too (client_secret_post, private_key_jwt): it is
# the push's, never part of the request that is kept.
CLIENT_AUTH_PARAMETERS = frozenset(
    {"client_id", "client_secret", "client_assertion", "client_assertion_type"}
)


def push(
    server: AuthServer, form: Mapping[str, str], credentials: Presented, origin: audit.Origin
) -> dict[str, Any]:
    """POST /oauth/par. Returns the RFC 9126 §2.2 body (answered 201); raises OAuthError
    (§2.3: RFC 6749 §5.2, invalid_client a 401). The caller has throttled the request as
    the token endpoint's (per IP and client id) before this runs."""
    try:
        client = server.authenticate(credentials).client
        if "request_uri" in form:
            raise OAuthError("invalid_request", "request_uri cannot be pushed (RFC 9126 §2.1).")
        if form.get("client_id", client.client_id) != client.client_id:
            raise OAuthError("invalid_request", "client_id is not the authenticated client.")
        requested = {k: v for k, v in form.items() if k not in CLIENT_AUTH_PARAMETERS}
        parameters = check_request(server, client, requested)
    except OAuthError as exc:
        record(
            "authorization.refused",
            "failure",
            origin=origin,
            client_id=credentials.client_id or None,
            resource="oauth/par",
            reason=exc.error,
        )
        raise
    request_uri = REQUEST_URI_PREFIX + new_opaque()  # 256 bits
    server.pushed.put_pushed(
        PushedRequest(
            request_uri_hash=digest(request_uri),
            client_id=client.client_id,
            parameters=parameters,
            expires_at=server.now() + PUSHED_REQUEST_TTL_S,
        )
    )
    record(
        "authorization.pushed",
        "success",
        origin=origin,
        client_id=client.client_id,
        resource="oauth/par",
        response_type=parameters.get("response_type"),
        scope=parameters.get("scope"),
        expires_in=PUSHED_REQUEST_TTL_S,
    )
    return {"request_uri": request_uri, "expires_in": PUSHED_REQUEST_TTL_S}
