"""The collector's OpenAPI 3.1 description, served at /openapi.json and committed as
docs/collector.openapi.json (a test keeps the two equal; `journeys collect --openapi`
prints it for the default limits).

Built from the same tables the collector answers from (request errors, rejection codes,
media types) and the contract's own JSON Schema, so the description cannot drift from the
behaviour without a test noticing.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from pipeline import __version__
from pipeline.collect.batch import COLLECTOR_REJECTION_CODES, MEDIA_TYPES, REQUEST_ERRORS
from pipeline.contract import REJECTION_CODES

SCHEMA = "io.journeys/touchpoint/jsonschema/1-0-1"
_ERROR_STATUSES = sorted({status for status, _ in REQUEST_ERRORS.values()})
_RETRY_AFTER = {
    "description": "Seconds to wait before sending the request again.",
    "schema": {"type": "integer", "minimum": 1},
}


def touchpoint_schema() -> dict[str, Any]:
    """The contract's JSON Schema (the authority departments code against)."""
    path = resources.files("pipeline.contract").joinpath("schemas", *SCHEMA.split("/"))
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def openapi(max_body_bytes: int, max_events: int) -> dict[str, Any]:
    codes = {**REJECTION_CODES, **COLLECTOR_REJECTION_CODES}
    lines = sorted(t for t, kind in MEDIA_TYPES.items() if kind == "lines")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "journeys collector",
            "version": __version__,
            "description": "Touchpoint events over HTTP, for department systems that cannot "
            "run a Kafka client: the same contract and the same rejections as Kafka "
            "producers and `journeys emit`. An accepted event is on Kafka (acknowledged by "
            "every in-sync replica) before the answer is sent; a refused one is kept in the "
            "dead-letter topic with its reason. Guide: docs/departments.md.",
        },
        "servers": [{"url": "http://localhost:8080"}],
        "security": [{"bearer": []}],
        "paths": {
            "/v1/touchpoints": {"post": _post(codes, lines, max_body_bytes, max_events)},
            "/healthz": {
                "get": _get(
                    "The collector serves.",
                    "application/json",
                    {"$ref": "#/components/schemas/Health"},
                )
            },
            "/metrics": {
                "get": _get("Counters in Prometheus text format.", "text/plain", {"type": "string"})
            },
            "/openapi.json": {
                "get": _get("This description.", "application/json", {"type": "object"})
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token of JOURNEYS_COLLECTOR_TOKENS: it may emit for "
                    'the departments it lists (any, for ["*"]).',
                }
            },
            "schemas": {
                "Touchpoint": touchpoint_schema(),
                "Answer": _answer_schema(codes),
                "Error": {
                    "type": "object",
                    "required": ["error", "reason"],
                    "additionalProperties": False,
                    "properties": {
                        "error": {"enum": sorted(REQUEST_ERRORS)},
                        "reason": {"type": "string"},
                    },
                    "description": "An answer about the request as a whole; nothing of it is "
                    "accepted. Codes: "
                    + "; ".join(f"`{c}` ({s}): {m}" for c, (s, m) in REQUEST_ERRORS.items()),
                },
                "Health": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"const": "ok"}},
                },
            },
        },
    }


def openapi_json(max_body_bytes: int, max_events: int) -> bytes:
    """The description as served and committed: sorted keys, two-space indents."""
    text = json.dumps(openapi(max_body_bytes, max_events), indent=2, sort_keys=True)
    return text.encode() + b"\n"


def _post(codes: dict[str, str], lines: list[str], max_body: int, max_events: int) -> Any:
    answer = {"application/json": {"schema": {"$ref": "#/components/schemas/Answer"}}}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    responses: dict[str, Any] = {
        "202": {"description": "At least one event accepted, and on Kafka. `rejected` lists "
                "the refused ones by line (kept in the dead-letter topic).",
                "content": answer, "headers": {"X-Request-Id": _REQUEST_ID}},
        "400": {"description": "Every event refused (`rejected` lists them all, and they are "
                "kept in the dead-letter topic), or no event at all (`no_events`).",
                "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/Answer"},
                    {"$ref": "#/components/schemas/Error"}]}}}},
    }  # fmt: skip
    for status in _ERROR_STATUSES:
        if status == 400:
            continue
        named = [c for c, (s, _) in REQUEST_ERRORS.items() if s == status]
        response: dict[str, Any] = {"description": ", ".join(f"`{c}`" for c in named),
                                    "content": error}  # fmt: skip
        if status in (429, 503):
            response["headers"] = {"Retry-After": _RETRY_AFTER}
        if status == 401:
            response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        responses[str(status)] = response
    touchpoint = {"$ref": "#/components/schemas/Touchpoint"}
    jsonl = {
        "schema": {"type": "string", "contentMediaType": "application/x-ndjson"},
        "description": f"JSON Lines: one touchpoint per line, at most {max_events:,} events "
        "(JOURNEYS_COLLECTOR_MAX_EVENTS); blank lines are skipped, lines are numbered from 1.",
    }
    return {
        "summary": "Send touchpoint events",
        "description": f"One touchpoint (`application/json`) or JSON Lines (`{lines[-1]}`, "
        f"also {', '.join(f'`{t}`' for t in lines[:-1])}). The body may be at most "
        f"{max_body:,} bytes (JOURNEYS_COLLECTOR_MAX_BODY_BYTES). Each event is validated "
        "with the contract's validator and checked against the token's departments. "
        "Rejection codes: " + "; ".join(f"`{c}`: {m}" for c, m in codes.items()) + ".",
        "operationId": "sendTouchpoints",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": touchpoint},
                **{media: jsonl for media in lines},
            },
        },
        "responses": responses,
    }


_REQUEST_ID = {
    "description": "The request's id, also in the `source_request` header of its dead letters.",
    "schema": {"type": "string"},
}


def _answer_schema(codes: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["accepted", "rejected"],
        "additionalProperties": False,
        "properties": {
            "accepted": {"type": "integer", "minimum": 0,
                         "description": "Events accepted: on Kafka, acknowledged."},
            "rejected": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["line", "code", "field", "reason"],
                    "additionalProperties": False,
                    "properties": {
                        "line": {"type": "integer", "minimum": 1,
                                 "description": "The event's line in the body, from 1."},
                        "code": {"enum": sorted(codes)},
                        "field": {"type": "string",
                                  "description": "The field the reason concerns."},
                        "reason": {"type": "string",
                                   "description": "One line: the field, the value, what was "
                                   "expected."},
                    },
                },
            },
        },
    }  # fmt: skip


def _get(summary: str, media: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": summary,
        "security": [],
        "responses": {"200": {"description": "OK", "content": {media: {"schema": schema}}}},
    }
