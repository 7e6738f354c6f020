"""Running the project's SPARQL queries on rdflib or pyoxigraph, with bound parameters.

Every query is a commented ``.rq`` file under ``queries/``. A file declares its parameters
in its header comments, one a line::

    # param: section (IRI) the guideline section whose recommendations are listed

Parameters are bound as RDF terms (rdflib ``initBindings``, pyoxigraph ``substitutions``);
query text is never built from user input. Both engines answer with rdflib terms, so a
caller cannot tell them apart (the test suite checks they agree).

What a query text may do before it runs (offline, the project's prefixes, no updates) is
judged in :mod:`guidelinekg.query_text`; the engines here refuse what it refuses.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal as TypingLiteral
from typing import TypeVar, cast

from rdflib import Graph, Literal, URIRef, Variable
from rdflib.namespace import XSD
from rdflib.plugins.sparql import evaluate as _rdflib_evaluate
from rdflib.term import Identifier, Node

from guidelinekg import oxigraph as ox
from guidelinekg.loading import PREFIXES
from guidelinekg.memo import BoundedMemo
from guidelinekg.namespaces import expand_curie
from guidelinekg.oxigraph import from_oxigraph, stored_term, to_oxigraph
from guidelinekg.query_text import (
    QueryError,
    offline_refusal,
    prepared_query,
    refuse_codepoint_escapes,
    refuse_lone_carriage_returns,
    refuse_remote_access,
    remote_access,
)
from guidelinekg.resources import query_roots
from guidelinekg.threads import cores, run_beside

EngineName = TypingLiteral["oxigraph", "rdflib"]
Row = dict[str, Node]
Triple = tuple[Node, Node, Node]
_Answer = TypeVar("_Answer")
# What pyoxigraph takes as the value of a bound variable.
_OxTerm = ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple

_PARAM_LINE = re.compile(r"^#\s*param:\s*(\w+)\s*\((\w+)\)\s*(.*)$")
# A bundled query's name: folders and a file stem, never a path that climbs out.
_QUERY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(/[A-Za-z0-9][A-Za-z0-9_-]*)*")


@dataclass(frozen=True)
class QueryParameter:
    name: str
    kind: str  # IRI, string, integer, decimal, date, boolean
    description: str


@dataclass(frozen=True)
class QueryFile:
    name: str
    path: Path
    text: str
    parameters: tuple[QueryParameter, ...] = field(default=())

    @property
    def description(self) -> str:
        """The first comment lines of the file, before any parameter line."""
        lines = []
        for line in self.text.splitlines():
            if not line.startswith("#"):
                break
            if _PARAM_LINE.match(line):
                break
            lines.append(line.lstrip("#").strip())
        return " ".join(part for part in lines if part)


def read_query_file(path: Path, name: str | None = None) -> QueryFile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise QueryError(f"{path}: cannot read the query file ({error})") from None
    parameters = tuple(
        QueryParameter(match[1], match[2], match[3].strip())
        for match in (_PARAM_LINE.match(line) for line in text.splitlines())
        if match
    )
    return QueryFile(name or path.stem, path, text, parameters)


def load_query(name: str) -> QueryFile:
    """A bundled query by its path under a module's ``queries/`` without ``.rq``
    (``qc/foo``, ``facts/metastatic-disease``): the core's, a domain's or a guideline's.
    One name is one query: two modules shipping the same name is an error."""
    return _load_query(name, query_roots())


@cache
def _load_query(name: str, roots: tuple[Path, ...]) -> QueryFile:
    if not _QUERY_NAME.fullmatch(name):
        raise QueryError(f"no bundled query named {name!r}")
    paths = [root / f"{name}.rq" for root in roots if (root / f"{name}.rq").is_file()]
    if not paths:
        raise QueryError(f"no bundled query named {name!r}")
    if len(paths) > 1:
        raise QueryError(f"two modules ship the query {name!r}: {', '.join(map(str, paths))}")
    return read_query_file(paths[0], name)


def bundled_queries(folder: str = "") -> list[QueryFile]:
    """Every module's queries under ``folder`` (``qc``, ``facts``), sorted by name."""
    names = {
        path.relative_to(root).with_suffix("").as_posix()
        for root in query_roots()
        for path in (root / folder if folder else root).rglob("*.rq")
    }
    return [load_query(name) for name in sorted(names)]


