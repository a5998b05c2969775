"""Integration tests: the real handlers and dal against moto, in process.

moto is started once for the module tree, the resources are created by the same
`provision()` that `make run` uses, and the function modules are imported after the
environment is set (as a Lambda cold start would read it).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.local.atomic_dynamodb import make_dynamodb_atomic
from infra.local.provision import provision
from infra.local.seed import Seeded, seed
from payplat.clients.dal.clients_table import DynamoClientStore
from payplat.config import Env
from payplat.oauth.dal.users_table import DynamoUserStore
from payplat.payments.dal.ledger_table import DynamoLedgerStore

ISSUER = "https://api.payplat.test/live"
AUDIENCE = f"{ISSUER}/v1"


@pytest.fixture(scope="package")
def aws() -> Iterator[dict[str, str]]:
    saved = dict(os.environ)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "POWERTOOLS_TRACE_DISABLED": "1",
            Env.ISSUER: ISSUER,
            Env.AUDIENCE: AUDIENCE,
            Env.JWKS_URI: f"{ISSUER}/.well-known/jwks.json",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    make_dynamodb_atomic()
    with mock_aws():
        names = provision()
        os.environ.update(names)
        yield names
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="package")
def seeded(aws: dict[str, str]) -> dict[str, Any]:
    """The seeded clients by label (the users are in `seeded_users`)."""
    return seeded_platform(aws).clients


@pytest.fixture(scope="package")
def seeded_users(aws: dict[str, str]) -> dict[str, dict[str, str]]:
    return seeded_platform(aws).users


_SEEDED: dict[str, Seeded] = {}


def seeded_platform(aws: dict[str, str]) -> Seeded:
    """Seed once per moto instance (both fixtures share it)."""
    key = aws[Env.CLIENTS_TABLE]
    if key not in _SEEDED:
        _SEEDED[key] = seed(
            DynamoClientStore(aws[Env.CLIENTS_TABLE]),
            DynamoLedgerStore(aws[Env.LEDGER_TABLE]),
            DynamoUserStore(aws[Env.USERS_TABLE]),
        )
    return _SEEDED[key]


@pytest.fixture(scope="package")
def oauth_handler(aws: dict[str, str]) -> ModuleType:
    return importlib.import_module("functions.oauth.handler")


@pytest.fixture(scope="package")
def payments_handler(aws: dict[str, str]) -> ModuleType:
    return importlib.import_module("functions.payments.handler")


@pytest.fixture(scope="package")
def ledger_table(aws: dict[str, str]) -> Any:
    return boto3.resource("dynamodb").Table(aws[Env.LEDGER_TABLE])
