"""Typed settings, read from environment variables once at cold start.

The environment variable names are defined here and nowhere else: the CDK constructs and the
local runner import them to set what the functions read. Settings are frozen dataclasses
validated by `load` (not pydantic: the authorizer's cold start must stay small, and this is
all a settings object needs).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar


class Env:
    """Environment variable keys shared by the functions, the CDK app and the local runner."""

    ISSUER = "PAYPLAT_ISSUER"
    AUDIENCE = "PAYPLAT_AUDIENCE"
    JWKS_URI = "PAYPLAT_JWKS_URI"
    SIGNING_KEY_ID = "PAYPLAT_SIGNING_KEY_ID"
    CLIENTS_TABLE = "PAYPLAT_CLIENTS_TABLE"
    TOKENS_TABLE = "PAYPLAT_TOKENS_TABLE"
    USERS_TABLE = "PAYPLAT_USERS_TABLE"
    RATE_LIMITS_TABLE = "PAYPLAT_RATE_LIMITS_TABLE"
    LEDGER_TABLE = "PAYPLAT_LEDGER_TABLE"
    AUDIT_STREAM = "PAYPLAT_AUDIT_STREAM"
    AUDIT_TABLE = "PAYPLAT_AUDIT_TABLE"  # the seal chain's heads
    AUDIT_ARCHIVE_BUCKET = "PAYPLAT_AUDIT_ARCHIVE_BUCKET"
    AUDIT_SEALING_KEY_ID = "PAYPLAT_AUDIT_SEALING_KEY_ID"
    ACCESS_TOKEN_TTL_S = "PAYPLAT_ACCESS_TOKEN_TTL_S"
    REFRESH_TOKEN_TTL_S = "PAYPLAT_REFRESH_TOKEN_TTL_S"
    CONFIG_CACHE_TTL_S = "PAYPLAT_CONFIG_CACHE_TTL_S"
    JWKS_MIN_REFRESH_S = "PAYPLAT_JWKS_MIN_REFRESH_S"
    LOCAL_MODE = "PAYPLAT_LOCAL"
    FAPI = "PAYPLAT_FAPI"  # the FAPI 2.0 Security Profile for the whole server
    DPOP_NONCE = "PAYPLAT_DPOP_NONCE"  # RFC 9449 §8-9: DPoP proofs must carry a nonce
    REQUIRE_PAR = "PAYPLAT_REQUIRE_PAR"  # RFC 9126 §5: pushed authorization requests only
    WEBHOOKS_TABLE = "PAYPLAT_WEBHOOKS_TABLE"
    WEBHOOK_QUEUE_URL = "PAYPLAT_WEBHOOK_QUEUE_URL"  # deliveries waiting for their attempt
    WEBHOOK_DLQ_URL = "PAYPLAT_WEBHOOK_DLQ_URL"  # deliveries given up on
    WEBHOOK_RETRY_BASE_S = "PAYPLAT_WEBHOOK_RETRY_BASE_S"
    WEBHOOK_RETRY_CAP_S = "PAYPLAT_WEBHOOK_RETRY_CAP_S"


class SettingsError(ValueError):
    """The environment does not describe a valid configuration: the cold start fails."""


def setting(
    env: str, *, default: Any = dataclasses.MISSING, low: int | None = None, high: int | None = None
) -> Any:
    return field(default=default, metadata={"env": env, "low": low, "high": high})


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """What both the issuer and the validator of access tokens must agree on."""

    issuer: str = setting(Env.ISSUER)
    audience: str = setting(Env.AUDIENCE)


@dataclass(frozen=True, slots=True)
class AuthorizerSettings(TokenSettings):
    jwks_uri: str = setting(Env.JWKS_URI)
    # How soon a token with an unknown kid may trigger another JWKS fetch.
    jwks_min_refresh_s: int = setting(Env.JWKS_MIN_REFRESH_S, default=60, low=1, high=3600)


@dataclass(frozen=True, slots=True)
class OAuthSettings(TokenSettings):
    signing_key_id: str = setting(Env.SIGNING_KEY_ID)  # until the first `payplat keys rotate`
    clients_table: str = setting(Env.CLIENTS_TABLE)
    users_table: str = setting(Env.USERS_TABLE)
    tokens_table: str = setting(Env.TOKENS_TABLE)
    rate_limits_table: str = setting(Env.RATE_LIMITS_TABLE)
    ledger_table: str = setting(Env.LEDGER_TABLE)  # read only: the consent page's accounts
    # At most an hour: key rotation and revocation records are sized by this bound.
    access_token_ttl_s: int = setting(Env.ACCESS_TOKEN_TTL_S, default=600, low=60, high=3600)
    refresh_token_ttl_s: int = setting(
        Env.REFRESH_TOKEN_TTL_S, default=14 * 86_400, low=3_600, high=90 * 86_400
    )
    config_cache_ttl_s: int = setting(Env.CONFIG_CACHE_TTL_S, default=30, low=0, high=3600)
    # Local mode: loopback (http) redirect URIs may be registered; never set in AWS.
    local: str = setting(Env.LOCAL_MODE, default="")
    # Every client must push its authorization requests (RFC 9126), not only those
    # registered with require_pushed_authorization_requests.
    require_par: bool = setting(Env.REQUIRE_PAR, default=False)
    # DPoP proofs must carry a server nonce (RFC 9449 §8): at the token endpoint here.
    dpop_nonce: bool = setting(Env.DPOP_NONCE, default=False)
    # The FAPI 2.0 Security Profile (payplat.oauth.fapi): PAR, private_key_jwt, DPoP only.
    fapi: bool = setting(Env.FAPI, default=False)


@dataclass(frozen=True, slots=True)
class PaymentsSettings:
    clients_table: str = setting(Env.CLIENTS_TABLE)
    ledger_table: str = setting(Env.LEDGER_TABLE)
    rate_limits_table: str = setting(Env.RATE_LIMITS_TABLE)
    config_cache_ttl_s: int = setting(Env.CONFIG_CACHE_TTL_S, default=30, low=0, high=3600)
    # The webhook routes: endpoints and events live in the webhooks table; a redelivery is
    # queued for the dispatcher. Empty only where the routes are not served.
    webhooks_table: str = setting(Env.WEBHOOKS_TABLE, default="")
    webhook_queue_url: str = setting(Env.WEBHOOK_QUEUE_URL, default="")
    # Local mode: webhook URLs may be http on loopback; never set in AWS.
    local: str = setting(Env.LOCAL_MODE, default="")
    # DPoP proofs must carry a server nonce (RFC 9449 §9): at the resource routes here.
    dpop_nonce: bool = setting(Env.DPOP_NONCE, default=False)
    # FAPI 2.0: the resource routes take sender-constrained (DPoP-bound) tokens only.
    fapi: bool = setting(Env.FAPI, default=False)


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """λ webhook_dispatcher: audit events in (events made, deliveries queued), deliveries
    out (signed POSTs, retried through the delivery queue, parked in its DLQ)."""

    webhooks_table: str = setting(Env.WEBHOOKS_TABLE)
    ledger_table: str = setting(Env.LEDGER_TABLE)  # read only: the objects events carry
    queue_url: str = setting(Env.WEBHOOK_QUEUE_URL)
    dlq_url: str = setting(Env.WEBHOOK_DLQ_URL)
    # Full-jitter exponential backoff: attempt n waits up to min(cap, base * 2**(n-1)).
    retry_base_s: int = setting(Env.WEBHOOK_RETRY_BASE_S, default=30, low=1, high=3600)
    retry_cap_s: int = setting(Env.WEBHOOK_RETRY_CAP_S, default=6 * 3600, low=1, high=86_400)
    # Local mode: deliveries may go to http on loopback; never set in AWS.
    local: str = setting(Env.LOCAL_MODE, default="")


@dataclass(frozen=True, slots=True)
class ForwarderSettings:
    """λ audit_forwarder: the ledger table's stream in, the audit stream out."""

    audit_stream: str = setting(Env.AUDIT_STREAM)


