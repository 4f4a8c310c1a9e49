"""What an install gets: the wheel's contents and metadata, the pins every install uses, and
a clear request for chdb where embedded mode needs it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
SCHEMA = "io.journeys/touchpoint/jsonschema/1-0-0"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[zipfile.ZipFile, str]:
    """The wheel `pip install .` builds from what the Dockerfile copies, and pip's verbose
    build log. Built from a copy: an in-tree build would write build/ into the shared tree."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE", "constraints.txt"):
        shutil.copy2(REPO / name, source / name)
    for name in ("pipeline", "schemas"):
        ignore = shutil.ignore_patterns("__pycache__", "*.so", "compiled.json")
        shutil.copytree(REPO / name, source / name, symlinks=True, ignore=ignore)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (built,) = out.glob("journey_pipeline-*.whl")
    return zipfile.ZipFile(built), done.stdout + done.stderr


def wheel_metadata(archive: zipfile.ZipFile) -> list[tuple[str, str]]:
    (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    return Parser().parsestr(archive.read(name).decode()).items()


def test_the_wheel_carries_the_contract_schemas_and_the_license(
    wheel: tuple[zipfile.ZipFile, str],
) -> None:
    archive, _ = wheel
    shipped = archive.read(f"pipeline/contract/schemas/{SCHEMA}")
    assert shipped == (REPO / "schemas" / SCHEMA).read_bytes()
    (license_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    license_text = archive.read(license_name).decode()
    assert license_text == (REPO / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text


def test_the_wheel_carries_the_compiled_engine_beside_its_source(
    wheel: tuple[zipfile.ZipFile, str],
) -> None:
    """Every module of `pipeline.compiled.MODULES` as an extension and as source, and the
    manifest naming the source each was compiled from (the source's SHA-256)."""
    from pipeline.compiled import MANIFEST, MODULES

    archive, _ = wheel
    names = set(archive.namelist())
    manifest = json.loads(archive.read(f"pipeline/{MANIFEST}"))
    assert sorted(manifest) == sorted(MODULES)
    for module in MODULES:
        path = module.replace(".", "/")
        assert f"{path}.py" in names
        assert [n for n in names if n.startswith(f"{path}.cpython-") and n.endswith(".so")], path
        source = archive.read(f"{path}.py")
        assert manifest[module] == hashlib.sha256(source).hexdigest(), module
    assert not [n for n in names if n.endswith(".c")]  # generated C stays in the build


def test_the_license_is_an_spdx_expression_without_deprecation_warnings(
    wheel: tuple[zipfile.ZipFile, str],
) -> None:
    archive, log = wheel
    fields = wheel_metadata(archive)
    assert ("License-Expression", "Apache-2.0") in fields
    assert not [value for key, value in fields if key == "License"]
    assert not re.search(r"license.*deprecat|deprecat.*license", log, re.IGNORECASE | re.DOTALL)


def test_chdb_is_the_embedded_extra_only(wheel: tuple[zipfile.ZipFile, str]) -> None:
    archive, _ = wheel
    requires = [Requirement(v) for k, v in wheel_metadata(archive) if k == "Requires-Dist"]
    chdb = [r for r in requires if r.name == "chdb"]
    assert len(chdb) == 1 and chdb[0].marker is not None
    assert chdb[0].marker.evaluate({"extra": "embedded"})
    assert not chdb[0].marker.evaluate({"extra": ""}), "the server image would carry chdb"


def test_the_grafana_sdk_requirement_bounds_the_build() -> None:
    """Its versions are <build timestamp>!<Grafana version>: `>=1769699998` admitted every
    later build whatever Grafana version it targets, and every older-epoch one too."""
    (spec,) = [r for r in project_requirements() if r.name == "grafana-foundation-sdk"]
    installed = Version(metadata.version("grafana-foundation-sdk"))
    assert installed in spec.specifier
    for other in ("1769699999!10.1.0", "1769699379!11.6.0", "1769699241", "1769700000!10.2.0"):
        assert Version(other) not in spec.specifier, other


def project_requirements() -> list[Requirement]:
    """What pyproject.toml declares (the installed metadata may predate it), extras included."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    return [Requirement(r) for r in project["dependencies"] + [r for e in extras for r in e]]


def constraints() -> dict[str, Version]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not a pin"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def dependency_tree(requirements: list[Requirement]) -> set[str]:
    """Every distribution `requirements` need, as installed here (names canonical)."""
    seen: dict[str, frozenset[str]] = {}
    todo = [(r.name, frozenset(r.extras)) for r in requirements]
    while todo:
        name, wanted = todo.pop()
        key = canonicalize_name(name)
        if key in seen and wanted <= seen[key]:
            continue
        seen[key] = seen.get(key, frozenset()) | wanted
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in wanted | {""}):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return set(seen)


def test_constraints_pin_the_whole_tree_within_the_declared_ranges() -> None:
    pins = constraints()
    tree = dependency_tree(project_requirements())
    assert tree - pins.keys() == set(), "installed but not pinned: run `make constraints`"
    for requirement in project_requirements():
        pinned = pins[canonicalize_name(requirement.name)]
        assert pinned in requirement.specifier, f"{requirement.name}=={pinned} vs {requirement}"


def test_make_and_the_image_install_with_the_pins(tmp_path: Path) -> None:
    env = os.environ | {"VENV": str(tmp_path / "venv")}
    plan = subprocess.run(
        ["make", "-n", "install"], cwd=REPO, env=env, capture_output=True, text=True, check=True
    ).stdout
    (install,) = [line for line in plan.splitlines() if "pip install" in line and "[test" in line]
    assert "-c constraints.txt" in install and "'.[test,embedded]'" in install
    # A first install takes minutes: pip's own progress is shown, and what is happening said.
    assert "--quiet" not in install and "-q " not in install
    assert re.search(r"^echo .*Installing journey-pipeline", plan, re.MULTILINE)

    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.findall(r"^RUN (pip install .*)$", dockerfile, re.MULTILINE) == [
        "pip install -c constraints.txt /wheel/journey_pipeline-*.whl && rm -rf /wheel"
    ]
    copied = " ".join(re.findall(r"^COPY (.*)$", dockerfile, re.MULTILINE))
    for needed in ("constraints.txt", "LICENSE", "schemas", "setup.py"):
        assert needed in copied, f"the image lacks {needed}"


@pytest.mark.parametrize("command", ["migrate", "run", "report", "calibrate"])
def test_embedded_mode_without_chdb_asks_for_the_extra(command: str, tmp_path: Path) -> None:
    # This interpreter has chdb; `None` in sys.modules makes its import fail as if it had not.
    hide_chdb = "import sys; sys.modules['chdb'] = None; from pipeline.cli import main; main()"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEYS_")}
    done = subprocess.run(
        [sys.executable, "-c", hide_chdb, command],
        env=env | {"JOURNEYS_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    message = " ".join(done.stderr.split())
    assert "needs chdb" in message
    assert "pip install 'journey-pipeline[embedded]'" in message
    assert "JOURNEYS_CLICKHOUSE_MODE=server" in message
