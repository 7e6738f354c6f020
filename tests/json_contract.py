"""The JSON contract of ``recommend``, checked against the JSON Schema the package ships
(``guidelinekg/schemas/recommendation-results.schema.json``): every test that reads the
command's JSON reads it through here."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

import jsonschema

SCHEMA_FILE = "recommendation-results.schema.json"


@cache
def schema() -> dict[str, Any]:
    return json.loads((files("guidelinekg") / "schemas" / SCHEMA_FILE).read_text("utf-8"))


def results_of(text: str) -> list[dict[str, Any]]:
    """``recommend --format json`` output, parsed and checked: always a list."""
    document = json.loads(text)
    jsonschema.validate(document, schema())
    return document


def cohort_line(line: str) -> dict[str, Any]:
    """One line of ``recommend --format jsonl``, parsed and checked (a result or a refusal)."""
    document = json.loads(line)
    line_schema = {"$schema": schema()["$schema"], "$defs": schema()["$defs"],
                   "$ref": "#/$defs/cohortLine"}
    jsonschema.validate(document, line_schema)
    return document
