"""Just enough of ClickHouse SQL to read and edit the migrations' statements.

The cluster layout (`pipeline.store.cluster`) renames tables, swaps engines and adds
`ON CLUSTER` to the migrations' DDL. Regular expressions over the raw text would also
rename a column called `journeys` or the words inside a string such as 'FROM touchpoints';
over tokens, strings, quoted names and comments are never taken for names or keywords.
There is no SQL parser dependency: the server image installs none, and the statements are
the project's own. What a statement does not fit raises ValueError.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>--[^\n]*|/\*.*?\*/)
    | (?P<string>'(?:[^'\\]|\\.|'')*')
    | (?P<quoted>`(?:[^`\\]|\\.|``)*`|"(?:[^"\\]|\\.|"")*")
    | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)
    | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    | (?P<unclosed>['`"])
    | (?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    kind: str  # word, quoted, string, number, punct
    text: str
    start: int
    end: int

    @property
    def upper(self) -> str:
        """A word as a keyword compares (case-insensitive); anything else as written."""
        return self.text.upper() if self.kind == "word" else self.text

    @property
    def name(self) -> str | None:
        """The identifier a word or a quoted name stands for; None for anything else."""
        if self.kind == "word":
            return self.text
        if self.kind == "quoted":
            return self.text[1:-1]
        return None


def tokenize(sql: str) -> list[Token]:
    """The significant tokens of `sql` (no whitespace, no comments), with their offsets."""
    tokens = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup or "punct"
        if kind == "unclosed":
            raise ValueError(f"unclosed {match.group()} at offset {match.start()}: {sql[:80]!r}")
        if kind not in ("space", "comment"):
            tokens.append(Token(kind, match.group(), match.start(), match.end()))
    return tokens


class Statement:
    """One statement's tokens, with the few questions the layout asks of them."""

    def __init__(self, sql: str):
        self.sql = sql
        self.tokens = tokenize(sql)

    def keywords(self, start: int, count: int) -> list[str]:
        return [t.upper for t in self.tokens[start : start + count]]

    def starts(self, *words: str) -> bool:
        return self.keywords(0, len(words)) == list(words)

    def closing(self, opening: int) -> int:
        """The index of the bracket that closes the one at `opening`."""
        depth = 0
        for index in range(opening, len(self.tokens)):
            depth += _nesting(self.tokens[index])
            if depth == 0:
                return index
        raise ValueError(f"unbalanced brackets in {self.sql[:80]!r}")

    def top_level(self, start: int, end: int) -> Iterable[int]:
        """Indices in [start, end) outside any bracket opened in that range."""
        depth = 0
        for index in range(start, end):
            change = _nesting(self.tokens[index])
            if depth == 0 and change == 0:
                yield index
            depth += change

    def find(self, word: str, start: int, end: int | None = None) -> int | None:
        """The first top-level token in [start, end) that is the keyword or mark `word`."""
        stop = len(self.tokens) if end is None else end
        return next((i for i in self.top_level(start, stop) if self.tokens[i].upper == word), None)

    def split(self, start: int, end: int) -> list[tuple[int, int]]:
        """[start, end) cut at its top-level commas, as (start, end) index pairs."""
        parts, begin = [], start
        for index in self.top_level(start, end):
            if self.tokens[index].text == ",":
                parts.append((begin, index))
                begin = index + 1
        if begin < end:
            parts.append((begin, end))
        return parts

    def text(self, start: int, end: int) -> str:
        """The source text from token `start` up to (not including) token `end`."""
        if start >= end:
            return ""
        return self.sql[self.tokens[start].start : self.tokens[end - 1].end]


def _nesting(token: Token) -> int:
    """+1 for an opening bracket, -1 for a closing one, 0 for anything else."""
    if token.kind != "punct":
        return 0
    return 1 if token.text in "([" else -1 if token.text in ")]" else 0


def edit(sql: str, changes: Iterable[tuple[int, int, str]]) -> str:
    """`sql` with each (start, end) character span replaced; spans must not overlap."""
    out, position = [], 0
    for start, end, replacement in sorted(changes):
        if start < position:
            raise ValueError(f"overlapping edits at offset {start}")
        out += [sql[position:start], replacement]
        position = end
    out.append(sql[position:])
    return "".join(out)


def quote_string(value: str) -> str:
    """A ClickHouse string literal holding `value`."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_name(value: str) -> str:
    """A ClickHouse identifier in backquotes holding `value`."""
    return "`" + value.replace("\\", "\\\\").replace("`", "\\`") + "`"


# --- CREATE TABLE ---------------------------------------------------------------------------
_CLAUSES = {"PARTITION", "PRIMARY", "SAMPLE", "TTL", "SETTINGS", "COMMENT"}


@dataclass(frozen=True)
class TableParts:
    """What a CREATE TABLE says, and where its engine and settings are written."""

    columns: tuple[str, ...]  # column definitions as written (no indices or projections)
    column_names: tuple[str, ...]
    engine: str
    engine_args: str  # as written, '' for none
    engine_span: tuple[int, int]  # the engine with its arguments, in characters
    order_by: str
    settings: tuple[Token, ...]  # each SETTINGS item's name


def name_at(s: Statement, start: int) -> int:
    """The index of the object name after `start` keywords, past IF [NOT] EXISTS."""
    at = start
    for words in (["IF", "NOT", "EXISTS"], ["IF", "EXISTS"]):
        if s.keywords(at, len(words)) == words:
            at += len(words)
            break
    if at >= len(s.tokens) or s.tokens[at].name is None:
        raise ValueError("expected a table or view name")
    if at + 1 < len(s.tokens) and s.tokens[at + 1].text == ".":
        raise ValueError("names a database: migrations use the current database only")
    return at


def name_of(token: Token) -> str:
    return token.name or token.text


def table_parts(s: Statement, at: int) -> TableParts:
    """The parts of the CREATE TABLE `s` whose name is token `at`."""
    opening = at + 1
    if opening >= len(s.tokens) or s.tokens[opening].text != "(":
        raise ValueError("expected the table's columns in brackets after its name")
    closing = s.closing(opening)
    columns, names = [], []
    for start, end in s.split(opening + 1, closing):
        if s.tokens[start].upper not in ("INDEX", "PROJECTION", "CONSTRAINT"):
            columns.append(s.text(start, end))
            names.append(name_of(s.tokens[start]))
    engine_at = s.find("ENGINE", closing + 1)
    if engine_at is None:
        raise ValueError("names no ENGINE")
    at = engine_at + 2 if s.keywords(engine_at + 1, 1) == ["="] else engine_at + 1
    end, args = at + 1, ""
    if end < len(s.tokens) and s.tokens[end].text == "(":
        close = s.closing(end)
        end, args = close + 1, s.text(end + 1, close)
    settings_at = s.find("SETTINGS", end)
    settings = [] if settings_at is None else [
        s.tokens[a] for a, _ in s.split(settings_at + 1, len(s.tokens))]  # fmt: skip
    span = (s.tokens[at].start, s.tokens[end - 1].end)
    return TableParts(tuple(columns), tuple(names), s.tokens[at].text, args, span,
                      _order_by(s, end), tuple(settings))  # fmt: skip


def _order_by(s: Statement, start: int) -> str:
    at = s.find("ORDER", start)
    if at is None or s.keywords(at + 1, 1) != ["BY"]:
        return ""
    stops = (i for i in s.top_level(at + 2, len(s.tokens)) if s.tokens[i].upper in _CLAUSES)
    return s.text(at + 2, next(stops, len(s.tokens)))
