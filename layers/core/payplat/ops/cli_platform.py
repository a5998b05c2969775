"""The platform a `payplat` command works on: where it is (the PAYPLAT_* variables of a
deployed platform, or the .payplat/local.json of the one `make run` started), the stores on it,
and what a command answers (its exit status, the failures that end it)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from payplat.config import Env

if TYPE_CHECKING:
    from payplat.clients.dal.clients_table import DynamoClientStore
    from payplat.config import OperatorSettings
    from payplat.gateway.dal.rate_limit_table import DynamoBucketStore
    from payplat.gateway.revocation import Revoker
    from payplat.oauth.dal.kms_signer import KmsKeys
    from payplat.oauth.dal.tokens_table import DynamoTokenStore
    from payplat.oauth.dal.users_table import DynamoUserStore
    from payplat.payments.dal.ledger_table import DynamoLedgerStore

STATE_DIR = Path(os.environ.get("PAYPLAT_STATE_DIR", ".payplat"))
EXIT_FAILED = 1  # not found, or the operation failed
EXIT_BAD_INPUT = 2  # as argparse exits on a usage error
EXIT_INTERRUPTED = 130


class Failure(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def use_local_platform() -> bool:
    """Point boto3 and the PAYPLAT_* settings at the local platform unless configured already.
    True when it is the local platform (its loopback redirect URIs are allowed then)."""
    if os.environ.get(Env.CLIENTS_TABLE):
        return False
    path = STATE_DIR / "local.json"
    if not path.exists():
        raise Failure(
            f"no {Env.CLIENTS_TABLE} set and no {path}: start `make run` first"
            " (or set the PAYPLAT_* variables of a deployed platform)",
            EXIT_FAILED,
        )
    local = json.loads(path.read_text())
    os.environ.setdefault("AWS_ENDPOINT_URL", local["aws_endpoint_url"])
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for key, name in local["tables"].items():
        os.environ.setdefault(key, name)
    os.environ.setdefault(Env.AUDIT_STREAM, local["audit_stream"])
    # Absent from an older local.json: the settings then say what is missing.
    for key, value in (
        (Env.SIGNING_KEY_ID, "signing_key_id"),
        (Env.ISSUER, "base_url"),
        (Env.AUDIT_ARCHIVE_BUCKET, "audit_archive_bucket"),
    ):
        if local.get(value):
            os.environ.setdefault(key, local[value])
    return True


class Platform:
    """The stores, built on first use (so `plans list` creates no KMS client)."""

    def __init__(self, settings: OperatorSettings, local: bool) -> None:
        self.settings = settings
        self.local = local

    @cached_property
    def clients(self) -> DynamoClientStore:
        from payplat.clients.dal.clients_table import DynamoClientStore

        return DynamoClientStore(self.settings.clients_table)

    @cached_property
    def buckets(self) -> DynamoBucketStore:
        from payplat.gateway.dal.rate_limit_table import DynamoBucketStore

        return DynamoBucketStore(self.settings.rate_limits_table)

    @cached_property
    def users(self) -> DynamoUserStore:
        from payplat.oauth.dal.users_table import DynamoUserStore

        return DynamoUserStore(self.settings.users_table)

    @cached_property
    def tokens(self) -> DynamoTokenStore:
        from payplat.oauth.dal.tokens_table import DynamoTokenStore

        return DynamoTokenStore(self.settings.tokens_table)

    @cached_property
    def ledger(self) -> DynamoLedgerStore:
        from payplat.payments.dal.ledger_table import DynamoLedgerStore

        return DynamoLedgerStore(self.settings.ledger_table)

    @cached_property
    def kms(self) -> KmsKeys:
        from payplat.oauth.dal.kms_signer import KmsKeys

        return KmsKeys()

    @cached_property
    def revoker(self) -> Revoker:
        from payplat.gateway.revocation import Revoker

        return Revoker(self.clients, self.buckets, self.buckets, self.tokens)


@dataclass(frozen=True)
class Output:
    data: Any  # the --json document
    text: str  # what people read
    code: int = 0
    notice: str | None = None  # to stderr with --json, where `text` is not printed


Command = Callable[[argparse.Namespace, Platform, int], Output]
