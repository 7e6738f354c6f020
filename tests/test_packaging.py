"""`pip install .` gives a working guidelinekg that finds its ontology, shapes and queries.

The wheel is built, unpacked, and the package is run from the unpacked copy (outside the
source tree), so resources must come from the package data, not from the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "-w", str(out), "-q"],
        check=True, capture_output=True, text=True,
    )
    wheels = list(out.glob("guidelinekg-*.whl"))
    assert len(wheels) == 1
    target = out / "site"
    with zipfile.ZipFile(wheels[0]) as archive:
        archive.extractall(target)
    return target


def test_wheel_carries_ontology_shapes_queries_and_examples(unpacked_wheel: Path) -> None:
    resources = unpacked_wheel / "guidelinekg" / "_resources"
    assert (resources / "ontology" / "guidelinekg.ttl").is_file()
    assert (resources / "guidelines" / "bcbm" / "bcbm.ttl").is_file()
    assert (resources / "guidelines" / "bcbm" / "statements.tsv").is_file()
    assert (resources / "domains" / "oncology" / "queries" / "facts").is_dir()
    assert (resources / "domains" / "oncology" / "fhir" / "code-map.tsv").is_file()
    assert any((resources / "shapes").glob("*.ttl"))
    assert (resources / "queries" / "derive" / "evaluate-fact-criteria.rq").is_file()
    assert any((resources / "examples" / "patients").glob("*.ttl"))


def test_installed_package_finds_its_resources(unpacked_wheel: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(unpacked_wheel)}
    script = (
        "import guidelinekg, guidelinekg.resources as r, guidelinekg.loading as l;"
        "print(r.resource_root());"
        "print(len(l.guideline_graph()) > 1000);"
        "print(','.join(m.name for m in r.modules()))"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, check=True)
    root, enough, found = result.stdout.split()
    assert Path(root) == unpacked_wheel / "guidelinekg" / "_resources"
    assert enough == "True"
    assert found == "core,oncology,bcbm"


def test_wheel_carries_the_vendored_query_editor(unpacked_wheel: Path) -> None:
    # The query page's YASGUI is package data: the installed site works offline.
    vendored = ROOT / "src" / "guidelinekg" / "static" / "vendor" / "yasgui"
    installed = unpacked_wheel / "guidelinekg" / "static" / "vendor" / "yasgui"
    names = {"yasgui.min.js", "yasgui.min.css", "LICENSE", "README.md"}
    assert {path.name for path in vendored.iterdir()} == names
    for name in names:
        assert (installed / name).read_bytes() == (vendored / name).read_bytes(), name
    assert "MIT License" in (installed / "LICENSE").read_text(encoding="utf-8")
    assert "@zazuko/yasgui@4.6.2" in (installed / "README.md").read_text(encoding="utf-8")


def test_wheel_carries_the_json_schemas(unpacked_wheel: Path) -> None:
    # The JSON contracts of recommend and validate ship with the package (README).
    for name in ("recommendation-results.schema.json", "validation-report.schema.json"):
        shipped = ROOT / "src" / "guidelinekg" / "schemas" / name
        installed = unpacked_wheel / "guidelinekg" / "schemas" / name
        assert installed.read_bytes() == shipped.read_bytes(), name
