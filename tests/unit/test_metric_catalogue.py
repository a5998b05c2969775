"""The metric catalogue is the only source of metric names: payplat.audit.emf writes nothing it
does not name, with exactly its unit and dimensions, and every call site in the code names a
catalogue metric (read from the source, so a path no test runs cannot drift either). The CDK
dashboards and alarms are built from the catalogue: a metric outside it is a metric nobody
sees, and a chart of a metric nobody writes stays empty."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from payplat.audit import emf, metrics
from payplat.audit.metrics import (
    ACCESS_DENIED,
    BY_NAME,
    CATALOGUE,
    LATENCY,
    MONEY_MOVED,
    MONEY_MOVEMENTS,
    REQUESTS,
    MetricSpec,
)

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (ROOT / "layers", ROOT / "functions")


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


# -- the helper ---------------------------------------------------------------------------


def test_metric_writes_one_emf_line_with_the_catalogues_unit_and_dimensions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    emf.metric(ACCESS_DENIED, reason="expired")

    [line] = lines(capsys.readouterr().out)
    [directive] = line["_aws"]["CloudWatchMetrics"]
    assert directive == {
        "Namespace": "Payplat",
        "Dimensions": [["service", "reason"]],
        "Metrics": [{"Name": "AccessDenied", "Unit": "Count"}],
    }
    assert (line["service"], line["reason"], line["AccessDenied"]) == ("payplat", "expired", 1)


def test_metrics_of_different_dimension_sets_share_a_line_one_directive_each(
    capsys: pytest.CaptureFixture[str],
) -> None:
    emf.metrics(((REQUESTS, 1), (LATENCY, 12.5)), route="token", status_class="2xx")

    [line] = lines(capsys.readouterr().out)
    directives = {
        directive["Metrics"][0]["Name"]: directive
        for directive in line["_aws"]["CloudWatchMetrics"]
    }
    assert directives["Requests"]["Dimensions"] == [["service", "route", "status_class"]]
    assert directives["Latency"]["Dimensions"] == [["service", "route"]]
    assert directives["Latency"]["Metrics"] == [{"Name": "Latency", "Unit": "Milliseconds"}]
    assert (line["Requests"], line["Latency"]) == (1, 12.5)


def test_properties_ride_along_but_are_not_dimensions_and_never_overwrite(
    capsys: pytest.CaptureFixture[str],
) -> None:
    emf.metrics(
        ((MONEY_MOVEMENTS, 1), (MONEY_MOVED, 500)),
        properties={"client_id": "ppc_1", "currency": "XXX", "MoneyMovements": 7},
        kind="payment",
        currency="EUR",
    )

    [line] = lines(capsys.readouterr().out)
    assert line["client_id"] == "ppc_1"
    assert (line["currency"], line["MoneyMovements"]) == ("EUR", 1)
    assert line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "kind", "currency"]]


@pytest.mark.parametrize(
    ("spec", "dimensions"),
    [
        pytest.param(MetricSpec("Made", "Count", (), "not catalogued"), {}, id="unknown metric"),
        pytest.param(
            MetricSpec("AccessDenied", "Count", ("client_id",), "a lookalike"),
            {"client_id": "ppc_1"},
            id="a catalogue name with other dimensions",
        ),
        pytest.param(ACCESS_DENIED, {}, id="missing dimension"),
        pytest.param(ACCESS_DENIED, {"reason": "x", "client_id": "ppc_1"}, id="extra dimension"),
        pytest.param(ACCESS_DENIED, {"reason": "x", "service": "other"}, id="service override"),
    ],
)
def test_the_helper_refuses_what_the_catalogue_does_not_say(
    spec: MetricSpec, dimensions: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(emf.UnknownMetric):
        emf.metric(spec, 1, **dimensions)
    assert capsys.readouterr().out == ""


def test_metrics_refuses_a_dimension_no_metric_of_the_line_has() -> None:
    with pytest.raises(emf.UnknownMetric):
        emf.metrics(((LATENCY, 1.0),), route="token", status_class="2xx")


def test_the_string_named_functions_are_held_to_the_catalogue_too() -> None:
    with pytest.raises(emf.UnknownMetric):
        emf.count("AccessAllowed", reason="ok")  # not catalogued
    with pytest.raises(emf.UnknownMetric):
        emf.emit("Latency", 3.0, "Count", route="token")  # wrong unit
    with pytest.raises(emf.UnknownMetric):
        emf.document("AccessDenied", 1, "Count", reason="x", client_id="ppc_1")
    with pytest.raises(emf.UnknownMetric):
        emf.emit_many({"MoneyMovedMinorUnits": (5, "Count")}, kind="payment", currency="EUR")
    assert emf.document("AccessDenied", 1, "Count", reason="expired")["AccessDenied"] == 1


# -- every call site in the code -----------------------------------------------------------


@dataclass(frozen=True)
class Emitter:
    """How a function takes its metric. `kind`: "name" (a metric name as argument `index`
    or keyword `param`, in `unit` or, when None, the unit argument), "values" (a dict of
    name -> (value, unit)), "spec" (a MetricSpec), "specs" (a tuple of (spec, value)).
    `skip`: the keywords that are not dimensions."""

    kind: str
    index: int = 0
    param: str = "name"
    unit: str | None = None
    skip: frozenset[str] = frozenset()


_EMF = {
    "count": Emitter("name", unit="Count", skip=frozenset({"name", "value"})),
    "emit": Emitter("name", skip=frozenset({"name", "value", "unit"})),
    "document": Emitter("name", skip=frozenset({"name", "value", "unit"})),
    "emit_many": Emitter("values", param="values", skip=frozenset({"values", "properties"})),
    "documents": Emitter("values", param="values", skip=frozenset({"values"})),
    "metric": Emitter("spec", param="spec", skip=frozenset({"spec", "value"})),
    "metrics": Emitter("specs", param="values", skip=frozenset({"values", "properties"})),
}
BASE_EMITTERS = {
    (module, function): emitter
    for module in ("payplat.audit.emf", "payplat.observability")
    for function, emitter in _EMF.items()
}


@dataclass(frozen=True)
class Site:
    where: str
    name: str
    dimensions: frozenset[str]


@dataclass
class Scan:
    sites: list[Site]
    problems: list[str]


class Module:
    """One source file: what its names refer to (imports, its own functions)."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.tree = ast.parse(source)
        self.names: dict[str, tuple[str, str]] = {}  # local name -> (module, attribute)
        self.modules: dict[str, str] = {}  # local name -> module
        for statement in self.tree.body:
            if isinstance(statement, ast.FunctionDef):
                self.names[statement.name] = (name, statement.name)
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    local = alias.asname or alias.name
                    self.names[local] = (node.module, alias.name)
                    if node.module.split(".")[0] == "payplat":  # a module of a package
                        self.modules[local] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self.modules[alias.asname or alias.name] = alias.name

    def target(self, func: ast.expr) -> tuple[str, str] | None:
        if isinstance(func, ast.Name):
            return self.names.get(func.id)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            module = self.modules.get(func.value.id)
            return (module, func.attr) if module else None
        return None

    def spec(self, node: ast.expr | None) -> MetricSpec | None:
        found = self.target(node) if isinstance(node, ast.Name | ast.Attribute) else None
        if found is None or found[0] != "payplat.audit.metrics":
            return None
        value = getattr(metrics, found[1], None)
        return value if isinstance(value, MetricSpec) else None

    def metric_name(self, node: ast.expr | None) -> str | None:
        """A string literal, or `SPEC.name`."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Attribute) and node.attr == "name":
            spec = self.spec(node.value)
            return spec.name if spec else None
        return None

    def unit(self, node: ast.expr | None) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Attribute) and node.attr == "unit":
            spec = self.spec(node.value)
            return spec.unit if spec else None
        return None

    def calls(self) -> Iterator[tuple[ast.Call, ast.FunctionDef | None]]:
        """Every call, with the top-level function it is in."""
        for node in self.tree.body:
            function = node if isinstance(node, ast.FunctionDef) else None
            for child in ast.walk(node):
                if isinstance(child, ast.Call):
                    yield child, function


def _argument(call: ast.Call, index: int, keyword: str) -> ast.expr | None:
    if len(call.args) > index:
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def _parameters(function: ast.FunctionDef) -> list[str]:
    return [arg.arg for arg in function.args.posonlyargs + function.args.args]


def _passed_on(call: ast.Call, emitter: Emitter, function: ast.FunctionDef | None) -> str | None:
    """The enclosing function's parameter this call takes its metric name from, if any."""
    if emitter.kind != "name" or function is None:
        return None
    node = _argument(call, emitter.index, emitter.param)
    names = _parameters(function) + [arg.arg for arg in function.args.kwonlyargs]
    return node.id if isinstance(node, ast.Name) and node.id in names else None


