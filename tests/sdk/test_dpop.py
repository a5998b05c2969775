"""The SDK's DPoP (RFC 9449) against the real local platform: `dpop_key=` binds the client's
tokens to a key (client credentials, the code flow and its refreshes), every API request goes
as `Authorization: DPoP` with a new proof (retries included), ES256 and PS256 keys.

What the SDK sends is checked independently of it: proofs are verified and thumbprints
computed with joserfc. The nonce round trips (RFC 9449 §8-9) run against a small stub server
on 127.0.0.1, since the local platform does not ask for nonces by default."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry
from payplat_sdk import AuthenticationError, AuthorizationCodeFlow, OAuthError, Payplat, Tokens
from payplat_sdk.dpop import DpopKey, access_token_hash

from tests.conftest import Platform
from tests.e2e.oauth_support import CALLBACK, Browser, Holder, new_holder, register
from tests.sdk.support import Exchange, Partner, Recorder, new_partner, recorded_session

pytestmark = pytest.mark.e2e


# -- independent checks (joserfc) -----------------------------------------------------------


def claims_of(token: str) -> dict[str, Any]:
    """A JWT's payload, unverified."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


def joserfc_thumbprint(public_jwk: dict[str, str]) -> str:
    key = (
        ECKey.import_key(public_jwk) if public_jwk["kty"] == "EC" else RSAKey.import_key(public_jwk)
    )
    return str(key.thumbprint())


# A PS256 proof's header holds a 2048-bit modulus: more than joserfc's default 512 bytes.
PROOFS = JWSRegistry(algorithms=["ES256", "PS256"])
PROOFS.max_header_length = 2048


