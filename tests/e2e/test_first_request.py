"""The first request path end to end, over real HTTP: a real OAuth client gets a token, a
real JWKS client verifies it, the local gateway runs the authorizer and the function, and the
audit records reach the Kinesis stream."""

from __future__ import annotations

import json
import os
import stat
import time
from typing import Any

import boto3
import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

from payplat.audit.events import unpack
from tests.conftest import Platform

pytestmark = pytest.mark.e2e


def session_for(platform: Platform, client: str, **kwargs: Any) -> OAuth2Session:
    credentials = platform.clients[client]
    session = OAuth2Session(credentials["client_id"], credentials["client_secret"], **kwargs)
    session.fetch_token(f"{platform.base_url}/oauth/token", grant_type="client_credentials")
    return session


def audit_records(platform: Platform) -> list[dict[str, Any]]:
    kinesis = boto3.client(
        "kinesis",
        endpoint_url=platform.aws_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    records: list[dict[str, Any]] = []
    for shard in kinesis.list_shards(StreamName="payplat-audit")["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName="payplat-audit",
            ShardId=shard["ShardId"],
            ShardIteratorType="TRIM_HORIZON",
        )["ShardIterator"]
        while iterator:
            batch = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            records += [json.loads(line) for r in batch["Records"] for line in unpack(r["Data"])]
            if not batch["Records"]:
                break
            iterator = batch.get("NextShardIterator")
    return records


def eventually(find: Any, timeout_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = find()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_health(platform: Platform) -> None:
    response = requests.get(f"{platform.base_url}/health", timeout=5)
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_local_json_is_private(platform: Platform) -> None:
    mode = stat.S_IMODE(os.stat(platform.state_dir / "local.json").st_mode)
    assert mode == 0o600
    assert set(platform.clients) >= {"admin", "merchant"}


def test_a_partner_gets_a_token_verifies_it_and_lists_payments(platform: Platform) -> None:
    # Given the metadata document, as a partner would discover it
    metadata = requests.get(
        f"{platform.base_url}/.well-known/oauth-authorization-server", timeout=5
    ).json()
    assert metadata["issuer"] == platform.base_url

    # When the merchant gets a token with Authlib (client_secret_basic)
    session = OAuth2Session(
        platform.clients["merchant"]["client_id"],
        platform.clients["merchant"]["client_secret"],
        token_endpoint_auth_method="client_secret_basic",
    )
    token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    access_token = token["access_token"]

    # Then PyJWKClient, fetching the served JWKS, verifies it as an RFC 9068 token
    signing_key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(access_token)
    claims = jwt.decode(
        access_token,
        signing_key.key,
        algorithms=["ES256"],
        audience=f"{platform.base_url}/v1",
        issuer=metadata["issuer"],
    )
    assert jwt.get_unverified_header(access_token)["typ"] == "at+jwt"
    assert claims["client_id"] == platform.clients["merchant"]["client_id"]

    # And the token opens GET /v1/payments
    response = session.get(f"{platform.base_url}/v1/payments", timeout=5)
    assert response.status_code == 200
    assert response.json() == {
        "object": "list",
        "url": "/v1/payments",
        "data": [],
        "has_more": False,
    }

    # And the issuance and the access decision reached the audit stream, with the jti only
    def decisions() -> list[dict[str, Any]]:
        return [
            r for r in audit_records(platform) if r.get("details", {}).get("jti") == claims["jti"]
        ]

    found = eventually(lambda: len(decisions()) >= 2 and decisions())
    assert {r["type"] for r in found} == {"token.issued", "access.allowed"}
    everything = json.dumps(audit_records(platform))
    assert access_token not in everything
    assert platform.clients["merchant"]["client_secret"] not in everything


def test_client_secret_post_works_with_a_real_client(platform: Platform) -> None:
    session = session_for(platform, "merchant", token_endpoint_auth_method="client_secret_post")
    assert session.get(f"{platform.base_url}/v1/payments", timeout=5).status_code == 200


def test_the_authorizer_policy_is_cached_per_token(platform: Platform) -> None:
    # Given one token used three times
    session = session_for(platform, "merchant")
    jti = jwt.decode(session.token["access_token"], options={"verify_signature": False})["jti"]
    for _ in range(3):
        assert session.get(f"{platform.base_url}/v1/payments", timeout=5).status_code == 200
    # Then the authorizer ran once: one decision record for that token
    time.sleep(0.5)
    allowed = [
        r
        for r in audit_records(platform)
        if r["type"] == "access.allowed" and r.get("details", {}).get("jti") == jti
    ]
    assert len(allowed) == 1


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-jwt", "Basic Zm9vOmJhcg==", "Bearer a.b.c"],
    ids=["missing", "empty-bearer", "garbage", "basic", "three-junk-segments"],
)
def test_no_valid_token_is_401_invalid_token(platform: Platform, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = requests.get(f"{platform.base_url}/v1/payments", headers=headers, timeout=5)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    error = response.json()["error"]
    assert error["type"] == "authentication_error"
    assert error["request_id"] == response.headers["x-amzn-RequestId"]


def test_a_tampered_token_is_401(platform: Platform) -> None:
    session = session_for(platform, "merchant")
    header, payload, signature = session.token["access_token"].split(".")
    forged = jwt.utils.base64url_decode(payload)
    forged_payload = jwt.utils.base64url_encode(forged.replace(b"merchant", b"nosy____")).decode()
    tampered = f"{header}.{forged_payload}.{signature[::-1]}"
    response = requests.get(
        f"{platform.base_url}/v1/payments",
        headers={"Authorization": f"Bearer {tampered}"},
        timeout=5,
    )
    assert response.status_code == 401


def test_a_token_without_the_scope_is_403_insufficient_scope(platform: Platform) -> None:
    # Given a token narrowed to accounts:read
    session = OAuth2Session(
        platform.clients["merchant"]["client_id"],
        platform.clients["merchant"]["client_secret"],
        scope="accounts:read",
    )
    session.fetch_token(f"{platform.base_url}/oauth/token", grant_type="client_credentials")
    # When it calls a payments:read route (twice: the second answer comes from the cache)
    for _ in range(2):
        response = session.get(f"{platform.base_url}/v1/payments", timeout=5)
        # Then it is refused with an RFC 6750 insufficient_scope challenge
        assert response.status_code == 403
        assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
        assert response.json()["error"]["code"] == "insufficient_scope"


def test_the_admin_client_cannot_read_payments(platform: Platform) -> None:
    session = session_for(platform, "admin")
    assert session.get(f"{platform.base_url}/v1/payments", timeout=5).status_code == 403


def test_bad_client_credentials_over_http(platform: Platform) -> None:
    response = requests.post(
        f"{platform.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(platform.clients["merchant"]["client_id"], "not-the-secret"),
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["Cache-Control"] == "no-store"


def test_an_unknown_url_is_404_in_the_error_format(platform: Platform) -> None:
    response = requests.get(f"{platform.base_url}/v2/nothing", timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"


def test_one_cached_policy_serves_every_route_its_scopes_allow_and_no_other(
    platform: Platform,
) -> None:
    # Given a token narrowed to payments:read
    session = OAuth2Session(
        platform.clients["merchant"]["client_id"],
        platform.clients["merchant"]["client_secret"],
        scope="payments:read",
    )
    session.fetch_token(f"{platform.base_url}/oauth/token", grant_type="client_credentials")
    jti = jwt.decode(session.token["access_token"], options={"verify_signature": False})["jti"]

    # When it calls both payments:read routes, then a route that needs accounts:read
    listed = session.get(f"{platform.base_url}/v1/payments", timeout=5)
    fetched = session.get(f"{platform.base_url}/v1/payments/pay_unknown", timeout=5)
    accounts = session.get(f"{platform.base_url}/v1/accounts", timeout=5)

    # Then the first policy served both payments routes (the second reached the function,
    # which does not know the payment), and denied the accounts route from the cache
    assert listed.status_code == 200
    assert (fetched.status_code, fetched.json()["error"]["code"]) == (404, "resource_missing")
    assert accounts.status_code == 403
    assert 'error="insufficient_scope"' in accounts.headers["WWW-Authenticate"]
    time.sleep(0.5)
    decisions = [r for r in audit_records(platform) if r.get("details", {}).get("jti") == jti]
    assert [r["type"] for r in decisions if r["type"].startswith("access.")] == [
        "access.allowed"
    ]  # the authorizer ran once, for the first call


def test_the_openapi_document_is_the_inventory_of_every_route(platform: Platform) -> None:
    from payplat.routes import ROUTES

    document = requests.get(f"{platform.base_url}/openapi.json", timeout=5).json()
    assert document["openapi"].startswith("3.1")
    served = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert served == {(route.method, route.path) for route in ROUTES}
    create = document["paths"]["/v1/payments"]["post"]
    assert create["security"] == [{"oauth2": ["payments:write"]}]
    assert any(p["name"] == "Idempotency-Key" and p["required"] for p in create["parameters"])
    schema = document["components"]["schemas"]["CreatePayment"]
    assert schema["additionalProperties"] is False  # no mass assignment
    docs = requests.get(f"{platform.base_url}/docs", timeout=5)
    assert docs.status_code == 200
    assert "openapi.json" in docs.text
