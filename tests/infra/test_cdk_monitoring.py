"""What on-call and finance ops watch: every alarm and where it goes, both dashboards and what
they chart, and the Contributor Insights rules that rank partners."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.constructs.metric_queries import (
    insights_sum,
    metric_schema,
    subscription_delivery_errors,
)
from infra.constructs.names import (
    API_5XX_MIN_REQUESTS,
    API_5XX_RATE_PERCENT,
    ARCHIVE_FRESHNESS_S,
    AUDIT_LAG_S,
    AUTH_FAILURES_PER_PERIOD,
    FINANCE_DASHBOARD_NAME,
    PLATFORM_DASHBOARD_NAME,
    RATE_LIMITED_PER_PERIOD,
    TOP_PARTNERS_BY_REQUESTS_RULE,
    TOP_PARTNERS_BY_VOLUME_RULE,
)
from infra.resources import AUDIT_SUBSCRIPTION_NAME
from payplat.audit.metrics import (
    ACCESS_DENIED,
    AUDIT_EVENTS_FORWARDED,
    AUDIT_EVENTS_SEALED,
    AUTHORIZATION_EXPIRY_FAILURES,
    AUTHORIZATIONS_EXPIRED,
    BY_NAME,
    CATALOGUE,
    IDEMPOTENT_REPLAYS,
    LATENCY,
    LIMITER_UNAVAILABLE,
    LOGIN_FAILED,
    MONEY_MOVED,
    MONEY_MOVEMENTS,
    PENDING_CAPTURE_VALUE,
    PENDING_CAPTURES,
    RATE_LIMITED,
    REQUESTS,
    TOKEN_REUSE_DETECTED,
    TOKENS_ISSUED,
    TOKENS_REFUSED,
    TOKENS_REVOKED,
)
from payplat.routes import ROUTES
from tests.infra.synthesized import Json, Synthesized

FINANCE_METRICS = (
    MONEY_MOVEMENTS,
    MONEY_MOVED,
    PENDING_CAPTURES,
    PENDING_CAPTURE_VALUE,
    AUTHORIZATIONS_EXPIRED,
    AUTHORIZATION_EXPIRY_FAILURES,
)
PLATFORM_METRICS = (
    REQUESTS,
    LATENCY,
    ACCESS_DENIED,
    RATE_LIMITED,
    LIMITER_UNAVAILABLE,
    TOKENS_ISSUED,
    TOKENS_REFUSED,
    TOKENS_REVOKED,
    TOKEN_REUSE_DETECTED,
    LOGIN_FAILED,
    IDEMPOTENT_REPLAYS,
    AUDIT_EVENTS_FORWARDED,
    AUDIT_EVENTS_SEALED,
)
# SEARCH('{Payplat,service,kind,currency} MetricName="MoneyMovements" ...
_PAYPLAT_SEARCH = re.compile(r"SEARCH\('\{Payplat,([^}]*)\} MetricName=\"(\w+)\"")


def _render(value: Any) -> str:
    """A template string value as text: literal parts joined, every reference shown as
    `<LogicalId>` or `<LogicalId.Attribute>` (enough to find what a body names)."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_render(part) for part in parts)
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    raise AssertionError(f"cannot render {value}")


def _ref(synth: Synthesized, construct: Any, attribute: str | None = None) -> str:
    logical_id = synth.logical_id(construct)
    return f"<{logical_id}.{attribute}>" if attribute else f"<{logical_id}>"


def _dashboard(synth: Synthesized, name: str) -> Json:
    [dashboard] = [
        d["Properties"]
        for d in synth.of_type("AWS::CloudWatch::Dashboard").values()
        if d["Properties"].get("DashboardName") == name
    ]
    body: Json = json.loads(_render(dashboard["DashboardBody"]))
    return body


def _widgets(synth: Synthesized, name: str) -> list[Json]:
    widgets: list[Json] = _dashboard(synth, name)["widgets"]
    return widgets


def _text(synth: Synthesized, name: str) -> str:
    return json.dumps(_dashboard(synth, name))


def _alarms(synth: Synthesized) -> dict[str, Json]:
    """Alarm name -> properties."""
    return {
        alarm["Properties"]["AlarmName"]: alarm["Properties"]
        for alarm in synth.of_type("AWS::CloudWatch::Alarm").values()
    }


