"""Expand a panel's SQL the way Grafana and the ClickHouse plugin do before it reaches ClickHouse.

Two steps, in Grafana's order:

1. template variables, in the browser (Grafana's template service): `$var`, `${var}`,
   `${var:format}`, `[[var]]`, and the built-ins `$__from`, `$__to`, `$__interval`,
   `$__interval_ms`, `$__range_s`. Without a format, the ClickHouse plugin's own formatter
   applies: a list becomes `'a','b'` and a single value goes in **raw**, unescaped. That is why
   every panel in `pipeline.dashboards` passes text variables through `${var:percentencode}`
   and `decodeURLComponent(...)` (`common.text_var`): percent-encoding leaves only
   `[A-Za-z0-9-_.~%]`, so no value can close the string literal (`:singlequote` escapes `'`
   but not `\\`).
2. the plugin's macros, in its Go backend (grafana/clickhouse-datasource `pkg/macros`):
   `$__timeFilter(col)`, `$__timeFilter_ms(col)`, `$__dateFilter(col)`,
   `$__dateTimeFilter(d, t)` / `$__dt(d, t)`, `$__fromTime`, `$__toTime`, `$__fromTime_ms`,
   `$__toTime_ms`, `$__timeInterval(col)`, `$__timeInterval_ms(col)`, `$__interval_s`.

Tests run every panel's SQL through `expand` and then on chdb, so a panel that would fail in
Grafana fails here first.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

VariableValue = str | Sequence[str]


class MacroError(ValueError):
    """A query uses a macro or variable format wrongly; the message names which and why."""


@dataclass(frozen=True)
class QueryContext:
    """What Grafana knows when it runs a panel: the time range, interval and variable values."""

    time_from: datetime
    time_to: datetime
    interval: timedelta = timedelta(minutes=1)
    variables: Mapping[str, VariableValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("time_from", "time_to"):
            value = getattr(self, name)
            if value.tzinfo is None:
                raise MacroError(f"{name}={value!r}: expected a timezone-aware datetime")
        if self.time_to < self.time_from:
            raise MacroError(f"time_to={self.time_to} is before time_from={self.time_from}")


def expand(sql: str, context: QueryContext) -> str:
    """The SQL ClickHouse receives for this panel query in this context."""
    return expand_macros(interpolate_variables(sql, context), context)


# --- step 1: template variables (Grafana frontend) -------------------------------------

_VARIABLE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}"
)


def _strict_percent_encode(value: str) -> str:
    # encodeURIComponent plus !'()* (Grafana's encodeURIComponentStrict).
    return urllib.parse.quote(value, safe="-_.~")


def _single_quote(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'"


def _double_quote(value: str) -> str:
    return '"' + value.replace('"', '\\"') + '"'


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _regex_escape(value: str) -> str:
    return re.sub(r"[\\^$*+?.()|{}\[\]/]", lambda m: "\\" + m.group(0), value)


def _per_value(join: str, wrap: Callable[[str], str]) -> Callable[[VariableValue], str]:
    def formatter(value: VariableValue) -> str:
        values = [value] if isinstance(value, str) else list(value)
        return join.join(wrap(v) for v in values)

    return formatter


def _plugin_default(value: VariableValue) -> str:
    # The ClickHouse plugin's `format`: lists quoted without escaping, scalars raw.
    return value if isinstance(value, str) else "'" + "','".join(value) + "'"


def _percent_encode(value: VariableValue) -> str:
    text = value if isinstance(value, str) else "{" + ",".join(value) + "}"
    return _strict_percent_encode(text)


def _regex(value: VariableValue) -> str:
    if isinstance(value, str):
        return _regex_escape(value)
    return "(" + "|".join(_regex_escape(v) for v in value) + ")"


def _json(value: VariableValue) -> str:
    return value if isinstance(value, str) else json.dumps(list(value), separators=(",", ":"))


FORMATS: dict[str, Callable[[VariableValue], str]] = {
    "raw": _per_value(",", str),
    "text": _per_value(" + ", str),
    "csv": _per_value(",", str),
    "pipe": _per_value("|", str),
    "singlequote": _per_value(",", _single_quote),
    "doublequote": _per_value(",", _double_quote),
    "sqlstring": _per_value(",", _sql_string),
    "percentencode": _percent_encode,
    "regex": _regex,
    "json": _json,
}


def _builtin_variables(context: QueryContext) -> dict[str, str]:
    span = context.time_to - context.time_from
    interval_ms = max(int(context.interval.total_seconds() * 1000), 1)
    return {
        "__from": str(int(context.time_from.timestamp() * 1000)),
        "__to": str(int(context.time_to.timestamp() * 1000)),
        "__interval": _grafana_interval(interval_ms),
        "__interval_ms": str(interval_ms),
        "__range_s": str(int(span.total_seconds())),
        "__range_ms": str(int(span.total_seconds() * 1000)),
    }


def _grafana_interval(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def interpolate_variables(sql: str, context: QueryContext) -> str:
    builtins = _builtin_variables(context)

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        if name in builtins:
            return builtins[name]
        if name not in context.variables:
            return match.group(0)  # Grafana leaves unknown names (and macros) alone
        value = context.variables[name]
        if fmt is None:
            return _plugin_default(value)
        if fmt not in FORMATS:
            raise MacroError(f"${{{name}:{fmt}}}: unknown variable format {fmt!r}")
        return FORMATS[fmt](value)

    return _VARIABLE.sub(replace, sql)


# --- step 2: the ClickHouse plugin's macros (Go backend) --------------------------------


def _date_time(moment: datetime) -> str:
    return f"toDateTime({int(moment.timestamp())})"


def _date_time_ms(moment: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(moment.timestamp() * 1000)})"


def _date(moment: datetime) -> str:
    return f"toDate('{moment.astimezone(UTC):%Y-%m-%d}')"


def _range(column: str, render: Callable[[datetime], str], context: QueryContext) -> str:
    return f"{column} >= {render(context.time_from)} AND {column} <= {render(context.time_to)}"


def _interval_seconds(context: QueryContext) -> int:
    return max(int(context.interval.total_seconds()), 1)


MacroFunction = Callable[[list[str], QueryContext], str]

MACROS: dict[str, tuple[int, MacroFunction]] = {
    "fromTime": (0, lambda a, c: _date_time(c.time_from)),
    "toTime": (0, lambda a, c: _date_time(c.time_to)),
    "fromTime_ms": (0, lambda a, c: _date_time_ms(c.time_from)),
    "toTime_ms": (0, lambda a, c: _date_time_ms(c.time_to)),
    "timeFilter": (1, lambda a, c: _range(a[0], _date_time, c)),
    "timeFilter_ms": (1, lambda a, c: _range(a[0], _date_time_ms, c)),
    "dateFilter": (1, lambda a, c: _range(a[0], _date, c)),
    "dateTimeFilter": (
        2,
        lambda a, c: f"({_range(a[0], _date, c)}) AND ({_range(a[1], _date_time, c)})",
    ),
    "dt": (2, lambda a, c: f"({_range(a[0], _date, c)}) AND ({_range(a[1], _date_time, c)})"),
    "timeInterval": (
        1,
        lambda a, c: (
            f"toStartOfInterval(toDateTime({a[0]}), INTERVAL {_interval_seconds(c)} second)"
        ),
    ),
    "timeInterval_ms": (
        1,
        lambda a, c: (
            f"toStartOfInterval(toDateTime64({a[0]}, 3), "
            f"INTERVAL {max(int(c.interval.total_seconds() * 1000), 1)} millisecond)"
        ),
    ),
    "interval_s": (0, lambda a, c: str(_interval_seconds(c))),
}

# A word boundary after the name keeps `$__fromTime` from matching inside `$__fromTime_ms`.
_MACRO = re.compile(r"\$__(\w+)\b(?:\(([^()]*)\))?")


def expand_macros(sql: str, context: QueryContext) -> str:
    def replace(match: re.Match[str]) -> str:
        name, raw_args = match.group(1), match.group(2)
        if name not in MACROS:
            raise MacroError(f"$__{name}: not a ClickHouse plugin macro (known: {sorted(MACROS)})")
        arity, function = MACROS[name]
        args = [a.strip() for a in raw_args.split(",")] if raw_args else []
        if len(args) != arity:
            raise MacroError(f"$__{name}: expected {arity} argument(s), received {len(args)}")
        return function(args, context)

    return _MACRO.sub(replace, sql)
