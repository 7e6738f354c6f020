"""Import a patient record from FHIR R4 JSON (mCODE STU1 to STU4) into the patient graph.

``guidelinekg import-fhir BUNDLE.json... [-o patient.ttl]`` reads Bundles or single resources
with plain :mod:`json` (fhir.resources is the exporter's library) and writes the project's
patient graph: one ``gkg:Patient`` and one record item per resource it understands, each with
``gkg:sourceResource`` naming the FHIR resource it came from.

Resources are recognised by their codes, never by ``meta.profile`` (the STU1 and STU4 profile
URLs differ). Every code that carries meaning comes from ``ontology/fhir/code-map.tsv``; the
few structural codes (the components of a genetic variant, the line-of-therapy extension) are
named constants below. Nothing is dropped silently: the import report says what each resource
became, or why it (or one of its elements) was ignored. Input that cannot be read safely -- not
FHIR, two patients, a resource without a code, a quantity without a unit the project can
convert -- raises :class:`~guidelinekg.loading.InputError` naming the file and the resource.
docs/fhir-import.md documents every rule.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF, RDFS, XSD
from rdflib.term import Node

from guidelinekg.loading import (
    PREFIXES,
    InputError,
    bind_project_prefixes,
    parse_rdf_file,
    read_bytes_checked,
)
from guidelinekg.resources import ontology_dir

GKG = Namespace(PREFIXES["gkg"])
CODE = Namespace(PREFIXES["code"])

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
AJCC = "http://cancerstaging.org"
UCUM = "http://unitsofmeasure.org"
HGNC = "http://www.genenames.org/geneId"
FINDING = "https://w3id.org/guidelinekg/CodeSystem/finding"
LINE_OF_THERAPY_URL = "https://w3id.org/guidelinekg/StructureDefinition/line-of-therapy"

# Systems written differently in the wild, and their canonical form in the code map.
SYSTEM_ALIASES = {
    "http://www.genenames.org": HGNC,
    "https://www.genenames.org/geneId": HGNC,
    "http://www.genenames.org/": HGNC,
    "https://www.genenames.org": HGNC,
}
SYSTEM_NAMES = {
    SNOMED: "SNOMED CT",
    LOINC: "LOINC",
    RXNORM: "RxNorm",
    ICD10CM: "ICD-10-CM",
    AJCC: "AJCC",
    HGNC: "HGNC",
    UCUM: "UCUM",
    FINDING: "finding",
}

# Structural codes of the mCODE genetic-variant Observation (LOINC), not mappings to the
# ontology: they say which component holds the gene, the origin and the significance.
GENE_STUDIED = "48018-6"
GENOMIC_SOURCE_CLASS = "48002-0"
GERMLINE = "LA6683-2"
SOMATIC = "LA6684-0"
CLINICAL_SIGNIFICANCE = "53037-8"
PATHOGENIC = {"LA6668-3": "pathogenic", "LA26332-9": "likely pathogenic"}
NOT_PATHOGENIC = {
    "LA26333-7": "uncertain significance",
    "LA26334-5": "likely benign",
    "LA6675-8": "benign",
}

# mCODE radiotherapy course summary: dose delivered to a volume (STU2 to STU4).
DOSE_TO_VOLUME_SUFFIX = "radiotherapy-dose-delivered-to-volume"
RELATED_PRIMARY_SUFFIX = "related-primary-cancer-condition"

CODE_MAP_COLUMNS = ("system", "code", "display", "maps_to", "role", "source", "note")
CODE_MAP_ROLES = frozenset({
    "primary-breast-cancer", "condition", "metastasis-site", "observation", "genetic-variant",
    "variant-gene", "variant-value", "stage-group-observation", "stage-value", "not-used",
    "receptor-value", "disease-status-value", "fracture-risk-value", "response-value",
    "medication", "procedure", "purpose", "route", "bone-body-site",
})

IMPORTED, IGNORED, NOTE = "imported", "ignored", "note"

ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]+$")
TYPE_ID_TAIL = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
FULL_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:T.*)?$")
PARTIAL_DATE = re.compile(r"^\d{4}(?:-\d{2})?$")

FINAL_OBSERVATION_STATUSES = frozenset({"final", "amended", "corrected"})
UNCERTAIN_VERIFICATION = frozenset({"unconfirmed", "provisional", "differential"})
INACTIVE_CLINICAL = frozenset({"inactive", "remission", "resolved"})
ORDER_INTENTS = frozenset({
    "order", "original-order", "reflex-order", "filler-order", "instance-order"})
PLAN_INTENTS = frozenset({"proposal", "plan"})

# Top-level elements that carry clinical meaning: when present and not read they are
# reported, so nothing of substance is dropped silently. Administrative elements (names,
# identifiers, performers, narrative) are not listed. A name ending in [x] is a choice type.
CLINICAL_ELEMENTS = (
    "note", "reasonCode", "reasonReference", "bodySite", "interpretation", "component",
    "hasMember", "stage", "evidence", "severity", "abatement[x]", "outcome", "complication",
    "statusReason", "deceased[x]", "dosage", "dosageInstruction", "value[x]", "focus",
    "onset[x]", "performed[x]", "occurrence[x]", "effective[x]", "dispenseRequest",
    "asNeeded[x]", "followUp", "usedCode", "focalDevice", "quantity[x]", "orderDetail",
)

# Observation classes and the value each takes.
OBSERVATION_VALUES: dict[str, tuple[str, str]] = {
    "EstrogenReceptorStatus": ("code", "receptor-value"),
    "ProgesteroneReceptorStatus": ("code", "receptor-value"),
    "HER2Status": ("code", "receptor-value"),
    "DiseaseStatusObservation": ("code", "disease-status-value"),
    "FractureRiskAssessment": ("code", "fracture-risk-value"),
    "ResponseAssessment": ("code", "response-value"),
    "VisceralCrisisAssessment": ("boolean", ""),
    "NeurologicalComplicationAssessment": ("boolean", ""),
    "SpinalCordCompressionAssessment": ("boolean", ""),
    "WeightBearingLesionAssessment": ("boolean", ""),
    "BoneOnlyMetastasisAssessment": ("boolean", ""),
    "BonePredominantDiseaseAssessment": ("boolean", ""),
    "PatientEngagementRecord": ("boolean", ""),
    "MetastaticLesionCount": ("integer", ""),
    "BodyWeight": ("weight", ""),
    "BonePainAssessment": ("pain", ""),
}


# ---------------------------------------------------------------------------------------
# Terms: CURIEs, the code map and the parts of the ontology the importer checks against
# ---------------------------------------------------------------------------------------


def expand_curie(curie: str) -> URIRef:
    prefix, _, local = curie.partition(":")
    if prefix not in PREFIXES or not local:
        raise ValueError(f"not a project CURIE: {curie!r}")
    return URIRef(PREFIXES[prefix] + local)


def curie(term: Node) -> str:
    """A project CURIE for an IRI when it has one (for reports), else the IRI."""
    text = str(term)
    for prefix, namespace in sorted(PREFIXES.items(), key=lambda item: -len(item[1])):
        if text.startswith(namespace) and len(text) > len(namespace):
            return f"{prefix}:{text[len(namespace):]}"
    return text


def canonical_system(system: Any) -> str:
    system = system.strip() if isinstance(system, str) else ""
    return SYSTEM_ALIASES.get(system, system)


def normalise_code(system: str, code: str) -> str:
    code = code.strip()
    if system == ICD10CM:
        code = code.upper()
        if "." not in code and len(code) > 3:
            code = f"{code[:3]}.{code[3:]}"
    elif system == HGNC and not code.upper().startswith("HGNC:"):
        code = f"HGNC:{code}"
    return code


@dataclass(frozen=True)
class CodeMapping:
    """One row of ontology/fhir/code-map.tsv."""

    system: str
    code: str
    display: str
    maps_to: str
    role: str
    source: str
    note: str = ""

    @property
    def term(self) -> URIRef | None:
        return expand_curie(self.maps_to) if self.maps_to else None


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


def code_map_path() -> Path:
    return ontology_dir() / "fhir" / "code-map.tsv"


def read_code_map(path: Path) -> CodeMap:
    """Parse a code map file; a malformed row is a packaging error, reported with its line."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    reader = csv.reader(lines, delimiter="\t")
    header = next(reader, None)
    if header is None or tuple(header) != CODE_MAP_COLUMNS:
        raise ValueError(f"{path}: header must be {' '.join(CODE_MAP_COLUMNS)}")
    rows = []
    for number, values in enumerate(reader, start=2):
        if len(values) != len(CODE_MAP_COLUMNS):
            raise ValueError(f"{path}: data row {number} has {len(values)} columns")
        row = CodeMapping(*values)
        if row.role not in CODE_MAP_ROLES:
            raise ValueError(f"{path}: data row {number}: unknown role {row.role!r}")
        if row.role != "not-used":
            expand_curie(row.maps_to)
        rows.append(row)
    return CodeMap(rows)


@cache
def code_map() -> CodeMap:
    return read_code_map(code_map_path())


