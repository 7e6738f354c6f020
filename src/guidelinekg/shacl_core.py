"""The fast SHACL engine's data structures and core constraints (:mod:`guidelinekg.shacl_fast`).

Indexes of the data and of the ontology (dictionaries, no copy into an rdflib store), a
read-only rdflib graph over them for rdflib's SPARQL engine, and pySHACL's own code for
property paths (``value_nodes_from_path``) and for the core constraint components, ported
onto the indexes and compiled once per shape. Where pySHACL would raise on a shape, compiling
raises :class:`UnsupportedShapes`; where it would raise on the data, checking raises
:class:`NeedsReference`: either way pySHACL itself then runs, and raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS, SH, XSD
from rdflib.paths import Path as RdfPath
from rdflib.term import Node


class UnsupportedShapes(ValueError):
    """The shapes use something the fast engine does not reproduce; the message says what."""


class NeedsReference(Exception):
    """This data needs pySHACL itself (an error it raises, a case outside this engine)."""


TYPE = RDF.type
SUBCLASS = RDFS.subClassOf
FIRST, REST, NIL = RDF.first, RDF.rest, RDF.nil


# ---------------------------------------------------------------------------------------
# Indexes and graph views
# ---------------------------------------------------------------------------------------


class Index:
    """Triples by subject, by object and by predicate (sets: one entry per triple)."""

    __slots__ = ("by_pred", "inn", "out", "size")

    def __init__(self, triples: Iterable[tuple[Node, Node, Node]] = ()) -> None:
        self.out: dict[Node, dict[Node, set[Node]]] = {}
        self.inn: dict[Node, dict[Node, set[Node]]] = {}
        self.by_pred: dict[Node, set[tuple[Node, Node]]] = {}
        self.size = 0
        for s, p, o in triples:
            self.add(s, p, o)

    def add(self, s: Node, p: Node, o: Node) -> None:
        preds = self.out.get(s)
        if preds is None:
            preds = self.out[s] = {}
        objects = preds.get(p)
        if objects is None:
            objects = preds[p] = set()
        elif o in objects:
            return
        objects.add(o)
        preds = self.inn.get(o)
        if preds is None:
            preds = self.inn[o] = {}
        subjects = preds.get(p)
        if subjects is None:
            preds[p] = {s}
        else:
            subjects.add(s)
        pairs = self.by_pred.get(p)
        if pairs is None:
            self.by_pred[p] = {(s, o)}
        else:
            pairs.add((s, o))
        self.size += 1

    def match(self, s: Node | None, p: Node | None, o: Node | None
              ) -> Iterator[tuple[Node, Node, Node]]:
        if s is not None:
            preds = self.out.get(s)
            if not preds:
                return
            items = [(p, preds.get(p, ()))] if p is not None else preds.items()
            for p1, objs in items:
                if o is None:
                    for o1 in objs:
                        yield s, p1, o1
                elif o in objs:
                    yield s, p1, o
        elif o is not None:
            preds = self.inn.get(o)
            if not preds:
                return
            items = [(p, preds.get(p, ()))] if p is not None else preds.items()
            for p1, subs in items:
                for s1 in subs:
                    yield s1, p1, o
        elif p is not None:
            for s1, o1 in self.by_pred.get(p, ()):
                yield s1, p, o1
        else:
            for p1, pairs in self.by_pred.items():
                for s1, o1 in pairs:
                    yield s1, p1, o1


class PartView:
    """The triples of one part of the data (:class:`guidelinekg.shacl_locality.Parts`):
    every triple with an end among ``members``, read from the data's index."""

    __slots__ = ("data", "members", "others", "size")

    def __init__(self, data: Index, members: list[Node], others: dict[Node, Any]) -> None:
        self.data = data
        self.members = set(members)
        self.others = others  # every node of some part: not a hub
        self.size = 1

    def match(self, s: Node | None, p: Node | None, o: Node | None
              ) -> Iterator[tuple[Node, Node, Node]]:
        members, data = self.members, self.data
        if s is not None and s in members:
            yield from data.match(s, p, o)
        elif o is not None and o in members:
            if s is None or s not in self.others:
                yield from data.match(s, p, o)
        elif (s is not None and s in self.others) or (o is not None and o in self.others):
            return  # a node of another part
        else:  # hubs or unbound at both ends: the part's triples at its members
            for m in members:
                if s is None:
                    for t in data.match(m, p, o):
                        yield t
                if o is None:
                    for t in data.match(s, p, m):
                        if t[0] not in members:  # member-to-member triples came above
                            yield t


