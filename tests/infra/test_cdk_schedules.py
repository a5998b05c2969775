"""What runs on a timer: the authorization expiry sweep."""

from __future__ import annotations

import json

from infra.constructs.names import EXPIRER, EXPIRY_SWEEP_RATE_MIN
from tests.infra.synthesized import Json, Synthesized

# functions/expirer/handler.py STOP_BEFORE_TIMEOUT_MS (importing the handler loads its env)
SWEEP_MARGIN_S = 10


def _expirer_arn(synth: Synthesized) -> Json:
    return {"Fn::GetAtt": [synth.logical_id(synth.stack.functions.expirer.function), "Arn"]}


def test_the_expiry_sweep_runs_the_expirer_every_15_minutes(synth: Synthesized) -> None:
    # Given the expiry sweep's rule
    rule = synth.properties(synth.stack.schedules.expiry_sweep)

    # Then it is an enabled rate schedule of 15 minutes with the expirer as its only target
    assert rule["ScheduleExpression"] == "rate(15 minutes)"
    assert EXPIRY_SWEEP_RATE_MIN == 15
    assert rule["State"] == "ENABLED"
    [target] = rule["Targets"]
    assert target["Arn"] == _expirer_arn(synth)
    # And an undeliverable sweep is dropped once the next one is due (it would find the same)
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == EXPIRY_SWEEP_RATE_MIN * 60


def test_only_the_sweep_rule_may_invoke_the_expirer(synth: Synthesized) -> None:
    # Given the permissions on the expirer
    rule_arn = {"Fn::GetAtt": [synth.logical_id(synth.stack.schedules.expiry_sweep), "Arn"]}
    permissions = [
        permission["Properties"]
        for permission in synth.of_type("AWS::Lambda::Permission").values()
        if permission["Properties"]["FunctionName"] == _expirer_arn(synth)
    ]

    # Then EventBridge may invoke it for this rule only, and nothing else may
    assert permissions == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": _expirer_arn(synth),
            "Principal": "events.amazonaws.com",
            "SourceArn": rule_arn,
        }
    ]


def test_no_route_reaches_the_expirer(synth: Synthesized) -> None:
    # Given every API method's integration
    expirer = synth.logical_id(synth.stack.functions.expirer.function)
    methods = synth.of_type("AWS::ApiGateway::Method").values()

    # Then none of them invokes the expirer
    assert not [m for m in methods if expirer in json.dumps(m["Properties"].get("Integration"))]


def test_a_sweep_ends_before_the_next_begins_and_leaves_time_to_report() -> None:
    # Given the expirer's timeout
    timeout_s = EXPIRER.timeout_s

    # Then a sweep has a minute or more to work after its margin, and ends before the next
    assert timeout_s - SWEEP_MARGIN_S >= 60
    assert timeout_s < EXPIRY_SWEEP_RATE_MIN * 60
