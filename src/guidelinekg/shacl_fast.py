"""The fast SHACL engine: pySHACL's results (``advanced=True``, no inference), computed
faster on the constructs the project's shapes use (docs/engines.md has the measurements).

- **Core constraints** (sh:minCount, sh:maxCount, sh:datatype, sh:in, sh:class, sh:nodeKind,
  sh:lessThan(OrEquals), sh:min/maxInclusive/Exclusive), property paths and **targets**
  (sh:targetClass with the rdfs:subClassOf closure, sh:targetNode, sh:targetSubjectsOf,
  sh:targetObjectsOf, implicit class targets) are pySHACL's own code ported onto dictionary
  indexes of the data and the ontology (:mod:`guidelinekg.shacl_core`; no copy is made).
- **SHACL-AF SPARQL targets** run on pyoxigraph (:mod:`guidelinekg.shacl_oxigraph`) where
  it cannot answer otherwise than rdflib, else on rdflib as in pySHACL.
- **SHACL-SPARQL constraints** keep pySHACL's query text, pre-binding of ``$this`` and
  reading of rows and messages; they run over the focus node's own part of the data when
  :mod:`guidelinekg.shacl_locality` proves that the same, on pyoxigraph when nothing in
  them can tell the engines apart, else on rdflib (with literal normalisation on, as during
  a pySHACL run).
- The W3C report graph is built as pySHACL builds it (blank nodes of the data and of the
  shapes cloned into it with their descriptions), when it is first read
  (:mod:`guidelinekg.shacl_fast_report`, with each result's messages).

Anything else raises :class:`UnsupportedShapes` when the shapes are compiled (nested
shapes, sh:or/sh:and/sh:not, string constraints, custom constraint components, SHACL
rules and functions, sh:ask, $PATH or $shapesGraph in SPARQL, a core constraint without
sh:message, ...), and :class:`NeedsReference` when the data puts the engine where only
pySHACL gives pySHACL's answer (an error it raises, a target row without ``?this``). The
caller (:mod:`guidelinekg.shacl`) then runs pySHACL: nothing is skipped.

The compiled shapes and the indexed ontology are kept per graph object (rebuilt when its
size changes): the patient shapes and the vocabulary are the same every run.
"""

from __future__ import annotations

import gc
import re
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import OWL, RDF, RDFS, SH
from rdflib.plugins.sparql.sparql import Query
from rdflib.term import Node

from guidelinekg import shacl_locality as locality
from guidelinekg import shacl_oxigraph as oxigraph
from guidelinekg.query_text import prepared_query
from guidelinekg.shacl_core import (
    COMPONENTS,
    SUBCLASS,
    TYPE,
    Check,
    Index,
    NeedsReference,
    PathFunction,
    UnionGraph,
    UnsupportedShapes,
    compile_check,
    compile_path,
    values,
)
from guidelinekg.shacl_fast_report import (
    FastResult,
    fast_result,
    literal_normalisation,
    report_graph,
)

# ---------------------------------------------------------------------------------------
# The ontology, indexed once
# ---------------------------------------------------------------------------------------


@dataclass
class _Ontology:
    index: Index
    triples: set[tuple[Node, Node, Node]]
    terms: set[Node]  # every term of the ontology: shared by all records ("hubs")
    store: Any = None  # pyoxigraph.Store: the ontology in its default graph
    loaded: int = 0  # data triples loaded into ``store`` so far
    to_ox: dict[Node, Any] = field(default_factory=dict)
    from_ox: dict[Any, Node] = field(default_factory=dict)
    literal_keys: dict[Literal, tuple] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_ONTOLOGIES: dict[int, tuple[Any, int, _Ontology]] = {}
_SHAPES: dict[int, tuple[Any, int, Any]] = {}
_CACHE_LOCK = threading.Lock()