def parameter_term(parameter: QueryParameter, value: str) -> Node:
    """The RDF term for a parameter value given as text (a CURIE or IRI for kind IRI)."""
    if parameter.kind == "IRI":
        return expand_iri(value)
    datatypes = {
        "integer": XSD.integer,
        "decimal": XSD.decimal,
        "date": XSD.date,
        "boolean": XSD.boolean,
    }
    if parameter.kind == "string":
        return Literal(value)
    if parameter.kind in datatypes:
        # rdflib logs a traceback for an ill-typed lexical form; the QueryError below says it.
        term_log = logging.getLogger("rdflib.term")
        was_disabled, term_log.disabled = term_log.disabled, True
        try:
            literal = Literal(value, datatype=datatypes[parameter.kind])
        finally:
            term_log.disabled = was_disabled
        # The lexical forms a record may use, as the patient checks read them: rdflib gives
        # "NaN" a decimal value and reads "2026-01-01T00:00:00" as a date.
        from guidelinekg.literal_checks import datatype_problem

        if literal.value is None or datatype_problem(literal) is not None or (
                parameter.kind == "boolean" and value not in ("true", "false")):
            raise QueryError(f"parameter {parameter.name}: {value!r} is not a valid "
                             f"{parameter.kind}")
        return literal
    raise QueryError(f"parameter {parameter.name}: unknown kind {parameter.kind!r}")


def expand_iri(value: str) -> URIRef:
    """``ID:KEY`` (a guideline prefix and a statement key), another CURIE or a full IRI
    to an IRI; anything else is an error."""
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    if not value.partition(":")[2].startswith("//"):  # http://... is an IRI, not a CURIE
        with contextlib.suppress(ValueError):
            return expand_curie(value)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+$", value):
        return URIRef(value)
    raise QueryError(f"{value!r} is not an IRI or a known prefixed name "
                     f"(prefixes: {', '.join(sorted(PREFIXES))})")


def check_syntax(text: str, where: str = "query") -> None:
    """Raise QueryError with the parser's message when the text is not SPARQL 1.1."""
    refuse_remote_access(text, where)
    try:
        # Evaluating against an empty store is the cheapest full syntax check.
        ox.Store().query(text)
    except SyntaxError as error:
        raise QueryError(f"{where}: SPARQL syntax error: {error}") from None


QueryForm = TypingLiteral["SELECT", "CONSTRUCT", "ASK"]

def _no_service(ctx: object, part: object) -> object:
    raise QueryError("SERVICE is not allowed: this engine has no SERVICE handler")


# A second line behind refuse_remote_access: rdflib's evaluator is left with no SERVICE
# handler at all (it would fetch the endpoint with urllib). pyoxigraph's Python API offers no
# such switch, so for it the check of the parsed query is the only line.
_rdflib_evaluate.evalServiceQuery = _no_service


def query_form(text: str, where: str = "query") -> QueryForm:
    """What the query answers: SELECT rows, CONSTRUCT (or DESCRIBE) triples, or ASK.

    Like :func:`check_syntax` it evaluates the text on an empty store, after
    :func:`refuse_remote_access`.
    """
    refuse_remote_access(text, where)
    try:
        answer = ox.Store().query(text)
    except SyntaxError as error:
        raise QueryError(f"{where}: SPARQL syntax error: {error}") from None
    except (OSError, ValueError, TypeError, RuntimeError) as error:
        raise QueryError(f"{where}: {error}") from None
    if isinstance(answer, ox.QuerySolutions):
        return "SELECT"
    if isinstance(answer, ox.QueryTriples):
        return "CONSTRUCT"
    return "ASK"


