"""`make run`: the whole platform on this machine, moto as the embedded AWS.

Environment: PAYPLAT_PORT (gateway, default 8000), PAYPLAT_AWS_PORT (moto, default 8010),
PAYPLAT_STATE_DIR (default .payplat), PAYPLAT_AUTHORIZER_CACHE_TTL_S (default 300),
PAYPLAT_REQUIRE_PAR (default false: true makes every client push its authorization requests),
PAYPLAT_DPOP_NONCE (default false: true makes DPoP proofs carry a server nonce),
PAYPLAT_FAPI (default false: true turns the FAPI 2.0 Security Profile on for the whole server).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO


def main() -> int:
    started = time.perf_counter()
    port = int(os.environ.get("PAYPLAT_PORT", "8000"))
    aws_port = int(os.environ.get("PAYPLAT_AWS_PORT", "8010"))
    state_dir = Path(os.environ.get("PAYPLAT_STATE_DIR", ".payplat"))
    cache_ttl_s = int(os.environ.get("PAYPLAT_AUTHORIZER_CACHE_TTL_S", "300"))
    state_dir.mkdir(parents=True, exist_ok=True)
    console = sys.stdout
    # The functions log JSON lines (and EMF metrics) to stdout, as in Lambda; keep them in a
    # file so the console stays readable. Before anything that logs is imported.
    log_path = state_dir / "functions.log"
    sys.stdout = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115

    from infra.local.platform import start

    platform = start(port, aws_port, state_dir, cache_ttl_s)
    _print_quick_start(console, platform.local, state_dir, log_path, time.perf_counter() - started)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    print("\nstopping payplat…", file=console, flush=True)
    platform.stop()
    return 0


def _print_quick_start(
    console: TextIO, local: dict[str, Any], state_dir: Path, log_path: Path, seconds: float
) -> None:
    merchant = local["clients"]["merchant"]
    base = local["base_url"]
    print(
        f"""payplat is running at {base} (ready in {seconds:.1f} s)
  embedded AWS (moto):  {local["aws_endpoint_url"]}
  demo clients, users:  {state_dir / "local.json"} (secrets and passwords, mode 0600)
  account holders:      alice, bob (log in at {base}/oauth/authorize, via an app)
  function logs:        {log_path}
  operator CLI:         uv run payplat --help

Try it:
  curl -s {base}/health
  curl -s -u {merchant["client_id"]}:<client_secret> \\
       -d grant_type=client_credentials {base}/oauth/token
  curl -s -H "Authorization: Bearer <access_token>" {base}/v1/payments

The README's walkthrough reads the secret from {state_dir / "local.json"} for you.
Ctrl-C stops the platform.""",
        file=console,
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
