"""``guidelinekg check``: is the guideline graph sound, complete and traceable?

Five checks, run on the core ontology plus all guideline content:

1. the OWL reasoner (HermiT): the graph is consistent and no class is unsatisfiable;
2. the guideline shapes (shapes/guideline.ttl): every statement, criterion, dose step,
   source and patient fact is complete; violations are errors, warnings are shown
   (an unresolved citation, a curation note) but do not fail the check;
3. every term the shapes name (sh:path, sh:class, the terms of their SPARQL) is declared by
   the ontology, so a misspelt path cannot make a shape check nothing;
4. the QC queries (queries/qc/*-violation.rq), each of which must return no rows;
5. coverage of the curation spec: every statement key once, its text verbatim, its
   sources, modality and kinds as specified; every reference reproduced.

Exit code 0 when there is no error (warnings allowed), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import OWL, RDF, RDFS, SH, SKOS
from rdflib.term import Node

from guidelinekg.coverage import (
    REFERENCE_COLUMNS,
    STATEMENT_COLUMNS,
    CoverageReport,
    bundled_references_path,
    bundled_statements_path,
    check_coverage,
    read_tsv,
)
from guidelinekg.loading import (
    PREFIXES,
    bind_project_prefixes,
    guideline_graph,
    merge_graphs,
    parse_rdf_file,
)
from guidelinekg.reasoning import ReasonerError, ReasoningResult, check_consistency
from guidelinekg.resources import ontology_dir, resource_root, shapes_dir
from guidelinekg.shacl import shape_name, validate_graph
from guidelinekg.sparql import QueryFile, bundled_queries, make_engine

GUIDELINE_SHAPES = "guideline.ttl"
QC_FOLDER = "qc"

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


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ShapeFinding:
    """One SHACL result in readable terms."""

    severity: str  # error or warning
    focus: str  # key of the node (skos:notation) or its prefixed name
    shape: str  # sh:name of the shape
    path: str
    value: str
    message: str
    statements: tuple[str, ...] = ()  # keys of the statements that use the node


@dataclass(frozen=True)
class ShapeTermProblem:
    """A term a shapes file names that the ontology does not declare."""

    file: str
    shape: str
    role: str  # sh:path, sh:class, sh:targetClass, SPARQL, ...
    term: str
    reason: str


@dataclass
class QcResult:
    name: str
    description: str
    rows: list[dict[str, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.rows


@dataclass
class CurationNote:
    """A reading the curators chose where the source allows more than one (gkg:curationNote)."""

    subject: str  # the statement key, or the CURIE of the node that carries the note
    note: str


def curation_notes(graph: Graph) -> list[CurationNote]:
    """Every curation note of the guideline graph, statements first in key order."""
    notes = []
    for subject, note in graph.subject_objects(URIRef(PREFIXES["gkg"] + "curationNote")):
        key = graph.value(subject, SKOS.notation)
        is_statement = (subject, RDF.type, URIRef(PREFIXES["gkg"] + "Recommendation")) in graph
        notes.append((0 if is_statement else 1, str(key) if is_statement else curie(subject),
                      str(note)))
    return [CurationNote(subject, note) for _, subject, note in sorted(notes)]


@dataclass
class CheckReport:
    triples: int
    recommendations: int
    reasoning: ReasoningResult | None = None
    reasoning_error: str | None = None
    shapes_file: str = ""
    shape_findings: list[ShapeFinding] = field(default_factory=list)
    shape_files_checked: list[str] = field(default_factory=list)
    shape_term_problems: list[ShapeTermProblem] = field(default_factory=list)
    qc: list[QcResult] = field(default_factory=list)
    coverage: CoverageReport | None = None
    curation_notes: list[CurationNote] = field(default_factory=list)

    @property
    def reasoning_errors(self) -> int:
        if self.reasoning_error:
            return 1
        if self.reasoning is None:
            return 0
        return (0 if self.reasoning.consistent else 1) + len(self.reasoning.unsatisfiable)

    @property
    def errors(self) -> int:
        return (
            self.reasoning_errors
            + sum(1 for f in self.shape_findings if f.severity == "error")
            + len(self.shape_term_problems)
            + sum(len(q.rows) for q in self.qc)
            + (len(self.coverage.problems) if self.coverage else 0)
        )

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.shape_findings if f.severity == "warning")

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def to_dict(self) -> dict:
        reasoning = None
        if self.reasoning is not None:
            reasoning = {
                "consistent": self.reasoning.consistent,
                "unsatisfiable": list(self.reasoning.unsatisfiable),
                "seconds": round(self.reasoning.seconds, 3),
                "notes": list(self.reasoning.notes),
            }
        coverage = None
        if self.coverage is not None:
            coverage = {
                "statements": str(self.coverage.statements_path),
                "references": str(self.coverage.references_path),
                "statements_total": len(self.coverage.statement_keys),
                "statements_covered": self.coverage.statements_covered,
                "references_total": len(self.coverage.reference_keys),
                "references_reproduced": self.coverage.references_reproduced,
                "unresolved": list(self.coverage.unresolved),
                "problems": [vars(p) | {"description": p.describe()}
                             for p in self.coverage.problems],
            }
        return {
            "ok": self.ok,
            "errors": self.errors,
            "warnings": self.warnings,
            "graph": {"triples": self.triples, "recommendations": self.recommendations},
            "reasoning": reasoning,
            "reasoning_error": self.reasoning_error,
            "shapes": {
                "file": self.shapes_file,
                "errors": [vars(f) for f in self.shape_findings if f.severity == "error"],
                "warnings": [vars(f) for f in self.shape_findings if f.severity == "warning"],
            },
            "shape_terms": {
                "files": list(self.shape_files_checked),
                "problems": [vars(p) for p in self.shape_term_problems],
            },
            "qc": [{"name": q.name, "passed": q.passed, "rows": q.rows} for q in self.qc],
            "coverage": coverage,
            "curation_notes": [vars(n) for n in self.curation_notes],
        }


# --------------------------------------------------------------------------------------------
# Readable names of terms
# --------------------------------------------------------------------------------------------

_WELL_KNOWN = dict(PREFIXES) | {
    "rdf": str(RDF), "sh": str(SH), "gsh": "https://w3id.org/guidelinekg/shapes/guideline#",
}


def curie(term: Node) -> str:
    text = str(term)
    for prefix, namespace in sorted(_WELL_KNOWN.items(), key=lambda kv: -len(kv[1])):
        if text.startswith(namespace) and len(text) > len(namespace):
            return f"{prefix}:{text[len(namespace):]}"
    return f"<{text}>" if isinstance(term, URIRef) else text


def term_label(graph: Graph, term: Node | None) -> str:
    """A statement's or source's key when it has one, else its prefixed name."""
    if term is None:
        return ""
    if isinstance(term, Literal):
        return str(term)
    if isinstance(term, BNode):
        return "[blank node]"
    notation = graph.value(term, SKOS.notation)
    return str(notation) if notation is not None else curie(term)


# Links from a statement down to the parts it is made of: criteria, regimens, steps, evidence.
_PART_LINKS = tuple(URIRef(PREFIXES["gkg"] + name) for name in (
    "applicability", "hasMember", "hasDoseRegimen", "hasStep", "regimenCondition",
    "hasComparativeEvidence"))
_RECOMMENDATION = URIRef(PREFIXES["gkg"] + "Recommendation")
_SECTION_ORDER = URIRef(PREFIXES["gkg"] + "sectionOrder")


def statements_using(graph: Graph, node: Node) -> tuple[str, ...]:
    """Keys of the statements a criterion, regimen or dose step belongs to (in order)."""
    seen = {node}
    frontier = [node]
    found = set()
    while frontier:
        current = frontier.pop()
        for link in _PART_LINKS:
            for parent in graph.subjects(link, current):
                if (parent, RDF.type, _RECOMMENDATION) in graph:
                    found.add(parent)
                elif parent not in seen:
                    seen.add(parent)
                    frontier.append(parent)
    # gkg:statedIn names the statement of a regimen directly.
    found |= set(graph.objects(node, URIRef(PREFIXES["gkg"] + "statedIn")))

    def order(statement: Node) -> tuple:
        position = graph.value(statement, _SECTION_ORDER)
        return (position.toPython() if isinstance(position, Literal) else 10**6,
                term_label(graph, statement))

    return tuple(term_label(graph, s) for s in sorted(found, key=order))


def path_label(path: Node | None, graph: Graph) -> str:
    if path is None:
        return ""
    if isinstance(path, URIRef):
        return curie(path)
    items = _rdf_list(graph, path)
    if items is not None:
        return "/".join(path_label(item, graph) for item in items)
    inverse = graph.value(path, SH.inversePath)
    if inverse is not None:
        return "^" + path_label(inverse, graph)
    return "[path]"


def _rdf_list(graph: Graph, node: Node) -> list[Node] | None:
    if node == RDF.nil:
        return []
    if graph.value(node, RDF.first) is None:
        return None
    return list(graph.items(node))


# --------------------------------------------------------------------------------------------
# 2. Guideline shapes
# --------------------------------------------------------------------------------------------

def guideline_shapes_path() -> Path:
    return shapes_dir() / GUIDELINE_SHAPES


def validate_guideline(graph: Graph, shapes_path: Path | None = None) -> list[ShapeFinding]:
    """Run the guideline shapes on the graph; violations are errors, the rest warnings."""
    shapes = parse_rdf_file(shapes_path or guideline_shapes_path())
    report = validate_graph(graph, shapes)
    findings = []
    for result in report.results:
        findings.append(
            ShapeFinding(
                severity="error" if result.severity == "Violation" else "warning",
                focus=term_label(graph, result.focus),
                shape=shape_name(result.source_shape, shapes),
                path=path_label(result.path, report.graph),
                value=term_label(graph, result.value) if result.value != result.focus else "",
                message=result.message,
                statements=statements_using(graph, result.focus),
            )
        )
    return findings


# --------------------------------------------------------------------------------------------
# 3. Terms named by the shapes
# --------------------------------------------------------------------------------------------

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
    items = _rdf_list(shapes, path)
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
            alternatives = _rdf_list(shapes, inner)
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
        where = _display_path(path)
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
                if URIRef(PREFIXES[prefix] + local) not in known_terms:
                    yield shape, "SPARQL", f"{prefix}:{local}", "a term the ontology does not have"


# --------------------------------------------------------------------------------------------
# 4. QC queries
# --------------------------------------------------------------------------------------------

def qc_queries() -> list[QueryFile]:
    return [q for q in bundled_queries(QC_FOLDER) if q.name.endswith("-violation")]


def run_qc(graph: Graph, queries: Sequence[QueryFile] | None = None) -> list[QcResult]:
    engine = make_engine("oxigraph", graph)
    results = []
    for query in queries if queries is not None else qc_queries():
        rows = [
            {name: term_label(graph, value) if name != "subject" else curie(value)
             for name, value in row.items()}
            for row in engine.select(query.text)
        ]
        results.append(QcResult(query.name.rsplit("/", 1)[-1], query.description, rows))
    return results


# --------------------------------------------------------------------------------------------
# All checks
# --------------------------------------------------------------------------------------------

def checked_graph(guideline_files: Sequence[Path] | None = None) -> Graph:
    """The bundled graph, or the core ontology with the given guideline content instead."""
    if not guideline_files:
        return guideline_graph()
    core = sorted(ontology_dir().glob("*.ttl"))
    return bind_project_prefixes(
        merge_graphs(parse_rdf_file(p) for p in [*core, *map(Path, guideline_files)])
    )


def run_checks(
    statements: Path | None = None,
    references: Path | None = None,
    guideline_files: Sequence[Path] | None = None,
    shape_files: Sequence[Path] | None = None,
    java: str | None = None,
) -> CheckReport:
    """Run every check; nothing is skipped silently (a reasoner that cannot run is an error)."""
    # Unreadable inputs are refused before the slow checks run.
    read_tsv(Path(statements) if statements else bundled_statements_path(), STATEMENT_COLUMNS)
    read_tsv(Path(references) if references else bundled_references_path(), REFERENCE_COLUMNS)
    graph = checked_graph(guideline_files)
    report = CheckReport(
        triples=len(graph),
        recommendations=len(set(graph.subjects(RDF.type, URIRef(PREFIXES["gkg"] +
                                                                "Recommendation")))),
    )
    try:
        report.reasoning = check_consistency(graph, java=java)
    except ReasonerError as error:
        report.reasoning_error = str(error)
    report.shapes_file = _display_path(guideline_shapes_path())
    report.shape_findings = validate_guideline(graph)
    files = list(shape_files) if shape_files is not None else sorted(shapes_dir().glob("*.ttl"))
    report.shape_files_checked = [_display_path(p) for p in files]
    report.shape_term_problems = undeclared_shape_terms(files, graph)
    report.qc = run_qc(graph)
    report.coverage = check_coverage(graph, statements, references)
    report.curation_notes = curation_notes(graph)
    return report


# --------------------------------------------------------------------------------------------
# Text report
# --------------------------------------------------------------------------------------------

def _display_path(path: Path) -> str:
    path = Path(path).resolve()
    try:
        return path.relative_to(resource_root().resolve()).as_posix()
    except ValueError:
        return str(path)


def _mark(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def _count(number: int, noun: str) -> str:
    if number == 1:
        return f"{number} {noun}"
    return f"{number} {noun}" + ("es" if noun.endswith("s") else "s")


def format_text(report: CheckReport) -> str:
    lines = [f"guidelinekg check: {report.recommendations} statements, "
             f"{report.triples} triples (core ontology and guideline content)", ""]

    lines.append("Ontology (HermiT reasoner)")
    if report.reasoning_error:
        lines.append(f"  FAIL  reasoner did not run: {report.reasoning_error}")
    elif report.reasoning is not None:
        result = report.reasoning
        if result.consistent and not result.unsatisfiable:
            lines.append(f"  PASS  consistent, no unsatisfiable classes ({result.seconds:.1f} s)")
        elif result.consistent:
            lines.append(f"  FAIL  consistent, but "
                         f"{_count(len(result.unsatisfiable), 'unsatisfiable class')} "
                         f"({result.seconds:.1f} s)")
            lines.extend(f"        unsatisfiable: {curie(URIRef(iri))}"
                         for iri in result.unsatisfiable)
        else:
            lines.append(f"  FAIL  inconsistent ({result.seconds:.1f} s)")
        lines.extend(f"  note  {note}" for note in result.notes)
    lines.append("")

    errors = [f for f in report.shape_findings if f.severity == "error"]
    warnings = [f for f in report.shape_findings if f.severity == "warning"]
    lines.append(f"Shapes ({report.shapes_file})")
    lines.append(f"  {_mark(not errors)}  {_count(len(errors), 'error')}, "
                 f"{_count(len(warnings), 'warning')}")
    for finding in errors + warnings:
        where = f" {finding.path}" if finding.path else ""
        value = f" = {finding.value}" if finding.value else ""
        label = "error  " if finding.severity == "error" else "warning"
        used_by = f" (in {', '.join(finding.statements)})" if finding.statements else ""
        lines.append(f"  {label}  {finding.focus}{used_by}{where}{value}: {finding.message} "
                     f"[{finding.shape}]")
    lines.append("")

    lines.append("Terms named by the shapes (" + ", ".join(report.shape_files_checked) + ")")
    if report.shape_term_problems:
        lines.append(f"  FAIL  {_count(len(report.shape_term_problems), 'term')} the ontology "
                     "does not declare")
        lines.extend(f"        {p.file}: {p.shape}: {p.role} {p.term}: {p.reason}"
                     for p in report.shape_term_problems)
    else:
        lines.append("  PASS  every sh:path, sh:class and SPARQL term is declared by the ontology")
    lines.append("")

    failed = [q for q in report.qc if not q.passed]
    lines.append(f"QC queries (queries/{QC_FOLDER}): {len(report.qc) - len(failed)} passed, "
                 f"{len(failed)} failed")
    for query in report.qc:
        count = f" ({_count(len(query.rows), 'row')})" if query.rows else ""
        lines.append(f"  {_mark(query.passed)}  {query.name}{count}")
        for row in query.rows:
            lines.append("        " + "  ".join(f"{k}={v}" for k, v in row.items()))
    lines.append("")

    coverage = report.coverage
    if coverage is not None:
        lines.append(f"Coverage ({_display_path(coverage.statements_path)}, "
                     f"{_display_path(coverage.references_path)})")
        total = len(coverage.statement_keys)
        covered = coverage.statements_covered
        text = "statements covered, text verbatim" if not coverage.statement_problems \
            else "statements covered"
        lines.append(f"  {_mark(not coverage.statement_problems)}  {covered}/{total} {text}")
        lines.extend(f"        {p.describe()}" for p in coverage.statement_problems)
        unresolved = f" ({', '.join(coverage.unresolved)} unresolved)" if coverage.unresolved \
            else ""
        lines.append(f"  {_mark(not coverage.reference_problems)}  "
                     f"{coverage.references_reproduced}/{len(coverage.reference_keys)} "
                     f"references reproduced{unresolved}")
        lines.extend(f"        {p.describe()}" for p in coverage.reference_problems)
        lines.append("")

    lines.append(f"Curation notes ({len(report.curation_notes)}): readings chosen where the "
                 "source allows more than one")
    lines.extend(f"  {note.subject}: {note.note}" for note in report.curation_notes)
    lines.append("")

    verdict = "OK" if report.ok else "FAILED"
    lines.append(f"Result: {verdict}: {_count(report.errors, 'error')}, "
                 f"{_count(report.warnings, 'warning')}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--statements", type=Path, metavar="PATH",
                        help="statements spec (TSV) to check coverage against "
                             "(default: the bundled copy)")
    parser.add_argument("--references", type=Path, metavar="PATH",
                        help="references spec (TSV) (default: the bundled copy)")
    parser.add_argument("--guideline", type=Path, action="append", metavar="FILE",
                        help="check this guideline content instead of the bundled one "
                             "(repeatable; the core ontology is always the bundled one)")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="output format (default: text)")


def run(args: argparse.Namespace) -> int:
    report = run_checks(statements=args.statements, references=args.references,
                        guideline_files=args.guideline)
    if args.format == "json":
        json.dump(report.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(format_text(report))
    return 0 if report.ok else 1
