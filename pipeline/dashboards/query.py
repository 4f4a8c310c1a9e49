"""The ClickHouse query type: grafana-foundation-sdk ships no builder for the ClickHouse
datasource plugin, so this follows the SDK's custom-query example (a `Dataquery` variant
with `to_json`, plus a builder).

The JSON is what the plugin (grafana-clickhouse-datasource v4) saves for a raw SQL query:
`editorType: "sql"`, `queryType` ("table" or "timeseries") and `rawSql`. `format` is the
plugin's numeric result format (0 = time series, 1 = table).
"""

from __future__ import annotations

from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

PLUGIN_ID = "grafana-clickhouse-datasource"
QueryType = Literal["table", "timeseries"]
_FORMAT = {"timeseries": 0, "table": 1}


class ClickHouseQuery(cogvariants.Dataquery):
    """One raw-SQL query of the ClickHouse plugin."""

    def __init__(
        self,
        raw_sql: str,
        query_type: QueryType = "table",
        ref_id: str | None = None,
        datasource: DataSourceRef | None = None,
        hide: bool | None = None,
    ) -> None:
        self.raw_sql = raw_sql
        self.query_type = query_type
        self.ref_id = ref_id
        self.datasource = datasource
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "editorType": "sql",
            "format": _FORMAT[self.query_type],
            "queryType": self.query_type,
            "rawSql": self.raw_sql,
        }
        if self.ref_id is not None:
            payload["refId"] = self.ref_id
        if self.datasource is not None:
            payload["datasource"] = {"type": self.datasource.type_val, "uid": self.datasource.uid}
        if self.hide is not None:
            payload["hide"] = self.hide
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        datasource = data.get("datasource")
        return cls(
            raw_sql=data.get("rawSql", ""),
            query_type=data.get("queryType", "table"),
            ref_id=data.get("refId"),
            datasource=DataSourceRef(datasource.get("type"), datasource.get("uid"))
            if isinstance(datasource, dict)
            else None,
            hide=data.get("hide"),
        )


class ClickHouseQueryBuilder(builder.Builder[ClickHouseQuery]):
    def __init__(self, raw_sql: str) -> None:
        self._internal = ClickHouseQuery(raw_sql=raw_sql)

    def build(self) -> ClickHouseQuery:
        return self._internal

    def query_type(self, query_type: QueryType) -> Self:
        self._internal.query_type = query_type
        return self

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def datasource(self, datasource: DataSourceRef) -> Self:
        self._internal.datasource = datasource
        return self

    def hide(self, hide: bool) -> Self:
        self._internal.hide = hide
        return self
