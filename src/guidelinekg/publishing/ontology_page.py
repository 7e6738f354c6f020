"""The ontology's documentation page: metadata, classes, properties, value sets, units, the
other terms and the reused ones, of the core and of every domain and guideline vocabulary.
Every term of the ``gkg:`` namespace gets an anchor there, so its hash IRI
(``ontology#Term``) resolves."""

from __future__ import annotations

from collections.abc import Iterable

from rdflib import Graph, URIRef
from rdflib.namespace import OWL, RDF, RDFS, SKOS
from rdflib.term import Node

from guidelinekg.guideline_content import (
    local_name,
    read_intervention,
    sorted_terms,
    text,
)
from guidelinekg.guideline_parts import superclasses
from guidelinekg.loading import BASE
from guidelinekg.namespaces import GKG
from guidelinekg.publishing.graphs import PublishedGraph
from guidelinekg.publishing.pages import Page, optional_value_view, property_rows, value_view

_SHOWN_APART = (str(RDFS.label), str(SKOS.definition), str(SKOS.scopeNote))
_PROPERTY_KINDS = (
    ("Object properties", [OWL.ObjectProperty]),
    ("Datatype properties", [OWL.DatatypeProperty]),
    ("Annotation properties", [OWL.AnnotationProperty]),
)


class _Terms:
    """The terms of one graph in the ontology's namespace, as the page shows them."""

    def __init__(self, page: Page, graph: Graph) -> None:
        self.page = page
        self.graph = graph
        self.union = page.site.union
        self.namespace = str(GKG)

    def of_types(self, types: Iterable[URIRef]) -> list[URIRef]:
        found = {s for t in types for s in self.graph.subjects(RDF.type, t)
                 if isinstance(s, URIRef) and str(s).startswith(self.namespace)}
        return sorted_terms(self.union, found)

    def entity(self, term: URIRef) -> dict:
        return {
            "iri": str(term),
            "anchor": local_name(term),
            "compact": self.page.compact(term),
            "label": self.page.label(term),
            "definition": text(self.union, term, SKOS.definition),
            "scope_note": text(self.union, term, SKOS.scopeNote),
            "rows": [row for row in property_rows(self.page, self.graph, term)
                     if row["predicate"]["iri"] not in _SHOWN_APART],
        }

    def classes(self) -> list[dict]:
        views = []
        for cls in self.of_types([OWL.Class]):
            view = self.entity(cls)
            view["superclasses"] = [value_view(self.page, s)
                                    for s in superclasses(self.union, cls)]
            view["subclasses"] = [value_view(self.page, s) for s in sorted_terms(
                self.union, self.union.subjects(RDFS.subClassOf, cls))]
            view["codes"] = read_intervention(self.union, cls).codes
            views.append(view)
        return views

    def concept(self, concept: Node) -> dict:
        own = str(concept).startswith(self.namespace)
        return {"value": value_view(self.page, concept),
                "notation": text(self.union, concept, SKOS.notation),
                "definition": text(self.union, concept, SKOS.definition),
                "anchor": local_name(concept) if own else None,
                "rows": property_rows(self.page, self.graph, concept) if own else []}

    def schemes(self) -> list[dict]:
        schemes = (s for s in self.graph.subjects(RDF.type, SKOS.ConceptScheme)
                   if isinstance(s, URIRef))
        return [{**self.entity(scheme),
                 "concepts": [self.concept(c) for c in sorted_terms(
                     self.union, self.graph.subjects(SKOS.inScheme, scheme))]}
                for scheme in sorted_terms(self.union, schemes)]

    def others(self, covered: set[str]) -> list[dict]:
        return [self.entity(t) for t in sorted_terms(self.union, (
            s for s in self.graph.subjects() if isinstance(s, URIRef)
            and str(s).startswith(self.namespace) and str(s) not in covered))]

    def units(self) -> list[dict]:
        union = self.union
        return [{"value": value_view(self.page, u), "ucum": text(union, u, GKG.ucumCode),
                 "dimension": optional_value_view(self.page, union.value(u, GKG.dimension)),
                 "reference": optional_value_view(self.page, union.value(u, GKG.referenceUnit)),
                 "factor": text(union, u, GKG.conversionFactor)}
                for u in sorted_terms(union, self.graph.subjects(RDF.type, GKG.Unit))]

    def reused(self) -> list[dict]:
        return [value_view(self.page, t) for t in sorted_terms(self.union, (
            s for s in self.graph.subjects() if isinstance(s, URIRef)
            and not str(s).startswith(BASE)))]


def ontology_view(page: Page, graph: PublishedGraph,
                  included: list[PublishedGraph] | None = None) -> dict:
    """The ontology documentation: metadata, classes, properties, value sets, other terms.

    ``included`` are the graphs whose terms share the core's namespace (the domains, the
    guidelines' own vocabularies): their terms are documented here too, so every ``gkg:``
    hash IRI has its anchor on this page; the metadata is the core's.
    """
    merged = Graph()
    for part in [graph, *(included or [])]:
        for triple in part.graph:
            merged.add(triple)
    terms = _Terms(page, merged)
    classes = terms.classes()
    properties = [(title, [terms.entity(p) for p in terms.of_types(types)])
                  for title, types in _PROPERTY_KINDS]
    schemes = terms.schemes()
    covered = {c["iri"] for c in classes}
    covered |= {p["iri"] for _, group in properties for p in group}
    covered |= {s["iri"] for s in schemes}
    covered |= {c["value"]["iri"] for s in schemes for c in s["concepts"]}
    return {
        "metadata": property_rows(page, graph.graph, graph.iri),
        "classes": classes,
        "properties": properties,
        "schemes": schemes,
        "others": terms.others(covered),
        "units": terms.units(),
        "reused": terms.reused(),
        "included": list(included or []),
    }
