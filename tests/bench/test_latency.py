"""Benchmarks (`make bench`): figures printed, never asserted against a time.

- token verification in the authorizer's domain code (what a warm authorizer spends per call);
- over HTTP through the local platform: POST /oauth/token, and GET /v1/payments with a cached
  and an uncached authorizer policy. Local figures include moto and the Python HTTP server;
  they compare changes, they are not AWS latencies.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import requests
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from payplat.gateway.verify import TokenVerifier
from payplat.oauth.access_tokens import issue_access_token
from payplat.oauth.jwk import public_jwk
from tests.conftest import CONFIG_CACHE_TTL_S, Platform, payplat_cli

ROUNDS = 300


def report(name: str, run: Callable[[], object], rounds: int = ROUNDS) -> None:
    run()  # warm
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(f"\n{name:<46} n={rounds:<5} p50={p50:7.3f} ms  p99={p99:7.3f} ms")


class LocalSigner:
    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        der = self._key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        self.kid = public_jwk(der)["kid"]

    def sign_der(self, message: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes

        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))


def test_bench_token_verification() -> None:
    signer = LocalSigner()
    token = issue_access_token(
        signer,
        issuer="https://issuer",
        audience="https://issuer/v1",
        subject="c",
        client_id="c",
        scope="payments:read",
        ttl_s=600,
    ).token
    from payplat.gateway.keyset import StaticKeySet

    verifier = TokenVerifier(
        StaticKeySet({signer.kid: signer._key.public_key()}),
        issuer="https://issuer",
        audience="https://issuer/v1",
    )
    report("authorizer: verify one ES256 access token", lambda: verifier.verify(token), 2000)


def test_bench_http(platform: Platform) -> None:
    merchant = platform.clients["merchant"]
    # Measure the platform, not its limits: lift them for this client and the token endpoint.
    for plan in ("bench", "token-ip", "token-client"):
        payplat_cli(platform, "plans", "set", plan, "--rate", "100000", "--burst", "100000")
    payplat_cli(platform, "clients", "set-plan", merchant["client_id"], "bench")
    time.sleep(CONFIG_CACHE_TTL_S + 0.2)
    http = requests.Session()
    credentials = (merchant["client_id"], merchant["client_secret"])

    def token() -> str:
        response = http.post(
            f"{platform.base_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=credentials,
            timeout=10,
        )
        assert response.status_code == 200, response.text
        access_token: str = response.json()["access_token"]
        return access_token

    report("local: POST /oauth/token (KMS sign via moto)", token)
    cached = {"Authorization": f"Bearer {token()}"}
    report(
        "local: GET /v1/payments, cached policy",
        lambda: http.get(f"{platform.base_url}/v1/payments", headers=cached, timeout=10),
    )
    fresh = [token() for _ in range(ROUNDS + 1)]
    report(
        "local: GET /v1/payments, authorizer runs",
        lambda: http.get(
            f"{platform.base_url}/v1/payments",
            headers={"Authorization": f"Bearer {fresh.pop()}"},
            timeout=10,
        ),
    )
