"""The partner docs (docs/*.md) against the code they describe: the scope table lists every
scope with its words and every route under its scope; the error page names every error type
the document declares; every relative link leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

from payplat.api import openapi
from payplat.routes import ROUTES, SCOPES

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = (
    "quickstart",
    "authentication",
    "scopes",
    "rate-limits",
    "idempotency",
    "errors",
    "pagination",
    "webhooks",
    "environments",
    "dpop",
)


def test_every_concept_has_its_page() -> None:
    for page in PAGES:
        assert (DOCS / f"{page}.md").is_file(), page


def test_the_scope_table_lists_every_scope_and_every_route_under_it() -> None:
    rows = {
        match["scope"]: match["rest"]
        for match in re.finditer(
            r"^\| `(?P<scope>[a-z:]+)` \|(?P<rest>.*)$", (DOCS / "scopes.md").read_text(), re.M
        )
    }
    assert rows.keys() == SCOPES.keys()
    for scope, words in SCOPES.items():
        assert words in rows[scope], scope
    for route in ROUTES:
        if route.scope is not None:
            assert f"`{route.method} {route.path}`" in rows[route.scope], route.name


def test_the_error_page_names_every_error_type() -> None:
    page = (DOCS / "errors.md").read_text()
    schema = openapi.document("http://127.0.0.1:8000")["components"]["schemas"]["Error"]
    for error_type in schema["properties"]["error"]["properties"]["type"]["enum"]:
        assert f"`{error_type}`" in page, error_type


def test_relative_links_lead_somewhere() -> None:
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} -> {target}"
