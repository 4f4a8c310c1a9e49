"""Compiles the engine's pure modules (`pipeline.compiled.MODULES`) with Cython.

Everything else about the package is in pyproject.toml. The compiled modules sit beside
their source, which stays in the package: Python imports the extension first, and
`pipeline.compiled` falls back to the source when asked to (JOURNEYS_PURE_PYTHON=1) or
when the source changed since it was compiled. `compiled.json` records the SHA-256 of each
source compiled. Without a C compiler (or with JOURNEYS_BUILD_PURE=1) the install still
succeeds, on the source alone.
"""

from __future__ import annotations

import json
import os
import runpy
from collections.abc import Callable
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
# The list, the path of each source and its digest, as the package checks them at import.
_COMPILED = runpy.run_path(str(HERE / "pipeline" / "compiled.py"))
MODULES: tuple[str, ...] = _COMPILED["MODULES"]
source: Callable[[str], Path] = _COMPILED["source_path"]
digest: Callable[[Path], str] = _COMPILED["digest"]


class BuildCompiledEngine(build_ext):
    """build_ext that writes the manifest of what it compiled, from which source."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if not self.parallel:  # one compiler per core
            self.parallel = os.cpu_count() or 1

    def build_extension(self, ext: Extension) -> None:
        # `optional` alone does not hold in parallel builds (one failure ended the install):
        # a module that does not compile (no C compiler) runs from its source instead.
        try:
            super().build_extension(ext)
        except Exception as exc:  # CompileError, DistutilsExecError, a missing compiler
            print(f"warning: {ext.name} not compiled, it runs from its source: {exc}")

    def build_extensions(self) -> None:
        super().build_extensions()
        # Only what was compiled is copied beside the source (an editable install) and
        # recorded in the manifest.
        self.extensions = [
            ext for ext in self.extensions if Path(self.get_ext_fullpath(ext.name)).exists()
        ]

    def run(self) -> None:
        # A compiled module older than the C generated from its source now is stale: gone
        # before the build, so that a module whose compiling fails is absent,
        # and runs from source, rather than kept and recorded against the new source.
        for ext in self.extensions:
            built, generated = Path(self.get_ext_fullpath(ext.name)), Path(ext.sources[0])
            stale = built.exists() and generated.exists()
            if stale and built.stat().st_mtime < generated.stat().st_mtime:
                built.unlink()
        super().run()
        package = Path(self.get_ext_fullpath("pipeline.compiled")).parent
        # `build_extensions` left only the modules that compiled.
        built = {ext.name: digest(source(ext.name)) for ext in self.extensions}
        (package / "compiled.json").write_text(json.dumps(built, indent=1, sort_keys=True) + "\n")
        print(f"compiled {len(built)} of {len(MODULES)} engine modules with Cython")


def extensions() -> list[Extension]:
    if os.environ.get("JOURNEYS_BUILD_PURE", "").strip() in {"1", "true", "yes"}:
        return []
    from Cython.Build import cythonize

    modules = [Extension(name, [str(source(name).relative_to(HERE))]) for name in MODULES]
    return cythonize(
        modules,
        build_dir="build/cython",  # the generated C stays out of the source tree
        language_level=3,
        nthreads=os.cpu_count() or 1,
        quiet=True,
        # The source's annotations stay annotations (no C types inferred from them), and
        # functions keep Python's introspection: compiled code behaves as the source does.
        compiler_directives={"annotation_typing": False, "binding": True},
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildCompiledEngine})
