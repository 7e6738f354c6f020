"""The guideline graph read into plain objects, for the published pages and the FHIR export.

Everything here is read from the graph as curated; nothing is added. A criterion is rendered
in words from the labels of its groups and fact criteria (and the facts' skos:prefLabel), so
the text a reader sees is the structure the derivation evaluates. Reading uses rdflib's graph
API (no SPARQL text is built), with a guard against cycles in the criteria tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS, SH, SKOS, XSD
from rdflib.paths import MulPath, SequencePath
from rdflib.term import Node

from guidelinekg.loading import PREFIXES

GKG = Namespace(PREFIXES["gkg"])

_GROUP_KINDS = {GKG.AllOf: "all of", GKG.AnyOf: "any of", GKG.NoneOf: "none of"}
_TRAILING_PARENTHESIS = re.compile(r"\s*\([^()]*\)\s*$")


def text(graph: Graph, subject: Node, *predicates: URIRef) -> str | None:
    """The first value of the first predicate that has one (English or untagged preferred)."""
    for predicate in predicates:
        values = sorted(graph.objects(subject, predicate), key=_language_rank)
        if values:
            return str(values[0])
    return None


def _language_rank(value: Node) -> tuple[int, str]:
    if isinstance(value, Literal):
        rank = 0 if value.language in (None, "en") else 1
        return rank, str(value)
    return 2, str(value)


def local_name(iri: Node) -> str:
    value = str(iri)
    for separator in ("#", "/"):
        if separator in value:
            value = value.rsplit(separator, 1)[1] or value
    return value


def label(graph: Graph, term: Node) -> str:
    """What a reader calls a term: its preferred label, label, title or notation."""
    if isinstance(term, Literal):
        return str(term)
    found = text(graph, term, SKOS.prefLabel, RDFS.label, DCTERMS.title, SH.name,
                 GKG.sourceTitle, SKOS.notation)
    return found if found is not None else local_name(term)


_TermT = TypeVar("_TermT", bound=Node)


def sorted_terms(graph: Graph, terms: Iterable[_TermT]) -> list[_TermT]:
    """Terms in reading order: by label, then by IRI (stable)."""
    return sorted(set(terms), key=lambda term: (label(graph, term).casefold(), str(term)))


def integer(graph: Graph, subject: Node, predicate: URIRef) -> int | None:
    value = graph.value(subject, predicate)
    if isinstance(value, Literal):
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    return None


def number_text(value: Node) -> str:
    """A number as written for a reader: 120.0 -> 120, 0.47 -> 0.47."""
    if isinstance(value, Literal) and value.datatype in (XSD.decimal, XSD.double, XSD.float,
                                                         XSD.integer):
        number = value.toPython()
        if isinstance(number, float | int) or hasattr(number, "normalize"):
            rendered = format(number, "f") if not isinstance(number, int) else str(number)
            if "." in rendered:
                rendered = rendered.rstrip("0").rstrip(".")
            return rendered
    return str(value)


def is_boolean(value: Node | None) -> bool:
    return isinstance(value, Literal) and value.datatype == XSD.boolean


def _flag(graph: Graph, subject: Node, predicate: URIRef) -> bool:
    """A yes/no property (an xsd:boolean literal); absent is no."""
    value = graph.value(subject, predicate)
    if value is None:
        return False
    if not isinstance(value, Literal):
        raise ValueError(f"{subject}: {predicate} is {value}, not a literal (true or false)")
    return bool(value.toPython())


# ---------------------------------------------------------------------------------------
# Criteria
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    """One node of a criteria tree: a group (all of / any of / none of) or a fact criterion."""

    iri: Node
    kind: str  # "all of", "any of", "none of" or "fact"
    label: str
    members: tuple[Criterion, ...] = ()
    fact: Node | None = None
    fact_label: str | None = None
    operator: str | None = None
    expected: tuple[str, ...] = ()
    threshold: str | None = None
    unit: str | None = None
    silence: str | None = None

    @property
    def is_group(self) -> bool:
        return self.kind != "fact"

    @property
    def is_every_patient(self) -> bool:
        return self.kind == "all of" and not self.members

    def condition_text(self) -> str:
        """The fact test in words: 'HER2 status is negative', 'age ... is less than 55'."""
        if self.is_group or self.fact_label is None:
            return self.label
        parts = [self.fact_label, self.operator or "is"]
        if self.threshold is not None:
            parts.append(self.threshold + (f" {self.unit}" if self.unit else ""))
        elif self.expected:
            parts.append(" or ".join(self.expected))
        return " ".join(parts)

    def words(self, top: bool = True) -> str:
        """The tree on one line: 'all of: HR-positive (any of: ER positive, PR positive); ...'."""
        if not self.is_group:
            return self.label
        if self.is_every_patient:
            return f"{self.label} (no condition)" if top else self.label
        separator = "; " if top else ", "
        inner = separator.join(member.words(top=False) for member in self.members)
        if top:
            return f"{self.kind}: {inner}"
        name = _TRAILING_PARENTHESIS.sub("", self.label) or self.label
        return f"{name} ({self.kind}: {inner})"

    def facts(self) -> Iterator[Node]:
        if self.fact is not None:
            yield self.fact
        for member in self.members:
            yield from member.facts()


def read_criterion(graph: Graph, node: Node, _seen: frozenset[Node] = frozenset()) -> Criterion:
    """The criteria tree under a criterion (a cycle is cut and named, never followed)."""
    name = label(graph, node)
    if node in _seen:
        return Criterion(node, "fact", f"{name} (cycle in the criteria tree)")
    seen = _seen | {node}
    types = set(graph.objects(node, RDF.type))
    for group_class, kind in _GROUP_KINDS.items():
        if group_class in types:
            members = tuple(sorted(
                (read_criterion(graph, member, seen)
                 for member in graph.objects(node, GKG.hasMember)),
                # Groups first, then fact criteria, each by label: RDF has no member order.
                key=lambda c: (not c.is_group, c.label.casefold(), str(c.iri)),
            ))
            return Criterion(node, kind, name, members)
    fact = graph.value(node, GKG.onFact)
    operator = graph.value(node, GKG.operator)
    expected = tuple(
        str(value).lower() if is_boolean(value) else label(graph, value)
        for value in sorted(graph.objects(node, GKG.expectedValue), key=str)
    )
    threshold = graph.value(node, GKG.threshold)
    unit = graph.value(fact, GKG.factUnit) if fact is not None else None
    unit_text = None
    if unit is not None and unit != URIRef(PREFIXES["unit"] + "count"):
        unit_text = text(graph, unit, GKG.ucumCode) or label(graph, unit)
    silence = graph.value(fact, GKG.whenSilent) if fact is not None else None
    return Criterion(
        node,
        "fact",
        name,
        fact=fact,
        fact_label=label(graph, fact) if fact is not None else None,
        operator=label(graph, operator) if operator is not None else None,
        expected=expected,
        threshold=number_text(threshold) if threshold is not None else None,
        unit=unit_text,
        silence=label(graph, silence) if silence is not None else None,
    )


# ---------------------------------------------------------------------------------------
# Interventions, doses, evidence
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Code:
    system: str  # "RxNorm", "SNOMED CT", "guidelinekg finding"
    code: str


@dataclass(frozen=True)
class Intervention:
    iri: URIRef
    label: str
    definition: str | None
    codes: tuple[Code, ...]
    superclasses: tuple[URIRef, ...]

    @property
    def anchor(self) -> str:
        return local_name(self.iri)


def read_intervention(graph: Graph, iri: URIRef) -> Intervention:
    codes = [Code("RxNorm", str(c)) for c in sorted(graph.objects(iri, GKG.rxnormCode), key=str)]
    codes += [Code("SNOMED CT", str(c)) for c in sorted(graph.objects(iri, GKG.snomedCode),
                                                         key=str)]
    codes += [Code("guidelinekg finding", str(c))
              for c in sorted(graph.objects(iri, GKG.findingCode), key=str)]
    return Intervention(
        iri,
        label(graph, iri),
        text(graph, iri, SKOS.definition),
        tuple(codes),
        tuple(superclasses(graph, iri)),
    )


def superclasses(graph: Graph, iri: URIRef) -> list[URIRef]:
    """All named superclasses (transitively), nearest first, without cycles."""
    found: list[URIRef] = []
    frontier = [iri]
    while frontier:
        current = frontier.pop(0)
        for parent in sorted(graph.objects(current, RDFS.subClassOf), key=str):
            if isinstance(parent, URIRef) and parent not in found and parent != iri:
                found.append(parent)
                frontier.append(parent)
    return found


@dataclass(frozen=True)
class DoseStep:
    iri: Node
    order: int | None
    phase: str | None
    amount: str | None
    amount_value: float | None
    unit: str | None
    per_body_weight: bool
    route: str | None
    route_snomed: str | None
    frequency: int | None
    period: str | None
    period_value: float | None
    period_max: str | None
    period_max_value: float | None
    period_unit: str | None
    count: int | None
    count_min: int | None
    infusion_duration: str | None
    infusion_duration_value: float | None
    infusion_duration_unit: str | None
    fractions: int | None
    as_written: str | None

    def words(self) -> str:
        """The step in words from its structure (not from the text as written)."""
        parts: list[str] = []
        if self.amount is not None:
            dose = f"{self.amount} {self.unit}" if self.unit else self.amount
            parts.append(dose)
        if self.route:
            parts.append(self.route)
        if self.infusion_duration is not None:
            parts.append(f"over {self.infusion_duration} {self.infusion_duration_unit or ''}"
                         .strip())
        if self.period is not None:
            period = self.period if self.period_max is None else f"{self.period}-{self.period_max}"
            times = "" if self.frequency in (None, 1) else f"{self.frequency} times "
            parts.append(f"{times}every {period} {self.period_unit or ''}".strip())
        if self.count is not None:
            parts.append("once" if self.count == 1 else f"{self.count} administrations")
        if self.count_min is not None:
            parts.append(f"at least {self.count_min} administrations")
        if self.fractions is not None:
            parts.append("in a single fraction" if self.fractions == 1
                         else f"in {self.fractions} fractions")
        return ", ".join(parts)


def _decimal(graph: Graph, subject: Node, predicate: URIRef) -> tuple[str | None, float | None]:
    value = graph.value(subject, predicate)
    if value is None:
        return None, None
    try:
        # The lexical form: an rdflib Literal has no __float__.
        return number_text(value), float(str(value))
    except (TypeError, ValueError):
        return str(value), None


def read_dose_step(graph: Graph, step: Node) -> DoseStep:
    amount, amount_value = _decimal(graph, step, GKG.doseAmount)
    period, period_value = _decimal(graph, step, GKG.period)
    period_max, period_max_value = _decimal(graph, step, GKG.periodMax)
    infusion, infusion_value = _decimal(graph, step, GKG.infusionDuration)
    route = graph.value(step, GKG.route)
    phase = graph.value(step, GKG.dosePhase)
    per_weight = graph.value(step, GKG.perBodyWeight)
    return DoseStep(
        iri=step,
        order=integer(graph, step, GKG.stepOrder),
        phase=label(graph, phase) if phase is not None else None,
        amount=amount,
        amount_value=amount_value,
        unit=text(graph, step, GKG.doseUnit),
        per_body_weight=bool(per_weight.toPython()) if isinstance(per_weight, Literal) else False,
        route=label(graph, route) if route is not None else None,
        route_snomed=text(graph, route, GKG.snomedCode) if route is not None else None,
        frequency=integer(graph, step, GKG.frequency),
        period=period,
        period_value=period_value,
        period_max=period_max,
        period_max_value=period_max_value,
        period_unit=text(graph, step, GKG.periodUnit),
        count=integer(graph, step, GKG["count"]),
        count_min=integer(graph, step, GKG.countMin),
        infusion_duration=infusion,
        infusion_duration_value=infusion_value,
        infusion_duration_unit=text(graph, step, GKG.infusionDurationUnit),
        fractions=integer(graph, step, GKG.fractions),
        as_written=text(graph, step, GKG.doseText),
    )


@dataclass(frozen=True)
class DoseRegimen:
    iri: Node
    label: str
    intervention: Intervention | None
    steps: tuple[DoseStep, ...]
    condition: Criterion | None
    notes: tuple[str, ...]

    @property
    def anchor(self) -> str:
        return local_name(self.iri)


def read_regimen(graph: Graph, regimen: Node) -> DoseRegimen:
    target = graph.value(regimen, GKG.regimenFor)
    steps = [read_dose_step(graph, step) for step in graph.objects(regimen, GKG.hasStep)]
    steps.sort(key=lambda step: (step.order is None, step.order or 0, str(step.iri)))
    condition = graph.value(regimen, GKG.regimenCondition)
    return DoseRegimen(
        regimen,
        label(graph, regimen),
        read_intervention(graph, target) if isinstance(target, URIRef) else None,
        tuple(steps),
        read_criterion(graph, condition) if condition is not None else None,
        tuple(sorted(str(note) for note in graph.objects(regimen, GKG.curationNote))),
    )


@dataclass(frozen=True)
class EvidenceSource:
    iri: Node
    key: str
    title: str | None
    publisher: str | None
    year: str | None
    source_type: str | None
    unresolved: bool
    notes: tuple[str, ...]

    @property
    def display(self) -> str:
        """How a citation is shown: its title, or 'unresolved citation REF-4'."""
        if self.unresolved or not self.title:
            return f"unresolved citation {self.key}"
        return self.title


def read_source(graph: Graph, source: Node) -> EvidenceSource:
    return EvidenceSource(
        source,
        text(graph, source, SKOS.notation) or local_name(source),
        text(graph, source, GKG.sourceTitle),
        text(graph, source, GKG.sourcePublisher),
        text(graph, source, GKG.publicationYear),
        text(graph, source, GKG.sourceType),
        (source, RDF.type, GKG.UnresolvedCitation) in graph,
        tuple(sorted(str(note) for note in graph.objects(source, GKG.curationNote))),
    )


@dataclass(frozen=True)
class ComparativeEvidence:
    iri: Node
    label: str
    intervention: str | None
    comparator: str | None
    outcomes: tuple[str, ...]
    conclusion: str | None
    population: str | None
    hazard_ratio: str | None


def read_evidence(graph: Graph, evidence: Node) -> ComparativeEvidence:
    intervention = graph.value(evidence, GKG.intervention)
    comparator = graph.value(evidence, GKG.comparator)
    conclusion = graph.value(evidence, GKG.conclusion)
    ratio = graph.value(evidence, GKG.hazardRatio)
    return ComparativeEvidence(
        evidence,
        label(graph, evidence),
        label(graph, intervention) if intervention is not None else None,
        label(graph, comparator) if comparator is not None else None,
        tuple(label(graph, o) for o in sorted_terms(graph, graph.objects(evidence, GKG.outcome))),
        label(graph, conclusion) if conclusion is not None else None,
        text(graph, evidence, GKG.population),
        number_text(ratio) if ratio is not None else None,
    )


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
        care_gap_checked=_flag(graph, iri, GKG.careGapChecked),
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
            type_text = PREFIXES_INVERSE.get(str(value_type), str(value_type))
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


PREFIXES_INVERSE = {
    str(XSD.boolean): "xsd:boolean",
    str(XSD.integer): "xsd:integer",
    str(XSD.decimal): "xsd:decimal",
    str(XSD.date): "xsd:date",
    str(XSD.string): "xsd:string",
}

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
