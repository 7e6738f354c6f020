"""Code systems and the code map (``fhir/code-map.tsv`` of every module).

The code map is the single source of the codes the importer reads: one row per (code,
ontology term), each with the role that says where the code is read. Which roles there are,
and what the importer does with each, is data too (:mod:`guidelinekg.fhir_import.maps`).
The maps name terms by CURIE, read with :func:`guidelinekg.namespaces.expand_curie`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rdflib import URIRef
from rdflib.term import Node

from guidelinekg.namespaces import expand_curie, prefixed_name
from guidelinekg.resources import fhir_folders

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
AJCC = "http://cancerstaging.org"
UCUM = "http://unitsofmeasure.org"
HGNC = "http://www.genenames.org/geneId"
NDC = "http://hl7.org/fhir/sid/ndc"
# The project's own CodeSystem of the codes the standard terminologies lack (the fhir_export
# module publishes it under the same URL).
FINDING = "https://w3id.org/guidelinekg/CodeSystem/finding"

# Systems written differently in the wild, and their canonical form in the code map.
SYSTEM_ALIASES = {
    "http://www.genenames.org": HGNC,
    "https://www.genenames.org/geneId": HGNC,
    "http://www.genenames.org/": HGNC,
    "https://www.genenames.org": HGNC,
}
# Code systems named by their OID (urn:oid:...), read as the system's canonical URL; the
# report says so for each coding (system_oids). RxNorm: HL7 Terminology, CodeSystem
# v3-rxNorm, identifier urn:oid:2.16.840.1.113883.6.88 of
# http://www.nlm.nih.gov/research/umls/rxnorm.
SYSTEM_OIDS = {
    "urn:oid:2.16.840.1.113883.6.88": RXNORM,
}
SYSTEM_NAMES = {
    SNOMED: "SNOMED CT",
    LOINC: "LOINC",
    RXNORM: "RxNorm",
    ICD10CM: "ICD-10-CM",
    ICD10: "ICD-10",
    AJCC: "AJCC",
    HGNC: "HGNC",
    NDC: "NDC",
    UCUM: "UCUM",
    FINDING: "finding",
}

CODE_MAP_COLUMNS = ("system", "code", "display", "maps_to", "role", "source", "note")
# The role of known codes that no patient fact uses: they map to nothing.
NOT_USED = "not-used"


def map_term(text: str) -> URIRef:
    """The term a CURIE of the maps names (``gkg:Patient``); ValueError when it is none
    of the project's (an unknown prefix, or no local name)."""
    try:
        if text.partition(":")[2]:
            return expand_curie(text)
    except ValueError:
        pass
    raise ValueError(f"not a project CURIE: {text!r}")


def local_name(term: Node) -> str:
    """The local part of a term's prefixed name: the name the report gives a property (the
    whole IRI when none of the project's prefixes covers it)."""
    name = prefixed_name(str(term))
    return name.split(":", 1)[1] if name else str(term)


def canonical_system(system: Any) -> str:
    system = system.strip() if isinstance(system, str) else ""
    return SYSTEM_ALIASES.get(system) or SYSTEM_OIDS.get(system, system)


def normalise_code(system: str, code: str) -> str:
    code = code.strip()
    if system in (ICD10CM, ICD10):
        code = code.upper()
        if "." not in code and len(code) > 3:
            code = f"{code[:3]}.{code[3:]}"
    elif system == HGNC and not code.upper().startswith("HGNC:"):
        code = f"HGNC:{code}"
    return code


@dataclass(frozen=True)
class CodeMapping:
    """One row of a module's fhir/code-map.tsv."""

    system: str
    code: str
    display: str
    maps_to: str
    role: str
    source: str
    note: str = ""

    @property
    def term(self) -> URIRef | None:
        return map_term(self.maps_to) if self.maps_to else None


class CodeMap:
    """The code map: look codes up by role, system and code (a code ending in * is a prefix)."""

    def __init__(self, rows: Iterable[CodeMapping]) -> None:
        self.rows = list(rows)
        self._exact: dict[tuple[str, str, str], list[CodeMapping]] = {}
        self._prefixes: dict[tuple[str, str], list[tuple[str, CodeMapping]]] = {}
        for row in self.rows:
            system = canonical_system(row.system)
            if row.code.endswith("*"):
                prefix = normalise_code(system, row.code[:-1])
                self._prefixes.setdefault((row.role, system), []).append((prefix, row))
            else:
                key = (row.role, system, normalise_code(system, row.code))
                self._exact.setdefault(key, []).append(row)

    def lookup(self, role: str, system: str | None, code: str) -> list[CodeMapping]:
        system = canonical_system(system)
        code = normalise_code(system, code)
        found = list(self._exact.get((role, system, code), []))
        found += [row for prefix, row in self._prefixes.get((role, system), [])
                  if code.startswith(prefix)]
        return found

    def in_role(self, role: str) -> list[CodeMapping]:
        return [row for row in self.rows if row.role == role]


def code_map_paths() -> list[Path]:
    """Every module's code map (``fhir/code-map.tsv`` in a domain's or guideline's folder)."""
    return [folder / "code-map.tsv" for folder in fhir_folders()
            if (folder / "code-map.tsv").is_file()]


def data_rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    """The rows of one of the importer's TSV files (``#`` lines are comments) with their
    line numbers; a wrong header or a row of the wrong width is a packaging error."""
    numbered = [(number, line) for number, line in enumerate(
        path.read_text(encoding="utf-8").splitlines(), start=1)
        if line.strip() and not line.startswith("#")]
    if not numbered or tuple(next(csv.reader([numbered[0][1]], delimiter="\t"))) != columns:
        raise ValueError(f"{path}: header must be {' '.join(columns)}")
    rows = []
    for number, line in numbered[1:]:
        values = next(csv.reader([line], delimiter="\t"))
        if len(values) != len(columns):
            raise ValueError(f"{path}: line {number} has {len(values)} columns, "
                             f"not {len(columns)}")
        rows.append((number, values))
    return rows


def read_code_map(path: Path, roles: Iterable[str] | None = None) -> CodeMap:
    """Parse a code map file; a malformed row, or a role not in ``roles`` (when given), is a
    packaging error reported with its line."""
    known = None if roles is None else frozenset(roles)
    rows = []
    for number, values in data_rows(path, CODE_MAP_COLUMNS):
        row = CodeMapping(*values)
        if known is not None and row.role not in known:
            raise ValueError(f"{path}: line {number}: unknown role {row.role!r} (roles are "
                             "the importer's own and those of the roles.tsv files)")
        if row.role != NOT_USED:
            map_term(row.maps_to)
        rows.append(row)
    return CodeMap(rows)
