"""No secret ever leaves the request it came in or went out with: run every flow that
carries one, with real credentials, against the whole local platform, then read everything
the platform wrote — the functions' log (log, metric and audit lines), the platform's
console, and every record of the audit stream in Kinesis — and find none of them.

Secrets are client secrets (seeded, registered, rotated), registration access tokens,
access and refresh tokens, authorization codes, PKCE verifiers, passwords (right and
wrong), client assertions and the HTTP Basic credentials that carry a secret. A failure
names the kind of secret and where, with a count: never the secret."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import boto3
import pytest
import requests
from authlib.oauth2.rfc7523 import private_key_jwt_sign
from joserfc.jwk import ECKey

from payplat.audit.events import unpack
from tests.conftest import Platform
from tests.e2e.oauth_support import (
    LOCAL_CREDENTIALS,
    App,
    Browser,
    Holder,
    consent,
    introspect,
    new_holder,
    query_of,
)

pytestmark = pytest.mark.e2e

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DELIVERY_TIMEOUT_S = 20


@dataclass
class Secrets:
    """What the flows used or were given, by kind. Never printed."""

    found: list[tuple[str, str]] = field(default_factory=list)

    def add(self, kind: str, value: str | None) -> str:
        assert value, f"a {kind} was expected"  # the kind only
        self.found.append((kind, value))
        return value

    def forms(self) -> Iterator[tuple[str, str]]:
        """Each secret as written raw, form-encoded, percent-encoded and JSON-escaped (a log
        line may hold any of them)."""
        for kind, value in self.found:
            seen = set()
            for form, text in (
                ("raw", value),
                ("form-encoded", quote_plus(value)),
                ("percent-encoded", quote(value, safe="")),
                ("json-escaped", json.dumps(value)[1:-1]),
            ):
                if text not in seen:
                    seen.add(text)
                    yield f"{kind} ({form})", text


def ok(response: requests.Response, status: int = 200) -> dict[str, Any]:
    """The JSON body of an expected answer; a failure says the status and the OAuth or API
    error code, never the body (it may hold a token)."""
    body: dict[str, Any] = response.json() if response.content else {}
    error = body.get("error")
    code = error.get("code") if isinstance(error, dict) else error
    assert response.status_code == status, (response.status_code, code)
    return body


def basic(client_id: str, secret: str) -> str:
    return base64.b64encode(f"{quote(client_id)}:{quote(secret)}".encode()).decode()


class Flows:
    """The partner and account-holder journeys, collecting every secret on the way."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.url = platform.base_url
        self.secrets = Secrets()

    def client(self, label: str) -> tuple[str, str]:
        client = self.platform.clients[label]
        return client["client_id"], self.secrets.add(
            f"{label} client secret", client["client_secret"]
        )

    def token(self, form: dict[str, str], kind: str, **kwargs: Any) -> dict[str, Any]:
        body = ok(requests.post(f"{self.url}/oauth/token", data=form, timeout=10, **kwargs))
        self.secrets.add(f"{kind} access token", body["access_token"])
        # the signature alone would let no one in, but shows a token was written whole
        self.secrets.add(f"{kind} access token signature", body["access_token"].rsplit(".")[-1])
        if "refresh_token" in body:
            self.secrets.add(f"{kind} refresh token", body["refresh_token"])
        return body

    def basic_token(self, client_id: str, secret: str, kind: str, **form: str) -> dict[str, Any]:
        header = self.secrets.add(f"{kind} basic credentials", basic(client_id, secret))
        return self.token(
            {"grant_type": "client_credentials", **form},
            kind,
            headers={"Authorization": f"Basic {header}"},
        )

    def api(
        self, method: str, path: str, token: str, body: Any = None, status: int = 200
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        if method == "POST":
            headers["Idempotency-Key"] = f"no-secrets-{secrets.token_hex(6)}"
        response = requests.request(
            method, f"{self.url}{path}", json=body, headers=headers, timeout=10
        )
        return ok(response, status)

    def register(self, admin_token: str, **metadata: Any) -> dict[str, Any]:
        body = {
            "client_name": f"no-secrets {secrets.token_hex(3)}",
            "owner": self.platform.users["bob"]["user_id"],
            **metadata,
        }
        registered = ok(
            requests.post(
                f"{self.url}/oauth/register",
                json=body,
                headers={"Authorization": f"Bearer {admin_token}"},
                timeout=10,
            ),
            201,
        )
        self.secrets.add("registration access token", registered["registration_access_token"])
        if "client_secret" in registered:
            self.secrets.add("registered client secret", registered["client_secret"])
        return registered


def run_every_flow(platform: Platform) -> Secrets:
    flows = Flows(platform)
    client_credentials(flows)
    holder = authorization_code_and_refresh(flows)
    wrong_password(flows, holder)
    admin_id, admin_secret = flows.client("admin")
    admin = flows.basic_token(admin_id, admin_secret, "admin")["access_token"]
    registration_and_rotation(flows, admin)
    client_assertion(flows, admin)
    password_grant(flows, admin, holder)
    payment_capture_refund(flows, admin)
    return flows.secrets


def client_credentials(flows: Flows) -> None:
    """HTTP Basic (the merchant) and client_secret_post (the consumer), and an
    introspection with the merchant's secret."""
    merchant_id, merchant_secret = flows.client("merchant")
    merchant = flows.basic_token(merchant_id, merchant_secret, "merchant")["access_token"]
    consumer_id, consumer_secret = flows.client("consumer")
    form = {
        "grant_type": "client_credentials",
        "client_id": consumer_id,
        "client_secret": consumer_secret,
    }
    flows.token(form, "consumer")
    assert introspect(flows.platform, merchant, merchant_id, merchant_secret)["active"] is True


def authorization_code_and_refresh(flows: Flows) -> Holder:
    """An account holder signs in and consents; the app redeems the code with its PKCE
    verifier and its secret, refreshes, and revokes the refresh token."""
    add = flows.secrets.add
    app = App.seeded(flows.platform)
    add("app client secret", app.client_secret)
    add("PKCE code verifier", app.verifier)
    holder = new_holder(flows.platform)
    add("account holder password", holder.password)
    location = consent(flows.platform, app, holder)
    code = add("authorization code", query_of(location)["code"])
    credentials = add("app basic credentials", basic(app.client_id, app.client_secret))
    header = {"Authorization": f"Basic {credentials}"}
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": app.redirect_uri,
        "code_verifier": app.verifier,
    }
    redeemed = flows.token(form, "authorization code", headers=header)
    flows.api("GET", "/v1/accounts", redeemed["access_token"])
    form = {"grant_type": "refresh_token", "refresh_token": redeemed["refresh_token"]}
    refreshed = flows.token(form, "refreshed", headers=header)
    revoked = requests.post(
        f"{flows.url}/oauth/revoke",
        data={"token": refreshed["refresh_token"], "token_type_hint": "refresh_token"},
        headers=header,
        timeout=10,
    )
    ok(revoked)
    return holder