def _cached(table: dict[int, tuple[Any, int, Any]], graph: Graph, build: Any) -> Any:
    """One compiled object per graph object, rebuilt when the graph's size changes."""
    key = id(graph)
    with _CACHE_LOCK:
        entry = table.get(key)
        if entry is not None and entry[0]() is graph and entry[1] == len(graph):
            return entry[2]
    value = build(graph)
    with _CACHE_LOCK:
        if len(table) > 8:
            table.clear()
        table[key] = (weakref.ref(graph), len(graph), value)
    return value


def _build_ontology(graph: Graph) -> _Ontology:
    index = Index()
    triples = set()
    terms: set[Node] = set()
    for s, p, o in graph:
        index.add(s, p, o)
        triples.add((s, p, o))
        terms.update((s, p, o))
    return _Ontology(index, triples, terms)


_EMPTY_ONTOLOGY = Graph()


def ontology_context(ontology: Graph | None) -> _Ontology:
    return _cached(_ONTOLOGIES, ontology if ontology is not None else _EMPTY_ONTOLOGY,
                   _build_ontology)


# ---------------------------------------------------------------------------------------
# Shapes, compiled once
# ---------------------------------------------------------------------------------------

SUPPORTED_CORE = {SH.minCount, SH.maxCount, SH.datatype, SH["in"], SH["class"], SH.nodeKind,
                  SH.lessThan, SH.lessThanOrEquals, SH.minInclusive, SH.maxInclusive,
                  SH.minExclusive, SH.maxExclusive}
SHAPE_METADATA = {SH.name, SH.description, SH.message, SH.severity, SH.deactivated, SH.order,
                  SH.group, SH.defaultValue, SH.path, SH.targetClass, SH.targetNode,
                  SH.targetSubjectsOf, SH.targetObjectsOf, SH.target, SH.sparql}
# Terms of the sh: namespace that may appear anywhere (paths, SPARQL nodes, prefixes, values).
NEUTRAL_SH_TERMS = SUPPORTED_CORE | SHAPE_METADATA | {
    SH.NodeShape, SH.PropertyShape, SH.Shape, SH.inversePath, SH.alternativePath,
    SH.zeroOrMorePath, SH.oneOrMorePath, SH.zeroOrOnePath, SH.SPARQLConstraint,
    SH.SPARQLTarget, SH.select, SH.prefixes, SH.declare, SH.prefix, SH.namespace,
    SH.Violation, SH.Warning, SH.Info, SH.IRI, SH.BlankNode, SH.Literal, SH.BlankNodeOrIRI,
    SH.BlankNodeOrLiteral, SH.IRIOrLiteral, SH.sourceConstraintComponent,
    SH.ValidationResult, SH.ValidationReport}
# pySHACL's checks on SPARQL constraint text (pyshacl.helper.sparql_query_helper).
_BIND_THIS = re.compile(r"([\s{}()])[\$\?]this", flags=re.M)
_REFUSED_IN_CONSTRAINTS = [
    re.compile(r"^(?:[^#]*|M)(?!#)#?[^\?\$\#]M?INUS[\s\{]", flags=re.M | re.I),
    re.compile(r"^(?!\s*#).*?(?<![\w\-\:])VALUES\b(?:\s*(?:\(|[\?\$]\w+|\{|\w|\s))",
               flags=re.M | re.I),
    re.compile(r"^(?:[^#]*|S)(?!#)#?[^\?\$\#]S?ERVICE[\s\<]", flags=re.M | re.I),
    re.compile(r"SELECT[\s\(\)\$\?\a-z]*\{[^\}]*SELECT\s+((?:(?:[\?\$]\w+\s+)|(?:\*\s+))+)",
               flags=re.M | re.I),
    re.compile(r"([\s{}()])[\$\?](PATH|shapesGraph|currentShape)\b", flags=re.M),
]
_AS_VAR = re.compile(r"[^\w]+AS[\s]+[\$\?](\w+)", flags=re.M | re.I)
_AS_ANY = re.compile(r"\bAS\s+[\$\?]\w+", flags=re.I)
_AS_IRI = re.compile(r"\(\s*(<[^<>\s]*>|[A-Za-z][\w.-]*:[\w.-]*)\s+AS\s+[\$\?]\w+\s*\)",
                     flags=re.I)
