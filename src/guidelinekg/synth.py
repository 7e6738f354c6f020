"""``guidelinekg synth``: a synthetic cohort for benchmarks and scale tests (issue 13).

Real-looking patients are made from template records (the bundled example patients that
conform to the shapes, or a folder of the user's own), so the generator knows no guideline:
every value it varies, it varies within what the vocabulary allows.

For each patient, a template is chosen and copied with fresh IRIs, then:

- each coded value (``gkg:valueCode``) is, with some probability, replaced by another concept
  of the same value set (``skos:inScheme``): receptor statuses, sites, pain, stages vary;
- every date of the record moves by one random offset into the past, so the order of events
  (and the record's validity) is kept while ages and intervals vary;
- an incomplete record (20 % by default) loses one of its items, so facts go missing;
- an invalid record (5 % by default) gets a birth date after its latest event, which the
  shapes refuse: a cohort run must report it, never derive from it.

The same seed gives the same cohort, byte for byte. Output is N-Triples, written patient by
patient, so any size streams to a file without being held in memory.

``--format fhir`` and ``--format ndjson`` write the cohort as FHIR instead, from template
Bundles, one Bundle file per patient or a FHIR Bulk Data export of the same patients
(guidelinekg.synth_fhir).
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TextIO, TypeVar

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.compare import to_canonical_graph
from rdflib.namespace import RDF, SKOS, XSD
from rdflib.term import Node

from guidelinekg import console
from guidelinekg.loading import PREFIXES, InputError, parse_rdf_file
from guidelinekg.namespaces import GKG
from guidelinekg.resources import examples_dir
from guidelinekg.stdio import is_stdio, output_stream, refuse_folder

PATIENT = GKG.Patient
SUBJECT = GKG.subject
VALUE_CODE = GKG.valueCode
BIRTH_DATE = GKG.birthDate
BASE_IRI = "http://example.org/synth/"


@dataclass(frozen=True)
class SynthOptions:
    patients: int
    seed: int = 1
    incomplete_rate: float = 0.20
    invalid_rate: float = 0.05
    recode_rate: float = 0.30
    max_shift_days: int = 3 * 365


@dataclass(frozen=True)
class Template:
    """One patient's record: its triples, its patient node and its record items."""

    triples: tuple[tuple[Node, Node, Node], ...]
    patient: URIRef
    items: tuple[Node, ...]


def value_sets(vocabulary: Graph) -> dict[Node, tuple[Node, ...]]:
    """Concept -> the other concepts of its value set, for recoding."""
    members: dict[Node, list[Node]] = {}
    for concept, scheme in vocabulary.subject_objects(SKOS.inScheme):
        members.setdefault(scheme, []).append(concept)
    by_concept: dict[Node, tuple[Node, ...]] = {}
    for concepts in members.values():
        ordered = tuple(sorted(concepts, key=str))
        for concept in ordered:
            by_concept[concept] = ordered
    return by_concept


def templates_from(graph: Graph) -> list[Template]:
    """One template per patient of the graph, with the items that name it. Blank nodes get
    canonical labels first: the parser's labels change from run to run, and a cohort's
    bytes must not."""
    graph = canonical_blank_nodes(graph)
    found = []
    for patient in sorted(graph.subjects(RDF.type, PATIENT), key=str):
        if not isinstance(patient, URIRef):
            continue
        items = tuple(sorted(graph.subjects(SUBJECT, patient), key=str))
        nodes = {patient, *items}
        nodes |= _nested(graph, items)
        triples = tuple(sorted(((s, p, o) for s, p, o in graph if s in nodes),
                               key=lambda t: (str(t[0]), str(t[1]), str(t[2]))))
        found.append(Template(triples, patient, items))
    return found


def canonical_blank_nodes(graph: Graph) -> Graph:
    """The graph with its blank nodes labelled by their content (RDF canonicalisation),
    the same labels at every run."""
    canonical = Graph()
    for triple in to_canonical_graph(graph):
        canonical.add(triple)
    return canonical


def _nested(graph: Graph, roots: Iterable[Node]) -> set[Node]:
    """Blank nodes under the items (dose specifications)."""
    seen: set[Node] = set()
    stack = list(roots)
    while stack:
        for obj in graph.objects(stack.pop(), None):
            if isinstance(obj, BNode) and obj not in seen:
                seen.add(obj)
                stack.append(obj)
    return seen


