"""Patient records: the patient shapes and the core ontology they are checked with, and how
a record item names its patient.

Shared by the validation (``validation.py``) and the record-vocabulary pass
(``record_vocabulary.py``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from rdflib import BNode, Graph, URIRef
from rdflib.collection import Collection
from rdflib.namespace import OWL, RDF, SH
from rdflib.term import Node

from guidelinekg.loading import (
    bind_project_prefixes,
    merge_graphs,
    parse_rdf_file,
    vocabulary_files,
)
from guidelinekg.namespaces import GKG
from guidelinekg.resources import modules, shapes_dir

PATIENT_SHAPES = "patient.ttl"
PROPERTY_KINDS = (OWL.ObjectProperty, OWL.DatatypeProperty, OWL.AnnotationProperty,
                  RDF.Property)
# RDF's own rdf:type is no ontology property, but a path may walk it.
BUILT_IN_PATH_PROPERTIES = frozenset({RDF.type})
# Blank nodes nested deeper than this are not climbed to find their patient.
MAX_NESTING = 50


# ---------------------------------------------------------------------------------------
# Shapes and ontology
# ---------------------------------------------------------------------------------------


def shape_files() -> list[Path]:
    """The core's patient shapes, then every domain's and guideline's (``shapes/*.ttl``
    in its folder: the generated completeness warnings among them)."""
    return [shapes_dir() / PATIENT_SHAPES] + [
        path for module in modules() if module.kind != "core" for path in module.shape_files()]


def patient_shapes() -> Graph:
    """The patient shapes (violations, notes and the generated warnings), parsed once."""
    return _patient_shapes(tuple(shape_files()))


@cache
def _patient_shapes(paths: tuple[Path, ...]) -> Graph:
    return bind_project_prefixes(merge_graphs(parse_rdf_file(path) for path in paths))


def core_ontology() -> Graph:
    """The vocabulary records are checked with: the core, the domains and each guideline's
    own terms (classes, value sets, units, facts). Guideline content stays out: its dose
    steps would be validated as if they were a patient's doses."""
    return _vocabulary(tuple(vocabulary_files()))


@cache
def _vocabulary(paths: tuple[Path, ...]) -> Graph:
    return merge_graphs(parse_rdf_file(path) for path in paths)


def path_properties(shapes: Graph, path: Node) -> set[URIRef]:
    """Every property IRI in a SHACL property path (sequence, alternative, inverse, ...)."""
    if isinstance(path, URIRef):
        return {path}
    found: set[URIRef] = set()
    if isinstance(path, BNode):
        if shapes.value(path, RDF.first) is not None:
            for member in Collection(shapes, path):
                found |= path_properties(shapes, member)
        for predicate in (SH.inversePath, SH.alternativePath, SH.zeroOrMorePath,
                          SH.oneOrMorePath, SH.zeroOrOnePath):
            for inner in shapes.objects(path, predicate):
                found |= path_properties(shapes, inner)
    return found


def undeclared_shape_paths(shapes: Graph, ontology: Graph) -> list[tuple[Node, URIRef]]:
    """(shape, property) for every property an sh:path uses that the ontology does not
    declare as a property (rdf:type aside). Empty when all paths are declared."""
    declared = {subject for kind in PROPERTY_KINDS for subject in ontology.subjects(RDF.type, kind)}
    missing = set()
    for shape, path in shapes.subject_objects(SH.path):
        for prop in path_properties(shapes, path):
            if prop not in declared and prop not in BUILT_IN_PATH_PROPERTIES:
                missing.add((shape, prop))
    return sorted(missing, key=lambda pair: (str(pair[0]), str(pair[1])))


def patients_of(node: Node, data: Graph) -> list[Node]:
    """The patients a focus node is about: itself if it is a patient, else the patients it
    names, else (a dose specification) the patients of the treatments that have it, else
    (a blank node: a structure inside an item) the patients of the nodes that hold it."""
    return _patients_of(node, data, frozenset())


def _patients_of(node: Node, data: Graph, seen: frozenset[Node]) -> list[Node]:
    if (node, RDF.type, GKG.Patient) in data:
        return [node]
    subjects = sorted(data.objects(node, GKG.subject), key=str)
    if subjects:
        return subjects
    holders = data.subjects(GKG.hasDose, node)
    patients = {patient for holder in holders for patient in data.objects(holder, GKG.subject)}
    if not patients and isinstance(node, BNode) and len(seen) < MAX_NESTING:
        seen = seen | {node}
        for holder in set(data.subjects(None, node)) - seen:
            patients.update(_patients_of(holder, data, seen))
    return sorted(patients, key=str)

