"""The FAPI 2.0 Security Profile (OpenID FAPI 2.0, final), as one deployment switch
(`PAYPLAT_FAPI`, CDK context `fapi`): with it on, the whole authorization server follows the
profile instead of leaving each rule to a client's registration.

- pushed authorization requests only (RFC 9126), PKCE S256 (always on), `iss` in every
  authorization response (RFC 9207, always on), codes of 60 s (always);
- client authentication by `private_key_jwt` only, signed ES256 or PS256 (no RS256);
- sender-constrained tokens only: DPoP-bound (RFC 9449) at the token endpoint, and the
  resource routes refuse any token that is not bound;
- the authorization code grant (and client credentials, bound too); no password grant, no
  implicit grant, `response_type=code` only.

The metadata says exactly this when the switch is on (see token_endpoint.metadata), and
docs/fapi.md maps each requirement of the profile to the code and the test that hold it.
"""

from __future__ import annotations

import base64
import binascii
import json

from payplat.clients.registry import (
    GRANT_IMPLICIT,
    LEGACY_GRANTS,
    PRIVATE_KEY_JWT,
    Client,
)
from payplat.config import OAuthSettings
from payplat.errors import InvalidClient, OAuthError
from payplat.oauth.client_auth import Authenticated, Presented

AUTH_METHODS = (PRIVATE_KEY_JWT,)
ASSERTION_ALGORITHMS = ("ES256", "PS256")  # FAPI 2.0 §5.4: PS256, ES256 (or EdDSA)
FORBIDDEN_GRANTS = frozenset(LEGACY_GRANTS) | {GRANT_IMPLICIT}


def par_required(settings: OAuthSettings, client: Client) -> bool:
    return settings.fapi or settings.require_par or client.require_pushed_authorization_requests


def dpop_required(settings: OAuthSettings, client: Client) -> bool:
    return settings.fapi or client.dpop_bound_access_tokens


def check_client_authentication(
    settings: OAuthSettings, credentials: Presented, authenticated: Authenticated
) -> None:
    """Under the profile, a client authenticates with a private_key_jwt assertion signed
    ES256 or PS256; anything else is invalid_client (RFC 6749 §5.2, 401)."""
    if not settings.fapi:
        return
    if authenticated.method != PRIVATE_KEY_JWT:
        raise InvalidClient("This server follows FAPI 2.0: authenticate with private_key_jwt.")
    if _algorithm(credentials.assertion or "") not in ASSERTION_ALGORITHMS:
        raise InvalidClient("FAPI 2.0: client assertions are signed ES256 or PS256.")


def check_grant(settings: OAuthSettings, grant_type: str) -> None:
    if settings.fapi and grant_type in FORBIDDEN_GRANTS:
        raise OAuthError("unauthorized_client", "FAPI 2.0: this grant type is not offered.")


def _algorithm(assertion: str) -> str:
    segment = assertion.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error):
        return ""
    return str(header.get("alg", "")) if isinstance(header, dict) else ""