@dataclass(frozen=True, slots=True)
class SealerSettings:
    """λ audit_sealer: the audit stream in, signed hash-chained seals into the archive."""

    audit_table: str = setting(Env.AUDIT_TABLE)
    archive_bucket: str = setting(Env.AUDIT_ARCHIVE_BUCKET)
    sealing_key_id: str = setting(Env.AUDIT_SEALING_KEY_ID)


@dataclass(frozen=True, slots=True)
class ExpirerSettings:
    ledger_table: str = setting(Env.LEDGER_TABLE)


@dataclass(frozen=True, slots=True)
class OperatorSettings:
    """The `payplat` CLI: every table, and the key the deployment was configured with."""

    clients_table: str = setting(Env.CLIENTS_TABLE)
    users_table: str = setting(Env.USERS_TABLE)
    tokens_table: str = setting(Env.TOKENS_TABLE)
    rate_limits_table: str = setting(Env.RATE_LIMITS_TABLE)
    ledger_table: str = setting(Env.LEDGER_TABLE)
    # The deployment's key: needed by `keys` commands until the first rotation records it.
    signing_key_id: str = setting(Env.SIGNING_KEY_ID, default="")
    # Only to show registration URIs; the CLI works without it.
    issuer: str = setting(Env.ISSUER, default="")
    # `payplat audit`: the stream it tails, the archive it verifies.
    audit_stream: str = setting(Env.AUDIT_STREAM, default="")
    audit_archive_bucket: str = setting(Env.AUDIT_ARCHIVE_BUCKET, default="")


S = TypeVar("S")


def from_mapping(settings: type[S], environ: Mapping[str, str]) -> S:
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(settings):  # type: ignore[arg-type]
        name = spec.metadata["env"]
        raw = environ.get(name)
        if raw is None or raw == "":
            if spec.default is dataclasses.MISSING:
                raise SettingsError(f"{name} is required")
            continue
        values[spec.name] = _convert(name, raw, spec.type, spec.metadata)
    return settings(**values)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _convert(name: str, raw: str, kind: Any, metadata: Mapping[str, Any]) -> Any:
    if kind in (bool, "bool"):
        if raw.strip().lower() not in _TRUE | _FALSE:
            raise SettingsError(f"{name} must be true or false")
        return raw.strip().lower() in _TRUE
    if kind in (int, "int"):
        try:
            number = int(raw)
        except ValueError as exc:
            raise SettingsError(f"{name} must be an integer") from exc
        low, high = metadata["low"], metadata["high"]
        if (low is not None and number < low) or (high is not None and number > high):
            raise SettingsError(f"{name} must be between {low} and {high}")
        return number
    return raw


def load(settings: type[S]) -> S:
    """Validate the environment into `settings`; a missing variable fails the cold start.
    (Called once per cold start, at module import: no cache to go stale.)"""
    return from_mapping(settings, os.environ)
