"""The SHACL shapes as pages show them: each node shape with its targets, severity, messages,
constraints in words, property shapes (paths in SPARQL syntax), the patient facts it concerns
and the statements its messages name."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS, SH, SKOS
from rdflib.term import Node

from guidelinekg.guideline_content import describe_blank_closure, local_name, sorted_terms, text
from guidelinekg.namespaces import expand_curie
from guidelinekg.publishing.formats import _term_key
from guidelinekg.publishing.pages import Page, value_view


def shape_path_text(graph: Graph, path: Node, compact: Callable[[Node], str]) -> str:
    """A SHACL property path in SPARQL path syntax."""
    if isinstance(path, URIRef):
        return compact(path)
    if (path, RDF.first, None) in graph:
        return "/".join(shape_path_text(graph, item, compact)
                        for item in graph.items(path))
    for predicate, operator in ((SH.inversePath, "^{}"), (SH.zeroOrMorePath, "({})*"),
                                (SH.oneOrMorePath, "({})+"), (SH.zeroOrOnePath, "({})?")):
        inner = graph.value(path, predicate)
        if inner is not None:
            return operator.format(shape_path_text(graph, inner, compact))
    alternatives = graph.value(path, SH.alternativePath)
    if alternatives is not None:
        return "(" + "|".join(shape_path_text(graph, item, compact)
                              for item in graph.items(alternatives)) + ")"
    return "(path)"


_CONSTRAINT_WORDS: dict[URIRef, str] = {
    SH.datatype: "datatype", SH["class"]: "instance of", SH.nodeKind: "node kind",
    SH.minCount: "at least", SH.maxCount: "at most", SH.hasValue: "has value",
    SH.pattern: "matches", SH.minInclusive: "≥", SH.maxInclusive: "≤",
    SH.minExclusive: ">", SH.maxExclusive: "<", SH.node: "conforms to",
    SH.minLength: "length at least", SH.maxLength: "length at most",
}
_LOGICAL_WORDS: dict[URIRef, str] = {SH["or"]: "any of", SH["and"]: "all of",
                                     SH.xone: "exactly one of"}
_SHAPE_TEXT_KEYS = {SH.path, SH.message, SH.severity, SH.name, SH.description, SH.order,
                    SH.group, RDF.type, SH.property, SH.targetClass, SH.targetNode,
                    SH.targetSubjectsOf, SH.targetObjectsOf, SH.sparql, SH.deactivated,
                    SH.target, SH.prefixes, SH.declare, SH.select, SH.ask,
                    RDFS.label, RDFS.comment, SKOS.definition}
_TARGET_WORDS = ((SH.targetClass, "every"), (SH.targetNode, "the node"),
                 (SH.targetSubjectsOf, "subjects of"), (SH.targetObjectsOf, "objects of"))


def _constraint_text(page: Page, graph: Graph, predicate: Node, value: Node) -> str:
    """One constraint of a shape in words."""
    if predicate == SH["in"]:
        return "one of: " + ", ".join(page.label(item) for item in graph.items(value))
    if isinstance(predicate, URIRef) and predicate in _LOGICAL_WORDS:
        parts = [_shape_words(page, graph, item) for item in graph.items(value)]
        return f"{_LOGICAL_WORDS[predicate]}: " + " | ".join(parts)
    if predicate == SH["not"]:
        return f"not [{_shape_words(page, graph, value)}]"
    if isinstance(predicate, URIRef) and predicate in _CONSTRAINT_WORDS:
        shown = str(value) if isinstance(value, Literal) else (
            page.compact(value) if predicate in (SH.datatype, SH.nodeKind)
            else page.label(value))
        return f"{_CONSTRAINT_WORDS[predicate]} {shown}"
    if isinstance(value, BNode):
        inner = "; ".join(_constraint_texts(page, graph, value))
        return f"{page.compact(predicate)} [{inner}]"
    return f"{page.compact(predicate)} {page.label(value)}"


def _constraint_texts(page: Page, graph: Graph, shape: Node) -> list[str]:
    return [_constraint_text(page, graph, predicate, value)
            for predicate in sorted(set(graph.predicates(shape)), key=str)
            if predicate not in _SHAPE_TEXT_KEYS
            for value in sorted(graph.objects(shape, predicate), key=_term_key)]


def _shape_words(page: Page, graph: Graph, shape: Node) -> str:
    if isinstance(shape, URIRef):
        return text(graph, shape, SH.name) or page.label(shape)
    parts = _constraint_texts(page, graph, shape)
    for prop in graph.objects(shape, SH.property):
        path = graph.value(prop, SH.path)
        shown = shape_path_text(graph, path, page.compact) if path is not None else ""
        parts.append(f"{shown}: {'; '.join(_constraint_texts(page, graph, prop))}")
    return "; ".join(parts) or "(any node)"


def _severity(graph: Graph, shape: Node, default: str = "Violation") -> str:
    severity = graph.value(shape, SH.severity)
    return local_name(severity) if severity is not None else default


def _mentioned_iris(graph: Graph, shape: Node) -> set[URIRef]:
    """The IRIs a shape names, in its triples or in the text of its SPARQL and messages."""
    mentioned: set[URIRef] = set()
    for _, _, obj in describe_blank_closure(graph, shape):
        if isinstance(obj, URIRef):
            mentioned.add(obj)
        elif isinstance(obj, Literal):
            for iri in re.findall(r"<(https?://[^>\s]+)>", str(obj)):
                mentioned.add(URIRef(iri))
            for prefix, local in re.findall(r"\b(gkg|fact|code|unit):([A-Za-z][\w-]*)", str(obj)):
                mentioned.add(expand_curie(f"{prefix}:{local}"))
    return mentioned


def shape_anchor(shape: Node) -> str:
    """The id of a shape on its page: the IRI's fragment or local name."""
    if isinstance(shape, URIRef):
        return local_name(shape)
    return f"shape-b{shape}"


