"""Import a patient record from FHIR R4 JSON (mCODE STU1 to STU4) into the patient graph.

``guidelinekg import-fhir BUNDLE.json... [-o patient.ttl]`` reads Bundles or single resources
with plain :mod:`json` (fhir.resources is the exporter's library) and writes the project's
patient graph: one ``gkg:Patient`` and one record item per resource it understands, each with
``gkg:sourceResource`` naming the FHIR resource it came from.

Resources are recognised by their codes, never by ``meta.profile`` (the STU1 and STU4 profile
URLs differ). Every code that carries meaning comes from ``ontology/fhir/code-map.tsv``; the
few structural codes (the components of a genetic variant, the line-of-therapy extension) are
named constants below. Nothing is dropped silently: the import report says what each resource
became, or why it (or one of its elements) was ignored, and a value the importer reads is
written as given even when it is impossible (a negative weight, a dose without a unit, a
partial date), so that the patient shapes refuse the record with their own message. Input
that cannot be read at all -- not FHIR, a resource without a code, patients that claim to be
one but differ -- raises :class:`~guidelinekg.loading.InputError` naming the file and the
resource. Who each resource is about, and how resources are named across files, is
:mod:`guidelinekg.fhir_identity`. docs/fhir-import.md documents every rule.
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
from typing import Any, TypeGuard

from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF, RDFS, XSD
from rdflib.term import Node

from guidelinekg.fhir_identity import (
    Attribution,
    Entry,
    Names,
    as_dict,
    as_list,
    attribute,
    file_labels,
)
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
ICD10 = "http://hl7.org/fhir/sid/icd-10"
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
    ICD10: "ICD-10",
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
# mCODE profile of a primary cancer: read only for a code the code map does not know
# (docs/fhir-import.md, "Primary cancers of other sites").
PRIMARY_CANCER_PROFILE_SUFFIX = "mcode-primary-cancer-condition"

CODE_MAP_COLUMNS = ("system", "code", "display", "maps_to", "role", "source", "note")
CODE_MAP_ROLES = frozenset({
    "primary-breast-cancer", "primary-cancer-other-site", "condition", "metastasis-site",
    "observation", "genetic-variant",
    "variant-gene", "variant-value", "stage-group-observation", "stage-value", "not-used",
    "receptor-value", "disease-status-value", "fracture-risk-value", "response-value",
    "medication", "procedure", "purpose", "route", "bone-body-site",
})

IMPORTED, IGNORED, NOTE = "imported", "ignored", "note"
# The report's words for a value written as the record gives it, impossible as it is.
AS_GIVEN = "written as given, for the patient shapes to judge (they refuse it)"

FULL_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:T.*)?$")
PARTIAL_DATE = re.compile(r"^\d{4}(?:-\d{2})?$")

FINAL_OBSERVATION_STATUSES = frozenset({"final", "amended", "corrected"})
UNCERTAIN_VERIFICATION = frozenset({"unconfirmed", "provisional", "differential"})
CONDITION_ROLES = ("primary-breast-cancer", "primary-cancer-other-site", "metastasis-site",
                   "condition")
# FHIR Condition.clinicalStatus (condition-clinical) -> the ontology's ClinicalStatusScheme.
CLINICAL_STATUS = {code: f"condition-{code}" for code in (
    "active", "recurrence", "relapse", "inactive", "remission", "resolved")}
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
    if system in (ICD10CM, ICD10):
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
    source: str = ""  # the file

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
    patients: list[URIRef]
    sources: list[str] = field(default_factory=list)
    # record item -> (the file it came from, its patient)
    item_origins: dict[URIRef, tuple[str, URIRef]] = field(default_factory=dict)
    # patient -> the files that hold its Patient resource or name it
    patient_sources: dict[URIRef, list[str]] = field(default_factory=dict)

    @property
    def patient(self) -> URIRef:
        """The patient of an input that holds one (use ``patients`` otherwise)."""
        if len(self.patients) != 1:
            raise ValueError(f"the input holds {len(self.patients)} patients: "
                             f"{', '.join(map(str, self.patients))}")
        return self.patients[0]

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

    def item_counts(self, source: str | None = None) -> dict[URIRef, int]:
        """Record items per patient, of one file or of the whole input."""
        counts: dict[URIRef, int] = {}
        for item_source, patient in self.item_origins.values():
            if source is None or item_source == source:
                counts[patient] = counts.get(patient, 0) + 1
        return counts

    def summary(self, source: str | None = None) -> str:
        """One line: each patient (of one file, or of the input) with its record items, and
        how many resources or elements were ignored."""
        return self.summaries()[source]

    def summaries(self) -> dict[str | None, str]:
        """The summary of the whole input (key None) and of each file, in one pass (a
        cohort may have thousands of files)."""
        counts: dict[str | None, dict[URIRef, int]] = {None: self.item_counts()}
        for item_source, patient in self.item_origins.values():
            per_file = counts.setdefault(item_source, {})
            per_file[patient] = per_file.get(patient, 0) + 1
        ignored: dict[str | None, int] = {}
        for entry in self.report:
            if entry.outcome == IGNORED:
                for key in (None, entry.source):
                    ignored[key] = ignored.get(key, 0) + 1
        named: dict[str | None, list[URIRef]] = {None: list(self.patients)}
        for patient in self.patients:
            found = set(self.patient_sources.get(patient, []))
            found |= {s for s in counts if s is not None and patient in counts[s]}
            for file_source in found:
                named.setdefault(file_source, []).append(patient)
        summaries: dict[str | None, str] = {}
        for source in [None, *self.sources]:
            parts = [f"patient {p}: {counts.get(source, {}).get(p, 0)} record items"
                     for p in named.get(source, [])]
            summaries[source] = "; ".join(parts or ["no patient"]) + (
                f"; {ignored.get(source, 0)} resources or elements ignored (each with why)")
        return summaries

    def report_text(self) -> str:
        """The summary, then one line per resource or element; by file when there are
        several."""
        summaries = self.summaries()
        lines = [summaries[None]]
        several = len(set(self.sources)) > 1
        current = None
        for entry in self.report:
            if several and entry.source != current:
                current = entry.source
                lines.append(f"  {current}: {summaries[current]}")
            lines.append(("    " if several else "  ") + entry.text())
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# Reading the input
# ---------------------------------------------------------------------------------------


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


# A number whose exponent is beyond this (0.1e1000000) is no clinical value, and writing it
# out in full, as a literal needs, takes minutes: it is refused as it is read.
MAX_DECIMAL_EXPONENT = 100


def _bounded_decimal(text: str) -> Decimal:
    value = Decimal(text)
    if abs(value.adjusted()) > MAX_DECIMAL_EXPONENT:
        shown = text if len(text) <= 24 else text[:21] + "..."
        raise ValueError(f"the number {shown} is out of range (more than "
                         f"{MAX_DECIMAL_EXPONENT} digits before or after the point)")
    return value


def parse_json_text(text: str, source: Path | str) -> Any:
    try:
        return json.loads(text, parse_float=_bounded_decimal, parse_constant=_refuse_constant)
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


def is_integer(value: Any) -> TypeGuard[int | Decimal]:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, Decimal) and value == value.to_integral())


def as_given(value: Any) -> Literal:
    """A FHIR value the importer cannot read, as a literal of what was given (a number stays
    a number, so a negative weight is refused as negative)."""
    if isinstance(value, bool):
        return Literal(value)
    if isinstance(value, int):
        return integer_literal(value)
    if isinstance(value, Decimal):
        return decimal_literal(value)
    if isinstance(value, str):
        return Literal(value)
    if isinstance(value, dict) and ("coding" in value or "text" in value):
        return Literal(describe_concept(value))
    return Literal(json.dumps(value, default=str, ensure_ascii=False))


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


def shown_term(term: Node) -> str:
    """A term for the report: a CURIE, or a literal's text quoted."""
    return curie(term) if isinstance(term, URIRef) else repr(str(term))


