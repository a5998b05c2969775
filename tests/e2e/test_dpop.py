"""DPoP (RFC 9449) over HTTP against the local platform: tokens bound to a key at the token
endpoint, every resource request proving it holds that key, each proof used once.

The proofs are made with joserfc here, not with payplat's own code, so these tests check the
server against an independent JOSE implementation."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from tests.conftest import Platform, running_platform
from tests.e2e.oauth_support import App, audit_lines, consent, introspect, query_of, register

pytestmark = pytest.mark.e2e


class DpopKey:
    """A client's DPoP key pair and the proofs it signs (RFC 9449 §4.2)."""

    def __init__(self, key: ECKey | RSAKey | None = None, alg: str = "ES256") -> None:
        self.key = key or ECKey.generate_key("P-256")
        self.alg = alg

    @property
    def jkt(self) -> str:
        return str(self.key.thumbprint())

    def proof(self, method: str, url: str, token: str | None = None, **claims: Any) -> str:
        payload: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
            **claims,
        }
        if token is not None:
            payload["ath"] = _b64url(hashlib.sha256(token.encode()).digest())
        header = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.key.as_dict(private=False)}
        return str(jwt.encode(header, payload, self.key, algorithms=[self.alg]))


def post(url: str, **kwargs: Any) -> requests.Response:
    return requests.post(url, timeout=10, **kwargs)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


@pytest.fixture(scope="module")
def partner(platform: Platform) -> dict[str, str]:
    registered = register(
        platform, scope="accounts:read payments:read", grant_types=["client_credentials"]
    )
    return {"client_id": registered["client_id"], "client_secret": registered["client_secret"]}


def bound_token(
    platform: Platform, partner: dict[str, str], key: DpopKey, **form: str
) -> requests.Response:
    url = f"{platform.base_url}/oauth/token"
    return post(
        url,
        data={"grant_type": "client_credentials", **form},
        auth=(partner["client_id"], partner["client_secret"]),
        headers={"DPoP": key.proof("POST", url)},
    )


def get(platform: Platform, path: str, authorization: str, proof: str | None) -> requests.Response:
    headers = {"Authorization": authorization}
    if proof is not None:
        headers["DPoP"] = proof
    return requests.get(f"{platform.base_url}{path}", headers=headers, timeout=10)


def refused_proof(response: requests.Response) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("DPoP ") and 'error="invalid_dpop_proof"' in challenge
    assert "ES256" in challenge
    assert response.json()["error"]["code"] == "invalid_dpop_proof"


# -- the token endpoint ----------------------------------------------------------------------


def test_a_proof_at_the_token_endpoint_binds_the_token_to_its_key(
    platform: Platform, partner: dict[str, str]
) -> None:
    key = DpopKey()
    response = bound_token(platform, partner, key)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    assert claims_of(body["access_token"])["cnf"] == {"jkt": key.jkt}


def test_introspection_says_the_token_is_bound(platform: Platform, partner: dict[str, str]) -> None:
    key = DpopKey()
    token = bound_token(platform, partner, key).json()["access_token"]
    body = introspect(platform, token, partner["client_id"], partner["client_secret"])
    assert body["active"] is True
    assert body["token_type"] == "DPoP" and body["cnf"] == {"jkt": key.jkt}


def test_a_ps256_proof_binds_too(platform: Platform, partner: dict[str, str]) -> None:
    key = DpopKey(RSAKey.generate_key(2048), alg="PS256")
    response = bound_token(platform, partner, key)
    assert response.status_code == 200, response.text
    assert claims_of(response.json()["access_token"])["cnf"] == {"jkt": key.jkt}


def test_the_metadata_says_which_proof_algorithms_are_accepted(platform: Platform) -> None:
    metadata = requests.get(
        f"{platform.base_url}/.well-known/oauth-authorization-server", timeout=10
    ).json()
    assert metadata["dpop_signing_alg_values_supported"] == ["ES256", "PS256"]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"htu": "https://elsewhere.example/oauth/token"}, "another URL"),
        ({"htm": "GET"}, "another method"),
        ({"iat": int(time.time()) - 3600}, "an hour old"),
    ],
)
def test_a_wrong_proof_at_the_token_endpoint_is_invalid_dpop_proof(
    platform: Platform, partner: dict[str, str], change: dict[str, Any], why: str
) -> None:
    key = DpopKey()
    url = f"{platform.base_url}/oauth/token"
    claims = {"htm": "POST", "htu": url, **change}
    proof = key.proof(claims.pop("htm"), claims.pop("htu"), **claims)
    response = post(
        url,
        data={"grant_type": "client_credentials"},
        auth=(partner["client_id"], partner["client_secret"]),
        headers={"DPoP": proof},
    )
    assert response.status_code == 400, why
    assert response.json()["error"] == "invalid_dpop_proof", why


