"""``guidelinekg validate``: patient records checked against the patient shapes.

Shapes (``patient_records.shape_files()``): the core's ``shapes/patient.ttl`` and each
domain's ``shapes/`` say when a record is wrong (sh:Violation: it is refused) and add notes
(sh:Info); each guideline's ``shapes/completeness.ttl``, generated from its criteria, says
which facts its recommendations need are missing (sh:Warning). The vocabulary (core,
domains, guidelines' own terms) goes along so that targets reach subclasses and value sets
and units are known.
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
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import DCTERMS, RDF, SH
from rdflib.term import Node

from guidelinekg.console import terminal_text
from guidelinekg.literal_checks import ill_typed_results, ill_typed_triples
from guidelinekg.loading import (
    InputError,
    bind_project_prefixes,
    merge_graphs,
)
from guidelinekg.namespaces import GKG, curie
from guidelinekg.patient_records import (
    core_ontology,
    patient_shapes,
    patients_of,
    undeclared_shape_paths,
)
from guidelinekg.patients import PatientInput, load_patient_input
from guidelinekg.record_vocabulary import record_vocabulary, record_vocabulary_results
from guidelinekg.shacl import (
    ShaclReport,
    ShaclResult,
    add_results,
    shape_name,
    validate_graph,
)

EXIT_CONFORMS = 0
EXIT_VIOLATIONS = 1

SEVERITY_WORDS = {"Violation": ("violation", "violations"), "Warning": ("warning", "warnings"),
                  "Info": ("note", "notes")}


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


def validate_patients(graph: Graph, *, inplace: bool = False) -> PatientValidation:
    """Validate a patient graph (one patient or a cohort) against the patient shapes.

    With ``inplace`` the graph is given up to the validator (the ontology is added to it;
    no copy is made)."""
    shapes = patient_shapes()
    patients = sorted(set(graph.subjects(RDF.type, GKG.Patient)), key=str)
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
    """The W3C validation report, each result with gkg:patient naming its patient.

    Its sh:conforms is SHACL's: false when there is any result, a warning or a note too.
    (The engines, as pySHACL with warnings allowed, say true when no result is a violation;
    the project's "no violations" is the exit code and the summary, not this triple.)"""
    report = validation.report.graph
    for node in report.subjects(RDF.type, SH.ValidationReport):
        report.set((node, SH.conforms, Literal(not validation.results)))
    for result in report.subjects(RDF.type, SH.ValidationResult):
        focus = report.value(result, SH.focusNode)
        if focus is not None:
            for patient in patients_of(focus, data):
                report.add((result, GKG.patient, patient))
    bind_project_prefixes(report)
    report.bind("sh", SH)
    return report


# ---------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------


def path_text(report_graph: Graph, path: Node | None) -> str:
    """A SHACL path in SPARQL property-path syntax (gkg:subject/gkg:birthDate)."""
    if path is None:
        return ""
    if isinstance(path, URIRef):
        return curie(path)
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
    return curie(path)


def _what(result: PatientResult, report_graph: Graph, data: Graph | None) -> str:
    """The fact (for a completeness warning) or the focus and path a result is about."""
    if result.fact is not None:
        return curie(result.fact)
    parts = []
    focus = result.result.focus
    if focus != result.patient:
        holder = data.value(None, GKG.hasDose, focus) if data is not None else None
        if isinstance(focus, BNode) and holder is not None:
            parts.append(f"the dose of {curie(holder)}")
        elif isinstance(focus, BNode):
            parts.append(f"a blank node (_:{focus})")
        elif holder is not None:
            parts.append(f"{curie(focus)} (the dose of {curie(holder)})")
        else:
            parts.append(curie(focus))
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
        if source.fhir is not None:
            # What the import left out, each with why (guidelinekg import-fhir says the same).
            lines.extend(f"  {entry.text()}" for entry in source.fhir.entries(outcome="ignored"))
    grouped = validation.by_patient()
    order: list[Node | None] = [p for p in validation.patients if p in grouped]
    order += sorted((p for p in grouped if p not in order and p is not None), key=str)
    if None in grouped:
        order.append(None)
    for patient in order:
        results = grouped[patient]
        heading = curie(patient) if patient is not None else "No patient (items that name none)"
        lines.append(f"{heading}: {_counts(results)}")
        for result in results:
            shacl = result.result
            lines.append(f"  {shacl.severity.upper():9} {_what(result, report_graph, data)}")
            lines.append(f"      {shacl.message}")
            details = []
            if shacl.value is not None and shacl.value not in (shacl.focus, result.patient):
                details.append(f"value: {curie(shacl.value)}")
            details.append(f"shape: {result.shape_name}")
            lines.append("      " + "; ".join(details))
    lines.append(summary_line(validation))
    return terminal_text("\n".join(lines) + "\n")  # a record's text is never a control


def _node_json(term: Node | None) -> str | None:
    if term is None:
        return None
    if isinstance(term, BNode):
        return f"_:{term}"
    return str(term)


def result_json(result: PatientResult, report_graph: Graph) -> dict[str, object]:
    """One result as the JSON report gives it (``report_graph`` holds its path's nodes)."""
    return {
        "patient": _node_json(result.patient),
        "severity": result.result.severity,
        "focus": _node_json(result.result.focus),
        "path": path_text(report_graph, result.result.path) or None,
        "value": _node_json(result.result.value),
        "fact": _node_json(result.fact),
        "message": result.result.message,
        "shape": _node_json(result.result.source_shape),
        "shape_name": result.shape_name,
        "constraint": _node_json(result.result.constraint),
    }


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
        "results": [result_json(r, report_graph) for r in validation.results],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------

FORMAT_HELP = """\
output format. text (default): a report grouped by patient and a summary line. turtle:
the W3C SHACL validation report (sh:ValidationReport), each result also naming its patient
(gkg:patient); its sh:conforms is SHACL's, false with any result, warnings too. json:
{"conforms": bool (no violations, warnings allowed: the exit code's reading), "summary":
{"patients", "patients_with_violations",
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
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="patient files or folders of them; all are validated together; "
                             "- reads standard input (its format told from its content; "
                             "--format jsonl spools it to a temporary file, deleted "
                             "afterwards, and reads that) (or --endpoint URL: the records of a "
                             "SPARQL store)")
    parser.add_argument("--format", choices=("text", "turtle", "json", "jsonl"),
                        default="text", help=FORMAT_HELP + "; jsonl: a cohort read as a "
                        "stream, validated in partitions, every result a JSON line (an item "
                        "of json's results) as partitions finish, and a line of a FHIR Bulk "
                        "Data export that names no patient a refusal line saying why "
                        "(\"patient\": null, \"refused\": true); the results in brief on "
                        "standard error")
    from guidelinekg.cohort_command import add_cohort_arguments
    from guidelinekg.store_commands import add_store_arguments

    add_cohort_arguments(parser, "validate")
    add_store_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from guidelinekg import console
    from guidelinekg.store_commands import is_cohort_run, reads_store, run_validate

    if reads_store(args):
        return run_validate(args)
    if is_cohort_run(args):
        from guidelinekg.cohort_command import run_cohort_validation

        return run_cohort_validation(args)
    started = console.clock()
    source = load_patient_input(args.paths, quiet=console.is_quiet())
    patients = len(set(source.graph.subjects(RDF.type, GKG.Patient)))
    console.files_read(source.files, started, [console.count(patients, "patient"),
                                               f"{len(source.graph):,} triples"])
    if not patients:
        where = ", ".join(str(path) for path in source.files)
        raise InputError(where, "no patient found (nothing is declared `a gkg:Patient`): "
                                "nothing to validate")
    started = console.clock()
    validation = validate_patients(source.graph, inplace=True)
    console.detail(f"validated in {console.since(started)}: {_counts(validation.results)}")
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
    "patient_shapes",
    "patients_of",
    "record_vocabulary",
    "record_vocabulary_results",
    "text_report",
    "undeclared_shape_paths",
    "validate_patients",
]
