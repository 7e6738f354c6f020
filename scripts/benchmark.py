"""Speed and memory of validation and derivation on synthetic cohorts.

Targets are measured here, never in timed tests. The cohort is what `guidelinekg synth`
makes: the bundled example patients that conform to the shapes, copied under fresh IRIs
with values varied within their value sets, dates moved, 20 % incomplete and 5 % invalid
records, so it exercises the shapes and queries as a real population would. Prints one line
per stage and cohort size: seconds, seconds per patient, and the peak resident memory of
the process so far. (Validation is timed as the whole validation, derivation with the
validation of the record it requires: an invalid record is refused, not derived.)

    .venv/bin/python scripts/benchmark.py --sizes 100 1000 --engine oxigraph
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date

from rdflib import Graph

from guidelinekg.cohorts import DEFAULT_PARTITION_SIZE, CohortSettings, evaluate_cohort
from guidelinekg.derivation import derive
from guidelinekg.loading import guideline_graph, parse_rdf_file
from guidelinekg.patient_records import shape_files
from guidelinekg.shacl import validate_graph
from guidelinekg.synth import SynthOptions, synthesize


def cohort(size: int, seed: int = 1) -> Graph:
    """A synthetic cohort of ``size`` patients (``guidelinekg synth``)."""
    graph = Graph()
    for triples in synthesize(SynthOptions(patients=size, seed=seed)):
        for triple in triples:
            graph.add(triple)
    return graph


def cohort_run(graph: Graph, settings: CohortSettings, workers: int) -> int:
    """recommend --format jsonl: partitions of the default size in worker processes."""
    return sum(len(outcome.lines) for outcome in
               evaluate_cohort(graph, settings, DEFAULT_PARTITION_SIZE, workers))


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(label: str, size: int, action) -> None:
    start = time.perf_counter()
    action()
    seconds = time.perf_counter() - start
    print(f"{label:<28} {size:>7} patients {seconds:8.2f} s {1000 * seconds / size:8.2f} ms/patient"
          f" {peak_memory_mb():8.0f} MB peak")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--engine", choices=("oxigraph", "rdflib"), default="oxigraph")
    parser.add_argument("--skip-validation", action="store_true")
    parser.add_argument("--workers", type=int, default=2,
                        help="worker processes of the cohort run (default 2)")
    args = parser.parse_args()
    shapes = Graph()
    for path in shape_files():
        shapes += parse_rdf_file(path)
    ontology = guideline_graph()
    settings = CohortSettings(date(2026, 12, 1), args.engine)
    for size in args.sizes:
        graph = cohort(size)
        if not args.skip_validation:
            measure("validate (pySHACL)", size, lambda g=graph: validate_graph(g, shapes, ontology))
        measure(f"recommend ({args.engine})", size,
                lambda g=graph: derive(g, date(2026, 12, 1), args.engine, allow_invalid=True))
        measure(f"cohort run ({args.workers} workers)", size,
                lambda g=graph: cohort_run(g, settings, args.workers))


if __name__ == "__main__":
    main()
