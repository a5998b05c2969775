"""The local platform, started once per test session exactly as `make run` starts it (a
subprocess on free ports), and torn down with Ctrl-C (SIGINT)."""

from __future__ import annotations

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

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60


@dataclass(frozen=True)
class Platform:
    base_url: str
    aws_endpoint_url: str
    clients: dict[str, dict[str, str]]
    state_dir: Path
    startup_s: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    state_dir = tmp_path_factory.mktemp("payplat-state")
    port, aws_port = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PAYPLAT_", "AWS_", "POWERTOOLS_"))
    }
    env.update(
        PAYPLAT_PORT=str(port), PAYPLAT_AWS_PORT=str(aws_port), PAYPLAT_STATE_DIR=str(state_dir)
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
        yield Platform(
            base_url=local["base_url"],
            aws_endpoint_url=local["aws_endpoint_url"],
            clients=local["clients"],
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