# A target whose text uses one of these runs on rdflib: pyoxigraph stores numbers, booleans
# and dates in canonical form ("120.0" as "120"), so their lexical form, and the clock,
# may differ between the engines.
_LEXICAL = re.compile(
    r"\b(STR|LANG|LANGMATCHES|DATATYPE|STRLEN|SUBSTR|UCASE|LCASE|STRSTARTS|STRENDS|CONTAINS|"
    r"STRBEFORE|STRAFTER|ENCODE_FOR_URI|CONCAT|REPLACE|REGEX|MD5|SHA1|SHA256|SHA384|SHA512|"
    r"STRDT|STRLANG|IRI|URI|BNODE|UUID|STRUUID|NOW|RAND|GROUP_CONCAT|sameTerm)\s*\(", re.I)


@dataclass
class SparqlQuery:
    node: Node  # the sh:sparql or sh:target node
    text: str  # the sh:select text
    prefixes: dict[str, str]  # pySHACL's prefixes for it (sh:prefixes, sh:declare)
    query: Query  # parsed once, as pySHACL's runs parse it (literal normalisation on)
    binds_this: bool = True
    deactivated: bool = False
    messages: tuple[Literal, ...] = ()
    constants: frozenset[Node] = frozenset()
    lexical: bool = False  # for targets: needs rdflib (see _LEXICAL)
    plan: Query | None = None  # the query with its basic graph patterns reordered
    # a constraint pyoxigraph answers as rdflib does: no function of a lexical form or of
    # the clock, and no computed value but a constant IRI (``(gkg:x AS ?path)``)
    inert: bool = False


@dataclass
class CompiledShape:
    node: Node
    path: Node | None
    severity: Node
    messages: tuple[Node, ...]
    values: PathFunction | None = None  # the shape's value nodes, for a property shape
    classes: list[Node] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    subjects_of: list[Node] = field(default_factory=list)
    objects_of: list[Node] = field(default_factory=list)
    sparql_targets: list[SparqlQuery] = field(default_factory=list)
    core: list[tuple[Node, Check]] = field(default_factory=list)
    sparql: list[SparqlQuery] = field(default_factory=list)


@dataclass
class CompiledShapes:
    graph: Graph
    shapes: list[CompiledShape]
    namespaces: list[tuple[str, Any]]


def compile_shapes(shapes: Graph) -> CompiledShapes:
    """The shapes, compiled once per shapes graph; :class:`UnsupportedShapes` if they use
    anything this engine does not reproduce exactly."""
    compiled = _cached(_SHAPES, shapes, _compile_or_reason)
    if isinstance(compiled, str):
        raise UnsupportedShapes(compiled)
    return compiled


def _compile_or_reason(shapes: Graph) -> CompiledShapes | str:
    try:
        return _compile(shapes)
    except UnsupportedShapes as error:
        return str(error)


def _compile(sg: Graph) -> CompiledShapes:
    unknown = {term for triple in sg for term in triple[1:]
               if isinstance(term, URIRef) and term.startswith(str(SH))
               and term not in NEUTRAL_SH_TERMS}
    if unknown:
        names = ", ".join(sorted("sh:" + term[len(str(SH)):] for term in unknown))
        raise UnsupportedShapes(f"the shapes use {names}")
    node_shapes = set(sg.subjects(RDF.type, SH.NodeShape))
    prop_shapes = set(sg.subjects(RDF.type, SH.PropertyShape))
    implied = {s for p in (SH.targetClass, SH.targetNode, SH.targetSubjectsOf,
                           SH.targetObjectsOf) for s in sg.subjects(p, None)}
    compiled = []
    for node in sorted(node_shapes | prop_shapes | implied, key=str):
        paths = list(sg.objects(node, SH.path))
        if len(paths) > 1 or (node in node_shapes and paths) or \
                (node in prop_shapes and not paths):
            raise UnsupportedShapes(f"shape {node} has an ill-formed sh:path")
        compiled.append(_compile_shape(sg, node, paths[0] if paths else None))
    return CompiledShapes(sg, compiled, list(sg.namespace_manager.namespaces()))