def find_forwarders(modules: list[Module]) -> dict[tuple[str, str], Emitter]:
    """Functions that hand their own metric parameter on (audit.record, audit.line): they
    are emitters too, and their callers are the sites to check."""
    emitters = dict(BASE_EMITTERS)
    changed = True
    while changed:
        changed = False
        for module in modules:
            for call, function in module.calls():
                target = module.target(call.func)
                emitter = emitters.get(target) if target else None
                if emitter is None or function is None:
                    continue
                parameter = _passed_on(call, emitter, function)
                key = (module.name, function.name)
                if parameter is None or key in emitters:
                    continue
                unit = emitter.unit or module.unit(_argument(call, 2, "unit"))
                positional = _parameters(function)
                emitters[key] = Emitter(
                    "name",
                    index=positional.index(parameter) if parameter in positional else 99,
                    param=parameter,
                    unit=unit,
                    skip=frozenset(positional + [a.arg for a in function.args.kwonlyargs]),
                )
                changed = True
    return emitters


def _dimension_names(
    call: ast.Call, function: ast.FunctionDef | None, skip: frozenset[str]
) -> frozenset[str] | None:
    """The dimension keywords of `call`; a `**mapping` counts when it is a dict literal
    with literal keys (or one assigned once in the same function). None: unreadable."""
    names: set[str] = set()
    for keyword in call.keywords:
        if keyword.arg is not None:
            if keyword.arg not in skip:
                names.add(keyword.arg)
            continue
        literal = _dict_keys(keyword.value, function)
        if literal is None:
            return None
        names |= literal
    return frozenset(names)