def wrong_password(flows: Flows, holder: Holder) -> None:
    """A sign-in with the wrong password (with characters that encode differently)."""
    app = App.seeded(flows.platform)
    flows.secrets.add("second PKCE code verifier", app.verifier)
    browser = Browser(flows.platform)
    assert browser.open(app.authorization_url()).status_code == 200
    wrong = flows.secrets.add("wrong password", f"Wr0ng pass+{secrets.token_hex(4)}/é%&=")
    page = browser.log_in(Holder(holder.username, wrong, holder.user_id))
    assert page.status_code == 200 and "wrong" in page.text


def registration_and_rotation(flows: Flows, admin: str) -> None:
    """Dynamic registration, a token, a rotated secret, a token with the new one, its
    introspection and revocation."""
    registered = flows.register(admin, grant_types=["client_credentials"], scope="payments:read")
    partner_id, old_secret = registered["client_id"], registered["client_secret"]
    flows.basic_token(partner_id, old_secret, "registered client")
    rotated = ok(
        requests.post(
            registered["registration_client_uri"] + "/secret",
            json={"overlap_seconds": 60},
            headers={"Authorization": f"Bearer {registered['registration_access_token']}"},
            timeout=10,
        )
    )
    new_secret = flows.secrets.add("rotated client secret", rotated["client_secret"])
    if rotated.get("registration_access_token"):
        flows.secrets.add("rotated registration token", rotated["registration_access_token"])
    partner = flows.basic_token(partner_id, new_secret, "rotated client")["access_token"]
    assert introspect(flows.platform, partner, partner_id, new_secret)["active"] is True
    revoke = f"{flows.url}/oauth/revoke"
    ok(requests.post(revoke, data={"token": partner}, auth=(partner_id, new_secret), timeout=10))
    assert introspect(flows.platform, partner, partner_id, new_secret) == {"active": False}


def client_assertion(flows: Flows, admin: str) -> None:
    """private_key_jwt: a signed client assertion instead of a secret."""
    key = ECKey.generate_key("P-256", private=True)
    flows.secrets.add("client private key", str(key.as_dict(private=True)["d"]))
    public = {**key.as_dict(private=False), "kid": "k1"}
    keyed = flows.register(
        admin,
        grant_types=["client_credentials"],
        token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [public]},
    )
    signed = private_key_jwt_sign(
        ECKey.import_key(key.as_dict(private=True), {"kid": "k1"}),
        client_id=keyed["client_id"],
        token_endpoint=flows.platform.base_url,
        alg="ES256",
        header={"kid": "k1"},
        expires_in=120,
    )
    assertion = signed.decode() if isinstance(signed, bytes) else str(signed)
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": flows.secrets.add("client assertion", assertion),
    }
    flows.token(form, "assertion")