def _one(sg: Graph, node: Node, pred: Node) -> list[Node]:
    return list(sg.objects(node, pred))


def _compile_shape(sg: Graph, node: Node, path: Node | None) -> CompiledShape:
    deactivated = _one(sg, node, SH.deactivated)
    severities = _one(sg, node, SH.severity)
    if len(deactivated) > 1 or len(severities) > 1:
        raise UnsupportedShapes(f"shape {node}: several sh:deactivated or sh:severity")
    if deactivated and (not isinstance(deactivated[0], Literal)
                        or str(deactivated[0]) not in ("true", "false")):
        raise UnsupportedShapes(f"shape {node}: sh:deactivated is not true or false")
    shape = CompiledShape(node, path, severities[0] if severities else SH.Violation,
                          tuple(sg.objects(node, SH.message)))
    if deactivated and str(deactivated[0]) == "true":
        return shape  # pySHACL skips a deactivated shape before anything else
    if path is not None:
        shape.values = compile_path(sg, path)
    shape.classes = _one(sg, node, SH.targetClass)
    # pySHACL's implicit class target: a shape typed rdfs:Class or a subclass of it.
    if {RDFS.Class, *sg.subjects(RDFS.subClassOf, RDFS.Class)} & set(sg.objects(node, RDF.type)):
        shape.classes.append(node)
    shape.nodes = _one(sg, node, SH.targetNode)
    shape.subjects_of = _one(sg, node, SH.targetSubjectsOf)
    shape.objects_of = _one(sg, node, SH.targetObjectsOf)
    for target in sg.objects(node, SH.target):
        selects = _one(sg, target, SH.select)
        if len(selects) != 1 or not isinstance(selects[0], Literal):
            raise UnsupportedShapes(f"shape {node}: a sh:target that is not one sh:select")
        shape.sparql_targets.append(_sparql(sg, node, target, str(selects[0]), target=True))
    for pred in sorted(set(sg.predicates(node)) & SUPPORTED_CORE, key=str):
        if not shape.messages:
            raise UnsupportedShapes(f"shape {node} has a core constraint and no sh:message")
        check = compile_check(node, pred, _one(sg, node, pred), sg, path is not None)
        shape.core.append((COMPONENTS[pred], check))
    for constraint in sg.objects(node, SH.sparql):
        selects = _one(sg, constraint, SH.select)
        if len(selects) != 1 or not isinstance(selects[0], Literal):
            raise UnsupportedShapes(f"shape {node}: a sh:sparql that is not one sh:select")
        shape.sparql.append(_sparql(sg, node, constraint, str(selects[0]), target=False))
    return shape


def _prefixes(sg: Graph, node: Node) -> dict[str, str]:
    """pySHACL's prefix collection (SPARQLQueryHelper.collect_prefixes)."""
    prefixes = {"rdf": str(RDF), "rdfs": str(RDFS), "owl": str(OWL)}
    values = set(sg.objects(node, SH.prefixes))
    if not values:
        return prefixes
    ontologies = set(sg.subjects(RDF.type, OWL.Ontology))
    named = set(sg.objects(sg.identifier, SH.declare))
    every = named.union(*(set(sg.objects(o, SH.declare)) for o in ontologies))
    for value in values:
        own = set(sg.objects(value, SH.declare))
        for declaration in (own | named) if own and value in ontologies else (every | own):
            names = _one(sg, declaration, SH.prefix)
            spaces = _one(sg, declaration, SH.namespace)
            if len(names) != 1 or len(spaces) != 1 or not isinstance(names[0], Literal) \
                    or not isinstance(spaces[0], Literal):
                raise UnsupportedShapes(f"an ill-formed sh:declare on {value}")
            prefixes[str(names[0].value)] = str(spaces[0].value)
    return prefixes


