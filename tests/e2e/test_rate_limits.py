"""Rate limits, quotas and revocation against the moto server the local platform runs: the
limiter's exactness under concurrency (one client hammered from many threads, one limiter per
thread as if each were a Lambda container), quota windows, and — over HTTP — the headers, a
plan change without restart, and revocation beating the authorizer's cached Allow."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import jwt
import pytest
import requests

from payplat.audit import events as audit
from payplat.clients.dal.clients_table import DynamoClientStore
from payplat.clients.registry import CachedClients, register_client
from payplat.config import Env
from payplat.errors import AuthenticationFailed
from payplat.gateway.access import Gate
from payplat.gateway.dal.rate_limit_table import DynamoBucketStore
from payplat.gateway.enforce import LimiterDown
from payplat.gateway.limiter import Charge, ProofReplayed, ProofUse, RateLimiter
from payplat.gateway.plans import CachedPlans, Limits
from payplat.routes import ROUTES_BY_NAME, Function, Route
from tests.conftest import CONFIG_CACHE_TTL_S, AuditCapture, Platform, payplat_cli

pytestmark = pytest.mark.e2e

THREADS = 16


@dataclass(frozen=True)
class Aws:
    session: boto3.Session
    endpoint_url: str
    tables: dict[str, str]

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    def resource(self, service: str) -> Any:
        return self.session.resource(service, endpoint_url=self.endpoint_url)


@pytest.fixture(scope="module")
def aws(platform: Platform) -> Aws:
    import json

    local = json.loads((platform.state_dir / "local.json").read_text())
    session = boto3.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
    )
    return Aws(session, platform.aws_endpoint_url, local["tables"])


def buckets(aws: Aws) -> DynamoBucketStore:
    return DynamoBucketStore(aws.tables[Env.RATE_LIMITS_TABLE], client=aws.client("dynamodb"))


class FrozenClock:
    """One instant shared by every limiter, moved only by the test: the limiter's arithmetic
    is then exact whatever the machine's speed (a whole second plus halves is exact in
    binary, so no microsecond is lost to rounding)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


