"""What pages on-call, through an SNS topic of its own: the API's 5xx rate, spikes of refused
credentials and of throttling, the audit pipeline (forwarder and sealer lag and errors, their
DLQs, the log subscriptions, the archive's delivery) and the webhook dispatcher (lag, errors,
DLQs). An alarm on payplat's own metrics queries the catalogue (`infra.constructs.metric_queries`).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.constructs.metric_queries import (
    FIREHOSE_FRESHNESS,
    FIREHOSE_SUCCESS,
    LAMBDA_ITERATOR_AGE,
    Watched,
    firehose_metric,
    insights_sum,
    subscription_delivery_errors,
)
from infra.constructs.names import (
    ALARM_PERIOD_S,
    API_5XX_MIN_REQUESTS,
    API_5XX_RATE_PERCENT,
    ARCHIVE_FRESHNESS_S,
    AUDIT_LAG_S,
    AUTH_FAILURES_PER_PERIOD,
    PLATFORM_DASHBOARD_NAME,
    RATE_LIMITED_PER_PERIOD,
    SERVICE_NAME,
    WEBHOOK_LAG_S,
)
from payplat.audit.metrics import ACCESS_DENIED, RATE_LIMITED, MetricSpec

_ALARM_PERIOD = Duration.seconds(ALARM_PERIOD_S)


class Alarms:
    """The alarm topic and every alarm, each with the topic as its alarm and OK action.

    Made in `scope`, the Monitoring construct: see there why not in a construct of its own.
    """

    def __init__(self, scope: Construct, watched: Watched) -> None:
        self._scope = scope
        self._watched = watched
        self.topic = self._build_topic()
        self.alarms = self._build_alarms()

    def _build_topic(self) -> sns.Topic:
        # A key of ours: CloudWatch cannot publish to a topic under the aws/sns key, whose
        # policy no one can extend to the CloudWatch service.
        key = kms.Key(
            self._scope,
            "AlarmTopicKey",
            description="payplat alarm topic encryption",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        return sns.Topic(
            self._scope,
            "AlarmTopic",
            display_name="payplat alarms",
            master_key=key,
            enforce_ssl=True,
        )

    def _build_alarms(self) -> list[cloudwatch.Alarm]:
        action = actions.SnsAction(self.topic)
        alarms = [
            self._api_5xx_rate(),
            self._alarm(
                "AuthFailureSpike",
                "auth-failure-spike",
                self._insights(ACCESS_DENIED, "access denied"),
                threshold=AUTH_FAILURES_PER_PERIOD,
                description=(
                    f"More than {AUTH_FAILURES_PER_PERIOD} access-denied decisions (401/403, "
                    "every reason) in 5 minutes: token guessing, a leaked or revoked token in "
                    "use, or a partner whose tokens broke. See AccessDenied by reason on "
                    f"{PLATFORM_DASHBOARD_NAME}."
                ),
            ),
            self._alarm(
                "ThrottleSpike",
                "throttle-spike",
                self._insights(RATE_LIMITED, "rate limited"),
                threshold=RATE_LIMITED_PER_PERIOD,
                description=(
                    f"More than {RATE_LIMITED_PER_PERIOD} requests refused by the rate limiter "
                    "(429) in 5 minutes: a client ignoring Retry-After or a plan set too low. "
                    f"See RateLimited by limit and top partners on {PLATFORM_DASHBOARD_NAME}."
                ),
            ),
        ]
        for name, function in (
            ("Forwarder", self._watched.forwarder),
            ("Sealer", self._watched.sealer),
        ):
            slug = name.lower()
            alarms.append(
                self._alarm(
                    f"{name}Lag",
                    f"audit-{slug}-lag",
                    function.metric(LAMBDA_ITERATOR_AGE, statistic="Maximum", period=_ALARM_PERIOD),
                    threshold=AUDIT_LAG_S * 1000,
                    description=(
                        f"The audit {slug} is more than {AUDIT_LAG_S // 60} minutes behind its "
                        "stream (IteratorAge): it is failing or throttled, and the audit trail "
                        "is not being "
                        + ("forwarded" if name == "Forwarder" else "sealed")
                        + ". Check its errors and logs."
                    ),
                )
            )
            alarms.append(
                self._alarm(
                    f"{name}Errors",
                    f"audit-{slug}-errors",
                    function.metric_errors(statistic="Sum", period=_ALARM_PERIOD),
                    threshold=0,
                    description=(
                        f"The audit {slug} failed a batch (Errors > 0): it is retried, but a "
                        "batch that keeps failing ends in the DLQ. Check its logs."
                    ),
                )
            )
        for name, queue in self._watched.dlqs.items():
            alarms.append(
                self._alarm(
                    f"{name.capitalize()}DlqNotEmpty",
                    f"audit-{name}-dlq-not-empty",
                    queue.metric_approximate_number_of_messages_visible(
                        statistic="Maximum", period=_ALARM_PERIOD
                    ),
                    threshold=0,
                    description=(
                        f"The audit {name}'s on-failure queue holds a batch it gave up on: "
                        "those records are NOT in the audit trail yet. The message names the "
                        "shard and sequence range; replay them before the stream expires them."
                    ),
                    # An idle queue stops reporting after a few hours: a message still waiting
                    # must keep the alarm raised, so missing data keeps the current state.
                    missing=cloudwatch.TreatMissingData.IGNORE,
                )
            )
        alarms += self._webhook_alarms()
        alarms.append(
            self._alarm(
                "AuditSubscriptionErrors",
                "audit-subscription-errors",
                cloudwatch.MathExpression(
                    expression=subscription_delivery_errors(),
                    using_metrics={},
                    label="audit lines not delivered",
                    period=_ALARM_PERIOD,
                ),
                threshold=0,
                description=(
                    "CloudWatch Logs could not deliver audit lines to the audit stream "
                    "(DeliveryErrors > 0 on a payplat-audit subscription): access decisions "
                    "and credential changes are not reaching the trail. Logs retries for up "
                    "to 24 hours; check the stream (throttling, KMS) and the subscription role."
                ),
            )
        )
        alarms.append(
            self._alarm(
                "ArchiveFreshness",
                "audit-archive-freshness",
                firehose_metric(
                    self._watched.delivery_stream_name, FIREHOSE_FRESHNESS, "Maximum", _ALARM_PERIOD
                ),
                threshold=ARCHIVE_FRESHNESS_S,
                description=(
                    f"The oldest audit record not yet in the archive is over "
                    f"{ARCHIVE_FRESHNESS_S // 60} minutes old: Firehose cannot write to S3 "
                    "(permissions, KMS, Object Lock). See its error logs."
                ),
            )
        )
        alarms.append(
            self._alarm(
                "ArchiveDeliveryFailures",
                "audit-archive-delivery-failures",
                firehose_metric(
                    self._watched.delivery_stream_name, FIREHOSE_SUCCESS, "Minimum", _ALARM_PERIOD
                ),
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                description=(
                    "A Firehose delivery to the audit archive failed (DeliveryToS3.Success < 1): "
                    "Firehose retries, then writes the records under the errors/ prefix."
                ),
            )
        )
        for alarm in alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        return alarms

    def _webhook_alarms(self) -> list[cloudwatch.Alarm]:
        dispatcher = self._watched.webhook_dispatcher
        alarms = [
            self._alarm(
                "WebhookDispatcherLag",
                "webhook-dispatcher-lag",
                dispatcher.metric(LAMBDA_ITERATOR_AGE, statistic="Maximum", period=_ALARM_PERIOD),
                threshold=WEBHOOK_LAG_S * 1000,
                description=(
                    f"The webhook dispatcher is more than {WEBHOOK_LAG_S // 60} minutes behind "
                    "the audit stream (IteratorAge): partners' webhooks are late. Check its "
                    "errors and logs."
                ),
            ),
            self._alarm(
                "WebhookDispatcherErrors",
                "webhook-dispatcher-errors",
                dispatcher.metric_errors(statistic="Sum", period=_ALARM_PERIOD),
                threshold=0,
                description=(
                    "The webhook dispatcher failed an invocation (Errors > 0): a table or "
                    "queue it needs was unreachable. A partner's failing endpoint is not an "
                    "error. Check its logs."
                ),
            ),
        ]
        meaning = {
            "deliveries": (
                "a webhook delivery was given up on after three days of failed attempts (or "
                "a delivery message kept failing in the dispatcher). The message names the "
                "delivery, event and endpoint; the partner can redeliver the event with "
                "POST /v1/events/{id}/redeliver once their endpoint answers"
            ),
            "events": (
                "an audit-stream batch the webhook dispatcher could not make events of: those "
                "money movements have NO webhook events yet. The message names the shard and "
                "sequence range; replay them before the stream expires them"
            ),
        }
        for name, queue in self._watched.webhook_dlqs.items():
            alarms.append(
                self._alarm(
                    f"Webhook{name.capitalize()}DlqNotEmpty",
                    f"webhook-{name}-dlq-not-empty",
                    queue.metric_approximate_number_of_messages_visible(
                        statistic="Maximum", period=_ALARM_PERIOD
                    ),
                    threshold=0,
                    description=f"The webhook {name} DLQ holds a message: {meaning[name]}.",
                    # A message still waiting must keep the alarm raised (see the audit DLQs).
                    missing=cloudwatch.TreatMissingData.IGNORE,
                )
            )
        return alarms

    def _api_5xx_rate(self) -> cloudwatch.Alarm:
        rate = cloudwatch.MathExpression(
            expression=(f"IF(requests >= {API_5XX_MIN_REQUESTS}, 100 * errors / requests, 0)"),
            using_metrics={
                "errors": self._watched.stage.metric_server_error(
                    statistic="Sum", period=_ALARM_PERIOD
                ),
                "requests": self._watched.stage.metric_count(statistic="Sum", period=_ALARM_PERIOD),
            },
            label="5xx % of requests",
            period=_ALARM_PERIOD,
        )
        return self._alarm(
            "Api5xxRate",
            "api-5xx-rate",
            rate,
            threshold=API_5XX_RATE_PERCENT,
            description=(
                f"More than {API_5XX_RATE_PERCENT}% of the API's requests answered 5xx in 5 "
                f"minutes (periods under {API_5XX_MIN_REQUESTS} requests are not judged). See "
                f"errors by route on {PLATFORM_DASHBOARD_NAME}."
            ),
        )

    def _alarm(
        self,
        construct_id: str,
        name: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        comparison: cloudwatch.ComparisonOperator = (
            cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
        ),
        # No data means nothing happened (no traffic, no batch, no delivery): all is well.
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self._scope,
            construct_id,
            alarm_name=f"{SERVICE_NAME}-{name}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=1,
            treat_missing_data=missing,
        )

    @staticmethod
    def _insights(spec: MetricSpec, label: str) -> cloudwatch.MathExpression:
        return cloudwatch.MathExpression(
            expression=insights_sum(spec), using_metrics={}, label=label, period=_ALARM_PERIOD
        )
