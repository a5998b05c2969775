"""What runs on a timer: EventBridge rules that invoke functions on a schedule."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.names import EXPIRY_SWEEP_RATE_MIN


class Schedules(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, expirer: lambda_.IFunction) -> None:
        super().__init__(scope, construct_id)
        self.expiry_sweep = self._build_expiry_sweep(expirer)

    def _build_expiry_sweep(self, expirer: lambda_.IFunction) -> events.Rule:
        sweep_interval = Duration.minutes(EXPIRY_SWEEP_RATE_MIN)
        return events.Rule(
            self,
            "ExpirySweep",
            description="Release uncaptured authorizations past their capture deadline",
            schedule=events.Schedule.rate(sweep_interval),
            targets=[
                # A sweep that could not be delivered in time is superseded by the next one:
                # each run looks for everything due, so nothing is lost by dropping it.
                targets.LambdaFunction(expirer, max_event_age=sweep_interval, retry_attempts=2)
            ],
        )
