"""Where the fast SHACL engine (:mod:`guidelinekg.shacl_fast`) runs its SPARQL constraints.

SHACL-SPARQL constraints (``$this`` pre-bound) run for each focus node, on rdflib as in
pySHACL (or on pyoxigraph, :mod:`guidelinekg.shacl_oxigraph`, when that cannot differ),
but over part of the graph when that is provably the same: the data splits into *parts*, the
connected components of its triples once every term of the ontology and every literal is
taken out (a patient's record is one part; "hubs" such as classes and codes are shared).
For a focus node in part C, the query runs over C, the ontology and the data triples
between hubs, if every triple pattern of the query (in EXISTS, OPTIONAL, UNION and paths
alike) is *anchored*: one of its ends is bound to a node of C, or the data has no triple
that could connect a hub there to another part. Which variables are bound to C's nodes or
to hubs follows from the patterns and from per-predicate facts of the data (does the
predicate link two parts' nodes, a node to a hub, a hub to a node). rdflib's scoping is
modelled conservatively: an EXISTS sees ``$this`` and the variables of its own group.
When anything is not proven, the query runs over the whole graph. When no pattern can
match a triple of the ontology, the part alone is enough.

On rdflib the basic graph patterns of a constraint are reordered first (:func:`plan`):
rdflib orders them by their number of variables, not knowing ``$this`` is bound.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from rdflib import BNode, Graph, Literal, URIRef, Variable
from rdflib.namespace import XSD
from rdflib.paths import AlternativePath, InvPath, MulPath, NegatedPath, SequencePath
from rdflib.paths import Path as RdfPath
from rdflib.plugins.sparql.evaluate import evalQuery
from rdflib.plugins.sparql.parserutils import CompValue
from rdflib.plugins.sparql.sparql import Query
from rdflib.term import Node

from guidelinekg import shacl_oxigraph as oxigraph
from guidelinekg.shacl_core import Index, PartView, UnionGraph

if TYPE_CHECKING:
    from guidelinekg.shacl_fast import SparqlQuery, _Run

THIS = Variable("this")
_VARS = (Variable, BNode)
_TYPE = URIRef("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")


class _Unsafe(Exception):
    pass


def query_constants(algebra: Any) -> set[Node]:
    """The IRIs and literals a parsed query names (paths included)."""
    found: set[Node] = set()

    def walk(x: Any) -> None:
        if isinstance(x, CompValue):
            for value in x.values():
                walk(value)
        elif isinstance(x, (list, tuple, set, frozenset)):
            for value in x:
                walk(value)
        elif isinstance(x, dict):
            for value in x.values():
                walk(value)
        elif isinstance(x, RdfPath):
            for attr in ("args", "path", "arg"):
                walk(getattr(x, attr, None))
        elif isinstance(x, (URIRef, Literal)):
            found.add(x)

    walk(algebra)
    return found


# ---------------------------------------------------------------------------------------
# Parts of the data, and the graphs SPARQL constraints run on
# ---------------------------------------------------------------------------------------


class Parts:
    """The data's connected components once hubs (ontology terms, literals) are taken out,
    and, per predicate, which kinds of ends its data triples link."""

    def __init__(self, run: _Run) -> None:
        hubs = run.onto.terms
        parent: dict[Node, Node] = {}

        def root(node: Node) -> Node:
            while parent[node] is not node:
                parent[node] = parent[parent[node]]
                node = parent[node]
            return node

        self.stats: dict[Node, list[bool]] = {}
        self.glob = Index()
        for p, pairs in run.data.by_pred.items():
            flags = self.stats.setdefault(p, [False, False, False])
            for s, o in pairs:
                s_private = s not in hubs and not isinstance(s, Literal)
                o_private = o not in hubs and not isinstance(o, Literal)
                if s_private:
                    parent.setdefault(s, s)
                if o_private:
                    parent.setdefault(o, o)
                if s_private and o_private:
                    flags[0] = True
                    a, b = root(s), root(o)
                    if a is not b:
                        parent[a] = b
                elif s_private:
                    flags[1] = True
                elif o_private:
                    flags[2] = True
                else:
                    self.glob.add(s, p, o)
        self.any = [any(f[i] for f in self.stats.values()) for i in range(3)]
        self.root = {node: root(node) for node in parent}
        self.count = len(set(self.root.values()))
        self._run = run
        self._graphs: dict[tuple[Node, bool], Graph] = {}
        self._members: dict[Node, list[Node]] | None = None

    def is_private(self, node: Node) -> bool:
        return node in self.root

    def graph(self, node: Node, alone: bool = False) -> Graph:
        """The graph a query about ``node`` runs on: its part, and unless ``alone`` the
        hubs' data triples and the ontology."""
        key = (self.root[node], alone)
        graph = self._graphs.get(key)
        if graph is None:
            if self._members is None:
                self._members = {}
                for member, top in self.root.items():
                    self._members.setdefault(top, []).append(member)
            part = PartView(self._run.data, self._members[key[0]], self.root)
            layers = (part,) if alone else (self._run.onto.index, self.glob, part)
            graph = self._graphs[key] = UnionGraph(layers)
        return graph


