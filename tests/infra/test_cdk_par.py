"""The deployment switches from the CDK context: the oauth function's PAYPLAT_REQUIRE_PAR
(`requirePar`, RFC 9126: every client must push its authorization requests) with the PAR
route, and PAYPLAT_DPOP_NONCE (`dpopNonce`, RFC 9449 §8-9) on both servers."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from constructs import Construct

from infra.constructs.functions import Functions
from infra.constructs.names import DPOP_NONCE_CONTEXT, REQUIRE_PAR_CONTEXT
from payplat.config import Env
from tests.infra.synthesized import Synthesized


def test_par_is_not_required_by_default(synth: Synthesized) -> None:
    variables = synth.properties(synth.stack.functions.oauth.function)["Environment"]["Variables"]
    assert variables[Env.REQUIRE_PAR] == "false"
    # Only the authorization server reads it
    payments = synth.properties(synth.stack.functions.payments.function)["Environment"]
    assert Env.REQUIRE_PAR not in payments["Variables"]


def test_the_par_route_is_a_public_post_on_the_oauth_function(synth: Synthesized) -> None:
    methods = [
        method["Properties"]
        for method in synth.of_type("AWS::ApiGateway::Method").values()
        if method["Properties"].get("OperationName") == "par"
    ]
    [method] = methods
    assert method["HttpMethod"] == "POST"
    assert method["AuthorizationType"] == "NONE"
    uri = str(method["Integration"]["Uri"])
    assert synth.logical_id(synth.stack.functions.oauth.function) in uri


def _required(context: Any) -> bool:
    app = cdk.App(context={} if context is None else {REQUIRE_PAR_CONTEXT: context})
    scope = Construct(cdk.Stack(app, "S"), "Functions")
    # Only the construct's node (its context) is read.
    return Functions._context_flag(scope, REQUIRE_PAR_CONTEXT) == "true"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("context", "expected"),
    [(None, False), (False, False), (True, True), ("true", True), ("false", False)],
)
def test_the_context_value_sets_it(context: Any, expected: bool) -> None:
    assert _required(context) is expected


def test_a_context_value_that_is_not_a_boolean_fails_the_synth() -> None:
    with pytest.raises(ValueError, match=REQUIRE_PAR_CONTEXT):
        _required("sometimes")


def test_dpop_nonces_are_off_by_default_on_both_servers(synth: Synthesized) -> None:
    """`dpopNonce` reaches the authorization server and the resource server alike (the
    token endpoint and the gate each ask for their own nonces)."""
    for function in (synth.stack.functions.oauth, synth.stack.functions.payments):
        variables = synth.properties(function.function)["Environment"]["Variables"]
        assert variables[Env.DPOP_NONCE] == "false"
        assert variables[Env.FAPI] == "false"
    app = cdk.App(context={DPOP_NONCE_CONTEXT: "true"})
    scope = Construct(cdk.Stack(app, "S"), "Functions")
    assert Functions._context_flag(scope, DPOP_NONCE_CONTEXT) == "true"  # type: ignore[arg-type]
