"""Start and stop the whole platform in this process: moto as a threaded server, the
resources from infra/resources.py, the demo clients, the audit shipper and the local gateway.
`make run` (infra/local/__main__.py) and the benchmarks use it."""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.resources import AUDIENCE_PATH, QUEUES, TABLES
from payplat.config import Env

HOST = "127.0.0.1"
EXPIRY_INTERVAL_S = float(os.environ.get("PAYPLAT_EXPIRY_INTERVAL_S", "60"))
# A failed webhook delivery is retried within about a second locally (30 s in AWS), so a
# developer, or a test, sees the retry land; PAYPLAT_WEBHOOK_RETRY_BASE_S sets it.
LOCAL_WEBHOOK_RETRY_BASE_S = "1"


@dataclass
class LocalPlatform:
    base_url: str
    aws_endpoint_url: str
    local: dict[str, Any]  # what .payplat/local.json holds
    gateway: Any  # the LocalGateway serving base_url
    _stop: list[Any]

    def stop(self) -> None:
        for stop in self._stop:
            stop()


def environment(base_url: str, aws_url: str) -> dict[str, str]:
    """What the functions (and boto3) read, as Lambda and the CDK app would set it."""
    return {
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
        Env.WEBHOOK_RETRY_BASE_S: (
            os.environ.get(Env.WEBHOOK_RETRY_BASE_S) or LOCAL_WEBHOOK_RETRY_BASE_S
        ),
        # `PAYPLAT_REQUIRE_PAR=true make run`: every client must push (RFC 9126).
        Env.REQUIRE_PAR: os.environ.get(Env.REQUIRE_PAR, ""),
        # `PAYPLAT_DPOP_NONCE=true make run`: DPoP proofs must carry a nonce (RFC 9449 §8).
        Env.DPOP_NONCE: os.environ.get(Env.DPOP_NONCE, ""),
        # `PAYPLAT_FAPI=true make run`: the FAPI 2.0 Security Profile (payplat.oauth.fapi).
        Env.FAPI: os.environ.get(Env.FAPI, ""),
    }


def start(port: int, aws_port: int, state_dir: Path, cache_ttl_s: int = 300) -> LocalPlatform:
    base_url = f"http://{HOST}:{port}"
    aws_url = f"http://{HOST}:{aws_port}"
    os.environ.update(environment(base_url, aws_url))

    from moto.server import ThreadedMotoServer

    from infra.local.atomic_dynamodb import make_dynamodb_atomic

    make_dynamodb_atomic()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-call access log
    moto = ThreadedMotoServer(ip_address=HOST, port=aws_port, verbose=False)
    moto.start()

    import boto3

    from infra.local.audit_shipper import AuditShipper
    from infra.local.gateway import LocalGateway, serve
    from infra.local.provision import provision
    from infra.local.seed import accounts, seed
    from infra.local.webhooks import provision_queues, webhook_pipeline
    from payplat.clients.dal.clients_table import DynamoClientStore
    from payplat.oauth.dal.users_table import DynamoUserStore
    from payplat.payments.dal.ledger_table import DynamoLedgerStore

    names = {**provision(), **provision_queues()}
    os.environ.update(names)
    seeded = seed(
        DynamoClientStore(names[Env.CLIENTS_TABLE]),
        DynamoLedgerStore(names[Env.LEDGER_TABLE]),
        DynamoUserStore(names[Env.USERS_TABLE]),
    )
    shipper = AuditShipper(boto3.client("kinesis"), names[Env.AUDIT_STREAM])
    shipper.start()
    pipeline = audit_pipeline(names)
    pipeline.start()
    webhooks = webhook_pipeline(names)
    webhooks.start()
    gateway = LocalGateway(cache_ttl_s=cache_ttl_s)
    server = serve(gateway, HOST, port)
    sweeper = ExpirySchedule(EXPIRY_INTERVAL_S)
    sweeper.start()

    local = {
        "base_url": base_url,
        "aws_endpoint_url": aws_url,
        "tables": {spec.env: names[spec.env] for spec in TABLES},
        "audit_stream": names[Env.AUDIT_STREAM],
        "queues": {spec.env: names[spec.env] for spec in QUEUES},
        "audit_archive_bucket": names[Env.AUDIT_ARCHIVE_BUCKET],
        "audit_sealing_key_id": names[Env.AUDIT_SEALING_KEY_ID],
        "signing_key_id": names[Env.SIGNING_KEY_ID],
        "clients": {label: client.as_json() for label, client in seeded.clients.items()},
        "users": seeded.users,
        "accounts": accounts(),
    }
    state_dir.mkdir(parents=True, exist_ok=True)
    write_private(state_dir / "local.json", local)
    stops = [sweeper.stop, server.shutdown, shipper.stop, pipeline.stop, webhooks.stop, moto.stop]
    return LocalPlatform(base_url, aws_url, local, gateway, stops)


def audit_pipeline(names: dict[str, str]) -> Any:
    """The ledger stream into the forwarder, the audit stream into the sealer and the archive
    (what Lambda's event sources and Firehose do in AWS)."""
    import boto3

    from infra.local.audit_pipeline import (
        AuditPipeline,
        AuditStreamSource,
        FirehoseDelivery,
        LedgerStreamSource,
    )
    from infra.local.gateway import LocalFunction
    from infra.resources import LEDGER
    from payplat.audit.dal.archive import AuditArchive
    from payplat.audit.dal.stream import AuditStream

    ledger_stream = boto3.client("dynamodb").describe_table(TableName=names[LEDGER.env])["Table"][
        "LatestStreamArn"
    ]
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="payplat-audit-forwarder-dlq")["QueueUrl"]
    stream = AuditStream(names[Env.AUDIT_STREAM])
    stream_arn = boto3.client("kinesis").describe_stream_summary(StreamName=stream.name)[
        "StreamDescriptionSummary"
    ]["StreamARN"]
    return AuditPipeline(
        LedgerStreamSource(
            boto3.client("dynamodbstreams"),
            ledger_stream,
            LocalFunction("audit_forwarder", timeout_s=60).invoke,
            lambda body: sqs.send_message(QueueUrl=dlq, MessageBody=body),
        ),
        AuditStreamSource(stream, stream_arn, LocalFunction("audit_sealer", timeout_s=60).invoke),
        FirehoseDelivery(stream, AuditArchive(names[Env.AUDIT_ARCHIVE_BUCKET])),
    )


class ExpirySchedule:
    """What the EventBridge rule does in AWS: run the expirer function on a timer."""

    def __init__(self, interval_s: float) -> None:
        from infra.local.gateway import LocalFunction

        self._function = LocalFunction("expirer", timeout_s=300)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="expiry-schedule", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
        while not self._stop.wait(self._interval_s):
            try:
                self._function.invoke({**event, "id": str(uuid.uuid4())})
            except Exception:  # logged by the function; the next tick tries again
                logging.getLogger(__name__).exception("expiry sweep failed")


def write_private(path: Path, document: dict[str, Any]) -> None:
    """Write a file only its owner can read: it holds client secrets."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