Rows = list[dict[str, Node]]


def constraint_rows(run: _Run, constraint: SparqlQuery, focus: set[Node]
                    ) -> Callable[[Node], Rows]:
    """For each focus node, the rows of a SPARQL constraint, as pySHACL reads them: each
    row the dictionary of its bound variables in projection order (``ResultRow.asdict``).

    Over the focus node's part when :class:`_Analysis` proves it the same; on pyoxigraph
    when the constraint is inert (see :attr:`SparqlQuery.inert`) and the store answers as
    rdflib would, else on rdflib with pySHACL's pre-binding."""
    parts = None
    alone = False  # the part alone answers (no ontology triple can match)
    if constraint.binds_this:
        if run.parts is None:
            run.parts = Parts(run)
        if run.parts.count < 2:
            parts = run.parts  # one part: the whole graph is the part
        elif any(run.parts.is_private(f) for f in focus):
            analysis = _Analysis(run.parts)
            try:
                analysis.part(constraint.query.algebra, {THIS}, set())
                parts = run.parts
                alone = not analysis.hubs
            except _Unsafe:
                pass
    if constraint.inert and constraint.binds_this and oxigraph.oxigraph_ready(run):
        graphs = oxigraph.graphs_for(run, parts, alone)

        def ox_rows(f: Node) -> Rows:
            rows = oxigraph.rows(run, constraint, f, graphs(f))
            return rows if rows is not None else rd_rows(f)

        rd_rows = _rdflib_rows(run, constraint, parts, alone)
        return ox_rows
    return _rdflib_rows(run, constraint, parts, alone)


def _rdflib_rows(run: _Run, constraint: SparqlQuery, parts: Parts | None, alone: bool
                 ) -> Callable[[Node], Rows]:
    whole = run.union
    if parts is None or parts.count < 2:
        return lambda f: select(whole, constraint, f)
    return lambda f: select(parts.graph(f, alone) if parts.is_private(f) else whole,
                            constraint, f)


def select(graph: Graph, constraint: SparqlQuery, focus: Node) -> Rows:
    """The rows on rdflib, as pySHACL gets them (``$this`` in ``initBindings``)."""
    bindings: dict[str, Any] = {"this": focus} if constraint.binds_this else {}
    query = constraint.plan or constraint.query
    result = evalQuery(graph, query, bindings)
    names = [(var, str(var)) for var in result.get("vars_") or ()]
    rows = []
    for solution in result["bindings"]:
        row = {}
        for var, name in names:
            value = solution.get(var)
            if value is not None:
                row[name] = value
        rows.append(row)
    return rows


