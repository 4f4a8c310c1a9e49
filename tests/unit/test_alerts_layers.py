"""Alert delivery imports downwards only (contract, settings; the package's version), and
nothing but commands import it (`alerts`, and `dashboards deploy` for the departments'
webhook URLs): the worker never waits on a webhook."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pipeline"
ALLOWED = ("pipeline.alerts", "pipeline.contract", "pipeline.settings")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return {name for name in names if name.startswith("pipeline")}


def test_alert_delivery_imports_only_the_layers_below_it() -> None:
    for path in sorted((PACKAGE / "alerts").glob("*.py")):
        wrong = {n for n in imported(path) if not n.startswith(ALLOWED)} - {
            "pipeline", "pipeline.__version__"}  # fmt: skip
        assert not wrong, f"{path.name} imports {wrong}"


def test_only_commands_import_alert_delivery() -> None:
    importers = [
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] != "alerts"
        and any(name.startswith("pipeline.alerts") for name in imported(path))
    ]
    # `dashboards deploy` reads the departments' webhooks for Grafana's contact points.
    assert sorted(importers) == ["cli/alerts.py", "cli/dashboards.py"]