def _insight_rules(synth: Synthesized) -> dict[str, Json]:
    """Rule name -> rule body (references rendered)."""
    return {
        rule["Properties"]["RuleName"]: json.loads(_render(rule["Properties"]["RuleBody"]))
        for rule in synth.of_type("AWS::CloudWatch::InsightRule").values()
    }


# --- dashboards ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [FINANCE_DASHBOARD_NAME, PLATFORM_DASHBOARD_NAME])
def test_each_dashboard_opens_with_a_text_that_says_where_its_numbers_come_from(
    synth: Synthesized, name: str
) -> None:
    # Given the dashboard's widgets in layout order
    widgets = _widgets(synth, name)

    # Then the first is a full-width text naming the metrics' source (EMF, Contributor Insights)
    first = widgets[0]
    assert first["type"] == "text"
    assert (first["x"], first["y"], first["width"]) == (0, 0, 24)
    markdown = first["properties"]["markdown"]
    assert "EMF" in markdown
    assert "Contributor Insights" in markdown


def test_finance_ops_charts_money_by_currency_success_refunds_pending_and_top_partners(
    synth: Synthesized,
) -> None:
    # Given the finance-ops dashboard's body
    text = _text(synth, FINANCE_DASHBOARD_NAME)
    widgets = _widgets(synth, FINANCE_DASHBOARD_NAME)

    # Then it charts every money metric of the catalogue, over its exact dimension set
    for spec in FINANCE_METRICS:
        assert f'MetricName=\\"{spec.name}\\"' in text or f'"{spec.name}"' in text, spec.name
    assert metric_schema(MONEY_MOVEMENTS) == "{Payplat,service,kind,currency}"
    # And payments (and authorizations), failures, captures and refunds by kind
    for kind in ("payment", "authorization", "payment_failed", "capture", "refund"):
        assert f'kind=\\"{kind}\\"' in text, kind
    # And a success-vs-failure rate, pending captures by currency, refunds by currency
    titles = [w["properties"].get("title", "") for w in widgets]
    assert any("succeeded vs failed" in t for t in titles)
    assert any(t.startswith("Captures pending by currency") for t in titles)
    assert any(t.startswith("Refunds by currency") for t in titles)
    # And the top partners by volume, from the Contributor Insights rule
    [contributors] = [w for w in widgets if "insightRule" in w["properties"]]
    rule = contributors["properties"]["insightRule"]
    assert rule["ruleName"] == _ref(
        synth, synth.stack.monitoring.top_partners_by_volume, "RuleName"
    )
    assert rule["orderBy"] == "Sum"
    assert rule["maxContributorCount"] == 10


def test_platform_ops_charts_traffic_latency_errors_throttles_auth_and_the_audit_trail(
    synth: Synthesized,
) -> None:
    # Given the platform-ops dashboard's body
    text = _text(synth, PLATFORM_DASHBOARD_NAME)
    widgets = _widgets(synth, PLATFORM_DASHBOARD_NAME)
    functions = synth.stack.functions
    pipeline = synth.stack.audit_pipeline

    # Then it charts every request, auth, limiter and audit metric of the catalogue
    for spec in PLATFORM_METRICS:
        assert f'MetricName=\\"{spec.name}\\"' in text or f'"{spec.name}"' in text, spec.name
    # And latency p50 and p99 by route, API Gateway's own p99, count, 4xx and 5xx
    assert f'MetricName=\\"{LATENCY.name}\\" service=\\"payplat\\"\', \'p50\'' in text
    assert f'MetricName=\\"{LATENCY.name}\\" service=\\"payplat\\"\', \'p99\'' in text
    for metric in ("Latency", "Count", "4XXError", "5XXError"):
        assert f'["AWS/ApiGateway", "{metric}"' in text, metric
    # And both audit functions' iterator age, both DLQs' depth, Firehose's freshness
    for function in (functions.audit_forwarder, functions.audit_sealer):
        assert f'"IteratorAge", "FunctionName", "{_ref(synth, function.function)}"' in text
    for queue in pipeline.dlqs.values():
        assert _ref(synth, queue, "QueueName") in text
    assert "DeliveryToS3.DataFreshness" in text
    # And the authorizer cache hit rate: its invocations against protected routes' requests
    [hit_rate] = [
        w for w in widgets if w["properties"].get("title", "").startswith("Authorizer cache hit")
    ]
    [expression, invocations, *_] = hit_rate["properties"]["metrics"]
    assert expression[0]["expression"].startswith("100 * (1 - invocations / SUM(SEARCH(")
    for route in ROUTES:
        assert (f'route=\\"{route.name}\\"' in json.dumps(expression)) is route.protected
    assert invocations[:4] == [
        "AWS/Lambda",
        "Invocations",
        "FunctionName",
        _ref(synth, functions.authorizer.function),
    ]
    # And the top partners by requests
    [contributors] = [w for w in widgets if "insightRule" in w["properties"]]
    assert contributors["properties"]["insightRule"]["ruleName"] == _ref(
        synth, synth.stack.monitoring.top_partners_by_requests, "RuleName"
    )


