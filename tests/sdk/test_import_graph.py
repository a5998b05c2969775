"""The SDK's module graph: parsed with `ast` from sdk/src/payplat_sdk, every import counted
(module level, under `if TYPE_CHECKING:`, inside functions), the intra-package imports form a
DAG, and no module imports `payplat` (the server), so the SDK installs and imports alone."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

PACKAGE = "payplat_sdk"
SERVER = "payplat"
SDK_SRC = Path(__file__).resolve().parents[2] / "sdk" / "src"

# name -> (source, is a package's __init__)
Sources = Mapping[str, tuple[str, bool]]


def sdk_sources(src: Path = SDK_SRC, package: str = PACKAGE) -> dict[str, tuple[str, bool]]:
    modules: dict[str, tuple[str, bool]] = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        modules[".".join(parts)] = (path.read_text(encoding="utf-8"), is_package)
    return modules


def imported_names(module: str, source: str, *, is_package: bool) -> set[str]:
    """Every module name `source` imports, anywhere in it, made absolute. `from a import b`
    gives `a.b` as well as `a` (b may be a submodule; the caller keeps what exists)."""
    names: set[str] = set()
    here = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def import_graph(sources: Sources, package: str = PACKAGE) -> dict[str, set[str]]:
    """module -> the package's modules it imports (the longest existing prefix of each name:
    `from payplat_sdk import Payplat` is an edge to `payplat_sdk`, i.e. its __init__)."""
    graph: dict[str, set[str]] = {}
    for module, (source, is_package) in sources.items():
        targets: set[str] = set()
        for name in imported_names(module, source, is_package=is_package):
            if not within(name, package):
                continue
            target = name
            while target not in sources and "." in target:
                target = target.rpartition(".")[0]
            if target in sources:
                targets.add(target)
        targets.discard(module)  # `from payplat_sdk import x` inside __init__ itself
        graph[module] = targets
    return graph


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle as [a, b, ..., a], or None if `graph` is a DAG (iterative DFS, three colours)."""
    done: set[str] = set()
    for root in sorted(graph):
        if root in done:
            continue
        path = [root]
        on_path = {root}
        stack = [iter(sorted(graph.get(root, ())))]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                done.add(path[-1])
                on_path.discard(path.pop())
            elif child in on_path:
                return [*path[path.index(child) :], child]
            elif child not in done:
                path.append(child)
                on_path.add(child)
                stack.append(iter(sorted(graph.get(child, ()))))
    return None


def server_imports(sources: Sources) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for module, (source, is_package) in sources.items():
        names = imported_names(module, source, is_package=is_package)
        hits = {name for name in names if within(name, SERVER)}
        if hits:
            found[module] = hits
    return found


# --- the SDK as it is ---


def test_every_sdk_module_is_parsed() -> None:
    modules = set(sdk_sources())
    assert {
        PACKAGE,
        f"{PACKAGE}._http",
        f"{PACKAGE}.auth",
        f"{PACKAGE}.client",
        f"{PACKAGE}.errors",
        f"{PACKAGE}.models",
        f"{PACKAGE}.resources",
        f"{PACKAGE}.webhooks",
    } <= modules
    graph = import_graph(sdk_sources())
    assert f"{PACKAGE}.client" in graph[f"{PACKAGE}.auth"]  # the edge the flow needs
    assert f"{PACKAGE}.models" in graph[f"{PACKAGE}.errors"]  # a TYPE_CHECKING/lazy import


def test_the_sdk_import_graph_is_a_dag() -> None:
    cycle = find_cycle(import_graph(sdk_sources()))
    assert cycle is None, "import cycle in the SDK: " + " -> ".join(cycle or [])


def test_no_sdk_module_imports_the_server() -> None:
    assert server_imports(sdk_sources()) == {}


def test_the_sdk_imports_with_the_server_unimportable() -> None:
    blocker = textwrap.dedent(f"""
        import importlib, pkgutil, sys

        class NoServer:
            def find_spec(self, name, path=None, target=None):
                if name == {SERVER!r} or name.startswith({SERVER + "."!r}):
                    raise ImportError("the SDK must not import " + name)

        sys.meta_path.insert(0, NoServer())
        sys.path.insert(0, {str(SDK_SRC)!r})
        import {PACKAGE}
        for info in pkgutil.walk_packages({PACKAGE}.__path__, {PACKAGE + "."!r}):
            importlib.import_module(info.name)
        assert {PACKAGE}.__file__.startswith({str(SDK_SRC)!r}), {PACKAGE}.__file__
    """)
    run = subprocess.run(  # noqa: S603 - our own interpreter, a fixed script
        [sys.executable, "-c", blocker], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr


# --- the checks themselves can fail ---


def on_cycle(cycle: list[str] | None) -> set[str]:
    """The modules on a cycle found by find_cycle, checking it is a closed walk."""
    assert cycle is not None, "no cycle found"
    assert len(cycle) >= 2 and cycle[0] == cycle[-1], cycle
    return set(cycle)


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"a"}}, ["a", "a"]),
        ({"x": {"a"}, "a": {"b", "d"}, "b": {"d"}, "d": {"b"}}, ["b", "d", "b"]),
        ({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}, None),  # a diamond
        ({"a": {"outside"}}, None),
        ({}, None),
    ],
)
def test_find_cycle(graph: dict[str, set[str]], cycle: list[str] | None) -> None:
    assert find_cycle(graph) == cycle


def test_a_cycle_through_type_checking_and_lazy_imports_is_caught() -> None:
    """The shape the SDK had: auth -> client only under TYPE_CHECKING and inside a method,
    client -> auth at module level; plus a relative import."""
    sources = {
        "pkg": ("from pkg.client import Client\n", True),
        "pkg.auth": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from pkg.client import Client\n"
            "def client() -> 'Client':\n"
            "    from pkg.client import Client\n"
            "    return Client()\n",
            False,
        ),
        "pkg.client": ("from .auth import client\nclass Client: ...\n", False),
        "pkg.models": ("import pkg\n", False),
    }
    graph = import_graph(sources, "pkg")
    assert graph == {
        "pkg": {"pkg.client"},
        "pkg.auth": {"pkg.client"},
        "pkg.client": {"pkg.auth"},
        "pkg.models": {"pkg"},
    }
    assert on_cycle(find_cycle(graph)) == {"pkg.auth", "pkg.client"}
    type_checking_only = "if TYPE_CHECKING:\n    from pkg.client import Client\n"
    lazy_only = "def client():\n    from pkg import client\n"
    for source in (type_checking_only, lazy_only):
        alone = {**sources, "pkg.auth": (source, False)}
        # `from pkg import client` also runs pkg/__init__, so that cycle may pass through pkg
        assert {"pkg.auth", "pkg.client"} <= on_cycle(find_cycle(import_graph(alone, "pkg")))


def test_a_server_import_is_caught() -> None:
    sources = {
        "payplat_sdk.a": ("import payplat.config\n", False),
        "payplat_sdk.b": ("def f():\n    from payplat import errors\n", False),
        "payplat_sdk.c": ("import payplat_sdk\nfrom payplat_sdk import models\n", False),
    }
    assert server_imports(sources) == {
        "payplat_sdk.a": {"payplat.config"},
        "payplat_sdk.b": {"payplat", "payplat.errors"},
    }
