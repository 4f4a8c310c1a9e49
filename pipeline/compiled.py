"""The engine's compiled modules: which they are, and when their Python source runs instead.

An install (`make install`, `pip install .`, the image) compiles the pure modules every
event goes through (validation, journey assembly and scoring, the processor and its rows)
with Cython into extension modules beside their source; Python then imports those first.
They are the same code: no module is written for the compiler, and the source stays the
reference path (the tests compare both on the same events).

The source runs instead of a compiled module when:

- `JOURNEYS_PURE_PYTHON=1` asks for it (to debug, profile by line, or compare), read here at
  import because it must act before the first engine module loads;
- the module's source changed since it was compiled (the build records each source's
  SHA-256 in `compiled.json`): an edited file never runs as its stale compiled self;
- there is no compiled module (no C compiler at install, or `JOURNEYS_BUILD_PURE=1`).

Stdlib only: `setup.py` reads MODULES from this file before anything is installed.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Literal

# Every module here is pure (no I/O) and imports only stdlib, msgspec and each other.
MODULES: tuple[str, ...] = (
    "pipeline.contract.diagnose",
    "pipeline.contract.rules",
    "pipeline.contract.touchpoint",
    "pipeline.contract.validator",
    "pipeline.journey.assembly",
    "pipeline.journey.book",
    "pipeline.journey.context",
    "pipeline.journey.events",
    "pipeline.journey.model",
    "pipeline.journey.obligations",
    "pipeline.journey.rules",
    "pipeline.journey.scoring",
    "pipeline.journey.segments",
    "pipeline.journey.state",
    "pipeline.journey.types",
    "pipeline.stream.alert_context",
    "pipeline.stream.book_cache",
    "pipeline.stream.clock",
    "pipeline.stream.customers",
    "pipeline.stream.dedup",
    "pipeline.stream.processor",
    "pipeline.stream.rows",
)
MANIFEST = "compiled.json"  # module -> SHA-256 of the source it was compiled from
PURE_ENV = "JOURNEYS_PURE_PYTHON"
ROOT = Path(__file__).resolve().parent.parent  # the directory holding `pipeline/`

Reason = Literal["compiled", "asked", "changed", "absent"]


@dataclass(frozen=True)
class Engine:
    """How each of MODULES loads in this process."""

    modules: Mapping[str, Reason]

    @property
    def source_modules(self) -> list[str]:
        return [name for name, reason in self.modules.items() if reason != "compiled"]

    def describe(self) -> str:
        """One line for the worker's start: what runs, and what to do about it."""
        by: dict[Reason, list[str]] = {}
        for name, reason in self.modules.items():
            by.setdefault(reason, []).append(name)
        total = len(self.modules)
        if len(by.get("compiled", ())) == total:
            return f"engine compiled ({total} modules, Cython)"
        if len(by.get("asked", ())) == total:
            return f"engine from Python source ({PURE_ENV}=1)"
        parts = [f"engine compiled {len(by.get('compiled', ()))} of {total} modules"]
        if changed := by.get("changed"):
            parts.append(
                f"{len(changed)} changed since compiled, run from source until reinstalled "
                f"(`make install`): {', '.join(changed)}"
            )
        if absent := by.get("absent"):
            parts.append(
                f"{len(absent)} not compiled (no C compiler at install?): {', '.join(absent)}"
            )
        return "; ".join(parts)


def source_path(name: str, root: Path = ROOT) -> Path:
    return root.joinpath(*name.split(".")).with_suffix(".py")


def extension_path(name: str, root: Path = ROOT) -> Path | None:
    base = root.joinpath(*name.split("."))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if (found := base.with_name(base.name + suffix)).exists():
            return found
    return None


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plan(
    modules: Sequence[str],
    built: Mapping[str, str],
    sources: Mapping[str, str],
    extensions: Sequence[str],
    pure: bool,
) -> Engine:
    """How each module loads: `built` is the manifest (module -> digest compiled), `sources`
    the digests of the source files now, `extensions` the modules with a compiled file."""
    reasons: dict[str, Reason] = {}
    for name in modules:
        if pure:
            reasons[name] = "asked"
        elif name not in extensions:
            reasons[name] = "absent"
        elif built.get(name) != sources.get(name):
            reasons[name] = "changed"
        else:
            reasons[name] = "compiled"
    return Engine(reasons)


def read_manifest(root: Path = ROOT) -> dict[str, str]:
    try:
        found = json.loads((root / "pipeline" / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def examine(root: Path = ROOT, environ: Mapping[str, str] = os.environ) -> Engine:
    extensions = [name for name in MODULES if extension_path(name, root) is not None]
    built = read_manifest(root)
    # Only the compiled ones need their source hashed (about a millisecond for all).
    sources = {name: digest(source_path(name, root)) for name in extensions}
    pure = environ.get(PURE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
    return plan(MODULES, built, sources, extensions, pure)


class SourceFinder:
    """Imports the named modules from their `.py` file, ahead of the compiled one."""

    def __init__(self, names: Sequence[str], root: Path = ROOT) -> None:
        self.paths = {name: source_path(name, root) for name in names}

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if (source := self.paths.get(name)) is None:
            return None
        return importlib.util.spec_from_file_location(name, source)


ENGINE = examine()
if ENGINE.source_modules:
    sys.meta_path.insert(0, SourceFinder(ENGINE.source_modules))
