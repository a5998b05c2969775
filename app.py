"""The CDK app: `make synth` (`uv run python app.py`) and `cdk synth|deploy` run this."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# The toolchain pins Node 20, which jsii flags as deprecated/end-of-life; keep synth readable.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.stack import PayplatStack

ROOT = Path(__file__).resolve().parent
STACK_ID = "Payplat"


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's feature flags, so `python app.py` synthesizes what `cdk synth` does."""
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


def build_app(
    context: Mapping[str, Any] | None = None, outdir: str | None = None
) -> tuple[cdk.App, PayplatStack]:
    """The app with the stack and cdk-nag AwsSolutions checks (tests call this too)."""
    app = cdk.App(
        context={**cdk_json_context(), **(context or {})},
        # The CLI passes CDK_OUTDIR; run directly, write where `cdk` would.
        outdir=outdir or os.environ.get("CDK_OUTDIR") or str(ROOT / "cdk.out"),
    )
    stack = PayplatStack(
        app,
        STACK_ID,
        description="payplat: OAuth 2.0 and payments API platform",
        # Unset without the CLI/credentials: an environment-agnostic template.
        env=cdk.Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION"),
        ),
    )
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return app, stack


if __name__ == "__main__":
    build_app()[0].synth()