def primary_cancer_profile(resource: dict[str, Any]) -> bool:
    return any(isinstance(url, str) and url.split("|", 1)[0].endswith(
        PRIMARY_CANCER_PROFILE_SUFFIX) for url in as_list(as_dict(resource.get("meta")).get(
            "profile")))


def names_breast(resource: dict[str, Any]) -> bool:
    """Whether a Condition's code or body site says "breast" in a display or text: an
    unknown code that may be a breast cancer is not read as another site's."""
    concepts = [resource.get("code"), *as_list(resource.get("bodySite"))]
    words = [as_dict(concept).get("text") for concept in concepts]
    words += [coding.get("display") for concept in concepts for coding in codings(concept)]
    return any(isinstance(word, str) and "breast" in word.lower() for word in words)


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


# Words of a body site that place a pain in bone (Observation.bodySite text or display).
BONE_SITE_WORDS = ("bone", "osseous", "skelet", "vertebr", "spine", "spinal", "femur",
                   "femoral", "pelvi", "rib", "humer", "sacr", "hip", "tibia", "skull")


def pain_is_from_bone(ctx: Context) -> bool:
    """RT-2 asks for radiotherapy for bone pain: a pain score is read as bone pain only when
    its body site says bone. Otherwise it is ignored with the reason, and bone pain stays
    unknown (the completeness warning names it)."""
    ctx.read.add("bodySite")
    sites = as_list(ctx.resource.get("bodySite"))
    words = " ".join(
        [str(as_dict(site).get("text", "")) for site in sites]
        + [str(as_dict(coding).get("display", "")) for site in sites
           for coding in as_list(as_dict(site).get("coding"))]).lower()
    if any(word in words for word in BONE_SITE_WORDS):
        return True
    ctx.ignore("a pain score is read as bone pain only when its bodySite says bone (a bone, "
               "a vertebra, the spine, the pelvis ...): bone pain stays unknown", "bodySite")
    return False


class Context:
    """The import of one resource: what was read, and its report lines."""

    def __init__(self, importer: Importer, entry: Entry) -> None:
        self.importer = importer
        self.entry = entry
        self.resource = entry.resource
        self.read: set[str] = {"resourceType", "id", "subject", "patient"}
        self.read_extensions: set[str] = set()
        self.patient: URIRef | None = None  # the patient its record items are about
        self.items: list[Item] = []
        # Notes and element-level lines wait for the line saying what the resource became.
        self.pending: list[ReportEntry] = []

    def _add(self, outcome: str, detail: str, element: str = "", item: str = "") -> None:
        line = ReportEntry(self.entry.reference, self.entry.type, outcome, detail, element, item,
                           self.entry.source)
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
        """Write the xsd:date part of a FHIR date or dateTime. Any other value is written as
        given (a partial date as xsd:gYear or xsd:gYearMonth, anything else as text): the
        patient shapes refuse it, where dropping it would leave the item undated unseen."""
        self.read.add(element.split(".", 1)[0].split("[", 1)[0])
        text = value.strip() if isinstance(value, str) else str(value)
        match = FULL_DATE.match(text) if isinstance(value, str) else None
        if match and is_calendar_date(match.group(1)):
            item.set(prop, Literal(match.group(1), datatype=XSD.date))
            return True
        if isinstance(value, str) and PARTIAL_DATE.match(text):
            datatype = XSD.gYear if len(text) == 4 else XSD.gYearMonth
            item.set(prop, Literal(text, datatype=datatype))
            reason = "only a year or a month is given"
        else:
            item.set(prop, Literal(text))
            reason = ("not a calendar date" if match else "not a FHIR date"
                      if isinstance(value, str) else "not a FHIR date (not text)")
        self.note(f"date {value!r}: {reason}; {AS_GIVEN}", element)
        return False