def default_templates() -> list[Template]:
    """The bundled example patients that conform to the shapes."""
    from guidelinekg.validation import validate_patients

    graph = Graph()
    for path in sorted((examples_dir() / "patients").rglob("*.ttl")):
        graph += parse_rdf_file(path)
    refused = validate_patients(graph).patients_with("Violation")
    return [t for t in templates_from(graph) if t.patient not in refused]


class _PatientMaker:
    """Copies templates into new patients, varied within the vocabulary."""

    def __init__(self, templates: list[Template], options: SynthOptions,
                 recodes: dict[Node, tuple[Node, ...]]) -> None:
        if not templates:
            raise InputError("templates", "no patient record to make a cohort from")
        self.templates = templates
        self.options = options
        self.recodes = recodes
        self.random = random.Random(options.seed)

    def patient(self, number: int) -> list[tuple[Node, Node, Node]]:
        template = self.templates[self.random.randrange(len(self.templates))]
        prefix = f"{BASE_IRI}{self.options.seed}/p{number}/"
        dropped = self._dropped_item(template)
        shift = timedelta(days=self.random.randrange(self.options.max_shift_days + 1))
        renamed: dict[Node, Node] = {}
        triples = []
        for subject, predicate, obj in template.triples:
            if subject == dropped or obj == dropped:
                continue
            triples.append((self._rename(subject, prefix, number, renamed), predicate,
                            self._value(predicate, self._rename(obj, prefix, number, renamed),
                                        shift)))
        if self.random.random() < self.options.invalid_rate:
            triples = self._born_after_everything(triples, renamed[template.patient])
        return triples

    def _dropped_item(self, template: Template) -> Node | None:
        if template.items and self.random.random() < self.options.incomplete_rate:
            return template.items[self.random.randrange(len(template.items))]
        return None

    def _rename(self, node: Node, prefix: str, number: int, renamed: dict[Node, Node]
                ) -> Node:
        if isinstance(node, BNode):
            # Numbered in the template's (canonical) order, with the seed and the patient:
            # the same at every run, and no two patients share a blank node.
            if node not in renamed:
                renamed[node] = BNode(f"b{len(renamed)}s{self.options.seed}p{number}")
            return renamed[node]
        if isinstance(node, URIRef) and not any(str(node).startswith(ns)
                                                 for ns in PREFIXES.values()):
            local = str(node).rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
            return renamed.setdefault(node, URIRef(prefix + local))
        return node

    def _value(self, predicate: Node, value: Node, shift: timedelta) -> Node:
        if predicate == VALUE_CODE and value in self.recodes \
                and self.random.random() < self.options.recode_rate:
            choices = self.recodes[value]
            return choices[self.random.randrange(len(choices))]
        if isinstance(value, Literal) and value.datatype == XSD.date:
            moved = value.toPython()
            if isinstance(moved, date):
                return Literal((moved - shift).isoformat(), datatype=XSD.date)
        return value

    @staticmethod
    def _born_after_everything(triples: list[tuple[Node, Node, Node]], patient: Node
                               ) -> list[tuple[Node, Node, Node]]:
        dates = [o.toPython() for _, p, o in triples
                 if isinstance(o, Literal) and o.datatype == XSD.date and p != BIRTH_DATE]
        latest = max((d for d in dates if isinstance(d, date)), default=date(2026, 1, 1))
        kept = [t for t in triples if not (t[0] == patient and t[1] == BIRTH_DATE)]
        born = Literal((latest + timedelta(days=30)).isoformat(), datatype=XSD.date)
        return [*kept, (patient, BIRTH_DATE, born)]


def synthesize(options: SynthOptions, templates: list[Template] | None = None
               ) -> Iterator[list[tuple[Node, Node, Node]]]:
    """The cohort, one patient's triples at a time."""
    from guidelinekg.patient_records import core_ontology

    maker = _PatientMaker(templates if templates is not None else default_templates(),
                          options, value_sets(core_ontology()))
    for number in range(1, options.patients + 1):
        yield maker.patient(number)


def write_ntriples(patients: Iterable[list[tuple[Node, Node, Node]]], out: TextIO) -> int:
    """Write each patient as N-Triples lines; the number of patients written."""
    count = 0
    for triples in patients:
        out.writelines(f"{s.n3()} {p.n3()} {o.n3()} .\n" for s, p, o in triples)
        count += 1
    return count


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


