"""Every schema under schemas/ is a valid JSON Schema at a path that matches its contents.

The layout is Snowplow's iglu: schemas/<vendor>/<name>/jsonschema/<major>-<minor>-<patch>.
Departments pin a path, so a published file must never change: its digest is recorded
here, and a new version is a new file (add its digest when it is published).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pipeline.contract import CHANNELS, EVENT_TYPES, bounds
from pipeline.contract.rules import ATTRIBUTE_RULES, REQUIRED_FIELDS, SCHEMA_VERSIONS

SCHEMAS = Path(__file__).parents[2] / "schemas"
PUBLISHED = {
    "io.journeys/touchpoint/jsonschema/1-0-0": (
        "9d46f505b9536b68c8c19e2318b72e9014890120102ae51e43848102f7904ce0"
    ),
    "io.journeys/touchpoint/jsonschema/1-0-1": (
        "63d3bdf3cbcb64015f5513a5e5b3ec2d658faa494a7eb787467bf27dd642f909"
    ),
}
SCHEMA_FILES = sorted(
    p for p in SCHEMAS.rglob("*") if p.is_file() and p.parent.name == "jsonschema"
)


def _load(path: Path) -> dict[str, Any]:
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_there_are_schemas() -> None:
    assert [p.relative_to(SCHEMAS).as_posix() for p in SCHEMA_FILES] == sorted(PUBLISHED)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.relative_to(SCHEMAS).as_posix())
def test_schema_is_valid_against_its_metaschema(path: Path) -> None:
    schema = _load(path)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.validators.validator_for(schema).check_schema(schema)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.relative_to(SCHEMAS).as_posix())
def test_path_matches_the_self_description(path: Path) -> None:
    vendor, name, schema_format, version = path.relative_to(SCHEMAS).parts
    schema = _load(path)
    assert schema["self"] == {
        "vendor": vendor,
        "name": name,
        "format": schema_format,
        "version": version,
    }
    assert schema["$id"].endswith(f"/{vendor}/{name}/{schema_format}/{version}")
    major = int(version.split("-")[0])
    assert schema["properties"]["schema_version"]["const"] == major


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.relative_to(SCHEMAS).as_posix())
def test_published_schema_is_never_edited(path: Path) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == PUBLISHED[path.relative_to(SCHEMAS).as_posix()], (
        f"{path} changed after publication: publish a new version instead"
    )


def test_additional_properties_are_stated_explicitly() -> None:
    schema = _load(SCHEMAS / "io.journeys/touchpoint/jsonschema/1-0-0")
    assert schema["additionalProperties"] is False
    assert schema["properties"]["attributes"]["additionalProperties"] is True
    for branch in schema["allOf"]:
        assert branch["then"]["properties"]["attributes"]["additionalProperties"] is True


def test_touchpoint_schema_covers_the_package_vocabulary() -> None:
    schema = _load(SCHEMAS / "io.journeys/touchpoint/jsonschema/1-0-0")
    assert schema["required"] == list(REQUIRED_FIELDS)
    assert schema["properties"]["type"]["enum"] == list(EVENT_TYPES)
    assert schema["properties"]["channel"]["enum"] == [*CHANNELS, None]
    assert SCHEMA_VERSIONS == (1,)
    branches = {b["if"]["properties"]["type"]["const"]: b["then"] for b in schema["allOf"]}
    assert list(branches) == list(EVENT_TYPES)
    for event_type, rules in ATTRIBUTE_RULES.items():
        attributes = branches[event_type]["properties"]["attributes"]
        assert sorted(attributes["properties"]) == sorted(rule.name for rule in rules)
        required = [rule.name for rule in rules if rule.required]
        assert attributes.get("required", []) == required, event_type


def test_the_latest_schema_states_the_validators_bounds() -> None:
    """1-0-1 adds bounds to 1-0-0 and changes nothing else a department relies on."""
    old = _load(SCHEMAS / "io.journeys/touchpoint/jsonschema/1-0-0")
    new = _load(SCHEMAS / "io.journeys/touchpoint/jsonschema/1-0-1")
    assert new["allOf"] == old["allOf"] and new["required"] == old["required"]
    attributes = new["properties"]["attributes"]
    assert attributes["maxProperties"] == bounds.MAX_ITEMS
    assert attributes["propertyNames"] == {"maxLength": bounds.MAX_KEY}
    scalar = new["$defs"]["scalar_bounds"]
    assert (scalar["minimum"], scalar["maximum"]) == (bounds.INT_MIN, bounds.INT_MAX)
    assert scalar["maxLength"] == bounds.MAX_STRING
    levels = sorted(int(name.rsplit("_", 1)[1]) for name in new["$defs"] if "depth" in name)
    assert levels == list(range(3, bounds.MAX_DEPTH + 2))  # the message is level 1
    assert "array" not in new["$defs"][f"value_at_depth_{bounds.MAX_DEPTH + 1}"]["type"]
    assert new["properties"]["occurred_at"]["pattern"].startswith("^(19")
    assert bounds.EARLIEST.year == 1900
