"""The house's import rule, on the source as written (import-linter, in `make lint`, holds the
direction between packages; this holds what it cannot say):

- boto3 and botocore are imported only in `dal` modules (and by the composition roots);
- a capability's domain modules never import a `dal` module, their own or another's: the
  handler wires storage in;
- between capabilities, only the modules a package exports (`__all__` of its `__init__`)
  are imported: the rest of a package is its own business.

The composition roots (functions/*, infra/*, `ops`, `api`) may import any module: they wire
or document the whole.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "layers" / "core"
COMPOSITION_ROOTS = frozenset({"ops", "api"})
AWS_SDK = frozenset({"boto3", "botocore"})


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the module imported (a `from x import y` of a submodule y names x.y)
    line: int


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(CORE).with_suffix("").parts).removesuffix(".__init__")


def is_package(name: str) -> bool:
    return (CORE / name.replace(".", "/") / "__init__.py").exists()


def imports_of(name: str, source: str) -> list[Import]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(name, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                is_module = (
                    is_package(submodule) or (CORE / (submodule.replace(".", "/") + ".py")).exists()
                )
                found.append(Import(name, submodule if is_module else node.module, node.lineno))
    return found


def capability(module: str) -> str | None:
    """`payplat.<package>.…` -> the package; None for the kernel and outside payplat."""
    parts = module.split(".")
    if parts[0] != "payplat" or len(parts) < 2 or not is_package(f"payplat.{parts[1]}"):
        return None
    return parts[1]


def exported(package: str) -> frozenset[str]:
    tree = ast.parse((CORE / package.replace(".", "/") / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return frozenset(ast.literal_eval(node.value))
    return frozenset()


def in_dal(module: str) -> bool:
    return "dal" in module.split(".")


def violations(imports: list[Import]) -> list[str]:
    problems = []
    for imp in imports:
        owner, target_cap = capability(imp.module), capability(imp.target)
        where = f"{imp.module}:{imp.line} imports {imp.target}"
        if owner in COMPOSITION_ROOTS:
            continue
        if imp.target.split(".")[0] in AWS_SDK and not in_dal(imp.module):
            problems.append(f"{where}: boto3 belongs in a dal module")
        if in_dal(imp.target) and not in_dal(imp.module):
            problems.append(f"{where}: domain code gets its storage injected, never imports it")
        if target_cap is not None and target_cap != owner:
            # Every package on the way must export the next step: payplat.x.dal.table needs
            # "dal" in payplat.x's __all__ and "table" in payplat.x.dal's.
            parts = imp.target.split(".")
            for depth in range(2, len(parts)):
                package, step = ".".join(parts[:depth]), parts[depth]
                if step not in exported(package):
                    problems.append(f"{where}: {package} does not export {step}")
                    break
    return problems


def tree_imports() -> list[Import]:
    found = []
    for path in sorted((CORE / "payplat").rglob("*.py")):
        found += imports_of(module_name(path), path.read_text())
    return found


def test_the_core_keeps_the_import_rule() -> None:
    imports = tree_imports()
    assert len(imports) > 300  # not vacuous: the whole core was read
    assert violations(imports) == []


@pytest.mark.parametrize(
    ("module", "source", "problem"),
    [
        ("payplat.payments.ledger", "import boto3\n", "boto3 belongs in a dal module"),
        (
            "payplat.payments.ledger",
            "from payplat.payments.dal.ledger_table import DynamoLedgerStore\n",
            "never imports it",
        ),
        (
            "payplat.webhooks.dispatch",
            "from payplat.payments.queries import get_payment\n",
            "payplat.payments does not export queries",
        ),
        (
            "payplat.gateway.access",
            "from payplat.oauth import authorize\n",
            "payplat.oauth does not export authorize",
        ),
    ],
)
def test_the_rule_catches_each_kind_of_break(module: str, source: str, problem: str) -> None:
    found = violations(imports_of(module, source))
    assert any(problem in line for line in found), found


def test_composition_roots_and_dal_modules_may_import_what_they_wire() -> None:
    allowed = (
        ("payplat.ops.cli", "import boto3\nfrom payplat.payments.queries import get_payment\n"),
        ("payplat.payments.dal.ledger_table", "import boto3\n"),
        (
            "payplat.webhooks.dal.webhooks_table",
            "from payplat.payments.dal import idempotency_items\n",
        ),
    )
    for module, source in allowed:
        assert violations(imports_of(module, source)) == []
