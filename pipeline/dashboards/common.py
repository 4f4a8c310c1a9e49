"""Shared defaults of every journeys dashboard, and one small factory per panel kind.

Every panel reads the ClickHouse datasource provisioned as `DATASOURCE_UID` and carries a
description (docs/dashboards.md repeats them for readers outside Grafana). Text variables
reach SQL only through `text_var`, never as `'$var'`: Grafana puts a single value in raw,
so a quote in it would end the literal (docs/dashboards.md#variables-and-quoting; the tests
expand every panel with `tests/support/dashboards/macros.py` and hostile values).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import barchart, stat, table, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    DataTransformerConfig,
    FieldColorModeId,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from pipeline.dashboards.query import PLUGIN_ID, ClickHouseQueryBuilder, QueryType
from pipeline.store.models import VERSIONS_SQL

DATASOURCE_UID = "journeys-clickhouse"
DATASOURCE_NAME = "Journeys ClickHouse"
DATASOURCE = DataSourceRef(type_val=PLUGIN_ID, uid=DATASOURCE_UID)
FOLDER_UID = "journeys"
FOLDER_TITLE = "Customer journeys"
TAGS = ["journeys"]
EXPLORER_PATH = "/d/journeys-explorer/journey-explorer"

Panel = dash.Panel | table.Panel | timeseries.Panel | stat.Panel | barchart.Panel


def text_var(name: str) -> str:
    """SQL for a text variable's value that no value can break out of (percent-encoded)."""
    return f"decodeURLComponent('${{{name}:percentencode}}')"


def new_dashboard(uid: str, title: str, description: str, time_from: str) -> dash.Dashboard:
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([*TAGS, uid.removeprefix("journeys-")])
        .timezone("utc")
        .time(time_from, "now")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .editable()
    )


def _target(sql: str, query_type: QueryType) -> ClickHouseQueryBuilder:
    return (
        ClickHouseQueryBuilder(sql.strip())
        .query_type(query_type)
        .ref_id("A")
        .datasource(DATASOURCE)
    )


def _place(panel: Panel, title: str, description: str, width: int, height: int) -> None:
    panel.title(title).description(description).datasource(DATASOURCE).span(width).height(height)


def timeseries_panel(
    title: str, description: str, sql: str, unit: str = "short", width: int = 12
) -> timeseries.Panel:
    """A `time` column, then numeric columns; string columns name the series."""
    panel = timeseries.Panel().with_target(_target(sql, "timeseries")).unit(unit)
    _place(panel, title, description, width, 8)
    return (
        panel.fill_opacity(10)
        .line_width(1)
        .legend(
            cb.VizLegendOptions()
            .display_mode(cm.LegendDisplayMode.TABLE)
            .placement(cm.LegendPlacement.RIGHT)
            .show_legend(True)
        )
    )


def table_panel(
    title: str, description: str, sql: str, width: int = 12, height: int = 8
) -> table.Panel:
    panel = table.Panel().with_target(_target(sql, "table"))
    _place(panel, title, description, width, height)
    return panel


def stat_panel(
    title: str, description: str, sql: str, unit: str = "short", width: int = 6
) -> stat.Panel:
    """One numeric column (one row)."""
    panel = stat.Panel().with_target(_target(sql, "table")).unit(unit)
    _place(panel, title, description, width, 5)
    return panel.graph_mode(cm.BigValueGraphMode.NONE)


def bar_panel(
    title: str, description: str, sql: str, unit: str = "short", width: int = 12
) -> barchart.Panel:
    """A string column for the bars, numeric columns for their lengths."""
    panel = barchart.Panel().with_target(_target(sql, "table")).unit(unit)
    _place(panel, title, description, width, 8)
    return panel.orientation(cm.VizOrientation.HORIZONTAL).show_value(cm.VisibilityMode.AUTO)


def matrix_heatmap_panel(
    title: str, description: str, sql: str, rows: str, columns: str, value: str, unit: str
) -> dash.Panel:
    """A category x category heatmap: Grafana's heatmap panel wants time on one axis, so a
    table pivoted by `groupingToMatrix` with colour-scaled cells draws department x stage."""
    panel = dash.Panel().type("table").with_target(_target(sql, "table")).unit(unit)
    _place(panel, title, description, 12, 10)
    panel.options({"showHeader": True, "cellHeight": "sm"})
    panel.with_transformation(
        DataTransformerConfig(
            id_val="groupingToMatrix",
            options={"rowField": rows, "columnField": columns, "valueField": value},
        )
    )
    return panel.color_scheme(dash.FieldColor().mode(FieldColorModeId.CONTINUOUS_YL_RD)).custom(
        {"cellOptions": {"type": "color-background"}, "align": "center"}
    )


def explorer_link(title: str = "Open in journey explorer") -> dash.DashboardLink:
    """A data link from a row holding `customer_id` and `journey_id` to the explorer."""
    url = (
        f"{EXPLORER_PATH}?var-customer=${{__data.fields.customer_id:percentencode}}"
        "&var-journey=${__data.fields.journey_id:percentencode}&${__url_time_range}"
    )
    return dash.DashboardLink(title).url(url)


def query_variable(name: str, label: str, sql: str) -> dash.QueryVariable:
    """A single-value variable whose options come from SQL (refreshed with the time range)."""
    return (
        dash.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query({"rawSql": sql.strip(), "editorType": "sql", "queryType": "table"})
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )


# The score model version a panel shows (migration 0007: a rescore's rows sit beside the
# live ones in the same tables; every journey-level figure reads one version).
MODEL = text_var("model")
# For the alert rules, which have no variables: the version the last started worker scores.
LIVE_MODEL = "(SELECT argMax(model_version, registered_at) FROM score_models WHERE role = 'live')"


def model_variable() -> dash.QueryVariable:
    """The model version to show, the live one listed first: with no saved choice Grafana
    selects the first option, so the panels open on the live model."""
    return (
        query_variable("model", "Score model", VERSIONS_SQL)
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(VariableSort.DISABLED)
    )


def text_variable(name: str, label: str, default: str = "") -> dash.TextBoxVariable:
    return (
        dash.TextBoxVariable(name)
        .label(label)
        .default_value(default)
        .current(VariableOption(selected=True, text=default, value=default))
    )


def custom_variable(name: str, label: str, values: list[str], default: str) -> dash.CustomVariable:
    return (
        dash.CustomVariable(name)
        .label(label)
        .values(",".join(values))
        .current(VariableOption(selected=True, text=default, value=default))
    )
