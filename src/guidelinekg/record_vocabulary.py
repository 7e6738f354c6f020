"""The record-vocabulary pass: every term of a patient record is one the guideline reads,
or it is reported (see the section comment below).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import cache

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import OWL, RDF, RDFS, SH, SKOS
from rdflib.term import Node

from guidelinekg.loading import BASE, guideline_graph
from guidelinekg.namespaces import GKG, PSH, curie, expand_curie
from guidelinekg.patient_records import (
    PROPERTY_KINDS,
    path_properties,
    patient_shapes,
    patients_of,
)
from guidelinekg.shacl import ShaclResult
from guidelinekg.sparql import bundled_queries

# ---------------------------------------------------------------------------------------
# Record vocabulary: every term of a record is read by the guideline, or it is reported
# ---------------------------------------------------------------------------------------
#
# A triple in terms no shape or query knows passes every shape and changes nothing: a typo
# (gkg:valueCodee) or a finding in another vocabulary (an allergy as ex:allergy) would be
# dropped without a word. One pass over the record's triples, one set lookup each (a
# SHACL-SPARQL constraint over every triple is too slow in pySHACL for large cohorts),
# reports them in the names of shapes declared in shapes/patient.ttl:
#  - psh:UnknownTerm (violation): a property, class (rdf:type) or concept (an IRI value) in
#    the project's namespaces (BASE: gkg:, fact:, code:, unit:, ...) that the ontology
#    (ontology/*.ttl, ontology/guidelines/*.ttl) does not declare;
#  - psh:PropertyNotReadHere (violation): a declared property whose rdfs:domain the item is
#    not an instance of, subclass-aware (gkg:present on a HER2 status). A node's classes are
#    its rdf:type and the rdfs:range of the properties that point to it (a dose
#    specification is one through gkg:hasDose);
#  - psh:GuidelineTermInRecord (violation): the record states something about a term of the
#    project's namespaces, places its own terms in the guideline's vocabulary
#    (VOCABULARY_LINKS), or uses the vocabulary of guidelines and derivation results: a
#    project class that is no kind of record node (RECORD_ROOTS), or a project property
#    whose rdfs:domain is not one (or that has none: gkg:factValue, gkg:criterion). The
#    queries read the record and the ontology together, in one graph with the fact values
#    and criterion results: such a triple would add a statement, a criterion or a fact
#    value of the record's own making;
#  - psh:UnreadTerms (warning, one per patient): properties and classes of other
#    vocabularies, and declared properties of the project no shape or query reads on a
#    record. Of other vocabularies only rdf:type is read on a record; rdfs:label,
#    rdfs:comment, prov:*, dcterms:* and the user's own properties are read by no criterion
#    and shown in no result (the derivation shows the labels of the guideline's terms, not
#    of record items), so they are listed.

UNKNOWN_TERM = PSH.UnknownTerm
PROPERTY_NOT_READ_HERE = PSH.PropertyNotReadHere
GUIDELINE_TERM_IN_RECORD = PSH.GuidelineTermInRecord
UNREAD_TERMS = PSH.UnreadTerms
RECORD_VOCABULARY_COMPONENT = PSH.RecordVocabularyConstraintComponent
CLASS_KINDS = (OWL.Class, RDFS.Class)
# Properties of other vocabularies the queries and shapes read on the ontology, to place a
# class or a value in it: in a record, pointing to a project term, they would extend it.
VOCABULARY_LINKS = frozenset({RDFS.subClassOf, SKOS.inScheme})
# The kinds of node a record describes: every record class is a subclass of one of them.
RECORD_ROOTS = frozenset({GKG.Patient, GKG.RecordItem, GKG.DoseSpecification})
# Patient-record properties are named with the gkg: prefix in the shapes and queries.
_GKG_NAME = re.compile(r"(?<![\w:/#-])gkg:([A-Za-z_][\w-]*)")


@dataclass(frozen=True)
class RecordVocabulary:
    """What the guideline declares and reads, for the record-vocabulary pass."""

    terms: frozenset[Node]  # every IRI the ontology describes
    properties: frozenset[Node]
    classes: frozenset[Node]
    record_classes: frozenset[Node]  # the classes of record nodes (RECORD_ROOTS)
    record_properties: frozenset[Node]  # properties whose domains are record classes
    read: frozenset[Node]  # project properties a patient shape or query reads
    domains: dict[Node, tuple[Node, ...]]
    ranges: dict[Node, Node]  # class ranges, to type the nodes properties point to
    superclasses: dict[Node, frozenset[Node]]  # reflexive and transitive
    labels: dict[Node, str]


def _is_project_term(term: Node) -> bool:
    # str.startswith, not rdflib's (a Python-level override): this runs for every triple.
    return isinstance(term, URIRef) and str.startswith(term, BASE)


def properties_read_from_records() -> set[URIRef]:
    """The project properties a record is read by: the patient shapes' paths and targets,
    and the gkg: names in their SPARQL and in the fact and derivation queries."""
    shapes = patient_shapes()
    read: set[URIRef] = set()
    for path in shapes.objects(None, SH.path):
        read |= path_properties(shapes, path)
    for target in (SH.targetSubjectsOf, SH.targetObjectsOf):
        read |= {prop for prop in shapes.objects(None, target) if isinstance(prop, URIRef)}
    texts = [str(text) for text in shapes.objects(None, SH.select)]
    texts += [query.text for folder in ("facts", "derive") for query in bundled_queries(folder)]
    for text in texts:
        read |= {expand_curie(f"gkg:{local}") for local in _GKG_NAME.findall(text)}
    return read


@cache
def record_vocabulary() -> RecordVocabulary:
    """The declared terms of the ontology and guideline content, read once."""
    ontology = guideline_graph()
    properties = frozenset(s for kind in PROPERTY_KINDS for s in ontology.subjects(RDF.type, kind))
    classes = frozenset(s for kind in CLASS_KINDS for s in ontology.subjects(RDF.type, kind))
    parents: dict[Node, set[Node]] = defaultdict(set)
    for sub, sup in ontology.subject_objects(RDFS.subClassOf):
        parents[sub].add(sup)
    superclasses = {}
    for cls in classes | set(parents):
        found, todo = {cls}, [cls]
        while todo:
            for parent in parents.get(todo.pop(), ()):
                if parent not in found:
                    found.add(parent)
                    todo.append(parent)
        superclasses[cls] = frozenset(found)
    domains: dict[Node, list[Node]] = defaultdict(list)
    for prop, domain in ontology.subject_objects(RDFS.domain):
        domains[prop].append(domain)
    ranges = {prop: cls for prop, cls in ontology.subject_objects(RDFS.range)
              if prop in properties and cls in classes}
    labels = {term: str(label) for term, label in ontology.subject_objects(RDFS.label)
              if isinstance(label, Literal) and label.language in (None, "en")}
    record_classes = frozenset(cls for cls, found in superclasses.items()
                               if cls in classes and found & RECORD_ROOTS)
    return RecordVocabulary(
        terms=frozenset(s for s in ontology.subjects() if isinstance(s, URIRef)),
        properties=properties,
        classes=classes,
        record_classes=record_classes,
        record_properties=frozenset(
            prop for prop, found in domains.items()
            if prop in properties and all(domain in record_classes for domain in found)),
        read=frozenset(properties_read_from_records() & properties),
        domains={prop: tuple(sorted(found, key=str)) for prop, found in domains.items()},
        ranges=ranges,
        superclasses=superclasses,
        labels=labels,
    )


def _with_article(text: str) -> str:
    return ("an " if text[:1].lower() in "aeiou" else "a ") + text


def _vocabulary_result(shape: URIRef, focus: Node, path: Node | None, value: Node | None,
                       message: str, severity: str = "Violation") -> ShaclResult:
    return ShaclResult(focus=focus, path=path, value=value, source_shape=shape,
                       severity=severity, message=message,
                       constraint=RECORD_VOCABULARY_COMPONENT)


# How the pass treats a predicate (decided once per distinct predicate of the record).
_TYPE, _UNKNOWN, _DECLARED, _LINK, _OTHER, _NOT_RECORD = range(6)


def _predicate_kind(vocabulary: RecordVocabulary, prop: Node) -> tuple[int, bool]:
    """(kind, read) of a predicate: rdf:type, an undeclared project property, a declared
    one, a vocabulary link, or another vocabulary's property; and whether it is read."""
    if prop == RDF.type:
        return _TYPE, True
    if _is_project_term(prop):
        if prop not in vocabulary.properties:
            return _UNKNOWN, False
        if prop not in vocabulary.record_properties:
            return _NOT_RECORD, False
        return _DECLARED, prop in vocabulary.read
    return (_LINK if prop in VOCABULARY_LINKS else _OTHER), False


