"""Speed and memory of the commands a user runs, on synthetic cohorts (`make benchmark`).

Targets are measured here, never in timed tests. Each cohort is what `guidelinekg synth`
makes (the bundled example patients copied with fresh names, values varied within their
value sets, dates moved, 20 % incomplete, 5 % invalid, outside-population patients in the
FHIR forms), written as N-Triples, as FHIR Bundles and as a FHIR Bulk Data export. Each
measured command runs in a fresh process, as a user would run it; the table gives its wall
time, its CPU time (every process it started included: worker processes, and Spark's JVM
and Python workers, which nobody waits for and are sampled) and the peak resident memory
of its largest process (with --workers 2 the run holds the parent and two workers at once;
with --spark the JVM is usually the largest).

    .venv/bin/python scripts/benchmark.py --sizes 1000 10000
    .venv/bin/python scripts/benchmark.py --sizes 1000 --naive 100  # the naive pipeline too
    .venv/bin/python scripts/benchmark.py --query-scaling 100 400   # the quadratic guard
    .venv/bin/python scripts/benchmark.py --one-patient             # one patient, warm
    .venv/bin/python scripts/benchmark.py --record-scaling 150 300  # one long record

The naive pipeline, for the ratio: the cohort in one rdflib graph, validated whole by
pySHACL, derived with rdflib's SPARQL engine, in one process.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path

AS_OF = "2026-12-01"
CLI = [sys.executable, "-m", "guidelinekg.cli"]


@dataclass(frozen=True)
class Measure:
    command: str
    patients: int
    wall: float
    cpu: float
    peak_mb: float
    exit_code: int

    def row(self) -> str:
        return (f"| {self.patients:,} | `{self.command}` | {self.wall:.1f} s | {self.cpu:.1f} s | "
                f"{1000 * self.wall / self.patients:.1f} ms | {self.peak_mb:,.0f} MB |")


def _process_table() -> dict[int, tuple[int, float, int]]:
    """Every process: pid -> (parent pid, CPU seconds, resident KB), from /proc."""
    ticks, page_kb = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE") // 1024
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        # after the command's name: state ppid ... utime(12) stime(13) ... rss(22)
        table[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks,
                             int(fields[21]) * page_kb)
    return table


def measured_child(command: list[str]) -> None:
    """Run ``command`` and print its exit code, CPU seconds and largest resident memory (KB)
    on standard error. A fresh process per measure, so the numbers are that command's alone.
    The resource usage of the processes waited for is exact; the process tree is sampled
    too, for the processes nobody waits for (Spark's JVM and its Python workers): the larger
    of the two is given for each, so nothing the command started goes uncounted."""
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    cpu_by_process: dict[int, float] = {}
    largest_kb = 0
    while child.poll() is None:
        table = _process_table()
        tree, frontier = set(), {child.pid}
        while frontier:
            tree |= frontier
            frontier = {pid for pid, row in table.items() if row[0] in frontier} - tree
        for pid in tree & table.keys():
            cpu_by_process[pid] = table[pid][1]
            largest_kb = max(largest_kb, table[pid][2])
        time.sleep(0.2)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = max(usage.ru_utime + usage.ru_stime, sum(cpu_by_process.values()))
    print(child.returncode, cpu, max(usage.ru_maxrss, largest_kb), file=sys.stderr)


def run_measured(label: str, patients: int, command: list[str],
                 environment: dict[str, str] | None = None) -> Measure:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--measure", *command],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, **(environment or {})})
    wall = time.perf_counter() - start
    code, cpu, peak_kb = done.stderr.strip().splitlines()[-1].split()
    measure = Measure(label, patients, wall, float(cpu), int(peak_kb) / 1024, int(code))
    print(measure.row(), flush=True)
    return measure


def synth(patients: int, form: str, target: Path, seed: int = 1) -> None:
    output = ["-o", str(target)] if form == "ttl" else ["--output", str(target)]
    subprocess.run([*CLI, "synth", "--patients", str(patients), "--seed", str(seed),
                    "--format", form, *output], check=True, capture_output=True)


def naive(cohort: Path) -> None:
    """The naive pipeline, timed in this process (run in a child by --naive-only)."""
    from guidelinekg.derivation import derive
    from guidelinekg.loading import parse_rdf_file

    graph = parse_rdf_file(cohort)
    derive(graph, date.fromisoformat(AS_OF), "rdflib", allow_invalid=True)


def benchmark(sizes: list[int], workers: int, naive_patients: int, spark: str | None,
              validate_max: int, forms: list[str]) -> None:
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; as of {AS_OF}; workers {workers}\n")
    one_patient()
    print("| patients | command | wall | CPU | wall per patient | peak memory (largest "
          "process) |\n|---|---|---|---|---|---|")
    cohort_run = ["--format", "jsonl", "--workers", str(workers), "--quiet",
                  "--as-of", AS_OF]
    with tempfile.TemporaryDirectory(prefix="guidelinekg-benchmark-") as folder:
        root = Path(folder)
        for size in sizes:
            nt, bundles, export = root / f"{size}.nt", root / f"{size}-fhir", root / f"{size}-nd"
            synth(size, "ttl", nt)
            if size <= validate_max:
                run_measured("validate (whole input)", size, [*CLI, "validate", str(nt),
                                                              "--format", "json"])
            run_measured(f"validate --format jsonl --workers {workers}", size,
                         [*CLI, "validate", str(nt), "--format", "jsonl", "--workers",
                          str(workers), "--quiet"])
            if "ttl" in forms:
                run_measured(f"recommend N-Triples --workers {workers}", size,
                             [*CLI, "recommend", str(nt), *cohort_run])
            if "fhir" in forms:
                synth(size, "fhir", bundles)
                run_measured(f"recommend FHIR Bundles --workers {workers}", size,
                             [*CLI, "recommend", str(bundles), *cohort_run])
            if "ndjson" in forms or spark:
                synth(size, "ndjson", export)
            if "ndjson" in forms:
                run_measured(f"recommend FHIR NDJSON --workers {workers}", size,
                             [*CLI, "recommend", str(export), *cohort_run])
            if spark:
                run_measured(f"recommend FHIR NDJSON --spark {spark}", size,
                             [*CLI, "recommend", str(export), "--spark", spark,
                              "--spark-output", str(root / f"spark-{size}"), "--quiet",
                              "--as-of", AS_OF])
        if naive_patients:
            # The naive pipeline takes seconds a patient: measured on a smaller cohort, the
            # ratio to the cohort run on the same cohort.
            nt = root / f"naive-{naive_patients}.nt"
            synth(naive_patients, "ttl", nt)
            fast = run_measured(f"recommend N-Triples --workers {workers}", naive_patients,
                                [*CLI, "recommend", str(nt), *cohort_run])
            slow = run_measured("naive: rdflib + pySHACL, whole", naive_patients,
                                [sys.executable, __file__, "--naive-only", str(nt)],
                                {"GUIDELINEKG_SHACL_ENGINE": "pyshacl"})
            print(f"\nnaive pipeline / cohort run at {naive_patients} patients: "
                  f"{slow.wall / fast.wall:.0f}x the wall time, {slow.cpu / fast.cpu:.0f}x the "
                  "CPU time")


def one_patient(rounds: int = 7, calls: int = 5) -> None:
    """One patient end to end in a warm process, through the Python API (read once, then
    ``recommend``: validation and derivation), on each valid example record: the mean of
    ``calls`` calls, best and median of ``rounds`` rounds (the machine's noise shows as the
    gap between the two)."""
    import statistics

    import guidelinekg
    from guidelinekg.resources import examples_dir

    as_of = date.fromisoformat(AS_OF)
    print("| example record (one patient, warm process) | recommend, best | median | "
          "validate alone, best |\n|---|---|---|---|")
    for path in sorted((examples_dir() / "patients").glob("*.ttl")):
        if path.name.startswith("invalid-"):
            continue
        patients = guidelinekg.read_patients([path])
        derived = _rounds(partial(guidelinekg.recommend, patients, as_of=as_of), rounds, calls)
        validated = _rounds(partial(guidelinekg.validate, patients), rounds, calls)
        print(f"| {path.name} | {min(derived):.1f} ms | {statistics.median(derived):.1f} ms "
              f"| {min(validated):.1f} ms |")
    print()


def record_scaling(small: int, large: int) -> int:
    """Validate and derive one patient whose record holds N findings of each of a few kinds
    (a pain score, an ER result and a disease status a day for N days), at two sizes. A
    long record is real (a pain score at every visit), and a check comparing each finding
    with every other took minutes at a thousand: a time that grows more than three times as
    fast as the record is flagged. 1 when one is."""
    import guidelinekg

    def record(size: int) -> Path:
        path = Path(tempfile.mkdtemp(prefix="guidelinekg-long-record-")) / "record.ttl"
        lines = ["@prefix gkg: <https://w3id.org/guidelinekg/ontology#> .",
                 "@prefix code: <https://w3id.org/guidelinekg/code/> .",
                 "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .",
                 "@prefix ex: <http://example.org/long-record/> .",
                 'ex:patient a gkg:Patient ; gkg:birthDate "1960-01-01"^^xsd:date .']
        first = date(2024, 1, 1).toordinal()
        for day in range(size):
            when = date.fromordinal(first + day).isoformat()
            for kind, value in (("BonePainAssessment", "pain-mild"),
                                ("EstrogenReceptorStatus", "positive"),
                                ("DiseaseStatusObservation", "stable-disease")):
                lines.append(f"ex:{kind}-{day} a gkg:{kind} ; gkg:subject ex:patient ; "
                             f'gkg:valueCode code:{value} ; gkg:effectiveDate "{when}"^^xsd:date .')
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    growth = large / small
    timings = {}
    for size in (small, large):
        patients = guidelinekg.read_patients([record(size)])
        guidelinekg.validate(patients)  # the shapes compiled
        started = time.process_time()
        guidelinekg.recommend(patients, as_of=date.fromisoformat(AS_OF))
        timings[size] = time.process_time() - started
    ratio = timings[large] / timings[small]
    flagged = ratio > growth * 1.5
    print(f"one record of {small} and {large} findings of each of 3 kinds: recommend "
          f"(validation included) {timings[small]:.2f} s and {timings[large]:.2f} s of CPU, "
          f"x{ratio:.1f} for a record x{growth:.0f}" + ("  <- grows faster than the record"
                                                        if flagged else ""))
    return int(flagged)


def _rounds(call: Callable[[], object], rounds: int, calls: int) -> list[float]:
    """The mean milliseconds of ``calls`` calls, for each of ``rounds`` rounds, after
    ``calls`` calls to warm up (the guideline built, the shapes read)."""
    for _ in range(calls):
        call()
    means = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        means.append((time.perf_counter() - started) / calls * 1000)
    return means


def query_scaling(small: int, large: int) -> int:
    """Time each fact query (at the evaluation date) and each derivation query (SELECTs, and
    CONSTRUCTs: a criteria step at every level) on two cohort sizes. Linear cost grows like
    the cohort; a query whose time grows more than twice as fast (FILTER NOT EXISTS around a
    property path, an EXISTS evaluated row by row over every patient's items, or a criterion
    result looked up by criterion and patient, all quadratic on Oxigraph) is flagged. 1 when
    one is."""
    from rdflib import Graph, Literal
    from rdflib.namespace import XSD

    from guidelinekg.derivation import at_step, criteria_levels, prepare_engine
    from guidelinekg.facts import fact_query_names
    from guidelinekg.sparql import SparqlEngine, bundled_queries, load_query
    from guidelinekg.synth import SynthOptions, synthesize

    def cohort(size: int) -> Graph:
        graph = Graph()
        for triples in synthesize(SynthOptions(patients=size, seed=1)):
            for triple in triples:
                graph.add(triple)
        return graph

    growth = large / small
    engines = {size: prepare_engine(cohort(size), date.fromisoformat(AS_OF))
               for size in (small, large)}
    flagged = 0
    print(f"{'query':<40} {small:>6} pts {large:>6} pts  growth (cohort x{growth:.0f})")
    depth = max(criteria_levels(engines[small]).values(), default=0)

    def run(engine: SparqlEngine, text: str, form: str) -> None:
        if form == "FACTS":
            # A fact query: every patient's values at the evaluation date (the engine holds
            # the values of the earlier stages it reads).
            engine.construct(text, {"asOf": Literal(date.fromisoformat(AS_OF),
                                                    datatype=XSD.date)})
        elif form == "SELECT":
            engine.select(text)
        elif "gkg:currentStep" in text:
            # A step of the criteria evaluation: every level, as the derivation runs it.
            for level in range(1, depth + 1):
                with at_step(engine, level):
                    engine.construct(text)
        else:
            engine.construct(text)

    timed: list[tuple[str, str, str]] = [
        (name, load_query(name).text, "FACTS") for name in fact_query_names(engines[small])]
    for query in bundled_queries("derive"):
        form = re.search(r"^\s*(SELECT|CONSTRUCT|ASK|INSERT|DELETE|DESCRIBE)\b", query.text,
                         re.MULTILINE | re.IGNORECASE)
        required = [p for p in query.parameters if "optional" not in p.description]
        if form is None or form.group(1).upper() not in ("SELECT", "CONSTRUCT") or required:
            continue  # updates and queries that need a parameter are timed by the stages
        timed.append((query.name, query.text, form.group(1).upper()))
    for name, text, kind in timed:
        seconds = {}
        for size, engine in engines.items():
            start = time.perf_counter()
            run(engine, text, kind)
            seconds[size] = time.perf_counter() - start
        ratio = seconds[large] / max(seconds[small], 1e-3)
        worse = ratio > 2 * growth and seconds[large] > 0.5
        flagged += worse
        print(f"{name:<40} {seconds[small]:8.2f} s {seconds[large]:8.2f} s  x{ratio:5.1f}"
              + ("  GROWS FASTER THAN THE COHORT" if worse else ""))
    return 1 if flagged else 0


def main() -> None:
    if sys.argv[1:2] == ["--measure"]:  # run_measured's child: --measure COMMAND...
        measured_child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--naive", type=int, default=0, metavar="N",
                        help="also the naive pipeline on N patients (seconds a patient), "
                             "and its ratio to the cohort run")
    parser.add_argument("--spark", default=None, metavar="MASTER",
                        help="also recommend --spark MASTER (e.g. local[2]) on the export")
    parser.add_argument("--validate-max", type=int, default=10000,
                        help="time `validate` on the input read whole up to this size (the "
                             "streamed `validate --format jsonl` is timed at every size)")
    parser.add_argument("--forms", nargs="+", choices=("ttl", "fhir", "ndjson"),
                        default=["ttl", "fhir", "ndjson"],
                        help="the input forms `recommend` is timed on (default: all three)")
    parser.add_argument("--query-scaling", type=int, nargs=2, default=None, metavar=("N", "M"),
                        help="only time every derivation query at N and at M patients and "
                             "flag those that grow faster than the cohort (exit 1 if any)")
    parser.add_argument("--record-scaling", type=int, nargs=2, default=None,
                        metavar=("N", "M"),
                        help="only time one patient whose record holds N and then M findings "
                             "of each of a few kinds, and flag a time that grows faster than "
                             "the record (exit 1 if it does)")
    parser.add_argument("--one-patient", action="store_true",
                        help="only time one patient end to end in a warm process (the Python "
                             "API), on each valid example record")
    parser.add_argument("--naive-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive_only:
        naive(args.naive_only)
        return
    if args.one_patient:
        one_patient()
        return
    if args.query_scaling:
        raise SystemExit(query_scaling(*args.query_scaling))
    if args.record_scaling:
        raise SystemExit(record_scaling(*args.record_scaling))
    benchmark(args.sizes, args.workers, args.naive, args.spark, args.validate_max, args.forms)


if __name__ == "__main__":
    main()
