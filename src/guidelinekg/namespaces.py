"""The RDF chores every module shares: the project's namespaces, the short names reports
give terms (CURIEs), and the one canonical form of numbers and booleans.

* ``GKG`` and ``CODE`` are closed (rdflib ``DefinedNamespace`` with ``_fail``): a misspelt
  term raises AttributeError where it is first used instead of naming an IRI nothing
  declares. They list only terms of the core (``ontology/*.ttl``) that the Python names, so
  the code stays guideline-neutral; a domain's or guideline's terms are data, read from the
  graph (``tests/test_namespaces.py`` checks both).
* ``FACT``, ``UNIT``, ``PSH`` and ``GSH`` are open (``Namespace``): facts, units and shapes
  are data, and the code builds their IRIs from names it reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import overload

from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF, SH, XSD, DefinedNamespace, NamespaceManager
from rdflib.term import Node

from guidelinekg.loading import BASE, CORE_PREFIXES, PREFIXES
from guidelinekg.resources import LIBRARY_VARIABLE

__all__ = [
    "CODE", "FACT", "GKG", "GSH", "PSH", "UNIT", "canonical_literal", "curie", "decimal_text",
    "expand_curie", "prefixed_name",
]


class GKG(DefinedNamespace):
    """The core ontology's classes and properties that the Python names."""

    _NS = Namespace(CORE_PREFIXES["gkg"])
    _fail = True

    # Guidelines, statements and their parts
    Guideline: URIRef
    Recommendation: URIRef
    AvoidStatement: URIRef
    EvidenceSource: URIRef
    UnresolvedCitation: URIRef
    AllOf: URIRef
    AnyOf: URIRef
    NoneOf: URIRef
    FactCriterion: URIRef
    evaluationLevel: URIRef
    memberCount: URIRef
    basisCriterion: URIRef
    currentStep: URIRef
    unknownBecause: URIRef
    Unit: URIRef
    Radiotherapy: URIRef
    inGuideline: URIRef
    hasSection: URIRef
    inSection: URIRef
    sectionOrder: URIRef
    clinicalQuestion: URIRef
    reviewStatus: URIRef
    disclaimer: URIRef
    sourceDocument: URIRef
    sourceLine: URIRef
    verbatimText: URIRef
    reading: URIRef
    statementKind: URIRef
    relatedStatement: URIRef
    appliesWith: URIRef
    summarises: URIRef
    modality: URIRef
    direction: URIRef
    strength: URIRef
    curationNote: URIRef
    careGapChecked: URIRef
    applicability: URIRef
    hasMember: URIRef
    onFact: URIRef
    operator: URIRef
    expectedValue: URIRef
    threshold: URIRef
    recommendsAction: URIRef
    forbidsAction: URIRef
    hasPreconditionCheck: URIRef
    checksAction: URIRef
    flaggedWhen: URIRef
    fhirActivityKind: URIRef
    rxnormCode: URIRef
    snomedCode: URIRef
    findingCode: URIRef
    ucumCode: URIRef
    dimension: URIRef
    referenceUnit: URIRef
    conversionFactor: URIRef
    # Dose regimens and their steps
    hasDoseRegimen: URIRef
    statedIn: URIRef
    regimenFor: URIRef
    regimenCondition: URIRef
    hasStep: URIRef
    stepOrder: URIRef
    doseAmount: URIRef
    doseUnit: URIRef
    doseText: URIRef
    dosePhase: URIRef
    perBodyWeight: URIRef
    route: URIRef
    frequency: URIRef
    period: URIRef
    periodMax: URIRef
    periodUnit: URIRef
    countMin: URIRef
    fractions: URIRef
    infusionDuration: URIRef
    infusionDurationUnit: URIRef
    # Evidence
    hasEvidenceSource: URIRef
    hasComparativeEvidence: URIRef
    sourceTitle: URIRef
    sourcePublisher: URIRef
    publicationYear: URIRef
    sourceType: URIRef
    intervention: URIRef
    comparator: URIRef
    conclusion: URIRef
    hazardRatio: URIRef
    outcome: URIRef
    studyPopulation: URIRef
    # Patient facts and the patient record
    PatientFact: URIRef
    ObservedFact: URIRef
    ItemPresenceFact: URIRef
    DerivedFact: URIRef
    FactValue: URIRef
    Patient: URIRef
    RecordItem: URIRef
    DoseSpecification: URIRef
    valueType: URIRef
    factUnit: URIRef
    whenSilent: URIRef
    valueWhenSilent: URIRef
    recordedAs: URIRef
    recordsFact: URIRef
    presenceOfClass: URIRef
    presenceStatus: URIRef
    derivedBy: URIRef
    fhirSource: URIRef
    subject: URIRef
    birthDate: URIRef
    deathDate: URIRef
    deceased: URIRef
    valueCode: URIRef
    hasDose: URIRef
    sourceResource: URIRef
    fact: URIRef
    factValue: URIRef
    undeterminedBecause: URIRef
    # The record items' own properties (what an import writes)
    effectiveDate: URIRef
    startDate: URIRef
    endDate: URIRef
    recordedAsCourse: URIRef
    status: URIRef
    bodySite: URIRef
    present: URIRef
    clinicalStatus: URIRef
    valueBoolean: URIRef
    valueInteger: URIRef
    valueDecimal: URIRef
    unitCode: URIRef
    # Derivation results
    DerivationRun: URIRef
    PopulationResult: URIRef
    RecommendationResult: URIRef
    ContraindicationResult: URIRef
    CareGapResult: URIRef
    DoseCheckResult: URIRef
    asOf: URIRef
    patient: URIRef
    guideline: URIRef
    recommendation: URIRef
    recordItem: URIRef
    resultStatus: URIRef
    generatedByQuery: URIRef
    explanation: URIRef
    missingFact: URIRef
    toConfirm: URIRef
    expected: URIRef
    found: URIRef

    # "count" is also a method of str: GKG["count"] reads better than a shadowing attribute.
    _extras = ["count"]  # noqa: RUF012 (rdflib's own declaration style)