class UnionGraph(Graph):
    """A read-only rdflib graph whose triples are those of disjoint layers (indexes or part
    views): what rdflib's SPARQL engine and the report's clones read, with no copy."""

    def __init__(self, layers: Iterable[Any]) -> None:
        super().__init__(bind_namespaces="none")
        self._layers = [layer for layer in layers if layer.size]

    def triples(self, triple: Any) -> Iterator[Any]:  # type: ignore[override]
        s, p, o = triple
        if isinstance(p, RdfPath):
            for s1, o1 in p.eval(self, s, o):
                yield s1, p, o1
            return
        for layer in self._layers:
            yield from layer.match(s, p, o)

    def __len__(self) -> int:
        return sum(1 for _ in self.triples((None, None, None)))

    def __bool__(self) -> bool:
        return True


def values(layers: tuple[Index, ...], node: Node, pred: Node, inverse: bool) -> set[Node]:
    found: set[Node] = set()
    for layer in layers:
        table = (layer.inn if inverse else layer.out).get(node)
        if table:
            objs = table.get(pred)
            if objs:
                found.update(objs)
    return found


# ---------------------------------------------------------------------------------------
# Property paths: pySHACL's value_nodes_from_path, compiled
# ---------------------------------------------------------------------------------------

PathFunction = Callable[[tuple[Index, ...], Node], set[Node]]


def compile_path(sg: Graph, path: Node, inverse: bool = False, depth: int = 0) -> PathFunction:
    """pySHACL's value_nodes_from_path as a function of (layers, focus), its quirks
    included (an inverse sequence inverts each step, in the given order)."""
    if isinstance(path, URIRef):
        return lambda layers, focus: values(layers, focus, path, inverse)
    if not isinstance(path, BNode) or depth >= 10:
        raise UnsupportedShapes(f"path {path}")
    first = list(sg.objects(path, FIRST))
    if first:
        rest = list(sg.objects(path, REST))
        if len(first) > 1 or len(rest) != 1 or (rest[0] == NIL and depth == 0):
            raise UnsupportedShapes(f"sequence path {path}")
        head = compile_path(sg, first[0], inverse, depth + 1)
        if rest[0] == NIL:
            return head
        tail = compile_path(sg, rest[0], inverse, depth + 1)
        return lambda layers, focus: set().union(
            *(tail(layers, node) for node in head(layers, focus)))
    for kind in (SH.inversePath, SH.alternativePath, SH.zeroOrMorePath, SH.oneOrMorePath,
                 SH.zeroOrOnePath):
        inner = list(sg.objects(path, kind))
        if len(inner) > 1:
            raise UnsupportedShapes(f"path {path}")
        if inner:
            return _compile_step(sg, kind, inner[0], inverse, depth)
    raise UnsupportedShapes(f"path {path}")


def _compile_step(sg: Graph, kind: Node, inner: Node, inverse: bool, depth: int
                  ) -> PathFunction:
    if kind == SH.inversePath:
        return compile_path(sg, inner, not inverse, depth + 1)
    if kind == SH.alternativePath:
        options = [compile_path(sg, option, inverse, depth + 1) for option in sg.items(inner)]
        if len(options) < 2:
            raise UnsupportedShapes("an alternative path of fewer than two paths")
        return lambda layers, focus: set().union(*(option(layers, focus) for option in options))
    step = compile_path(sg, inner, inverse, depth + 1)
    if kind == SH.zeroOrOnePath:
        return lambda layers, focus: {focus} | step(layers, focus)
    with_focus = kind == SH.zeroOrMorePath

    def closure(layers: tuple[Index, ...], focus: Node) -> set[Node]:
        found = {focus} if with_focus else set()
        todo = set(step(layers, focus))
        while todo:
            node = todo.pop()
            if node not in found:
                found.add(node)
                todo |= step(layers, node)
        return found

    return closure


# ---------------------------------------------------------------------------------------
# Core constraints: pySHACL's evaluate() methods, compiled per shape
# ---------------------------------------------------------------------------------------

