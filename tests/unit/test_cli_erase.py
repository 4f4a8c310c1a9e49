"""`journeys erase` refuses what it cannot do before it touches anything."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipeline.cli import cli


def erase(*args: str, **env: str) -> tuple[int, str]:
    defaults = {"JOURNEYS_DATA_DIR": "/nonexistent", "JOURNEYS_ERASURE_SALT": "s" * 20}
    result = CliRunner().invoke(cli, ["erase", *args], env={**defaults, **env})
    return result.exit_code, result.output


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_customer_id_is_refused(empty: str) -> None:
    code, output = erase("--customer", "c-1", "--customer", empty)
    assert code == 1 and "--customer #2 is" in output and "expected a customer id" in output


def test_no_customer_is_refused() -> None:
    code, output = erase()
    assert code == 1 and "no --customer given" in output


def test_no_salt_no_erasure() -> None:
    code, output = erase("--customer", "c-1", JOURNEYS_ERASURE_SALT="")
    assert code == 1 and "JOURNEYS_ERASURE_SALT is not set" in output


def test_help_says_what_is_erased() -> None:
    code, output = erase("--help")
    assert code == 0 and "--customer ID" in output and "ledger" in output