class Importer:
    """Turns the documents of a record (one or several files, one or several patients)
    into the patient graph."""

    def __init__(self, documents: Sequence[tuple[str, Any]]) -> None:
        self.documents = documents
        self.labels = file_labels(source for source, _ in documents)
        self.codes = code_map()
        self.ontology = ontology_facts()
        self.graph = Graph()
        self.entries: list[Entry] = []
        self.reports: dict[int, list[ReportEntry]] = {}
        self.file_reports: list[ReportEntry] = []
        self.names = Names()
        self.skipped: set[int] = set()  # entries not imported: DELETE requests, duplicates
        self.attribution = Attribution()
        self.item_origins: dict[URIRef, tuple[str, URIRef]] = {}
        self.primaries: list[tuple[Entry, URIRef]] = []
        # A stage group per claim: a code-map term, or the description it could not read.
        self.stage_claims: dict[URIRef, list[tuple[URIRef | Literal, str]]] = {}
        self.stage_assessments: dict[int, URIRef] = {}
        self.other_stage_assessments: dict[int, str] = {}  # observation -> other primary
        self.referenced_medications: dict[int, list[str]] = {}
        self.administered_requests: set[int] = set()
        self.condition_kinds: dict[int, str] = {}  # entry order -> code-map role of its code
        self.metastasis_sites: dict[int, URIRef] = {}  # entry order -> site of a present metastasis

    # -- collecting -------------------------------------------------------------------

    def add_report(self, entry: Entry, line: ReportEntry) -> None:
        self.reports.setdefault(entry.order, []).append(line)

    def new_entry(self, resource: dict[str, Any], source: str, position: str,
                  full_url: str | None) -> Entry:
        return Entry(resource, source, position, full_url, len(self.entries),
                     self.labels[source])

    def collect(self) -> None:
        for source, data in self.documents:
            if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
                raise InputError(source, f"not FHIR JSON: {_describe_json(data)} "
                                 "(a FHIR resource or Bundle has a resourceType)")
            if data["resourceType"] == "Bundle":
                self._collect_bundle(source, data)
            else:
                self._add_entry(self.new_entry(data, source, "", None))

    def _collect_bundle(self, source: str, bundle: dict[str, Any]) -> None:
        raw_entries = bundle.get("entry", [])
        if not isinstance(raw_entries, list):
            raise InputError(source, "Bundle.entry is not a list")
        name = bundle.get("id") or Path(source).name
        self.file_reports.append(ReportEntry(
            source, "Bundle", NOTE,
            f"Bundle {name} (type {bundle.get('type', 'not given')}, {len(raw_entries)} entries); "
            "Bundle.timestamp is not read (it is not the evaluation date)", source=source))
        for index, raw in enumerate(raw_entries):
            position = f"entry {index}"
            raw = as_dict(raw)
            resource = raw.get("resource")
            full_url = raw.get("fullUrl") if isinstance(raw.get("fullUrl"), str) else None
            if not isinstance(resource, dict):
                self.file_reports.append(ReportEntry(
                    full_url or f"{source} {position}", "Bundle.entry", IGNORED,
                    "the entry holds no resource", source=source))
                continue
            if not isinstance(resource.get("resourceType"), str):
                raise InputError(source, f"{position}: not a FHIR resource (no resourceType)")
            method = as_dict(raw.get("request")).get("method")
            entry = self.new_entry(resource, source, position, full_url)
            if method == "DELETE":
                self.entries.append(entry)
                self.skipped.add(entry.order)
                self.add_report(entry, ReportEntry(entry.reference, entry.type, IGNORED,
                                                   "request method DELETE: not a record entry",
                                                   source=source))
                continue
            self._add_entry(entry)

    def _add_entry(self, entry: Entry) -> None:
        for contained in as_list(entry.resource.get("contained")):
            if isinstance(contained, dict) and isinstance(contained.get("id"), str):
                entry.contained["#" + contained["id"]] = contained
        named = self.names.named(entry)
        if named is not None:
            key, other = named
            if other.resource != entry.resource:
                raise InputError(entry.source, f"two different resources are named {key} "
                                 f"({other.source} {other.position}, "
                                 f"{entry.position or 'this file'})")
            self.entries.append(entry)
            self.skipped.add(entry.order)
            self.add_report(entry, ReportEntry(
                entry.reference, entry.type, IGNORED,
                f"the same resource as {other.position or 'the resource'} of "
                f"{other.source}: read once", source=entry.source))
            return
        self.entries.append(entry)
        self.names.add(entry)

    def resolve(self, reference: Any, within: Entry) -> Entry | dict | None:
        """The entry (or contained resource) a Reference points to, if it is in the input."""
        ref = as_dict(reference).get("reference")
        if not isinstance(ref, str) or not ref:
            return None
        if ref.startswith("#"):
            return within.contained.get(ref)
        return self.names.resolve(ref, within)

    # -- the patients -----------------------------------------------------------------

    def assign_patients(self, entries: Sequence[Entry]) -> None:
        """Name the patients and attribute each resource (guidelinekg.fhir_identity)."""
        self.attribution = attribute(entries, self.names, frozenset(HANDLERS))
        if not self.attribution.patients:
            sources = ", ".join(dict.fromkeys(source for source, _ in self.documents))
            raise InputError(sources, "no patient: the input holds no Patient resource and no "
                             "resource names its subject")
        for iri, (ref, source) in self.attribution.named_only.items():
            self.graph.add((iri, RDF.type, GKG.Patient))
            self.file_reports.append(ReportEntry(
                ref, "Patient", NOTE, f"no Patient resource for it in the input: the patient is "
                f"the subject the resources of {source} name ({ref}); no birth date is known",
                item=str(iri), source=source))

    # -- running ----------------------------------------------------------------------

    def run(self) -> FhirImport:
        self.collect()
        pending = [e for e in self.entries if e.order not in self.skipped]
        self.assign_patients(pending)
        self.survey(pending)
        # Conditions first: stage observations attach to the primary cancer, and metastases
        # and radiotherapy read what their related condition is.
        for entry in sorted(pending, key=lambda e: (PROCESS_ORDER.get(e.type, 9), e.order)):
            self.import_entry(entry)
        self.finish_stages()
        self.report_medications()
        sources = list(dict.fromkeys(source for source, _ in self.documents))
        report: list[ReportEntry] = []
        for source in sources:  # grouped by file, each in input order
            report += [line for line in self.file_reports if line.source == source]
            for entry in self.entries:
                if entry.source == source:
                    report.extend(self.reports.get(entry.order, []))
        patients = list(self.attribution.patients)
        return FhirImport(bind_project_prefixes(self.graph), report, patients, sources,
                          self.item_origins,
                          {p: self.attribution.sources(p) for p in patients})

    def survey(self, entries: Sequence[Entry]) -> None:
        """What other resources need to know before each is imported: the kind of each
        Condition (is a metastasis's related primary a breast cancer?) and which orders
        have completed administrations (an active plan with doses given is ongoing)."""
        for entry in entries:
            res = entry.resource
            if entry.type == "Condition" and has_code(res.get("code")):
                self.condition_kinds[entry.order] = self.condition_kind(res)[0]
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
        if entry.order in self.attribution.ignored:
            ctx.ignore(self.attribution.ignored[entry.order])
            return
        ctx.patient = self.attribution.of_entry[entry.order]
        if entry.order in self.attribution.notes:
            ctx.note(self.attribution.notes[entry.order])
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
        assert ctx.patient is not None
        item = Item(self.graph, iri, classes)
        item.set("subject", ctx.patient, report=False)
        item.set("sourceResource", Literal(ctx.entry.reference), report=False)
        self.item_origins[iri] = (ctx.entry.source, ctx.patient)
        return item

    def same_patient(self, ctx: Context, entry: Entry) -> bool:
        return self.attribution.of_entry.get(entry.order) == ctx.patient

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
        iri = self.attribution.of_entry[ctx.entry.order]
        item = Item(self.graph, iri, [GKG.Patient])
        birth = ctx.resource.get("birthDate")
        ctx.read |= {"identifier", "gender"}  # identity (compared across resources)
        if birth is not None:
            ctx.date(item, "birthDate", birth, "birthDate")
        else:
            ctx.note("no birthDate: age is unknown")
        ctx.imported(item)
        first = self.attribution.patients[iri][0]
        if first is not ctx.entry:
            ctx.note(f"the same patient as {first.reference} of {first.source} (same "
                     f"identifier): one patient, {iri}")
        self.report_unread(ctx)
        ctx.flush()

    # -- Condition --------------------------------------------------------------------

    def import_condition(self, ctx: Context) -> None:
        res = ctx.resource
        concept = self.require_code(ctx)
        ctx.read |= {"verificationStatus", "clinicalStatus"}
        verification = status_code(res.get("verificationStatus"))
        if verification == "entered-in-error":
            ctx.ignore("verificationStatus entered-in-error")
            return
        kind, rows = self.condition_kind(res)
        if kind == "other":
            ctx.ignore(f"its codings disagree ({describe_concept(concept)} map to "
                       f"{', '.join(sorted({row.role for row in rows}))})" if rows
                       else self.unknown(concept, "Condition code"))
            return
        if not rows:  # a primary cancer by its mCODE profile
            ctx.note(f"Condition code {describe_concept(concept)} is not in the code map; read "
                     "as a primary cancer of a site other than the breast because its profile "
                     "is mCODE primary-cancer-condition and its code names no breast (if it "
                     "is a breast cancer, add its code to the code map)", "meta.profile")
            self.import_other_primary(ctx, verification)
            return
        try:
            terms = self.terms(rows)
        except Conflict as conflict:
            ctx.ignore(f"its codings map to different terms: {conflict}")
            return
        if kind == "metastasis-site":
            self.import_metastasis(ctx, terms[0], verification)
        elif kind == "primary-breast-cancer":
            self.import_primary(ctx, verification)
        elif kind == "primary-cancer-other-site":
            self.import_other_primary(ctx, verification)
        else:
            self.import_other_condition(ctx, terms[0], verification)

    def condition_kind(self, res: dict[str, Any]) -> tuple[str, list[CodeMapping]]:
        """The code-map role of a Condition's code, and its rows; "other" when the code is
        unknown or its codings disagree. An unknown code under the mCODE primary-cancer
        profile that names no breast is a primary cancer of another site."""
        rows = self.map_concept(res.get("code"), CONDITION_ROLES)
        kinds = {row.role for row in rows}
        if len(kinds) == 1:
            return kinds.pop(), rows
        if not rows and primary_cancer_profile(res) and not names_breast(res):
            return "primary-cancer-other-site", []
        return "other", rows

    def clinical_status(self, ctx: Context, item: Item) -> None:
        """gkg:clinicalStatus from Condition.clinicalStatus; a code outside FHIR's
        condition-clinical codes is written as given (the shapes refuse it)."""
        concept = ctx.resource.get("clinicalStatus")
        if concept is None:
            return
        code = status_code(concept)
        if code in CLINICAL_STATUS:
            item.set("clinicalStatus", CODE[CLINICAL_STATUS[code]])
            return
        item.set("clinicalStatus", Literal(code or describe_concept(concept)))
        ctx.note(f"clinicalStatus {describe_concept(concept)} is not a FHIR condition clinical "
                 f"status; {AS_GIVEN}", "clinicalStatus")

    def condition_date(self, ctx: Context, item: Item) -> None:
        onset = choice(ctx.resource, "onset")
        ctx.read.add("recordedDate")
        if onset and onset[0] == "onsetDateTime":
            ctx.date(item, "effectiveDate", onset[1], "onsetDateTime")
        elif onset and onset[0] == "onsetPeriod" and "start" in as_dict(onset[1]):
            ctx.date(item, "effectiveDate", onset[1]["start"], "onsetPeriod.start")
        elif "recordedDate" in ctx.resource:
            ctx.date(item, "effectiveDate", ctx.resource["recordedDate"], "recordedDate")

    def import_primary(self, ctx: Context, verification: str | None) -> None:
        if verification == "refuted":
            ctx.ignore("verificationStatus refuted: not a breast cancer")
            return
        if verification in UNCERTAIN_VERIFICATION:
            ctx.ignore(f"verificationStatus {verification}: a diagnosis that is not confirmed "
                       "is not read as breast cancer")
            return
        item = self.new_item(ctx, ctx.entry.iri, [GKG.PrimaryBreastCancer])
        self.clinical_status(ctx, item)
        self.condition_date(ctx, item)
        ctx.imported(item)
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

    def stage_value(self, ctx: Context, concept: Any, element: str
                    ) -> URIRef | Literal | None:
        """The stage group a stage concept gives; one the code map cannot read is its
        description, a literal that the stage shape refuses."""
        rows = self.map_concept(concept, ("stage-value",))
        try:
            terms = self.terms(rows)
        except Conflict as conflict:
            ctx.ignore(f"stage codings disagree: {conflict}", element)
            return None
        if not terms:
            ctx.note(f"stage {describe_concept(concept)} is neither clearly stage I to III nor "
                     f"stage IV (code map); {AS_GIVEN}", element)
            return Literal(describe_concept(concept))
        return terms[0]

    def related_primary(self, ctx: Context) -> str:
        """Why a metastasis belongs to a cancer other than a breast cancer (its mCODE related
        primary), or ""."""
        for extension in as_list(ctx.resource.get("extension")):
            url = as_dict(extension).get("url", "")
            if isinstance(url, str) and url.endswith(RELATED_PRIMARY_SUFFIX):
                ctx.read_extensions.add(url)
                related = self.resolve(as_dict(extension).get("valueReference"), ctx.entry)
                if isinstance(related, Entry) and related.type == "Condition":
                    kind = self.condition_kinds.get(related.order, "")
                    if kind == "primary-cancer-other-site":
                        return (f"a metastasis of {related.reference}, a primary cancer of "
                                "another site (not a breast cancer)")
                    if kind == "other":
                        return (f"a metastasis of {related.reference}, which is not a breast "
                                "cancer in the code map")
        return ""

    def import_metastasis(self, ctx: Context, site: URIRef, verification: str | None) -> None:
        other_cancer = self.related_primary(ctx)
        if other_cancer:
            ctx.ignore(other_cancer)
            return
        if verification in UNCERTAIN_VERIFICATION:
            ctx.ignore(f"verificationStatus {verification}: not read as present (only confirmed "
                       "metastases are), nor as absent")
            return
        # In remission, inactive or resolved it stays present: the site was metastatic
        # (docs/fhir-import.md, "Clinical status").
        item = self.new_item(ctx, ctx.entry.iri, [GKG.MetastasisCondition])
        item.set("site", site)
        item.set("present", Literal(verification != "refuted"))
        self.clinical_status(ctx, item)
        self.condition_date(ctx, item)
        if verification != "refuted":
            self.metastasis_sites[ctx.entry.order] = site
        ctx.imported(item)
        if verification is None:
            ctx.note("no verificationStatus: read as asserted (present)")

    def import_other_primary(self, ctx: Context, verification: str | None) -> None:
        if verification in UNCERTAIN_VERIFICATION:
            ctx.ignore(f"verificationStatus {verification}: not read as present (only confirmed "
                       "diagnoses are), nor as absent")
            return
        item = self.new_item(ctx, ctx.entry.iri, [GKG.PrimaryCancerOtherSite])
        item.set("present", Literal(verification != "refuted"))
        self.clinical_status(ctx, item)
        self.condition_date(ctx, item)
        ctx.imported(item)
        # Its stage is not a breast cancer's: an observation it names is not read as one.
        for stage in as_list(ctx.resource.get("stage")):
            for assessment in as_list(as_dict(stage).get("assessment")):
                target = self.resolve(assessment, ctx.entry)
                if isinstance(target, Entry):
                    self.other_stage_assessments[target.order] = ctx.entry.reference
        if verification is None:
            ctx.note("no verificationStatus: read as asserted (present)")

    def import_other_condition(self, ctx: Context, cls: URIRef, verification: str | None) -> None:
        if verification in UNCERTAIN_VERIFICATION:
            ctx.ignore(f"verificationStatus {verification}: a diagnosis that is not confirmed "
                       "is not recorded")
            return
        # A refuted diagnosis is kept as refuted: it says the condition is absent (a
        # pathological fracture ruled out), which silence would not.
        item = self.new_item(ctx, ctx.entry.iri, [cls])
        item.set("present", Literal(verification != "refuted"))
        self.clinical_status(ctx, item)
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
        if kind == "code":
            item_value = self.coded_value(ctx, name, value_role, key, data)
        elif kind == "boolean":
            item_value = ([("valueBoolean", Literal(data), None)]
                          if key == "valueBoolean" and isinstance(data, bool) else
                          self.value_as_given(ctx, "valueBoolean", key, data,
                                              f"{name} needs valueBoolean"))
        elif kind == "integer":
            item_value = ([("valueInteger", integer_literal(data), None)]
                          if key == "valueInteger" and is_integer(data) and data >= 0 else
                          self.value_as_given(ctx, "valueInteger", key, data,
                                              f"{name} needs a valueInteger of 0 or more"))
        elif kind == "weight":
            item_value = self.weight_value(ctx, key, data)
        elif kind == "pain":
            if not pain_is_from_bone(ctx):
                return
            item_value = self.pain_value(ctx, key, data)
        else:
            ctx.ignore(f"{name} is not an observation class the importer can fill")
            return
        item = self.new_item(ctx, ctx.entry.iri, [cls])
        for prop, literal, shown in item_value:
            item.set(prop, literal, shown)
        self.observation_date(ctx, item)
        ctx.imported(item)

    @staticmethod
    def value_as_given(ctx: Context, prop: str, key: str, data: Any,
                       why: str) -> list[tuple[str, Node, str | None]]:
        """A value the importer cannot read, kept for the patient shapes to refuse: as given,
        or none when the observation has none (the shapes then find the value missing)."""
        if not key:
            ctx.note(f"{why}; the observation has no value: written without one, for the "
                     "patient shapes to judge (they refuse it)")
            return []
        shown = repr(data) if isinstance(data, str) else str(as_given(data))
        ctx.note(f"{why}; found {key} {shown}; {AS_GIVEN}", key)
        return [(prop, as_given(data), None)]

    def coded_value(self, ctx: Context, name: str, role: str, key: str,
                    data: Any) -> list[tuple[str, Node, str | None]]:
        source = ""
        if key == "" and role == "receptor-value" and ctx.resource.get("interpretation"):
            # Only when value[x] is absent: the interpretation then carries the result.
            ctx.read.add("interpretation")
            concepts = as_list(ctx.resource["interpretation"])
            source = " (from Observation.interpretation)"
        elif key != "valueCodeableConcept":
            return self.value_as_given(ctx, "valueCode", key, data,
                                       f"{name} needs valueCodeableConcept")
        else:
            concepts = [data]
        rows = [row for concept in concepts for row in self.map_concept(concept, (role,))]
        try:
            terms = self.terms(rows)
        except Conflict as conflict:
            # Every value is written: the shapes refuse a finding with two values.
            ctx.note(f"value codings disagree: {conflict}; {AS_GIVEN}", key or "interpretation")
            return [("valueCode", row.term, None) for row in rows if row.term is not None]
        if not terms:
            shown = "; ".join(describe_concept(c) for c in concepts)
            ctx.note(f"value {shown} is not a {role} of the code map; {AS_GIVEN}",
                     key or "interpretation")
            return [("valueCode", Literal(shown), None)]
        return [("valueCode", terms[0], curie(terms[0]) + source)]

    def weight_value(self, ctx: Context, key: str,
                     data: Any) -> list[tuple[str, Node, str | None]]:
        if key != "valueQuantity":
            return self.value_as_given(ctx, "valueDecimal", key, data,
                                       "body weight needs valueQuantity")
        quantity = as_dict(data)
        found: list[tuple[str, Node, str | None]] = []
        amount = quantity.get("value")
        if amount is None:
            ctx.note("body weight quantity has no value: written without one, for the patient "
                     "shapes to judge (they refuse it)", "valueQuantity")
        else:
            # The original value and unit: converting to kg is the fact layer's job.
            found.append(("valueDecimal", decimal_literal(amount) if is_number(amount)
                          else as_given(amount), None))
            if not is_number(amount) or amount <= 0:
                ctx.note(f"body weight {amount!r} is not a positive number; {AS_GIVEN}",
                         "valueQuantity")
        unit = self.quantity_unit(ctx, quantity, "valueQuantity", ("body-mass",), "body weight")
        if unit is not None:
            found.append(("unitCode", Literal(unit), None))
        return found

    def pain_value(self, ctx: Context, key: str,
                   data: Any) -> list[tuple[str, Node, str | None]]:
        score: Any = None
        if key == "valueInteger":
            score = data
        elif key == "valueQuantity":
            score = as_dict(data).get("value")
        if not is_integer(score) or not 0 <= score <= 10:
            return self.value_as_given(ctx, "valueCode", key, data if score is None else score,
                                       "pain severity needs a whole-number score from 0 to 10")
        score = int(score)
        band = ("none" if score == 0 else "mild" if score <= 3
                else "moderate" if score <= 6 else "severe")
        return [("valueCode", CODE[f"pain-{band}"], f"code:pain-{band} (score {score})")]

    def quantity_unit(self, ctx: Context, quantity: dict[str, Any], element: str,
                      dimensions: Sequence[str], what: str) -> str | None:
        """The unit of a Quantity as given: its UCUM code (or its unit text when no code is
        given), or ``code (system S)`` for another system; None when there is none. A unit
        the project cannot convert is written all the same and noted: the patient shapes
        refuse it (mg and mg/kg are never guessed). A unit of another kind that the shapes
        would accept (a medicine dose in Gy) is bad input."""
        allowed = self.ontology.ucum_codes(*dimensions)
        system = quantity.get("system")
        code = quantity.get("code") if isinstance(quantity.get("code"), str) else None
        unit_text = quantity.get("unit") if isinstance(quantity.get("unit"), str) else None
        given = (code or unit_text or "").strip()
        if not given:
            ctx.note(f"{what} {quantity.get('value')} has no unit: written without one, for "
                     "the patient shapes to judge (they refuse it)", element)
            return None
        if system is not None and system != UCUM:
            ctx.note(f"{what} unit {given!r} is not UCUM (system {system}); {AS_GIVEN}", element)
            return f"{given} (system {system})"
        if not code:
            ctx.note(f"unit read from Quantity.unit {given!r} (no UCUM code given)", element)
        if given in allowed:
            return given
        if given in self.ontology.unit_dimensions and what != "body weight":
            raise ctx.error(f"{what} unit {given!r} is not a unit of a {what} "
                            f"({', '.join(allowed)})", element)
        ctx.note(f"{what} unit {given!r} cannot be converted to a unit the project checks "
                 f"({', '.join(allowed)}); {AS_GIVEN}", element)
        return given

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
        values = self.variant_values(ctx, res.get("valueCodeableConcept"))
        not_pathogenic = [NOT_PATHOGENIC[c] for c in significance if c in NOT_PATHOGENIC]
        if values == [CODE["variant-present"]] and not_pathogenic and not any(
                c in PATHOGENIC for c in significance):
            ctx.ignore(f"a variant of {', '.join(not_pathogenic)} is present: not a pathogenic "
                       "variant, and not an absent one")
            return
        item = self.new_item(ctx, ctx.entry.iri, gene_classes)
        for value in values:
            item.set("valueCode", value)
        self.observation_date(ctx, item)
        ctx.imported(item)

    def variant_values(self, ctx: Context, concept: Any) -> list[Node]:
        """present or absent; a value that is neither, or codings that disagree, are
        written as given for the shapes to refuse."""
        element = "valueCodeableConcept"
        rows = self.map_concept(concept, ("variant-value",))
        try:
            values: list[Node] = list(self.terms(rows))
        except Conflict as conflict:
            ctx.note(f"value codings disagree: {conflict}; {AS_GIVEN}", element)
            return [row.term for row in rows if row.term is not None]
        if values:
            return values
        if concept is None:
            ctx.note("no value: written without one, for the patient shapes to judge (they "
                     "refuse it)", element)
            return []
        ctx.note(f"value {describe_concept(concept)} is neither present (LA9633-4) nor absent "
                 f"(LA9634-2); {AS_GIVEN}", element)
        return [Literal(describe_concept(concept))]

    def import_stage_observation(self, ctx: Context) -> None:
        res = ctx.resource
        ctx.read |= {"valueCodeableConcept", "focus"}
        if "valueCodeableConcept" not in res:
            ctx.ignore("a stage group observation without valueCodeableConcept")
            return
        value = self.stage_value(ctx, res["valueCodeableConcept"], "valueCodeableConcept")
        if value is None:
            return
        shown = shown_term(value)
        target, why = self.stage_target(ctx)
        if target is None:
            ctx.ignore(f"stage {shown}: {why}")
            return
        self.stage_claims.setdefault(target, []).append((value, ctx.entry.reference))
        ctx.imported_into(f"stage group {shown} of the primary breast cancer {target}", target)

    def stage_target(self, ctx: Context) -> tuple[URIRef | None, str]:
        """The primary breast cancer a stage observation is about (its focus, the primary
        whose stage.assessment names it, or the patient's only one), or why there is none."""
        focus = [found for found in (self.resolve(f, ctx.entry)
                                     for f in as_list(ctx.resource.get("focus")))
                 if isinstance(found, Entry)]
        mine = [(entry, iri) for entry, iri in self.primaries if self.same_patient(ctx, entry)]
        if focus:
            target = next((iri for entry, iri in mine if entry in focus), None)
            return target, ("" if target else "its focus is not a primary breast cancer of "
                            "the patient")
        if ctx.entry.order in self.stage_assessments:
            return self.stage_assessments[ctx.entry.order], ""
        if ctx.entry.order in self.other_stage_assessments:
            return None, (f"the stage of {self.other_stage_assessments[ctx.entry.order]}, a "
                          "primary cancer of another site")
        if not mine:
            return None, "no primary breast cancer in the record to attach it to"
        if len(mine) > 1:
            return None, ("several primary breast cancers, and the observation does not say "
                          "which one (focus)")
        return mine[0][1], ""

    def finish_stages(self) -> None:
        for entry, primary in self.primaries:
            claims = self.stage_claims.get(primary, [])
            values = sorted({value for value, _ in claims})
            if not values:
                continue
            sources = "; ".join(f"{shown_term(v)} from {s}" for v, s in claims)
            if len(values) == 1 or any(isinstance(v, Literal) for v in values):
                # One stage, or one the code map cannot read: every claim is written, and
                # the stage shape refuses what it cannot accept.
                for value in values:
                    self.graph.add((primary, GKG.stageGroup, value))
                detail = f"stageGroup {', '.join(map(shown_term, values))} ({sources})"
                self.add_report(entry, ReportEntry(entry.reference, entry.type, IMPORTED, detail,
                                                   "stage", str(primary), entry.source))
            else:
                self.add_report(entry, ReportEntry(
                    entry.reference, entry.type, IGNORED, f"stage groups disagree ({sources}): "
                    "no stage group written", "stage", str(primary), entry.source))

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
        dates = self.medication_dates(ctx)
        line = self.line_of_therapy(ctx)
        dosages = self.dosages(ctx)
        base = ctx.entry.iri
        for cls in classes:
            iri = base if len(classes) == 1 else URIRef(f"{base}#{curie(cls).split(':', 1)[1]}")
            item = self.new_item(ctx, iri, [cls])
            item.set("status", status_value)
            self.medication_details(ctx, item, cls, dates, line)
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

    def medication_details(self, ctx: Context, item: Item, cls: URIRef,
                           dates: tuple[tuple[Any, str], tuple[Any, str]],
                           line: Literal | None) -> None:
        """Dates and line of therapy of one medicine item."""
        for prop, (value, element) in zip(("startDate", "endDate"), dates, strict=True):
            if value is not None:
                ctx.date(item, prop, value, element)
        if line is None:
            return
        if self.ontology.is_a(cls, GKG.SystemicCancerTherapy):
            item.set("lineOfTherapy", line)
        else:
            ctx.ignore(f"line of therapy {line} on {curie(cls)}, which is not a systemic cancer "
                       "therapy", "extension line-of-therapy")

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

    def line_of_therapy(self, ctx: Context) -> Literal | None:
        """The project's line-of-therapy extension: 1, 2, ...; another value is kept as
        given for the patient shapes to refuse."""
        for extension in as_list(ctx.resource.get("extension")):
            extension = as_dict(extension)
            if extension.get("url") != LINE_OF_THERAPY_URL:
                continue
            ctx.read_extensions.add(LINE_OF_THERAPY_URL)
            value = extension.get("valuePositiveInt")
            if is_integer(value) and value >= 1:
                return integer_literal(value)
            if value is None:
                ctx.ignore("the line-of-therapy extension has no valuePositiveInt",
                           "extension line-of-therapy")
                return None
            ctx.note("the line-of-therapy extension needs valuePositiveInt (1, 2, ...); "
                     f"found {value!r}; {AS_GIVEN}", "extension line-of-therapy")
            return as_given(value)
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

    def dose_amount(self, ctx: Context, dose: Item, quantity: dict[str, Any], element: str,
                    dimensions: Sequence[str] = ("mass", "mass-per-body-mass"),
                    what: str = "dose") -> None:
        """gkg:doseAmount and gkg:doseUnit as given: a dose that is not a positive number,
        or has no unit or one the project cannot convert, is written all the same (the
        patient shapes refuse it)."""
        value = quantity.get("value")
        if value is None:
            ctx.ignore(f"the {what} quantity has no value: no amount written", element)
            return
        unit = self.quantity_unit(ctx, quantity, element, dimensions, what)
        dose.set("doseAmount", decimal_literal(value) if is_number(value) else as_given(value))
        if not is_number(value) or value <= 0:
            ctx.note(f"{what} {value!r} is not a positive number; {AS_GIVEN}", element)
        if unit is not None:
            dose.set("doseUnit", Literal(unit))
            if unit == "mg/kg":
                dose.set("perBodyWeight", Literal(True), report=False)

    def dose_timing(self, ctx: Context, dose: Item, timing: dict[str, Any],
                    element: str) -> list[str]:
        repeat = as_dict(timing.get("repeat"))
        unread = [f"timing.{k}" for k in timing if k not in ("repeat", "event")]
        for key, whole in (("frequency", True), ("count", True), ("period", False),
                           ("periodMax", False)):
            if key in repeat:
                self.timing_number(ctx, dose, key, repeat[key], whole, f"{element}.repeat.{key}")
        if "period" in repeat or "periodMax" in repeat:
            self.timing_unit(ctx, dose, "periodUnit", repeat.get("periodUnit"),
                             f"{element}.repeat.periodUnit")
        if "duration" in repeat:
            self.timing_number(ctx, dose, "infusionDuration", repeat["duration"], False,
                               f"{element}.repeat.duration")
            self.timing_unit(ctx, dose, "infusionDurationUnit", repeat.get("durationUnit"),
                             f"{element}.repeat.durationUnit")
        known = {"frequency", "count", "period", "periodMax", "periodUnit", "duration",
                 "durationUnit", "boundsPeriod"}
        unread += [f"timing.repeat.{k}" for k in repeat if k not in known]
        return unread

    @staticmethod
    def timing_number(ctx: Context, dose: Item, prop: str, value: Any, whole: bool,
                      element: str) -> None:
        """A count (1 or more) or an amount of time (above 0), as given when it is not."""
        if whole and is_integer(value) and value >= 1:
            dose.set(prop, integer_literal(value))
        elif not whole and is_number(value) and value > 0:
            dose.set(prop, decimal_literal(value))
        else:
            dose.set(prop, as_given(value))
            wanted = "a whole number of 1 or more" if whole else "a positive number"
            ctx.note(f"{value!r} is not {wanted}; {AS_GIVEN}", element)

    def timing_unit(self, ctx: Context, dose: Item, prop: str, unit: Any, element: str) -> None:
        """A UCUM time unit, as given when it is not one (none: written without one)."""
        units = self.ontology.ucum_codes("time")
        if unit is None:
            ctx.note(f"no unit: written without one, for the patient shapes to judge (they "
                     f"refuse it; give one of {', '.join(units)})", element)
            return
        dose.set(prop, as_given(unit))
        if unit not in units:
            ctx.note(f"{unit!r} is not a UCUM time unit ({', '.join(units)}); {AS_GIVEN}",
                     element)

    def report_medications(self) -> None:
        for entry in self.entries:
            if entry.type != "Medication" or entry.order in self.skipped:
                continue
            users = self.referenced_medications.get(entry.order)
            line = (ReportEntry(entry.reference, entry.type, NOTE,
                                "read through " + ", ".join(users), source=entry.source)
                    if users else
                    ReportEntry(entry.reference, entry.type, IGNORED,
                                "no medication resource of the patient references it",
                                source=entry.source))
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
                self.dose_amount(ctx, dose, total, element, ("absorbed-dose",),
                                 "radiotherapy dose")
            fractions = parts.get("fractionsDelivered", {})
            if "valueUnsignedInt" in fractions:
                self.timing_number(ctx, dose, "fractions", fractions["valueUnsignedInt"], True,
                                   f"{element}.fractionsDelivered")
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
    """Import files together: identifiers and absolute references join the files that say
    they are one patient (guidelinekg.fhir_identity); each file's other patients stay its
    own."""
    if not paths:
        raise InputError("import-fhir", "no FHIR file given")
    return Importer([(str(path), read_json_file(path)) for path in paths]).run()