class SparqlEngine:
    """The common interface of the two engines: SELECT rows, CONSTRUCT triples, ASK."""

    name: EngineName

    def add(self, triples: Iterable[Triple]) -> None:
        raise NotImplementedError

    def remove(self, triples: Iterable[Triple]) -> None:
        raise NotImplementedError

    def select(self, text: str, bindings: Mapping[str, Node] | None = None) -> list[Row]:
        return self.select_with_variables(text, bindings)[1]

    def select_with_variables(self, text: str, bindings: Mapping[str, Node] | None = None
                              ) -> tuple[list[str], list[Row]]:
        """The projected variable names, in order, and the rows (for result tables)."""
        raise NotImplementedError

    def construct(self, text: str, bindings: Mapping[str, Node] | None = None) -> list[Triple]:
        raise NotImplementedError

    def ask(self, text: str, bindings: Mapping[str, Node] | None = None) -> bool:
        raise NotImplementedError

    def add_constructed(self, text: str, bindings: Mapping[str, Node] | None = None) -> None:
        """Add what a CONSTRUCT query builds to the engine's own data."""
        self.add(self.construct(text, bindings))

    # What a CONSTRUCT builds in the engine's own terms, to be checked and added back
    # without a round trip through rdflib's terms (which cost as much as the queries).
    def construct_native(self, text: str, bindings: Mapping[str, Node] | None = None
                         ) -> list[tuple]:
        """The triples a CONSTRUCT query builds, as (subject, predicate, object) in the
        engine's own terms (compare them with :meth:`native_term`)."""
        return list(self.construct(text, bindings))

    # Queries that only read the engine, answered in their order; an engine may run them
    # side by side.
    def select_each(self, texts: Sequence[str], bindings: Mapping[str, Node] | None = None
                    ) -> list[list[Row]]:
        """:meth:`select` of each query, in their order."""
        return self._each(self.select, texts, bindings)

    def construct_native_each(self, texts: Sequence[str],
                              bindings: Mapping[str, Node] | None = None) -> list[list[tuple]]:
        """:meth:`construct_native` of each query, in their order."""
        return self._each(self.construct_native, texts, bindings)

    def _each(self, run: Callable[[str, Mapping[str, Node] | None], _Answer],
              texts: Sequence[str], bindings: Mapping[str, Node] | None) -> list[_Answer]:
        return [run(text, bindings) for text in texts]

    def add_native(self, triples: Iterable[tuple]) -> None:
        """Add triples given in the engine's own terms (:meth:`construct_native`)."""
        self.add(triples)

    def native_term(self, term: Node) -> object:
        """An rdflib term in the engine's own form."""
        return term

    def snapshot(self) -> list:
        """The engine's data in its own form, for :meth:`restored` (a fresh engine with the
        same data, made faster than by adding rdflib triples again)."""
        raise NotImplementedError

    @classmethod
    def restored(cls, snapshot: list) -> SparqlEngine:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class OxigraphEngine(SparqlEngine):
    """pyoxigraph's in-memory store: the fast engine, used by default."""

    name: EngineName = "oxigraph"

    def __init__(self, graph: Graph | None = None) -> None:
        self.store = ox.Store()
        if graph is not None:
            self.add(graph)

    def add(self, triples: Iterable[Triple]) -> None:
        self.store.extend(_oxigraph_quad(s, p, o) for s, p, o in triples)

    def remove(self, triples: Iterable[Triple]) -> None:
        for s, p, o in triples:
            self.store.remove(_oxigraph_quad(s, p, o))

    def _run(self, text: str, bindings: Mapping[str, Node] | None) -> ox.Answer:
        refuse_remote_access(text)
        substitutions: dict[ox.Variable, _OxTerm] = {
            ox.Variable(k): to_oxigraph(v) for k, v in (bindings or {}).items()}
        with _as_query_errors():
            return ox.evaluated(self.store, text, _row, substitutions=substitutions or None)

    def select_with_variables(self, text: str, bindings: Mapping[str, Node] | None = None
                              ) -> tuple[list[str], list[Row]]:
        answer = self._run(text, bindings)
        if not isinstance(answer, tuple):
            raise QueryError("expected a SELECT query")
        return answer

    def _triples(self, text: str, bindings: Mapping[str, Node] | None,
                 expected: str = "a CONSTRUCT query") -> list[ox.Triple]:
        triples = self._run(text, bindings)
        if not isinstance(triples, list):
            raise QueryError(f"expected {expected}")
        return triples

    def construct(self, text: str, bindings: Mapping[str, Node] | None = None) -> list[Triple]:
        return [(_rdflib_term(t.subject), _rdflib_term(t.predicate), _rdflib_term(t.object))
                for t in self._triples(text, bindings, "a CONSTRUCT or DESCRIBE query")]

    def add_constructed(self, text: str, bindings: Mapping[str, Node] | None = None) -> None:
        # Inside the store, as the INSERT of the same template and pattern, when nothing is
        # to be bound (an update takes no bound values): taking each triple into Python and
        # back cost as much as the queries on cohorts.
        update = _as_insert(text) if not bindings else None
        if update is not None:
            refuse_remote_access(text)
            with _as_query_errors():
                self.store.update(update)
            return
        self.add_native(self.construct_native(text, bindings))

    def construct_native(self, text: str, bindings: Mapping[str, Node] | None = None
                         ) -> list[tuple]:
        # pyoxigraph's triples unpack as (subject, predicate, object) tuples do.
        return cast(list[tuple], self._triples(text, bindings))

    def _each(self, run: Callable[[str, Mapping[str, Node] | None], _Answer],
              texts: Sequence[str], bindings: Mapping[str, Node] | None) -> list[_Answer]:
        # pyoxigraph plans a query without holding Python's lock, and planning is most of a
        # small patient's derivation: queries side by side use every core. The longest texts
        # (the longest to plan) start first, so that no long one is left to run alone last.
        running = {index: run_beside("query", min(cores(), 4), run, texts[index], bindings)
                   for index in sorted(range(len(texts)), key=lambda i: -len(texts[i]))}
        return [running[index].result() for index in range(len(texts))]

    def add_native(self, triples: Iterable[tuple]) -> None:
        quad = ox.Quad
        self.store.extend([quad(s, p, o) for s, p, o in triples])

    def native_term(self, term: Node) -> object:
        return stored_term(term)

    def ask(self, text: str, bindings: Mapping[str, Node] | None = None) -> bool:
        answer = self._run(text, bindings)
        if not isinstance(answer, bool):
            raise QueryError("expected an ASK query")
        return answer

    def snapshot(self) -> list:
        return list(self.store)

    @classmethod
    def restored(cls, snapshot: list) -> OxigraphEngine:
        engine = cls()
        engine.store.extend(snapshot)
        return engine

    def __len__(self) -> int:
        return len(self.store)


