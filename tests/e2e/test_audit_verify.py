"""`payplat audit verify` and `payplat audit tail` on the running platform: the archive (what
Firehose delivers) checked against the sealer's signed, hash-chained seals — an intact trail
verifies, and a modified, a removed and a reordered event are each reported as the first
break. The archive is versioned under Object Lock: each tampering is a new version of an
object, and putting the original back as the newest version restores the trail."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from tests.conftest import ROOT, Platform
from tests.e2e.oauth_support import LOCAL_CREDENTIALS, client_token, new_holder, register
from tests.e2e.test_audit_trail import act, pay

pytestmark = pytest.mark.e2e
WAIT_S = 45.0  # Firehose's stand-in flushes every 2 s; CI machines are slower than laptops


def cli(platform: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYPLAT_", "AWS_"))}
    env["PAYPLAT_STATE_DIR"] = str(platform.state_dir)
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "payplat.ops.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def verified(platform: Platform) -> dict[str, Any]:
    result = cli(platform, "audit", "verify", "--json")
    document: dict[str, Any] = json.loads(result.stdout)
    document["exit"] = result.returncode
    return document


def until(condition: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


class Archive:
    def __init__(self, platform: Platform) -> None:
        local = json.loads((platform.state_dir / "local.json").read_text())
        self.bucket = local["audit_archive_bucket"]
        self.s3 = boto3.client("s3", endpoint_url=platform.aws_endpoint_url, **LOCAL_CREDENTIALS)

    def objects(self) -> list[str]:
        found = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="events/").get("Contents", [])
        return sorted(item["Key"] for item in found)

    def lines(self, key: str) -> list[bytes]:
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return [line for line in gzip.decompress(body).split(b"\n") if line]

    def sealed_ids(self) -> set[str]:
        found = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="seals/").get("Contents", [])
        ids: set[str] = set()
        for item in found:
            seal = json.loads(
                self.s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
            )
            ids.update(event_id for event_id, _ in seal["events"])
        return ids

    def write(self, key: str, lines: list[bytes]) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            ChecksumAlgorithm="SHA256",
            Body=gzip.compress(b"\n".join(lines) + b"\n"),
        )


@pytest.fixture(scope="module")
def sealed_object(platform: Platform) -> tuple[Archive, str, list[bytes]]:
    """Money moved by a client of this module's own, sealed and archived: an archived object
    holding at least two of its events, and its original content."""
    payer, payee = new_holder(platform), new_holder(platform)
    registered = register(
        platform,
        owner=payer.user_id,
        grant_types=["client_credentials"],
        scope="payments:read payments:write",
    )
    token = client_token(platform, registered["client_id"], registered["client_secret"]).json()[
        "access_token"
    ]
    route = {
        "source_account": payer.account_id,
        "destination_account": payee.account_id,
        "currency": "EUR",
        "capture_method": "manual",
    }
    payment = pay(platform, token, {**route, "amount": 700}).json()
    act(platform, token, f"/v1/payments/{payment['id']}/cancel", {})
    archive = Archive(platform)
    mine = f"payment/{payment['id']}".encode()

    def archived_and_sealed() -> tuple[str, list[bytes]] | None:
        """The archived object holding the payment's creation (with other lines to reorder
        it against), once the sealer has sealed it and the trail verifies. The creation and
        the cancellation may be delivered in different objects: only the first matters."""
        for key in reversed(archive.objects()):
            lines = archive.lines(key)
            created = [line for line in lines if mine in line and b"payment.created" in line]
            if not created or len(lines) < 2:
                continue
            sealed = json.loads(created[0])["event_id"] in archive.sealed_ids()
            return (key, lines) if sealed and verified(platform)["ok"] else None
        return None

    found = until(archived_and_sealed)
    assert found, "the payment's events were not archived and sealed in time"
    key, original = found
    return archive, key, original


@pytest.fixture
def settled(
    platform: Platform, sealed_object: tuple[Archive, str, list[bytes]]
) -> Iterator[tuple[Archive, str, list[bytes]]]:
    """The sealed object for one test to tamper with, restored after it."""
    archive, key, original = sealed_object
    yield sealed_object
    archive.write(key, original)  # the original back as the newest version
    assert until(lambda: verified(platform)["ok"])


def test_an_intact_trail_verifies(platform: Platform, settled: Any) -> None:
    result = verified(platform)
    assert result["exit"] == 0 and result["ok"]
    assert result["seals"] >= 1 and result["events"] >= 2


def test_a_modified_event_is_the_first_break(platform: Platform, settled: Any) -> None:
    archive, key, lines = settled
    target = next(i for i, line in enumerate(lines) if b"payment.created" in line)
    event = json.loads(lines[target])
    event["details"]["amount"] = 1  # 7.00 EUR becomes 0.01 EUR
    archive.write(key, [*lines[:target], json.dumps(event).encode(), *lines[target + 1 :]])
    result = verified(platform)
    assert result["exit"] == 1
    assert result["breaks"][0]["kind"] == "modified"
    assert event["event_id"] in result["breaks"][0]["where"]


def test_a_removed_event_is_the_first_break(platform: Platform, settled: Any) -> None:
    archive, key, lines = settled
    target = next(i for i, line in enumerate(lines) if b"payment.created" in line)
    removed = json.loads(lines[target])["event_id"]
    archive.write(key, [*lines[:target], *lines[target + 1 :]])
    result = verified(platform)
    assert result["exit"] == 1
    assert result["breaks"][0]["kind"] == "missing" and removed in result["breaks"][0]["where"]


def test_reordered_events_are_the_first_break(platform: Platform, settled: Any) -> None:
    archive, key, lines = settled
    swapped = list(lines)
    swapped[0], swapped[-1] = swapped[-1], swapped[0]
    archive.write(key, swapped)
    result = verified(platform)
    assert result["exit"] == 1
    assert result["breaks"][0]["kind"] == "reordered"
    human = cli(platform, "audit", "verify")
    assert "BROKEN at" in human.stdout and "reordered" in human.stdout


def test_tail_filters_by_type_and_client(platform: Platform) -> None:
    payer, payee = new_holder(platform), new_holder(platform)
    registered = register(
        platform,
        owner=payer.user_id,
        grant_types=["client_credentials"],
        scope="payments:read payments:write",
    )
    client_id = registered["client_id"]
    token = client_token(platform, client_id, registered["client_secret"]).json()["access_token"]
    pay(
        platform,
        token,
        {
            "source_account": payer.account_id,
            "destination_account": payee.account_id,
            "currency": "EUR",
            "amount": 250,
        },
    )

    def mine() -> list[dict[str, Any]]:
        result = cli(
            platform, "audit", "tail", "--type", "payment.", "--client", client_id, "--json"
        )
        return [json.loads(line) for line in result.stdout.splitlines() if line]

    events = until(lambda: len(mine()) >= 2 and mine())
    assert sorted(e["type"] for e in events) == ["payment.captured", "payment.created"]
    assert all(e["actor"]["client_id"] == client_id for e in events)
    readable = cli(platform, "audit", "tail", "--client", client_id, "--limit", "5").stdout
    assert "payment.created" in readable and "2.50 EUR" in readable
