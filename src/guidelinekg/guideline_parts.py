"""The parts of a statement read into plain objects: its criteria (in words, from the labels
of their groups and fact criteria, so that the text a reader sees is the structure the
derivation evaluates; with a guard against cycles), interventions, dose regimens, evidence
sources and comparative evidence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS, SKOS
from rdflib.term import Node

from guidelinekg.graph_reading import (
    integer,
    is_boolean,
    label,
    local_name,
    number_text,
    sorted_terms,
    text,
)
from guidelinekg.namespaces import GKG, UNIT

_GROUP_KINDS = {GKG.AllOf: "all of", GKG.AnyOf: "any of", GKG.NoneOf: "none of"}
_TRAILING_PARENTHESIS = re.compile(r"\s*\([^()]*\)\s*$")


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
    if unit is not None and unit != UNIT["count"]:
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
        text(graph, evidence, GKG.studyPopulation),
        number_text(ratio) if ratio is not None else None,
    )
