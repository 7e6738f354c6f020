"""``guidelinekg validate``: patient records checked against the patient shapes.

Shapes (shapes/): ``patient.ttl`` says when a record is wrong (sh:Violation: it is refused)
and adds notes (sh:Info); ``patient-completeness.ttl``, generated from the guideline's
criteria, says which facts the recommendations need are missing (sh:Warning). The core
ontology goes along so that targets reach subclasses and value sets and units are known.
Every result is attributed to its patient: the focus node itself when it is a gkg:Patient,
else the patient it names (gkg:subject), else (a dose specification) the patient of the
treatment that has it, else (a blank node) the patient of the node that holds it.

Besides the shapes, every triple of the record is checked against the vocabulary the
guideline reads (:func:`record_vocabulary_results`): a term of the project's namespaces the
ontology does not declare, or a property on a kind of item it is not read on, is a
violation; terms of other vocabularies that nothing reads are listed in one warning per
patient. Those results are added to the same report (shapes psh:UnknownTerm,
psh:PropertyNotReadHere, psh:GuidelineTermInRecord, psh:UnreadTerms).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS, SH, SKOS, XSD
from rdflib.term import Node

from guidelinekg.literal_checks import ill_typed_results, ill_typed_triples
from guidelinekg.loading import (
    BASE,
    PREFIXES,
    InputError,
    bind_project_prefixes,
    guideline_graph,
    merge_graphs,
    parse_rdf_file,
)
from guidelinekg.patients import PatientInput, load_patient_input
from guidelinekg.resources import ontology_dir, queries_dir, shapes_dir
from guidelinekg.shacl import (
    ShaclReport,
    ShaclResult,
    add_results,
    shape_name,
    validate_graph,
)

GKG = PREFIXES["gkg"]
PSH = "https://w3id.org/guidelinekg/shapes/patient#"
PATIENT_CLASS = URIRef(GKG + "Patient")
SUBJECT = URIRef(GKG + "subject")
HAS_DOSE = URIRef(GKG + "hasDose")
SHAPE_FILES = ("patient.ttl", "patient-completeness.ttl")
PROPERTY_KINDS = (OWL.ObjectProperty, OWL.DatatypeProperty, OWL.AnnotationProperty,
                  RDF.Property)
# RDF's own rdf:type is no ontology property, but a path may walk it.
BUILT_IN_PATH_PROPERTIES = frozenset({RDF.type})

# Literals Turtle writes without quotes (true, 3, 120.0).
SHORTHAND_DATATYPES = frozenset({XSD.boolean, XSD.integer, XSD.decimal, XSD.double})

EXIT_CONFORMS = 0
EXIT_VIOLATIONS = 1

SEVERITY_WORDS = {"Violation": ("violation", "violations"), "Warning": ("warning", "warnings"),
                  "Info": ("note", "notes")}


# ---------------------------------------------------------------------------------------
# Shapes and ontology
# ---------------------------------------------------------------------------------------


def shape_files() -> list[Path]:
    return [shapes_dir() / name for name in SHAPE_FILES]


@cache
def patient_shapes() -> Graph:
    """The patient shapes (violations, notes and the generated warnings), parsed once."""
    return bind_project_prefixes(merge_graphs(parse_rdf_file(path) for path in shape_files()))


@cache
def core_ontology() -> Graph:
    """The core ontology (guidelinekg.ttl, patient-facts.ttl): classes, value sets, units.
    Guideline content stays out: its dose steps would be validated as if they were a
    patient's doses."""
    return merge_graphs(parse_rdf_file(path) for path in sorted(ontology_dir().glob("*.ttl")))


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


# ---------------------------------------------------------------------------------------
# Validation with results attributed to patients
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatientResult:
    """A SHACL result, the patient it is about (None: no patient could be found), the name
    of its shape and, for a completeness warning, the fact it is about."""

    patient: Node | None
    result: ShaclResult
    shape_name: str
    fact: Node | None


