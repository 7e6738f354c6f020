"""No query of the project reaches the network (issue 11): SERVICE and FROM are refused from
the parsed query, on both engines, through the Python API and `guidelinekg query --file`.

A real listener on 127.0.0.1 counts the connections it is offered: every refused query must
leave it at zero. (The server's /sparql is tested the same way in test_serve.py.)
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from counting_listener import CountingListener
from guidelinekg.query_text import (
    QueryError,
    prepare_query,
    refuse_remote_access,
    remote_access,
)
from guidelinekg.sparql import bundled_queries, make_engine, query_form


def hostile_queries(port: int) -> list[str]:
    here = f"http://127.0.0.1:{port}"
    return [
        f"SELECT * WHERE {{ SERVICE <{here}/x> {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ SERVICE SILENT <{here}/x> {{ ?s ?p ?o }} }}",
        # The bypass of the old text scan: a non-breaking space and an apostrophe in an IRI.
        f"SELECT * WHERE {{ ?s ?p 'a' . SERVICE SILENT <{here}/a\u00a0'b> {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ {{ SELECT ?s WHERE {{ SERVICE <{here}/sub> {{ ?s ?p ?o }} }} }} }}",
        f"SELECT * WHERE {{ OPTIONAL {{ ?a ?b ?c }} "
        f"MINUS {{ SERVICE <{here}/m> {{ ?a ?b ?c }} }} }}",
        f"ASK {{ SERVICE <{here}/ask> {{ ?s ?p ?o }} }}",
        f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ SERVICE <{here}/c> {{ ?s ?p ?o }} }}",
        f"SELECT * FROM <{here}/graph> WHERE {{ ?s ?p ?o }}",
        f"SELECT * FROM NAMED <{here}/named> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}",
        "SELECT * FROM <file:///etc/passwd> WHERE { ?s ?p ?o }",
    ]


@pytest.mark.parametrize("engine_name", ["oxigraph", "rdflib"])
def test_the_python_api_refuses_service_and_from_without_a_connection(
        engine_name: str, listener: CountingListener) -> None:
    engine = make_engine(engine_name)
    for text in hostile_queries(listener.port):
        run = engine.ask if text.startswith("ASK") else (
            engine.construct if text.startswith("CONSTRUCT") else engine.select)
        with pytest.raises(QueryError, match=r"(SERVICE|FROM) is not allowed"):
            run(text)
        with pytest.raises(QueryError, match=r"(SERVICE|FROM) is not allowed"):
            query_form(text)
    assert listener.accepted == 0


def test_query_file_refuses_service_without_a_connection(listener: CountingListener,
                                                         tmp_path: Path) -> None:
    # SERVICE, the bypass form of the old text scan, and FROM (one process each).
    hostile = hostile_queries(listener.port)
    for number, text in enumerate([hostile[0], hostile[2], hostile[7]]):
        path = tmp_path / f"hostile-{number}.rq"
        path.write_text(text, encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "query", "--file",
                               str(path)], capture_output=True, text=True, timeout=120,
                              check=False)
        assert done.returncode == 2, (text, done.stdout, done.stderr)
        assert "is not allowed" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert listener.accepted == 0


def test_an_unparseable_query_is_refused_before_any_engine_runs_it() -> None:
    with pytest.raises(QueryError, match="SPARQL syntax error"):
        refuse_remote_access("SELECT * WHERE { SERVICE <http://127.0.0.1:1/x> { ?s ?p ?o }")


def test_every_bundled_query_stays_offline() -> None:
    # Bundled queries are trusted by their text at run time; this is where that is earned.
    from rdflib.plugins.sparql.algebra import translateQuery
    from rdflib.plugins.sparql.parser import parseQuery

    queries = bundled_queries()
    assert len(queries) > 30
    for query in queries:
        assert remote_access(translateQuery(parseQuery(query.text)).algebra) is None, query.name


def test_the_listener_would_see_an_unguarded_service_call(listener: CountingListener) -> None:
    # The engine itself does call out: this is what the guard stands between.
    import pyoxigraph

    text = (f"SELECT * WHERE {{ SERVICE SILENT <http://127.0.0.1:{listener.port}/x> "
            "{ ?s ?p ?o } }")
    list(pyoxigraph.Store().query(text))
    deadline = threading.Event()
    for _ in range(20):
        if listener.accepted:
            break
        deadline.wait(0.1)
    assert listener.accepted >= 1


def test_rdflib_itself_has_no_service_handler(listener: CountingListener) -> None:
    # The second line: even a query that reaches rdflib's evaluator without the check.
    from rdflib import Graph

    text = f"SELECT * WHERE {{ SERVICE <http://127.0.0.1:{listener.port}/x> {{ ?s ?p ?o }} }}"
    with pytest.raises(QueryError, match="no SERVICE handler"):
        list(Graph().query(text))
    assert listener.accepted == 0


def test_a_codepoint_escape_cannot_hide_a_service_from_the_check(
        listener: CountingListener, tmp_path: Path) -> None:
    """rdflib (the checker) replaces \\u000a everywhere, comments included, and so ends the
    comment and opens a string that swallows the SERVICE line; pyoxigraph (the engine) reads
    a comment and then a real SERVICE. Codepoint escapes are refused before either reads it,
    on the API, both engines and the command line."""
    here = f"http://127.0.0.1:{listener.port}/sparql"
    text = ('SELECT * WHERE {\n  BIND( # \\u000a """\n'
            f'  1 AS ?x) SERVICE <{here}> {{ ?s ?p ?o }}\n  # """ AS ?y)\n}}\n')
    for engine_name in ("oxigraph", "rdflib"):
        with pytest.raises(QueryError, match="codepoint escapes"):
            make_engine(engine_name).select(text)
    with pytest.raises(QueryError, match="codepoint escapes"):
        query_form(text)
    path = tmp_path / "escape.rq"
    path.write_text(text, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "query", "--file",
                           str(path)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "codepoint escapes" in done.stderr and "Traceback" not in done.stderr
    assert listener.accepted == 0


def test_a_lone_carriage_return_cannot_hide_a_service_from_the_check(
        listener: CountingListener, tmp_path: Path) -> None:
    """pyoxigraph ends a comment at a carriage return, as the SPARQL grammar does; rdflib's
    comment runs to the line feed. "# note<CR> SERVICE ..." was a comment to the check and a
    call to the engine: refused, on the API, both engines and the command line."""
    here = f"http://127.0.0.1:{listener.port}/sparql"
    text = f"SELECT * WHERE {{ # note\r SERVICE <{here}> {{ ?s ?p ?o }}\n}}"
    for check in (refuse_remote_access, prepare_query, query_form,
                  make_engine("oxigraph").select, make_engine("rdflib").select):
        with pytest.raises(QueryError, match="carriage return not followed by a line feed"):
            check(text)
    path = tmp_path / "carriage-return.rq"
    path.write_bytes(text.encode())
    done = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "query", "--file",
                           str(path)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, (done.stdout, done.stderr)
    # (the command reads the file with universal newlines: the CR ends the comment for both,
    # and the SERVICE is seen)
    assert "SERVICE is not allowed" in done.stderr and "Traceback" not in done.stderr
    assert listener.accepted == 0
    # CRLF line ends are read alike by both, and accepted.
    assert make_engine("oxigraph").select("SELECT ?x WHERE { # note\r\n BIND(1 AS ?x) }")


def test_a_librarys_query_is_checked_as_a_users_is(
        listener: CountingListener, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the project's own queries (checked offline by this suite) skip the check: a query
    of a GUIDELINEKG_LIBRARY folder is parsed and refused like any other."""
    from guidelinekg.sparql import load_query

    folder = tmp_path / "library" / "domains" / "leaky" / "queries"
    folder.mkdir(parents=True)
    (folder / "leak.rq").write_text(
        f"SELECT * WHERE {{ SERVICE <http://127.0.0.1:{listener.port}/x> {{ ?s ?p ?o }} }}\n",
        encoding="utf-8")
    monkeypatch.setenv("GUIDELINEKG_LIBRARY", str(tmp_path / "library"))
    text = load_query("leak").text
    with pytest.raises(QueryError, match="SERVICE is not allowed"):
        make_engine("oxigraph").select(text)
    assert listener.accepted == 0


def test_a_long_list_is_refused_before_the_parse_lock_is_taken() -> None:
    """A 12 KB query of 4,000 objects held rdflib's parse lock for 53 s before its refusal
    (the bounds were checked after the parse), stalling every other query: the bounds come
    first, and a list is bounded too (its translation takes the square of its length)."""
    import time

    from guidelinekg.query_text import MAX_QUERY_LIST

    for text in ("ASK { ?s ?p " + ",".join(["?o"] * 4_000) + " }",
                 "ASK { ?s " + ";".join(f"?p{i} ?o" for i in range(MAX_QUERY_LIST + 2)) + " }"):
        started = time.monotonic()
        with pytest.raises(QueryError, match="more than"):
            prepare_query(text)
        assert time.monotonic() - started < 5
    prepare_query("ASK { ?s ?p " + ",".join(["?o"] * MAX_QUERY_LIST) + " }")


@pytest.mark.parametrize(("text", "refusal"), [
    # 10,000 chained additions overflowed pyoxigraph's stack: the process died (exit 139).
    ("SELECT * WHERE { FILTER(" + "+".join(["1"] * 10_000) + ") }", "more than 10,000 tokens"),
    # A 25,000-item list held rdflib's parse lock for 40 s, stalling every other query.
    ("SELECT * WHERE { ?s ?p ?o FILTER(?o IN (" + ",".join(["2"] * 25_000) + ")) }",
     "more than 10,000 tokens"),
    ("SELECT * WHERE " + "{" * 2_500 + " ?s ?p ?o " + "}" * 2_500, "nests brackets more than"),
])
def test_an_oversized_query_is_refused_before_any_parser_reads_it(
        text: str, refusal: str, tmp_path: Path) -> None:
    with pytest.raises(QueryError, match=refusal):
        refuse_remote_access(text)
    path = tmp_path / "oversized.rq"
    path.write_text(text, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "query", "--file",
                           str(path)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, (done.returncode, done.stderr[-500:])
    assert refusal in done.stderr and "Traceback" not in done.stderr


def test_every_bundled_query_is_within_the_bounds_of_a_users() -> None:
    """The bounds leave room: each bundled query, were it a user's, would pass them."""
    from guidelinekg.query_text import refuse_oversized

    for query in bundled_queries():
        refuse_oversized(query.text, query.name)