def test_a_token_request_proof_works_once(platform: Platform, partner: dict[str, str]) -> None:
    key = DpopKey()
    url = f"{platform.base_url}/oauth/token"
    proof = key.proof("POST", url)
    answers = [
        post(
            url,
            data={"grant_type": "client_credentials"},
            auth=(partner["client_id"], partner["client_secret"]),
            headers={"DPoP": proof},
        )
        for _ in range(2)
    ]
    assert answers[0].status_code == 200, answers[0].text
    assert answers[1].status_code == 400
    assert answers[1].json()["error"] == "invalid_dpop_proof"


def test_a_client_registered_for_bound_tokens_gets_no_bearer_token(platform: Platform) -> None:
    registered = register(
        platform,
        scope="accounts:read",
        grant_types=["client_credentials"],
        dpop_bound_access_tokens=True,
    )
    assert registered["dpop_bound_access_tokens"] is True
    partner = {"client_id": registered["client_id"], "client_secret": registered["client_secret"]}
    refused = post(
        f"{platform.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(partner["client_id"], partner["client_secret"]),
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_dpop_proof"
    issued = bound_token(platform, partner, DpopKey())
    assert issued.status_code == 200 and issued.json()["token_type"] == "DPoP"
    # The registration cannot be loosened by its own management token (RFC 7592).
    loosened = requests.put(
        registered["registration_client_uri"],
        json={
            "client_id": registered["client_id"],
            "client_name": registered["client_name"],
            "grant_types": ["client_credentials"],
            "scope": "accounts:read",
            "dpop_bound_access_tokens": False,
        },
        headers={"Authorization": f"Bearer {registered['registration_access_token']}"},
        timeout=10,
    )
    assert loosened.status_code == 400, loosened.text
    assert "never off" in loosened.json()["error_description"]


# -- resource routes -------------------------------------------------------------------------


def test_a_bound_token_with_a_fresh_proof_each_time_is_served(
    platform: Platform, partner: dict[str, str]
) -> None:
    key = DpopKey()
    token = bound_token(platform, partner, key).json()["access_token"]
    url = f"{platform.base_url}/v1/accounts"
    for _ in range(3):
        response = get(platform, "/v1/accounts", f"DPoP {token}", key.proof("GET", url, token))
        assert response.status_code == 200, response.text


def test_a_replayed_proof_is_refused_and_audited(
    platform: Platform, partner: dict[str, str]
) -> None:
    key = DpopKey()
    token = bound_token(platform, partner, key).json()["access_token"]
    proof = key.proof("GET", f"{platform.base_url}/v1/accounts", token)
    first = get(platform, "/v1/accounts", f"DPoP {token}", proof)
    assert first.status_code == 200, first.text
    refused_proof(get(platform, "/v1/accounts", f"DPoP {token}", proof))
    denied = audit_lines(
        platform,
        lambda r: (
            r.get("type") == "access.denied"
            and r.get("reason") == "dpop_replayed"
            and (r.get("actor") or {}).get("client_id") == partner["client_id"]
        ),
    )
    assert denied, "the replay is audited as access.denied"


def test_a_bound_token_sent_as_bearer_is_refused(
    platform: Platform, partner: dict[str, str]
) -> None:
    key = DpopKey()
    token = bound_token(platform, partner, key).json()["access_token"]
    proof = key.proof("GET", f"{platform.base_url}/v1/accounts", token)
    response = get(platform, "/v1/accounts", f"Bearer {token}", proof)
    assert response.status_code == 401
    assert token not in response.text


@pytest.mark.parametrize(
    "wrong",
    ["method", "url", "token hash", "key", "missing", "stale"],
)
def test_a_proof_that_does_not_match_the_request_is_refused(
    platform: Platform, partner: dict[str, str], wrong: str
) -> None:
    key = DpopKey()
    token = bound_token(platform, partner, key).json()["access_token"]
    url = f"{platform.base_url}/v1/accounts"
    proofs: dict[str, str | None] = {
        "method": key.proof("POST", url, token),
        "url": key.proof("GET", f"{platform.base_url}/v1/payments", token),
        "token hash": key.proof("GET", url, "another.token.value"),
        "key": DpopKey().proof("GET", url, token),
        "missing": None,
        "stale": key.proof("GET", url, token, iat=int(time.time()) - 600),
    }
    refused_proof(get(platform, "/v1/accounts", f"DPoP {token}", proofs[wrong]))


def test_bearer_tokens_keep_working_without_a_proof(
    platform: Platform, partner: dict[str, str]
) -> None:
    response = post(
        f"{platform.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(partner["client_id"], partner["client_secret"]),
    )
    body = response.json()
    assert body["token_type"] == "Bearer" and "cnf" not in claims_of(body["access_token"])
    answer = get(platform, "/v1/accounts", f"Bearer {body['access_token']}", None)
    assert answer.status_code == 200, answer.text
    # An unbound token cannot pose as a DPoP one.
    key = DpopKey()
    proof = key.proof("GET", f"{platform.base_url}/v1/accounts", body["access_token"])
    assert get(platform, "/v1/accounts", f"DPoP {body['access_token']}", proof).status_code == 401


# -- a holder's grant: the refresh token is bound too ----------------------------------------


def test_the_refresh_token_of_a_bound_grant_needs_the_same_key(platform: Platform) -> None:
    app = App.seeded(platform)
    code = query_of(consent(platform, app))["code"]
    key = DpopKey()
    url = f"{platform.base_url}/oauth/token"

    def token_request(form: dict[str, str], proof: str | None) -> requests.Response:
        headers = {"DPoP": proof} if proof else {}
        return post(url, data=form, auth=(app.client_id, app.client_secret), headers=headers)

    first = token_request(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": app.redirect_uri,
            "code_verifier": app.verifier,
        },
        key.proof("POST", url),
    )
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert tokens["token_type"] == "DPoP" and "refresh_token" in tokens
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    for proof in (None, DpopKey().proof("POST", url)):  # no proof; another key's
        refused = token_request(refresh, proof)
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_dpop_proof"
    renewed = token_request(refresh, key.proof("POST", url))
    assert renewed.status_code == 200, renewed.text
    assert claims_of(renewed.json()["access_token"])["cnf"] == {"jkt": key.jkt}