@dataclass(frozen=True)
class OntologyFacts:
    """What the importer checks against the core ontology: class hierarchy and units."""

    superclasses: dict[URIRef, frozenset[URIRef]]
    unit_dimensions: dict[str, URIRef]

    def is_a(self, cls: URIRef, ancestor: URIRef) -> bool:
        return cls == ancestor or ancestor in self.superclasses.get(cls, frozenset())

    def ucum_codes(self, *dimensions: str) -> list[str]:
        wanted = {CODE[name] for name in dimensions}
        return sorted(code for code, dim in self.unit_dimensions.items() if dim in wanted)


@cache
def ontology_facts() -> OntologyFacts:
    graph = parse_rdf_file(ontology_dir() / "guidelinekg.ttl")
    direct: dict[URIRef, set[URIRef]] = {}
    for sub, sup in graph.subject_objects(RDFS.subClassOf):
        if isinstance(sub, URIRef) and isinstance(sup, URIRef):
            direct.setdefault(sub, set()).add(sup)
    closure: dict[URIRef, frozenset[URIRef]] = {}
    for cls in direct:
        seen: set[URIRef] = set()
        stack = list(direct[cls])
        while stack:
            parent = stack.pop()
            if parent not in seen:
                seen.add(parent)
                stack.extend(direct.get(parent, ()))
        closure[cls] = frozenset(seen)
    units = {}
    for unit, ucum in graph.subject_objects(GKG.ucumCode):
        dimension = graph.value(unit, GKG.dimension)
        if isinstance(dimension, URIRef):
            units[str(ucum)] = dimension
    return OntologyFacts(closure, units)


# ---------------------------------------------------------------------------------------
# The result: graph and report
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportEntry:
    """One line of the import report."""

    resource: str  # gkg:sourceResource form (fullUrl or resourceType/id), or the file
    resource_type: str
    outcome: str  # imported, ignored or note
    detail: str  # what it became, or why it was ignored
    element: str = ""  # the FHIR element the line is about, when not the whole resource
    item: str = ""  # the IRI of the record item made, if any

    def text(self) -> str:
        where = f"{self.resource} ({self.resource_type})"
        if self.element:
            where += f" {self.element}"
        return f"{where}: {self.outcome}: {self.detail}"


@dataclass
class FhirImport:
    """The patient graph made from FHIR input, and the report of what became of each resource."""

    graph: Graph
    report: list[ReportEntry]
    patient: URIRef
    sources: list[str] = field(default_factory=list)

    def entries(self, resource: str | None = None, outcome: str | None = None) -> list[ReportEntry]:
        return [e for e in self.report
                if (resource is None or e.resource == resource)
                and (outcome is None or e.outcome == outcome)]

    def items_from(self, resource: str) -> list[URIRef]:
        """The record items made from one FHIR resource (by its gkg:sourceResource)."""
        return sorted(s for s in self.graph.subjects(GKG.sourceResource, Literal(resource))
                      if isinstance(s, URIRef))

    def turtle(self) -> str:
        return bind_project_prefixes(self.graph).serialize(format="turtle")

    def report_text(self) -> str:
        items = set(self.graph.subjects(GKG.subject, self.patient))
        ignored = sum(1 for e in self.report if e.outcome == IGNORED)
        lines = [
            f"patient {self.patient}: {len(items)} record items; "
            f"{ignored} resources or elements ignored (each with why)",
        ]
        lines += [f"  {entry.text()}" for entry in self.report]
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# Reading the input
# ---------------------------------------------------------------------------------------


@dataclass
class Entry:
    """A resource of the input, with where it came from."""

    resource: dict[str, Any]
    source: str
    position: str  # "entry 3" in a Bundle, "" for a resource on its own
    full_url: str | None
    order: int
    contained: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.resource["resourceType"]

    @property
    def id(self) -> str | None:
        value = self.resource.get("id")
        return value if isinstance(value, str) and value.strip() else None

    @property
    def local_reference(self) -> str | None:
        return f"{self.type}/{self.id}" if self.id else None

    @property
    def reference(self) -> str:
        """The gkg:sourceResource value: fullUrl, else resourceType/id."""
        if self.full_url:
            return self.full_url
        if self.id:
            return f"{self.type}/{self.id}"
        return f"{self.type} ({self.position or 'the file'})"

    @property
    def named(self) -> bool:
        return bool(self.id or (self.full_url and ABSOLUTE_URI.match(self.full_url)))

    @property
    def iri(self) -> URIRef:
        if self.full_url and ABSOLUTE_URI.match(self.full_url):
            return URIRef(self.full_url)
        if not self.id:
            raise InputError(self.source, f"{self.reference}: the resource has neither an id "
                             "nor an absolute fullUrl, so its record item cannot be named")
        return URIRef(f"urn:guidelinekg:fhir:{self.type}/{quote(self.id, safe='-.')}")

    def names(self) -> list[str]:
        keys = [self.full_url] if self.full_url else []
        if self.local_reference:
            keys.append(self.local_reference)
        return keys


def read_json_file(path: Path | str) -> Any:
    """The JSON document of a file, or an InputError that names the file."""
    path = Path(path)
    data = read_bytes_checked(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(path, f"not UTF-8 text ({error.reason})") from None
    return parse_json_text(text, path)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_text(text: str, source: Path | str) -> Any:
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise InputError(source, f"not valid JSON ({error})") from None


def _describe_json(value: Any) -> str:
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, dict):
        return "a JSON object without resourceType"
    return f"a JSON {type(value).__name__}"


# ---------------------------------------------------------------------------------------
# Small readers of FHIR datatypes
# ---------------------------------------------------------------------------------------


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def codings(concept: Any) -> list[dict[str, Any]]:
    return [c for c in as_list(as_dict(concept).get("coding"))
            if isinstance(c, dict) and isinstance(c.get("code"), str) and c["code"].strip()]


def status_code(concept: Any) -> str | None:
    """The code of a status CodeableConcept (Condition.clinicalStatus, verificationStatus)."""
    found = codings(concept)
    return found[0]["code"].strip().lower() if found else None