def _row(names: list[str], solution: ox.QuerySolution) -> Row:
    # A solution's terms in the order of its variables, in one call (reading them by name
    # cost more than the query on results of a hundred rows).
    return {name: _rdflib_term(term)
            for name, term in zip(names, solution, strict=True) if term is not None}


@contextlib.contextmanager
def _as_query_errors() -> Iterator[None]:
    """pyoxigraph's errors while it parses or evaluates a query, as QueryErrors."""
    try:
        yield
    except SyntaxError as error:
        raise QueryError(f"SPARQL syntax error: {error}") from None
    except (OSError, ValueError, TypeError, RuntimeError) as error:
        # RuntimeError: for instance a bound variable the SELECT clause does not project
        raise QueryError(f"query failed: {error}") from None


# The CONSTRUCT keyword of a query's form: at the start of a line (never in a comment),
# followed by its template.
_CONSTRUCT_TEMPLATE = re.compile(r"^CONSTRUCT(?=\s*\{)", re.MULTILINE)


@lru_cache(maxsize=64)
def _as_insert(text: str) -> str | None:
    """The SPARQL Update that adds what a CONSTRUCT query builds (INSERT takes the same
    template: blank nodes fresh for each solution, triples with an unbound term left out),
    or None when the query's form is not found exactly once."""
    found = _CONSTRUCT_TEMPLATE.findall(text)
    if len(found) != 1:
        return None
    return _CONSTRUCT_TEMPLATE.sub("INSERT", text, count=1)


# rdflib terms made from pyoxigraph terms, kept across queries: results repeat the same
# terms (the guideline's statements, labels, facts) many times over, and making an rdflib
# term costs more than reading it from pyoxigraph.
_rdflib_term: BoundedMemo[_OxTerm, Node] = BoundedMemo(from_oxigraph, 1 << 16)


@lru_cache(maxsize=256)
def _prepared_rdflib_query(text: str):
    """rdflib's parsed form of a query text, kept: parsing (pyparsing) takes seconds for a
    long query, and a prepared query is made to be evaluated many times."""
    return prepared_query(text)