# -- nonces (RFC 9449 §8-9), on a deployment that requires them ------------------------------


@pytest.fixture(scope="module")
def nonce_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(
        tmp_path_factory.mktemp("payplat-nonce"), PAYPLAT_DPOP_NONCE="true"
    ) as started:
        yield started


def test_where_nonces_are_required_a_proof_without_one_gets_the_nonce_to_use(
    nonce_platform: Platform,
) -> None:
    platform = nonce_platform
    partner = platform.clients["merchant"]
    key = DpopKey()
    url = f"{platform.base_url}/oauth/token"

    def token_request(proof: str) -> requests.Response:
        return post(
            url,
            data={"grant_type": "client_credentials"},
            auth=(partner["client_id"], partner["client_secret"]),
            headers={"DPoP": proof},
        )

    asked = token_request(key.proof("POST", url))
    assert asked.status_code == 400
    assert asked.json()["error"] == "use_dpop_nonce"
    nonce = asked.headers["DPoP-Nonce"]
    assert token_request(key.proof("POST", url, nonce="made-up")).status_code == 400
    issued = token_request(key.proof("POST", url, nonce=nonce))
    assert issued.status_code == 200, issued.text
    assert issued.headers["DPoP-Nonce"] == nonce  # still this window's
    token = issued.json()["access_token"]

    api = f"{platform.base_url}/v1/accounts"
    refused = get(platform, "/v1/accounts", f"DPoP {token}", key.proof("GET", api, token))
    assert refused.status_code == 401
    assert 'error="use_dpop_nonce"' in refused.headers["WWW-Authenticate"]
    resource_nonce = refused.headers["DPoP-Nonce"]
    served = get(
        platform,
        "/v1/accounts",
        f"DPoP {token}",
        key.proof("GET", api, token, nonce=resource_nonce),
    )
    assert served.status_code == 200, served.text
    assert served.headers["DPoP-Nonce"] == resource_nonce
    # Bearer tokens are not affected by the DPoP setting.
    bearer = post(
        url,
        data={"grant_type": "client_credentials"},
        auth=(partner["client_id"], partner["client_secret"]),
    ).json()["access_token"]
    assert get(platform, "/v1/accounts", f"Bearer {bearer}", None).status_code == 200
