"""The README stays true: its configuration table is what the settings object defines."""

from __future__ import annotations

from pathlib import Path

from pipeline.cli.config import settings_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_lists_every_setting_with_its_default() -> None:
    table = settings_markdown()
    assert table in README.read_text(), (
        "README's configuration table is stale: regenerate it with `journeys config --markdown`"
    )


def test_readme_gives_the_two_commands() -> None:
    text = README.read_text()
    assert "make demo" in text
    assert "make test" in text
