"""CDK tests synthesize the app once per session: no Docker, no network, no AWS account.

Bundling is skipped (`aws:cdk:bundling-stacks: []`), so the core layer's asset is its source
folder; everything else is the template `make synth` produces, with cdk-nag applied.
"""

from __future__ import annotations

import os

# Before aws_cdk is imported: jsii reads these when it starts its Node process.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import pytest
from aws_cdk.assertions import Template

from app import build_app
from tests.infra.synthesized import Synthesized


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    _, stack = build_app(
        context={"aws:cdk:bundling-stacks": []},
        outdir=str(tmp_path_factory.mktemp("cdk.out")),
    )
    template = Template.from_stack(stack)
    return Synthesized(stack=stack, template=template, json=template.to_json())
