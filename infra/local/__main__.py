"""`make run`: the whole platform on this machine, moto as the embedded AWS.

Environment: PAYPLAT_PORT (gateway, default 8000), PAYPLAT_AWS_PORT (moto, default 8010),
PAYPLAT_STATE_DIR (default .payplat), PAYPLAT_AUTHORIZER_CACHE_TTL_S (default 300).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from infra.resources import AUDIENCE_PATH, TABLES
from payplat.config import Env

HOST = "127.0.0.1"


def main() -> int:
    started = time.perf_counter()
    port = int(os.environ.get("PAYPLAT_PORT", "8000"))
    aws_port = int(os.environ.get("PAYPLAT_AWS_PORT", "8010"))
    state_dir = Path(os.environ.get("PAYPLAT_STATE_DIR", ".payplat"))
    cache_ttl_s = int(os.environ.get("PAYPLAT_AUTHORIZER_CACHE_TTL_S", "300"))
    state_dir.mkdir(parents=True, exist_ok=True)
    console = sys.stdout
    # The functions log JSON lines (and EMF metrics) to stdout, as in Lambda; keep them in a
    # file so the console stays readable.
    log_path = state_dir / "functions.log"
    sys.stdout = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115

    base_url = f"http://{HOST}:{port}"
    aws_url = f"http://{HOST}:{aws_port}"
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": aws_url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "1",
            "POWERTOOLS_SERVICE_NAME": "payplat",
            Env.LOCAL_MODE: "1",
            Env.ISSUER: base_url,
            Env.AUDIENCE: base_url + AUDIENCE_PATH,
            Env.JWKS_URI: f"{base_url}/.well-known/jwks.json",
        }
    )

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-call access log

    moto = ThreadedMotoServer(ip_address=HOST, port=aws_port, verbose=False)
    moto.start()

    import boto3

    from infra.local.audit_shipper import AuditShipper
    from infra.local.gateway import LocalGateway, serve
    from infra.local.provision import provision
    from infra.local.seed import seed
    from payplat.dal.clients_table import DynamoClientStore

    names = provision()
    os.environ.update(names)
    seeded = seed(DynamoClientStore(names[Env.CLIENTS_TABLE]))
    shipper = AuditShipper(boto3.client("kinesis"), names[Env.AUDIT_STREAM])
    shipper.start()
    server = serve(LocalGateway(cache_ttl_s=cache_ttl_s), HOST, port)

    local = {
        "base_url": base_url,
        "aws_endpoint_url": aws_url,
        "tables": {spec.env: names[spec.env] for spec in TABLES},
        "audit_stream": names[Env.AUDIT_STREAM],
        "clients": {
            label: {"client_id": c.client_id, "client_secret": c.client_secret, "scope": c.scope}
            for label, c in seeded.items()
        },
    }
    _write_private(state_dir / "local.json", local)
    _print_quick_start(console, local, state_dir, log_path, time.perf_counter() - started)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    print("\nstopping payplat…", file=console, flush=True)
    server.shutdown()
    shipper.stop()
    moto.stop()
    return 0


def _write_private(path: Path, document: dict[str, Any]) -> None:
    """Write a file only its owner can read: it holds client secrets."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _print_quick_start(
    console: TextIO, local: dict[str, Any], state_dir: Path, log_path: Path, seconds: float
) -> None:
    merchant = local["clients"]["merchant"]
    base = local["base_url"]
    print(
        f"""payplat is running at {base} (ready in {seconds:.1f} s)
  embedded AWS (moto):  {local["aws_endpoint_url"]}
  demo clients:         {state_dir / "local.json"} (client secrets, mode 0600)
  function logs:        {log_path}

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
