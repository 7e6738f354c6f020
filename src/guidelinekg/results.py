"""The results of a derivation, as plain objects: one :class:`PatientResult` per patient.

What the derivation found for a patient (the population verdict, every statement's status,
contraindicated and possibly contraindicated actions, care gaps, dose checks), each traced to
its statement key, verbatim text, sources and the facts and record items it rests on. The
renderings (JSON, text, RDF) are in :mod:`guidelinekg.recommend_output`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from rdflib import XSD, Graph, Literal
from rdflib.namespace import SKOS
from rdflib.term import Node

from guidelinekg.namespaces import canonical_literal
from guidelinekg.sparql import SparqlEngine


@dataclass
class RecommendationOutcome:
    key: str
    status: str  # applies, does-not-apply, undetermined
    modality: str
    text: str
    sources: list[str]
    because: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    missing_details: list[dict[str, str]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    recommendation: str = ""
    # the facts whose values the status rests on (keys), for the provenance links
    basis_facts: list[str] = field(default_factory=list)


@dataclass
class Contraindication:
    key: str
    record_item: str
    text: str
    sources: list[str]
    because: list[str]
    modality: str
    # contraindicated: the statement applies; possibly-contraindicated: the forbidden action
    # is in the record and the statement is undetermined for want of the facts to_confirm.
    status: str = "contraindicated"
    to_confirm: list[str] = field(default_factory=list)
    to_confirm_details: list[dict[str, str]] = field(default_factory=list)
    recommendation: str = ""


@dataclass
class CareGap:
    key: str
    text: str
    because: list[str]
    action: str
    sources: list[str]
    recommendation: str = ""


@dataclass
class DoseCheck:
    key: str
    record_item: str
    status: str  # matches, deviates, cannot-check
    expected: str
    found: str
    because: list[str]
    recommendation: str = ""  # the statement's IRI
    # The statement's verbatim text and evidence sources, as every other result carries
    text: str = ""
    sources: list[str] = field(default_factory=list)


@dataclass
class PopulationVerdict:
    """Whether the patient is in the population the guideline speaks for, and why."""

    status: str  # in, out, undetermined
    population: str  # the population's label
    because: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    missing_details: list[dict[str, str]] = field(default_factory=list)
    guideline: str = ""


@dataclass
class PatientResult:
    patient: str
    guideline: str
    as_of: str
    population: PopulationVerdict
    recommendations: list[RecommendationOutcome]
    contraindicated: list[Contraindication]
    care_gaps: list[CareGap]
    dose_checks: list[DoseCheck]
    # True only when derived on request from a record that violates the shapes
    derived_from_invalid_record: bool = False
    # The guideline's title and id, for the text a clinician reads (the JSON names the IRI)
    guideline_label: str = ""

    def to_json(self) -> dict[str, Any]:
        """The documented JSON contract (README): the population verdict first."""
        population = _plain(self.population)
        population.pop("guideline")
        document: dict[str, Any] = {
            "population": population,
            "patient": self.patient,
            "guideline": self.guideline,
            "as_of": self.as_of,
        }
        if self.derived_from_invalid_record:
            document["derived_from_invalid_record"] = True
        document.update({
            "contraindicated": [_plain(c) for c in self.contraindicated],
            "care_gaps": [_plain(g) for g in self.care_gaps],
            "dose_checks": [_plain(d) for d in self.dose_checks],
            "recommendations": [_plain(r) for r in self.recommendations],
        })
        return document


def _plain(item: object) -> dict[str, Any]:
    """A result's fields as JSON values: what ``dataclasses.asdict`` gives for these flat
    results (strings, lists of strings or of string maps), without its deep recursion (a
    tenth of a cohort run's time went to it)."""
    return {name: [dict(v) if isinstance(v, dict) else v for v in value]
            if isinstance(value, list) else value for name, value in vars(item).items()}


@dataclass
class StatementInfo:
    iri: str
    key: str
    text: str
    modality: str
    kinds: list[str]
    sources: list[str]
    unresolved_sources: list[str]
    order: int
    guideline: str
    guideline_version: str | None


@dataclass
class Derivation:
    """All results of one run, and the engine state they were read from."""

    as_of: date
    patients: list[PatientResult]
    engine: SparqlEngine
    started: datetime
    derived_from_invalid_record: bool = False


# Read once: a DefinedNamespace attribute is looked up in Python at every use.
_XSD_BOOLEAN = XSD.boolean


class Vocabulary:
    """Readable values (skos:notation of concepts, yes/no for booleans)."""

    def __init__(self, graph: Graph) -> None:
        self.notation: dict[Node, str] = {
            subject: str(notation) for subject, notation in graph.subject_objects(SKOS.notation)
        }

    def value(self, term: Node | None) -> str:
        if term is None:
            return "unknown"
        if isinstance(term, Literal):
            if term.datatype == _XSD_BOOLEAN:
                return "yes" if term.toPython() else "no"
            # Numbers as Oxigraph writes them, whichever engine read them.
            return str(canonical_literal(term).toPython())
        return self.notation.get(term, str(term))


def number(term: Node | None) -> Decimal | None:
    if term is None:
        return None
    try:
        return Decimal(str(term.toPython() if isinstance(term, Literal) else term))
    except ArithmeticError:
        return None

