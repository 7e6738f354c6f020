"""Queries run side by side on pyoxigraph's threads (guidelinekg.threads, the engines'
``select_each`` and ``construct_native_each``) give what the same queries give one after
the other, in the order asked; their errors reach the caller; and no query iterator is left
for another thread to free (pyoxigraph refuses that, and leaks the iterator)."""

from __future__ import annotations

import gc
import multiprocessing
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import pytest
from rdflib import Literal
from rdflib.namespace import XSD

from guidelinekg.derivation import RESULT_QUERIES, prepare_engine
from guidelinekg.facts import fact_query_names
from guidelinekg.loading import parse_rdf_file
from guidelinekg.resources import examples_dir
from guidelinekg.sparql import OxigraphEngine, QueryError, SparqlEngine, load_query
from guidelinekg.threads import run_beside

AS_OF = date(2026, 12, 1)


@pytest.fixture(scope="module")
def engine() -> OxigraphEngine:
    record = parse_rdf_file(examples_dir() / "patients" / "her2-positive-trastuzumab-3-weekly.ttl")
    prepared = prepare_engine(record, AS_OF)
    assert isinstance(prepared, OxigraphEngine)
    return prepared


def test_result_queries_side_by_side_equal_them_one_after_the_other(engine):
    texts = [load_query(name).text for name in RESULT_QUERIES]
    side_by_side = engine.select_each(texts)
    assert side_by_side == [engine.select(text) for text in texts]
    # Sequential, as every engine does it by default: the same rows, in the same order.
    assert SparqlEngine.select_each(engine, texts) == side_by_side
    assert all(side_by_side[RESULT_QUERIES.index("derive/recommendation-status")])


def test_fact_queries_side_by_side_equal_them_one_after_the_other(engine):
    texts = [load_query(name).text for name in fact_query_names(engine)]
    bindings = {"asOf": Literal(AS_OF, datatype=XSD.date)}
    side_by_side = engine.construct_native_each(texts, bindings)
    one_by_one = [engine.construct_native(text, bindings) for text in texts]
    assert [sorted(map(tuple, found), key=str) for found in side_by_side] == \
        [sorted(map(tuple, found), key=str) for found in one_by_one]
    assert any(side_by_side)


def test_an_error_reaches_the_caller_with_what_it_went_through_as_a_note(engine):
    texts = ["SELECT * WHERE { ?s ?p ?o } LIMIT 1", "SELECT * WHERE { ?s undeclared:p ?o }"]
    with pytest.raises(QueryError, match="prefix undeclared: is not declared") as raised:
        engine.select_each(texts)
    # Raised without the thread's frames (they held query iterators), which are kept as text.
    assert raised.value.__notes__ and "select_with_variables" in raised.value.__notes__[0]
    assert "refuse_remote_access" in raised.value.__notes__[0]


def test_no_query_iterator_is_freed_on_another_thread(engine):
    """A query text that is not bundled is parsed by rdflib (for the offline check), whose
    parser keeps tracebacks and with them the frames of the caller; the garbage collector
    of another thread then freed the pyoxigraph iterator those frames held."""
    texts = [f"SELECT ?s (COUNT(*) AS ?n{number}) WHERE {{ ?s ?p ?o }} GROUP BY ?s"
             for number in range(6)]
    with unraisable_errors() as errors:
        for _ in range(20):
            engine.select_each(texts)
            with pytest.raises(QueryError):
                engine.select_each([*texts, "SELECT * WHERE { ?s undeclared:p ?o }"])
        collected = run_beside("test", 1, gc.collect)
        collected.result()
        gc.collect()
    assert errors == []


def test_a_forked_process_runs_queries_side_by_side_on_threads_of_its_own(engine):
    """Cohort workers are forked from a process whose pools have threads the child lacks."""
    texts = [load_query(name).text for name in RESULT_QUERIES]
    expected = engine.select_each(texts)  # the parent's pool now has threads
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        # A child that reused its parent's pool would wait for threads it does not have.
        answer = pool.apply_async(_rows_in_child, (texts,)).get(timeout=120)
    assert answer == [len(rows) for rows in expected]