def verified_proof(proof: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a DPoP proof, its signature checked with the key in its header."""
    header = json.loads(base64.urlsafe_b64decode(proof.split(".", maxsplit=1)[0] + "=" * 4))
    assert header["typ"] == "dpop+jwt"
    jwk = header["jwk"]
    assert "d" not in jwk and "p" not in jwk, "a proof carries the public key only"
    key = ECKey.import_key(jwk) if jwk["kty"] == "EC" else RSAKey.import_key(jwk)
    token = jwt.decode(proof, key, algorithms=[header["alg"]], registry=PROOFS)
    return dict(token.header), dict(token.claims)


def proofs_of(exchanges: list[Exchange]) -> list[dict[str, Any]]:
    return [verified_proof(e.headers["DPoP"])[1] for e in exchanges]


def bound_to(access_token: str, key: DpopKey) -> bool:
    return claims_of(access_token).get("cnf") == {"jkt": joserfc_thumbprint(key.public_jwk)}


@pytest.fixture(scope="module")
def payee(platform: Platform) -> Partner:
    return new_partner(platform, balance=0)


@pytest.fixture
def payer(platform: Platform) -> Partner:
    return new_partner(platform)


# -- client credentials -----------------------------------------------------------------------


def test_a_dpop_client_gets_a_bound_token_lists_accounts_and_pays(
    platform: Platform, payer: Partner, payee: Partner
) -> None:
    wire = Recorder()
    with payer.client(dpop_key=True, session=recorded_session(wire)) as client:
        assert [a.id for a in client.accounts.list()] == [payer.account]
        payment = client.payments.create(
            source_account=payer.account,
            destination_account=payee.account,
            amount=2_000,
            currency="EUR",
        )
        assert payment.amount == 2_000 and payment.status == "succeeded"

        # The token is DPoP, bound to the client's own P-256 key (cnf.jkt, RFC 7638)
        key = client.dpop_key
        assert key is not None and key.alg == "ES256"
        assert client.tokens is not None and client.tokens.token_type == "DPoP"
        access_token = client.tokens.access_token
        assert bound_to(access_token, key)

    # The token request carried a proof for the token endpoint from the metadata
    [token_call] = wire.calls("POST", "/oauth/token")
    metadata = client.oauth_metadata
    assert metadata["dpop_signing_alg_values_supported"] == ["ES256", "PS256"]
    [token_proof] = proofs_of([token_call])
    assert (token_proof["htm"], token_proof["htu"]) == ("POST", metadata["token_endpoint"])
    assert "ath" not in token_proof
    # Each API request went as DPoP with a proof of its own method and URL and the token hash
    for method, path in (("GET", "/v1/accounts"), ("POST", "/v1/payments")):
        [call] = wire.calls(method, path)
        assert call.headers["Authorization"] == f"DPoP {access_token}"
        [proof] = proofs_of([call])
        assert (proof["htm"], proof["htu"]) == (method, platform.base_url + path)
        assert proof["ath"] == access_token_hash(access_token)
        assert abs(proof["iat"] - time.time()) < 60


def test_several_requests_in_a_row_each_carry_a_fresh_proof(payer: Partner) -> None:
    wire = Recorder()
    client = payer.client(dpop_key=True, session=recorded_session(wire))
    for _ in range(4):
        assert [a.id for a in client.accounts.list()] == [payer.account]
    assert client.accounts.retrieve(payer.account).id == payer.account

    calls = wire.calls("GET", "/v1/accounts") + wire.calls("GET", f"/v1/accounts/{payer.account}")
    assert [call.status for call in calls] == [200] * 5
    jtis = [proof["jti"] for proof in proofs_of(calls)]
    assert len(set(jtis)) == len(jtis) == 5
    assert len(wire.calls("POST", "/oauth/token")) == 1  # one token, many proofs


def test_a_ps256_client_with_an_rsa_key_works(payer: Partner) -> None:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    wire = Recorder()
    client = payer.client(dpop_key=private_key, session=recorded_session(wire))
    assert [a.id for a in client.accounts.list()] == [payer.account]

    key = client.dpop_key
    assert key is not None and key.alg == "PS256"
    assert client.tokens is not None and bound_to(client.tokens.access_token, key)
    header, _ = verified_proof(wire.calls("GET", "/v1/accounts")[0].headers["DPoP"])
    assert header["alg"] == "PS256"


def test_a_retried_request_is_sent_with_a_new_proof(payer: Partner, payee: Partner) -> None:
    # Given the answer to the first POST /v1/payments is lost after the server handled it
    wire = Recorder(lose_first=("POST", "/v1/payments"))
    client = payer.client(dpop_key=True, session=recorded_session(wire))

    payment = client.payments.create(
        source_account=payer.account,
        destination_account=payee.account,
        amount=1_111,
        currency="EUR",
    )

    # Then the retry went with the same Idempotency-Key but a new proof, and was served
    first, second = wire.calls("POST", "/v1/payments")
    assert (first.status, second.status) == (None, 200)
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert first.headers["DPoP"] != second.headers["DPoP"]
    assert proofs_of([first])[0]["jti"] != proofs_of([second])[0]["jti"]
    assert payment.last_response is not None and payment.last_response.idempotent_replayed
    assert len(wire.calls("POST", "/oauth/token")) == 1  # no 401, no new token


def test_a_bound_token_is_useless_without_its_key(platform: Platform, payer: Partner) -> None:
    client = payer.client(dpop_key=True)
    client.accounts.list()
    assert client.tokens is not None
    stolen = client.tokens.access_token

    # Sent as a bearer token (by a client without the key), the API refuses it
    thief = Payplat(platform.base_url, payer.client_id, token=stolen)
    with pytest.raises(AuthenticationError) as refused:
        thief.accounts.list()
    assert refused.value.status == 401
    # With another key's proof too
    other = Payplat(platform.base_url, payer.client_id, token=stolen, dpop_key=True)
    with pytest.raises(AuthenticationError) as wrong_key:
        other.accounts.list()
    assert wrong_key.value.code == "invalid_dpop_proof"
    assert 'error="invalid_dpop_proof"' in wrong_key.value.headers["WWW-Authenticate"]

    # No token, proof or key in what a caller could print or log
    key = client.dpop_key
    assert key is not None
    for text in (repr(client), repr(key), repr(client.tokens), str(wrong_key.value)):
        assert stolen not in text and "PRIVATE" not in text
    assert repr(key) == f"DpopKey(alg='ES256', thumbprint={key.thumbprint!r})"
    assert repr(wrong_key.value).count(stolen) == 0


def test_bearer_clients_are_unchanged(payer: Partner) -> None:
    wire = Recorder()
    client = payer.client(session=recorded_session(wire))
    client.accounts.list()
    assert client.dpop_key is None
    assert client.tokens is not None and client.tokens.token_type == "Bearer"
    [call] = wire.calls("GET", "/v1/accounts")
    assert call.headers["Authorization"].startswith("Bearer ")
    assert "DPoP" not in call.headers
    assert "DPoP" not in wire.calls("POST", "/oauth/token")[0].headers


# -- the authorization-code flow --------------------------------------------------------------

SCOPE = "accounts:read payments:read"


def approve(platform: Platform, url: str, holder: Holder) -> str:
    browser = Browser(platform)
    assert browser.open(url).status_code == 200
    assert browser.log_in(holder).status_code == 200
    pressed = browser.press("approve")
    assert pressed.status_code == 302, pressed.text
    location: str = pressed.headers["Location"]
    return location


def test_the_code_flow_with_a_dpop_key_gives_bound_tokens_that_refresh(
    platform: Platform,
) -> None:
    app = register(
        platform,
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=[CALLBACK],
        scope=SCOPE,
    )
    saved: list[Tokens] = []
    flow = AuthorizationCodeFlow(
        platform.base_url,
        app["client_id"],
        app["client_secret"],
        on_tokens=saved.append,
        dpop_key=True,
    )
    key = flow.dpop_key
    assert key is not None
    holder = new_holder(platform)

    # The code is redeemed with a proof: the tokens are bound to the flow's key
    url, state, verifier = flow.authorization_url(CALLBACK, SCOPE)
    tokens = flow.exchange(
        flow.parse_redirect(approve(platform, url, holder), state), CALLBACK, verifier
    )
    assert tokens.token_type == "DPoP" and tokens.is_dpop
    assert bound_to(tokens.access_token, key)
    assert tokens.refresh_token

    # Its client proves possession of the same key
    client = flow.client(tokens)
    assert client.dpop_key is key
    assert [a.id for a in client.accounts.list()] == [holder.account_id]

    # The refresh token is bound too: a flow without the key cannot redeem it
    keyless = AuthorizationCodeFlow(platform.base_url, app["client_id"], app["client_secret"])
    with pytest.raises(OAuthError) as refused:
        keyless.refresh(tokens)
    assert (refused.value.status, refused.value.error) == (400, "invalid_dpop_proof")
    # ... and the flow with it can, again bound to the key
    refreshed = flow.refresh(tokens)
    assert refreshed.token_type == "DPoP" and bound_to(refreshed.access_token, key)
    assert refreshed.refresh_token not in (None, tokens.refresh_token)
    assert [a.id for a in flow.client(refreshed).accounts.list()] == [holder.account_id]

    # A client rebuilt from persisted tokens needs the key, and refreshes with a proof
    with pytest.raises(ValueError, match="dpop_key"):
        Payplat.from_tokens(platform.base_url, app["client_id"], tokens=refreshed.to_dict())
    rotated: list[Tokens] = []
    rebuilt = Payplat.from_tokens(
        platform.base_url,
        app["client_id"],
        app["client_secret"],
        tokens={**refreshed.to_dict(), "expires_at": time.time() + 5},  # about to expire
        on_tokens=rotated.append,
        dpop_key=key,
    )
    assert [a.id for a in rebuilt.accounts.list()] == [holder.account_id]
    [renewed] = rotated
    assert renewed.refresh_token != refreshed.refresh_token
    assert bound_to(renewed.access_token, key)


# -- nonces (RFC 9449 §8-9), against a stub server --------------------------------------------


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    status: int


@dataclass
class NonceServer:
    """A token endpoint and an API that ask for a nonce the first time, as a deployment that
    requires nonces does: 400 `use_dpop_nonce` at the token endpoint, 401 with a `DPoP`
    challenge at the API, each with a `DPoP-Nonce` of its own. The API then answers one 429
    (so the SDK retries once more) before serving."""

    base_url: str = ""
    token_nonce: str = "as-nonce-1"
    api_nonce: str = "rs-nonce-1"
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    def answer(
        self, method: str, path: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            index = len(self.calls(path))
            status, extra, body = self._route(method, path, headers, index)
            self.seen.append(Seen(path, headers, status))
        return status, extra, body

    def _route(
        self, method: str, path: str, headers: dict[str, str], index: int
    ) -> tuple[int, dict[str, str], Any]:
        if path == "/.well-known/oauth-authorization-server":
            metadata = {
                "issuer": self.base_url,
                "token_endpoint": self.base_url + "/oauth/token",
                "dpop_signing_alg_values_supported": ["ES256", "PS256"],
            }
            return 200, {}, metadata
        proof = headers.get("DPoP")
        if proof is None:
            return 400, {}, {"error": "invalid_dpop_proof"}
        _, claims = verified_proof(proof)
        if (method, path) == ("POST", "/oauth/token"):
            return self._token(claims)
        if (method, path) == ("GET", "/v1/accounts"):
            return self._accounts(claims, index)
        return 404, {}, {"error": {"code": "not_found"}}

    def _token(self, claims: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        if claims.get("nonce") != self.token_nonce:
            return 400, {"DPoP-Nonce": self.token_nonce}, {"error": "use_dpop_nonce"}
        payload = base64.urlsafe_b64encode(b'{"sub":"stub"}').decode().rstrip("=")
        issued = {"access_token": f"h.{payload}.s", "token_type": "DPoP", "expires_in": 300}
        return 200, {"DPoP-Nonce": self.token_nonce}, issued

    def _accounts(self, claims: dict[str, Any], index: int) -> tuple[int, dict[str, str], Any]:
        if claims.get("nonce") != self.api_nonce:
            challenge = 'DPoP error="use_dpop_nonce", algs="ES256 PS256"'
            headers = {"DPoP-Nonce": self.api_nonce, "WWW-Authenticate": challenge}
            return 401, headers, {"error": {"code": "use_dpop_nonce", "message": "Use it."}}
        if index == 1:
            return 429, {"Retry-After": "0"}, {"error": {"code": "rate_limited"}}
        return 200, {}, {"object": "list", "url": "/v1/accounts", "data": [], "has_more": False}


@pytest.fixture
def nonce_server() -> Iterator[NonceServer]:
    stub = NonceServer()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            path = self.path.split("?")[0]
            status, extra, body = stub.answer(self.command, path, dict(self.headers.items()))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    stub.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()


def test_a_nonce_asked_for_is_used_in_the_retry_and_remembered(nonce_server: NonceServer) -> None:
    client = Payplat(nonce_server.base_url, "stub-client", "stub-secret", dpop_key=True)
    client._transport.sleep = lambda _seconds: None  # the 429's backoff
    key = client.dpop_key
    assert key is not None

    assert client.accounts.list().data == []

    # The token endpoint: refused with use_dpop_nonce, retried once with its nonce
    first, retried = nonce_server.calls("/oauth/token")
    assert (first.status, retried.status) == (400, 200)
    asked, answered = proofs_of_seen([first, retried])
    assert "nonce" not in asked
    assert answered["nonce"] == "as-nonce-1"
    assert answered["jti"] != asked["jti"]
    # The API: 401 use_dpop_nonce, retried with the API's nonce (not the token endpoint's),
    # then a 429 retried with yet another proof, which still carries the nonce
    calls = nonce_server.calls("/v1/accounts")
    assert [c.status for c in calls] == [401, 429, 200]
    proofs = proofs_of_seen(calls)
    assert "nonce" not in proofs[0]
    assert [p.get("nonce") for p in proofs[1:]] == ["rs-nonce-1", "rs-nonce-1"]
    assert len({p["jti"] for p in proofs}) == 3
    assert all(p["ath"] == access_token_hash(calls[0].headers["Authorization"][5:]) for p in proofs)

    # Later proofs carry the remembered nonce from the start: no more round trips
    assert client.accounts.list().data == []
    assert [c.status for c in nonce_server.calls("/v1/accounts")][3:] == [200]
    assert proofs_of_seen(nonce_server.calls("/v1/accounts")[3:])[0]["nonce"] == "rs-nonce-1"
    # ... and so does the next token request made with the same key
    again = Payplat(nonce_server.base_url, "stub-client", "stub-secret", dpop_key=key)
    again.accounts.list()
    assert [c.status for c in nonce_server.calls("/oauth/token")] == [400, 200, 200]
    assert proofs_of_seen(nonce_server.calls("/oauth/token")[2:])[0]["nonce"] == "as-nonce-1"


def test_a_nonce_is_retried_only_once(nonce_server: NonceServer) -> None:
    nonce_server.token_nonce = "never-matches"
    client = Payplat(nonce_server.base_url, "stub-client", "stub-secret", dpop_key=True)
    original = nonce_server._route

    def always_new_nonce(
        method: str, path: str, headers: dict[str, str], index: int
    ) -> tuple[int, dict[str, str], Any]:
        nonce_server.token_nonce = f"nonce-{index}"  # the retry's nonce is already stale
        return original(method, path, headers, index + 1000)

    nonce_server._route = always_new_nonce  # type: ignore[method-assign]
    with pytest.raises(OAuthError) as refused:
        client.accounts.list()
    assert refused.value.error == "use_dpop_nonce"
    assert [c.status for c in nonce_server.calls("/oauth/token")] == [400, 400]


def proofs_of_seen(calls: list[Seen]) -> list[dict[str, Any]]:
    return [verified_proof(call.headers["DPoP"])[1] for call in calls]
