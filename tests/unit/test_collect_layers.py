"""The collector imports downwards only (contract, settings; the package's version), and
nothing but its command imports it: the worker never loads aiohttp's server for it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pipeline"
ALLOWED = ("pipeline.collect", "pipeline.contract", "pipeline.settings", "pipeline.kafka")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module == "pipeline":
                names |= {f"pipeline.{alias.name}" for alias in node.names}
    return {name for name in names if name.startswith("pipeline")}


def test_the_collector_imports_only_the_layers_below_it() -> None:
    for path in sorted((PACKAGE / "collect").glob("*.py")):
        # `from pipeline import __version__`: the package's version, no layer.
        wrong = {n for n in imported(path) if not n.startswith(ALLOWED)} - {
            "pipeline", "pipeline.__version__"}  # fmt: skip
        assert not wrong, f"{path.name} imports {wrong}"


def test_only_its_command_imports_the_collector() -> None:
    importers = [
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "collect" not in path.relative_to(PACKAGE).parts[:1]
        and any(name.startswith("pipeline.collect") for name in imported(path))
    ]
    assert importers == ["cli/collect.py"]
