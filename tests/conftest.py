"""Fixtures shared by every test layer, and the local platform (started once per session
for the end-to-end tests and benchmarks, exactly as `make run` starts it)."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from payplat.audit import events as audit

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"


def load_event(name: str) -> dict[str, Any]:
    """A real-shaped sample event from events/ (a fresh copy each time)."""
    return copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))


class LambdaContext:
    """What the handlers read of a Lambda context."""

    function_name = "payplat-test"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:payplat-test"
    aws_request_id = "test-request"


def invoke(handler: Any, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    """Call a proxy-integration handler: (status, headers, parsed JSON body)."""
    response = handler.lambda_handler(event, LambdaContext())
    headers = {**(response.get("headers") or {})}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.setdefault(name, values[-1])
    return response["statusCode"], headers, json.loads(response["body"])


AUDIT_SCHEMA = Draft202012Validator(audit.json_schema(), format_checker=FormatChecker())


class AuditCapture:
    """Collects the audit lines written through payplat.audit.events (an audit sink). Every line is
    checked against the published schema as it arrives: a test that makes a record makes
    sure the record is valid."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        AUDIT_SCHEMA.validate(json.loads(line))
        self.lines.append(line)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == event_type]


@pytest.fixture
def audit_lines() -> Iterator[AuditCapture]:
    capture = AuditCapture()
    audit.add_sink(capture)
    yield capture
    audit.remove_sink(capture)


STARTUP_TIMEOUT_S = 60
CONFIG_CACHE_TTL_S = 1


@dataclass(frozen=True)
class Platform:
    base_url: str
    aws_endpoint_url: str
    clients: dict[str, dict[str, str]]
    users: dict[str, dict[str, str]]  # alice, bob: username, password, user_id
    state_dir: Path
    startup_s: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory.mktemp("payplat-state")) as started:
        yield started


@contextlib.contextmanager
def running_platform(state_dir: Path, **settings: str) -> Iterator[Platform]:
    """`make run` in a subprocess (with `settings` as extra PAYPLAT_* variables), until the
    block ends. The session's `platform` is one; a test needing another deployment setting
    starts its own."""
    port, aws_port = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PAYPLAT_", "AWS_", "POWERTOOLS_"))
    }
    env.update(
        PAYPLAT_PORT=str(port),
        PAYPLAT_AWS_PORT=str(aws_port),
        PAYPLAT_STATE_DIR=str(state_dir),
        # Plans and client records are re-read after 1 s (30 s by default), so tests that
        # change them see the change without waiting.
        PAYPLAT_CONFIG_CACHE_TTL_S=str(CONFIG_CACHE_TTL_S),
        # A rotated signing key reaches the authorizer's key set within a second.
        PAYPLAT_JWKS_MIN_REFRESH_S="1",
        # The expiry sweep every 2 s (60 s by default): a test that makes an authorization
        # due sees it released without waiting.
        PAYPLAT_EXPIRY_INTERVAL_S="2",
        **settings,
    )
    started = time.perf_counter()
    console = open(state_dir / "console.txt", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local"],
        cwd=ROOT,
        env=env,
        stdout=console,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base_url, process, state_dir)
        local = json.loads((state_dir / "local.json").read_text())
        _roomy_login_ip_limit(local)
        yield Platform(
            base_url=local["base_url"],
            aws_endpoint_url=local["aws_endpoint_url"],
            clients=local["clients"],
            users=local["users"],
            state_dir=state_dir,
            startup_s=time.perf_counter() - started,
        )
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        console.close()


def _roomy_login_ip_limit(local: dict[str, Any]) -> None:
    """Every test signs in from 127.0.0.1: raise the per-IP sign-in limit as an operator
    would for an office behind one NAT (the per-username limit, which the brute-force test
    meets, stays as shipped)."""
    import boto3

    from payplat.gateway.dal.rate_limit_table import DynamoBucketStore
    from payplat.gateway.plans import LOGIN_PER_IP, Limits

    client = boto3.client(
        "dynamodb",
        endpoint_url=local["aws_endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    DynamoBucketStore(local["tables"]["PAYPLAT_RATE_LIMITS_TABLE"], client=client).put_plan(
        Limits(LOGIN_PER_IP.name, rate_per_s=100, burst=10_000)
    )


def payplat_cli(platform: Platform, *args: str) -> str:
    """Run the operator CLI against `platform`, as an operator would; returns its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYPLAT_", "AWS_"))}
    env["PAYPLAT_STATE_DIR"] = str(platform.state_dir)
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "payplat.ops.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def _wait_healthy(base_url: str, process: subprocess.Popen[Any], state_dir: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = (state_dir / "console.txt").read_text()
            raise RuntimeError(f"the platform exited early:\n{output}")
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=1) as response:
                if response.status == 200 and (state_dir / "local.json").exists():
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the platform did not answer /health in time")
