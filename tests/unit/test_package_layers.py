"""The package's layers import downwards only, and its packages import each other in no cycle.

docs/architecture.md names the layers: contract, store, kafka and settings < journey <
stream, simulate, report, collect < dashboards < cli. A package imports from layers below
its own, and from packages of its own layer as long as no two of them import each other
(through any chain). The edges (collect, alerts) import less than their layer allows, and
only their commands import them. Every import counts, at the top of a module or inside a
function, since both load the module. Nothing in the package imports the tests or the
benchmarks.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pipeline"
LAYERS = (
    {"contract", "store", "kafka", "settings", "compiled"},
    {"journey"},
    {"stream", "simulate", "report", "collect", "calibrate", "alerts", "rescore", "emit"},
    {"dashboards"},
    {"cli", "app"},  # the command line, and the Faust app `faust -A pipeline.app` loads
)
LAYER = {part: level for level, parts in enumerate(LAYERS) for part in parts}
# Edges held closer than their layer: what each imports (besides itself and the package's
# version), and the only files outside it that import it. The worker never loads aiohttp's
# server for the collector, nor waits on a webhook; `dashboards deploy` reads the
# departments' webhooks for Grafana's contact points. The alert delivery reads who was erased
# (pipeline/store/erasure.py, pure: the ledger's hashes and the erasures topic's messages),
# never the store itself: in embedded mode the worker's process alone may open it.
KEPT_APART = {
    "collect": ({"contract", "settings", "kafka"}, ["cli/collect.py"]),
    "alerts": ({"contract", "settings", "store"}, ["cli/alerts.py", "cli/dashboards.py"]),
}
# Imports known to go upwards, each with the issue that removes it. Empty is the goal.
ALLOWED_UPWARDS: set[tuple[str, str]] = set()


def part_of(path: Path) -> str:
    """The package (or top-level module) a source file belongs to."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_modules(path: Path) -> Iterator[tuple[str, int]]:
    """Each module a file imports (`from pipeline import x`: pipeline.x), with its line."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
            if node.module == "pipeline":
                yield from ((f"pipeline.{alias.name}", node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{path}:{node.lineno}: a relative import; name the module")


def imports_between_parts() -> dict[tuple[str, str], str]:
    """(importer, imported) -> the first place it happens, for imports across parts."""
    edges: dict[tuple[str, str], str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent == PACKAGE and path.name == "__init__.py":
            continue  # the package's version, imported by anyone
        importer = part_of(path)
        for module, line in imported_modules(path):
            names = module.split(".")
            if names[0] != "pipeline" or len(names) < 2 or names[1] == "__version__":
                continue
            if names[1] != importer:
                edges.setdefault((importer, names[1]), f"{path.relative_to(PACKAGE)}:{line}")
    return edges


def test_every_package_has_a_layer() -> None:
    parts = {part_of(path) for path in PACKAGE.glob("*") if path.suffix == ".py"
             or (path / "__init__.py").exists()} - {"__init__"}  # fmt: skip
    assert parts == set(LAYER), (
        f"place new packages in LAYERS (and in docs/architecture.md): {parts - set(LAYER)}; "
        f"gone: {set(LAYER) - parts}"
    )


def test_no_package_imports_a_higher_layer() -> None:
    upwards = {
        (importer, imported): where
        for (importer, imported), where in imports_between_parts().items()
        if LAYER[imported] > LAYER[importer] and (importer, imported) not in ALLOWED_UPWARDS
    }
    assert not upwards, "\n".join(f"{a} imports {b} ({w})" for (a, b), w in upwards.items())


def test_no_import_cycle_between_packages() -> None:
    edges = imports_between_parts()
    graph: dict[str, set[str]] = {}
    for importer, imported in edges:
        graph.setdefault(importer, set()).add(imported)

    def cycle_from(start: str) -> list[str] | None:
        path, stack = [start], [iter(sorted(graph.get(start, ())))]
        while stack:
            step = next(stack[-1], None)
            if step is None:
                stack.pop()
                path.pop()
            elif step == start:
                return [*path, start]
            elif step not in path:
                path.append(step)
                stack.append(iter(sorted(graph.get(step, ()))))
        return None

    cycles = [c for part in sorted(graph) if (c := cycle_from(part))]
    assert not cycles, "\n".join(
        " -> ".join(c) + ": " + ", ".join(edges[pair] for pair in itertools.pairwise(c))
        for c in cycles
    )


def pipeline_parts(path: Path) -> set[str]:
    """The parts of the package a file imports (`from pipeline import x`: x)."""
    return {
        names[1]
        for module, _ in imported_modules(path)
        if (names := module.split("."))[0] == "pipeline" and len(names) > 1
    } - {"__version__"}


@pytest.mark.parametrize("edge", sorted(KEPT_APART))
def test_an_edge_imports_only_what_it_is_allowed(edge: str) -> None:
    allowed = KEPT_APART[edge][0] | {edge}
    for path in sorted((PACKAGE / edge).rglob("*.py")):
        wrong = pipeline_parts(path) - allowed
        assert not wrong, f"{path.relative_to(PACKAGE)} imports {wrong}"


@pytest.mark.parametrize("edge", sorted(KEPT_APART))
def test_only_its_commands_import_an_edge(edge: str) -> None:
    importers = [
        path.relative_to(PACKAGE).as_posix()
        for path in sorted(PACKAGE.rglob("*.py"))
        if part_of(path) != edge and edge in pipeline_parts(path)
    ]
    assert importers == KEPT_APART[edge][1]


def test_the_package_never_imports_tests_or_benchmarks() -> None:
    wrong = [
        f"{path.relative_to(PACKAGE)}:{line} imports {module}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for module, line in imported_modules(path)
        if module.split(".")[0] in ("tests", "benchmarks")
    ]
    assert not wrong, wrong
