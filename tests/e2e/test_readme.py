"""The README's and the docs' walkthroughs, run as written against the local platform: a
snippet a partner copies must work.

A block is marked by an HTML comment just before its fence:

    <!-- test: NAME -->                      a ```sh or ```python block
    <!-- test: NAME requires: sdk, webhooks -->

Blocks of one page with the same NAME are joined, in order, and run as one script (bash
with -euo pipefail, or the project's Python with payplat_sdk importable); one NAME is one
language. Only the base URL and the state file are swapped for the test platform's. A
`requires:` list names what the snippet needs — `sdk` (the payplat_sdk package), `webhooks`
(the webhook routes) — and the group is skipped, saying which, while one is missing.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from payplat.routes import ROUTES_BY_NAME
from tests.conftest import ROOT, Platform

pytestmark = pytest.mark.e2e

README = ROOT / "README.md"
DOCS = ROOT / "docs"
_BLOCK = re.compile(
    r"<!-- test: (?P<name>[\w-]+)(?P<attrs>[^>]*)-->\s*```(?P<lang>sh|python)\n(?P<code>.*?)```",
    re.DOTALL,
)
_REQUIRES = re.compile(r"requires:\s*(?P<list>[\w-]+(?:\s*,\s*[\w-]+)*)")
LOCAL_BASE_URL = "http://127.0.0.1:8000"
LOCAL_STATE = ".payplat/local.json"
TIMEOUT_S = 180
# Groups with a test of their own below, which checks what they print too.
DEDICATED = {("README.md", "onboarding"), ("docs/quickstart.md", "quickstart-python")}


def _sdk() -> bool:
    return importlib.util.find_spec("payplat_sdk") is not None


def _webhooks() -> bool:
    return "create_webhook_endpoint" in ROUTES_BY_NAME


REQUIREMENTS = {
    "sdk": (_sdk, "the Python SDK (payplat_sdk) is not installed"),
    "webhooks": (_webhooks, "the webhook routes are not in the route table"),
}


@dataclass(frozen=True)
class Snippet:
    page: str  # relative to the repository root
    name: str
    lang: str
    code: str
    requires: frozenset[str]

    @property
    def id(self) -> str:
        return f"{self.page}:{self.name}"


def snippets(page: Path) -> list[Snippet]:
    """The page's marked groups, blocks of one name joined in order."""
    groups: dict[str, list[re.Match[str]]] = {}
    for match in _BLOCK.finditer(page.read_text()):
        groups.setdefault(match["name"], []).append(match)
    found = []
    for name, blocks in groups.items():
        langs = {block["lang"] for block in blocks}
        assert len(langs) == 1, f"{page.name}: test {name} mixes {sorted(langs)}"
        requires: set[str] = set()
        for block in blocks:
            marker = _REQUIRES.search(block["attrs"])
            if marker:
                requires |= {item.strip() for item in marker["list"].split(",")}
        unknown = requires - REQUIREMENTS.keys()
        assert not unknown, f"{page.name}: test {name} requires unknown {sorted(unknown)}"
        found.append(
            Snippet(
                page=str(page.relative_to(ROOT)),
                name=name,
                lang=langs.pop(),
                code="\n".join(block["code"] for block in blocks),
                requires=frozenset(requires),
            )
        )
    return found


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def all_snippets() -> list[Snippet]:
    return [snippet for page in pages() for snippet in snippets(page)]


def find(page: str, name: str) -> Snippet:
    [snippet] = [s for s in all_snippets() if (s.page, s.name) == (page, name)]
    return snippet


def readme_script(name: str) -> str:
    return find("README.md", name).code


def skip_unless_available(snippet: Snippet) -> None:
    for requirement in sorted(snippet.requires):
        available, why = REQUIREMENTS[requirement]
        if not available():
            pytest.skip(f"{snippet.id} requires {requirement}: {why}")


def run(platform: Platform, script: str, cwd: Path, lang: str = "sh") -> str:
    script = script.replace(LOCAL_BASE_URL, platform.base_url).replace(
        LOCAL_STATE, str(platform.state_dir / "local.json")
    )
    if lang == "python":
        command = [sys.executable, "-c", script]
    else:
        command = ["/bin/bash", "-euo", "pipefail", "-c", script]
    env = {**os.environ, "PAYPLAT_STATE_DIR": str(platform.state_dir)}
    result = subprocess.run(  # noqa: S603
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def run_snippet(platform: Platform, snippet: Snippet, cwd: Path) -> str:
    skip_unless_available(snippet)
    return run(platform, snippet.code, cwd, snippet.lang)


def test_every_marked_block_is_found_and_runnable_in_principle() -> None:
    """A typo in a marker (```bash, a missing name) would silently drop a snippet."""
    for page in pages():
        text = page.read_text()
        markers = len(re.findall(r"<!-- test:", text))
        blocks = len(list(_BLOCK.finditer(text)))
        assert markers == blocks, f"{page.name}: {markers} markers, {blocks} runnable blocks"
    assert {(s.page, s.name) for s in all_snippets()} >= DEDICATED


@pytest.mark.parametrize(
    "snippet",
    [s for s in all_snippets() if (s.page, s.name) not in DEDICATED],
    ids=lambda snippet: snippet.id,
)
def test_the_docs_snippets_run_as_written(
    platform: Platform, tmp_path: Path, snippet: Snippet
) -> None:
    run_snippet(platform, snippet, tmp_path)
    # And they clean up after themselves
    assert not list(tmp_path.iterdir())


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


def test_the_python_quickstart_pays_verifies_its_webhook_and_refunds(
    platform: Platform, tmp_path: Path
) -> None:
    output = run_snippet(platform, find("docs/quickstart.md", "quickstart-python"), tmp_path)

    assert "captured: succeeded 1500" in output
    assert "webhook verified: payment." in output
    assert "refunded: 500 EUR" in output
    assert not list(tmp_path.iterdir())