def password_grant(flows: Flows, admin: str, holder: Holder) -> None:
    """The legacy password grant, for a client registered with it."""
    legacy = flows.register(admin, grant_types=["password", "refresh_token"], scope="accounts:read")
    flows.basic_token(
        legacy["client_id"],
        legacy["client_secret"],
        "password grant",
        grant_type="password",
        username=holder.username,
        password=holder.password,
    )


def payment_capture_refund(flows: Flows, admin: str) -> None:
    """A payment between two fresh account holders (no other test's balances or lists see
    it), each with a partner client registered to act for them: the payer's authorizes, the
    payee's captures part and refunds some."""
    payer, payee = new_holder(flows.platform), new_holder(flows.platform)
    tokens = []
    for holder in (payer, payee):
        client = flows.register(
            admin,
            grant_types=["client_credentials"],
            scope="payments:read payments:write refunds:write",
            owner=holder.user_id,
        )
        token = flows.basic_token(client["client_id"], client["client_secret"], "tenant")
        tokens.append(token["access_token"])
    body = {
        "source_account": payer.account_id,
        "destination_account": payee.account_id,
        "amount": 700,
        "currency": "EUR",
        "capture_method": "manual",
    }
    payment = flows.api("POST", "/v1/payments", tokens[0], body)
    path = f"/v1/payments/{payment['id']}"
    flows.api("POST", f"{path}/capture", tokens[1], {"amount": 500})
    flows.api("POST", f"{path}/refunds", tokens[1], {"amount": 200}, status=201)


# -- what the platform wrote ------------------------------------------------------------------


def audit_records(platform: Platform) -> list[str]:
    """Every record of the audit stream, each shard from its start."""
    local = json.loads((platform.state_dir / "local.json").read_text())
    stream = local.get("audit_stream", "payplat-audit")
    kinesis: Any = boto3.client(
        "kinesis",
        endpoint_url=platform.aws_endpoint_url,
        region_name=LOCAL_CREDENTIALS["region_name"],
        aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
    )
    shards: list[dict[str, Any]] = []
    request: dict[str, Any] = {"StreamName": stream}
    while True:
        page = kinesis.list_shards(**request)
        shards += page["Shards"]
        if not page.get("NextToken"):
            break
        request = {"NextToken": page["NextToken"]}
    records: list[str] = []
    for shard in shards:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            # Records are gzip subscription envelopes: scan what they carry, and the raw
            # bytes too (a secret outside any message would show there).
            for r in page["Records"]:
                records.append(r["Data"].decode("utf-8", errors="replace"))
                records += [line.decode("utf-8", errors="replace") for line in unpack(r["Data"])]
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return records


def logged_audit_lines(log: Path) -> int:
    return sum('"log_type":"AUDIT"' in line for line in log.read_text().splitlines())


def delivered(platform: Platform) -> list[str]:
    """The stream's records once every audit line logged so far has reached it (the local
    shipper sends in the background, as the subscription filter does)."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT_S
    while True:
        records = audit_records(platform)
        logged = logged_audit_lines(platform.state_dir / "functions.log")
        if len(records) >= logged or time.monotonic() > deadline:
            assert len(records) >= logged, ("audit records not delivered", len(records), logged)
            return records
        time.sleep(0.5)


def test_no_secret_reaches_a_log_a_metric_or_the_audit_stream(platform: Platform) -> None:
    # Given every flow that carries a secret, run with real credentials
    found = run_every_flow(platform)
    assert len({kind for kind, _ in found.found}) >= 20

    # When everything the platform wrote is read back
    records = delivered(platform)
    sources = {
        "functions.log": (platform.state_dir / "functions.log").read_text().splitlines(),
        "console.txt": (platform.state_dir / "console.txt").read_text().splitlines(),
        "audit stream": records,
    }
    texts = {name: "\n".join(lines) for name, lines in sources.items()}
    scanned = {name: len(lines) for name, lines in sources.items()}
    audit_logged = logged_audit_lines(platform.state_dir / "functions.log")
    # the report (run with -s): how much was read
    print(f"{len(found.found)} secrets, {audit_logged} audit lines logged; scanned {scanned}")
    assert scanned["functions.log"] > 0 and scanned["audit stream"] > 0
    # (the flows did reach the logs: the clients they used are named there)
    assert platform.clients["merchant"]["client_id"] in texts["functions.log"]

    # Then no secret appears anywhere, in any encoding: a hit says what and where, never it
    hits = [
        (kind, name, text.count(secret))
        for kind, secret in found.forms()
        for name, text in texts.items()
        if secret in text
    ]
    assert hits == []
