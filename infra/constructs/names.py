"""Names, sizes and limits of the deployed pieces, in one place.

Environment-variable keys live in `payplat.config.Env` and resource shapes in
`infra.resources`; this module holds only what the CDK code alone decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from payplat.routes import ROUTES_BY_NAME, Function

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO_ROOT / "functions"
CORE_LAYER_DIR = REPO_ROOT / "layers" / "core"
UV_LOCK = REPO_ROOT / "uv.lock"

# Never ship bytecode from the build machine: it is for the wrong interpreter.
ASSET_EXCLUDES = ("**/__pycache__", "**/*.pyc")

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
HANDLER = "handler.lambda_handler"

SERVICE_NAME = "payplat"
METRICS_NAMESPACE = "Payplat"
LOG_LEVEL = "INFO"
LOG_RETENTION = logs.RetentionDays.ONE_YEAR

# The stage is part of the issuer URL, so it is a constant, never read back from the stage.
STAGE_NAME = "live"
JWKS_PATH = ROUTES_BY_NAME["jwks"].path
ACCESS_TOKEN_TTL_S = 600
# Explicit (it is also OAuthSettings' default) so the template shows what partners get.
REFRESH_TOKEN_TTL_S = 14 * 86_400

AUTHORIZER_CACHE_TTL_S = 300  # DESIGN: policy cached <= 300 s
STAGE_THROTTLE_RATE_RPS = 100
STAGE_THROTTLE_BURST = 200
WAF_RATE_LIMIT_PER_IP = 2000  # requests per WAF_RATE_WINDOW_S from one IP
WAF_RATE_WINDOW_S = 300

# Authorizations expire on a 7-day deadline: a quarter-hour sweep releases held funds at most
# 15 minutes late, and one run (EXPIRER.timeout_s) ends long before the next one starts.
EXPIRY_SWEEP_RATE_MIN = 15


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """One Lambda function: its folder under functions/ and its size."""

    name: str
    description: str
    memory_mb: int = 512
    timeout_s: int = 10
    # Logs through the standard library only (no Powertools): Lambda's JSON log format makes
    # its lines structured and filters them at LOG_LEVEL. Lines written straight to stdout
    # (audit records, EMF) stay as they are, so the audit subscription still matches them.
    lambda_json_logs: bool = False

    @property
    def code_dir(self) -> Path:
        return FUNCTIONS_DIR / self.name


AUTHORIZER = FunctionSpec(
    "authorizer",
    "Validates ES256 access tokens and returns a scope-wide policy",
    memory_mb=256,
    timeout_s=5,
    lambda_json_logs=True,
)
OAUTH = FunctionSpec(
    Function.OAUTH,
    "OAuth 2.0 authorization server: token, authorize, introspect, revoke, registration, "
    "metadata, JWKS",
)
PAYMENTS = FunctionSpec(Function.PAYMENTS, "Payments resource API behind the authorizer")
EXPIRER = FunctionSpec(
    "expirer",
    "Releases uncaptured authorizations past their capture deadline (scheduled)",
    memory_mb=256,
    # A sweep stops itself 10 s before the timeout; whatever is left waits for the next run.
    timeout_s=300,
)