class CODE(DefinedNamespace):
    """The core's concepts that the Python names (most are hyphenated: ``CODE["..."]``)."""

    _NS = Namespace(CORE_PREFIXES["code"])
    _fail = True

    applies: URIRef
    undetermined: URIRef
    contraindicated: URIRef
    mass: URIRef
    planned: URIRef
    ongoing: URIRef
    completed: URIRef
    stopped: URIRef
    time: URIRef

    _extras = [  # noqa: RUF012 (rdflib's own declaration style)
        # result statuses (the ResultStatusScheme)
        "does-not-apply", "dose-matches", "dose-deviates", "dose-cannot-check",
        "possibly-contraindicated", "in-population", "out-of-population",
        "population-undetermined",
        # silence rules (what a fact the record is silent about counts as)
        "silence-absent", "silence-unknown",
        # dimensions of units
        "mass-per-body-mass", "mass-per-body-surface-area", "absorbed-dose",
        # dose phases
        "loading-dose", "maintenance-dose",
        # clinical statuses of a condition (the ClinicalStatusScheme)
        "condition-active", "condition-recurrence", "condition-relapse", "condition-inactive",
        "condition-remission", "condition-resolved",
    ]


FACT = Namespace(CORE_PREFIXES["fact"])
UNIT = Namespace(CORE_PREFIXES["unit"])
PSH = Namespace(BASE + "shapes/patient#")
GSH = Namespace(BASE + "shapes/guideline#")


# ---------------------------------------------------------------------------------------
# CURIEs
# ---------------------------------------------------------------------------------------

# Reports also name RDF's own terms and the shapes' (sh:path, psh:UnknownTerm), which
# PREFIXES leaves to the files that use them.
_REPORT_PREFIXES = {"rdf": str(RDF), "sh": str(SH), "psh": str(PSH), "gsh": str(GSH)}
# Literals a report writes bare, as Turtle does (true, 3, 120.0); as written, not in
# canonical form: a report shows what the record says.
_SHORTHAND_DATATYPES = frozenset({XSD.boolean, XSD.integer, XSD.decimal, XSD.double})


@lru_cache(maxsize=32)
def _manager(prefixes: tuple[tuple[str, str], ...]) -> NamespaceManager:
    """A namespace manager bound with exactly these prefixes. Keyed on them: PREFIXES grows
    with every guideline GUIDELINEKG_LIBRARY adds, and the manager caches what it splits."""
    manager = NamespaceManager(Graph(bind_namespaces="none"), bind_namespaces="none")
    for prefix, namespace in prefixes:
        manager.bind(prefix, namespace, override=True, replace=True)
    return manager


def _current(prefixes: Mapping[str, str] | None) -> NamespaceManager:
    if prefixes is None:
        # Asked per term written (an import asks tens of thousands of times): the default
        # manager is looked up by the library setting, not rebuilt from the prefixes.
        return _default_manager(os.environ.get(LIBRARY_VARIABLE, ""))
    return _manager(tuple(sorted(prefixes.items())))