def _dict_keys(node: ast.expr, function: ast.FunctionDef | None) -> set[str] | None:
    if isinstance(node, ast.Name) and function is not None:
        assigned = [
            statement.value
            for statement in ast.walk(function)
            if isinstance(statement, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == node.id for t in statement.targets)
        ]
        node = assigned[0] if len(assigned) == 1 else node
    if not isinstance(node, ast.Dict):
        return None
    keys = [k.value if isinstance(k, ast.Constant) else None for k in node.keys]
    return (
        {k for k in keys if isinstance(k, str)} if all(isinstance(k, str) for k in keys) else None
    )


def scan_modules(modules: list[Module], where: dict[str, str]) -> Scan:
    emitters = find_forwarders(modules)
    scan = Scan([], [])
    for module in modules:
        for call, function in module.calls():
            target = module.target(call.func)
            emitter = emitters.get(target) if target else None
            if emitter is None or _passed_on(call, emitter, function):
                continue
            at = f"{where[module.name]}:{call.lineno}"
            dims = _dimension_names(call, function, emitter.skip)
            if emitter.kind == "name":
                node = _argument(call, emitter.index, emitter.param)
                if node is None or (isinstance(node, ast.Constant) and node.value is None):
                    continue  # no metric (an audit record that counts nothing)
                unit = emitter.unit or module.unit(_argument(call, 2, "unit"))
                _check(scan, at, [(module.metric_name(node), unit)], dims)
            elif emitter.kind == "values":
                _check(scan, at, _values(module, _argument(call, 0, emitter.param)), dims)
            elif emitter.kind == "spec":
                spec = module.spec(_argument(call, 0, emitter.param))
                _check(scan, at, [(spec.name, spec.unit) if spec else (None, None)], dims)
            else:
                _check_specs(scan, at, module, _argument(call, 0, emitter.param), dims)
    return scan


