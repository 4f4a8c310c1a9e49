"""The queries the dashboards send, and what each panel type needs back.

The tests (and the benchmarks) read panels and variables from the generated JSON, exactly
what Grafana provisions, plus the alert rules; expand them with `macros.expand`, run them,
and check the result columns with `column_problems`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.dashboards import DASHBOARDS, REPO_DASHBOARDS_DIR
from pipeline.dashboards.alerts import RULES

NUMERIC_PREFIXES = ("UInt", "Int", "Float", "Decimal", "Nullable(UInt", "Nullable(Int",
                    "Nullable(Float", "Nullable(Decimal")  # fmt: skip
TIME_PREFIXES = ("DateTime", "Date", "Nullable(DateTime")
TEXT_TYPES = ("String", "LowCardinality(String)", "Nullable(String)")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    title: str
    panel_type: str  # "timeseries", "table", "stat", "barchart", or "variable"
    sql: str
    transformations: tuple[dict[str, Any], ...] = ()

    @property
    def name(self) -> str:
        return f"{self.dashboard} / {self.title}"


def panel_queries(model: dict[str, Any]) -> Iterator[PanelQuery]:
    """Every panel target and every query variable of a dashboard model."""
    uid = str(model["uid"])
    for panel in model.get("panels", []):
        for target in panel.get("targets", []):
            yield PanelQuery(
                uid, str(panel["title"]), str(panel["type"]), str(target["rawSql"]),
                tuple(panel.get("transformations") or ()),
            )  # fmt: skip
    for variable in model.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            yield PanelQuery(uid, f"${variable['name']}", "variable", variable["query"]["rawSql"])


def committed_queries(directory: Path = REPO_DASHBOARDS_DIR) -> list[PanelQuery]:
    """Every query of the committed dashboards (what Grafana provisions) and alert rules."""
    models = [json.loads((directory / f"{name}.json").read_text()) for name in DASHBOARDS]
    alerts = [PanelQuery("alerts", rule.title, "table", rule.sql) for rule in RULES]
    return [query for model in models for query in panel_queries(model)] + alerts


def _is(kind: Sequence[str] | str, clickhouse_type: str) -> bool:
    prefixes = (kind,) if isinstance(kind, str) else tuple(kind)
    return clickhouse_type.startswith(prefixes)


def column_problems(query: PanelQuery, columns: Sequence[tuple[str, str]]) -> list[str]:
    """What is wrong with these (name, ClickHouse type) result columns for the panel type."""
    types = [t for _, t in columns]
    names = [n for n, _ in columns]
    numeric = [t for t in types if _is(NUMERIC_PREFIXES, t)]
    problems = []
    if not columns:
        problems.append("returns no columns")
    if query.panel_type == "timeseries":
        if not types or not _is(TIME_PREFIXES, types[0]) or names[0] != "time":
            problems.append(f"first column must be a time named `time`, got {columns[:1]}")
        if not numeric:
            problems.append("needs at least one numeric column")
    elif query.panel_type in ("stat",) and len(numeric) != 1:
        problems.append(f"needs exactly one numeric column, got {columns}")
    elif query.panel_type == "barchart":
        if not types or not _is(TEXT_TYPES, types[0]) or not numeric:
            problems.append(f"needs a text column first and numeric columns, got {columns}")
    elif query.panel_type == "variable" and len(columns) not in (1, 2):
        problems.append(f"a variable query returns 1 (value) or 2 (id, text) columns: {columns}")
    for transformation in query.transformations:
        if transformation.get("id") == "groupingToMatrix":
            wanted = transformation["options"].values()
            problems += [f"groupingToMatrix needs column {w!r}" for w in wanted if w not in names]
    return problems
