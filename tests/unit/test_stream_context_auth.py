"""Who may read the context API: a reading token of JOURNEYS_CONTEXT_TOKENS (compared in
constant time, never shown), 403 for a collector token, 401 for anything else, 503 when no
reading token is configured; a malformed setting stops the worker at start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.contract.tokens import Grant, TokenConfigError
from pipeline.settings import load_settings
from pipeline.stream.context import ContextAPI, Reply, context_tokens

READER = "s3cr3t-field-reader-7f"
EMITTER = "s3cr3t-billing-emitter-9a"


def api(monkeypatch: pytest.MonkeyPatch, **env: str) -> ContextAPI:
    for name in ("CONTEXT_TOKENS", "CONTEXT_TOKENS_FILE", "COLLECTOR_TOKENS",
                 "COLLECTOR_TOKENS_FILE"):  # fmt: skip
        monkeypatch.delenv(f"JOURNEYS_{name}", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(f"JOURNEYS_{name}", value)
    readers, emitters = context_tokens(load_settings())
    return ContextAPI(None, None, topic="t", partitions=4, place=lambda key: 0,
                      readers=readers, emitters=emitters)  # fmt: skip


def test_a_reading_token_reads_a_collector_token_is_forbidden_others_unauthorized(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    both = api(monkeypatch, CONTEXT_TOKENS=json.dumps({READER: ["maintenance"]}),
               COLLECTOR_TOKENS=json.dumps({EMITTER: ["billing"]}))  # fmt: skip
    grant = both.authorize(f"Bearer {READER}")
    assert isinstance(grant, Grant) and grant.describe() == "maintenance"
    forbidden = both.authorize(f"Bearer {EMITTER}")
    assert isinstance(forbidden, Reply) and (forbidden.status, forbidden.body["error"]) == (
        403, "forbidden")  # fmt: skip
    for header in (None, "", f"Basic {READER}", f"Bearer {READER}x", "Bearer guess"):
        refused = both.authorize(header)
        assert isinstance(refused, Reply) and refused.status == 401, header
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert READER not in json.dumps(refused.body) and EMITTER not in json.dumps(refused.body)


def test_without_reading_tokens_the_api_says_how_to_configure_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unset = api(monkeypatch, COLLECTOR_TOKENS=json.dumps({EMITTER: ["billing"]}))
    refused = unset.authorize(f"Bearer {EMITTER}")
    assert isinstance(refused, Reply) and refused.status == 503
    assert "JOURNEYS_CONTEXT_TOKENS" in refused.body["reason"]
    # A collector token without reading tokens configured: only 401, never a read.
    alone = api(monkeypatch, CONTEXT_TOKENS=json.dumps({READER: ["*"]}))
    assert isinstance(alone.authorize(f"Bearer {EMITTER}"), Reply)


def test_reading_tokens_come_from_the_variable_or_its_file_and_errors_name_no_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    file = tmp_path / "context-tokens.json"
    file.write_text(json.dumps({READER: ["sales"]}))
    from_file = api(monkeypatch, CONTEXT_TOKENS_FILE=str(file))
    assert isinstance(from_file.authorize(f"Bearer {READER}"), Grant)
    with pytest.raises(TokenConfigError, match="both JOURNEYS_CONTEXT_TOKENS and"):
        api(monkeypatch, CONTEXT_TOKENS_FILE=str(file), CONTEXT_TOKENS='{"x": ["sales"]}')
    with pytest.raises(TokenConfigError) as raised:
        api(monkeypatch, CONTEXT_TOKENS=json.dumps({READER: ["Sales"]}))
    assert str(raised.value).startswith("JOURNEYS_CONTEXT_TOKENS: token 1 of 1")
    assert READER not in str(raised.value)
    # A malformed collector setting is the collector's to refuse: reading still works.
    lenient = api(monkeypatch, CONTEXT_TOKENS=json.dumps({READER: ["*"]}),
                  COLLECTOR_TOKENS="{nope")  # fmt: skip
    assert isinstance(lenient.authorize(f"Bearer {READER}"), Grant)