def _node_shapes(shapes: Graph) -> list[Node]:
    node_shapes = set(shapes.subjects(RDF.type, SH.NodeShape))
    node_shapes |= {s for p in (SH.targetClass, SH.targetNode, SH.targetSubjectsOf,
                                SH.targetObjectsOf, SH.target) for s in shapes.subjects(p, None)}
    # Only shapes a reader can name: blank nodes nested in other shapes are shown inside them.
    return sorted((s for s in node_shapes if isinstance(s, URIRef)
                   or not any(True for _ in shapes.subject_predicates(s))), key=_term_key)


def _targets(page: Page, shapes: Graph, shape: Node) -> list[dict]:
    targets = []
    for predicate, words in _TARGET_WORDS:
        targets += [{"words": words, "value": value_view(page, t)}
                    for t in sorted_terms(page.site.union, shapes.objects(shape, predicate))]
    for target in sorted(shapes.objects(shape, SH.target), key=_term_key):
        kind = shapes.value(target, RDF.type)
        targets.append({"words": "the nodes selected by",
                        "value": {"text": "a SPARQL target" if kind == SH.SPARQLTarget
                                  else page.compact(kind) if kind is not None
                                  else "a custom target", "href": None,
                                  "note": None, "iri": None}})
    return targets


def _property_views(page: Page, shapes: Graph, shape: Node,
                    anchors_used: set[str]) -> list[dict[str, Any]]:
    """The template views of a node shape's property shapes."""
    properties: list[dict[str, Any]] = []
    for prop in sorted(shapes.objects(shape, SH.property), key=_term_key):
        path = shapes.value(prop, SH.path)
        anchor = shape_anchor(prop) if isinstance(prop, URIRef) else None
        if anchor in anchors_used:
            anchor = None  # a property shape shared by several node shapes: id once
        elif anchor:
            anchors_used.add(anchor)
        properties.append({
            "iri": str(prop) if isinstance(prop, URIRef) else None,
            "anchor": anchor,
            "path": shape_path_text(shapes, path, page.compact) if path is not None
            else "(no path)",
            "name": text(shapes, prop, SH.name),
            "constraints": _constraint_texts(page, shapes, prop),
            "severity": _severity(shapes, prop, _severity(shapes, shape)),
            "messages": sorted(str(m) for m in shapes.objects(prop, SH.message)),
        })
    return properties


def _sparql_views(shapes: Graph, shape: Node) -> list[dict[str, Any]]:
    return [{"messages": sorted(str(m) for m in shapes.objects(constraint, SH.message)),
             "severity": _severity(shapes, constraint, _severity(shapes, shape))}
            for constraint in sorted(shapes.objects(shape, SH.sparql), key=_term_key)]


class _FactIndex:
    """Which patient facts a shape concerns: the facts it names, and those recorded as (or
    present as) a class it names."""

    def __init__(self, page: Page) -> None:
        self.of_class: dict[Node, set[str]] = {}
        for fact in page.site.facts:
            for cls, _ in fact.recorded_as + fact.presence_of:
                self.of_class.setdefault(cls, set()).add(fact.key)
        self.keys = {f.iri: f.key for f in page.site.facts}

    def concerned(self, mentioned: set[URIRef]) -> list[str]:
        facts = {self.keys[iri] for iri in mentioned if iri in self.keys}
        for iri in mentioned:
            facts |= self.of_class.get(iri, set())
        return sorted(facts)


def _shape_view(page: Page, shapes: Graph, shape: Node, facts: _FactIndex,
                anchors_used: set[str], guideline: str | None) -> dict[str, Any]:
    properties = _property_views(page, shapes, shape, anchors_used)
    sparql = _sparql_views(shapes, shape)
    messages = sorted(str(m) for m in shapes.objects(shape, SH.message))
    all_messages = messages + [m for p in properties for m in p["messages"]] + [
        m for s in sparql for m in s["messages"]]
    name = text(shapes, shape, SH.name)
    return {
        "iri": str(shape) if isinstance(shape, URIRef) else None,
        "anchor": shape_anchor(shape),
        "href": page.href(shape),
        "label": (name or page.label(shape)) if isinstance(shape, URIRef)
        else (name or "(unnamed shape)"),
        "description": text(shapes, shape, SH.description, RDFS.comment),
        "targets": _targets(page, shapes, shape),
        "severity": _severity(shapes, shape),
        "messages": messages,
        "constraints": _constraint_texts(page, shapes, shape),
        "properties": properties,
        "sparql": sparql,
        "facts": facts.concerned(_mentioned_iris(shapes, shape)),
        "statements": page.statement_links(page.statements_named(" ".join(all_messages),
                                                                  guideline)),
        "severities": sorted({_severity(shapes, shape)} | {p["severity"] for p in properties}
                             | {s["severity"] for s in sparql}),
    }


def shapes_view(page: Page, shapes: Graph, guideline: str | None = None) -> list[dict]:
    """The node shapes: targets, severity, messages, property constraints, facts concerned,
    statements named (a guideline's shapes name that guideline's statements)."""
    facts = _FactIndex(page)
    anchors_used: set[str] = set()
    return [_shape_view(page, shapes, shape, facts, anchors_used, guideline)
            for shape in _node_shapes(shapes)]