def plan(query: Query) -> Query:
    """The query with each basic graph pattern's triples reordered to start from what is
    bound (``$this``, then what the enclosing pattern binds): rdflib orders them once, by
    their number of variables, and would scan every typed node for ``?y a gkg:X``. The
    solutions of a basic graph pattern do not depend on the order of its triples."""
    _plan_part(query.algebra, {THIS})
    return query


def _plan_part(node: Any, known: set[Node]) -> None:
    if not isinstance(node, CompValue):
        if isinstance(node, list):
            for item in node:
                _plan_part(item, known)
        return
    if node.name == "BGP":
        node["triples"] = _reorder(node.triples, known)
        return
    if node.name in ("Join", "LeftJoin", "Minus"):
        _plan_part(node.p1, known)
        after = known | set(node.p1._vars or ())
        _plan_part(node.p2, after)
        if node.name == "LeftJoin":
            _plan_expr(node.expr, after | set(node.p2._vars or ()))
        return
    if node.name in ("Filter", "Extend"):
        _plan_part(node.p, known)
        _plan_expr(node.expr, known | set(getattr(node.p, "_vars", None) or ()))
        return
    for value in node.values():
        if isinstance(value, (CompValue, list)):
            _plan_part(value, known)


def _plan_expr(expr: Any, known: set[Node]) -> None:
    if isinstance(expr, CompValue):
        if expr.name in ("Builtin_EXISTS", "Builtin_NOTEXISTS"):
            _plan_part(expr.graph, known)
            return
        for value in expr.values():
            _plan_expr(value, known)
    elif isinstance(expr, list):
        for value in expr:
            _plan_expr(value, known)


def _reorder(triples: list[tuple], known: set[Node]) -> list[tuple]:
    known = set(known)
    rest = list(triples)
    ordered = []
    while rest:
        def score(t: tuple) -> tuple[int, int]:
            s, p, o = t
            s_known = not isinstance(s, _VARS) or s in known
            o_known = not isinstance(o, _VARS) or o in known
            p_known = not isinstance(p, _VARS) or p in known
            # a known subject or object first; a type pattern (a class has many instances)
            # only when nothing better is left
            type_scan = p == _TYPE and not s_known
            return (2 * s_known + 2 * o_known + p_known - 2 * type_scan, s_known)
        best = max(rest, key=score)
        rest.remove(best)
        ordered.append(best)
        known.update(term for term in best if isinstance(term, _VARS))
    return ordered


# ---------------------------------------------------------------------------------------
# The proof that a query stays in its focus node's part
# ---------------------------------------------------------------------------------------

Kinds = tuple[set[Node], set[Node]]  # (anchored to the part's nodes, bound to hubs)


