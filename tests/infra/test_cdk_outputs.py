"""The stack outputs: the API's base URL, and what an operator exports to run the `payplat`
CLI against the deployment (PAYPLAT_* variables, named in each output's description)."""

from __future__ import annotations

import dataclasses

import pytest

from infra.constructs.names import FINANCE_DASHBOARD_NAME, PLATFORM_DASHBOARD_NAME, STAGE_NAME
from infra.resources import AUDIT_ARCHIVE, AUDIT_STREAM, TABLES, TableSpec
from payplat.config import Env, OperatorSettings
from tests.infra.synthesized import Json, Synthesized


def _outputs(synth: Synthesized) -> dict[str, Json]:
    outputs: dict[str, Json] = synth.json["Outputs"]
    return outputs


def _by_env_var(synth: Synthesized) -> dict[str, Json]:
    """Env var -> output, for the outputs whose description starts `PAYPLAT_<X>: `."""
    return {
        output["Description"].split(":")[0]: output
        for output in _outputs(synth).values()
        if output.get("Description", "").startswith("PAYPLAT_")
    }


def test_outputs_give_the_base_url_as_api_url_and_issuer(synth: Synthesized) -> None:
    # Given the stack outputs
    outputs = _outputs(synth)

    # Then ApiUrl and Issuer (PAYPLAT_ISSUER) are the same https://{api}.execute-api.../{stage}
    assert outputs["ApiUrl"]["Value"] == outputs["Issuer"]["Value"]
    assert _by_env_var(synth)[Env.ISSUER] is outputs["Issuer"]
    parts = outputs["Issuer"]["Value"]["Fn::Join"][1]
    assert parts[0] == "https://"
    assert parts[-1] == f"/{STAGE_NAME}"
    assert {"Ref": synth.logical_id(synth.stack.api.rest_api)} in parts


@pytest.mark.parametrize("spec", TABLES, ids=lambda spec: spec.id)
def test_every_table_name_is_an_output_for_its_env_var(synth: Synthesized, spec: TableSpec) -> None:
    # Given the output for the table's env var
    output = _by_env_var(synth).get(spec.env)

    # Then it exists and gives the name of the table built for the spec
    assert output is not None, f"no output for {spec.env}"
    assert output["Value"] == {"Ref": synth.logical_id(synth.stack.data.table(spec))}


def test_the_signing_key_and_the_audit_stream_are_outputs_for_their_env_vars(
    synth: Synthesized,
) -> None:
    # Given the outputs by env var
    outputs = _by_env_var(synth)

    # Then the signing key's ARN (what the oauth function's env holds) and the audit stream's
    # name are there
    key_arn = {"Fn::GetAtt": [synth.logical_id(synth.stack.signing_key.key), "Arn"]}
    assert outputs[Env.SIGNING_KEY_ID]["Value"] == key_arn
    oauth_env = synth.properties(synth.stack.functions.oauth.function)["Environment"]
    assert oauth_env["Variables"][Env.SIGNING_KEY_ID] == key_arn
    assert outputs[AUDIT_STREAM.env]["Value"] == {"Ref": synth.logical_id(synth.stack.audit.stream)}


def test_env_var_outputs_name_real_variables_with_readable_ids(synth: Synthesized) -> None:
    # Given the outputs that name an env var, by output id
    named = {
        output_id: output["Description"].split(":")[0]
        for output_id, output in _outputs(synth).items()
        if output.get("Description", "").startswith("PAYPLAT_")
    }
    known = {value for name, value in vars(Env).items() if name.isupper()}

    # Then each names a variable payplat reads, once, in an id spelled after it
    # (PAYPLAT_RATE_LIMITS_TABLE -> RateLimitsTable)
    assert set(named.values()) <= known
    assert len(set(named.values())) == len(named)
    expected = {t.env for t in TABLES} | {
        Env.ISSUER,
        Env.SIGNING_KEY_ID,
        AUDIT_STREAM.env,
        AUDIT_ARCHIVE.env,
        Env.AUDIT_SEALING_KEY_ID,
    }
    assert set(named.values()) == expected
    for output_id, env in named.items():
        assert output_id.upper() == env.removeprefix("PAYPLAT_").replace("_", ""), output_id


def test_every_setting_the_operator_cli_reads_is_an_output(synth: Synthesized) -> None:
    # Given the settings the `payplat` CLI loads, and the outputs by env var
    wanted = {field.metadata["env"] for field in dataclasses.fields(OperatorSettings)}
    outputs = _by_env_var(synth)

    # Then an operator can export every one of them (and the audit stream) from the stack
    assert wanted
    assert wanted | {AUDIT_STREAM.env} <= set(outputs)


def test_audit_verify_reads_the_archive_and_the_sealing_key_from_outputs(
    synth: Synthesized,
) -> None:
    # Given the outputs by env var, and the sealer's env as deployed
    outputs = _by_env_var(synth)
    sealer_env = synth.properties(synth.stack.functions.audit_sealer.function)["Environment"]

    # Then the archive bucket's name and the sealing key's ARN are there, the same values the
    # sealer writes and signs with, so `payplat audit verify` checks what was sealed
    bucket = {"Ref": synth.logical_id(synth.stack.archive.bucket)}
    key_arn = {"Fn::GetAtt": [synth.logical_id(synth.stack.sealing_key.key), "Arn"]}
    assert outputs[AUDIT_ARCHIVE.env]["Value"] == bucket
    assert outputs[Env.AUDIT_SEALING_KEY_ID]["Value"] == key_arn
    assert sealer_env["Variables"][AUDIT_ARCHIVE.env] == bucket
    assert sealer_env["Variables"][Env.AUDIT_SEALING_KEY_ID] == key_arn


def test_the_alarm_topic_and_the_dashboards_are_outputs(synth: Synthesized) -> None:
    # Given the stack outputs
    outputs = _outputs(synth)
    monitoring = synth.stack.monitoring

    # Then on-call finds the topic to subscribe to, and both dashboards by name
    assert outputs["AlarmTopicArn"]["Value"] == {"Ref": synth.logical_id(monitoring.topic)}
    assert outputs["FinanceOpsDashboard"]["Value"] == {
        "Ref": synth.logical_id(monitoring.finance_dashboard)
    }
    assert outputs["PlatformOpsDashboard"]["Value"] == {
        "Ref": synth.logical_id(monitoring.platform_dashboard)
    }
    properties = synth.properties(monitoring.finance_dashboard)
    assert properties["DashboardName"] == FINANCE_DASHBOARD_NAME
    assert synth.properties(monitoring.platform_dashboard)["DashboardName"] == (
        PLATFORM_DASHBOARD_NAME
    )