FORMATS = ("ttl", "fhir", "ndjson")
T = TypeVar("T")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--patients", type=int, required=True, metavar="N",
                        help="how many patients to make")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    parser.add_argument("--format", choices=FORMATS, default="ttl",
                        help="ttl (default): N-Triples, to standard output or the file -o "
                             "names; fhir: one FHIR Bundle JSON file per patient in the folder "
                             "-o names; ndjson: a FHIR Bulk Data export of the same patients "
                             "(Patient.ndjson, Condition.ndjson, ...) in the folder -o names")
    parser.add_argument("--from", dest="templates", type=Path, default=None, metavar="PATH",
                        help="template records: an RDF file or folder (--format ttl; default: "
                             "the bundled example patients that conform to the shapes), or a "
                             "FHIR Bundle file or folder of them, one patient each (--format "
                             "fhir, ndjson; default: the bundled examples/fhir Bundles); - "
                             "reads standard input")
    parser.add_argument("--incomplete", type=float, default=0.20, metavar="RATE",
                        help="share of records missing one item (default: 0.20)")
    parser.add_argument("--invalid", type=float, default=0.05, metavar="RATE",
                        help="share of records the shapes refuse (default: 0.05)")
    parser.add_argument("--outside", type=float, default=None, metavar="RATE",
                        help="--format fhir, ndjson: share of records outside the guideline's "
                             "population, their primary cancer recoded to one of another site "
                             "(default: 0.10)")
    parser.add_argument("-o", "--out", "--output", dest="out", type=Path, default=None,
                        metavar="PATH",
                        help="--format ttl: the N-Triples file to write (default, and -: "
                             "standard output); --format fhir, ndjson: the folder to write, new "
                             "or empty (required; a folder, so not -)")


def run(args: argparse.Namespace) -> int:
    if args.patients < 1:
        raise InputError("--patients", "must be at least 1")
    outside = 0.10 if args.outside is None else args.outside
    for name, rate in (("--incomplete", args.incomplete), ("--invalid", args.invalid),
                       ("--outside", outside)):
        if not 0.0 <= rate <= 1.0:
            raise InputError(name, "must be between 0 and 1")
    started = console.clock()
    if args.format == "ttl":
        if args.outside is not None:
            raise InputError("--outside", "applies to --format fhir and ndjson only")
        written = _run_ntriples(args)
    else:
        refuse_folder("--output", args.out, f"--format {args.format}")
        written = _run_fhir(args, outside)
    console.detail(f"made and wrote {console.count(written, 'patient')} in "
                   f"{console.since(started)} to "
                   f"{'standard output' if args.out is None or is_stdio(args.out) else args.out}")
    console.say(f"guidelinekg synth: {written} patients (seed {args.seed})")
    return 0


def _templates_said(templates: list[T], given: Path | None) -> list[T]:
    where = ("standard input" if is_stdio(given) else given) if given is not None else \
        "the bundled example patients"
    console.detail(f"{console.count(len(templates), 'template record')} from {where}")
    return templates


def _run_ntriples(args: argparse.Namespace) -> int:
    if args.templates is not None:
        from guidelinekg.patients import load_patient_input

        templates = templates_from(load_patient_input([args.templates]).graph)
    else:
        templates = default_templates()
    options = SynthOptions(args.patients, args.seed, args.incomplete, args.invalid)
    cohort = synthesize(options, _templates_said(templates, args.templates))
    if args.out is not None and not is_stdio(args.out):
        from guidelinekg.cli import output_directory

        output_directory(args.out.parent)
    with output_stream(args.out) as out:
        return write_ntriples(cohort, out)


def _run_fhir(args: argparse.Namespace, outside: float) -> int:
    from guidelinekg import synth_fhir

    if args.out is None:
        raise InputError("--output", f"--format {args.format} writes a folder: give it with "
                                     "--output DIR")
    templates = (synth_fhir.fhir_templates_from([args.templates])
                 if args.templates is not None else synth_fhir.default_fhir_templates())
    _templates_said(templates, args.templates)
    options = synth_fhir.FhirOptions(patients=args.patients, seed=args.seed,
                                     incomplete_rate=args.incomplete,
                                     invalid_rate=args.invalid, outside_rate=outside)
    cohort = synth_fhir.synthesize_fhir(options, templates)
    synth_fhir.empty_output_folder(args.out)
    if args.format == "fhir":
        return synth_fhir.write_bundles(cohort, args.out)
    return synth_fhir.write_ndjson(cohort, args.out)