@lru_cache(maxsize=8)
def _default_manager(library: str) -> NamespaceManager:
    """The manager of the project's prefixes and the report's, for one library setting."""
    return _manager(tuple(sorted({**PREFIXES, **_REPORT_PREFIXES}.items())))


def prefixed_name(iri: str, prefixes: Mapping[str, str] | None = None) -> str | None:
    """``prefix:local`` for an IRI one of the prefixes covers (the project's and those of
    RDF and the shapes, unless others are given), None otherwise."""
    try:
        prefix, _, local = _current(prefixes).compute_qname(iri, generate=False)
    except (KeyError, ValueError):  # no bound namespace, or not an IRI rdflib can split
        return None
    return f"{prefix}:{local}" if local else None


def curie(term: Node | None, prefixes: Mapping[str, str] | None = None) -> str:
    """How reports and tables name a term: a prefixed name (``gkg:Patient``, ``ID:KEY``,
    ``xsd:date``) when one of the project's prefixes (or those given) covers the IRI,
    ``<IRI>`` otherwise, ``_:label`` for a blank node, a literal as Turtle writes it
    (``120.0``, ``"text"@en``, ``"2026-01-05"^^xsd:date``), and "" for None."""
    if term is None:
        return ""
    if isinstance(term, URIRef):
        return prefixed_name(str(term), prefixes) or f"<{term}>"
    if isinstance(term, Literal):
        if term.datatype in _SHORTHAND_DATATYPES:
            return str(term)
        text = json.dumps(str(term), ensure_ascii=False)
        if term.language:
            return f"{text}@{term.language}"
        return f"{text}^^{curie(term.datatype, prefixes)}" if term.datatype else text
    return f"_:{term}"


def expand_curie(name: str) -> URIRef:
    """The IRI of a prefixed name in the project's prefixes (``gkg:Patient``, ``ID:KEY``);
    ValueError when its prefix is not one of them."""
    return _current(None).expand_curie(name)


# ---------------------------------------------------------------------------------------
# The canonical form of numbers and booleans
# ---------------------------------------------------------------------------------------
#
# One form: XML Schema 1.1's canonical one, which is Oxigraph's ("120.0"^^xsd:decimal is
# stored as "120"; rdflib keeps the spelling of the source file). Answers of the two engines
# are brought to it, so that they compare and print alike; it is also what a reader is
# shown ("120", "0.47"). No literal goes into a node IRI (the queries build those from IRIs
# and notations), so no second form is needed.

_INTEGER_DATATYPES = frozenset({
    XSD.integer, XSD.int, XSD.long, XSD.short, XSD.byte,
    XSD.nonNegativeInteger, XSD.positiveInteger, XSD.negativeInteger, XSD.nonPositiveInteger,
    XSD.unsignedLong, XSD.unsignedInt, XSD.unsignedShort, XSD.unsignedByte,
})


def decimal_text(value: Decimal) -> str:
    """A decimal in canonical form: 120.0 -> 120, 0.470 -> 0.47 (NaN and infinities as
    Python spells them)."""
    if not value.is_finite():
        return str(value)
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


# Read once: a DefinedNamespace attribute is looked up in Python at every use.
_XSD_DECIMAL, _XSD_BOOLEAN = XSD.decimal, XSD.boolean


@overload
def canonical_literal(term: Literal) -> Literal: ...
@overload
def canonical_literal(term: Node) -> Node: ...
def canonical_literal(term: Node) -> Node:
    """An integer, decimal or boolean literal in canonical form; other terms, and literals
    that are not of their datatype's lexical space, unchanged."""
    if not isinstance(term, Literal) or term.datatype is None:
        return term
    lexical = str(term).strip()
    try:
        if term.datatype in _INTEGER_DATATYPES:
            return Literal(str(int(lexical)), datatype=term.datatype)
        if term.datatype == _XSD_DECIMAL:
            value = Decimal(lexical)
            return term if not value.is_finite() else Literal(decimal_text(value),
                                                              datatype=_XSD_DECIMAL)
        if term.datatype == _XSD_BOOLEAN and lexical in ("0", "1"):
            return Literal("true" if lexical == "1" else "false", datatype=_XSD_BOOLEAN)
    except (ValueError, InvalidOperation):
        return term  # an ill-typed literal is shown as written
    return term