def test_every_catalogue_metric_is_on_a_dashboard(synth: Synthesized) -> None:
    # Given both dashboards' bodies
    text = _text(synth, FINANCE_DASHBOARD_NAME) + _text(synth, PLATFORM_DASHBOARD_NAME)

    # Then no metric the code writes goes unseen
    unseen = [
        spec.name
        for spec in CATALOGUE
        if f'MetricName=\\"{spec.name}\\"' not in text and f'"{spec.name}"' not in text
    ]
    assert unseen == []


def test_every_payplat_search_names_a_catalogue_metric_with_its_exact_dimensions(
    synth: Synthesized,
) -> None:
    # Given every SEARCH over the Payplat namespace on both dashboards
    text = (_text(synth, FINANCE_DASHBOARD_NAME) + _text(synth, PLATFORM_DASHBOARD_NAME)).replace(
        '\\"', '"'
    )
    searches = _PAYPLAT_SEARCH.findall(text)

    # Then each names a catalogue metric over exactly the dimensions it is written with
    # (a SEARCH over another set would find nothing)
    assert searches
    for dimensions, name in searches:
        assert name in BY_NAME, name
        assert set(dimensions.split(",")) == {"service", *BY_NAME[name].dimensions}, name


# --- alarms --------------------------------------------------------------------------------

EXPECTED_ALARMS = {
    "payplat-api-5xx-rate",
    "payplat-auth-failure-spike",
    "payplat-throttle-spike",
    "payplat-audit-forwarder-lag",
    "payplat-audit-sealer-lag",
    "payplat-audit-forwarder-errors",
    "payplat-audit-sealer-errors",
    "payplat-audit-forwarder-dlq-not-empty",
    "payplat-audit-sealer-dlq-not-empty",
    "payplat-audit-archive-freshness",
    "payplat-audit-archive-delivery-failures",
    "payplat-audit-subscription-errors",
    "payplat-webhook-dispatcher-lag",
    "payplat-webhook-dispatcher-errors",
    "payplat-webhook-deliveries-dlq-not-empty",
    "payplat-webhook-events-dlq-not-empty",
}


def test_every_alarm_exists_explains_itself_and_notifies_the_topic(synth: Synthesized) -> None:
    # Given every alarm and the alarm topic
    alarms = _alarms(synth)
    topic = {"Ref": synth.logical_id(synth.stack.monitoring.topic)}

    # Then they are the expected ones, each described, each deciding what no data means, and
    # each notifying the topic when it fires and when it clears
    assert set(alarms) == EXPECTED_ALARMS
    for name, alarm in alarms.items():
        assert len(alarm["AlarmDescription"]) > 40, name
        assert alarm["TreatMissingData"] in {"notBreaching", "ignore"}, name
        assert alarm["AlarmActions"] == [topic], name
        assert alarm["OKActions"] == [topic], name