def code_value(value: Any) -> str | None:
    """A FHIR code element (status, intent): the string, or None for anything else."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def describe_coding(coding: dict[str, Any]) -> str:
    system = canonical_system(coding.get("system"))
    name = SYSTEM_NAMES.get(system, system or "no system")
    text = f"{name} {coding['code']}"
    display = coding.get("display")
    return f"{text} ({display})" if isinstance(display, str) and display else text


def describe_concept(concept: Any) -> str:
    found = codings(concept)
    if found:
        return ", ".join(describe_coding(c) for c in found)
    text = as_dict(concept).get("text")
    return f"text only: {text!r}" if text else "no coding"


def has_code(concept: Any) -> bool:
    concept = as_dict(concept)
    return bool(codings(concept) or (isinstance(concept.get("text"), str) and concept["text"]))


def choice(resource: dict[str, Any], name: str) -> tuple[str, Any] | None:
    """The element of a choice type name[x] that is present, as (element name, value)."""
    for key, value in resource.items():
        if key.startswith(name) and key[len(name):][:1].isupper():
            return key, value
    return None


def is_calendar_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def is_number(value: Any) -> bool:
    return isinstance(value, (int, Decimal)) and not isinstance(value, bool)


def is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, Decimal) and value == value.to_integral())


def decimal_literal(value: int | Decimal) -> Literal:
    """An xsd:decimal in the lexical form Turtle writes and reads back unchanged (4 -> 4.0)."""
    text = format(Decimal(value), "f")
    return Literal(text if "." in text else f"{text}.0", datatype=XSD.decimal)


def integer_literal(value: int | Decimal) -> Literal:
    return Literal(int(value), datatype=XSD.integer)


def dates_only(dosage: dict[str, Any]) -> bool:
    """A Dosage that only gives the treatment's start and end (read as the item's dates)."""
    timing = as_dict(dosage.get("timing"))
    return (set(dosage) <= {"timing", "sequence"} and set(timing) <= {"repeat"}
            and set(as_dict(timing.get("repeat"))) <= {"boundsPeriod"})


STATUS_REASONS = {
    "entered-in-error": "status entered-in-error: recorded by mistake",
    "not-done": "status not-done: it was not done",
    "not-taken": "status not-taken: it was not taken",
    "unknown": "status unknown: the record does not say whether it happened",
}


def status_reason(status: Any, expected: str) -> str:
    if not status:
        return f"no status: not known to be {expected}"
    return STATUS_REASONS.get(status, f"status {status}: not {expected}")


def extension_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1] or url


# ---------------------------------------------------------------------------------------
# The importer
# ---------------------------------------------------------------------------------------


class Conflict(Exception):
    """Codings of one concept that map to different terms."""


class Item:
    """A record item (or dose specification) being written, with its report description."""

    def __init__(self, graph: Graph, iri: URIRef, classes: Sequence[URIRef]) -> None:
        self.graph = graph
        self.iri = iri
        self.classes = list(classes)
        self.parts: list[str] = []
        for cls in classes:
            graph.add((iri, RDF.type, cls))

    def set(self, prop: str, value: Node, text: str | None = None, report: bool = True) -> None:
        self.graph.add((self.iri, GKG[prop], value))
        if report:
            shown = text if text is not None else (
                curie(value) if isinstance(value, URIRef) else str(value))
            self.parts.append(f"{prop} {shown}")

    def describe(self) -> str:
        head = " + ".join(curie(cls) for cls in self.classes)
        return ", ".join([head, *self.parts])


class Context:
    """The import of one resource: what was read, and its report lines."""

    def __init__(self, importer: Importer, entry: Entry) -> None:
        self.importer = importer
        self.entry = entry
        self.resource = entry.resource
        self.read: set[str] = {"resourceType", "id", "subject"}
        self.read_extensions: set[str] = set()
        self.items: list[Item] = []
        # Notes and element-level lines wait for the line saying what the resource became.
        self.pending: list[ReportEntry] = []

    def _add(self, outcome: str, detail: str, element: str = "", item: str = "") -> None:
        line = ReportEntry(self.entry.reference, self.entry.type, outcome, detail, element, item)
        if outcome == NOTE or element:
            self.pending.append(line)
            return
        self.importer.add_report(self.entry, line)
        self.flush()

    def flush(self) -> None:
        for line in self.pending:
            self.importer.add_report(self.entry, line)
        self.pending.clear()

    def imported(self, item: Item) -> Item:
        self.items.append(item)
        self._add(IMPORTED, item.describe(), item=str(item.iri))
        return item

    def imported_into(self, detail: str, target: URIRef) -> None:
        self._add(IMPORTED, detail, item=str(target))
        self.items.append(Item(self.importer.graph, target, []))

    def ignore(self, why: str, element: str = "") -> None:
        self._add(IGNORED, why, element)

    def note(self, text: str, element: str = "") -> None:
        self._add(NOTE, text, element)

    def error(self, message: str, element: str = "") -> InputError:
        where = self.entry.reference + (f" {element}" if element else "")
        if self.entry.position:
            where += f" ({self.entry.position})"
        return InputError(self.entry.source, f"{where}: {message}")

    def date(self, item: Item, prop: str, value: Any, element: str) -> bool:
        """Write the xsd:date part of a FHIR date or dateTime; report one that is partial."""
        self.read.add(element.split(".", 1)[0].split("[", 1)[0])
        if not isinstance(value, str):
            self.ignore(f"date {value!r} is not a FHIR date; no {prop} written", element)
            return False
        match = FULL_DATE.match(value.strip())
        if match and is_calendar_date(match.group(1)):
            item.set(prop, Literal(match.group(1), datatype=XSD.date))
            return True
        reason = ("only a year or a month is given" if PARTIAL_DATE.match(value.strip())
                  else "not a calendar date" if match else "not a FHIR date")
        self.ignore(f"date {value!r}: {reason}; no {prop} written", element)
        return False


class Importer:
    """Turns the documents of one patient's record into the patient graph."""

    def __init__(self, documents: Sequence[tuple[str, Any]]) -> None:
        self.documents = documents
        self.codes = code_map()
        self.ontology = ontology_facts()
        self.graph = Graph()
        self.entries: list[Entry] = []
        self.reports: dict[int, list[ReportEntry]] = {}
        self.file_reports: list[ReportEntry] = []
        self.by_key: dict[str, Entry] = {}
        self.skipped: set[int] = set()  # entries not imported: DELETE requests, duplicates
        self.patient_entry: Entry | None = None
        self.patient_key: str | None = None
        self.patient: URIRef | None = None
        self.primaries: list[tuple[Entry, URIRef]] = []
        self.stage_claims: dict[URIRef, list[tuple[URIRef, str]]] = {}
        self.stage_assessments: dict[int, URIRef] = {}
        self.referenced_medications: dict[int, list[str]] = {}
        self.administered_requests: set[int] = set()
        self.condition_kinds: dict[int, str] = {}  # entry order -> code-map role of its code
        self.metastasis_sites: dict[int, URIRef] = {}  # entry order -> site of a present metastasis

    # -- collecting -------------------------------------------------------------------

    def add_report(self, entry: Entry, line: ReportEntry) -> None:
        self.reports.setdefault(entry.order, []).append(line)

    def collect(self) -> None:
        for source, data in self.documents:
            if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
                raise InputError(source, f"not FHIR JSON: {_describe_json(data)} "
                                 "(a FHIR resource or Bundle has a resourceType)")
            if data["resourceType"] == "Bundle":
                self._collect_bundle(source, data)
            else:
                self._add_entry(Entry(data, source, "", None, len(self.entries)))

    def _collect_bundle(self, source: str, bundle: dict[str, Any]) -> None:
        raw_entries = bundle.get("entry", [])
        if not isinstance(raw_entries, list):
            raise InputError(source, "Bundle.entry is not a list")
        name = bundle.get("id") or Path(source).name
        self.file_reports.append(ReportEntry(
            source, "Bundle", NOTE,
            f"Bundle {name} (type {bundle.get('type', 'not given')}, {len(raw_entries)} entries); "
            "Bundle.timestamp is not read (it is not the evaluation date)"))
        for index, raw in enumerate(raw_entries):
            position = f"entry {index}"
            raw = as_dict(raw)
            resource = raw.get("resource")
            full_url = raw.get("fullUrl") if isinstance(raw.get("fullUrl"), str) else None
            if not isinstance(resource, dict):
                self.file_reports.append(ReportEntry(
                    full_url or f"{source} {position}", "Bundle.entry", IGNORED,
                    "the entry holds no resource"))
                continue
            if not isinstance(resource.get("resourceType"), str):
                raise InputError(source, f"{position}: not a FHIR resource (no resourceType)")
            method = as_dict(raw.get("request")).get("method")
            entry = Entry(resource, source, position, full_url, len(self.entries))
            if method == "DELETE":
                self.entries.append(entry)
                self.skipped.add(entry.order)
                self.add_report(entry, ReportEntry(entry.reference, entry.type, IGNORED,
                                                   "request method DELETE: not a record entry"))
                continue
            self._add_entry(entry)

    def _add_entry(self, entry: Entry) -> None:
        for contained in as_list(entry.resource.get("contained")):
            if isinstance(contained, dict) and isinstance(contained.get("id"), str):
                entry.contained["#" + contained["id"]] = contained
        for key in entry.names():
            other = self.by_key.get(key)
            if other is None:
                continue
            if other.resource == entry.resource:
                self.entries.append(entry)
                self.skipped.add(entry.order)
                self.add_report(entry, ReportEntry(
                    entry.reference, entry.type, IGNORED,
                    f"the same resource as {other.position or 'the resource'} of "
                    f"{other.source}: read once"))
                return
            raise InputError(entry.source, f"two different resources are named {key} "
                             f"({other.source} {other.position}, {entry.position or 'this file'})")
        self.entries.append(entry)
        for key in entry.names():
            self.by_key[key] = entry

    def resolve(self, reference: Any, within: Entry | None = None) -> Entry | dict | None:
        """The entry (or contained resource) a Reference points to, if it is in the input."""
        ref = as_dict(reference).get("reference")
        if not isinstance(ref, str) or not ref:
            return None
        if ref.startswith("#"):
            return within.contained.get(ref) if within else None
        found = self.by_key.get(ref)
        if found is None:
            match = TYPE_ID_TAIL.search(ref)
            if match:
                found = self.by_key.get(f"{match.group(1)}/{match.group(2)}")
        return found

    # -- the patient ------------------------------------------------------------------

    def choose_patient(self) -> None:
        patients = [e for e in self.entries if e.type == "Patient" and e.order not in self.skipped]
        if len(patients) > 1:
            names = ", ".join(p.reference for p in patients)
            sources = sorted({p.source for p in patients})
            where = "bundle holds" if len(sources) == 1 else "the input files hold"
            raise InputError(", ".join(sources), f"{where} {len(patients)} patients: {names}; "
                             "import one patient per bundle")
        if patients:
            self.patient_entry = patients[0]
            self.patient = patients[0].iri
            return
        subjects: dict[str, str] = {}
        for entry in self.entries:
            if entry.type in HANDLERS and entry.order not in self.skipped:
                ref = as_dict(entry.resource.get("subject")).get("reference")
                if isinstance(ref, str) and ref:
                    subjects.setdefault(self._subject_key(ref), entry.source)
        sources = sorted({e.source for e in self.entries}) or [s for s, _ in self.documents]
        if len(subjects) > 1:
            raise InputError(", ".join(sources), f"the resources name {len(subjects)} patients "
                             f"({', '.join(sorted(subjects))}) and no Patient resource is given; "
                             "import one patient per bundle")
        if not subjects:
            raise InputError(", ".join(sources), "no patient: the input holds no Patient "
                             "resource and no resource names its subject")
        (key,) = subjects
        self.patient_key = key
        self.patient = URIRef(key) if ABSOLUTE_URI.match(key) else URIRef(
            "urn:guidelinekg:fhir:" + "/".join(quote(p, safe="-.") for p in key.split("/", 1)))
        self.graph.add((self.patient, RDF.type, GKG.Patient))
        self.file_reports.append(ReportEntry(
            key, "Patient", NOTE, "no Patient resource in the input: the patient is the subject "
            f"the resources name ({key}); no birth date is known", item=str(self.patient)))

    @staticmethod
    def _subject_key(ref: str) -> str:
        match = TYPE_ID_TAIL.search(ref)
        if match and not ref.startswith("urn:"):
            return f"{match.group(1)}/{match.group(2)}"
        return ref

    def is_the_patient(self, reference: Any) -> bool:
        ref = as_dict(reference).get("reference")
        if not isinstance(ref, str) or not ref:
            return False
        if self.patient_entry is not None:
            return self.resolve(reference) is self.patient_entry
        return self._subject_key(ref) == self.patient_key

    # -- running ----------------------------------------------------------------------

    def run(self) -> FhirImport:
        self.collect()
        self.choose_patient()
        assert self.patient is not None
        pending = [e for e in self.entries if e.order not in self.skipped]
        self.survey(pending)
        # Conditions first: stage observations attach to the primary cancer, and metastases
        # and radiotherapy read what their related condition is.
        for entry in sorted(pending, key=lambda e: (PROCESS_ORDER.get(e.type, 9), e.order)):
            self.import_entry(entry)
        self.finish_stages()
        self.report_medications()
        report = list(self.file_reports)
        for entry in self.entries:
            report.extend(self.reports.get(entry.order, []))
        sources = [source for source, _ in self.documents]
        return FhirImport(bind_project_prefixes(self.graph), report, self.patient, sources)

    def survey(self, entries: Sequence[Entry]) -> None:
        """What other resources need to know before each is imported: the kind of each
        Condition (is a metastasis's related primary a breast cancer?) and which orders
        have completed administrations (an active plan with doses given is ongoing)."""
        for entry in entries:
            res = entry.resource
            if entry.type == "Condition" and has_code(res.get("code")):
                rows = self.map_concept(res["code"], (
                    "primary-breast-cancer", "metastasis-site", "condition"))
                kinds = {row.role for row in rows}
                self.condition_kinds[entry.order] = kinds.pop() if len(kinds) == 1 else "other"
            elif entry.type == "MedicationAdministration" and res.get("status") == "completed":
                request = self.resolve(res.get("request"), entry)
                if isinstance(request, Entry) and request.type == "MedicationRequest":
                    self.administered_requests.add(request.order)

    def import_entry(self, entry: Entry) -> None:
        ctx = Context(self, entry)
        if entry.type == "Patient":
            self.import_patient(ctx)
            return
        handler = HANDLERS.get(entry.type)
        if handler is None:
            if entry.type != "Medication":
                ctx.ignore(f"resource type {entry.type} is not imported (no patient fact uses it)")
            return
        modifiers = [as_dict(e).get("url", "?")
                     for e in as_list(entry.resource.get("modifierExtension"))]
        if modifiers:
            ctx.ignore("it carries a modifierExtension the importer does not understand ("
                       + ", ".join(map(str, modifiers)) + "): it may change its meaning")
            return
        subject = entry.resource.get("subject")
        if not self.is_the_patient(subject):
            ref = as_dict(subject).get("reference")
            ctx.ignore(f"its subject {ref} is not the patient of this record ({self.patient})"
                       if ref else
                       "it names no subject, so it is not known to be about the patient")
            return
        handler(self, ctx)
        if ctx.items:
            self.report_unread(ctx)
        ctx.flush()

    def report_unread(self, ctx: Context) -> None:
        unread = []
        for name in CLINICAL_ELEMENTS:
            if name.endswith("[x]"):
                found = choice(ctx.resource, name[:-3])
                if found and found[0] not in ctx.read and name[:-3] not in ctx.read:
                    unread.append(found[0])
            elif name in ctx.resource and name not in ctx.read:
                unread.append(name)
        for extension in as_list(ctx.resource.get("extension")):
            url = as_dict(extension).get("url")
            if isinstance(url, str) and url not in ctx.read_extensions:
                unread.append(f"extension {extension_name(url)}")
        if unread:
            ctx.note("not read (no patient fact uses it): " + ", ".join(unread))

    def new_item(self, ctx: Context, iri: URIRef, classes: Sequence[URIRef]) -> Item:
        item = Item(self.graph, iri, classes)
        item.set("subject", self.patient, report=False)
        item.set("sourceResource", Literal(ctx.entry.reference), report=False)
        return item

    # -- mapping codes ----------------------------------------------------------------

    def map_concept(self, concept: Any, roles: Sequence[str]) -> list[CodeMapping]:
        found = []
        for coding in codings(concept):
            for role in roles:
                found += self.codes.lookup(role, coding.get("system"), coding["code"])
        return found

    def terms(self, rows: Sequence[CodeMapping]) -> list[URIRef]:
        """The terms the codings of one concept map to; several codings must agree.

        Codings that map to a class and its subclass agree (the subclass is kept). A code that
        maps to several terms (a combination product) keeps them all.
        """
        per_code: dict[tuple[str, str], set[URIRef]] = {}
        for row in rows:
            if row.term is not None:
                per_code.setdefault((canonical_system(row.system), row.code), set()).add(row.term)
        sets = {frozenset(terms) for terms in per_code.values()}
        if len(sets) <= 1:
            return sorted(next(iter(sets), frozenset()))
        if all(len(terms) == 1 for terms in sets):
            singles = [next(iter(terms)) for terms in sets]
            for candidate in singles:
                if all(self.ontology.is_a(candidate, other) for other in singles):
                    return [candidate]
        raise Conflict(" and ".join(sorted(
            "+".join(sorted(curie(t) for t in terms)) for terms in sets)))

    def require_code(self, ctx: Context, element: str = "code") -> Any:
        concept = ctx.resource.get(element)
        ctx.read.add(element)
        if not has_code(concept):
            raise ctx.error(f"the {ctx.entry.type} has no {element}: the importer cannot tell "
                            "what it records")
        return concept

    def unknown(self, concept: Any, what: str) -> str:
        if not codings(concept):
            return f"{what} is given as text only ({describe_concept(concept)}): no code to map"
        return f"{what} {describe_concept(concept)} is not in the code map"

    # -- Patient ----------------------------------------------------------------------

    def import_patient(self, ctx: Context) -> None:
        item = Item(self.graph, ctx.entry.iri, [GKG.Patient])
        birth = ctx.resource.get("birthDate")
        if birth is not None:
            ctx.date(item, "birthDate", birth, "birthDate")
        else:
            ctx.note("no birthDate: age is unknown")
        ctx.imported(item)
        self.report_unread(ctx)
        ctx.flush()

    # -- Condition --------------------------------------------------------------------

    def import_condition(self, ctx: Context) -> None:
        res = ctx.resource
        concept = self.require_code(ctx)
        ctx.read |= {"verificationStatus", "clinicalStatus"}
        verification = status_code(res.get("verificationStatus"))
        clinical = status_code(res.get("clinicalStatus"))
        rows = self.map_concept(concept, ("primary-breast-cancer", "metastasis-site", "condition"))
        kinds = {row.role for row in rows}
        if verification == "entered-in-error":
            ctx.ignore("verificationStatus entered-in-error")
            return
        if not rows:
            ctx.ignore(self.unknown(concept, "Condition code"))
            return
        if len(kinds) > 1:
            ctx.ignore(f"its codings disagree ({describe_concept(concept)} map to "
                       f"{', '.join(sorted(kinds))})")
            return
        try:
            terms = self.terms(rows)
        except Conflict as conflict:
            ctx.ignore(f"its codings map to different terms: {conflict}")
            return
        (kind,) = kinds
        if kind == "metastasis-site":
            self.import_metastasis(ctx, terms[0], verification, clinical)
        elif kind == "primary-breast-cancer":
            self.import_primary(ctx, verification, clinical)
        else:
            self.import_other_condition(ctx, terms[0], verification)

    def condition_date(self, ctx: Context, item: Item) -> None:
        onset = choice(ctx.resource, "onset")
        ctx.read.add("recordedDate")
        if onset and onset[0] == "onsetDateTime":
            ctx.date(item, "effectiveDate", onset[1], "onsetDateTime")
        elif onset and onset[0] == "onsetPeriod" and "start" in as_dict(onset[1]):
            ctx.date(item, "effectiveDate", onset[1]["start"], "onsetPeriod.start")
        elif "recordedDate" in ctx.resource:
            ctx.date(item, "effectiveDate", ctx.resource["recordedDate"], "recordedDate")

    def import_primary(self, ctx: Context, verification: str | None, clinical: str | None) -> None:
        if verification == "refuted":
            ctx.ignore("verificationStatus refuted: not a breast cancer")
            return
        if verification in UNCERTAIN_VERIFICATION:
            ctx.ignore(f"verificationStatus {verification}: a diagnosis that is not confirmed "
                       "is not read as breast cancer")
            return
        item = self.new_item(ctx, ctx.entry.iri, [GKG.PrimaryBreastCancer])
        self.condition_date(ctx, item)
        ctx.imported(item)
        if clinical in INACTIVE_CLINICAL:
            ctx.note(f"clinicalStatus {clinical}: kept as the breast cancer diagnosis")
        self.primaries.append((ctx.entry, item.iri))
        claims = self.stage_claims.setdefault(item.iri, [])
        ctx.read.add("stage")
        for index, stage in enumerate(as_list(ctx.resource.get("stage"))):
            stage = as_dict(stage)
            element = f"stage[{index}].summary"
            for assessment in as_list(stage.get("assessment")):
                target = self.resolve(assessment, ctx.entry)
                if isinstance(target, Entry):
                    self.stage_assessments[target.order] = item.iri
            if "summary" not in stage:
                continue
            value = self.stage_value(ctx, stage["summary"], element)
            if value is not None:
                claims.append((value, f"{ctx.entry.reference} {element}"))

    def stage_value(self, ctx: Context, concept: Any, element: str) -> URIRef | None:
        rows = self.map_concept(concept, ("stage-value",))
        try:
            terms = self.terms(rows)
        except Conflict as conflict:
            ctx.ignore(f"stage codings disagree: {conflict}", element)
            return None
        if not terms:
            ctx.ignore(f"stage {describe_concept(concept)} is neither clearly stage I to III "
                       "nor stage IV (code map): no stage group written", element)
            return None
        return terms[0]

    def import_metastasis(self, ctx: Context, site: URIRef, verification: str | None,
                          clinical: str | None) -> None:
        for extension in as_list(ctx.resource.get("extension")):
            url = as_dict(extension).get("url", "")
            if isinstance(url, str) and url.endswith(RELATED_PRIMARY_SUFFIX):
                ctx.read_extensions.add(url)
                related = self.resolve(as_dict(extension).get("valueReference"), ctx.entry)
                if isinstance(related, Entry) and related.type == "Condition":
                    related_kind = self.condition_kinds.get(related.order, "")
                    if related_kind == "other":
                        ctx.ignore(f"a metastasis of {related.reference}, which is not a breast "
                                   "cancer in the code map")
                        return
        if verification in UNCERTAIN_VERIFICATION:
            ctx.ignore(f"verificationStatus {verification}: not read as present (only confirmed "
                       "metastases are), nor as absent")
            return
        if verification != "refuted" and clinical in INACTIVE_CLINICAL:
            ctx.ignore(f"clinicalStatus {clinical}: the record does not say the site is "
                       "involved now, so it is read neither as present nor as absent")
            return
        item = self.new_item(ctx, ctx.entry.iri, [GKG.MetastasisCondition])
        item.set("site", site)
        item.set("present", Literal(verification != "refuted"))
        self.condition_date(ctx, item)
        if verification != "refuted":
            self.metastasis_sites[ctx.entry.order] = site
        ctx.imported(item)
        if verification is None:
            ctx.note("no verificationStatus: read as asserted (present)")

    def import_other_condition(self, ctx: Context, cls: URIRef, verification: str | None) -> None:
        if verification == "refuted":
            ctx.ignore(f"verificationStatus refuted: no {curie(cls)}")
            return
        if verification in UNCERTAIN_VERIFICATION:
            ctx.ignore(f"verificationStatus {verification}: a diagnosis that is not confirmed "
                       "is not recorded")
            return
        item = self.new_item(ctx, ctx.entry.iri, [cls])
        self.condition_date(ctx, item)
        ctx.imported(item)

    # -- Observation ------------------------------------------------------------------

    def import_observation(self, ctx: Context) -> None:
        res = ctx.resource
        concept = self.require_code(ctx)
        ctx.read.add("status")
        status = code_value(res.get("status"))
        if status in ("entered-in-error", "cancelled"):
            ctx.ignore(f"status {status}")
            return
        if status == "preliminary":
            ctx.ignore("status preliminary: only final, amended or corrected results are read")
            return
        if status not in FINAL_OBSERVATION_STATUSES:
            ctx.ignore(f"status {status}: only final, amended or corrected results are read"
                       if status else status_reason(status, "final, amended or corrected"))
            return
        rows = self.map_concept(concept, (
            "observation", "genetic-variant", "stage-group-observation", "not-used"))
        roles = {row.role for row in rows}
        if not rows:
            ctx.ignore(self.unknown(concept, "Observation code"))
            return
        if len(roles) > 1:
            ctx.ignore(f"its codings disagree ({describe_concept(concept)})")
            return
        (role,) = roles
        if role == "not-used":
            ctx.ignore(f"{describe_concept(concept)} is known, but no patient fact uses it")
            return
        value = choice(res, "value")
        if value is None and "dataAbsentReason" in res:
            ctx.read.add("dataAbsentReason")
            ctx.ignore(f"no value (dataAbsentReason {describe_concept(res['dataAbsentReason'])})")
            return
        if role == "genetic-variant":
            self.import_variant(ctx)
        elif role == "stage-group-observation":
            self.import_stage_observation(ctx)
        else:
            try:
                (cls,) = self.terms(rows)
            except (Conflict, ValueError):
                ctx.ignore(f"its codings map to different classes ({describe_concept(concept)})")
                return
            self.import_observation_value(ctx, cls, value)

    def observation_date(self, ctx: Context, item: Item) -> None:
        effective = choice(ctx.resource, "effective")
        if effective is None:
            ctx.note("no effective date")
            return
        key, value = effective
        if key in ("effectiveDateTime", "effectiveInstant"):
            ctx.date(item, "effectiveDate", value, key)
        elif key == "effectivePeriod" and "start" in as_dict(value):
            ctx.date(item, "effectiveDate", value["start"], "effectivePeriod.start")
        else:
            ctx.ignore(f"{key} is not read as a date", key)

    def import_observation_value(self, ctx: Context, cls: URIRef,
                                 value: tuple[str, Any] | None) -> None:
        kind, value_role = OBSERVATION_VALUES.get(curie(cls).split(":", 1)[1], ("", ""))
        name = curie(cls)
        if value is not None:
            ctx.read.add(value[0])
        key, data = value if value is not None else ("", None)
        item_value: list[tuple[str, Node, str | None]] | None = None
        if kind == "code":
            item_value = self.coded_value(ctx, name, value_role, key, data)
        elif kind == "boolean":
            if key != "valueBoolean" or not isinstance(data, bool):
                ctx.ignore(f"{name} needs valueBoolean; found {key or 'no value'}")
            else:
                item_value = [("valueBoolean", Literal(data), None)]
        elif kind == "integer":
            if key != "valueInteger" or not is_integer(data) or data < 0:
                ctx.ignore(f"{name} needs a valueInteger of 0 or more; found {key or 'no value'}")
            else:
                item_value = [("valueInteger", integer_literal(data), None)]
        elif kind == "weight":
            item_value = self.weight_value(ctx, key, data)
        elif kind == "pain":
            item_value = self.pain_value(ctx, key, data)
        else:
            ctx.ignore(f"{name} is not an observation class the importer can fill")
        if item_value is None:
            return
        item = self.new_item(ctx, ctx.entry.iri, [cls])
        for prop, literal, shown in item_value:
            item.set(prop, literal, shown)
        self.observation_date(ctx, item)
        ctx.imported(item)

    def coded_value(self, ctx: Context, name: str, role: str, key: str,
                    data: Any) -> list[tuple[str, Node, str | None]] | None:
        source = ""
        if key == "":
            interpretation = ctx.resource.get("interpretation")
            if role == "receptor-value" and interpretation:
                # Only when value[x] is absent: the interpretation then carries the result.
                ctx.read.add("interpretation")
                concepts = as_list(interpretation)
                source = " (from Observation.interpretation)"
            else:
                ctx.ignore(f"{name} needs valueCodeableConcept; the observation has no value")
                return None
        elif key != "valueCodeableConcept":
            ctx.ignore(f"{name} needs valueCodeableConcept; found {key}", key)
            return None
        else:
            concepts = [data]
        rows = [row for concept in concepts for row in self.map_concept(concept, (role,))]
        try:
            terms = self.terms(rows)
        except Conflict as conflict:
            ctx.ignore(f"value codings disagree: {conflict}", key or "interpretation")
            return None
        if not terms:
            shown = "; ".join(describe_concept(c) for c in concepts)
            ctx.ignore(f"value {shown} is not a {role} of the code map", key or "interpretation")
            return None
        return [("valueCode", terms[0], curie(terms[0]) + source)]

    def weight_value(self, ctx: Context, key: str,
                     data: Any) -> list[tuple[str, Node, str | None]] | None:
        if key != "valueQuantity":
            ctx.ignore(f"body weight needs valueQuantity; found {key or 'no value'}")
            return None
        quantity = as_dict(data)
        unit = self.quantity_unit(ctx, quantity, "valueQuantity", ("body-mass",), "body weight")
        assert unit is not None  # strict: an unconvertible weight unit raised
        amount = quantity.get("value")
        if not is_number(amount) or amount <= 0:
            ctx.ignore(f"body weight {amount!r} is not a positive number", "valueQuantity")
            return None
        # The original value and UCUM unit: converting to kg is the fact layer's job.
        return [("valueDecimal", decimal_literal(amount), None), ("unitCode", Literal(unit), None)]

    def pain_value(self, ctx: Context, key: str,
                   data: Any) -> list[tuple[str, Node, str | None]] | None:
        score: Any = None
        if key == "valueInteger":
            score = data
        elif key == "valueQuantity":
            score = as_dict(data).get("value")
        if not is_integer(score) or not 0 <= score <= 10:
            ctx.ignore(f"pain severity needs a whole-number score from 0 to 10; found "
                       f"{key or 'no value'} {score if score is not None else ''}".rstrip())
            return None
        score = int(score)
        band = ("none" if score == 0 else "mild" if score <= 3
                else "moderate" if score <= 6 else "severe")
        return [("valueCode", CODE[f"pain-{band}"], f"code:pain-{band} (score {score})")]

    def quantity_unit(self, ctx: Context, quantity: dict[str, Any], element: str,
                      dimensions: Sequence[str], what: str, strict: bool = True) -> str | None:
        """The UCUM code of a Quantity the importer keeps. No UCUM unit is an InputError (mg
        and mg/kg are never guessed). A UCUM unit outside the project's units table is an
        InputError when ``strict`` (body weight), else reported and None (a dose in mg/m2
        keeps its medicine, without an amount)."""
        allowed = self.ontology.ucum_codes(*dimensions)
        system = quantity.get("system")
        code = quantity.get("code")
        unit_text = quantity.get("unit")
        if system is not None and system != UCUM:
            raise ctx.error(f"{what} unit is not UCUM (system {system}); give a UCUM code: "
                            f"{', '.join(allowed)}", element)
        if isinstance(code, str) and code.strip():
            ucum = code.strip()
        elif isinstance(unit_text, str) and unit_text.strip() in allowed:
            ucum = unit_text.strip()
            ctx.note(f"unit read from Quantity.unit {ucum!r} (no UCUM code given)", element)
        else:
            shown = f" (unit text {unit_text!r})" if unit_text else ""
            raise ctx.error(f"{what} {quantity.get('value')} has no UCUM unit{shown}; give "
                            f"Quantity.system {UCUM} and a code: {', '.join(allowed)}", element)
        if ucum not in allowed:
            message = (f"{what} unit {ucum!r} cannot be converted to a unit the project "
                       f"checks ({', '.join(allowed)})")
            if strict:
                raise ctx.error(message, element)
            ctx.ignore(f"{message}: the amount {quantity.get('value')} {ucum} is not recorded",
                       element)
            return None
        return ucum

    def import_variant(self, ctx: Context) -> None:
        res = ctx.resource
        ctx.read |= {"component", "valueCodeableConcept", "interpretation"}
        genes: list[CodeMapping] = []
        studied: list[str] = []
        origins: list[str] = []
        significance: list[str] = []
        for component in as_list(res.get("component")):
            component = as_dict(component)
            codes = {c["code"] for c in codings(component.get("code"))
                     if canonical_system(c.get("system")) == LOINC}
            value = component.get("valueCodeableConcept")
            if GENE_STUDIED in codes:
                studied += [describe_coding(c) for c in codings(value)]
                genes += self.map_concept(value, ("variant-gene",))
            if GENOMIC_SOURCE_CLASS in codes:
                origins += [c["code"] for c in codings(value)]
            if CLINICAL_SIGNIFICANCE in codes:
                significance += [c["code"] for c in codings(value)]
        gene_classes = sorted({row.term for row in genes if row.term is not None})
        if not gene_classes:
            ctx.ignore(f"gene studied {', '.join(studied) or 'not given'}: not BRCA1 or BRCA2")
            return
        if len(gene_classes) > 1:
            ctx.ignore("several genes studied (BRCA1 and BRCA2): one result cannot be assigned")
            return
        if GERMLINE not in origins:
            if SOMATIC in origins:
                ctx.ignore("somatic variant: not a germline result")
            else:
                ctx.ignore("genomic source class " + (", ".join(origins) or "not given")
                           + ": not known to be germline, so not a germline result")
            return
        concept = res.get("valueCodeableConcept")
        rows = self.map_concept(concept, ("variant-value",))
        try:
            values = self.terms(rows)
        except Conflict as conflict:
            ctx.ignore(f"value codings disagree: {conflict}", "valueCodeableConcept")
            return
        if not values:
            ctx.ignore(f"value {describe_concept(concept)} is neither present (LA9633-4) "
                       "nor absent (LA9634-2)", "valueCodeableConcept")
            return
        value = values[0]
        not_pathogenic = [NOT_PATHOGENIC[c] for c in significance if c in NOT_PATHOGENIC]
        if value == CODE["variant-present"] and not_pathogenic and not any(
                c in PATHOGENIC for c in significance):
            ctx.ignore(f"a variant of {', '.join(not_pathogenic)} is present: not a pathogenic "
                       "variant, and not an absent one")
            return
        item = self.new_item(ctx, ctx.entry.iri, gene_classes)
        item.set("valueCode", value)
        self.observation_date(ctx, item)
        ctx.imported(item)

    def import_stage_observation(self, ctx: Context) -> None:
        res = ctx.resource
        ctx.read |= {"valueCodeableConcept", "focus"}
        if "valueCodeableConcept" not in res:
            ctx.ignore("a stage group observation without valueCodeableConcept")
            return
        value = self.stage_value(ctx, res["valueCodeableConcept"], "valueCodeableConcept")
        if value is None:
            return
        target: URIRef | None = None
        for focus in as_list(res.get("focus")):
            found = self.resolve(focus, ctx.entry)
            if isinstance(found, Entry):
                target = next((iri for e, iri in self.primaries if e is found), target)
        target = target or self.stage_assessments.get(ctx.entry.order)
        if target is None:
            if not self.primaries:
                ctx.ignore(f"stage {curie(value)}: no primary breast cancer in the record to "
                           "attach it to")
                return
            if len(self.primaries) > 1:
                ctx.ignore(f"stage {curie(value)}: several primary breast cancers, and the "
                           "observation does not say which one (focus)")
                return
            target = self.primaries[0][1]
        self.stage_claims.setdefault(target, []).append((value, ctx.entry.reference))
        ctx.imported_into(f"stage group {curie(value)} of the primary breast cancer {target}",
                          target)

    def finish_stages(self) -> None:
        for entry, primary in self.primaries:
            claims = self.stage_claims.get(primary, [])
            values = sorted({value for value, _ in claims})
            if not values:
                continue
            sources = "; ".join(f"{curie(v)} from {s}" for v, s in claims)
            if len(values) == 1:
                self.graph.add((primary, GKG.stageGroup, values[0]))
                self.add_report(entry, ReportEntry(
                    entry.reference, entry.type, IMPORTED, f"stageGroup {curie(values[0])} "
                    f"({sources})", "stage", str(primary)))
            else:
                self.add_report(entry, ReportEntry(
                    entry.reference, entry.type, IGNORED, f"stage groups disagree ({sources}): "
                    "no stage group written", "stage", str(primary)))

    # -- medicines --------------------------------------------------------------------

    def medication_concept(self, ctx: Context) -> Any | None:
        res = ctx.resource
        found = choice(res, "medication")
        if found is None:
            raise ctx.error(f"the {ctx.entry.type} has no medication[x]: the importer cannot "
                            "tell which medicine it records")
        key, value = found
        ctx.read.add(key)
        if key == "medicationCodeableConcept":
            if not has_code(value):
                raise ctx.error(f"the {ctx.entry.type} has no medication code", key)
            return value
        target = self.resolve(value, ctx.entry)
        medication = target.resource if isinstance(target, Entry) else target
        if not isinstance(medication, dict) or medication.get("resourceType") != "Medication":
            ctx.ignore(f"medicationReference {as_dict(value).get('reference')} is not a "
                       "Medication in the input", key)
            return None
        if isinstance(target, Entry):
            self.referenced_medications.setdefault(target.order, []).append(ctx.entry.reference)
        if not has_code(medication.get("code")):
            raise ctx.error("the Medication it references has no code", key)
        return medication["code"]

    def medication_status(self, ctx: Context) -> tuple[URIRef, str] | None:
        res = ctx.resource
        status = code_value(res.get("status"))
        ctx.read |= {"status", "intent", "doNotPerform"}
        kind = ctx.entry.type
        if res.get("doNotPerform") is True:
            ctx.ignore("doNotPerform: an order not to give it")
            return None
        note = ""
        if kind == "MedicationRequest":
            intent = code_value(res.get("intent"))
            if intent not in ORDER_INTENTS | PLAN_INTENTS:
                ctx.ignore(f"intent {intent or 'missing'}: only proposals, plans and orders "
                           "are read")
                return None
            if status == "active":
                if intent in PLAN_INTENTS and ctx.entry.order not in self.administered_requests:
                    return CODE.planned, (f"status active with intent {intent} and no dose given: "
                                          "planned")
                return CODE.ongoing, ""
            table = {"draft": "planned", "on-hold": "ongoing", "completed": "completed",
                     "stopped": "stopped", "cancelled": "stopped"}
        elif kind == "MedicationStatement":
            table = {"active": "ongoing", "completed": "completed", "intended": "planned",
                     "stopped": "stopped", "on-hold": "ongoing"}
        else:
            table = {"completed": "completed", "in-progress": "ongoing", "stopped": "stopped",
                     "on-hold": "ongoing"}
        if status not in table:
            ctx.ignore(status_reason(status, "a medicine given, ongoing or planned"))
            return None
        if status == "on-hold":
            note = "status on-hold read as ongoing (treatment in course, paused)"
        return CODE[table[status]], note

    def import_medication(self, ctx: Context) -> None:
        concept = self.medication_concept(ctx)
        if concept is None:
            return
        rows = self.map_concept(concept, ("medication",))
        if not rows:
            ctx.ignore(self.unknown(concept, "medication"))
            return
        try:
            classes = self.terms(rows)
        except Conflict as conflict:
            ctx.ignore(f"medication codings map to different classes: {conflict}")
            return
        status = self.medication_status(ctx)
        if status is None:
            return
        status_value, status_note = status
        start, end = self.medication_dates(ctx)
        line = self.line_of_therapy(ctx)
        dosages = self.dosages(ctx)
        base = ctx.entry.iri
        for cls in classes:
            iri = base if len(classes) == 1 else URIRef(f"{base}#{curie(cls).split(':', 1)[1]}")
            item = self.new_item(ctx, iri, [cls])
            item.set("status", status_value)
            for prop, (value, element) in (("startDate", start), ("endDate", end)):
                if value is not None:
                    ctx.date(item, prop, value, element)
            if line is not None:
                if self.ontology.is_a(cls, GKG.SystemicCancerTherapy):
                    item.set("lineOfTherapy", integer_literal(line))
                else:
                    ctx.ignore(f"line of therapy {line} on {curie(cls)}, which is not a "
                               "systemic cancer therapy", "extension line-of-therapy")
            if len(classes) == 1:
                for number, (dosage, element) in enumerate(dosages, start=1):
                    self.dose(ctx, item, dosage, element, number, len(dosages))
            ctx.imported(item)
        notes = [row.note for row in rows if row.note]
        if len(classes) > 1 and dosages:
            ctx.ignore("dose of a combination product: it cannot be split between its "
                       "ingredients", dosages[0][1].split("[", 1)[0])
        if status_note:
            ctx.note(status_note)
        for text in sorted(set(notes)):
            ctx.note(f"code map: {text}")

    def medication_dates(self, ctx: Context) -> tuple[tuple[Any, str], tuple[Any, str]]:
        res = ctx.resource
        none: tuple[Any, str] = (None, "")
        if ctx.entry.type == "MedicationRequest":
            ctx.read.add("authoredOn")
            for index, dosage in enumerate(as_list(res.get("dosageInstruction"))):
                timing = as_dict(as_dict(dosage).get("timing"))
                bounds = as_dict(as_dict(timing.get("repeat")).get("boundsPeriod"))
                element = f"dosageInstruction[{index}].timing.repeat.boundsPeriod"
                if "start" in bounds:
                    end = (bounds["end"], f"{element}.end") if "end" in bounds else none
                    return (bounds["start"], f"{element}.start"), end
                events = sorted(e for e in as_list(timing.get("event")) if isinstance(e, str))
                if events:
                    return (events[0], f"dosageInstruction[{index}].timing.event"), none
            ctx.note("no start date in the order (authoredOn is when it was written, not when "
                     "the treatment starts)")
            return none, none
        effective = choice(res, "effective")
        if effective is None:
            ctx.note("no effective date")
            return none, none
        key, value = effective
        if key == "effectiveDateTime":
            return (value, key), none
        if key == "effectivePeriod":
            period = as_dict(value)
            start = (period["start"], f"{key}.start") if "start" in period else none
            end = (period["end"], f"{key}.end") if "end" in period else none
            return start, end
        ctx.ignore(f"{key} is not read as a date", key)
        return none, none

    def line_of_therapy(self, ctx: Context) -> int | None:
        for extension in as_list(ctx.resource.get("extension")):
            extension = as_dict(extension)
            if extension.get("url") != LINE_OF_THERAPY_URL:
                continue
            ctx.read_extensions.add(LINE_OF_THERAPY_URL)
            value = extension.get("valuePositiveInt")
            if not is_integer(value) or value < 1:
                ctx.ignore("the line-of-therapy extension needs valuePositiveInt (1, 2, ...)",
                           "extension line-of-therapy")
                return None
            return int(value)
        return None

    def dosages(self, ctx: Context) -> list[tuple[dict[str, Any], str]]:
        res = ctx.resource
        if ctx.entry.type == "MedicationAdministration":
            ctx.read.add("dosage")
            dosage = as_dict(res.get("dosage"))
            return [(dosage, "dosage")] if dosage else []
        key = "dosageInstruction" if ctx.entry.type == "MedicationRequest" else "dosage"
        ctx.read.add(key)
        return [(as_dict(d), f"{key}[{i}]") for i, d in enumerate(as_list(res.get(key)))
                if isinstance(d, dict)]

    def dose(self, ctx: Context, item: Item, dosage: dict[str, Any], element: str,
             number: int, total: int) -> None:
        """One gkg:DoseSpecification from a FHIR Dosage (or MedicationAdministration.dosage)."""
        sep = "-" if "#" in str(item.iri) else "#"
        dose = Item(self.graph, URIRef(f"{item.iri}{sep}dose-{number}"), [GKG.DoseSpecification])
        unread: list[str] = []
        quantity: dict[str, Any] | None = None
        quantity_element = ""
        if ctx.entry.type == "MedicationAdministration":
            if "dose" in dosage:
                quantity, quantity_element = as_dict(dosage["dose"]), f"{element}.dose"
            unread += [k for k in ("rateQuantity", "rateRatio", "site", "method") if k in dosage]
        else:
            for index, dose_rate in enumerate(as_list(dosage.get("doseAndRate"))):
                dose_rate = as_dict(dose_rate)
                path = f"{element}.doseAndRate[{index}]"
                if "doseQuantity" in dose_rate and quantity is None:
                    quantity = as_dict(dose_rate["doseQuantity"])
                    quantity_element = f"{path}.doseQuantity"
                unread += [f"doseAndRate[{index}].{k}" for k in dose_rate
                           if k in ("doseRange", "rateQuantity", "rateRatio", "rateRange")
                           or (k == "doseQuantity" and quantity_element != f"{path}.doseQuantity")]
            unread += [k for k in dosage if isinstance(k, str) and (
                k.startswith("asNeeded")
                or k in ("maxDosePerPeriod", "maxDosePerAdministration", "site", "method"))]
        if quantity is not None:
            self.dose_amount(ctx, dose, quantity, quantity_element)
        route = dosage.get("route")
        if route is not None:
            routes = self.map_concept(route, ("route",))
            if routes and routes[0].term is not None:
                dose.set("route", routes[0].term)
            else:
                ctx.ignore(f"route {describe_concept(route)} is not in the code map",
                           f"{element}.route")
        unread += self.dose_timing(ctx, dose, as_dict(dosage.get("timing")), f"{element}.timing")
        if isinstance(dosage.get("text"), str) and dosage["text"].strip():
            dose.set("doseText", Literal(dosage["text"].strip()), report=False)
        if len(dose.parts) == 0 and not isinstance(dosage.get("text"), str):
            self.graph.remove((dose.iri, None, None))
            if not dates_only(dosage):
                ctx.ignore("the dosage says nothing the importer reads (no dose, route or "
                           "timing)", element)
            return
        if ctx.entry.type != "MedicationAdministration":
            self.dose_phase(dose, dosage, ctx)
        item.set("hasDose", dose.iri, f"({dose.describe().split(', ', 1)[-1]})"
                 if dose.parts else "(dose text only)")
        if unread:
            ctx.ignore("not read: " + ", ".join(unread), element)

    def dose_phase(self, dose: Item, dosage: dict[str, Any], ctx: Context) -> None:
        repeat = as_dict(as_dict(dosage.get("timing")).get("repeat"))
        if repeat.get("count") == 1:
            dose.set("dosePhase", CODE["loading-dose"])
            return
        siblings = as_list(ctx.resource.get("dosageInstruction", ctx.resource.get("dosage")))
        if any(as_dict(as_dict(as_dict(s).get("timing")).get("repeat")).get("count") == 1
               for s in siblings if s is not dosage):
            dose.set("dosePhase", CODE["maintenance-dose"])

    def dose_amount(self, ctx: Context, dose: Item, quantity: dict[str, Any], element: str) -> None:
        value = quantity.get("value")
        if value is None:
            ctx.ignore("the dose quantity has no value: no amount written", element)
            return
        if not is_number(value) or value <= 0:
            raise ctx.error(f"dose {value!r} is not a positive number", element)
        unit = self.quantity_unit(ctx, quantity, element, ("mass", "mass-per-body-mass"), "dose",
                                  strict=False)
        if unit is None:
            return
        dose.set("doseAmount", decimal_literal(value))
        dose.set("doseUnit", Literal(unit))
        if unit == "mg/kg":
            dose.set("perBodyWeight", Literal(True), report=False)

    def dose_timing(self, ctx: Context, dose: Item, timing: dict[str, Any],
                    element: str) -> list[str]:
        repeat = as_dict(timing.get("repeat"))
        unread = [f"timing.{k}" for k in timing if k not in ("repeat", "event")]
        for key, prop in (("frequency", "frequency"), ("count", "count")):
            if key in repeat:
                if not is_integer(repeat[key]) or repeat[key] < 1:
                    raise ctx.error(f"timing.repeat.{key} {repeat[key]!r} is not a whole number "
                                    "of 1 or more", element)
                dose.set(prop, integer_literal(repeat[key]))
        for key, prop in (("period", "period"), ("periodMax", "periodMax")):
            if key in repeat:
                if not is_number(repeat[key]) or repeat[key] <= 0:
                    raise ctx.error(f"timing.repeat.{key} {repeat[key]!r} is not a positive "
                                    "number", element)
                dose.set(prop, decimal_literal(repeat[key]))
        if "period" in repeat or "periodMax" in repeat:
            unit = repeat.get("periodUnit")
            if unit not in self.ontology.ucum_codes("time"):
                raise ctx.error(f"timing.repeat.periodUnit {unit!r} cannot be converted "
                                f"({', '.join(self.ontology.ucum_codes('time'))})", element)
            dose.set("periodUnit", Literal(unit))
        if "duration" in repeat:
            unit = repeat.get("durationUnit")
            if not is_number(repeat["duration"]) or unit not in self.ontology.ucum_codes("time"):
                raise ctx.error("timing.repeat.duration needs a positive number and a "
                                f"durationUnit ({', '.join(self.ontology.ucum_codes('time'))})",
                                element)
            dose.set("infusionDuration", decimal_literal(repeat["duration"]))
            dose.set("infusionDurationUnit", Literal(unit))
        known = {"frequency", "count", "period", "periodMax", "periodUnit", "duration",
                 "durationUnit", "boundsPeriod"}
        unread += [f"timing.repeat.{k}" for k in repeat if k not in known]
        return unread

    def report_medications(self) -> None:
        for entry in self.entries:
            if entry.type != "Medication" or entry.order in self.skipped:
                continue
            users = self.referenced_medications.get(entry.order)
            line = (ReportEntry(entry.reference, entry.type, NOTE,
                                "read through " + ", ".join(users)) if users else
                    ReportEntry(entry.reference, entry.type, IGNORED,
                                "no medication resource of the patient references it"))
            self.add_report(entry, line)

    # -- Procedure and ServiceRequest -------------------------------------------------

    def procedure_status(self, ctx: Context) -> tuple[URIRef, str] | None:
        res = ctx.resource
        status = code_value(res.get("status"))
        ctx.read |= {"status", "intent", "doNotPerform"}
        if ctx.entry.type == "ServiceRequest":
            if res.get("doNotPerform") is True:
                ctx.ignore("doNotPerform: a request not to do it")
                return None
            intent = code_value(res.get("intent"))
            if intent == "option":
                ctx.ignore("intent option: an option is not a plan")
                return None
            table = {"draft": "planned", "active": "planned", "on-hold": "planned",
                     "completed": "completed", "revoked": "stopped"}
        else:
            table = {"completed": "completed", "in-progress": "ongoing", "preparation": "ongoing",
                     "on-hold": "ongoing", "stopped": "stopped"}
        if status not in table:
            ctx.ignore(status_reason(status, "a procedure done, ongoing or planned"))
            return None
        note = f"status {status} read as {table[status]}" if status == "on-hold" else ""
        return CODE[table[status]], note

    def import_procedure(self, ctx: Context) -> None:
        res = ctx.resource
        concept = self.require_code(ctx)
        rows = self.map_concept(concept, ("procedure",))
        if not rows:
            ctx.ignore(self.unknown(concept, f"{ctx.entry.type} code"))
            return
        try:
            (cls,) = self.terms(rows)
        except (Conflict, ValueError):
            ctx.ignore(f"its codings map to different classes ({describe_concept(concept)})")
            return
        status = self.procedure_status(ctx)
        if status is None:
            return
        bone_reason = self.bone_context(ctx)
        if cls == GKG.Radiotherapy and bone_reason:
            cls = GKG.BoneRadiotherapy
            ctx.read.add(bone_reason.split(" ", 1)[0].replace("body", "bodySite"))
        item = self.new_item(ctx, ctx.entry.iri, [cls])
        item.set("status", status[0])
        self.procedure_dates(ctx, item)
        ctx.read.add("bodySite")
        for site in as_list(res.get("bodySite")):
            found = codings(site)
            text = (", ".join(f"{describe_coding(c)}" for c in found) if found
                    else as_dict(site).get("text"))
            if text:
                item.set("bodySite", Literal(text))
        for reason in as_list(res.get("reasonCode")):
            for row in self.map_concept(reason, ("purpose",)):
                if row.term is not None:
                    item.set("purpose", row.term)
                    ctx.read.add("reasonCode")
        if self.ontology.is_a(cls, GKG.Radiotherapy):
            self.radiotherapy_doses(ctx, item)
        ctx.imported(item)
        if cls == GKG.BoneRadiotherapy and bone_reason:
            ctx.note(f"radiotherapy to bone: {bone_reason}")
        if status[1]:
            ctx.note(status[1])

    def bone_context(self, ctx: Context) -> str:
        """Why a radiotherapy is to bone (its body site or its reason), or ""."""
        res = ctx.resource
        bone = CODE["site-bone"]
        for site in as_list(res.get("bodySite")):
            if any(r.term == bone for r in self.map_concept(site, ("bone-body-site",))):
                return f"body site {describe_concept(site)}"
        for reason in as_list(res.get("reasonCode")):
            if any(r.term == bone for r in self.map_concept(reason, ("metastasis-site",))):
                return f"reasonCode {describe_concept(reason)}"
        for reason in as_list(res.get("reasonReference")):
            found = self.resolve(reason, ctx.entry)
            if isinstance(found, Entry) and self.metastasis_sites.get(found.order) == bone:
                return f"reasonReference {found.reference} (bone metastasis)"
        return ""

    def procedure_dates(self, ctx: Context, item: Item) -> None:
        name = "performed" if ctx.entry.type == "Procedure" else "occurrence"
        found = choice(ctx.resource, name)
        if found is None:
            ctx.note(f"no {name} date" + (": the planned date is unknown"
                                           if name == "occurrence" else ""))
            return
        key, value = found
        if key.endswith("DateTime"):
            ctx.date(item, "startDate", value, key)
        elif key.endswith("Period"):
            period = as_dict(value)
            if "start" in period:
                ctx.date(item, "startDate", period["start"], f"{key}.start")
            if "end" in period:
                ctx.date(item, "endDate", period["end"], f"{key}.end")
        elif key == "occurrenceTiming":
            events = sorted(e for e in as_list(as_dict(value).get("event")) if isinstance(e, str))
            if events:
                ctx.date(item, "startDate", events[0], f"{key}.event")
            else:
                ctx.ignore("occurrenceTiming without an event date is not read", key)
        else:
            ctx.ignore(f"{key} is not read as a date", key)

    def radiotherapy_doses(self, ctx: Context, item: Item) -> None:
        number = 0
        for extension in as_list(ctx.resource.get("extension")):
            extension = as_dict(extension)
            url = extension.get("url")
            if not isinstance(url, str) or not url.endswith(DOSE_TO_VOLUME_SUFFIX):
                continue
            ctx.read_extensions.add(url)
            number += 1
            parts = {e["url"]: e for e in as_list(extension.get("extension"))
                     if isinstance(e, dict) and isinstance(e.get("url"), str)}
            element = f"extension {extension_name(url)}[{number - 1}]"
            sep = "-" if "#" in str(item.iri) else "#"
            dose = Item(self.graph, URIRef(f"{item.iri}{sep}dose-{number}"),
                        [GKG.DoseSpecification])
            total = parts.get("totalDoseDelivered", {}).get("valueQuantity")
            if isinstance(total, dict) and total.get("value") is not None:
                value = total["value"]
                if not is_number(value) or value <= 0:
                    raise ctx.error(f"radiotherapy dose {value!r} is not a positive number",
                                    element)
                unit = self.quantity_unit(ctx, total, element, ("absorbed-dose",),
                                          "radiotherapy dose", strict=False)
                if unit is not None:
                    dose.set("doseAmount", decimal_literal(value))
                    dose.set("doseUnit", Literal(unit))
            fractions = parts.get("fractionsDelivered", {}).get("valueUnsignedInt")
            if is_integer(fractions) and fractions > 0:
                dose.set("fractions", integer_literal(fractions))
            if not dose.parts:
                self.graph.remove((dose.iri, None, None))
                ctx.ignore("no total dose or fractions in the dose delivered to a volume", element)
                continue
            item.set("hasDose", dose.iri, f"({dose.describe().split(', ', 1)[-1]})")


