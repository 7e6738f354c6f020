"""No guideline in the code: the Python under src/ (and its page assets) and the core's
queries (queries/derive, queries/qc, queries/facts) name no statement key, fact, term or
prefix that a domain or a guideline declares. What differs between guidelines is data in
their folders. (queries/guideline/ holds the informaticians' example queries, whose
comments show the seed guideline's terms as examples; they are not scanned.)

The names are read from the data itself (every domain's and guideline's ontology files and
spec), so a guideline added later is scanned for too.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from rdflib import URIRef

from guidelinekg.coverage import read_tsv
from guidelinekg.loading import PREFIXES, merge_graphs, parse_rdf_file
from guidelinekg.resources import modules, queries_dir, resource_root

SRC = resource_root() / "src" / "guidelinekg"
GENERIC_QUERY_FOLDERS = ("derive", "qc", "facts")


def _scanned_files() -> list[Path]:
    files = sorted(path for path in SRC.rglob("*") if path.is_file()
                   and path.suffix in {".py", ".html", ".js", ".jsonld", ".css", ".json"})
    for folder in GENERIC_QUERY_FOLDERS:
        files += sorted((queries_dir() / folder).glob("*.rq"))
    return files


def _declared_names() -> dict[str, str]:
    """pattern -> what it stands for, for every name a domain or guideline declares."""
    names: dict[str, str] = {}
    for module in modules():
        if module.kind == "core":
            continue
        names[rf"\b{re.escape(module.name)}\b"] = f"the {module.kind} {module.name!r}"
        graph = merge_graphs(parse_rdf_file(path) for path in module.ontology_files())
        subjects = {s for s in graph.subjects() if isinstance(s, URIRef)}
        for subject in subjects:
            iri = str(subject)
            for prefix, namespace in PREFIXES.items():
                if iri.startswith(namespace) and prefix in {"gkg", "fact", "code", "unit"}:
                    local = iri[len(namespace):]
                    names.update(_patterns(prefix, local, module.name))
        if module.kind == "guideline":
            keys = {row["key"] for row in read_tsv(module.statements_file, ("key",))}
            for family in sorted({re.sub(r"-\d+$", "", key) for key in keys if "-" in key}):
                names[rf"\b{re.escape(family)}-(?![a-z])"] = f"a statement key of {module.name}"
    return names


def _patterns(prefix: str, local: str, owner: str) -> dict[str, str]:
    what = f"{prefix}:{local} (declared by {owner})"
    found = {rf"\b{prefix}:{re.escape(local)}\b": what}
    # A distinctive name is caught bare too: CamelCase class names, hyphenated notations.
    if re.search(r"[a-z][A-Z]", local) or (local[:1].isupper() and len(local) > 3) \
            or "-" in local:
        found[rf"(?<![\w-]){re.escape(local)}(?![\w-])"] = what
    return found


def test_the_scan_knows_the_seed_guideline() -> None:
    """The scan would catch what issue 12 found in the code (it is not vacuous)."""
    patterns = _declared_names()
    for leak in ('"SUM-"', "bcbm:BMA-1", "gkg:Denosumab", "code:site-bone", "her2-status",
                 "PrimaryBreastCancer", "BoneRadiotherapy", "germline-brca1"):
        assert any(re.search(pattern, leak) for pattern in patterns), leak


@pytest.mark.parametrize("path", _scanned_files(), ids=lambda p: p.relative_to(
    resource_root()).as_posix())
def test_no_guideline_specific_name_in_generic_code(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = []
    for pattern, what in _declared_names_cached().items():
        for match in re.finditer(pattern, text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"line {line}: {match.group(0)!r} is {what}")
    assert not found, "\n".join(sorted(set(found)))


@cache
def _declared_names_cached() -> dict[str, str]:
    return _declared_names()
