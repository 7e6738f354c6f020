"""A FHIR input the importer must refuse, checked through every entry point: the importer,
the Python API and the command line (exit 2, the message, no output written)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import guidelinekg
from guidelinekg.cli import main
from guidelinekg.fhir_import import import_fhir_json
from guidelinekg.loading import InputError

SOURCE = "record.json"
AS_OF = date(2026, 12, 1)


def assert_refused(bundle: dict[str, Any], message: str, tmp_path: Path,
                   capsys: pytest.CaptureFixture[str]) -> None:
    """import_fhir_json and guidelinekg.recommend raise InputError with the message; the
    command line exits 2 with it and writes no graph."""
    with pytest.raises(InputError) as raised:
        import_fhir_json(bundle, SOURCE)
    assert str(raised.value) == f"{SOURCE}: {message}"
    with pytest.raises(InputError) as raised:
        guidelinekg.recommend(bundle, as_of=AS_OF)
    assert raised.value.detail == message
    path = tmp_path / SOURCE
    path.write_text(json.dumps(bundle), encoding="utf-8")
    for command in (["recommend", str(path), "--as-of", AS_OF.isoformat()],
                    ["import-fhir", str(path), "-o", str(tmp_path / "out.ttl")]):
        assert main(command) == 2
        captured = capsys.readouterr()
        assert captured.err == f"guidelinekg {command[0]}: error: {path}: {message}\n"
        assert captured.out == ""
    assert not (tmp_path / "out.ttl").exists()