HANDLERS = {
    "Condition": Importer.import_condition,
    "Observation": Importer.import_observation,
    "MedicationRequest": Importer.import_medication,
    "MedicationStatement": Importer.import_medication,
    "MedicationAdministration": Importer.import_medication,
    "Procedure": Importer.import_procedure,
    "ServiceRequest": Importer.import_procedure,
}
PROCESS_ORDER = {"Patient": 0, "Condition": 1, "MedicationAdministration": 2}


# ---------------------------------------------------------------------------------------
# API and command line
# ---------------------------------------------------------------------------------------


def import_fhir_json(data: object, source: str = "<FHIR JSON>") -> FhirImport:
    """Import one parsed FHIR JSON document (a Bundle or a single resource)."""
    return Importer([(source, data)]).run()


def import_fhir_files(paths: Sequence[Path | str]) -> FhirImport:
    """Import files that together hold one patient's record (references resolve across them)."""
    if not paths:
        raise InputError("import-fhir", "no FHIR file given")
    return Importer([(str(path), read_json_file(path)) for path in paths]).run()


def import_fhir_file(path: Path | str) -> FhirImport:
    """Import one FHIR JSON file (a Bundle or a single resource)."""
    return import_fhir_files([path])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundles", nargs="+", type=Path, metavar="BUNDLE.json",
                        help="FHIR R4 JSON files (Bundles or single resources) of one patient")
    parser.add_argument("-o", "--output", type=Path, metavar="patient.ttl",
                        help="write the patient graph (Turtle) here; default: standard output")


def run(args: argparse.Namespace) -> int:
    result = import_fhir_files(args.bundles)
    turtle = result.turtle()
    if args.output is None:
        sys.stdout.write(turtle)
        sys.stderr.write(result.report_text())
        return 0
    try:
        args.output.write_text(turtle, encoding="utf-8")
    except OSError as error:
        raise InputError(args.output,
                         f"cannot write the patient graph ({error.strerror})") from None
    sys.stdout.write(f"wrote {args.output}\n")
    sys.stdout.write(result.report_text())
    return 0