def _sparql(sg: Graph, shape: Node, node: Node, select: str, *, target: bool) -> SparqlQuery:
    if not target:
        for check in _REFUSED_IN_CONSTRAINTS:
            if check.search(select):
                raise UnsupportedShapes(f"shape {shape}: SPARQL constraint text pySHACL refuses "
                                        "or this engine does not bind ($PATH, nested SELECT...)")
        as_var = _AS_VAR.search(select)
        if as_var and as_var.group(1) in ("this", "shapesGraph", "currentShape", "value"):
            raise UnsupportedShapes(f"shape {shape}: AS ?{as_var.group(1)} in SPARQL")
    deactivated = _one(sg, node, SH.deactivated)
    messages = tuple(m for m in sg.objects(node, SH.message) if isinstance(m, Literal))
    prefixes = _prefixes(sg, node)  # pySHACL declares them before the text: the same
    with literal_normalisation():
        try:
            query = prepared_query(select, prefixes)
        except Exception as error:  # pySHACL reports the parse error itself
            raise UnsupportedShapes(f"shape {shape}: SPARQL does not parse ({error})") from None
        plan = None if target else locality.plan(prepared_query(select, prefixes))
    constants = frozenset(locality.query_constants(query.algebra))
    lexical = bool(_LEXICAL.search(select))
    computed = len(_AS_ANY.findall(select)) != len(_AS_IRI.findall(select))
    return SparqlQuery(node, select, prefixes, query, bool(_BIND_THIS.search(select)),
                       bool(deactivated and getattr(deactivated[0], "value", False) is True),
                       messages, constants, lexical, plan,
                       inert=not target and not lexical and not computed)


# ---------------------------------------------------------------------------------------
# One validation
# ---------------------------------------------------------------------------------------


class _Run:
    """One validation: the compiled shapes, the ontology, the data's index, the results."""

    def __init__(self, shapes: CompiledShapes, onto: _Ontology, data: Index) -> None:
        self.shapes = shapes
        self.onto = onto
        self.data = data
        self.layers = (onto.index, data)
        self.union = UnionGraph(self.layers)
        self.parts: locality.Parts | None = None
        self.ox_ready: bool | None = None
        self.store: Any = None  # the pyoxigraph store the run's data is in
        self.ox_graph: Any = None
        self.ox_back: dict[Any, Node] = {}
        self.ox_convert: dict[Node, Any] = {}
        self.ox_literals: dict[tuple, Literal] = {}
        self.ox_parts: dict[Node | None, Any] | None = None
        self.records: list[tuple] = []
        self._supers: dict[Node, set[Node]] = {}

    def is_instance(self, v: Node, cls: Node) -> bool:
        """pySHACL's sh:class test: a type of ``v`` is ``cls`` or has it as superclass."""
        if isinstance(v, Literal):
            return False
        for ctype in values(self.layers, v, TYPE, False):
            supers = self._supers.get(ctype)
            if supers is None:
                supers = self._supers[ctype] = self.closure(ctype, inverse=False)
            if cls in supers:
                return True
        return False

    def closure(self, cls: Node, inverse: bool) -> set[Node]:
        """``cls`` and its superclasses (or, ``inverse``, subclasses): rdflib's
        transitive_objects / transitive_subjects over rdfs:subClassOf."""
        seen = {cls}
        stack = [cls]
        while stack:
            for other in values(self.layers, stack.pop(), SUBCLASS, inverse):
                if other not in seen:
                    seen.add(other)
                    stack.append(other)
        return seen


