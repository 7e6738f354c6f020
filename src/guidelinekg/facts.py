"""The patient-fact layer: the value of every patient fact, for every patient, at a date.

Each fact of ``ontology/patient-facts.ttl`` names the query that derives it
(``gkg:derivedBy "facts/observed-facts"`` = ``queries/facts/observed-facts.rq``). The
queries are found from those names in the loaded graph, so a new fact needs a query and a
``gkg:derivedBy``, not a change here. Every query takes the evaluation date (``asOf``) and,
optionally, one patient, as bound terms; it builds gkg:FactValue nodes with IRIs made from
the patient and fact, so both engines give the same nodes and rows merge. A fact whose query
reads another fact's values says so (``gkg:readsFact``: one definition of the metastatic
diagnosis date, read by the facts that compare dates with it); the queries run in stages,
each after those it reads.

A FactValue carries ``gkg:factValue`` when the record gives the value, or
``gkg:undeterminedBecause`` when something relevant is recorded but not enough. A fact the
record is silent about gets no node: the consumer applies the fact's ``gkg:whenSilent``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from rdflib import Literal, URIRef
from rdflib.namespace import PROV, RDF, XSD
from rdflib.term import Node

from guidelinekg.namespaces import GKG, canonical_literal
from guidelinekg.sparql import QueryError, SparqlEngine, Triple, load_query

# The FactValue node's terms, by the names this module reads them with.
FACT_VALUE = GKG.FactValue
_RDF_TYPE = RDF.type
PATIENT = GKG.patient
FACT = GKG.fact
VALUE = GKG.factValue
RECORD_ITEM = GKG.recordItem
UNDETERMINED_BECAUSE = GKG.undeterminedBecause
DERIVED_FROM = PROV.wasDerivedFrom

_FACT_QUERIES = """
PREFIX gkg: <https://w3id.org/guidelinekg/ontology#>
SELECT DISTINCT ?query ?reads WHERE {
  ?fact gkg:derivedBy ?query .
  OPTIONAL { ?fact gkg:readsFact ?read . ?read gkg:derivedBy ?reads }
}
"""


def fact_query_stages(engine: SparqlEngine) -> list[list[str]]:
    """The queries the loaded facts name (gkg:derivedBy), in stages: a query whose facts read
    another fact's values (gkg:readsFact) runs in a stage after the query deriving it. Each
    stage sorted; a fact that reads itself, or facts reading each other, raise QueryError."""
    reads: dict[str, set[str]] = defaultdict(set)
    for row in engine.select(_FACT_QUERIES):
        reads[str(row["query"])].update([str(row["reads"])] if "reads" in row else [])
    stage: dict[str, int] = {}

    def stage_of(name: str, path: frozenset[str]) -> int:
        if name in path:
            raise QueryError(f"the fact queries read each other's values in a cycle: {name}")
        if name not in stage:
            stage[name] = 1 + max((stage_of(read, path | {name}) for read in reads[name]),
                                  default=-1)
        return stage[name]

    stages: list[list[str]] = []
    for name in sorted(reads):
        number = stage_of(name, frozenset())
        stages.extend([] for _ in range(number + 1 - len(stages)))
        stages[number].append(name)
    return stages


def fact_query_names(engine: SparqlEngine) -> list[str]:
    """The queries the loaded facts name (gkg:derivedBy), sorted."""
    return sorted(name for stage in fact_query_stages(engine) for name in stage)


def _fact_queries(engine: SparqlEngine, as_of: date, patient: URIRef | None
                  ) -> tuple[list[list[str]], dict[str, Node]]:
    """The fact queries the engine's facts name, in stages, and their bindings."""
    bindings: dict[str, Node] = {"asOf": Literal(as_of, datatype=XSD.date)}
    if patient is not None:
        bindings["patient"] = patient
    stages = fact_query_stages(engine)
    if not stages:
        raise QueryError("no patient fact names a query (gkg:derivedBy): is the ontology loaded?")
    return stages, bindings


def derive_facts(engine: SparqlEngine, as_of: date,
                 patient: URIRef | None = None) -> list[Triple]:
    """Every fact value of every patient (or of one patient) at ``as_of``, as triples.

    The engine must hold the guideline graph (ontology, facts, content) and the patient
    graph. The triples are returned, not added: the caller decides where they go. (The
    values a later stage reads are in the engine while it runs, and removed after.)
    """
    stages, bindings = _fact_queries(engine, as_of, patient)
    triples: list[Triple] = []
    read_later: list[Triple] = []
    try:
        for number, names in enumerate(stages):
            for name in names:
                produced = engine.construct(load_query(name).text, bindings)
                _check_fact_values(name, produced)
                triples.extend(produced)
                if number + 1 < len(stages):
                    engine.add(produced)
                    read_later.extend(produced)
    finally:
        engine.remove(read_later)
    return triples


