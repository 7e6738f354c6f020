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
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, SKOS
from rdflib.term import Node

from guidelinekg import console
from guidelinekg.coverage import (
    REFERENCE_COLUMNS,
    STATEMENT_COLUMNS,
    CoverageReport,
    check_guideline_coverage,
    read_tsv,
)
from guidelinekg.loading import (
    InputError,
    bind_project_prefixes,
    merge_graphs,
    parse_rdf_file,
)
from guidelinekg.namespaces import GKG, curie
from guidelinekg.reasoning import ReasonerError, ReasoningResult, check_consistency
from guidelinekg.resources import (
    Module,
    all_shape_files,
    guideline_module,
    guideline_modules,
    modules,
    shapes_dir,
)
from guidelinekg.shacl import shape_name, validate_graph
from guidelinekg.shape_terms import (
    ShapeTermProblem,
    display_path,
    path_label,
    undeclared_shape_terms,
)
from guidelinekg.sparql import QueryFile, bundled_queries, make_engine
from guidelinekg.stdio import STDIN, is_stdio, one_standard_input, stdin_file

GUIDELINE_SHAPES = "guideline.ttl"
QC_FOLDER = "qc"



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
    for subject, note in graph.subject_objects(GKG.curationNote):
        key = graph.value(subject, SKOS.notation)
        is_statement = (subject, RDF.type, GKG.Recommendation) in graph
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
    coverage: list[CoverageReport] = field(default_factory=list)
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
            + sum(len(report.problems) for report in self.coverage)
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
            "coverage": [report.to_dict() for report in self.coverage],
            "curation_notes": [vars(n) for n in self.curation_notes],
        }


# --------------------------------------------------------------------------------------------
# Readable names of terms
# --------------------------------------------------------------------------------------------



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
_PART_LINKS = (GKG.applicability, GKG.hasMember, GKG.hasDoseRegimen, GKG.hasStep,
               GKG.regimenCondition, GKG.hasComparativeEvidence)


def statements_using(graph: Graph, node: Node) -> tuple[str, ...]:
    """Keys of the statements a criterion, regimen or dose step belongs to (in order)."""
    seen = {node}
    frontier = [node]
    found = set()
    while frontier:
        current = frontier.pop()
        for link in _PART_LINKS:
            for parent in graph.subjects(link, current):
                if (parent, RDF.type, GKG.Recommendation) in graph:
                    found.add(parent)
                elif parent not in seen:
                    seen.add(parent)
                    frontier.append(parent)
    # gkg:statedIn names the statement of a regimen directly.
    found |= set(graph.objects(node, GKG.statedIn))

    def order(statement: Node) -> tuple:
        position = graph.value(statement, GKG.sectionOrder)
        return (position.toPython() if isinstance(position, Literal) else 10**6,
                term_label(graph, statement))

    return tuple(term_label(graph, s) for s in sorted(found, key=order))


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

def selected_guidelines(names: Sequence[str] | None = None) -> list[Module]:
    """The guidelines named (all found when none is); InputError for an unknown name."""
    if not names:
        return list(guideline_modules())
    try:
        return [guideline_module(name) for name in dict.fromkeys(names)]
    except ValueError as error:
        raise InputError("--guideline", str(error)) from None


def checked_graph(guidelines: Sequence[Module] | None = None,
                  content: Sequence[Path] = ()) -> Graph:
    """The core, the domains and the chosen guidelines (all by default); ``content``
    replaces the content of the one guideline chosen."""
    chosen = {m.name for m in (guidelines if guidelines is not None else guideline_modules())}
    files: list[Path] = []
    for module in modules():
        if module.kind != "guideline":
            files += module.ontology_files()
        elif module.name in chosen:
            files += module.vocabulary_files() if content else module.ontology_files()
    return bind_project_prefixes(merge_graphs(parse_rdf_file(p) for p in [*files, *content]))


