"""The FAPI 2.0 Security Profile switch (`PAYPLAT_FAPI=true make run`) over HTTP: a platform
of its own, started with the switch on. The metadata says what is enforced, and each rule
holds: private_key_jwt (ES256/PS256) only, DPoP-bound tokens only, pushed authorization
requests only, no password grant. A whole code flow passes as a FAPI client makes it.

Client assertions and DPoP proofs are made with joserfc, not with payplat's code."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import ECKey

from tests.conftest import Platform, payplat_cli, running_platform
from tests.e2e.oauth_support import CALLBACK, Browser, new_holder, query_of
from tests.e2e.test_dpop import DpopKey, claims_of

pytestmark = pytest.mark.e2e

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(scope="module")
def fapi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory.mktemp("payplat-fapi"), PAYPLAT_FAPI="true") as on:
        yield on


class FapiClient:
    """A client registered by the operator (the registration API's initial access token is
    itself a FAPI client's token) with an EC key for private_key_jwt."""

    def __init__(self, platform: Platform, tmp: Path, *grants: str) -> None:
        self.platform = platform
        self.key = ECKey.generate_key("P-256")
        jwks = tmp / f"jwks-{uuid.uuid4().hex[:6]}.json"
        jwks.write_text(json.dumps({"keys": [self.key.as_dict(private=False)]}))
        args = [
            "--json", "clients", "create", "--name", "fapi e2e",
            "--owner", platform.users["bob"]["user_id"],
            "--scope", "accounts:read payments:read",
            "--auth-method", "private_key_jwt", "--jwks", str(jwks),
        ]  # fmt: skip
        for grant in grants:
            args += ["--grant-type", grant]
        if "authorization_code" in grants:
            args += ["--redirect-uri", CALLBACK]
        self.client_id = json.loads(payplat_cli(platform, *args))["client_id"]
        self.dpop = DpopKey()

    def assertion(self) -> dict[str, str]:
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.platform.base_url,
            "jti": str(uuid.uuid4()),
            "iat": now,
            "exp": now + 120,
        }
        signed = jwt.encode({"alg": "ES256"}, claims, self.key)
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": str(signed)}

    def post(self, path: str, form: dict[str, str], *, proof: bool = True) -> requests.Response:
        url = f"{self.platform.base_url}{path}"
        headers = {"DPoP": self.dpop.proof("POST", url)} if proof else {}
        return requests.post(url, data={**form, **self.assertion()}, headers=headers, timeout=10)


def test_the_metadata_says_what_the_profile_enforces(fapi: Platform) -> None:
    metadata = requests.get(
        f"{fapi.base_url}/.well-known/oauth-authorization-server", timeout=10
    ).json()
    assert metadata["require_pushed_authorization_requests"] is True
    assert metadata["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert metadata["token_endpoint_auth_signing_alg_values_supported"] == ["ES256", "PS256"]
    assert metadata["response_types_supported"] == ["code"]
    assert "password" not in metadata["grant_types_supported"]
    assert "implicit" not in metadata["grant_types_supported"]
    assert metadata["dpop_bound_access_tokens_required"] is True
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_response_iss_parameter_supported"] is True


def test_a_client_secret_is_refused(fapi: Platform) -> None:
    merchant = fapi.clients["merchant"]
    response = requests.post(
        f"{fapi.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(merchant["client_id"], merchant["client_secret"]),
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_only_dpop_bound_tokens_are_issued_and_they_work(fapi: Platform, tmp_path: Path) -> None:
    client = FapiClient(fapi, tmp_path, "client_credentials")
    form = {"grant_type": "client_credentials"}
    refused = client.post("/oauth/token", form, proof=False)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_dpop_proof"
    issued = client.post("/oauth/token", form)
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    assert issued.json()["token_type"] == "DPoP"
    assert claims_of(token)["cnf"] == {"jkt": client.dpop.jkt}
    url = f"{fapi.base_url}/v1/accounts"
    answer = requests.get(
        url,
        headers={"Authorization": f"DPoP {token}", "DPoP": client.dpop.proof("GET", url, token)},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def test_the_password_grant_is_not_offered(fapi: Platform, tmp_path: Path) -> None:
    client = FapiClient(fapi, tmp_path, "password")
    holder = new_holder(fapi)
    response = client.post(
        "/oauth/token",
        {"grant_type": "password", "username": holder.username, "password": holder.password},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_a_code_flow_as_a_fapi_client_makes_it(fapi: Platform, tmp_path: Path) -> None:
    client = FapiClient(fapi, tmp_path, "authorization_code", "refresh_token")
    verifier = uuid.uuid4().hex + uuid.uuid4().hex
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    request: dict[str, Any] = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": CALLBACK,
        "scope": "accounts:read",
        "state": uuid.uuid4().hex,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    # In the browser's URL, the request is refused on the page: it must be pushed.
    browser = Browser(fapi)
    page = browser.open(f"{fapi.base_url}/oauth/authorize?{urlencode(request)}")
    assert page.status_code == 400
    assert "push" in page.text
    pushed = client.post("/oauth/par", request, proof=False)
    assert pushed.status_code == 201, pushed.text
    request_uri = pushed.json()["request_uri"]
    browser = Browser(fapi)
    pushed_query = urlencode({"client_id": client.client_id, "request_uri": request_uri})
    page = browser.open(f"{fapi.base_url}/oauth/authorize?{pushed_query}")
    assert page.status_code == 200, page.text
    assert browser.log_in(new_holder(fapi)).status_code == 200
    approved = browser.press("approve")
    assert approved.status_code == 302, approved.text
    answer = query_of(approved.headers["Location"])
    assert answer["iss"] == fapi.base_url and answer["state"] == request["state"]
    tokens = client.post(
        "/oauth/token",
        {
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
    )
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["token_type"] == "DPoP"
    renewed = client.post(
        "/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": tokens.json()["refresh_token"]},
    )
    assert renewed.status_code == 200, renewed.text