class _Analysis:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.fresh = itertools.count()
        # some pattern may match a triple of the ontology or between hubs (else the part
        # alone answers the query)
        self.hubs = False

    # -- algebra ------------------------------------------------------------------------

    def part(self, node: Any, a: set[Node], h: set[Node]) -> Kinds:
        name = getattr(node, "name", None)
        if name == "BGP":
            return self.bgp(node.triples, a, h)
        if name in ("SelectQuery", "Distinct", "Reduced", "Slice", "OrderBy"):
            return self.part(node.p, a, h)
        if name == "Project":
            a2, h2 = self.part(node.p, a, h)
            keep = set(node.PV)
            return a2 & keep, h2 & keep
        if name == "ToMultiSet":  # a subquery: only $this reaches inside
            a2, h2 = self.part(node.p, a & {THIS}, set())
            return a2, h2
        if name in ("Filter", "Extend"):
            a2, h2 = self.part(node.p, a, h)
            seen = set(getattr(node, "_vars", None) or ()) | {THIS}
            self.expr(node.expr, a2 & seen, h2 & seen)
            return a2, h2
        if name == "Join":
            return self.join(node.p1, node.p2, a, h)
        if name == "LeftJoin":
            a1, h1 = self.part(node.p1, a, h)
            self.part(node.p2, a1, h1)
            self.expr(node.expr, a & {THIS}, set())
            return a1, h1
        if name == "Union":
            a1, h1 = self.part(node.p1, a, h)
            a2, h2 = self.part(node.p2, a, h)
            return a1 & a2, h1 & h2
        if name == "Minus":
            a1, h1 = self.part(node.p1, a, h)
            self.part(node.p2, a & {THIS}, set())
            return a1, h1
        if name in ("Group", "AggregateJoin"):
            self.part(node.p, a, h)
            return a & {THIS}, set()
        if name == "values":
            return a, h
        raise _Unsafe(name)

    def join(self, p1: Any, p2: Any, a: set[Node], h: set[Node]) -> Kinds:
        try:
            a1, h1 = self.part(p1, a, h)
            return self.part(p2, a1, h1)
        except _Unsafe:
            a2, h2 = self.part(p2, a, h)
            return self.part(p1, a2, h2)

    def expr(self, e: Any, a: set[Node], h: set[Node]) -> None:
        if isinstance(e, CompValue):
            if e.name in ("Builtin_EXISTS", "Builtin_NOTEXISTS"):
                self.part(e.graph, set(a), set(h))
                return
            if e.name == "Function" and not str(e.iri).startswith(str(XSD)):
                raise _Unsafe("extension function")
            for value in e.values():
                self.expr(value, a, h)
        elif isinstance(e, (list, tuple)):
            for value in e:
                self.expr(value, a, h)

    # -- basic graph patterns -------------------------------------------------------------

    def bgp(self, triples: Iterable[tuple], a: set[Node], h: set[Node]) -> Kinds:
        patterns: list[tuple] = []
        for s, p, o in triples:
            patterns.extend(self.expand(s, p, o))
        a, h = set(a), set(h)
        changed = True
        while changed:
            changed = False
            for pattern in patterns:
                for var, kind in self.step(pattern, a, h)[1]:
                    if var in a or (kind == "H" and var in h):
                        continue
                    if kind == "A":
                        a.add(var)
                        h.discard(var)
                    else:
                        h.add(var)
                    changed = True
        for pattern in patterns:
            if not self.step(pattern, a, h)[0]:
                raise _Unsafe(str(pattern))
            s, p, o = pattern
            if isinstance(p, (AlternativePath, MulPath)) or "A" not in (
                    self.kind(s, a, h), self.kind(o, a, h)):
                self.hubs = True
        return a, h

    def expand(self, s: Node, p: Any, o: Node) -> list[tuple]:
        """Triple patterns for a pattern with a path: sequences through fresh variables,
        inverses swapped; alternatives, repetitions and negations stay whole."""
        if isinstance(p, InvPath):
            return self.expand(o, p.arg, s)
        if isinstance(p, SequencePath):
            out: list[tuple] = []
            ends = [s] + [Variable(f"_seq{next(self.fresh)}") for _ in p.args[1:]] + [o]
            for i, step in enumerate(p.args):
                out.extend(self.expand(ends[i], step, ends[i + 1]))
            return out
        return [(s, p, o)]

    def kind(self, term: Node, a: set[Node], h: set[Node]) -> str:
        if isinstance(term, _VARS):
            return "A" if term in a else "H" if term in h else "U"
        if isinstance(term, URIRef) and self.parts.is_private(term):
            raise _Unsafe(f"the query names a record's node {term}")
        return "H"

    def step(self, pattern: tuple, a: set[Node], h: set[Node]
             ) -> tuple[bool, list[tuple[Node, str]]]:
        """(is the pattern safe, the kinds it gives its variables)."""
        s, p, o = pattern
        if isinstance(p, AlternativePath):
            return self.alternative(s, p, o, a, h)
        if isinstance(p, MulPath):
            return self.repeated(s, p, o, a, h)
        if isinstance(p, (URIRef,)):
            flags = self.parts.stats.get(p, [False, False, False])
        elif isinstance(p, (NegatedPath, *_VARS)):
            flags = self.parts.any
        else:
            raise _Unsafe(f"path {p}")
        return self.edge(self.kind(s, a, h), self.kind(o, a, h), flags, s, o)

    @staticmethod
    def edge(ks: str, ko: str, flags: list[bool], s: Node, o: Node
             ) -> tuple[bool, list[tuple[Node, str]]]:
        """Is a triple pattern with ends of kinds ``ks``, ``ko`` (A: a node of the part,
        H: a hub, U: unknown) safe, and what kinds does it give its unknown ends. ``flags``:
        the predicate's data triples link two nodes / a node to a hub / a hub to a node."""
        pp, ph, hp = flags
        local = pp or ph or hp
        safe = ("A" in (ks, ko) or (ks == "H" and (ko == "H" or not hp))
                or (ko == "H" and not ph) or not local)
        gives: list[tuple[Node, str]] = []
        if not safe:
            return False, gives
        for var, this_kind, other_kind, to_hub, to_node in ((o, ko, ks, ph, pp),
                                                           (s, ks, ko, hp, pp)):
            if not isinstance(var, _VARS) or this_kind != "U":
                continue
            # from a node of the part: a node of the part unless the predicate reaches hubs
            # from nodes; a hub unless it reaches nodes. From a hub: a hub unless it reaches
            # nodes from hubs. Between unknowns, only hub-to-hub triples can match.
            reverse_hub = hp if var is o else ph
            if other_kind == "A":
                kind = "A" if not to_hub else "H" if not to_node else None
            elif other_kind == "H":
                kind = "H" if not reverse_hub else None
            else:
                kind = "H" if not local else None
            if kind:
                gives.append((var, kind))
        return True, gives

    def alternative(self, s: Node, p: AlternativePath, o: Node, a: set[Node], h: set[Node]
                    ) -> tuple[bool, list[tuple[Node, str]]]:
        results: list[Kinds] = []
        for option in p.args:
            try:
                a2, h2 = self.bgp([(s, option, o)], a, h)
            except _Unsafe:
                return False, []
            results.append((a2, h2))
        gives: list[tuple[Node, str]] = []
        for var in (s, o):
            if isinstance(var, _VARS):
                if all(var in a2 for a2, _ in results):
                    gives.append((var, "A"))
                elif all(var in a2 or var in h2 for a2, h2 in results):
                    gives.append((var, "H"))
        return True, gives

    def repeated(self, s: Node, p: MulPath, o: Node, a: set[Node], h: set[Node]
                 ) -> tuple[bool, list[tuple[Node, str]]]:
        """A repeated step (p*, p+, p?) of one predicate: safe when every step from the
        known end stays on known kinds."""
        inner: Any = p.path
        inverse = isinstance(inner, InvPath)
        pred = inner.arg if inverse else inner
        if not isinstance(pred, URIRef):
            return False, []
        flags = self.parts.stats.get(pred, [False, False, False])
        ks, ko = self.kind(s, a, h), self.kind(o, a, h)
        if ks != "U":
            start, end, forward = ks, o, not inverse
        elif ko != "U":
            start, end, forward = ko, s, inverse
        else:
            return False, []
        x, y = Variable("_from"), Variable("_to")
        reached = {start} if p.mod in ("*", "?") else set()
        todo, seen = [start], {start}
        while todo:
            kind = todo.pop()
            safe, gives = (self.edge(kind, "U", flags, x, y) if forward
                           else self.edge("U", kind, flags, x, y))
            far = y if forward else x
            new = next((k for var, k in gives if var is far), None)
            if not safe or new is None:
                return False, []
            reached.add(new)
            if new not in seen:
                seen.add(new)
                todo.append(new)
        if isinstance(end, _VARS) and self.kind(end, a, h) == "U" and len(reached) == 1:
            return True, [(end, next(iter(reached)))]
        return True, []
