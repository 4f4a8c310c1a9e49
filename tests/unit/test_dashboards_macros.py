"""The macro expander does what grafana/clickhouse-datasource (pkg/macros) and Grafana's
template service do, including the escaping that keeps a variable value inside its literal."""

from __future__ import annotations

import re
import urllib.parse
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.dashboards.common import text_var
from tests.support.dashboards.macros import MacroError, QueryContext, expand

FROM = datetime(2026, 3, 1, 8, 0, 0, 250_000, tzinfo=UTC)  # 1772352000.25
TO = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # 1772443800


def context(**variables: str | list[str]) -> QueryContext:
    return QueryContext(FROM, TO, timedelta(seconds=30), variables)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("$__timeFilter(t)", "t >= toDateTime(1772352000) AND t <= toDateTime(1772443800)"),
        (
            "$__timeFilter_ms( t )",
            "t >= fromUnixTimestamp64Milli(1772352000250) AND "
            "t <= fromUnixTimestamp64Milli(1772443800000)",
        ),
        ("$__dateFilter(d)", "d >= toDate('2026-03-01') AND d <= toDate('2026-03-02')"),
        ("$__fromTime", "toDateTime(1772352000)"),
        ("$__toTime", "toDateTime(1772443800)"),
        ("$__fromTime_ms", "fromUnixTimestamp64Milli(1772352000250)"),
        ("$__toTime_ms", "fromUnixTimestamp64Milli(1772443800000)"),
        ("$__timeInterval(t)", "toStartOfInterval(toDateTime(t), INTERVAL 30 second)"),
        (
            "$__timeInterval_ms(t)",
            "toStartOfInterval(toDateTime64(t, 3), INTERVAL 30000 millisecond)",
        ),
        ("$__interval_s", "30"),
        (
            "$__dt(d, t)",
            "(d >= toDate('2026-03-01') AND d <= toDate('2026-03-02')) AND "
            "(t >= toDateTime(1772352000) AND t <= toDateTime(1772443800))",
        ),
    ],
)
def test_plugin_macros_expand_like_the_plugin(sql: str, expected: str) -> None:
    assert expand(sql, context()) == expected


def test_an_interval_below_a_second_is_one_second_like_the_plugin() -> None:
    tiny = QueryContext(FROM, TO, timedelta(milliseconds=200))
    assert expand("$__interval_s", tiny) == "1"


def test_grafana_builtins_are_replaced_in_the_browser_step() -> None:
    sql = "$__from $__to $__interval $__interval_ms ${__range_s}"
    assert expand(sql, context()) == "1772352000250 1772443800000 30s 30000 91799"


@pytest.mark.parametrize(
    ("sql", "value", "expected"),
    [
        # Grafana's own formatter test vectors (formatRegistry tests).
        ("${v:percentencode}", ["foo()bar BAZ", "test2"], "%7Bfoo%28%29bar%20BAZ%2Ctest2%7D"),
        ("${v:singlequote}", ["test", "test'2"], "'test','test\\'2'"),
        ("${v:doublequote}", ["test", 'test"2'], '"test","test\\"2"'),
        ("${v:sqlstring}", "test'value", "'test''value'"),
        ("${v:csv}", ["test", "test2"], "test,test2"),
        ("${v:pipe}", ["a", "b"], "a|b"),
        ("${v:json}", ["test", "x"], '["test","x"]'),
        ("${v:regex}", ["a.b", "c"], "(a\\.b|c)"),
        ("${v:raw}", "it's", "it's"),
        # The plugin's default format: lists quoted without escaping, scalars raw.
        ("$v", ["a", "b"], "'a','b'"),
        ("[[v]]", "x", "x"),
        ("${v}", "it's", "it's"),
    ],
)
def test_variable_formats(sql: str, value: str | list[str], expected: str) -> None:
    assert expand(sql, context(v=value)) == expected


def test_unknown_names_are_left_for_the_next_step_and_unknown_macros_are_errors() -> None:
    assert expand("$nope ${nope:raw}", context()) == "$nope ${nope:raw}"
    with pytest.raises(MacroError, match=r"\$__timeFilterz: not a ClickHouse plugin macro"):
        expand("$__timeFilterz(t)", context())


def test_bad_use_is_named() -> None:
    with pytest.raises(MacroError, match=r"\$__timeFilter: expected 1 argument\(s\), received 2"):
        expand("$__timeFilter(a, b)", context())
    with pytest.raises(MacroError, match="unknown variable format 'shout'"):
        expand("${v:shout}", context(v="x"))
    with pytest.raises(MacroError, match=r"time_from=.*timezone-aware"):
        QueryContext(datetime(2026, 1, 1), TO)  # noqa: DTZ001 - the point of the test
    with pytest.raises(MacroError, match="is before time_from"):
        QueryContext(TO, FROM)


def test_a_range_in_another_timezone_filters_the_same_instants() -> None:
    cet = timezone(timedelta(hours=1))
    shifted = QueryContext(FROM.astimezone(cet), TO.astimezone(cet))
    assert expand("$__timeFilter(t)", shifted) == expand("$__timeFilter(t)", context())


SAFE_LITERAL = re.compile(r"^decodeURLComponent\('([A-Za-z0-9\-_.~%]*)'\)$")


@settings(max_examples=300)
@given(st.text())
def test_no_text_variable_value_can_leave_its_string_literal(value: str) -> None:
    expanded = expand(text_var("department"), context(department=value))
    match = SAFE_LITERAL.match(expanded)
    assert match, expanded
    assert urllib.parse.unquote(match.group(1), errors="surrogatepass") == value