def _values(module: Module, node: ast.expr | None) -> list[tuple[str | None, str | None]]:
    if not isinstance(node, ast.Dict) or not node.keys:
        return [(None, None)]
    pairs: list[tuple[str | None, str | None]] = []
    for key, value in zip(node.keys, node.values, strict=True):
        pair = isinstance(value, ast.Tuple) and len(value.elts) == 2
        unit = module.unit(value.elts[1]) if isinstance(value, ast.Tuple) and pair else None
        pairs.append((module.metric_name(key), unit))
    return pairs


def _check(
    scan: Scan,
    at: str,
    pairs: list[tuple[str | None, str | None]],
    dims: frozenset[str] | None,
) -> None:
    for name, unit in pairs:
        spec = BY_NAME.get(name) if name else None
        if name is None:
            scan.problems.append(f"{at}: the metric is not a literal or a catalogue spec")
        elif spec is None:
            scan.problems.append(f"{at}: {name} is not in the catalogue")
        elif unit != spec.unit:
            scan.problems.append(f"{at}: {name} in {unit}, the catalogue says {spec.unit}")
        elif dims is None:
            scan.problems.append(f"{at}: {name}: dimensions unreadable (use keywords)")
        elif dims != frozenset(spec.dimensions):
            scan.problems.append(
                f"{at}: {name} with {sorted(dims)}, the catalogue says {list(spec.dimensions)}"
            )
        else:
            scan.sites.append(Site(at, name, dims))


def _check_specs(
    scan: Scan, at: str, module: Module, node: ast.expr | None, dims: frozenset[str] | None
) -> None:
    """metrics(((SPEC, value), ...), **dims): each spec's dimensions among the line's, and
    every dimension of the line some spec's."""
    if not isinstance(node, ast.Tuple | ast.List) or dims is None:
        scan.problems.append(f"{at}: metrics() needs a literal tuple of specs and keywords")
        return
    used: set[str] = set()
    for element in node.elts:
        pair = isinstance(element, ast.Tuple) and len(element.elts) == 2
        spec = module.spec(element.elts[0]) if isinstance(element, ast.Tuple) and pair else None
        if spec is None:
            scan.problems.append(f"{at}: metrics() with a value that is not a catalogue spec")
            continue
        if not set(spec.dimensions) <= dims:
            scan.problems.append(f"{at}: {spec.name} lacks {sorted(set(spec.dimensions) - dims)}")
            continue
        used |= set(spec.dimensions)
        scan.sites.append(Site(at, spec.name, frozenset(spec.dimensions)))
    if dims - used:
        scan.problems.append(f"{at}: {sorted(dims - used)}: no dimension of these metrics")


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT / "layers" / "core" if "layers" in path.parts else ROOT)
    return ".".join(relative.with_suffix("").parts)


def scan_tree() -> Scan:
    modules, where = [], {}
    for root in SOURCES:
        for path in sorted(root.rglob("*.py")):
            if module_name(path) == "payplat.audit.emf":
                continue  # the writer itself, not a call site
            module = Module(module_name(path), path.read_text())
            modules.append(module)
            where[module.name] = str(path.relative_to(ROOT))
    return scan_modules(modules, where)


