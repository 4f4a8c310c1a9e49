"""Which engine modules load compiled and which from source (`pipeline.compiled`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pipeline import compiled
from pipeline.compiled import MODULES, SourceFinder, plan

SOURCES = {name: f"digest-of-{name}" for name in MODULES}


def test_every_compiled_module_runs_compiled_when_its_source_is_the_one_compiled() -> None:
    engine = plan(MODULES, SOURCES, SOURCES, list(MODULES), pure=False)
    assert engine.source_modules == []
    assert engine.describe() == f"engine compiled ({len(MODULES)} modules, Cython)"


def test_asking_for_the_source_runs_every_module_from_source() -> None:
    engine = plan(MODULES, SOURCES, SOURCES, list(MODULES), pure=True)
    assert engine.source_modules == list(MODULES)
    assert engine.describe() == "engine from Python source (JOURNEYS_PURE_PYTHON=1)"


def test_a_source_changed_since_it_was_compiled_runs_from_source_and_says_so() -> None:
    edited = MODULES[3]
    now = SOURCES | {edited: "digest-after-an-edit"}
    engine = plan(MODULES, SOURCES, now, list(MODULES), pure=False)
    assert engine.source_modules == [edited]
    assert engine.modules[edited] == "changed"
    assert "1 changed since compiled, run from source until reinstalled" in engine.describe()
    assert edited in engine.describe()


def test_a_module_without_its_compiled_file_or_manifest_entry_runs_from_source() -> None:
    missing, unlisted = MODULES[0], MODULES[1]
    built = {k: v for k, v in SOURCES.items() if k != unlisted}
    engine = plan(MODULES, built, SOURCES, [m for m in MODULES if m != missing], pure=False)
    assert engine.modules[missing] == "absent" and engine.modules[unlisted] == "changed"
    assert "1 not compiled (no C compiler at install?)" in engine.describe()
    # No manifest at all (an install without a compiler): nothing compiled is trusted.
    assert plan(MODULES, {}, SOURCES, list(MODULES), pure=False).source_modules == list(MODULES)


def test_the_source_finder_imports_the_py_file_ahead_of_a_compiled_one(tmp_path: Path) -> None:
    package = tmp_path / "enginepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "step.py").write_text("WHERE = 'source'\n")
    finder = SourceFinder(["enginepkg.step"], root=tmp_path)
    spec = finder.find_spec("enginepkg.step")
    assert spec is not None and spec.origin == str(package / "step.py")
    assert finder.find_spec("enginepkg.other") is None  # anything else: the usual finders
    sys.path.insert(0, str(tmp_path))
    sys.meta_path.insert(0, finder)
    try:
        import enginepkg.step  # type: ignore[import-not-found]

        assert enginepkg.step.WHERE == "source"
    finally:
        sys.meta_path.remove(finder)
        sys.path.remove(str(tmp_path))
        for name in ("enginepkg.step", "enginepkg"):
            sys.modules.pop(name, None)


def test_examine_reads_the_manifest_and_hashes_the_compiled_modules_sources(
    tmp_path: Path,
) -> None:
    name = MODULES[0]
    source = compiled.source_path(name, tmp_path)
    source.parent.mkdir(parents=True)
    source.write_text("X = 1\n")
    extension = source.with_name(source.stem + compiled.importlib.machinery.EXTENSION_SUFFIXES[0])
    extension.write_bytes(b"")
    manifest = tmp_path / "pipeline" / compiled.MANIFEST
    manifest.write_text(f'{{"{name}": "{compiled.digest(source)}"}}')
    engine = compiled.examine(tmp_path, environ={})
    assert engine.modules[name] == "compiled"
    assert all(engine.modules[other] == "absent" for other in MODULES[1:])
    source.write_text("X = 2\n")
    assert compiled.examine(tmp_path, environ={}).modules[name] == "changed"
    assert compiled.examine(tmp_path, environ={"JOURNEYS_PURE_PYTHON": "1"}).modules[name] == (
        "asked"
    )
    manifest.write_text("not json")
    assert compiled.examine(tmp_path, environ={}).modules[name] == "changed"


@pytest.mark.parametrize("name", MODULES)
def test_every_listed_module_has_its_source(name: str) -> None:
    assert compiled.source_path(name).is_file()
