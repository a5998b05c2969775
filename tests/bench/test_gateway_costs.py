"""Benchmarks for API management (`make bench`): what each request costs. Printed as a
table, never asserted against a time.

- authorizer: microseconds per warm invocation of the real handler, as a ratio to a bare
  `jwt.decode` of the same ES256 token (target <= 1.3x);
- AWS calls per request, counted with a botocore `before-call` hook on the platform running
  in this process (targets: authorizer 0; GET /v1/payments <= 2 with the limiter;
  POST /oauth/token <= 3, <= 2 with the client record warm);
- handler import time as a ratio to `import boto3` (authorizer target <= 0.8x);
- limiter admission in real time: admitted vs allowed when 16 threads hammer one client for
  3 s (target 100 %, no over-admission; exactness itself is an e2e test on a frozen clock);
- DPoP: AWS calls per bound GET (target: the bearer GET's 2), the warm authorizer with a
  bound and a bearer token, and one proof check in the gate.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import timeit
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import jwt
import pytest
import requests

from payplat.config import Env
from payplat.gateway.dal.rate_limit_table import DynamoBucketStore
from payplat.gateway.limiter import RateLimiter
from payplat.gateway.plans import Limits
from tests.conftest import ROOT, Platform, load_event

ROWS: list[tuple[str, str, str]] = []


def row(name: str, figure: str, target: str) -> None:
    ROWS.append((name, figure, target))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class CallCounter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        # Only what the request path does: the local runner's background threads (the audit
        # shipper and pipeline, the webhook dispatcher, the expiry timer) are not requests.
        if "process_request" not in threading.current_thread().name:
            return
        service = model.service_model.service_name
        self.calls[f"{service}.{model.name}"] += 1

    def take(self) -> Counter[str]:
        calls, self.calls = self.calls, Counter()
        return calls


@pytest.fixture(scope="module")
def inproc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, CallCounter]]:
    # Count every AWS call of every client the functions create (they use the default session).
    boto3.setup_default_session()
    counter = CallCounter()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-call", counter)
    from infra.local.platform import start
    from payplat.audit import events as audit

    audit.set_sinks()  # only the shipper (added by start) keeps them: no console noise
    with contextlib.redirect_stdout(io.StringIO()):  # the functions' log lines
        platform = start(free_port(), free_port(), tmp_path_factory.mktemp("bench"))
    yield platform, counter
    platform.stop()
    print_table()


def print_table() -> None:
    width = max(len(name) for name, _, _ in ROWS)
    lines = [f"\n{'benchmark':<{width}}  {'figure':<28} target", "-" * (width + 44)]
    lines += [f"{name:<{width}}  {figure:<28} {target}" for name, figure, target in ROWS]
    sys.__stdout__.write("\n".join(lines) + "\n")


def token(platform: Any, client: str = "merchant") -> str:
    credentials = platform.local["clients"][client]
    response = requests.post(
        f"{platform.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(credentials["client_id"], credentials["client_secret"]),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    access_token: str = response.json()["access_token"]
    return access_token


def test_aws_calls_per_request(inproc: tuple[Any, CallCounter]) -> None:
    platform, counter = inproc
    with contextlib.redirect_stdout(io.StringIO()):
        token(platform)  # cold: KMS public key, plans, client record
        counter.take()
        token(platform)
        warm_token = counter.take()
        token(platform, "admin")  # plans warm, this client's record not yet
        cold_client = counter.take()

        url = f"{platform.base_url}/v1/payments"
        warm_up = {"Authorization": f"Bearer {token(platform)}"}
        requests.get(url, headers=warm_up, timeout=10)  # loads the functions, warms caches
        access = token(platform)
        counter.take()
        headers = {"Authorization": f"Bearer {access}"}
        requests.get(url, headers=headers, timeout=10)  # authorizer runs (policy not cached)
        uncached = counter.take()
        requests.get(url, headers=headers, timeout=10)
        warm_get = counter.take()

    def fmt(calls: Counter[str]) -> str:
        return f"{sum(calls.values())} ({', '.join(f'{k} {v}' for k, v in sorted(calls.items()))})"

    authorizer_calls = sum(uncached.values()) - sum(warm_get.values())
    row("AWS calls: authorizer (uncached policy)", str(authorizer_calls), "0")
    row("AWS calls: GET /v1/payments, warm", fmt(warm_get), "<= 2")
    row("AWS calls: POST /oauth/token, client warm", fmt(warm_token), "<= 2")
    row("AWS calls: POST /oauth/token, client cold", fmt(cold_client), "<= 3")
    assert "boto3" not in sys.modules["functions.authorizer.handler"].__dict__


def test_authorizer_warm_invocation_vs_bare_decode(inproc: tuple[Any, CallCounter]) -> None:
    platform, _ = inproc
    with contextlib.redirect_stdout(io.StringIO()):
        access = token(platform)
        handler = sys.modules.get("functions.authorizer.handler")
        if handler is None:  # loaded on the first protected call
            requests.get(
                f"{platform.base_url}/v1/payments",
                headers={"Authorization": f"Bearer {access}"},
                timeout=10,
            )
            handler = sys.modules["functions.authorizer.handler"]
    event = load_event("authorizer_request")
    event["headers"]["Authorization"] = f"Bearer {access}"
    key = jwt.PyJWKClient(f"{platform.base_url}/.well-known/jwks.json").get_signing_key_from_jwt(
        access
    )
    audience = os.environ[Env.AUDIENCE]
    issuer = os.environ[Env.ISSUER]

    def bare() -> object:
        return jwt.decode(access, key.key, algorithms=["ES256"], audience=audience, issuer=issuer)

    def authorizer() -> object:
        return handler.lambda_handler(event, None)

    rounds = 3000
    from payplat.audit import events as audit

    sinks = list(audit._sinks)
    audit.set_sinks(lambda line: None)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            bare_us = min(timeit.repeat(bare, number=rounds, repeat=5)) / rounds * 1e6
            full_us = min(timeit.repeat(authorizer, number=rounds, repeat=5)) / rounds * 1e6
    finally:
        audit.set_sinks(*sinks)
    row("authorizer warm invocation", f"{full_us:.0f} us", "")
    row("bare jwt.decode (same token)", f"{bare_us:.0f} us", "")
    row("authorizer / bare decode", f"{full_us / bare_us:.2f}x", "<= 1.3x")


def _import_seconds(module: str, env: dict[str, str]) -> float:
    probe = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    samples = [
        float(
            subprocess.run(  # noqa: S603
                [sys.executable, "-c", probe],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for _ in range(5)
    ]
    return statistics.median(samples)


def test_import_time_relative_to_boto3(inproc: tuple[Any, CallCounter]) -> None:
    env = dict(os.environ)  # the in-process platform's settings: every handler can load
    baseline = _import_seconds("boto3", env)
    row("import boto3", f"{baseline * 1000:.0f} ms", "")
    for name, target in (("authorizer", "<= 0.8x"), ("oauth", ""), ("payments", "")):
        seconds = _import_seconds(f"functions.{name}.handler", env)
        row(
            f"import functions.{name}.handler",
            f"{seconds * 1000:.0f} ms = {seconds / baseline:.2f}x",
            target,
        )


HAMMER_THREADS = 16
HAMMER_S = 3.0


def hammer(limiters: list[RateLimiter], limits: Limits, subject: str) -> tuple[int, int, float]:
    """Every limiter charges one client, each from its own thread, for HAMMER_S seconds of
    wall-clock time."""
    from tests.e2e.test_rate_limits import from_threads

    start = time.time()
    deadline = start + HAMMER_S
    admitted, refused = from_threads(limiters, limits, subject, lambda _: time.time() >= deadline)
    return admitted, refused, time.time() - start


def test_limiter_admission_in_real_time(platform: Platform) -> None:
    """Against the moto server of the platform in its own process (as in the e2e tests), so
    the 16 threads here do not share an interpreter with the server. The e2e test proves
    exactness on a frozen clock; this measures what a real clock and a busy machine leave of
    it (a stalled server cannot bank more than the burst, so short stalls cost admissions)."""
    local = json.loads((platform.state_dir / "local.json").read_text())
    session = boto3.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
    )
    table = local["tables"][Env.RATE_LIMITS_TABLE]
    for limits in (
        Limits("bench-one", rate_per_s=40, burst=20),
        Limits("bench-sharded", rate_per_s=60, burst=30, shards=3),
    ):
        limiters = [
            RateLimiter(
                DynamoBucketStore(
                    table, client=session.client("dynamodb", endpoint_url=platform.aws_endpoint_url)
                )
            )
            for _ in range(HAMMER_THREADS)
        ]
        admitted, refused, elapsed = hammer(limiters, limits, f"bench-{limits.name}")
        allowed = limits.burst + limits.rate_per_s * elapsed
        over = max(0, admitted - allowed)
        row(
            f"limiter: {limits.name} ({admitted + refused} requests, {elapsed:.1f} s)",
            f"{admitted}/{allowed:.0f} = {admitted / allowed:.1%}, over {over:.0f}",
            "100 %, over 0",
        )


def test_payment_costs(inproc: tuple[Any, CallCounter]) -> None:
    """AWS calls per payment and per payment read (targets <= 2 each, the limiter included),
    and payments per second through the local gateway as a ratio to moto's raw single-item
    write rate in the same run. (moto deep-copies every table a transaction touches, so its
    TransactWriteItems slows as the ledger table grows: the ratio measures moto as much as
    payplat.)"""
    platform, counter = inproc
    url = f"{platform.base_url}/v1/payments"
    with contextlib.redirect_stdout(io.StringIO()):
        headers = {"Authorization": f"Bearer {token(platform, 'consumer')}"}

        def pay(n: int) -> requests.Response:
            return requests.post(
                url,
                json={
                    "source_account": "acct_alice_eur",
                    "destination_account": "acct_bob_eur",
                    "amount": 1,
                    "currency": "EUR",
                },
                headers={**headers, "Idempotency-Key": f"bench-{n}-{time.time_ns()}"},
                timeout=10,
            )

        first = pay(0)  # warms the function, the plan, the client and the accounts
        assert first.status_code == 200, first.text
        counter.take()
        created = pay(1)
        post_calls = counter.take()
        payment_id = created.json()["id"]
        requests.get(f"{url}/{payment_id}", headers=headers, timeout=10)
        counter.take()
        requests.get(f"{url}/{payment_id}", headers=headers, timeout=10)
        get_calls = counter.take()

        rounds = 40  # the consumer's plan (standard: 25/s, a payment costs 2) bounds the rate
        started = time.perf_counter()
        statuses = [pay(2 + n).status_code for n in range(rounds)]
        payment_rate = rounds / (time.perf_counter() - started)

        table = platform.local["tables"][Env.LEDGER_TABLE]
        dynamodb = boto3.client("dynamodb", endpoint_url=platform.aws_endpoint_url)
        started = time.perf_counter()
        for n in range(200):
            dynamodb.put_item(TableName=table, Item={"pk": {"S": f"BENCH#{n}"}, "sk": {"S": "RAW"}})
        raw_rate = 200 / (time.perf_counter() - started)

    def fmt(calls: Counter[str]) -> str:
        return f"{sum(calls.values())} ({', '.join(f'{k} {v}' for k, v in sorted(calls.items()))})"

    row("AWS calls: POST /v1/payments, warm", fmt(post_calls), "<= 2")
    row("AWS calls: GET /v1/payments/{id}, warm", fmt(get_calls), "<= 2")
    admitted = statuses.count(200)
    row(
        "payments/s via local gateway vs raw put/s",
        f"{payment_rate:.0f}/s vs {raw_rate:.0f}/s = {payment_rate / raw_rate:.2f}",
        f"({admitted}/{rounds} admitted)",
    )


def test_dpop_costs(inproc: tuple[Any, CallCounter]) -> None:
    """A DPoP-bound GET against a bearer GET: AWS calls (the proof's one use rides on the
    limiter's write: a TransactWriteItems instead of an UpdateItem, still one call), the
    warm authorizer with each kind of token, and one proof check in the gate."""
    from joserfc.jwk import ECKey

    from payplat.gateway import dpop

    platform, counter = inproc
    key = ECKey.generate_key("P-256")
    token_url = f"{platform.base_url}/oauth/token"
    url = f"{platform.base_url}/v1/payments"

    def proof(method: str, target: str, access: str | None = None) -> str:
        return _dpop_proof(key, method, target, access)

    credentials = platform.local["clients"]["merchant"]
    with contextlib.redirect_stdout(io.StringIO()):
        response = requests.post(
            token_url,
            data={"grant_type": "client_credentials"},
            auth=(credentials["client_id"], credentials["client_secret"]),
            headers={"DPoP": proof("POST", token_url)},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        bound = response.json()["access_token"]
        bearer = token(platform)
        for access, scheme in ((bound, "DPoP"), (bearer, "Bearer")):  # policies cached
            extra = {"DPoP": proof("GET", url, access)} if scheme == "DPoP" else {}
            headers = {"Authorization": f"{scheme} {access}", **extra}
            assert requests.get(url, headers=headers, timeout=10).status_code == 200
        counter.take()
        headers = {"Authorization": f"DPoP {bound}", "DPoP": proof("GET", url, bound)}
        assert requests.get(url, headers=headers, timeout=10).status_code == 200
        dpop_get = counter.take()
        requests.get(url, headers={"Authorization": f"Bearer {bearer}"}, timeout=10)
        bearer_get = counter.take()

    handler = sys.modules["functions.authorizer.handler"]
    bound_event = load_event("authorizer_request")
    bound_event["headers"]["Authorization"] = f"DPoP {bound}"
    bearer_event = load_event("authorizer_request")
    bearer_event["headers"]["Authorization"] = f"Bearer {bearer}"
    one_proof = proof("GET", url, bound)

    def check() -> object:
        return dpop.verify_proof(
            one_proof, method="GET", url=url, now=time.time(), access_token=bound
        )

    from payplat.audit import events as audit

    sinks = list(audit._sinks)
    audit.set_sinks(lambda line: None)
    rounds = 2000
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            timings = {
                name: min(timeit.repeat(call, number=rounds, repeat=5)) / rounds * 1e6
                for name, call in (
                    ("bound", lambda: handler.lambda_handler(bound_event, None)),
                    ("bearer", lambda: handler.lambda_handler(bearer_event, None)),
                    ("proof", check),
                )
            }
    finally:
        audit.set_sinks(*sinks)

    def fmt(calls: Counter[str]) -> str:
        return f"{sum(calls.values())} ({', '.join(f'{k} {v}' for k, v in sorted(calls.items()))})"

    row("AWS calls: GET /v1/payments, DPoP-bound, warm", fmt(dpop_get), "= bearer (2)")
    row("AWS calls: GET /v1/payments, bearer, warm", fmt(bearer_get), "<= 2")
    row("authorizer warm, DPoP-bound token", f"{timings['bound']:.0f} us", "")
    row("authorizer warm, bearer token", f"{timings['bearer']:.0f} us", "")
    row("DPoP proof check (ES256, in the gate)", f"{timings['proof']:.0f} us", "")


def _dpop_proof(key: Any, method: str, target: str, access: str | None = None) -> str:
    """A DPoP proof made with joserfc (not payplat's code)."""
    import uuid

    from joserfc import jwt as jose_jwt

    from payplat.gateway import dpop

    claims: dict[str, Any] = {
        "jti": str(uuid.uuid4()),
        "htm": method,
        "htu": target,
        "iat": int(time.time()),
    }
    if access is not None:
        claims["ath"] = dpop.token_hash(access)
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    return str(jose_jwt.encode(header, claims, key))
