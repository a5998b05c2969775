"""`payplat keys rotate` on the running platform: the JWKS publishes both keys, new tokens
are signed by the new one, and tokens signed by the old one keep working until it retires —
at the API (the authorizer fetches the new key when it meets its kid) and at introspection."""

from __future__ import annotations

import json
import time

import jwt
import pytest
import requests

from tests.conftest import Platform, payplat_cli
from tests.e2e.oauth_support import api_get, client_token, introspect

pytestmark = pytest.mark.e2e


def _jwks_kids(platform: Platform) -> set[str]:
    keys = requests.get(f"{platform.base_url}/.well-known/jwks.json", timeout=10).json()["keys"]
    return {key["kid"] for key in keys}


def _merchant_token(platform: Platform) -> str:
    merchant = platform.clients["merchant"]
    response = client_token(platform, merchant["client_id"], merchant["client_secret"])
    assert response.status_code == 200
    token: str = response.json()["access_token"]
    return token


def test_rotation_publishes_first_then_signs_and_old_tokens_keep_working(
    platform: Platform,
) -> None:
    # Given a token signed by the key in force now
    old_token = _merchant_token(platform)
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    assert api_get(platform, "/v1/payments", old_token).status_code == 200

    # When the operator rotates, signing with the new key at once
    output = json.loads(payplat_cli(platform, "keys", "rotate", "--publish-lead", "0s", "--json"))
    new_kid = output["kid"]
    assert new_kid != old_kid

    # Then (within the functions' 1 s config cache) the JWKS has both keys...
    deadline = time.monotonic() + 10
    while _jwks_kids(platform) != {old_kid, new_kid} and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _jwks_kids(platform) >= {old_kid, new_kid}

    # ...new tokens carry the new kid and work at the API
    new_token = _merchant_token(platform)
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    time.sleep(1.1)  # the authorizer refetches an unknown kid at most once a second here
    assert api_get(platform, "/v1/payments", new_token).status_code == 200

    # And the old token still works until the old key retires
    assert api_get(platform, "/v1/payments", old_token).status_code == 200
    merchant = platform.clients["merchant"]
    assert introspect(platform, old_token, merchant["client_id"], merchant["client_secret"])[
        "active"
    ]

    # And the operator sees the keys' states
    keys = json.loads(payplat_cli(platform, "keys", "list", "--json"))
    states = {key["kid"]: key["state"] for key in keys}
    assert states[new_kid] == "signing" and states[old_kid] == "retiring"
    [retiring] = [key for key in keys if key["kid"] == old_kid]
    assert retiring["retires_at"] is not None
