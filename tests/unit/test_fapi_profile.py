"""The FAPI 2.0 profile switch: docs/fapi.md maps each requirement to the code and the test
that hold it (every file and test it names must exist, so the table cannot rot silently),
and registration under the switch. The switch end to end: tests/e2e/test_fapi.py."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "fapi.md"
CORE = ROOT / "layers" / "core"


def cited(kind: str) -> set[str]:
    names = set(re.findall(r"`([\w/.]+\.py)(?:::\w+)?`", DOC.read_text()))
    return {name for name in names if name.startswith("tests/") == (kind == "test")}


def test_every_test_the_table_names_exists() -> None:
    tests = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", DOC.read_text())
    assert len(tests) >= 10
    for path, function in tests:
        source = ROOT / path
        assert source.exists(), path
        if function:
            assert f"def {function}(" in source.read_text(), f"{path}::{function}"


def test_every_code_file_the_table_names_exists() -> None:
    files = cited("code")
    assert len(files) >= 8
    for name in files:
        candidates = [CORE / name, CORE / "payplat" / name, CORE / "payplat" / "oauth" / name]
        candidates += [CORE / "payplat" / "gateway" / name]
        assert any(path.exists() for path in candidates), name


def test_registration_under_the_profile_takes_private_key_jwt_clients_only() -> None:
    """Dynamic registration refuses what the FAPI 2.0 token endpoint would refuse anyway: a
    secret client, or the password grant (checked before anything about the owner)."""
    from types import SimpleNamespace
    from typing import Any

    import pytest

    from payplat.oauth import registration

    server: Any = SimpleNamespace(fapi=True, local=False)
    base = {"client_name": "app", "owner": "usr_bob", "grant_types": ["client_credentials"]}
    for body, refusal in (
        (base, "private_key_jwt"),
        ({**base, "token_endpoint_auth_method": "client_secret_post"}, "private_key_jwt"),
        (
            {**base, "token_endpoint_auth_method": "private_key_jwt", "grant_types": ["password"]},
            "password",
        ),
    ):
        with pytest.raises(registration.InvalidMetadata, match=refusal):
            registration._validated(server, body, plan_exists=lambda plan: True)
