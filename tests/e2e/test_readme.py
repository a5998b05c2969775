"""The README's walkthroughs, run as written against the local platform: a snippet a partner
copies must work. Blocks marked `<!-- test: NAME ... -->` just before their ```sh fence are
joined per NAME and run with bash; only the base URL and the state directory are swapped for
the test platform's."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, Platform

pytestmark = pytest.mark.e2e

README = ROOT / "README.md"
_BLOCK = re.compile(r"<!-- test: (?P<name>[\w-]+)[^>]*-->\s*```sh\n(?P<code>.*?)```", re.DOTALL)


def readme_script(name: str) -> str:
    blocks = [m["code"] for m in _BLOCK.finditer(README.read_text()) if m["name"] == name]
    assert blocks, f"no README block marked {name}"
    return "\n".join(blocks)


def run(platform: Platform, script: str, cwd: Path) -> str:
    script = script.replace("http://127.0.0.1:8000", platform.base_url).replace(
        ".payplat/local.json", str(platform.state_dir / "local.json")
    )
    result = subprocess.run(  # noqa: S603
        ["/bin/bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_partner_onboarding_walkthrough_works_as_written(
    platform: Platform, tmp_path: Path
) -> None:
    output = run(platform, readme_script("onboarding"), tmp_path)

    # The new app's own token acts for bob; alice's consented token for alice
    assert '"id":"acct_bob_eur"' in output
    assert '"id":"acct_alice_eur"' in output
    # Introspection of the refreshed access token, revocation's 200
    assert '"active":true' in output and "\n200\n" in output
    # Both secrets work during the overlap
    assert "old secret: 200" in output and "new secret: 200" in output
    # The registration read back, without its secret
    assert '"client_name":"Bob\'s bookkeeping"' in output
    assert '"client_secret"' not in output.splitlines()[-1]
    # And it cleaned up after itself
    assert not list(tmp_path.iterdir())