def test_the_api_5xx_alarm_fires_above_1_percent_of_requests_in_5_minutes(
    synth: Synthesized,
) -> None:
    # Given the 5xx-rate alarm
    alarm = _alarms(synth)["payplat-api-5xx-rate"]
    by_id = {metric["Id"]: metric for metric in alarm["Metrics"]}
    stage = {"Ref": synth.logical_id(synth.stack.api.rest_api.deployment_stage)}

    # Then it divides the stage's 5XXError by its Count (5-minute sums), once enough requests
    # came in, and fires above 1%
    rate = next(m for m in alarm["Metrics"] if "Expression" in m)
    assert rate["Expression"] == (
        f"IF(requests >= {API_5XX_MIN_REQUESTS}, 100 * errors / requests, 0)"
    )
    for metric_id, name in (("errors", "5XXError"), ("requests", "Count")):
        stat = by_id[metric_id]["MetricStat"]
        assert stat["Metric"]["MetricName"] == name
        assert stat["Metric"]["Namespace"] == "AWS/ApiGateway"
        assert {"Name": "Stage", "Value": stage} in stat["Metric"]["Dimensions"]
        assert (stat["Stat"], stat["Period"]) == ("Sum", 300)
    assert alarm["Threshold"] == API_5XX_RATE_PERCENT == 1
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize(
    ("name", "spec", "query", "threshold"),
    [
        (
            "payplat-auth-failure-spike",
            ACCESS_DENIED,
            'SELECT SUM("AccessDenied") FROM SCHEMA("Payplat", "service", "reason")',
            AUTH_FAILURES_PER_PERIOD,
        ),
        (
            # `limit` is a reserved word in Metrics Insights: quoted, or the query fails
            "payplat-throttle-spike",
            RATE_LIMITED,
            'SELECT SUM("RateLimited") FROM SCHEMA("Payplat", "service", "limit")',
            RATE_LIMITED_PER_PERIOD,
        ),
    ],
)
def test_spike_alarms_sum_a_catalogue_metric_over_every_dimension_value(
    synth: Synthesized, name: str, spec: Any, query: str, threshold: int
) -> None:
    # Given the spike alarm
    alarm = _alarms(synth)[name]

    # Then it is one Metrics Insights query summing the metric over its exact dimension set
    # (every reason, every limit), over 5 minutes
    [metric] = alarm["Metrics"]
    assert metric["Expression"] == query == insights_sum(spec)
    assert metric["Period"] == 300
    assert alarm["Threshold"] == threshold
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


