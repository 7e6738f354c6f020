"""pyoxigraph for the fast SHACL engine (:mod:`guidelinekg.shacl_fast`): the data next to the
ontology in a pyoxigraph store, SHACL-AF SPARQL targets answered there, and SPARQL
constraints that cannot tell the engines apart (:attr:`SparqlQuery.inert`).

pyoxigraph stores numbers, booleans and dates by value, in canonical form
(``"120.0"^^xsd:decimal`` as ``"120"``, ``"1"^^xsd:boolean`` as ``"true"``), and treats
``"mg"`` and ``"mg"^^xsd:string`` as one term; rdflib, and so pySHACL, keeps each as
written. The store is used only when that cannot change an answer:

- no two distinct literals of the data, the ontology and the SPARQL texts become one term
  there (checked on every run: else the run's SPARQL goes to rdflib);
- a target whose text applies a function to a lexical form or to the clock (STR, NOW,
  ...) runs on rdflib; a constraint runs here only when it also computes no value but a
  constant IRI (``(gkg:x AS ?path)``);
- every term of an answer is read back as the data's own term (a literal in its written
  form), or rdflib answers.

Each run's data goes into a named graph of a shared store (the ontology in its default
graph, loaded once) and out again at the end of the run; the store is replaced now and
then, since pyoxigraph keeps the strings of removed triples.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from rdflib import BNode, Literal
from rdflib.namespace import XSD
from rdflib.term import Node

from guidelinekg import oxigraph as ox
from guidelinekg.oxigraph import stored_term
from guidelinekg.shacl_core import NeedsReference

if TYPE_CHECKING:
    from guidelinekg.shacl_fast import SparqlQuery, _Ontology, _Run
    from guidelinekg.shacl_locality import Parts, Rows


_CANONICAL: dict[Literal, tuple[str, str, str | None]] = {}
# Terms kept across runs at most (cleared when full): memory bounded whatever the cohort.
_MAX_CACHED = 100_000
_P = ox.NamedNode("urn:guidelinekg:p")


def target_nodes(run: _Run, target: SparqlQuery) -> set[Node]:
    rows: Iterable[Any]
    if not target.lexical and oxigraph_ready(run):
        name = run.ox_graph
        answer = ox.evaluated(run.store, target.text, None, prefixes=target.prefixes,
                              default_graph=[ox.DefaultGraph(), name])
        if not isinstance(answer, tuple):
            raise NeedsReference("a SPARQL target that is not a SELECT")
        solutions = answer[1]
        found = set()
        back = run.ox_back
        try:
            for solution in solutions:
                term = solution["this"]
                node = back.get(term) if term is not None else None
                if node is None:
                    break  # a literal, or no ?this: let rdflib answer
                found.add(node)
            else:
                return found
        except KeyError:
            pass  # no ?this in the projection
    from guidelinekg.shacl_fast_report import literal_normalisation

    with literal_normalisation():
        rows = list(run.union.query(target.query))
    nodes = set()
    for row in rows:
        if "this" not in row.labels or row["this"] is None:
            raise NeedsReference("a SPARQL target row without ?this")
        nodes.add(row["this"])
    return nodes


def oxigraph_ready(run: _Run) -> bool:
    """Load the data next to the ontology in pyoxigraph, once per run; False when the
    store would not answer as rdflib does (see the module docstring)."""
    if run.ox_ready is not None:
        return run.ox_ready
    run.ox_ready = False
    onto = run.onto
    name = ox.NamedNode(f"urn:guidelinekg:shacl:{next(_RUNS)}")
    convert: dict[Node, Any] = {}
    try:
        with onto.lock:
            if onto.store is None or onto.loaded > _RENEW_AFTER:
                _load_ontology(onto)  # a new store: the old one keeps every string it saw
            run.store = onto.store
            onto.loaded += run.data.size
        quad = ox.Quad
        quads = []
        for p, pairs in run.data.by_pred.items():
            op = convert.get(p)
            if op is None:
                op = _convert(p, convert)
            for s, o in pairs:
                os_ = convert.get(s)
                if os_ is None:
                    os_ = _convert(s, convert)
                oo = convert.get(o)
                if oo is None:
                    oo = _convert(o, convert)
                quads.append(quad(os_, op, oo, name))
    except (ValueError, TypeError):
        return False  # a term pyoxigraph refuses (an IRI with a space, ...)
    literals = _collapses(run, [t for t in convert if isinstance(t, Literal)])
    if literals is None:
        return False
    back = {v: k for k, v in convert.items() if not isinstance(k, Literal)}
    run.ox_back = {**onto.from_ox, **back}
    run.ox_convert = {**onto.to_ox, **convert}
    run.ox_literals = literals
    run.store.extend(quads)
    run.ox_graph = name
    run.ox_ready = True
    return True


_RUNS = itertools.count()
# pyoxigraph's in-memory store keeps the strings of removed triples: the shared store is
# replaced after this many data triples have passed through it (about 45 KB a patient
# stayed behind; at 3,000,000 a cohort's workers grew past 1.3 GB each).
_RENEW_AFTER = 200_000


def _load_ontology(onto: _Ontology) -> None:
    convert: dict[Node, Any] = {}
    store = ox.Store()
    store.extend(ox.Quad(*(convert.get(t) or _convert(t, convert) for t in triple))
                 for triple in onto.triples)
    literals = [t for t in convert if isinstance(t, Literal)]
    _canonicalise([t for t in literals if _fast_key(t) is None and t not in _CANONICAL])
    onto.literal_keys = {t: _key(t) for t in literals}
    onto.from_ox = {v: k for k, v in convert.items() if not isinstance(k, Literal)}
    onto.to_ox = convert
    onto.store = store
    onto.loaded = 0


def _convert(term: Node, convert: dict[Node, Any]) -> Any:
    """A pyoxigraph term; blank nodes get fresh ids (per graph), IRIs and literals are
    cached across runs."""
    if isinstance(term, BNode):
        blank = convert[term] = ox.BlankNode()
        return blank
    found = convert[term] = stored_term(term)
    return found


_STRING = str(XSD.string)
# Lexical forms pyoxigraph keeps as they are (its canonical forms), per datatype.
_CANONICAL_FORMS = {
    XSD.date: re.compile(r"[1-9]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])\Z"),
    XSD.integer: re.compile(r"(0|-?[1-9]\d{0,17})\Z"),
    XSD.boolean: re.compile(r"(true|false)\Z"),
}


def _fast_key(literal: Literal) -> tuple[str, str, str | None] | None:
    datatype = literal.datatype
    if literal.language is None and (datatype is None or datatype == XSD.string):
        return str(literal), _STRING, None
    form = _CANONICAL_FORMS.get(datatype)  # type: ignore[arg-type]
    if form is not None and form.match(literal):
        return str(literal), str(datatype), None
    return None


def _key(literal: Literal) -> tuple[str, str, str | None]:
    """The literal as pyoxigraph stores it: (lexical form, datatype, language)."""
    return _fast_key(literal) or _CANONICAL[literal]


def _collapses(run: _Run, literals: list[Literal]
               ) -> dict[tuple[str, str, str | None], Literal] | None:
    """Each literal of the data, the ontology and the SPARQL texts by the form pyoxigraph
    stores it in; None if two distinct literals would be one term there (pyoxigraph stores
    numbers, booleans and dates by value)."""
    constants = {t for shape in run.shapes.shapes
                 for query in (*shape.sparql_targets, *shape.sparql)
                 for t in query.constants if isinstance(t, Literal)}
    every = [*literals, *constants]
    _canonicalise([t for t in every if _fast_key(t) is None and t not in _CANONICAL])
    keys: dict[tuple[str, str, str | None], Literal] = {}
    for literal, key in itertools.chain(run.onto.literal_keys.items(),
                                        ((t, _key(t)) for t in every)):
        if keys.setdefault(key, literal) != literal:
            return None
    return keys


def _canonicalise(literals: list[Literal]) -> None:
    if not literals:
        return
    scratch = ox.Store()
    scratch.extend(ox.Quad(ox.NamedNode(f"urn:l:{i}"), _P, _convert(lit, {}))
                   for i, lit in enumerate(literals))
    for quad in scratch:
        stored = quad.object
        literal = literals[int(quad.subject.value[6:])]
        if len(_CANONICAL) > _MAX_CACHED:
            _CANONICAL.clear()
        _CANONICAL[literal] = (stored.value, stored.datatype.value, stored.language)


def drop_data(run: _Run) -> None:
    """Take the run's graphs out of the shared store."""
    store = run.store
    if store is not None and run.ox_graph is not None:
        for name in [run.ox_graph, *(run.ox_parts or {}).values()]:
            store.remove_graph(name)