# check(context, focus, value nodes) -> the sh:value of each result (None: no value)
Check = Callable[[Any, Node, set[Node]], list[Node | None]]

COMPONENTS: dict[Node, URIRef] = {SH.minCount: SH.MinCountConstraintComponent,
              SH.maxCount: SH.MaxCountConstraintComponent,
              SH.datatype: SH.DatatypeConstraintComponent,
              SH["in"]: SH.InConstraintComponent,
              SH["class"]: SH.ClassConstraintComponent,
              SH.nodeKind: SH.NodeKindConstraintComponent,
              SH.lessThan: SH.LessThanConstraintComponent,
              SH.lessThanOrEquals: SH.LessThanOrEqualsConstraintComponent,
              SH.minInclusive: SH.MinInclusiveConstraintComponent,
              SH.maxInclusive: SH.MaxInclusiveConstraintComponent,
              SH.minExclusive: SH.MinExclusiveConstraintComponent,
              SH.maxExclusive: SH.MaxExclusiveConstraintComponent}
SINGLE_VALUED = {SH.minCount, SH.maxCount, SH.datatype, SH["in"], SH.nodeKind}
PROPERTY_ONLY = {SH.minCount, SH.maxCount, SH.lessThan, SH.lessThanOrEquals}
_RANGE_TESTS: dict[Node, Callable[[int], bool]] = {SH.minExclusive: lambda order: order > 0,
                SH.minInclusive: lambda order: order >= 0,
                SH.maxExclusive: lambda order: order < 0,
                SH.maxInclusive: lambda order: order <= 0}
_PYTHON_TYPES: dict[Node, Any] = {XSD.string: (str, bytes), RDF.langString: (str, bytes),
                                  XSD.integer: int, XSD.float: float, XSD.decimal: Decimal,
                                  XSD.boolean: bool, XSD.date: date, XSD.time: time,
                                  XSD.dateTime: datetime}
_KINDS = {"B": (SH.BlankNode, SH.BlankNodeOrLiteral, SH.BlankNodeOrIRI),
          "L": (SH.Literal, SH.BlankNodeOrLiteral, SH.IRIOrLiteral),
          "I": (SH.IRI, SH.IRIOrLiteral, SH.BlankNodeOrIRI)}


def compile_check(shape: Node, pred: Node, params: list[Node], sg: Graph,
                  is_property: bool) -> Check:
    """pySHACL's constraint component for ``pred`` with its parameter values."""
    if pred in SINGLE_VALUED and len(params) != 1:
        raise UnsupportedShapes(f"shape {shape}: several values of {pred}")
    if pred in PROPERTY_ONLY and not is_property:
        raise UnsupportedShapes(f"shape {shape}: {pred} on a node shape")
    if pred in (SH.minCount, SH.maxCount):
        count = params[0]
        if not (isinstance(count, Literal) and count.datatype == XSD.integer
                and int(count.value) >= 0):
            raise UnsupportedShapes(f"shape {shape}: {pred} is not an integer >= 0")
        bound = int(count.value)
        if pred == SH.minCount:
            return lambda ctx, f, nodes: [None] if bound > 0 and len(nodes) < bound else []
        return lambda ctx, f, nodes: [None] if len(nodes) > bound else []
    if pred == SH["in"]:
        allowed = frozenset(sg.items(params[0]))
        return lambda ctx, f, nodes: [v for v in nodes if v not in allowed]
    if pred == SH.datatype:
        rule = params[0]
        return lambda ctx, f, nodes: [v for v in nodes if not datatype_matches(v, rule)]
    if pred == SH.nodeKind:
        rule = params[0]
        return lambda ctx, f, nodes: [v for v in nodes if rule not in _KINDS[_kind(v)]]
    if pred == SH["class"]:
        return lambda ctx, f, nodes: [v for cls in params for v in nodes
                                      if not ctx.is_instance(v, cls)]
    if pred in (SH.lessThan, SH.lessThanOrEquals):
        if not all(isinstance(other, URIRef) for other in params):
            raise UnsupportedShapes(f"shape {shape}: {pred} is not an IRI")
        strict = pred == SH.lessThan
        return lambda ctx, f, nodes: [v for other in params for v in pair_failures(
            nodes, values(ctx.layers, f, other, False), strict)]
    if not all(isinstance(bound, Literal) for bound in params):
        raise UnsupportedShapes(f"shape {shape}: {pred} is not a literal")
    test = _RANGE_TESTS[pred]
    return lambda ctx, f, nodes: [v for bound in params for v in nodes
                                  if not in_range(test, v, bound)]


