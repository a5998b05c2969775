"""λ audit_sealer: the Kinesis stream `audit` in, one signed hash-chained seal per batch out
to the Object Lock archive (payplat.audit.chain). Lambda delivers a shard's records in order,
one batch at a time (parallelization factor 1); a failed batch is retried whole, and the
chain's head makes the retry seal only what is not sealed yet."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payplat.audit.chain import StreamRecord, seal_batch
from payplat.audit.dal.archive import AuditArchive, KmsDigestSigner
from payplat.audit.emf import count
from payplat.audit.metrics import AUDIT_EVENTS_SEALED
from payplat.config import SealerSettings, load
from payplat.observability import logger, tracer

settings = load(SealerSettings)
archive = AuditArchive(settings.archive_bucket, settings.audit_table)
signer = KmsDigestSigner(settings.sealing_key_id)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    by_shard: dict[tuple[str, str], list[StreamRecord]] = {}
    for record in event.get("Records") or []:
        stream = record["eventSourceARN"].rsplit("/", 1)[-1]
        shard = record["eventID"].split(":", 1)[0]
        by_shard.setdefault((stream, shard), []).append(_stream_record(record["kinesis"]))
    sealed = 0
    for (stream, shard), records in by_shard.items():
        seal = seal_batch(archive, signer, stream=stream, shard=shard, records=records)
        if seal is not None:
            sealed += len(seal.events)
            logger.info(
                "sealed",
                extra={"shard": shard, "seal": seal.index, "events": len(seal.events)},
            )
    count(AUDIT_EVENTS_SEALED.name, value=sealed)
    return {"sealed": sealed}


def _stream_record(kinesis: dict[str, Any]) -> StreamRecord:
    arrived = datetime.fromtimestamp(float(kinesis["approximateArrivalTimestamp"]), UTC)
    return StreamRecord(
        sequence=kinesis["sequenceNumber"],
        data=base64.b64decode(kinesis["data"]),
        arrived=arrived.isoformat(timespec="milliseconds"),
    )
