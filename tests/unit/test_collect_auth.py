"""Collector tokens: the configuration's every mistake is named without the token, and a
request's token finds its grant (constant-time comparison with every configured token)."""

from __future__ import annotations

import hmac
import json
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.collect.auth import ALL, Tokens, bearer_token, parse_tokens, tokens_from_settings
from pipeline.collect.exceptions import TokenConfigError
from pipeline.settings import load_settings

SECRET = "s3cr3t-billing-7f1e"
TOKEN_CHARS = string.ascii_letters + string.digits + "-._~+/="


def tokens(mapping: dict[str, list[str]]) -> Tokens:
    return parse_tokens(json.dumps(mapping), "JOURNEYS_COLLECTOR_TOKENS")


def test_a_token_gets_its_departments_and_only_its_own() -> None:
    table = tokens({SECRET: ["billing"], "field-9": ["maintenance", "delivery"], "ops": [ALL]})
    billing = table.authenticate(f"Bearer {SECRET}")
    assert billing is not None and billing.allows("billing") and not billing.allows("sales")
    field = table.authenticate("bearer field-9")  # the scheme is case-insensitive
    assert field is not None and field.describe() == "delivery,maintenance"
    everything = table.authenticate("Bearer ops")
    assert everything is not None and everything.allows("anything") and everything.describe() == "*"
    assert len({billing.index, field.index, everything.index}) == 3


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", f"Basic {SECRET}", f"{SECRET}", "Bearer s3cr3t",
     f"Bearer {SECRET}x", f"Bearer {SECRET.upper()}", "Bearer " + "x" * 5000, "Bearer \udcff"],
)  # fmt: skip
def test_no_token_another_scheme_or_an_unknown_token_gets_no_grant(header: str | None) -> None:
    assert tokens({SECRET: ["billing"]}).authenticate(header) is None


def test_every_configured_token_is_compared_even_after_a_match(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A loop that stopped at the match would answer the first token faster than the last."""
    table = tokens({f"token-{i}": ["sales"] for i in range(5)})
    calls: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    assert table.authenticate("Bearer token-0") is not None
    assert table.authenticate("Bearer " + "y" * 300) is None
    # Five comparisons each time, of digests of one length whatever the token's length.
    assert calls == [(32, 32)] * 10


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "not JSON"),
        ("{nope", "not JSON"),
        ("[]", "got JSON list, expected an object"),
        ("{}", "no tokens"),
        ('{"": ["sales"]}', "token 1 of 1: empty"),
        ('{"a b": ["sales"]}', "token 1 of 1: holds characters"),
        ('{"ok": ["sales"], "two": []}', "token 2 of 2: got list [], expected a non-empty list"),
        ('{"ok": "sales"}', 'got str "sales", expected a non-empty list'),
        ('{"ok": ["Sales"]}', 'department str "Sales" is not a slug'),
        ('{"ok": [7]}', "department int 7 is not a slug"),
        ('{"ok": ["*", "sales"]}', '"*" stands alone'),
    ],
)
def test_a_bad_configuration_is_named_and_never_shows_a_token(text: str, expected: str) -> None:
    with pytest.raises(TokenConfigError) as raised:
        parse_tokens(text, "JOURNEYS_COLLECTOR_TOKENS")
    message = str(raised.value)
    assert message.startswith("JOURNEYS_COLLECTOR_TOKENS") and expected in message, message
    for token in ("a b", "ok", "two"):
        assert f"'{token}'" not in message and f'"{token}"' not in message


@given(
    st.dictionaries(
        st.text(TOKEN_CHARS, min_size=1, max_size=40),
        st.lists(st.sampled_from(["sales", "billing", "maintenance", ALL]), min_size=1,
                 max_size=3),
        min_size=1, max_size=8,
    ),
    st.text(max_size=60),
)  # fmt: skip
def test_property_every_token_finds_its_grant_and_errors_never_hold_one(
    mapping: dict[str, list[str]], other: str
) -> None:
    text = json.dumps(mapping)
    try:
        table = parse_tokens(text, "tokens")
    except TokenConfigError as error:  # ["*", "sales"]-like lists only
        assert any(ALL in d and d != [ALL] for d in mapping.values())
        assert not any(token in str(error) for token in mapping if len(token) > 3)
        return
    # Only the count: a token such as "Toke" is in "Tokens(1 tokens)" without leaking.
    assert repr(table) == f"Tokens({len(table)} tokens)"
    for token, departments in mapping.items():
        grant = table.authenticate(f"Bearer {token}")
        assert grant is not None
        assert grant.every_department == (departments == [ALL])
        assert grant.departments == (frozenset() if departments == [ALL] else set(departments))
    if other.strip() not in mapping:
        assert table.authenticate(f"Bearer {other}") is None


def test_bearer_token_reads_the_header() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("  BEARER   abc  ") == "abc"
    assert bearer_token("Token abc") is None


def test_tokens_come_from_the_variable_or_the_file_never_both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("JOURNEYS_COLLECTOR_TOKENS", "JOURNEYS_COLLECTOR_TOKENS_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(TokenConfigError, match="no collector tokens: set JOURNEYS_COLLECTOR"):
        tokens_from_settings(load_settings())
    monkeypatch.setenv("JOURNEYS_COLLECTOR_TOKENS", json.dumps({SECRET: ["billing"]}))
    settings = load_settings()
    assert SECRET not in repr(settings)
    assert tokens_from_settings(settings).authenticate(f"Bearer {SECRET}") is not None
    file = tmp_path / "tokens.json"
    file.write_text(json.dumps({"from-file": ["sales"]}))
    monkeypatch.setenv("JOURNEYS_COLLECTOR_TOKENS_FILE", str(file))
    with pytest.raises(TokenConfigError, match="both"):
        tokens_from_settings(load_settings())
    monkeypatch.delenv("JOURNEYS_COLLECTOR_TOKENS")
    assert tokens_from_settings(load_settings()).authenticate("Bearer from-file") is not None
    file.write_text('{"from-file": ["Sales"]}')
    with pytest.raises(TokenConfigError, match=r"TOKENS_FILE \(.*tokens.json\): token 1 of 1"):
        tokens_from_settings(load_settings())
    file.unlink()
    with pytest.raises(TokenConfigError, match="cannot read"):
        tokens_from_settings(load_settings())