@dataclass
class PatientValidation:
    report: ShaclReport
    patients: list[Node]
    results: list[PatientResult] = field(default_factory=list)

    @property
    def has_violations(self) -> bool:
        return self.report.has_violations

    def count(self, severity: str) -> int:
        return sum(1 for r in self.results if r.result.severity == severity)

    def by_patient(self) -> dict[Node | None, list[PatientResult]]:
        grouped: dict[Node | None, list[PatientResult]] = {}
        for result in self.results:
            grouped.setdefault(result.patient, []).append(result)
        return grouped

    def patients_with(self, severity: str) -> set[Node | None]:
        return {r.patient for r in self.results if r.result.severity == severity}


def patients_of(node: Node, data: Graph) -> list[Node]:
    """The patients a focus node is about: itself if it is a patient, else the patients it
    names, else (a dose specification) the patients of the treatments that have it, else
    (a blank node: a structure inside an item) the patients of the nodes that hold it."""
    return _patients_of(node, data, frozenset())


def _patients_of(node: Node, data: Graph, seen: frozenset[Node]) -> list[Node]:
    if (node, RDF.type, PATIENT_CLASS) in data:
        return [node]
    subjects = sorted(data.objects(node, SUBJECT), key=str)
    if subjects:
        return subjects
    holders = data.subjects(HAS_DOSE, node)
    patients = {patient for holder in holders for patient in data.objects(holder, SUBJECT)}
    if not patients and isinstance(node, BNode) and len(seen) < MAX_NESTING:
        seen = seen | {node}
        for holder in set(data.subjects(None, node)) - seen:
            patients.update(_patients_of(holder, data, seen))
    return sorted(patients, key=str)


def validate_patients(graph: Graph, *, inplace: bool = False) -> PatientValidation:
    """Validate a patient graph (one patient or a cohort) against the patient shapes.

    With ``inplace`` the graph is given up to the validator (the ontology is added to it;
    no copy is made)."""
    shapes = patient_shapes()
    patients = sorted(set(graph.subjects(RDF.type, PATIENT_CLASS)), key=str)
    # Before the shapes: with ``inplace`` the ontology is added to the graph.
    vocabulary_results = record_vocabulary_results(graph)
    ill_typed = ill_typed_triples(graph, core_ontology(), shapes)
    checked = graph
    if ill_typed:
        # No engine compares an ill-typed value: the shapes run without those triples.
        checked = graph if inplace else merge_graphs([graph])
        for triple, _reason in ill_typed:
            checked.remove(triple)
    report = validate_graph(checked, shapes, core_ontology(), inplace=inplace)
    add_results(report, vocabulary_results + ill_typed_results(ill_typed))
    results: list[PatientResult] = []
    for result in report.results:
        name = shape_name(result.source_shape, shapes)
        fact = shapes.value(result.source_shape, DCTERMS.subject)
        owners: list[Node | None] = [*patients_of(result.focus, graph)] or [None]
        results.extend(PatientResult(owner, result, name, fact) for owner in owners)
    return PatientValidation(report=report, patients=patients, results=results)


def annotated_report_graph(validation: PatientValidation, data: Graph) -> Graph:
    """The W3C validation report, each result with gkg:patient naming its patient."""
    report = validation.report.graph
    for result in report.subjects(RDF.type, SH.ValidationResult):
        focus = report.value(result, SH.focusNode)
        if focus is not None:
            for patient in patients_of(focus, data):
                report.add((result, URIRef(GKG + "patient"), patient))
    bind_project_prefixes(report)
    report.bind("sh", SH)
    return report


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
#    project's namespaces, or places its own terms in the guideline's vocabulary
#    (VOCABULARY_LINKS): the queries read the record and the ontology together;
#  - psh:UnreadTerms (warning, one per patient): properties and classes of other
#    vocabularies, and declared properties of the project no shape or query reads on a
#    record. Of other vocabularies only rdf:type is read on a record; rdfs:label,
#    rdfs:comment, prov:*, dcterms:* and the user's own properties are read by no criterion
#    and shown in no result (the derivation shows the labels of the guideline's terms, not
#    of record items), so they are listed.

