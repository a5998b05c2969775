"""Typed settings, read from environment variables once at cold start.

The environment variable names are defined here and nowhere else: the CDK constructs and the
local runner import them to set what the functions read.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field


class Env:
    """Environment variable keys shared by the functions, the CDK app and the local runner."""

    ISSUER = "PAYPLAT_ISSUER"
    AUDIENCE = "PAYPLAT_AUDIENCE"
    JWKS_URI = "PAYPLAT_JWKS_URI"
    SIGNING_KEY_ID = "PAYPLAT_SIGNING_KEY_ID"
    CLIENTS_TABLE = "PAYPLAT_CLIENTS_TABLE"
    TOKENS_TABLE = "PAYPLAT_TOKENS_TABLE"
    RATE_LIMITS_TABLE = "PAYPLAT_RATE_LIMITS_TABLE"
    LEDGER_TABLE = "PAYPLAT_LEDGER_TABLE"
    AUDIT_STREAM = "PAYPLAT_AUDIT_STREAM"
    ACCESS_TOKEN_TTL_S = "PAYPLAT_ACCESS_TOKEN_TTL_S"
    LOCAL_MODE = "PAYPLAT_LOCAL"


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class TokenSettings(_Settings):
    """What both the issuer and the validator of access tokens must agree on."""

    issuer: str = Field(alias=Env.ISSUER, min_length=1)
    audience: str = Field(alias=Env.AUDIENCE, min_length=1)


class AuthorizerSettings(TokenSettings):
    jwks_uri: str = Field(alias=Env.JWKS_URI, min_length=1)


class OAuthSettings(TokenSettings):
    signing_key_id: str = Field(alias=Env.SIGNING_KEY_ID, min_length=1)
    clients_table: str = Field(alias=Env.CLIENTS_TABLE, min_length=1)
    access_token_ttl_s: int = Field(alias=Env.ACCESS_TOKEN_TTL_S, default=600, ge=60, le=3600)


class PaymentsSettings(_Settings):
    clients_table: str = Field(alias=Env.CLIENTS_TABLE, min_length=1)
    ledger_table: str = Field(alias=Env.LEDGER_TABLE, min_length=1)


S = TypeVar("S", bound=_Settings)


@cache
def load(settings: type[S]) -> S:
    """Validate the environment into `settings`; a missing variable fails the cold start."""
    return settings.model_validate(dict(os.environ))
