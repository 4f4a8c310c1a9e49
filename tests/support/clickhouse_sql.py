"""Just enough of ClickHouse's SQL lexer for the test server to route a request.

The engine (chdb) parses every statement itself; the server only needs to know, before it
runs anything, what ClickHouse's HTTP handler knows: where an INSERT's inline data begins
(after `FORMAT <name>`, which may be binary), which output format a query names, and
whether the request holds more than one statement (a real server refuses that; chdb would
run them all). Quotes, backticks and comments are skipped so that a `;` or a `FORMAT`
inside a string literal is not taken for one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_QUOTES = "'\"`"
_OUTPUT_STATEMENTS = {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS", "CHECK"}


class SqlShapeError(ValueError):
    """The request's text cannot be one ClickHouse statement (ClickHouse's SYNTAX_ERROR)."""


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int
    depth: int  # parentheses open around it


@dataclass(frozen=True)
class Statement:
    sql: str  # the statement, or an INSERT's head without `FORMAT <name>`
    kind: str  # its first word, upper-case
    insert_format: str | None = None  # set when an INSERT carries data after FORMAT
    data: bytes = b""
    output_format: str | None = None  # FORMAT named by a query; None: the default applies

    @property
    def produces_output(self) -> bool:
        return self.kind in _OUTPUT_STATEMENTS or self.output_format is not None


def tokens(text: str) -> Iterator[Token]:
    """Words and punctuation at their positions; literals, comments and space skipped."""
    i, depth, n = 0, 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif text.startswith("--", i):
            i = _line_end(text, i)
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2)
            i = n if close < 0 else close + 2
        elif c in _QUOTES:
            i = _quoted_end(text, i)
        elif word := _WORD.match(text, i):
            yield Token(word.group(), i, word.end(), depth)
            i = word.end()
        else:
            depth += c == "("
            depth -= c == ")"
            yield Token(c, i, i + 1, depth)
            i += 1


def parse_request(body: bytes) -> Statement:
    """The one statement in a request's query text (bytes: an INSERT's data may be binary)."""
    text = body.decode("latin-1")  # one char per byte, so offsets are byte offsets
    words = tokens(text)
    first = next(words, None)
    if first is None:
        raise SqlShapeError("Empty query")
    kind = first.text.upper()
    if kind == "INSERT":
        inline = _insert_with_data(text, body, words)
        if inline is not None:
            return inline
        words = tokens(text)
    end, output_format = _statement_end(text, words)
    return Statement(body[:end].decode(), kind, output_format=output_format)


def _insert_with_data(text: str, body: bytes, words: Iterator[Token]) -> Statement | None:
    """`INSERT ... FORMAT <name>` and the data after it, or None (INSERT ... SELECT/VALUES)."""
    for token in words:
        word = token.text.upper()
        if token.depth == 0 and word in ("SELECT", "WITH", "VALUES"):
            return None
        if token.depth == 0 and word == "FORMAT":
            name = next(words, None)
            if name is None or not _WORD.fullmatch(name.text):
                raise SqlShapeError("Expected a format name after FORMAT")
            return Statement(
                body[: token.start].decode().rstrip(),
                "INSERT",
                insert_format=name.text,
                data=body[_data_start(text, name.end) :],
            )
    return None


def _data_start(text: str, i: int) -> int:
    """ClickHouse's rule: data starts after the first newline, else after the whitespace."""
    while i < len(text) and text[i] in " \t\r":
        i += 1
    return i + 1 if i < len(text) and text[i] == "\n" else i


def _statement_end(text: str, words: Iterator[Token]) -> tuple[int, str | None]:
    """Where the one statement ends, and the output format it names, if any."""
    output_format, previous, end = None, None, len(text)
    for token in words:
        if token.text == ";" and token.depth == 0:
            end = token.start
            if next(words, None) is not None:
                raise SqlShapeError("Multi-statements are not allowed")
            break
        if previous is not None and previous.depth == 0 and previous.text.upper() == "FORMAT":
            output_format = token.text
        previous = token
    return end, output_format


def _line_end(text: str, i: int) -> int:
    newline = text.find("\n", i)
    return len(text) if newline < 0 else newline + 1


def _quoted_end(text: str, i: int) -> int:
    """Past the literal opening at i: backslash escapes and doubled quotes stay inside."""
    quote, j = text[i], i + 1
    while j < len(text):
        if text[j] == "\\" or text.startswith(quote * 2, j):  # an escape, or '' inside
            j += 2
        elif text[j] == quote:
            return j + 1
        else:
            j += 1
    raise SqlShapeError(f"Unclosed {quote} literal starting at position {i}")