def scan_source(source: str) -> Scan:
    """A snippet scanned with the real audit module (whose record() forwards a metric)."""
    audit = ROOT / "layers" / "core" / "payplat" / "audit" / "events.py"
    modules = [Module("payplat.audit.events", audit.read_text()), Module("example", source)]
    scan = scan_modules(modules, {"payplat.audit.events": "audit.py", "example": "example.py"})
    scan.sites = [site for site in scan.sites if site.where.startswith("example.py")]
    return scan


def test_every_metric_the_code_writes_is_catalogued_with_its_unit_and_dimensions() -> None:
    scan = scan_tree()

    assert scan.problems == []
    emitted = {site.name for site in scan.sites}
    # Not vacuous, and no chart of a metric nobody writes: every catalogue metric has a
    # writer...
    assert {spec.name for spec in CATALOGUE} - emitted == set()
    # ...found however it is written: count(), metric(), metrics(), emit_many() with
    # SPEC.name keys, and audit.record(metric=...) through the functions it forwards to.
    assert {"Requests", "Latency", "AccessDenied", "MoneyMovedMinorUnits"} <= emitted
    assert any(site.where.startswith("layers/core/payplat/gateway/") for site in scan.sites)


@pytest.mark.parametrize(
    "source",
    [
        'from payplat.audit.emf import count\ncount("Nope")\n',
        'from payplat.observability import count\ncount("AccessDenied", why="x")\n',
        'from payplat.audit import emf\nemf.emit("Latency", 1.0, "Seconds", route="r")\n',
        "from payplat.audit import emf\n"
        "name = 'Requests'\nemf.count(name, route='r', status_class='2')",
        "from payplat.audit.emf import metric\nfrom payplat.audit.metrics import LATENCY\n"
        "metric(LATENCY, 1.0, route='r', status_class='2xx')\n",
        "from payplat.observability import metrics\nfrom payplat.audit.metrics import REQUESTS\n"
        "metrics(((REQUESTS, 1),), route='r')\n",
        "from payplat.audit import events as audit\n"
        "audit.record(event, metric='AccessAllowed', reason='ok')\n",
        "from payplat.audit import events as audit\n"
        "def f(m):\n    audit.record(event, metric=m, reason='ok')\n"
        "f('AccessAllowed')\n",
        "from payplat.audit.events import record\nfrom payplat.audit.metrics import ACCESS_DENIED\n"
        "record(event, ACCESS_DENIED.name, reason='r', route='x')\n",
        "from payplat.audit import emf\nfrom payplat.audit.metrics import MONEY_MOVED\n"
        "def f(d):\n    emf.emit_many({MONEY_MOVED.name: (1, 'None')}, **d)\n",
        "from payplat.audit import emf\nfrom payplat.audit.metrics import MONEY_MOVED\n"
        "emf.emit_many({MONEY_MOVED.name: (1, 'Count')}, kind='k', currency='c')\n",
    ],
)
def test_the_scan_catches_a_call_outside_the_catalogue(source: str) -> None:
    assert scan_source(source).problems != []


def test_the_scan_reads_the_ways_the_code_writes_a_metric() -> None:
    source = (
        "from payplat.audit import emf, events as audit\n"
        "from payplat.audit.metrics import ACCESS_DENIED, MONEY_MOVED, MONEY_MOVEMENTS\n"
        "parts = 'a.b.c'.count('.')\n"  # not a metric
        "audit.record(event)\n"  # an audit record without one
        "audit.record(event, metric=ACCESS_DENIED.name, reason='expired')\n"
        "def f(kind, currency):\n"
        "    dimensions = {'kind': kind, 'currency': currency}\n"
        "    emf.emit_many({MONEY_MOVEMENTS.name: (1, MONEY_MOVEMENTS.unit),\n"
        "                   MONEY_MOVED.name: (5, 'None')}, properties={}, **dimensions)\n"
    )
    scan = scan_source(source)

    assert scan.problems == []
    assert sorted(site.name for site in scan.sites) == [
        "AccessDenied",
        "MoneyMovedMinorUnits",
        "MoneyMovements",
    ]
