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
import re
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


def query_scaling(small: int, large: int) -> int:
    """Time each derivation query on two cohort sizes. Linear cost grows like the cohort;
    a query whose time grows more than twice as fast (FILTER NOT EXISTS around a property
    path, say, quadratic on Oxigraph) is flagged. 1 when one is."""
    from guidelinekg.derivation import prepare_engine
    from guidelinekg.sparql import bundled_queries

    growth = large / small
    engines = {size: prepare_engine(cohort(size), date(2026, 12, 1)) for size in (small, large)}
    flagged = 0
    print(f"{'query':<40} {small:>6} pts {large:>6} pts  growth (cohort x{growth:.0f})")
    for query in bundled_queries("derive"):
        form = re.search(r"^\s*(SELECT|CONSTRUCT|ASK|INSERT|DELETE|DESCRIBE)\b", query.text,
                         re.MULTILINE | re.IGNORECASE)
        required = [p for p in query.parameters if "optional" not in p.description]
        if form is None or form.group(1).upper() != "SELECT" or required:
            continue  # updates and queries that need a parameter are timed by the stages
        seconds = {}
        for size, engine in engines.items():
            start = time.perf_counter()
            engine.select(query.text)
            seconds[size] = time.perf_counter() - start
        ratio = seconds[large] / max(seconds[small], 1e-3)
        worse = ratio > 2 * growth and seconds[large] > 0.5
        flagged += worse
        print(f"{query.name:<40} {seconds[small]:8.2f} s {seconds[large]:8.2f} s  x{ratio:5.1f}"
              + ("  GROWS FASTER THAN THE COHORT" if worse else ""))
    return 1 if flagged else 0


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
    parser.add_argument("--query-scaling", type=int, nargs=2, default=None, metavar=("N", "M"),
                        help="only time every derivation query at N and at M patients and "
                             "flag those that grow faster than the cohort (exit 1 if any)")
    args = parser.parse_args()
    if args.query_scaling:
        raise SystemExit(query_scaling(*args.query_scaling))
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
