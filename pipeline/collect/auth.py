"""Who may emit what: the collector's bearer tokens mapped to the departments they may emit
for. The parsing and the constant-time check are `pipeline.contract.tokens` (the worker's
context API reads its tokens the same way); here they raise the collector's own error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.collect.exceptions import TokenConfigError
from pipeline.contract import tokens as _tokens
from pipeline.contract.tokens import ALL, MAX_TOKEN, Grant, Tokens, bearer_token

if TYPE_CHECKING:
    from pipeline.settings import Settings

__all__ = ["ALL", "MAX_TOKEN", "Grant", "Tokens", "bearer_token", "parse_tokens",
           "tokens_from_settings"]  # fmt: skip


def parse_tokens(text: str, source: str) -> Tokens:
    """Tokens from their JSON form, `{"TOKEN": ["department", ...], ...}`; `source` names
    where the text came from in errors (a variable or a file)."""
    try:
        return _tokens.parse_tokens(text, source)
    except _tokens.TokenConfigError as error:
        raise TokenConfigError(str(error)) from None


def tokens_from_settings(settings: Settings) -> Tokens:
    """The tokens of JOURNEYS_COLLECTOR_TOKENS or JOURNEYS_COLLECTOR_TOKENS_FILE (one of
    them: two sources of secrets would leave a reader guessing which one holds a token)."""
    configured = settings.secret_text("collector_tokens", TokenConfigError)
    if configured is not None:
        return parse_tokens(*configured)
    raise TokenConfigError(
        "no collector tokens: set JOURNEYS_COLLECTOR_TOKENS to a JSON object mapping each "
        'token to its departments, e.g. {"s3cr3t-billing": ["billing"]}, or '
        "JOURNEYS_COLLECTOR_TOKENS_FILE to a file holding one (docs/departments.md)"
    )