def _domain_problem(vocabulary: RecordVocabulary, prop: Node,
                    classes: frozenset[Node]) -> tuple[bool, str] | None:
    """Why ``prop`` is not read on a node of ``classes`` (its rdfs:domain), or None when it
    is; the flag says the node has no known class (then a node that names a patient is left
    to psh:SubjectHolderIsRecordItem)."""
    domains = vocabulary.domains.get(prop)
    if not domains:
        return None
    if any(_is_project_term(cls) and cls not in vocabulary.classes for cls in classes):
        return None  # an unknown class: reported as such
    missing = [domain for domain in domains
               if not any(domain in vocabulary.superclasses.get(cls, {cls}) for cls in classes)]
    if not missing:
        return None
    known = [cls for cls in classes if cls in vocabulary.classes]
    wanted = ", ".join(f"{_with_article(vocabulary.labels.get(d, curie(d)))} ({curie(d)})"
                       for d in missing)
    if not classes:
        return True, (f"{curie(prop)} is read on {wanted}, and this node has no class (no "
                      f"rdf:type, and nothing points to it that gives it one): as recorded it "
                      f"changes nothing.")
    specific = max(known, key=lambda cls: (len(vocabulary.superclasses.get(cls, ())), str(cls)),
                   default=None)
    shown = (vocabulary.labels.get(specific, curie(specific)) if specific is not None
             else curie(min(classes, key=str)))
    return not known, (f"{curie(prop)} is not read on {_with_article(shown)}: it is read on "
                       f"{wanted}. As recorded it changes nothing; record the finding the way "
                       f"this kind of item is read.")