def add_fact_values(engine: SparqlEngine, as_of: date, patient: URIRef | None = None) -> None:
    """Add every fact value (:func:`derive_facts`) to the engine, in its own terms: the
    same triples, checked the same way, without making rdflib terms of them (which cost as
    much as the queries on cohorts). The queries of a stage run side by side, and each
    stage's values are added before the next stage runs."""
    stages, bindings = _fact_queries(engine, as_of, patient)
    terms = tuple(engine.native_term(term) for term in (VALUE, FACT, _RDF_TYPE, FACT_VALUE))
    for names in stages:
        produced: list[tuple] = []
        answers = engine.construct_native_each([load_query(name).text for name in names],
                                               bindings)
        for name, triples in zip(names, answers, strict=True):
            if _fact_value_problem(triples, terms) is not None:
                derive_facts(engine, as_of, patient)  # raises, naming the node and its values
                raise QueryError(f"query {name!r} gave ill-formed fact values")
            produced.extend(triples)
        engine.add_native(produced)


def _check_fact_values(query_name: str, triples: list[Triple]) -> None:
    """A FactValue node has at most one value, and is typed gkg:FactValue (the derivation
    finds fact values by their type): otherwise the query is wrong, not the record."""
    problem = _fact_value_problem(triples, (VALUE, FACT, _RDF_TYPE, FACT_VALUE))
    if problem is None:
        return
    node, found = problem
    if found:
        shown = ", ".join(sorted(term.n3() for term in found))
        raise QueryError(f"query {query_name!r} gave {node} more than one value ({shown})")
    raise QueryError(f"query {query_name!r} gave {node} a gkg:fact without typing it "
                     "gkg:FactValue")


def _fact_value_problem(triples: list, terms: tuple) -> tuple[object, set] | None:
    """A node with more than one value (and its values), or the first node with a gkg:fact
    that is not typed gkg:FactValue (and no values); ``terms``: gkg:factValue, gkg:fact,
    rdf:type and gkg:FactValue in the triples' own terms. Values compare in canonical form
    (pyoxigraph's terms are canonical already: canonical_literal leaves them as they are)."""
    value_term, fact_term, type_term, fact_value_term = terms
    values: dict[object, set] = defaultdict(set)
    facts, typed = set(), set()
    for subject, predicate, obj in triples:
        if predicate == value_term:
            values[subject].add(canonical_literal(obj))
        elif predicate == fact_term:
            facts.add(subject)
        elif predicate == type_term and obj == fact_value_term:
            typed.add(subject)
    for node, found in values.items():
        if len(found) > 1:
            return node, found
    untyped = sorted(facts - typed, key=str)
    return (untyped[0], set()) if untyped else None


@dataclass(frozen=True)
class FactValueView:
    """One FactValue node, read back: the value is None when it is undetermined."""

    patient: Node  # an IRI in a valid record
    fact: URIRef
    value: Node | None
    record_item: Node | None  # an IRI in a valid record
    sources: frozenset[Node]
    undetermined_because: str | None

    @property
    def determined(self) -> bool:
        return self.value is not None


def read_fact_values(triples: list[Triple]) -> list[FactValueView]:
    """The FactValue nodes among the triples, one view each (sorted by patient and fact).

    Literal values are given in their canonical form (``68.50`` and ``68.5`` are one
    decimal), so views from the two engines compare equal. A node with several record items
    gives one view per item.
    """
    by_node: dict[Node, dict[Node, set[Node]]] = defaultdict(lambda: defaultdict(set))
    nodes = set()
    for subject, predicate, obj in triples:
        by_node[subject][predicate].add(obj)
        if predicate == _RDF_TYPE and obj == FACT_VALUE:
            nodes.add(subject)
    views = []
    for node in nodes:
        properties = by_node[node]
        value = _single(properties.get(VALUE, set()), node, "gkg:factValue")
        reasons = sorted(str(reason) for reason in properties.get(UNDETERMINED_BECAUSE, set()))
        # By their text, as the views are sorted in the end.
        items: list[Node | None] = sorted(properties.get(RECORD_ITEM, set()), key=str) or [None]
        patient = _required(properties.get(PATIENT, set()), node, "gkg:patient")
        fact = _required(properties.get(FACT, set()), node, "gkg:fact")
        if not isinstance(fact, URIRef):
            raise QueryError(f"{node} has a gkg:fact that is not an IRI: {fact.n3()}")
        for item in items:
            views.append(FactValueView(
                patient=patient,
                fact=fact,
                value=None if value is None else canonical_literal(value),
                record_item=item,
                sources=frozenset(properties.get(DERIVED_FROM, set())),
                undetermined_because="; ".join(reasons) or None,
            ))
    return sorted(views, key=_view_key)


def _view_key(view: FactValueView) -> tuple[str, ...]:
    return (str(view.patient), str(view.fact), str(view.record_item or ""),
            view.value.n3() if view.value is not None else "")


def _single(values: set[Node], node: Node, name: str) -> Node | None:
    if len(values) > 1:
        raise QueryError(f"{node} has more than one {name}: "
                         f"{', '.join(sorted(v.n3() for v in values))}")
    return next(iter(values), None)


def _required(values: set[Node], node: Node, name: str) -> Node:
    """The one value every FactValue node has: its absence means the query is wrong."""
    value = _single(values, node, name)
    if value is None:
        raise QueryError(f"{node} has no {name}")
    return value