def graphs_for(run: _Run, parts: Parts | None, alone: bool) -> Callable[[Node], list[Any]]:
    whole = [ox.DefaultGraph(), run.ox_graph]
    if parts is None or parts.count < 2:
        return lambda f: whole
    names = _load_parts(run, parts)
    glob = [] if alone else [ox.DefaultGraph(), names[None]]
    return lambda f: [*glob, names[parts.root[f]]] if f in parts.root else whole


def _load_parts(run: _Run, parts: Parts) -> dict[Node | None, Any]:
    """Each part of the data in a graph of its own, next to the ontology (once per run)."""
    if run.ox_parts is not None:
        return run.ox_parts
    prefix = f"{run.ox_graph.value}:"
    names: dict[Node | None, Any] = {None: ox.NamedNode(prefix + "hubs")}
    convert = run.ox_convert
    root = parts.root
    quad = ox.Quad
    quads = []
    for p, pairs in run.data.by_pred.items():
        op = convert[p]
        for s, o in pairs:
            top = root.get(s)
            if top is None:
                top = root.get(o)
            name = names.get(top)
            if name is None:
                name = names[top] = ox.NamedNode(f"{prefix}{len(names)}")
            quads.append(quad(convert[s], op, convert[o], name))
    run.store.extend(quads)
    run.onto.loaded += len(quads)
    run.ox_parts = names
    return names


def rows(run: _Run, constraint: SparqlQuery, focus: Node, graphs: list[Any]
             ) -> Rows | None:
    """The rows on pyoxigraph, each term read back as the data's own (None: a term that
    is not one of the graph's, or a query pyoxigraph will not run: rdflib answers)."""
    term = run.ox_convert.get(focus)
    if term is None:
        return None
    try:
        answer = ox.evaluated(run.store, constraint.text, None, prefixes=constraint.prefixes,
                              default_graph=graphs, substitutions={_OX_THIS: term})
    except (SyntaxError, RuntimeError, ValueError):
        constraint.inert = False  # not $this in the projection, or syntax rdflib accepts
        return None
    if not isinstance(answer, tuple):
        raise NeedsReference("a SPARQL constraint that is not a SELECT")
    names, solutions = answer
    variables = [(ox.Variable(name), name) for name in names]
    back, literals = run.ox_back, run.ox_literals
    rows: Rows = []
    for solution in solutions:
        row: dict[str, Node] = {}
        for var, name in variables:
            value = solution[var]
            if value is None:
                continue
            node: Node | None
            if isinstance(value, ox.Literal):
                node = literals.get((value.value, value.datatype.value, value.language))
            else:
                node = back.get(value)
            if node is None:
                return None
            row[name] = node
        rows.append(row)
    return rows


_OX_THIS = ox.Variable("this")