def _kind(v: Node) -> str:
    return "B" if isinstance(v, BNode) else "L" if isinstance(v, Literal) else "I"


def datatype_matches(v: Node, rule: Node) -> bool:
    if not isinstance(v, Literal):
        return False
    if v.datatype == rule:
        return getattr(v, "ill_typed", None) is not True and _actual_datatype(v, rule)
    if rule == RDFS.Literal:
        return True
    if rule == RDFS.Datatype and v.datatype:
        return True
    if v.datatype is None and v.language is None and rule == XSD.string:
        return _actual_datatype(v, rule)
    if rule == RDF.langString and v.language:
        return _actual_datatype(v, rule)
    return False


def _actual_datatype(v: Literal, rule: Node) -> bool:
    kind = _PYTHON_TYPES.get(rule)
    return True if kind is None else isinstance(v.value, kind)


_ORDERED: dict[tuple[Node, Node, bool], bool] = {}


def pair_failures(nodes: set[Node], compared: set[Node], strict: bool) -> Iterator[Node]:
    """pySHACL's _compare_lt / _compare_ltoe: one result per failing pair."""
    for value_node in nodes:
        if isinstance(value_node, BNode):
            raise NeedsReference("a blank node compared by sh:lessThan(OrEquals)")
        for other in compared:
            key = (value_node, other, strict)
            fails = _ORDERED.get(key)
            if fails is None:
                fails = _pair_fails(value_node, other, strict)
                if len(_ORDERED) > 200_000:
                    _ORDERED.clear()
                _ORDERED[key] = fails
            if fails:
                yield value_node


def _pair_fails(value_node: Node, other: Node, strict: bool) -> bool:
    if isinstance(other, BNode):
        raise NeedsReference("a blank node compared by sh:lessThan(OrEquals)")
    left, left_is_string = _comparable(value_node)
    right, right_is_string = _comparable(other)
    try:
        return left_is_string != right_is_string or not (
            left < right if strict else left <= right)
    except TypeError:
        raise NeedsReference("values pySHACL cannot compare") from None


def _comparable(node: Node) -> tuple[Any, bool]:
    if isinstance(node, URIRef):
        return str(node), True
    if isinstance(node, Literal) and isinstance(node.value, str):
        return node.value, True
    return node, False


def in_range(test: Callable[[int], bool], v: Node, bound: Any) -> bool:
    """pySHACL's value range rules (compare_literal)."""
    if not isinstance(v, Literal):
        return False
    if isinstance(bound.value, str) != isinstance(v.value, str):
        return False
    try:
        return test(_compare_literal(v, bound))
    except (TypeError, NotImplementedError):
        return False


def _compare_literal(l1: Literal, l2: Literal) -> int:
    if l1.eq(l2):
        return 0
    if l1.value.__class__ in (datetime, time):
        if l1.value == l2.value:
            return 0
        if l1.value > l2.value:
            return 1
    elif l1 > l2:
        return 1
    return -1


# ---------------------------------------------------------------------------------------
# The report's clones: pySHACL's clone_blank_node
# ---------------------------------------------------------------------------------------


def clone_blank(graph: Graph, node: BNode, target: Graph, keep_id: bool = False,
                depth: int = 0) -> Node:
    clone = BNode(str(node)) if keep_id else BNode()
    if depth >= 10:
        return clone
    predicates = set(graph.predicates(node))
    if not predicates:
        return clone
    if FIRST in predicates:
        from rdflib.collection import Collection

        items = Collection(target, clone)
        for item in list(graph.items(node)):
            items.append(_clone_node(graph, item, target, depth + 1))
        return clone
    for pred in predicates:
        for obj in list(graph.objects(node, pred)):
            target.add((clone, _clone_node(graph, pred, target, depth + 1),
                        _clone_node(graph, obj, target, depth + 1)))
    return clone


def _clone_node(graph: Graph, node: Node, target: Graph, depth: int) -> Node:
    if isinstance(node, Literal):
        return Literal(str(node), node.language, node.datatype)
    if isinstance(node, BNode):
        return clone_blank(graph, node, target, depth=depth + 1)
    return URIRef(str(node))
