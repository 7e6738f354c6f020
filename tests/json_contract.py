"""The JSON contracts of ``recommend`` and ``validate``, checked against the JSON Schemas the
package ships (``guidelinekg/schemas/recommendation-results.schema.json`` and
``guidelinekg/schemas/validation-report.schema.json``): every test that reads either
command's JSON (or JSON lines) reads it through here."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

import jsonschema

SCHEMA_FILE = "recommendation-results.schema.json"
VALIDATION_SCHEMA_FILE = "validation-report.schema.json"


@cache
def _load(name: str) -> dict[str, Any]:
    return json.loads((files("guidelinekg") / "schemas" / name).read_text("utf-8"))


def schema() -> dict[str, Any]:
    """The schema of ``recommend --format json``."""
    return _load(SCHEMA_FILE)


def validation_schema() -> dict[str, Any]:
    """The schema of ``validate --format json``."""
    return _load(VALIDATION_SCHEMA_FILE)


def definition(document_schema: dict[str, Any], name: str) -> dict[str, Any]:
    """A schema that checks a document against one of ``document_schema``'s definitions."""
    return {"$schema": document_schema["$schema"], "$defs": document_schema["$defs"],
            "$ref": f"#/$defs/{name}"}


def results_of(text: str) -> list[dict[str, Any]]:
    """``recommend --format json`` output, parsed and checked: always a list."""
    document = json.loads(text)
    jsonschema.validate(document, schema())
    return document


def cohort_line(line: str) -> dict[str, Any]:
    """One line of ``recommend --format jsonl``, parsed and checked (a result or a refusal)."""
    document = json.loads(line)
    jsonschema.validate(document, definition(schema(), "cohortLine"))
    return document


def validation_report(text: str) -> dict[str, Any]:
    """``validate --format json`` output (or the API's ``to_json()``), parsed and checked."""
    document = json.loads(text)
    jsonschema.validate(document, validation_schema())
    return document


def validation_line(line: str) -> dict[str, Any]:
    """One line of ``validate --format jsonl`` (or of ``recommend --validation-report``),
    parsed and checked: a result, or an export line that belongs to no patient."""
    document = json.loads(line)
    jsonschema.validate(document, definition(validation_schema(), "validationLine"))
    return document