def run_checks(
    statements: Path | None = None,
    references: Path | None = None,
    content: Sequence[Path] = (),
    shape_files: Sequence[Path] | None = None,
    java: str | None = None,
    guidelines: Sequence[str] | None = None,
) -> CheckReport:
    """Run every check; nothing is skipped silently (a reasoner that cannot run is an error).
    ``statements``, ``references`` and ``content`` replace the spec or content of the one
    guideline chosen (``guidelines``; all found by default)."""
    chosen = selected_guidelines(guidelines)
    content = [Path(path) for path in content]
    if (statements or references or content) and len(chosen) != 1:
        raise InputError("--guideline", "a spec or content file replaces one guideline's: "
                         "choose it with --guideline ID")
    # Unreadable inputs are refused before the slow checks run.
    for module in chosen:
        read_tsv(Path(statements or module.statements_file), STATEMENT_COLUMNS)
        read_tsv(Path(references or module.references_file), REFERENCE_COLUMNS)
    started = console.clock()
    graph = checked_graph(chosen, content)
    console.detail(f"read the guideline graph ({', '.join(m.name for m in chosen)}"
                   + (f", content from {len(content)} files" if content else "")
                   + f") in {console.since(started)}: {len(graph):,} triples")
    report = CheckReport(
        triples=len(graph),
        recommendations=len(set(graph.subjects(RDF.type, GKG.Recommendation))),
    )
    started = console.clock()
    try:
        report.reasoning = check_consistency(graph, java=java)
    except ReasonerError as error:
        report.reasoning_error = str(error)
    started = _step("the reasoner", started)
    report.shapes_file = display_path(guideline_shapes_path())
    report.shape_findings = validate_guideline(graph)
    files = list(shape_files) if shape_files is not None else all_shape_files(
        {module.name for module in chosen})
    report.shape_files_checked = [display_path(p) for p in files]
    report.shape_term_problems = undeclared_shape_terms(files, graph)
    started = _step("the shapes", started)
    report.qc = run_qc(graph)
    started = _step(f"{len(report.qc)} QC queries", started)
    report.coverage = [check_guideline_coverage(module, content, statements, references)
                       for module in chosen]
    _step("coverage", started)
    report.curation_notes = curation_notes(graph)
    return report


def _step(what: str, started: float) -> float:
    """The detail of a check done (--verbose): what and how long; the next step's start."""
    console.detail(f"{what}: {console.since(started)}")
    return console.clock()


# --------------------------------------------------------------------------------------------
# Text report
# --------------------------------------------------------------------------------------------

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

    for coverage in report.coverage:
        lines.extend(coverage.text_lines(_mark, _where))
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
    parser.add_argument("--guideline", action="append", metavar="ID",
                        help="check this guideline (repeatable; default: every guideline "
                             "found)")
    parser.add_argument("--statements", type=Path, metavar="PATH",
                        help="statements spec (TSV) to check the chosen guideline's coverage "
                             "against (default: statements.tsv in its folder)")
    parser.add_argument("--references", type=Path, metavar="PATH",
                        help="references spec (TSV) (default: references.tsv in its folder)")
    parser.add_argument("--content", type=Path, action="append", metavar="FILE",
                        help="check this content instead of the chosen guideline's own "
                             "(repeatable; the core and domains are always the bundled ones)")
    parser.epilog = ("- as the PATH or FILE of one of --statements, --references, --content "
                     "reads standard input (RDF told from its content), spooled to a "
                     "temporary file that is deleted afterwards. " + (parser.epilog or ""))
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="output format (default: text)")


def run(args: argparse.Namespace) -> int:
    given = {"--statements": args.statements, "--references": args.references,
             "--content": args.content or []}
    one_standard_input(given)
    with ExitStack() as stack:
        spooled: dict[Path, Path] = {}

        def readable(path: Path, suffix: str | None = None) -> Path:
            if not is_stdio(path):
                return path
            copy = stack.enter_context(stdin_file(suffix))
            spooled[copy] = STDIN
            return copy

        report = run_checks(
            statements=args.statements and readable(args.statements, ".tsv"),
            references=args.references and readable(args.references, ".tsv"),
            content=[readable(path) for path in args.content or ()],
            guidelines=args.guideline)
    report.coverage = [replace(coverage,
                               statements_path=spooled.get(coverage.statements_path,
                                                           coverage.statements_path),
                               references_path=spooled.get(coverage.references_path,
                                                           coverage.references_path))
                       for coverage in report.coverage]
    if args.format == "json":
        json.dump(report.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(format_text(report))
    return 0 if report.ok else 1


def _where(path: Path) -> str:
    """A spec file as the report names it."""
    return str(path) if path == STDIN else display_path(path)