def _rows_in_child(texts: list[str]) -> list[int]:
    record = parse_rdf_file(examples_dir() / "patients" / "her2-positive-trastuzumab-3-weekly.ttl")
    return [len(rows) for rows in prepare_engine(record, AS_OF).select_each(texts)]


def test_a_task_runs_on_a_thread_of_its_named_pool():
    names = {run_beside("test", 2, lambda: threading.current_thread().name).result()
             for _ in range(4)}
    assert names and all(name.startswith("guidelinekg-test") for name in names)


@contextmanager
def unraisable_errors() -> Iterator[list[str]]:
    """The errors Python could not raise (a finaliser's, as pyoxigraph's refusal) while the
    block ran."""
    errors: list[str] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda event: errors.append(
        f"{type(event.exc_value).__name__}: {event.exc_value}")
    try:
        yield errors
    finally:
        sys.unraisablehook = previous


def test_a_validation_in_another_thread_does_not_change_how_this_one_reads_literals():
    """Validation turns rdflib's literal normalisation on while it evaluates SPARQL (as
    pySHACL does); the switch is per thread, so a record read meanwhile keeps its literals
    as written."""
    import rdflib
    from rdflib.namespace import XSD as XSD_

    from guidelinekg.shacl_fast_report import literal_normalisation

    switched_on, release = threading.Event(), threading.Event()
    seen: list[str] = []

    def validating() -> None:
        with literal_normalisation():
            seen.append(str(Literal("01", datatype=XSD_.integer)))
            switched_on.set()
            release.wait(timeout=60)

    other = threading.Thread(target=validating)
    other.start()
    try:
        assert switched_on.wait(timeout=60)
        assert str(Literal("01", datatype=XSD_.integer)) == "01"
        assert rdflib.NORMALIZE_LITERALS is False
    finally:
        release.set()
        other.join(timeout=60)
    assert seen == ["1"]  # normalised in the validating thread, as pySHACL's are
    assert rdflib.NORMALIZE_LITERALS is False


def test_the_reference_engine_reading_booleans_its_way_does_not_change_other_threads():
    """pySHACL replaces rdflib's reading of booleans while it runs ("1"^^xsd:boolean is
    false to it); a record read meanwhile in another thread keeps rdflib's reading."""
    from pyshacl.monkey import rdflib_bool_patch, rdflib_bool_unpatch
    from rdflib.namespace import XSD as XSD_

    patched, release = threading.Event(), threading.Event()
    seen: list[object] = []

    def validating_with_pyshacl() -> None:
        rdflib_bool_patch()
        seen.append(Literal("1", datatype=XSD_.boolean).value)
        patched.set()
        release.wait(timeout=60)
        rdflib_bool_unpatch()
        seen.append(Literal("1", datatype=XSD_.boolean).value)

    other = threading.Thread(target=validating_with_pyshacl)
    other.start()
    try:
        assert patched.wait(timeout=60)
        assert Literal("1", datatype=XSD_.boolean).value is True
        assert Literal("false", datatype=XSD_.boolean).value is False
    finally:
        release.set()
        other.join(timeout=60)
    assert seen == [False, True]  # pySHACL's reading in its own thread, then rdflib's again
    assert Literal("1", datatype=XSD_.boolean).value is True


def test_recommend_called_from_several_threads_at_once_gives_each_its_own_results():
    import guidelinekg

    records = [examples_dir() / "patients" / name for name in (
        "her2-positive-trastuzumab-3-weekly.ttl", "triple-negative-brca1.ttl",
        "incomplete-her2-unknown.ttl", "outside-guideline-stage-i-iii-no-metastasis.ttl")]
    patients = [guidelinekg.read_patients([record]) for record in records]
    alone = [guidelinekg.recommend(each, as_of=AS_OF).to_json() for each in patients]
    results: dict[int, object] = {}

    def derive(index: int) -> None:
        for _ in range(3):
            results[index] = guidelinekg.recommend(patients[index % 4], as_of=AS_OF).to_json()

    threads = [threading.Thread(target=derive, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert [results[index] for index in range(8)] == alone + alone