UNKNOWN_TERM = URIRef(PSH + "UnknownTerm")
PROPERTY_NOT_READ_HERE = URIRef(PSH + "PropertyNotReadHere")
GUIDELINE_TERM_IN_RECORD = URIRef(PSH + "GuidelineTermInRecord")
UNREAD_TERMS = URIRef(PSH + "UnreadTerms")
RECORD_VOCABULARY_COMPONENT = URIRef(PSH + "RecordVocabularyConstraintComponent")
CLASS_KINDS = (OWL.Class, RDFS.Class)
# Properties of other vocabularies the queries and shapes read on the ontology, to place a
# class or a value in it: in a record, pointing to a project term, they would extend it.
VOCABULARY_LINKS = frozenset({RDFS.subClassOf, SKOS.inScheme})
# Patient-record properties are named with the gkg: prefix in the shapes and queries.
_GKG_NAME = re.compile(r"(?<![\w:/#-])gkg:([A-Za-z_][\w-]*)")
# Blank nodes nested deeper than this are not climbed to find their patient.
MAX_NESTING = 50


@dataclass(frozen=True)
class RecordVocabulary:
    """What the guideline declares and reads, for the record-vocabulary pass."""

    terms: frozenset[Node]  # every IRI the ontology describes
    properties: frozenset[Node]
    classes: frozenset[Node]
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
    for folder in ("facts", "derive"):
        texts += [path.read_text(encoding="utf-8")
                  for path in sorted((queries_dir() / folder).glob("*.rq"))]
    for text in texts:
        read |= {URIRef(GKG + local) for local in _GKG_NAME.findall(text)}
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
    return RecordVocabulary(
        terms=frozenset(s for s in ontology.subjects() if isinstance(s, URIRef)),
        properties=properties,
        classes=classes,
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
_TYPE, _UNKNOWN, _DECLARED, _LINK, _OTHER = range(5)


def _predicate_kind(vocabulary: RecordVocabulary, prop: Node) -> tuple[int, bool]:
    """(kind, read) of a predicate: rdf:type, an undeclared project property, a declared
    one, a vocabulary link, or another vocabulary's property; and whether it is read."""
    if prop == RDF.type:
        return _TYPE, True
    if _is_project_term(prop):
        if prop not in vocabulary.properties:
            return _UNKNOWN, False
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
    wanted = ", ".join(f"{_with_article(vocabulary.labels.get(d, compact(d)))} ({compact(d)})"
                       for d in missing)
    if not classes:
        return True, (f"{compact(prop)} is read on {wanted}, and this node has no class (no "
                      f"rdf:type, and nothing points to it that gives it one): as recorded it "
                      f"changes nothing.")
    specific = max(known, key=lambda cls: (len(vocabulary.superclasses.get(cls, ())), str(cls)),
                   default=None)
    shown = (vocabulary.labels.get(specific, compact(specific)) if specific is not None
             else compact(min(classes, key=str)))
    return not known, (f"{compact(prop)} is not read on {_with_article(shown)}: it is read on "
                       f"{wanted}. As recorded it changes nothing; record the finding the way "
                       f"this kind of item is read.")


def record_vocabulary_results(data: Graph) -> list[ShaclResult]:
    """The record-vocabulary results of a patient graph (see the section comment)."""
    vocabulary = record_vocabulary()
    found: dict[Node, set[Node]] = defaultdict(set)
    for subject, cls in data.subject_objects(RDF.type):
        found[subject].add(cls)
    for prop, cls in vocabulary.ranges.items():
        for obj in data.objects(None, prop):
            if not isinstance(obj, Literal):
                found[obj].add(cls)
    # One frozenset object per distinct set of classes, so that the memo below compares
    # keys by identity.
    shared: dict[frozenset[Node], frozenset[Node]] = {}
    types = {node: shared.setdefault(frozenset(classes), frozenset(classes))
             for node, classes in found.items()}
    untyped: frozenset[Node] = frozenset()
    kinds: dict[Node, tuple[int, bool]] = {}
    problems: dict[tuple[Node, frozenset[Node]], tuple[bool, str] | None] = {}
    results: list[ShaclResult] = []
    unread: dict[Node, Counter[str]] = defaultdict(Counter)
    classes_known, terms = vocabulary.classes, vocabulary.terms
    for subject, prop, obj in data:
        if _is_project_term(subject):
            results.append(_vocabulary_result(
                GUIDELINE_TERM_IN_RECORD, subject, prop, obj,
                f"The record states something about the guideline's own term "
                f"{compact(subject)} ({compact(prop)} {compact(obj)}): a patient record "
                f"cannot change the guideline's vocabulary. Remove the statement."))
            continue
        kind = kinds.get(prop)
        if kind is None:
            kind = kinds[prop] = _predicate_kind(vocabulary, prop)
        code, read = kind
        if code == _TYPE:
            if not _is_project_term(obj):
                unread[subject][f"class {compact(obj)}"] += 1
            elif obj not in classes_known:
                results.append(_vocabulary_result(
                    UNKNOWN_TERM, subject, prop, obj,
                    f"Unknown class {compact(obj)}: a typo, or a kind of record item this "
                    f"guideline does not know; the item is read by no criterion."))
            continue
        if code == _UNKNOWN:
            results.append(_vocabulary_result(
                UNKNOWN_TERM, subject, prop, obj,
                f"Unknown property {compact(prop)}: a typo, or a fact this guideline does not "
                f"read."))
            continue
        if code == _DECLARED:
            classes = types.get(subject, untyped)
            key = (prop, classes)
            if key in problems:
                problem = problems[key]
            else:
                problem = problems[key] = _domain_problem(vocabulary, prop, classes)
            if problem is not None:
                no_known_class, message = problem
                # A node that names a patient without a known class is refused by
                # psh:SubjectHolderIsRecordItem already: once is enough.
                if not (no_known_class and (subject, SUBJECT, None) in data):
                    results.append(_vocabulary_result(PROPERTY_NOT_READ_HERE, subject, prop,
                                                      obj, message))
                continue
            if not read:
                unread[subject][compact(prop)] += 1
        elif code == _LINK and _is_project_term(obj):
            results.append(_vocabulary_result(
                GUIDELINE_TERM_IN_RECORD, subject, prop, obj,
                f"The record places {compact(subject)} in the guideline's vocabulary "
                f"({compact(prop)} {compact(obj)}): a patient record cannot extend it. Use "
                f"the ontology's own classes and values."))
            continue
        elif code in (_LINK, _OTHER):
            unread[subject][compact(prop)] += 1
        if _is_project_term(obj) and obj not in terms:
            results.append(_vocabulary_result(
                UNKNOWN_TERM, subject, prop, obj,
                f"Unknown concept {compact(obj)}: a typo, or a value this guideline does not "
                f"know."))
    results.extend(_unread_results(unread, data))
    return results


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


# ---------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------


def compact(term: Node | None) -> str:
    """A short readable form: a prefixed name for project and standard IRIs, <IRI> else."""
    if term is None:
        return ""
    if isinstance(term, URIRef):
        for prefix, namespace in PREFIXES.items():
            if str(term).startswith(namespace) and len(str(term)) > len(namespace):
                return f"{prefix}:{str(term)[len(namespace):]}"
        if term == RDF.type:
            return "rdf:type"
        return f"<{term}>"
    if isinstance(term, Literal):
        if term.datatype in SHORTHAND_DATATYPES:
            return str(term)
        text = json.dumps(str(term), ensure_ascii=False)
        if term.language:
            return f"{text}@{term.language}"
        return f"{text}^^{compact(term.datatype)}" if term.datatype else text
    return f"_:{term}"


def path_text(report_graph: Graph, path: Node | None) -> str:
    """A SHACL path in SPARQL property-path syntax (gkg:subject/gkg:birthDate)."""
    if path is None:
        return ""
    if isinstance(path, URIRef):
        return compact(path)
    if report_graph.value(path, RDF.first) is not None:
        return "/".join(path_text(report_graph, step) for step in Collection(report_graph, path))
    inverse = report_graph.value(path, SH.inversePath)
    if inverse is not None:
        return "^" + path_text(report_graph, inverse)
    alternatives = report_graph.value(path, SH.alternativePath)
    if alternatives is not None:
        return "(" + "|".join(path_text(report_graph, p)
                              for p in Collection(report_graph, alternatives)) + ")"
    for predicate, mark in ((SH.zeroOrMorePath, "*"), (SH.oneOrMorePath, "+"),
                            (SH.zeroOrOnePath, "?")):
        inner = report_graph.value(path, predicate)
        if inner is not None:
            return path_text(report_graph, inner) + mark
    return compact(path)


def _what(result: PatientResult, report_graph: Graph, data: Graph | None) -> str:
    """The fact (for a completeness warning) or the focus and path a result is about."""
    if result.fact is not None:
        return compact(result.fact)
    parts = []
    focus = result.result.focus
    if focus != result.patient:
        holder = data.value(None, HAS_DOSE, focus) if data is not None else None
        if isinstance(focus, BNode) and holder is not None:
            parts.append(f"the dose of {compact(holder)}")
        elif isinstance(focus, BNode):
            parts.append(f"a blank node (_:{focus})")
        elif holder is not None:
            parts.append(f"{compact(focus)} (the dose of {compact(holder)})")
        else:
            parts.append(compact(focus))
    path = path_text(report_graph, result.result.path)
    if path:
        parts.append(path)
    return " ".join(parts) if parts else "the patient"


def _plural(count: int, severity: str) -> str:
    singular, plural = SEVERITY_WORDS[severity]
    return f"{count} {singular if count == 1 else plural}"


def _counts(results: Iterable[PatientResult]) -> str:
    results = list(results)
    return ", ".join(_plural(sum(1 for r in results if r.result.severity == severity), severity)
                     for severity in SEVERITY_WORDS)


def summary_line(validation: PatientValidation) -> str:
    with_violations = len(validation.patients_with("Violation") - {None})
    verdict = ("The input does not conform: correct the violations (exit 1)."
               if validation.has_violations else
               "The input conforms (warnings and notes do not block it).")
    patients = len(validation.patients)
    return (f"Summary: {patients} patient{'s' if patients != 1 else ''}, {with_violations} with "
            f"violations; {_counts(validation.results)}. {verdict}")


def text_report(validation: PatientValidation, source: PatientInput | None = None,
                data: Graph | None = None) -> str:
    """The report a clinician reads: per patient, each result with its severity, what it is
    about (the fact, or the item and property), the message, the offending value and the
    shape's name; then a summary line."""
    report_graph = validation.report.graph
    data = data if data is not None else (source.graph if source is not None else None)
    lines: list[str] = []
    if source is not None:
        for path, summary in source.fhir_summaries.items():
            lines.append(f"FHIR {path}: {summary}")
    grouped = validation.by_patient()
    order: list[Node | None] = [p for p in validation.patients if p in grouped]
    order += sorted((p for p in grouped if p not in order and p is not None), key=str)
    if None in grouped:
        order.append(None)
    for patient in order:
        results = grouped[patient]
        heading = compact(patient) if patient is not None else "No patient (items that name none)"
        lines.append(f"{heading}: {_counts(results)}")
        for result in results:
            shacl = result.result
            lines.append(f"  {shacl.severity.upper():9} {_what(result, report_graph, data)}")
            lines.append(f"      {shacl.message}")
            details = []
            if shacl.value is not None and shacl.value not in (shacl.focus, result.patient):
                details.append(f"value: {compact(shacl.value)}")
            details.append(f"shape: {result.shape_name}")
            lines.append("      " + "; ".join(details))
    lines.append(summary_line(validation))
    return "\n".join(lines) + "\n"


def _node_json(term: Node | None) -> str | None:
    if term is None:
        return None
    if isinstance(term, BNode):
        return f"_:{term}"
    return str(term)


def json_report(validation: PatientValidation) -> str:
    """The results as documented JSON (see ``guidelinekg validate --help``)."""
    report_graph = validation.report.graph
    document = {
        "conforms": not validation.has_violations,
        "summary": {
            "patients": len(validation.patients),
            "patients_with_violations": len(validation.patients_with("Violation") - {None}),
            "violations": validation.count("Violation"),
            "warnings": validation.count("Warning"),
            "infos": validation.count("Info"),
        },
        "results": [
            {
                "patient": _node_json(r.patient),
                "severity": r.result.severity,
                "focus": _node_json(r.result.focus),
                "path": path_text(report_graph, r.result.path) or None,
                "value": _node_json(r.result.value),
                "fact": _node_json(r.fact),
                "message": r.result.message,
                "shape": _node_json(r.result.source_shape),
                "shape_name": r.shape_name,
                "constraint": _node_json(r.result.constraint),
            }
            for r in validation.results
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------

FORMAT_HELP = """\
output format. text (default): a report grouped by patient and a summary line. turtle:
the W3C SHACL validation report (sh:ValidationReport), each result also naming its patient
(gkg:patient). json: {"conforms": bool, "summary": {"patients", "patients_with_violations",
"violations", "warnings", "infos"}, "results": [{"patient", "severity" (Violation, Warning,
Info), "focus", "path" (SPARQL path syntax), "value", "fact" (for a completeness warning),
"message", "shape", "shape_name", "constraint"}]}; IRIs as strings, blank nodes as _:id,
literals as their text."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Validate patient records (Turtle, JSON-LD, N-Triples, RDF/XML, or FHIR R4 JSON; "
        "folders are read recursively) against the patient shapes: violations (the record "
        "is wrong and is refused), warnings (a fact the guideline needs is missing) and "
        "notes. Exit code 0: conforms (warnings allowed); 1: violations; 2: an input could "
        "not be read."
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="patient files or folders of them; all are validated together")
    parser.add_argument("--format", choices=("text", "turtle", "json"), default="text",
                        help=FORMAT_HELP)


def run(args: argparse.Namespace) -> int:
    source = load_patient_input(args.paths)
    if not any(source.graph.subjects(RDF.type, PATIENT_CLASS)):
        where = ", ".join(str(path) for path in source.files)
        raise InputError(where, "no patient found (nothing is declared `a gkg:Patient`): "
                                "nothing to validate")
    validation = validate_patients(source.graph, inplace=True)
    if args.format == "turtle":
        output = annotated_report_graph(validation, source.graph).serialize(format="turtle")
    elif args.format == "json":
        output = json_report(validation)
    else:
        output = text_report(validation, source)
    sys.stdout.write(output)
    return EXIT_VIOLATIONS if validation.has_violations else EXIT_CONFORMS


__all__ = [
    "PatientResult",
    "PatientValidation",
    "annotated_report_graph",
    "core_ontology",
    "json_report",
    "path_properties",
    "patient_shapes",
    "patients_of",
    "properties_read_from_records",
    "record_vocabulary",
    "record_vocabulary_results",
    "text_report",
    "undeclared_shape_paths",
    "validate_patients",
]