def validate(data: Graph, shapes: Graph, ontology: Graph | None
             ) -> tuple[bool, list[FastResult], Callable[[], Graph]]:
    """Validate ``data`` (with ``ontology`` merged, as pySHACL would see them) against
    ``shapes``: (conforms, results, a function that builds the W3C report graph)."""
    compiled = compile_shapes(shapes)
    onto = ontology_context(ontology)
    collecting = gc.isenabled()
    gc.disable()  # a run allocates much and frees nothing cyclic: collections only cost
    try:
        known = onto.triples
        run = _Run(compiled, onto, Index(t for t in data if t not in known))
        try:
            for shape in compiled.shapes:
                _validate_shape(run, shape)
            conforms = all(record[0].severity in (SH.Info, SH.Warning)
                           for record in run.records)
            results = [fast_result(record) for record in run.records]
            return conforms, results, lambda: report_graph(run, conforms)
        finally:
            oxigraph.drop_data(run)
    finally:
        if collecting:
            gc.enable()


def _validate_shape(run: _Run, shape: CompiledShape) -> None:
    if not (shape.core or shape.sparql):
        return  # no constraint: no result, whatever its targets
    focus = _focus_nodes(run, shape)
    if not focus:
        return
    layers = run.layers
    path_values = shape.values
    nodes = {f: (path_values(layers, f) if path_values is not None else {f}) for f in focus}
    records = run.records
    for component, check in shape.core:
        for f, value_nodes in nodes.items():
            for value in check(run, f, value_nodes):
                records.append((shape, f, value, None, component, None, None))
    for constraint in shape.sparql:
        if not constraint.deactivated:
            _sparql_constraint(run, shape, constraint, focus)


def _focus_nodes(run: _Run, shape: CompiledShape) -> set[Node]:
    layers = run.layers
    found: set[Node] = set(shape.nodes)
    for cls in shape.classes:
        for sub in run.closure(cls, inverse=True):
            found.update(values(layers, sub, TYPE, True))
    for pred in shape.subjects_of:
        for layer in layers:
            found.update(s for s, _ in layer.by_pred.get(pred, ()))
    for pred in shape.objects_of:
        for layer in layers:
            found.update(o for _, o in layer.by_pred.get(pred, ()))
    for target in shape.sparql_targets:
        found.update(oxigraph.target_nodes(run, target))
    return found


# ---------------------------------------------------------------------------------------
# SPARQL constraints: pySHACL's SPARQLBasedConstraint
# ---------------------------------------------------------------------------------------


def _sparql_constraint(run: _Run, shape: CompiledShape, constraint: SparqlQuery,
                       focus: set[Node]) -> None:
    rows_of = locality.constraint_rows(run, constraint, focus)
    for f in focus:
        with literal_normalisation():
            rows = _violations(rows_of(f))
        result_value = None if shape.path is not None else f
        for row in rows:
            if len(row) == 2:
                run.records.append((shape, f, result_value, None, SH.SPARQLConstraintComponent,
                                    constraint, row[1]))
                continue
            this, path, value, others = row
            value = result_value if value is None else value
            run.records.append((shape, this or f, value, path, SH.SPARQLConstraintComponent,
                                constraint, (this, path, value, others)))


def _violations(rows: list[dict[str, Node]]) -> list[tuple]:
    """pySHACL's _validate_sparql_query, row for row (each row: its bound variables, in
    projection order, as rdflib's ResultRow.asdict gives them)."""
    violations: list[tuple] = []
    seen_failure = False
    for var_dict in rows:
        if var_dict.pop("failure", None) is not None:
            if not seen_failure:
                violations.append((True, var_dict))
                seen_failure = True
            continue
        path = var_dict.pop("path", None)
        value = var_dict.pop("value", None)
        this = var_dict.pop("this", None)
        if (path is not None or value is not None or this is not None) and \
                (this, path, value, var_dict) not in violations:
            violations.append((this, path, value, var_dict))
    return violations


__all__ = ["FastResult", "NeedsReference", "UnsupportedShapes", "compile_shapes", "validate"]