def from_threads(
    limiters: list[RateLimiter], limits: Limits, subject: str, done: Callable[[int], bool]
) -> tuple[int, int]:
    """Every limiter (one per 'container', each on its own thread, released together)
    charges one client until `done(refusals in a row)`. Returns (admitted, refused)."""
    admitted = refused = 0
    lock = threading.Lock()
    ready = threading.Barrier(len(limiters))

    def worker(limiter: RateLimiter) -> None:
        nonlocal admitted, refused
        ready.wait()
        in_a_row = 0
        while not done(in_a_row):
            decision = limiter.check([limiter.charge("hammer", subject, limits)])
            in_a_row = 0 if decision.admitted else in_a_row + 1
            with lock:
                admitted += decision.admitted
                refused += not decision.admitted

    threads = [threading.Thread(target=worker, args=(limiter,)) for limiter in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return admitted, refused


def drain(
    limiters: list[RateLimiter], fresh: RateLimiter, limits: Limits, subject: str
) -> tuple[int, int]:
    """The limiters charge until each has been refused three times in a row; then `fresh`
    (nothing cached) takes whatever room is left, so a request given up under contention
    cannot hide capacity."""
    admitted, refused = from_threads(limiters, limits, subject, lambda in_a_row: in_a_row >= 3)
    while fresh.check([fresh.charge("hammer", subject, limits)]).admitted:
        admitted += 1
    return admitted, refused


@pytest.mark.parametrize(
    "limits",
    [
        Limits("one-bucket", rate_per_s=40, burst=20),
        Limits("hot-sharded", rate_per_s=60, burst=30, shards=3),
    ],
    ids=lambda limits: limits.name,
)
def test_concurrent_requests_get_exactly_what_the_plan_allows(aws: Aws, limits: Limits) -> None:
    # Given 16 containers charging one client, all at one instant
    clock = FrozenClock()
    limiters = [RateLimiter(buckets(aws), clock=clock) for _ in range(THREADS)]
    subject = f"client-{limits.name}-{uuid.uuid4().hex[:8]}"

    # Then the burst is admitted, not one request more or less, and the rest refused
    admitted, refused = drain(limiters, RateLimiter(buckets(aws), clock=clock), limits, subject)
    assert (admitted, refused >= 3 * THREADS) == (limits.burst, True)

    # And each half second later exactly what the rate refills
    for _ in range(3):
        clock.now += 0.5
        fresh = RateLimiter(buckets(aws), clock=clock)
        admitted, refused = drain(limiters, fresh, limits, subject)
        assert (admitted, refused >= 3 * THREADS) == (int(limits.rate_per_s * 0.5), True)


def test_the_daily_quota_boundary_and_the_next_days_window(aws: Aws) -> None:
    clock = [datetime(2026, 11, 29, 23, 59, 58, tzinfo=UTC).timestamp()]
    limiter = RateLimiter(buckets(aws), clock=lambda: clock[0])
    limits = Limits("tiny-daily", rate_per_s=100, burst=100, daily_quota=3)
    charge = Charge("BUCKET#quota#client-q#0", limits)

    assert [limiter.check([charge]).admitted for _ in range(3)] == [True, True, True]
    crossing = limiter.check([charge])
    assert not crossing.admitted
    assert crossing.refusal is not None
    assert (crossing.refusal.limit, crossing.refusal.retry_after_s) == ("daily_quota", 2)

    clock[0] += 3  # 00:00:01 the next day
    assert limiter.check([charge]).admitted


def test_reads_fail_open_and_writes_fail_closed_when_the_table_is_gone(
    aws: Aws, audit_lines: AuditCapture
) -> None:
    # Given a gate whose bucket table does not exist (DynamoDB unreachable, as far as it knows)
    broken = DynamoBucketStore("no-such-table", client=aws.client("dynamodb"))
    clients = DynamoClientStore(aws.tables[Env.CLIENTS_TABLE], resource=aws.resource("dynamodb"))
    client, _ = register_client(clients, name="fail-mode", scopes={"payments:read"}, owner="o")
    gate = Gate(CachedClients(clients), CachedPlans(buckets(aws), 30), RateLimiter(broken))
    context = {"client_id": client.client_id, "scope": "payments:read", "jti": "j", "iat": 1}
    origin = audit.Origin(source_ip="198.51.100.1")

    # Then a read is served, without limit headers
    _, headers = gate.admit(ROUTES_BY_NAME["list_payments"], context, origin)
    assert headers == {}
    # And a route that moves money is refused with a 503 and Retry-After
    write_route = Route("create", "POST", "/v1/payments", Function.PAYMENTS, "payments:read")
    with pytest.raises(LimiterDown) as refused:
        gate.admit(write_route, context, origin)
    assert refused.value.status == 503
    assert refused.value.headers["Retry-After"] == "1"
    # And both were audited
    modes = [event["reason"] for event in audit_lines.of_type("ratelimit.unavailable")]
    assert modes == ["fail_open", "fail_closed"]


# --- over HTTP ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Partner:
    client_id: str
    client_secret: str


@pytest.fixture
def partner(aws: Aws) -> Partner:
    """A client of its own, so changing its plan or revoking its tokens touches no other test."""
    clients = DynamoClientStore(aws.tables[Env.CLIENTS_TABLE], resource=aws.resource("dynamodb"))
    client, secret = register_client(
        clients, name="rate-limit test", scopes={"payments:read"}, owner="merchant_rl"
    )
    return Partner(client.client_id, secret)


def token_for(platform: Platform, partner: Partner) -> str:
    response = requests.post(
        f"{platform.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(partner.client_id, partner.client_secret),
        timeout=5,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def call(platform: Platform, token: str) -> requests.Response:
    return requests.get(
        f"{platform.base_url}/v1/payments",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )


@pytest.fixture
def small_plan(platform: Platform) -> str:
    plan = ("e2e-small", "--rate", "1", "--burst", "3", "--daily", "50")
    payplat_cli(platform, "plans", "set", *plan)
    return plan[0]


def test_every_response_says_where_the_client_stands_and_429_says_when_to_retry(
    platform: Platform, partner: Partner, small_plan: str
) -> None:
    payplat_cli(platform, "clients", "set-plan", partner.client_id, small_plan)
    token = token_for(platform, partner)
    responses = [call(platform, token) for _ in range(4)]

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    policy = '"e2e-small";q=3;w=3, "e2e-small-daily";q=50;w=86400'
    assert all(r.headers["RateLimit-Policy"] == policy for r in responses)
    assert (
        responses[0].headers["RateLimit"].startswith('"e2e-small";r=2;t=1, "e2e-small-daily";r=49;')
    )
    assert responses[2].headers["RateLimit"].startswith('"e2e-small";r=0;t=3')
    limited = responses[3]
    assert int(limited.headers["Retry-After"]) >= 1
    error = limited.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limited")

    # And after waiting as told, the client is admitted again
    time.sleep(int(limited.headers["Retry-After"]))
    assert call(platform, token).status_code == 200


def test_a_plan_change_applies_without_a_restart(
    platform: Platform, partner: Partner, small_plan: str
) -> None:
    token = token_for(platform, partner)
    assert call(platform, token).headers["RateLimit-Policy"].startswith('"standard";q=50')

    payplat_cli(platform, "clients", "set-plan", partner.client_id, small_plan)
    time.sleep(CONFIG_CACHE_TTL_S + 0.2)
    assert call(platform, token).headers["RateLimit-Policy"].startswith('"e2e-small";q=3')


def test_a_revoked_token_is_refused_at_once_despite_the_cached_allow(
    platform: Platform, partner: Partner
) -> None:
    # Given a token whose Allow the gateway has cached
    token = token_for(platform, partner)
    assert call(platform, token).status_code == 200
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]

    # When an operator revokes it
    # "--": a jti may begin with "-", which argparse would read as an option
    payplat_cli(platform, "tokens", "revoke", "--client", partner.client_id, "--", jti)

    # Then its very next request is a 401, and the client's other tokens still work
    refused = call(platform, token)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert call(platform, token_for(platform, partner)).status_code == 200


def test_a_disabled_client_loses_its_tokens_and_gets_no_new_ones(
    platform: Platform, partner: Partner
) -> None:
    # Given a client whose record every function has cached (a token and a call just now)
    token = token_for(platform, partner)
    assert call(platform, token).status_code == 200

    # When an operator disables it
    payplat_cli(platform, "clients", "disable", partner.client_id)

    # Then at once, whatever the caches hold: its token is refused...
    assert call(platform, token).status_code == 401
    # ...and the token endpoint, introspection and revocation refuse the client itself
    for path, data in (
        ("/oauth/token", {"grant_type": "client_credentials"}),
        ("/oauth/introspect", {"token": token}),
        ("/oauth/revoke", {"token": token}),
    ):
        response = requests.post(
            f"{platform.base_url}{path}",
            data=data,
            auth=(partner.client_id, partner.client_secret),
            timeout=5,
        )
        assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
        assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_the_token_endpoint_throttles_guessing_one_clients_secret(platform: Platform) -> None:
    payplat_cli(platform, "plans", "set", "token-client-ip", "--rate", "0.5", "--burst", "3")
    time.sleep(CONFIG_CACHE_TTL_S + 0.2)
    try:
        statuses = []
        for _ in range(4):
            response = requests.post(
                f"{platform.base_url}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=("ppc_someone_else", "guess"),
                timeout=5,
            )
            statuses.append(response.status_code)
        assert statuses == [401, 401, 401, 429]
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json()["error"] == "rate_limited"  # RFC 6749 shape on /oauth/*
    finally:
        payplat_cli(platform, "plans", "set", "token-client-ip", "--rate", "5", "--burst", "50")
        time.sleep(CONFIG_CACHE_TTL_S + 0.2)


def test_a_revocation_raised_by_the_gate_is_an_authentication_failure(aws: Aws) -> None:
    store = buckets(aws)
    clients = DynamoClientStore(aws.tables[Env.CLIENTS_TABLE], resource=aws.resource("dynamodb"))
    client, _ = register_client(clients, name="gate", scopes={"payments:read"}, owner="o2")
    gate = Gate(CachedClients(clients), CachedPlans(store, 30), RateLimiter(store))
    store.revoke_token([RateLimiter.key("api", client.client_id, 0)], "jti-x", 2_000_000_000)
    context = {"client_id": client.client_id, "scope": "payments:read", "jti": "jti-x", "iat": 5}
    with pytest.raises(AuthenticationFailed):
        gate.admit(ROUTES_BY_NAME["list_payments"], context, audit.Origin())


def test_a_dpop_proof_rides_on_the_charge_and_is_admitted_once(aws: Aws) -> None:
    """Sixteen 'containers' present the same proof at once: the proof's record is a Put in
    the same TransactWriteItems as the charge, so exactly one request is admitted, and the
    refused ones charge nothing."""
    limits = Limits("dpop-once", rate_per_s=10, burst=100, shards=1)
    subject = f"dpop-{uuid.uuid4().hex[:8]}"
    proof = ProofUse(f"DPOP#{uuid.uuid4().hex}", int(time.time()) + 120)
    clock = FrozenClock()
    limiters = [RateLimiter(buckets(aws), clock) for _ in range(THREADS)]
    outcomes: list[str] = []
    ready = threading.Barrier(THREADS)

    def present(limiter: RateLimiter) -> None:
        ready.wait()
        try:
            decision = limiter.check([limiter.charge("dpop", subject, limits)], proof)
            outcomes.append("admitted" if decision.admitted else "limited")
        except ProofReplayed:
            outcomes.append("replayed")

    threads = [threading.Thread(target=present, args=(limiter,)) for limiter in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["admitted"] + ["replayed"] * (THREADS - 1)
    # One charge only: the bucket's next request finds 99 of 100 left, and takes one.
    after = RateLimiter(buckets(aws), clock).check([limiters[0].charge("dpop", subject, limits)])
    assert after.admitted and after.remaining == 98