def import_fhir_file(path: Path | str) -> FhirImport:
    """Import one FHIR JSON file (a Bundle or a single resource)."""
    return import_fhir_files([path])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Import FHIR R4 / mCODE JSON into the patient graph, read exactly as validate and "
        "recommend read the same files (folders give their .json files), with an import "
        "report of what became of each resource.")
    parser.add_argument("bundles", nargs="+", type=Path, metavar="BUNDLE.json",
                        help="FHIR R4 JSON files (Bundles or single resources), or folders")
    parser.add_argument("-o", "--output", type=Path, metavar="patient.ttl",
                        help="write the patient graph (Turtle) here; default: standard output")


def run(args: argparse.Namespace) -> int:
    # The loader validate and recommend use: the same files give the same graph.
    from guidelinekg.patients import load_patient_input

    source = load_patient_input(args.bundles, fhir_only=True, quiet=True)
    assert source.fhir is not None
    turtle = bind_project_prefixes(source.graph).serialize(format="turtle")
    report = source.fhir.report_text()
    if len(set(source.files)) > 1:
        report += "".join(f"{line}\n" for line in source.provenance_lines())
    if args.output is None:
        sys.stdout.write(turtle)
        sys.stderr.write(report)
        return 0
    try:
        args.output.write_text(turtle, encoding="utf-8")
    except OSError as error:
        raise InputError(args.output,
                         f"cannot write the patient graph ({error.strerror})") from None
    sys.stdout.write(f"wrote {args.output}\n")
    sys.stdout.write(report)
    return 0