def record_vocabulary_results(data: Graph) -> list[ShaclResult]:
    """The record-vocabulary results of a patient graph (see the section comment)."""
    return _VocabularyPass(data, record_vocabulary()).run()


class _VocabularyPass:
    """One pass over the record's triples, one set lookup each; what a predicate is, and
    whether a property is read on a set of classes, is decided once and remembered."""

    def __init__(self, data: Graph, vocabulary: RecordVocabulary) -> None:
        self.data, self.vocabulary = data, vocabulary
        found: dict[Node, set[Node]] = defaultdict(set)
        for subject, cls in data.subject_objects(RDF.type):
            found[subject].add(cls)
        for prop, cls in vocabulary.ranges.items():
            for obj in data.objects(None, prop):
                if not isinstance(obj, Literal):
                    found[obj].add(cls)
        # One frozenset object per distinct set of classes, so that the memo of domain
        # problems compares keys by identity.
        shared: dict[frozenset[Node], frozenset[Node]] = {}
        self.types = {node: shared.setdefault(frozenset(classes), frozenset(classes))
                      for node, classes in found.items()}
        self.kinds: dict[Node, tuple[int, bool]] = {}
        self.problems: dict[tuple[Node, frozenset[Node]], tuple[bool, str] | None] = {}
        self.results: list[ShaclResult] = []
        self.unread: dict[Node, Counter[str]] = defaultdict(Counter)

    def run(self) -> list[ShaclResult]:
        for subject, prop, obj in self.data:
            self._triple(subject, prop, obj)
        self.results.extend(_unread_results(self.unread, self.data))
        return self.results

    def _report(self, shape: URIRef, triple: tuple[Node, Node, Node], message: str) -> None:
        self.results.append(_vocabulary_result(shape, *triple, message))

    def _triple(self, subject: Node, prop: Node, obj: Node) -> None:
        triple = (subject, prop, obj)
        if _is_project_term(subject):
            self._report(GUIDELINE_TERM_IN_RECORD, triple,
                         f"The record states something about the guideline's own term "
                         f"{curie(subject)} ({curie(prop)} {curie(obj)}): a patient "
                         f"record cannot change the guideline's vocabulary. Remove the "
                         f"statement.")
            return
        kind = self.kinds.get(prop)
        if kind is None:
            kind = self.kinds[prop] = _predicate_kind(self.vocabulary, prop)
        code, read = kind
        if code == _TYPE:
            self._type(triple)
        elif code == _UNKNOWN:
            self._report(UNKNOWN_TERM, triple,
                         f"Unknown property {curie(prop)}: a typo, or a fact this guideline "
                         f"does not read.")
        elif code == _NOT_RECORD:
            self._report(GUIDELINE_TERM_IN_RECORD, triple,
                         f"{curie(prop)} belongs to the vocabulary of guidelines and of the "
                         f"derivation's results, not of patient records: a record cannot add "
                         f"to the guideline or state its results. Remove the statement.")
        elif code == _LINK and _is_project_term(obj):
            self._report(GUIDELINE_TERM_IN_RECORD, triple,
                         f"The record places {curie(subject)} in the guideline's vocabulary "
                         f"({curie(prop)} {curie(obj)}): a patient record cannot extend "
                         f"it. Use the ontology's own classes and values.")
        elif code != _DECLARED or self._read_here(triple, read):
            if code in (_LINK, _OTHER):
                self.unread[subject][curie(prop)] += 1
            if _is_project_term(obj) and obj not in self.vocabulary.terms:
                self._report(UNKNOWN_TERM, triple,
                             f"Unknown concept {curie(obj)}: a typo, or a value this "
                             f"guideline does not know.")

    def _type(self, triple: tuple[Node, Node, Node]) -> None:
        subject, _, obj = triple
        if not _is_project_term(obj):
            self.unread[subject][f"class {curie(obj)}"] += 1
        elif obj not in self.vocabulary.classes:
            self._report(UNKNOWN_TERM, triple,
                         f"Unknown class {curie(obj)}: a typo, or a kind of record item "
                         f"this guideline does not know; the item is read by no criterion.")
        elif obj not in self.vocabulary.record_classes:
            self._report(GUIDELINE_TERM_IN_RECORD, triple,
                         f"The record makes {curie(subject)} {_with_article(self._label(obj))} "
                         f"({curie(obj)}), a node of guidelines or of the derivation's "
                         f"results, not of patient records: a record cannot add to the "
                         f"guideline or state its results. Remove the statement.")

    def _label(self, term: Node) -> str:
        return self.vocabulary.labels.get(term, curie(term))

    def _read_here(self, triple: tuple[Node, Node, Node], read: bool) -> bool:
        """Whether a declared property may be on this item (else it is reported, or left
        to the shapes); an unread one is listed."""
        subject, prop, _ = triple
        classes = self.types.get(subject, frozenset())
        key = (prop, classes)
        if key in self.problems:
            problem = self.problems[key]
        else:
            problem = self.problems[key] = _domain_problem(self.vocabulary, prop, classes)
        if problem is not None:
            no_known_class, message = problem
            # A node that names a patient without a known class is refused by
            # psh:SubjectHolderIsRecordItem already: once is enough.
            if not (no_known_class and (subject, GKG.subject, None) in self.data):
                self._report(PROPERTY_NOT_READ_HERE, triple, message)
            return False
        if not read:
            self.unread[subject][curie(prop)] += 1
        return True


def _unread_results(unread: dict[Node, Counter[str]], data: Graph) -> list[ShaclResult]:
    """One warning per patient (focus: the patient) listing what nothing reads; the items
    that name no patient share one (focus: the first of them)."""
    by_owner: dict[Node | None, Counter[str]] = defaultdict(Counter)
    orphans: list[Node] = []
    for subject, counts in unread.items():
        owners: list[Node | None] = [*patients_of(subject, data)]
        if not owners:
            orphans.append(subject)
        for owner in owners or [None]:
            by_owner[owner].update(counts)
    results = []
    for owner, counts in by_owner.items():
        total = sum(counts.values())
        where = "" if owner is not None else " (on items that name no patient)"
        results.append(_vocabulary_result(
            UNREAD_TERMS, owner if owner is not None else min(orphans, key=str), None, None,
            f"Not read by this guideline{where}: {', '.join(sorted(counts))} ({total} "
            f"triple{'s' if total != 1 else ''}). No criterion reads them and no result "
            f"shows them: if they matter, record them with the guideline's vocabulary.",
            severity="Warning"))
    return results
