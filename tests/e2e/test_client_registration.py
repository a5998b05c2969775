"""Partner onboarding without a human, over real HTTP: dynamic registration (RFC 7591) with
the admin's initial access token, managing the registration (RFC 7592), rolling a secret with
overlap, private_key_jwt (RFC 7523), introspection and revocation (RFC 7662, RFC 7009), the
legacy grants for clients registered with them — and the refusals."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from joserfc.jwk import ECKey

from tests.conftest import Platform, payplat_cli
from tests.e2e.oauth_support import (
    CALLBACK,
    App,
    Browser,
    admin_token,
    api_get,
    audit_lines,
    client_token,
    consent,
    fragment_of,
    introspect,
    new_holder,
    register,
)

pytestmark = pytest.mark.e2e


def manage(
    platform: Platform, method: str, registered: dict[str, Any], path: str = "", **kwargs: Any
) -> requests.Response:
    return requests.request(
        method,
        registered["registration_client_uri"] + path,
        headers={"Authorization": f"Bearer {registered['registration_access_token']}"},
        timeout=10,
        **kwargs,
    )


def test_register_then_token_then_api_call(platform: Platform) -> None:
    # Given bob's platform account and the admin's initial access token
    registered = register(
        platform,
        client_name="Bob's new till",
        grant_types=["client_credentials"],
        scope="payments:read accounts:read",
        plan="sandbox",
    )
    # Then the answer is RFC 7591's: id, secret once, registration token and URI, metadata
    assert registered["client_id"].startswith("ppc_")
    assert len(registered["client_secret"]) >= 43  # 256 bits
    assert registered["client_secret_expires_at"] == 0
    assert registered["registration_client_uri"].endswith(registered["client_id"])
    assert registered["token_endpoint_auth_method"] == "client_secret_basic"
    assert registered["plan"] == "sandbox" and registered["owner"] == "usr_bob"

    # When the new client gets a token and calls the API
    session = OAuth2Session(registered["client_id"], registered["client_secret"])
    session.fetch_token(f"{platform.base_url}/oauth/token", grant_type="client_credentials")
    accounts = session.get(f"{platform.base_url}/v1/accounts")

    # Then it acts for its owner, on its plan
    assert accounts.status_code == 200
    assert {a["id"] for a in accounts.json()["data"]} == {"acct_bob_eur", "acct_bob_usd"}
    assert '"sandbox"' in accounts.headers["RateLimit-Policy"]
    assert audit_lines(
        platform,
        lambda r: (
            r["type"] == "client.registered"
            and r["details"]["registered_client_id"] == registered["client_id"]
        ),
    )


def test_registration_needs_the_initial_access_token(platform: Platform) -> None:
    body = {"client_name": "x", "owner": "usr_bob", "grant_types": ["client_credentials"]}
    anonymous = requests.post(f"{platform.base_url}/oauth/register", json=body, timeout=10)
    assert anonymous.status_code == 401
    merchant = platform.clients["merchant"]
    token = client_token(platform, merchant["client_id"], merchant["client_secret"])
    not_admin = requests.post(
        f"{platform.base_url}/oauth/register",
        json=body,
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=10,
    )
    assert not_admin.status_code == 403


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        (
            {"grant_types": ["authorization_code"], "redirect_uris": ["http://shop.example/cb"]},
            "invalid_redirect_uri",
        ),
        (
            {"grant_types": ["authorization_code"], "redirect_uris": ["https://x.example/#frag"]},
            "invalid_redirect_uri",
        ),
        ({"grant_types": ["authorization_code"]}, "invalid_redirect_uri"),
        (
            {"grant_types": ["client_credentials"], "scope": "clients:manage"},
            "invalid_client_metadata",
        ),
        (
            {"grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]},
            "invalid_client_metadata",
        ),
        ({"grant_types": ["client_credentials"], "owner": "usr_nobody"}, "invalid_client_metadata"),
        ({"grant_types": ["client_credentials"], "plan": "token-ip"}, "invalid_client_metadata"),
        (
            {
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt",
            },
            "invalid_client_metadata",
        ),
    ],
    ids=[
        "http-redirect",
        "fragment",
        "no-redirect",
        "admin-scope",
        "unknown-grant",
        "unknown-owner",
        "internal-plan",
        "pkjwt-without-keys",
    ],
)
def test_bad_metadata_is_refused_per_rfc7591(
    platform: Platform, metadata: dict[str, Any], error: str
) -> None:
    response = requests.post(
        f"{platform.base_url}/oauth/register",
        json={"client_name": "bad", "owner": "usr_bob", **metadata},
        headers={"Authorization": f"Bearer {admin_token(platform)}"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.headers["Cache-Control"] == "no-store"


def test_rfc7592_read_update_delete(platform: Platform) -> None:
    registered = register(
        platform,
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=["https://shop.example/callback"],
        scope="accounts:read payments:read",
    )
    # Read: the registration, never the secret
    read = manage(platform, "GET", registered)
    assert read.status_code == 200
    assert read.json()["redirect_uris"] == ["https://shop.example/callback"]
    assert "client_secret" not in read.json()

    # Update: new redirect URIs and a narrower scope are fine...
    update = {
        "client_id": registered["client_id"],
        "client_name": "Renamed",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["https://shop.example/v2/callback"],
        "scope": "accounts:read",
    }
    updated = manage(platform, "PUT", registered, json=update)
    assert updated.status_code == 200, updated.text
    assert updated.json()["client_name"] == "Renamed"
    assert updated.json()["scope"] == "accounts:read"
    # ...a wider scope or another plan is not
    wider = manage(platform, "PUT", registered, json={**update, "scope": "refunds:write"})
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_client_metadata"
    plan = manage(platform, "PUT", registered, json={**update, "plan": "premium"})
    assert plan.status_code == 400

    # A wrong registration token is 401 with an RFC 6750 challenge
    forged = requests.get(
        registered["registration_client_uri"],
        headers={"Authorization": "Bearer not-the-token"},
        timeout=10,
    )
    assert forged.status_code == 401
    assert 'error="invalid_token"' in forged.headers["WWW-Authenticate"]

    # Delete: 204, then the registration is gone for good
    assert manage(platform, "DELETE", registered).status_code == 204
    assert manage(platform, "GET", registered).status_code == 401
    gone = client_token(platform, registered["client_id"], registered["client_secret"])
    assert gone.status_code == 401


def test_secret_rotation_keeps_the_old_secret_working_until_the_overlap_ends(
    platform: Platform,
) -> None:
    registered = register(platform, grant_types=["client_credentials"])
    old = registered["client_secret"]

    # When the partner rotates with a short overlap
    rotated = manage(platform, "POST", registered, "/secret", json={"overlap_seconds": 3})
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["client_secret"]
    assert new != old
    assert rotated.json()["previous_secret_expires_at"] > time.time()

    # Then both secrets work during the overlap (the fleet rolls without downtime)
    assert client_token(platform, registered["client_id"], new).status_code == 200
    assert client_token(platform, registered["client_id"], old).status_code == 200

    # And the old one stops when it ends
    time.sleep(3.5)
    assert client_token(platform, registered["client_id"], old).status_code == 401
    assert client_token(platform, registered["client_id"], new).status_code == 200
    assert audit_lines(
        platform,
        lambda r: (
            r["type"] == "client.secret_rotated"
            and r["resource"] == f"client/{registered['client_id']}"
        ),
    )


def _ec_key() -> ECKey:
    return ECKey.generate_key("P-256", private=True)


ASSERTION_LIFETIME_S = 120  # we refuse assertions living longer than 5 minutes


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """authlib's private_key_jwt, with assertions that expire in two minutes (its default is
    an hour, which payplat refuses: a captured assertion must not stay useful that long)."""

    def sign(self, auth: Any, token_endpoint: str) -> Any:
        return private_key_jwt_sign(
            auth.client_secret,
            client_id=auth.client_id,
            token_endpoint=token_endpoint,
            alg=self.alg,
            header=self.headers,
            expires_in=ASSERTION_LIFETIME_S,
        )


def test_private_key_jwt_with_a_real_client_and_replay_refused(platform: Platform) -> None:
    # Given a client registered with its public key only
    key = _ec_key()
    public = key.as_dict(private=False)
    public["kid"] = "k1"
    registered = register(
        platform,
        grant_types=["client_credentials"],
        token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [public]},
    )
    assert "client_secret" not in registered
    key = ECKey.import_key(key.as_dict(private=True), {"kid": "k1"})

    # When authlib authenticates with a signed assertion whose aud is our issuer
    session = OAuth2Session(
        registered["client_id"], key, token_endpoint_auth_method="private_key_jwt"
    )
    session.register_client_auth_method(
        ShortLivedPrivateKeyJWT(platform.base_url, alg="ES256", headers={"kid": "k1"})
    )
    token = session.fetch_token(f"{platform.base_url}/oauth/token", grant_type="client_credentials")

    # Then it gets a token that works
    assert api_get(platform, "/v1/payments", token["access_token"]).status_code == 200

    # And the same assertion a second time is refused (jti seen)
    assertion = private_key_jwt_sign(
        key,
        client_id=registered["client_id"],
        token_endpoint=platform.base_url,
        alg="ES256",
        header={"kid": "k1"},
        expires_in=ASSERTION_LIFETIME_S,
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    first = requests.post(f"{platform.base_url}/oauth/token", data=form, timeout=10)
    replay = requests.post(f"{platform.base_url}/oauth/token", data=form, timeout=10)
    assert first.status_code == 200
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"

    # And an assertion for another audience (the token endpoint URL) is refused too
    wrong_aud = private_key_jwt_sign(
        key,
        client_id=registered["client_id"],
        token_endpoint=f"{platform.base_url}/oauth/token",
        alg="ES256",
        header={"kid": "k1"},
        expires_in=ASSERTION_LIFETIME_S,
    )
    refused = requests.post(
        f"{platform.base_url}/oauth/token", data={**form, "client_assertion": wrong_aud}, timeout=10
    )
    assert refused.status_code == 401
    # And so is one that lives an hour (authlib's default)
    long_lived = private_key_jwt_sign(
        key,
        client_id=registered["client_id"],
        token_endpoint=platform.base_url,
        alg="ES256",
        header={"kid": "k1"},
    )
    refused = requests.post(
        f"{platform.base_url}/oauth/token",
        data={**form, "client_assertion": long_lived},
        timeout=10,
    )
    assert refused.status_code == 401


def test_wrong_secret_is_invalid_client_with_a_challenge(platform: Platform) -> None:
    merchant = platform.clients["merchant"]
    response = client_token(platform, merchant["client_id"], "wrong-secret")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.headers["Cache-Control"] == "no-store"


def test_an_unsupported_grant_type(platform: Platform) -> None:
    merchant = platform.clients["merchant"]
    response = client_token(
        platform,
        merchant["client_id"],
        merchant["client_secret"],
        grant_type="urn:ietf:params:oauth:grant-type:device_code",
    )
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"


def test_scope_escalation_is_invalid_scope(platform: Platform) -> None:
    merchant = platform.clients["merchant"]
    response = client_token(
        platform, merchant["client_id"], merchant["client_secret"], scope="clients:manage"
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


def test_a_disabled_client_gets_no_token_and_its_tokens_stop(platform: Platform) -> None:
    registered = register(platform, grant_types=["client_credentials"])
    token = client_token(platform, registered["client_id"], registered["client_secret"])
    access = token.json()["access_token"]
    assert api_get(platform, "/v1/payments", access).status_code == 200

    payplat_cli(platform, "clients", "disable", registered["client_id"])

    refused = client_token(platform, registered["client_id"], registered["client_secret"])
    assert refused.status_code == 401
    assert api_get(platform, "/v1/payments", access).status_code == 401
    admin = platform.clients["admin"]
    assert introspect(platform, access, admin["client_id"], admin["client_secret"]) == {
        "active": False
    }


def test_introspection_and_revocation(platform: Platform) -> None:
    registered = register(platform, grant_types=["client_credentials"], scope="payments:read")
    cid, secret = registered["client_id"], registered["client_secret"]
    access = client_token(platform, cid, secret).json()["access_token"]

    # Active: the full claim set
    info = introspect(platform, access, cid, secret)
    assert info["active"] is True
    assert info["client_id"] == cid and info["sub"] == cid and info["scope"] == "payments:read"
    assert {"exp", "iat", "iss", "aud", "jti", "token_type"} <= info.keys()

    # Another partner sees nothing of it
    merchant = platform.clients["merchant"]
    assert introspect(platform, access, merchant["client_id"], merchant["client_secret"]) == {
        "active": False
    }
    # Garbage and foreign tokens are inactive, never an error
    for token in ("garbage", access[:-4] + "AAAA", "a.b.c"):
        assert introspect(platform, token, cid, secret) == {"active": False}

    # Revocation: 200, the token is inactive and refused by the API
    revoked = requests.post(
        f"{platform.base_url}/oauth/revoke", data={"token": access}, auth=(cid, secret), timeout=10
    )
    assert revoked.status_code == 200
    assert introspect(platform, access, cid, secret) == {"active": False}
    assert api_get(platform, "/v1/payments", access).status_code == 401
    # Unknown tokens: still 200 (RFC 7009 §2.2)
    unknown = requests.post(
        f"{platform.base_url}/oauth/revoke", data={"token": "nope"}, auth=(cid, secret), timeout=10
    )
    assert unknown.status_code == 200
    # And without client authentication: 401
    anonymous = requests.post(
        f"{platform.base_url}/oauth/revoke", data={"token": access}, timeout=10
    )
    assert anonymous.status_code == 401


def test_revoking_a_refresh_token_ends_its_family(platform: Platform) -> None:
    app = App.seeded(platform)
    token = app.exchange(consent(platform, app))
    revoked = requests.post(
        f"{platform.base_url}/oauth/revoke",
        data={"token": token["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(app.client_id, app.client_secret),
        timeout=10,
    )
    assert revoked.status_code == 200
    refresh = app.token_request(grant_type="refresh_token", refresh_token=token["refresh_token"])
    assert refresh.json()["error"] == "invalid_grant"
    assert api_get(platform, "/v1/accounts", token["access_token"]).status_code == 401


# -- the legacy grants: only for clients registered with them ---------------------------------


def test_the_password_grant_only_when_registered_and_audited(platform: Platform) -> None:
    holder = new_holder(platform)
    form = {"grant_type": "password", "username": holder.username, "password": holder.password}
    merchant = platform.clients["merchant"]
    refused = client_token(platform, merchant["client_id"], merchant["client_secret"], **form)
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"

    legacy = register(platform, grant_types=["password", "refresh_token"], scope="accounts:read")
    response = client_token(platform, legacy["client_id"], legacy["client_secret"], **form)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["refresh_token"]
    accounts = api_get(platform, "/v1/accounts", body["access_token"]).json()["data"]
    assert [a["id"] for a in accounts] == [holder.account_id]
    issued = audit_lines(
        platform,
        lambda r: (
            r["type"] == "token.issued" and r["actor"].get("client_id") == legacy["client_id"]
        ),
    )
    assert issued[-1]["details"]["legacy_grant"] is True
    assert holder.password not in str(issued)


def test_the_implicit_grant_only_when_registered(platform: Platform) -> None:
    implicit = register(
        platform, grant_types=["implicit"], redirect_uris=[CALLBACK], scope="accounts:read"
    )
    url = (
        f"{platform.base_url}/oauth/authorize?response_type=token&client_id="
        f"{implicit['client_id']}&redirect_uri={CALLBACK}&state=st1&scope=accounts:read"
    )
    browser = Browser(platform)
    assert browser.open(url).status_code == 200
    browser.log_in(new_holder(platform))
    approved = browser.press("approve")
    assert approved.status_code == 302
    fragment = fragment_of(approved.headers["Location"])
    assert fragment["state"] == "st1" and fragment["token_type"] == "Bearer"
    assert "refresh_token" not in fragment
    assert api_get(platform, "/v1/accounts", fragment["access_token"]).status_code == 200

    # The seeded app (code flow only) may not ask for a token in the fragment
    app = App.seeded(platform)
    refused = requests.get(
        app.authorization_url().replace("response_type=code", "response_type=token"),
        allow_redirects=False,
        timeout=10,
    )
    assert refused.status_code == 302
    assert "error=unauthorized_client" in refused.headers["Location"]
