"""What the importer checks against the ontology: the class hierarchy, units and labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDFS, SKOS

from guidelinekg.fhir_import.codes import local_name
from guidelinekg.loading import merge_graphs, parse_rdf_file, vocabulary_files
from guidelinekg.namespaces import GKG


@dataclass(frozen=True)
class OntologyFacts:
    """The class hierarchy, the units by UCUM code and the English labels of the terms;
    ``names``: every English (or untagged) rdfs:label, skos:prefLabel and skos:altLabel of
    each term."""

    superclasses: dict[URIRef, frozenset[URIRef]]
    unit_dimensions: dict[str, URIRef]
    labels: dict[URIRef, str]
    names: dict[URIRef, frozenset[str]] = field(default_factory=dict)

    def is_a(self, cls: URIRef, ancestor: URIRef) -> bool:
        return cls == ancestor or ancestor in self.superclasses.get(cls, frozenset())

    def ucum_codes(self, *dimensions: URIRef) -> list[str]:
        """The UCUM codes of the units of these dimensions (``code:`` concepts)."""
        return sorted(code for code, dim in self.unit_dimensions.items() if dim in dimensions)

    def label(self, term: URIRef) -> str:
        """How the report names a term: its label, or its local name when it has none."""
        return self.labels.get(term) or local_name(term)


def ontology_facts() -> OntologyFacts:
    return _ontology_facts(tuple(vocabulary_files()))


@cache
def _ontology_facts(paths: tuple[Path, ...]) -> OntologyFacts:
    graph = merge_graphs(parse_rdf_file(path) for path in paths)
    return OntologyFacts(_superclasses(graph), _units(graph), _labels(graph), _names(graph))


def _superclasses(graph: Graph) -> dict[URIRef, frozenset[URIRef]]:
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
    return closure


def _units(graph: Graph) -> dict[str, URIRef]:
    units = {}
    for unit, ucum in graph.subject_objects(GKG.ucumCode):
        dimension = graph.value(unit, GKG.dimension)
        if isinstance(dimension, URIRef):
            units[str(ucum)] = dimension
    return units


def _labels(graph: Graph) -> dict[URIRef, str]:
    """One label per term: rdfs:label before skos:prefLabel, English before untagged."""
    ranked: dict[URIRef, tuple[int, str]] = {}
    for rank, (predicate, language) in enumerate(
            ((RDFS.label, "en"), (RDFS.label, None), (SKOS.prefLabel, "en"),
             (SKOS.prefLabel, None))):
        for term, label in graph.subject_objects(predicate):
            if isinstance(term, URIRef) and isinstance(label, Literal) \
                    and label.language == language:
                ranked[term] = min(ranked.get(term, (rank, str(label))), (rank, str(label)))
    return {term: label for term, (_, label) in ranked.items()}


def _names(graph: Graph) -> dict[URIRef, frozenset[str]]:
    found: dict[URIRef, set[str]] = {}
    for predicate in (RDFS.label, SKOS.prefLabel, SKOS.altLabel):
        for term, name in graph.subject_objects(predicate):
            if isinstance(term, URIRef) and isinstance(name, Literal) \
                    and (name.language or "en").lower().split("-")[0] == "en" \
                    and str(name).strip():
                found.setdefault(term, set()).add(str(name).strip())
    return {term: frozenset(names) for term, names in found.items()}
