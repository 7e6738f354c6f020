"""Terms named by the shapes: every sh:path, sh:class, target and prefixed name in a shape's
SPARQL must be a term the ontology declares, so that a misspelt path cannot make a shape
check nothing (step 3 of ``guidelinekg check``). Also the readable forms the check's report
gives paths, lists and files (terms are named by ``namespaces.curie``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rdflib import BNode, Graph, URIRef
from rdflib.namespace import OWL, RDF, RDFS, SH
from rdflib.term import Node

from guidelinekg.loading import parse_rdf_file
from guidelinekg.namespaces import curie, expand_curie
from guidelinekg.resources import resource_root

PROPERTY_TYPES = (OWL.ObjectProperty, OWL.DatatypeProperty, OWL.AnnotationProperty, RDF.Property)
CLASS_TYPES = (OWL.Class, RDFS.Class)
# Terms OWL 2 itself defines, usable without a declaration in the ontology (rdf:type and
# the built-in annotation properties). Standard terms of other vocabularies (SKOS, DCTERMS,
# PROV) must be declared by the ontology like its own.
BUILT_IN_PROPERTIES = frozenset([
    RDF.type, RDFS.label, RDFS.comment, RDFS.seeAlso, RDFS.isDefinedBy, RDFS.subClassOf,
    RDFS.subPropertyOf, OWL.deprecated, OWL.versionInfo, OWL.priorVersion,
    OWL.backwardCompatibleWith, OWL.incompatibleWith, OWL.sameAs,
])
BUILT_IN_CLASSES = frozenset([OWL.Thing, RDFS.Resource, RDFS.Literal])
PATH_OPERATORS = (SH.inversePath, SH.alternativePath, SH.zeroOrMorePath, SH.oneOrMorePath,
                  SH.zeroOrOnePath)
# The project's own namespaces: a prefixed name in a shape's SPARQL must name a term the
# ontology has.
PROJECT_PREFIXES = ("gkg", "fact", "code", "unit")
_PREFIXED_NAME = re.compile(r"(?<![\w:/#-])(" + "|".join(PROJECT_PREFIXES) + r"):([A-Za-z_][\w-]*)")


def rdf_list(graph: Graph, node: Node) -> list[Node] | None:
    if node == RDF.nil:
        return []
    if graph.value(node, RDF.first) is None:
        return None
    return list(graph.items(node))


def path_label(path: Node | None, graph: Graph) -> str:
    if path is None:
        return ""
    if isinstance(path, URIRef):
        return curie(path)
    items = rdf_list(graph, path)
    if items is not None:
        return "/".join(path_label(item, graph) for item in items)
    inverse = graph.value(path, SH.inversePath)
    if inverse is not None:
        return "^" + path_label(inverse, graph)
    return "[path]"


def display_path(path: Path) -> str:
    path = Path(path).resolve()
    try:
        return path.relative_to(resource_root().resolve()).as_posix()
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class ShapeTermProblem:
    """A term a shapes file names that the ontology does not declare."""

    file: str
    shape: str
    role: str  # sh:path, sh:class, sh:targetClass, SPARQL, ...
    term: str
    reason: str



def _declared(ontology: Graph, types: Sequence[URIRef]) -> set[Node]:
    return {s for kind in types for s in ontology.subjects(RDF.type, kind)}


def _shape_owner(shapes: Graph, node: Node) -> str:
    """The readable name of the shape a node belongs to (climbing from a blank node)."""
    seen = set()
    while isinstance(node, BNode) and node not in seen:
        seen.add(node)
        name = shapes.value(node, SH.name)
        if name is not None:
            return str(name)
        parent = next(shapes.subjects(None, node), None)
        if parent is None:
            break
        node = parent
    name = shapes.value(node, SH.name)
    return str(name) if name is not None else curie(node)


def _path_properties(shapes: Graph, path: Node) -> Iterator[tuple[Node | None, str]]:
    """The properties a SHACL path is made of, or (None, reason) for a malformed path."""
    if isinstance(path, URIRef):
        yield path, ""
        return
    items = rdf_list(shapes, path)
    if items is not None:  # a sequence path
        if not items:
            yield None, "empty sequence path"
        for item in items:
            yield from _path_properties(shapes, item)
        return
    for operator in PATH_OPERATORS:
        inner = shapes.value(path, operator)
        if inner is None:
            continue
        if operator == SH.alternativePath:
            alternatives = rdf_list(shapes, inner)
            if not alternatives:
                yield None, "sh:alternativePath needs a non-empty list"
                return
            for item in alternatives:
                yield from _path_properties(shapes, item)
        else:
            yield from _path_properties(shapes, inner)
        return
    yield None, "not a SHACL property path"


def undeclared_shape_terms(shape_files: Sequence[Path], ontology: Graph) -> list[ShapeTermProblem]:
    """Every sh:path property, sh:class / sh:targetClass class and project term in the
    shapes' SPARQL that the ontology does not declare."""
    properties = _declared(ontology, PROPERTY_TYPES) | BUILT_IN_PROPERTIES
    classes = _declared(ontology, CLASS_TYPES) | BUILT_IN_CLASSES
    known_terms = set(ontology.subjects())
    problems: list[ShapeTermProblem] = []
    for path in shape_files:
        shapes = parse_rdf_file(path)
        where = display_path(path)
        found = [*_path_problems(shapes, properties),
                 *_target_problems(shapes, properties, classes),
                 *_sparql_problems(shapes, known_terms)]
        problems.extend(ShapeTermProblem(where, _shape_owner(shapes, node), role, term, reason)
                        for node, role, term, reason in found)
    problems.sort(key=lambda p: (p.file, p.shape, p.role, p.term))
    return problems


_TermProblem = tuple[Node, str, str, str]  # (shape node, role, term, reason)


def _path_problems(shapes: Graph, properties: set[Node]) -> Iterator[_TermProblem]:
    for shape, shape_path in shapes.subject_objects(SH.path):
        for prop, malformed in _path_properties(shapes, shape_path):
            if prop is None:
                yield shape, "sh:path", path_label(shape_path, shapes), malformed
            elif prop not in properties:
                yield shape, "sh:path", curie(prop), "not a property the ontology declares"


def _target_problems(shapes: Graph, properties: set[Node], classes: set[Node]
                     ) -> Iterator[_TermProblem]:
    for role in (SH.targetSubjectsOf, SH.targetObjectsOf):
        for shape, prop in shapes.subject_objects(role):
            if prop not in properties:
                yield shape, curie(role), curie(prop), "not a property the ontology declares"
    for role in (SH["class"], SH.targetClass):
        for shape, cls in shapes.subject_objects(role):
            if cls not in classes:
                yield shape, curie(role), curie(cls), "not a class the ontology declares"


def _sparql_problems(shapes: Graph, known_terms: set[Node]) -> Iterator[_TermProblem]:
    for role in (SH.select, SH.ask):
        for shape, text in shapes.subject_objects(role):
            for prefix, local in sorted(set(_PREFIXED_NAME.findall(str(text)))):
                if expand_curie(f"{prefix}:{local}") not in known_terms:
                    yield shape, "SPARQL", f"{prefix}:{local}", "a term the ontology does not have"