def _oxigraph_quad(subject: Node, predicate: Node, obj: Node) -> ox.Quad:
    """A pyoxigraph quad in the default graph; a literal subject or a predicate that is not
    an IRI (which rdflib's generalised graphs allow) is refused, as pyoxigraph would."""
    ox_subject, ox_predicate = stored_term(subject), stored_term(predicate)
    if isinstance(ox_subject, ox.Literal):
        raise TypeError(f"a literal cannot be the subject of a triple: {subject!r}")
    if not isinstance(ox_predicate, ox.NamedNode):
        raise TypeError(f"the predicate of a triple must be an IRI: {predicate!r}")
    return ox.Quad(ox_subject, ox_predicate, stored_term(obj))


class RdflibEngine(SparqlEngine):
    """rdflib's own SPARQL engine over an in-memory graph: the reference for cross-checks."""

    name: EngineName = "rdflib"

    def __init__(self, graph: Graph | None = None) -> None:
        self.graph = Graph()
        if graph is not None:
            self.add(graph)

    def add(self, triples: Iterable[Triple]) -> None:
        add = self.graph.add
        for triple in triples:
            add(triple)

    def remove(self, triples: Iterable[Triple]) -> None:
        for triple in triples:
            self.graph.remove(triple)

    def snapshot(self) -> list:
        return list(self.graph)

    @classmethod
    def restored(cls, snapshot: list) -> RdflibEngine:
        engine = cls()
        engine.add(snapshot)
        return engine

    def _run(self, text: str, bindings: Mapping[str, Node] | None):
        # As on the other engine, though rdflib reads its own reading of both alike.
        refuse_codepoint_escapes(text)
        refuse_lone_carriage_returns(text)
        try:
            query = _prepared_rdflib_query(text)
        except Exception as error:  # rdflib raises pyparsing's ParseException and others
            raise QueryError(f"SPARQL syntax error: {error}") from None
        # The prepared query is already the algebra the check needs.
        found = remote_access(query.algebra)
        if found is not None:
            raise offline_refusal("query", found)
        # rdflib takes variables or their names as keys (a Variable is a str).
        init: dict[str, Identifier] = {}
        for name, value in (bindings or {}).items():
            if not isinstance(value, Identifier):
                raise TypeError(f"unsupported RDF term {value!r}")  # as to_oxigraph refuses it
            init[Variable(name)] = value
        return self.graph.query(query, initBindings=init)

    def select_with_variables(self, text: str, bindings: Mapping[str, Node] | None = None
                              ) -> tuple[list[str], list[Row]]:
        result = self._run(text, bindings)
        if result.type != "SELECT":
            raise QueryError("expected a SELECT query")
        names = [str(v) for v in result.vars]
        return names, [
            {name: row[i] for i, name in enumerate(names) if row[i] is not None}
            for row in result
        ]

    def construct(self, text: str, bindings: Mapping[str, Node] | None = None) -> list[Triple]:
        result = self._run(text, bindings)
        if result.type not in ("CONSTRUCT", "DESCRIBE"):
            raise QueryError("expected a CONSTRUCT or DESCRIBE query")
        return list(result.graph)

    def ask(self, text: str, bindings: Mapping[str, Node] | None = None) -> bool:
        result = self._run(text, bindings)
        if result.type != "ASK":
            raise QueryError("expected an ASK query")
        return bool(result.askAnswer)

    def __len__(self) -> int:
        return len(self.graph)


def make_engine(name: EngineName = "oxigraph", graph: Graph | None = None) -> SparqlEngine:
    if name == "oxigraph":
        return OxigraphEngine(graph)
    if name == "rdflib":
        return RdflibEngine(graph)
    raise QueryError(f"unknown SPARQL engine {name!r} (oxigraph or rdflib)")


def bind_parameters(query: QueryFile, values: Mapping[str, str]) -> dict[str, Node]:
    """Check the given ``name=value`` pairs against the query's declared parameters."""
    declared = {p.name: p for p in query.parameters}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise QueryError(f"query {query.name!r} has no parameter {', '.join(unknown)} "
                         f"(its parameters: {known})")
    return {name: parameter_term(declared[name], value) for name, value in values.items()}
