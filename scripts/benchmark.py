"""Speed and memory of validation and derivation on synthetic cohorts.

Targets are measured here, never in timed tests. Each patient is a copy of a bundled
example record under its own IRIs, so the cohort exercises the same shapes and queries as
real records. Prints one line per stage and cohort size: seconds, seconds per patient,
and the peak resident memory of the process so far.

    .venv/bin/python scripts/benchmark.py --sizes 100 1000 --engine oxigraph
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date
from pathlib import Path

from rdflib import Graph, URIRef

from guidelinekg.derivation import derive
from guidelinekg.loading import guideline_graph, parse_rdf_file
from guidelinekg.patient_records import shape_files
from guidelinekg.resources import examples_dir
from guidelinekg.shacl import validate_graph

TEMPLATE = examples_dir() / "patients" / "hr-positive-her2-negative-bone-only.ttl"


def cohort(size: int, template: Path = TEMPLATE) -> Graph:
    """``size`` copies of the template record, each under its own IRI prefix."""
    record = parse_rdf_file(template)
    prefix = "http://example.org/patients/hr-pos-bone-only/"
    graph = Graph()
    for number in range(size):
        def rename(term, number=number):
            if isinstance(term, URIRef) and str(term).startswith(prefix):
                return URIRef(f"http://example.org/cohort/{number}/{str(term)[len(prefix):]}")
            return term
        for s, p, o in record:
            graph.add((rename(s), p, rename(o)))
    return graph


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
    args = parser.parse_args()
    shapes = Graph()
    for path in shape_files():
        shapes += parse_rdf_file(path)
    ontology = guideline_graph()
    for size in args.sizes:
        graph = cohort(size)
        if not args.skip_validation:
            measure("validate (pySHACL)", size, lambda g=graph: validate_graph(g, shapes, ontology))
        measure(f"recommend ({args.engine})", size,
                lambda g=graph: derive(g, date(2026, 12, 1), args.engine))


if __name__ == "__main__":
    main()