@pytest.mark.parametrize("name", ["forwarder", "sealer"])
def test_audit_alarms_watch_lag_errors_and_the_dlq_of_each_function(
    synth: Synthesized, name: str
) -> None:
    # Given the audit function, its DLQ and its alarms
    function = getattr(synth.stack.functions, f"audit_{name}").function
    queue = synth.stack.audit_pipeline.dlqs[name]
    alarms = _alarms(synth)
    lag = alarms[f"payplat-audit-{name}-lag"]
    errors = alarms[f"payplat-audit-{name}-errors"]
    dlq = alarms[f"payplat-audit-{name}-dlq-not-empty"]
    function_dimension = [{"Name": "FunctionName", "Value": {"Ref": synth.logical_id(function)}}]

    # Then lag fires when its iterator age passes 5 minutes
    assert (lag["Namespace"], lag["MetricName"], lag["Statistic"]) == (
        "AWS/Lambda",
        "IteratorAge",
        "Maximum",
    )
    assert lag["Dimensions"] == function_dimension
    assert lag["Threshold"] == AUDIT_LAG_S * 1000 == 300_000
    # And errors on its first failed invocation
    assert (errors["MetricName"], errors["Statistic"], errors["Threshold"]) == ("Errors", "Sum", 0)
    assert errors["Dimensions"] == function_dimension
    # And the DLQ on its first message, and stays raised while the idle queue reports nothing
    assert dlq["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert dlq["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [synth.logical_id(queue), "QueueName"]}}
    ]
    assert (dlq["Threshold"], dlq["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert dlq["TreatMissingData"] == "ignore"


def test_archive_alarms_watch_firehose_freshness_and_failed_deliveries(
    synth: Synthesized,
) -> None:
    # Given the archive alarms
    alarms = _alarms(synth)
    freshness = alarms["payplat-audit-archive-freshness"]
    failures = alarms["payplat-audit-archive-delivery-failures"]
    stream = [{"Name": "DeliveryStreamName", "Value": {"Ref": _delivery_id(synth)}}]

    # Then one fires when the oldest undelivered record passes 15 minutes, the other on any
    # failed delivery to S3
    assert (freshness["Namespace"], freshness["MetricName"]) == (
        "AWS/Firehose",
        "DeliveryToS3.DataFreshness",
    )
    assert freshness["Dimensions"] == failures["Dimensions"] == stream
    assert freshness["Threshold"] == ARCHIVE_FRESHNESS_S
    assert (failures["MetricName"], failures["Statistic"]) == ("DeliveryToS3.Success", "Minimum")
    assert (failures["Threshold"], failures["ComparisonOperator"]) == (1, "LessThanThreshold")


def test_an_audit_line_the_log_subscription_cannot_deliver_raises_an_alarm(
    synth: Synthesized,
) -> None:
    # Given the alarm on the log subscriptions and the subscriptions themselves
    alarm = _alarms(synth)["payplat-audit-subscription-errors"]
    filters = synth.of_type("AWS::Logs::SubscriptionFilter").values()

    # Then every subscription carries the name the alarm finds them by...
    assert {f["Properties"]["FilterName"] for f in filters} == {AUDIT_SUBSCRIPTION_NAME}
    # ...and the alarm fires on the first audit line CloudWatch Logs failed to deliver
    [metric] = alarm["Metrics"]
    assert metric["Expression"] == subscription_delivery_errors()
    assert "SUM(DeliveryErrors)" in metric["Expression"]
    assert f"FilterName = '{AUDIT_SUBSCRIPTION_NAME}'" in metric["Expression"]
    assert (metric["Period"], alarm["Threshold"]) == (300, 0)
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


def _delivery_id(synth: Synthesized) -> str:
    [delivery_id] = synth.of_type("AWS::KinesisFirehose::DeliveryStream")
    return delivery_id


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use_and_tls_only(
    synth: Synthesized,
) -> None:
    # Given the topic, its key and its policy
    topic = synth.stack.monitoring.topic
    properties = synth.properties(topic)
    key_id = properties["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = synth.resources[key_id]["Properties"]
    [policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.of_type("AWS::SNS::TopicPolicy").values()
        if {"Ref": synth.logical_id(topic)} in p["Properties"]["Topics"]
    ]

    # Then it is encrypted with a rotating key of ours that CloudWatch may use to publish
    # (the aws/sns key would silently drop every alarm)
    assert key["EnableKeyRotation"] is True
    cloudwatch = [
        s
        for s in key["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert [set(s["Action"]) for s in cloudwatch] == [{"kms:Decrypt", "kms:GenerateDataKey*"}]
    # And it refuses plain HTTP
    assert any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy
    )


# --- Contributor Insights ------------------------------------------------------------------


def test_top_partners_by_requests_counts_request_lines_by_client(synth: Synthesized) -> None:
    # Given the rule's body
    body = _insight_rules(synth)[TOP_PARTNERS_BY_REQUESTS_RULE]
    functions = synth.stack.functions

    # Then it reads the payments and oauth functions' JSON logs and counts each `request` line
    # carrying a client_id, by client_id
    assert body["Schema"] == {"Name": "CloudWatchLogRule", "Version": 1}
    assert sorted(body["LogGroupNames"]) == sorted(
        _ref(synth, fn.log_group) for fn in (functions.payments, functions.oauth)
    )
    assert body["LogFormat"] == "JSON"
    assert body["AggregateOn"] == "Count"
    contribution = body["Contribution"]
    assert contribution["Keys"] == ["$.client_id"]
    assert {"Match": "$.message", "In": ["request"]} in contribution["Filters"]


def test_top_partners_by_volume_sums_payments_and_captures_by_client_and_currency(
    synth: Synthesized,
) -> None:
    # Given the rule's body
    body = _insight_rules(synth)[TOP_PARTNERS_BY_VOLUME_RULE]

    # Then it reads the payments function's money lines and sums their value per partner and
    # currency (amounts add up only within a currency)
    assert body["LogGroupNames"] == [_ref(synth, synth.stack.functions.payments.log_group)]
    assert body["AggregateOn"] == "Sum"
    contribution = body["Contribution"]
    assert contribution["Keys"] == ["$.client_id", "$.currency"]
    assert contribution["ValueOf"] == f"$.{MONEY_MOVED.name}"
    assert {"Match": "$.kind", "In": ["payment", "capture"]} in contribution["Filters"]
    assert {"Match": f"$.{MONEY_MOVED.name}", "IsPresent": True} in contribution["Filters"]


def test_both_insight_rules_are_enabled(synth: Synthesized) -> None:
    # Given the rules
    rules = {
        rule["Properties"]["RuleName"]: rule["Properties"]["RuleState"]
        for rule in synth.of_type("AWS::CloudWatch::InsightRule").values()
    }

    # Then there are the two, both on
    assert rules == {
        TOP_PARTNERS_BY_REQUESTS_RULE: "ENABLED",
        TOP_PARTNERS_BY_VOLUME_RULE: "ENABLED",
    }
