"""The guideline graph read into plain objects, for the published pages and the FHIR export.

Everything here is read from the graph as curated; nothing is added: recommendations,
sections and guidelines, and the patient facts. The parts of a statement (criteria,
interventions, doses, evidence) are read by ``guideline_parts.py``, single values by
``graph_reading.py``; reading uses rdflib's graph API (no SPARQL text is built).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from rdflib import BNode, Graph, URIRef
from rdflib.namespace import DCTERMS, OWL, RDF, SKOS
from rdflib.paths import MulPath, SequencePath
from rdflib.term import Node

from guidelinekg.graph_reading import (
    flag,
    integer,
    is_boolean,
    label,
    local_name,
    sorted_terms,
    text,
)
from guidelinekg.guideline_parts import (
    ComparativeEvidence,
    Criterion,
    DoseRegimen,
    EvidenceSource,
    Intervention,
    read_criterion,
    read_evidence,
    read_intervention,
    read_regimen,
    read_source,
)
from guidelinekg.namespaces import GKG, curie

# ---------------------------------------------------------------------------------------
# Recommendations and guidelines
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementLink:
    iri: URIRef
    key: str
    relation: str  # "related statement", "applies with", "qualified by", "summarises", ...
    is_pitfall: bool


@dataclass(frozen=True)
class Modality:
    iri: URIRef | None
    notation: str | None
    label: str | None
    direction: str | None  # "for" or "against"
    strength: str | None  # "strong" or "weak"


@dataclass(frozen=True)
class PreconditionCheck:
    """A precondition a statement sets on an action it recommends (flagged when unmet)."""

    iri: URIRef
    label: str
    action: Intervention | None
    criterion: Criterion | None


def read_precondition(graph: Graph, iri: URIRef) -> PreconditionCheck:
    action = graph.value(iri, GKG.checksAction)
    criterion = graph.value(iri, GKG.flaggedWhen)
    return PreconditionCheck(
        iri=iri, label=label(graph, iri) or str(iri),
        action=read_intervention(graph, action) if isinstance(action, URIRef) else None,
        criterion=read_criterion(graph, criterion) if criterion is not None else None)


@dataclass
class Recommendation:
    iri: URIRef
    key: str
    verbatim: str
    reading: str | None
    modality: Modality
    kinds: list[str]
    section: URIRef | None
    section_title: str | None
    order: int | None
    source_line: int | None
    guideline: URIRef | None
    criterion: Criterion | None
    actions: list[Intervention]
    forbidden_actions: list[Intervention]
    regimens: list[DoseRegimen]
    sources: list[EvidenceSource]
    evidence: list[ComparativeEvidence]
    links: list[StatementLink]
    care_gap_checked: bool
    notes: list[str] = field(default_factory=list)
    preconditions: list[PreconditionCheck] = field(default_factory=list)

    @property
    def criteria_words(self) -> str:
        if self.criterion is None:
            return "no applicability criterion is recorded"
        return self.criterion.words()

    @property
    def pitfalls(self) -> list[StatementLink]:
        return [link for link in self.links if link.is_pitfall]

    @property
    def related(self) -> list[StatementLink]:
        return [link for link in self.links if not link.is_pitfall]

    @property
    def is_pitfall(self) -> bool:
        return "avoid" in self.kinds

    @property
    def facts(self) -> list[Node]:
        if self.criterion is None:
            return []
        return sorted(set(self.criterion.facts()), key=str)


def statement_key(graph: Graph, statement: Node) -> str:
    return text(graph, statement, SKOS.notation) or local_name(statement)


def _kinds(graph: Graph, statement: Node) -> list[str]:
    return sorted(text(graph, kind, SKOS.notation) or label(graph, kind)
                  for kind in graph.objects(statement, GKG.statementKind))


def _links(graph: Graph, statement: URIRef) -> list[StatementLink]:
    relations: list[tuple[Node, str]] = []
    relations += [(o, "related statement") for o in graph.objects(statement, GKG.relatedStatement)]
    relations += [(s, "related statement") for s in graph.subjects(GKG.relatedStatement, statement)]
    relations += [(o, "applies with") for o in graph.objects(statement, GKG.appliesWith)]
    relations += [(s, "qualified by") for s in graph.subjects(GKG.appliesWith, statement)]
    relations += [(o, "summarises") for o in graph.objects(statement, GKG.summarises)]
    relations += [(s, "summarised by") for s in graph.subjects(GKG.summarises, statement)]
    links: dict[tuple[URIRef, str], StatementLink] = {}
    for other, relation in relations:
        if not isinstance(other, URIRef) or other == statement:
            continue
        is_pitfall = (other, GKG.statementKind, GKG.AvoidStatement) in graph
        links[(other, relation)] = StatementLink(other, statement_key(graph, other), relation,
                                                 is_pitfall)
    # "related statement" is symmetric: a link read both ways is shown once.
    return sorted(links.values(), key=lambda link: (link.relation, _key_order(link.key)))


def _key_order(key: str) -> tuple[str, int, str]:
    match = re.match(r"^(.*?)-(\d+)$", key)
    if match:
        return match[1], int(match[2]), key
    return key, 0, key


def read_recommendation(graph: Graph, iri: URIRef) -> Recommendation:
    modality_iri = graph.value(iri, GKG.modality)
    modality = Modality(
        modality_iri if isinstance(modality_iri, URIRef) else None,
        text(graph, modality_iri, SKOS.notation) if modality_iri is not None else None,
        label(graph, modality_iri) if modality_iri is not None else None,
        text(graph, modality_iri, GKG.direction) if modality_iri is not None else None,
        text(graph, modality_iri, GKG.strength) if modality_iri is not None else None,
    )
    section = graph.value(iri, GKG.inSection)
    applicability = graph.value(iri, GKG.applicability)
    actions = [read_intervention(graph, c) for c in sorted_terms(
        graph, graph.objects(iri, GKG.recommendsAction)) if isinstance(c, URIRef)]
    forbidden = [read_intervention(graph, c) for c in sorted_terms(
        graph, graph.objects(iri, GKG.forbidsAction)) if isinstance(c, URIRef)]
    regimens = set(graph.objects(iri, GKG.hasDoseRegimen)) | set(
        graph.subjects(GKG.statedIn, iri))
    guideline = graph.value(iri, GKG.inGuideline)
    return Recommendation(
        iri=iri,
        key=statement_key(graph, iri),
        verbatim=text(graph, iri, GKG.verbatimText) or "",
        reading=text(graph, iri, GKG.reading),
        modality=modality,
        kinds=_kinds(graph, iri),
        section=section if isinstance(section, URIRef) else None,
        section_title=label(graph, section) if section is not None else None,
        order=integer(graph, iri, GKG.sectionOrder),
        source_line=integer(graph, iri, GKG.sourceLine),
        guideline=guideline if isinstance(guideline, URIRef) else None,
        criterion=read_criterion(graph, applicability) if applicability is not None else None,
        actions=actions,
        forbidden_actions=forbidden,
        regimens=[read_regimen(graph, r) for r in sorted_terms(graph, regimens)],
        sources=[read_source(graph, s) for s in sorted(
            graph.objects(iri, GKG.hasEvidenceSource), key=lambda s: _key_order(
                statement_key(graph, s)))],
        evidence=[read_evidence(graph, e) for e in sorted_terms(
            graph, graph.objects(iri, GKG.hasComparativeEvidence))],
        links=_links(graph, iri),
        care_gap_checked=flag(graph, iri, GKG.careGapChecked),
        notes=sorted(str(note) for note in graph.objects(iri, GKG.curationNote)),
        preconditions=[read_precondition(graph, c) for c in sorted_terms(
            graph, graph.objects(iri, GKG.hasPreconditionCheck)) if isinstance(c, URIRef)],
    )


@dataclass
class Section:
    iri: URIRef
    title: str
    order: int | None
    recommendations: list[Recommendation]


@dataclass
class Guideline:
    iri: URIRef
    key: str
    title: str
    question: str | None
    modified: str | None
    review_status: str | None
    review_note: str | None
    audience: str | None
    publisher: str | None
    disclaimer: str | None
    source_document: str | None
    sections: list[Section]
    recommendations: list[Recommendation]
    sources: list[EvidenceSource]

    def recommendation(self, key: str) -> Recommendation:
        for recommendation in self.recommendations:
            if recommendation.key == key:
                return recommendation
        raise KeyError(key)


def _order_key(graph: Graph, node: Node) -> tuple[int, str]:
    order = integer(graph, node, GKG.sectionOrder)
    return (order if order is not None else 10**9, str(node))


def read_guideline(graph: Graph, iri: URIRef) -> Guideline:
    statements = sorted(
        (s for s in graph.subjects(GKG.inGuideline, iri) if isinstance(s, URIRef)),
        key=lambda s: _order_key(graph, s),
    )
    recommendations = [read_recommendation(graph, s) for s in statements]
    sections: list[Section] = []
    for section in sorted(graph.objects(iri, GKG.hasSection), key=lambda s: _order_key(graph, s)):
        if not isinstance(section, URIRef):
            continue
        sections.append(Section(
            section,
            label(graph, section),
            integer(graph, section, GKG.sectionOrder),
            [r for r in recommendations if r.section == section],
        ))
    unsectioned = [r for r in recommendations if r.section not in {s.iri for s in sections}]
    if unsectioned:
        sections.append(Section(iri, "Statements outside any section", None, unsectioned))
    cited = {source.iri: source for r in recommendations for source in r.sources}
    modified = graph.value(iri, DCTERMS.modified)
    return Guideline(
        iri=iri,
        key=text(graph, iri, SKOS.notation) or local_name(iri),
        title=text(graph, iri, DCTERMS.title) or local_name(iri),
        question=text(graph, iri, GKG.clinicalQuestion),
        modified=str(modified) if modified is not None else None,
        review_status=text(graph, iri, GKG.reviewStatus),
        review_note=text(graph, iri, SKOS.editorialNote),
        audience=text(graph, iri, DCTERMS.audience),
        publisher=text(graph, iri, DCTERMS.publisher),
        disclaimer=text(graph, iri, GKG.disclaimer),
        source_document=text(graph, iri, GKG.sourceDocument),
        sections=sections,
        recommendations=recommendations,
        sources=sorted(cited.values(), key=lambda s: _key_order(s.key)),
    )


def guidelines(graph: Graph) -> list[Guideline]:
    """Every guideline of the graph, by key."""
    found = [read_guideline(graph, g) for g in graph.subjects(RDF.type, GKG.Guideline)
             if isinstance(g, URIRef)]
    return sorted(found, key=lambda g: g.key)


# ---------------------------------------------------------------------------------------
# Patient facts
# ---------------------------------------------------------------------------------------


@dataclass
class PatientFact:
    iri: URIRef
    key: str
    label: str
    kind: str
    value_type: str | None
    value_set: str | None
    values: list[str]
    unit: str | None
    silence: str | None
    value_when_silent: str | None
    recorded_as: list[tuple[URIRef, str]]
    presence_of: list[tuple[URIRef, str]]
    presence_status: list[str]
    derived_by: str | None
    fhir_source: str | None
    scope_note: str | None
    used_by: list[str] = field(default_factory=list)  # recommendation keys

    @property
    def anchor(self) -> str:
        return self.key


def read_fact(graph: Graph, iri: URIRef) -> PatientFact:
    kinds = sorted(label(graph, t) for t in graph.objects(iri, RDF.type)
                   if t != OWL.NamedIndividual)
    value_type = graph.value(iri, GKG.valueType)
    value_set = None
    values: list[str] = []
    type_text = None
    if value_type is not None:
        if (value_type, RDF.type, SKOS.ConceptScheme) in graph:
            value_set = label(graph, value_type)
            type_text = "code"
            values = [label(graph, c) + f" ({text(graph, c, SKOS.notation)})"
                      if text(graph, c, SKOS.notation) else label(graph, c)
                      for c in sorted_terms(graph, graph.subjects(SKOS.inScheme, value_type))]
        else:
            type_text = curie(value_type)
    unit = graph.value(iri, GKG.factUnit)
    silence = graph.value(iri, GKG.whenSilent)
    when_silent = graph.value(iri, GKG.valueWhenSilent)
    recorded = set(graph.objects(iri, GKG.recordedAs)) | set(graph.subjects(GKG.recordsFact, iri))
    return PatientFact(
        iri=iri,
        key=text(graph, iri, SKOS.notation) or local_name(iri),
        label=label(graph, iri),
        kind=", ".join(kinds),
        value_type=type_text,
        value_set=value_set,
        values=values,
        unit=(f"{label(graph, unit)} ({text(graph, unit, GKG.ucumCode)})"
              if unit is not None else None),
        silence=label(graph, silence) if silence is not None else None,
        value_when_silent=(str(when_silent).lower() if is_boolean(when_silent)
                           else (str(when_silent) if when_silent is not None else None)),
        recorded_as=[(c, label(graph, c)) for c in sorted_terms(graph, recorded)
                     if isinstance(c, URIRef)],
        presence_of=[(c, label(graph, c)) for c in sorted_terms(
            graph, graph.objects(iri, GKG.presenceOfClass)) if isinstance(c, URIRef)],
        presence_status=[label(graph, s) for s in sorted_terms(
            graph, graph.objects(iri, GKG.presenceStatus))],
        derived_by=text(graph, iri, GKG.derivedBy),
        fhir_source=text(graph, iri, GKG.fhirSource),
        scope_note=text(graph, iri, SKOS.scopeNote),
    )


_FACT_CLASSES = (GKG.PatientFact, GKG.ObservedFact, GKG.ItemPresenceFact, GKG.DerivedFact)


def patient_facts(graph: Graph) -> list[PatientFact]:
    """Every patient fact, with the keys of the recommendations whose criteria test it.

    Dependencies are computed from the criteria, gkg:applicability/gkg:hasMember*/gkg:onFact.
    """
    iris = {s for cls in _FACT_CLASSES for s in graph.subjects(RDF.type, cls)
            if isinstance(s, URIRef)}
    facts = {iri: read_fact(graph, iri) for iri in iris}
    path = SequencePath(GKG.applicability, MulPath(GKG.hasMember, "*"), GKG.onFact)
    for statement in graph.subjects(RDF.type, GKG.Recommendation):
        key = statement_key(graph, statement)
        for fact_iri in set(graph.objects(statement, path)):
            if isinstance(fact_iri, URIRef) and fact_iri in facts:
                facts[fact_iri].used_by.append(key)
    for fact in facts.values():
        fact.used_by.sort(key=_key_order)
    return sorted(facts.values(), key=lambda fact: fact.key)


def describe_blank_closure(graph: Graph, subject: Node) -> Iterator[tuple[Node, Node, Node]]:
    """The triples of a subject and of the blank nodes it reaches (its bounded description)."""
    pending = [subject]
    seen: set[Node] = set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        for triple in graph.triples((current, None, None)):
            yield triple
            if isinstance(triple[2], BNode):
                pending.append(triple[2])
