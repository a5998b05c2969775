"""The SDK's dataclasses against the server's response models: the SDK cannot import the
server (it installs alone), so its objects are written out a second time, and this test keeps
the two copies equal — a field the server adds or renames fails here, not in a partner's
integration."""

from __future__ import annotations

import dataclasses

import payplat_sdk.models as sdk
import pytest
from pydantic import BaseModel

from payplat.payments import models as payments
from payplat.webhooks import models as webhooks

# What every SDK object carries for itself, not read from the body.
SDK_ONLY = {"raw", "last_response"}
PAIRS = [
    (payments.Balance, sdk.Balance),
    (payments.Account, sdk.Account),
    (payments.LedgerEntry, sdk.LedgerEntry),
    (payments.Payment, sdk.Payment),
    (payments.Refund, sdk.Refund),
    (webhooks.WebhookEndpointWithSecret, sdk.WebhookEndpoint),  # secret: create and roll
    (webhooks.Event, sdk.Event),
    (webhooks.EventRedelivery, sdk.Redelivery),
    (webhooks.DeletedWebhookEndpoint, sdk.Deleted),
]


@pytest.mark.parametrize(("server", "client"), PAIRS, ids=[s.__name__ for s, _ in PAIRS])
def test_the_sdk_object_has_the_server_models_fields(
    server: type[BaseModel], client: type[object]
) -> None:
    fields = {f.name for f in dataclasses.fields(client)} - SDK_ONLY  # type: ignore[arg-type]
    assert fields == set(server.model_fields)


def test_every_server_response_model_has_an_sdk_object() -> None:
    paired = {server for server, _ in PAIRS}
    inner = {webhooks.EventData, webhooks.WebhookEndpoint}  # read as dict / the secret's twin
    assert set(payments.RESPONSE_MODELS + webhooks.RESPONSE_MODELS) - paired <= inner
