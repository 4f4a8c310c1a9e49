"""The README stays true: its configuration table is what the settings object defines."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.cli.config import settings_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_lists_every_setting_with_its_default() -> None:
    table = settings_markdown()
    assert table in README.read_text(), (
        "README's configuration table is stale: regenerate it with `journeys config --markdown`"
    )


def test_every_make_command_the_readme_gives_is_a_target() -> None:
    named = set(re.findall(r"\bmake ([a-z][\w-]*)", README.read_text()))
    makefile = (README.parent / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, flags=re.MULTILINE))
    assert named, "README gives no make command"
    assert named <= targets, f"README names make targets that do not exist: {named - targets}"


# --- links and file references ----------------------------------------------------------------
REPO = README.parent
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
TOP_LEVEL = tuple(f"{p.name}/" for p in REPO.iterdir() if p.is_dir() and not p.name.startswith("."))
CODE = re.compile(r"`([^`\s]+)`")
# Placeholders and globs name a family of paths, not one file.
PATTERN_CHARS = set("*<>{}$")
DOC_REFERENCE = re.compile(r"\bdocs/([\w.-]+\.md)(?:#([\w-]+))?")
OUTSIDE = tuple(name + ".md" for name in ("PRODUCT", "ARCHITECTURE", "CONVENTIONS"))


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return {slug(m) for m in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, flags=re.MULTILINE)}


def problems_with(target: str, page: Path) -> str | None:
    path, _, anchor = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    if not resolved.exists():
        return f"{page.relative_to(REPO)}: {target} does not exist"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return f"{page.relative_to(REPO)}: {target} has no heading #{anchor}"
    return None


def test_every_relative_link_in_readme_and_docs_resolves() -> None:
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if re.match(r"^[a-z]+:", target):  # http:, mailto: ...: not ours to check
                continue
            broken.append(problems_with(target, page))
    assert [b for b in broken if b] == []


def test_every_repository_path_named_in_readme_and_docs_exists() -> None:
    missing = []
    for page in PAGES:
        for token in CODE.findall(page.read_text()):
            path = re.sub(r":\d+$", "", token.rstrip(".,;:"))
            if not path.startswith(TOP_LEVEL) or PATTERN_CHARS & set(path):
                continue
            if not (REPO / path).exists():
                missing.append(f"{page.relative_to(REPO)}: `{token}`")
    assert missing == []


def test_code_cites_docs_that_exist_and_nothing_outside_the_repository() -> None:
    """The code once cited the product and architecture notes that live beside the
    repository, not in it: a reader of the code could not follow the reference."""
    sources = [*(REPO / "pipeline").rglob("*.py"), *(REPO / "pipeline").rglob("*.toml"),
               *(REPO / "pipeline").rglob("*.sql"), *(REPO / "tests").rglob("*.py"),
               *(REPO / "benchmarks").rglob("*.py"), *(REPO / "benchmarks").rglob("*.md"),
               REPO / "pyproject.toml", REPO / "Makefile", REPO / "Dockerfile", *PAGES]  # fmt: skip
    # A published migration is never edited, comments included (its checksum is recorded in
    # every store it was applied to); pipeline/store/migrations says where 0001's reference went.
    immutable = {REPO / "pipeline" / "store" / "migrations" / "0001_core_tables.sql"}
    outside, broken = [], []
    for source in sorted(set(sources) - immutable):
        text = source.read_text(errors="replace")
        where = source.relative_to(REPO)
        outside += [f"{where}: {name}" for name in OUTSIDE if name in text]
        for page, anchor in DOC_REFERENCE.findall(text):
            problem = problems_with(f"{page}#{anchor}" if anchor else page, REPO / "docs" / "x")
            if problem:
                broken.append(f"{where}: docs/{page}{'#' + anchor if anchor else ''}")
    assert outside == [], "cites a file that is not in the repository"
    assert broken == []


def test_the_score_model_doc_gives_the_model_file_numbers() -> None:
    from pipeline.journey import load_score_model

    model = load_score_model()
    text = (REPO / "docs" / "score-model.md").read_text()
    documented = {
        name: float(impact)
        for name, impact in re.findall(r"^\| `(\w+)` \|.*\| ([+-]?\d+) \|$", text, re.MULTILINE)
    }
    assert documented == model.impacts
    hours = 3_600_000_000
    assert f"| repeat contact window | {model.repeat_contact_us // (24 * hours)} days |" in text
    assert f"| feedback answer window | {model.feedback_answer_us // (24 * hours)} days |" in text
    assert f"| fast fix | within {model.fast_fix_us // hours} h |" in text
    assert f"phone {model.wait_threshold_s['phone']:g} s" in text
