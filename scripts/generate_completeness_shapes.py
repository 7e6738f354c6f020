"""Generate each guideline's completeness warnings: <guideline folder>/shapes/completeness.ttl.

    python scripts/generate_completeness_shapes.py           # rewrite every guideline's file
    python scripts/generate_completeness_shapes.py --check   # exit 1 when one is out of date

For each guideline module (guidelines/<id>/, and those of GUIDELINEKG_LIBRARY), read with
the core and the domains: every recommendation's gkg:applicability criterion, and the
guideline's gkg:population, is walked through gkg:hasMember* to the facts its
gkg:FactCriterion atoms test (gkg:onFact). Each fact whose silence means unknown
(gkg:whenSilent code:silence-unknown) gets one sh:Warning shape on gkg:Patient whose
message names what is missing and the recommendation keys, in guideline order, that cannot
be decided without it. Facts whose silence means absent need no warning.

What counts as recorded is data, on the fact (ontology/patient-facts.ttl declares the
annotations):
- gkg:decidableWhen: a SHACL shape of the record evidence the fact's derivation needs.
  A node shape is one record item of the patient: sh:class (the class or a subclass), and
  sh:property shapes with sh:hasValue, sh:minCount 1, sh:maxCount 0, or sh:minCount 1 with
  sh:in or sh:not [ sh:hasValue ]; sh:or lists alternatives; gkg:alongWith another item
  that must be there too. A property shape (sh:path with sh:minCount 1) is the patient's
  own property. sh:name and sh:description name the warning and what is missing.
- gkg:undecidableWhen: a node shape of a record item that leaves the fact undecidable.
- neither, on an observed fact (gkg:recordedAs C): an item of class C decides it.
A derived fact a criterion uses with neither annotation stops the script: a new fact needs
a decision. So does a shape the script cannot read.

Run from the repository root. tests/test_patient_shapes.py regenerates the files in memory
and checks they are in step.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import DCTERMS, RDF, RDFS, SH, SKOS, XSD
from rdflib.term import Node

from guidelinekg.loading import PREFIXES, bind_project_prefixes, merge_graphs, parse_rdf_file
from guidelinekg.resources import Module, guideline_modules, modules

GKG = PREFIXES["gkg"]
CODE = PREFIXES["code"]
PSH = "https://w3id.org/guidelinekg/shapes/patient#"
OUTPUT_NAME = "completeness.ttl"
# The prefixes the generated SPARQL may use (declared by each file's owl:Ontology).
SPARQL_PREFIXES = {"gkg": GKG, "code": CODE, "rdf": str(RDF), "rdfs": str(RDFS)}
SHORTHAND_DATATYPES = (XSD.boolean, XSD.integer, XSD.decimal)


def gkg(local: str) -> URIRef:
    return URIRef(GKG + local)


class ShapeError(SystemExit):
    """A fact's record-evidence shape the script cannot turn into a warning."""


# ---------------------------------------------------------------------------------------
# The knowledge one guideline's warnings are generated from
# ---------------------------------------------------------------------------------------


def guideline_knowledge(module: Module) -> Graph:
    """The core and the domains with this guideline's own files (content and vocabulary)."""
    files = [path for other in modules() if other.kind != "guideline"
             for path in other.ontology_files()] + module.ontology_files()
    return bind_project_prefixes(merge_graphs(parse_rdf_file(path) for path in files))


def shapes_iri(module: Module) -> str:
    """The owl:Ontology IRI of a guideline's completeness shapes, under the guideline's IRI."""
    return PREFIXES[module.name] + "shapes/completeness"


def output_path(module: Module) -> Path:
    return module.folder / "shapes" / OUTPUT_NAME


# ---------------------------------------------------------------------------------------
# Which facts the criteria need, and for which recommendations
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactNeed:
    fact: URIRef
    notation: str
    label: str
    recommendations: tuple[URIRef, ...]
    keys: tuple[str, ...]


def _name_guidelines(graph: Graph, used_by: list[tuple[str, Node]]) -> None:
    """Statement keys followed by their guideline's title, once after its last key: keys
    are unique within a guideline only, and a patient's record may meet several."""
    def title(node: Node) -> str | None:
        guideline = graph.value(node, gkg("inGuideline"))
        named = graph.value(guideline, DCTERMS.title) if guideline is not None else None
        return str(named) if named is not None else None

    titles = [title(node) for _, node in used_by]
    for index, (key, node) in enumerate(used_by):
        last = index + 1 == len(used_by) or titles[index + 1] != titles[index]
        if titles[index] is not None and last:
            used_by[index] = (f"{key} of \"{titles[index]}\"", node)


def _criterion_facts(graph: Graph, criterion: Node, seen: set) -> set[Node]:
    if criterion in seen:
        return set()
    seen.add(criterion)
    facts = set(graph.objects(criterion, gkg("onFact")))
    for member in graph.objects(criterion, gkg("hasMember")):
        facts |= _criterion_facts(graph, member, seen)
    return facts


def fact_needs(graph: Graph) -> list[FactNeed]:
    """The silence-unknown facts the guideline's criteria test, with the recommendations
    (in guideline order) whose applicability depends on each."""
    recommendations: list[tuple[int, str, Node, Node]] = []
    for recommendation in graph.subjects(RDF.type, gkg("Recommendation")):
        key = graph.value(recommendation, SKOS.notation)
        order = graph.value(recommendation, gkg("sectionOrder"))
        criterion = graph.value(recommendation, gkg("applicability"))
        if key is None or criterion is None:
            continue
        recommendations.append((int(str(order)) if order is not None else 0, str(key),
                                recommendation, criterion))
    recommendations.sort(key=lambda row: (row[0], row[1], str(row[2])))
    by_fact: dict[Node, list[tuple[str, Node]]] = {}
    # A guideline's population gates every statement: a fact it tests leaves them all
    # undecidable, which the message says once.
    guidelines = sorted(graph.subjects(RDF.type, gkg("Guideline")), key=str)
    for guideline in guidelines:
        population = graph.value(guideline, gkg("population"))
        if population is None:
            continue
        label = str(graph.value(population, RDFS.label) or "its population")
        for fact in _criterion_facts(graph, population, set()):
            by_fact.setdefault(fact, []).append(
                (f"every statement (the guideline's population: {label})", guideline))
    for _, notation, recommendation, criterion in recommendations:
        for fact in _criterion_facts(graph, criterion, set()):
            if any(node in guidelines for _, node in by_fact.get(fact, [])):
                continue  # already named: every statement
            by_fact.setdefault(fact, []).append((notation, recommendation))
    for used_by in by_fact.values():
        _name_guidelines(graph, used_by)
    needs = []
    for fact, used_by in by_fact.items():
        if graph.value(fact, gkg("whenSilent")) != URIRef(CODE + "silence-unknown"):
            continue
        assert isinstance(fact, URIRef)
        needs.append(FactNeed(
            fact=fact,
            notation=str(graph.value(fact, SKOS.notation)),
            label=str(graph.value(fact, SKOS.prefLabel)),
            recommendations=tuple(r for _, r in used_by if isinstance(r, URIRef)),
            keys=tuple(k for k, _ in used_by),
        ))
    return sorted(needs, key=lambda need: need.notation)


# ---------------------------------------------------------------------------------------
# Reading a fact's record-evidence shape
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValueTest:
    """One sh:property of an item shape: what the item's values of `path` must be."""

    kind: str  # "is" (sh:hasValue), "has" (a value), "in" (sh:in), "not" (sh:not sh:hasValue),
    #            "lacks" (sh:maxCount 0)
    path: URIRef
    values: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Item:
    """A record item of the patient: of one of `classes` (any, when empty), passing `tests`."""

    classes: tuple[URIRef, ...]
    tests: tuple[ValueTest, ...]


@dataclass
class Evidence:
    """A fact's record evidence: the warning's texts and what the record must hold."""

    name: str
    needs: str
    # Alternatives, each the items that must all be there (gkg:decidableWhen).
    alternatives: list[list[Item]] = field(default_factory=list)
    # The patient's own property (a property shape of gkg:decidableWhen).
    patient_property: URIRef | None = None
    # An item that leaves the fact undecidable (gkg:undecidableWhen).
    undecidable: Item | None = None


class EvidenceReader:
    """Turns the SHACL shapes of gkg:decidableWhen / gkg:undecidableWhen into Evidence."""

    ITEM_PREDICATES = frozenset({RDF.type, SH["class"], SH.property, gkg("alongWith"),
                                 SH.name, SH.description})
    VALUE_PREDICATES = frozenset({SH.path, SH.hasValue, SH.minCount, SH.maxCount, SH["in"],
                                  SH["not"], SH.name, SH.description})

    def __init__(self, graph: Graph, need: FactNeed) -> None:
        self.graph = graph
        self.need = need

    def fail(self, problem: str) -> ShapeError:
        return ShapeError(f"fact:{self.need.notation}: {problem} (see the definition of "
                          "gkg:decidableWhen in ontology/patient-facts.ttl).")

    def evidence(self) -> Evidence:
        graph, fact = self.graph, self.need.fact
        decidable = list(graph.objects(fact, gkg("decidableWhen")))
        undecidable = list(graph.objects(fact, gkg("undecidableWhen")))
        if len(decidable) + len(undecidable) > 1:
            raise self.fail("one gkg:decidableWhen or gkg:undecidableWhen shape, not several")
        if decidable or undecidable:
            shape = (decidable or undecidable)[0]
            evidence = Evidence(*self.texts(shape))
            if undecidable:
                if any(graph.objects(shape, gkg("alongWith"))):
                    raise self.fail("a gkg:undecidableWhen shape is one item, without "
                                    "gkg:alongWith")
                evidence.undecidable = self.item(shape)
            elif graph.value(shape, SH.path) is not None:
                evidence.patient_property = self.patient_property(shape)
            else:
                evidence.alternatives = self.alternatives(shape)
            return evidence
        recorded_as = graph.value(fact, gkg("recordedAs"))
        if (fact, RDF.type, gkg("ObservedFact")) not in graph or recorded_as is None:
            raise SystemExit(
                f"fact:{self.need.notation} is derived and its silence means unknown, but it "
                "does not say which record items decide it: give it gkg:decidableWhen (or "
                "gkg:undecidableWhen), a shape of the record evidence its query reads.")
        assert isinstance(recorded_as, URIRef)
        return Evidence(*self.texts(None), alternatives=[[Item((recorded_as,), ())]])

    def texts(self, shape: Node | None) -> tuple[str, str]:
        """The warning's name and what its message says is missing: the shape's sh:name and
        sh:description, else made from the fact's label."""
        label = self.need.label
        name = self.single(shape, SH.name) if shape is not None else None
        needs = self.single(shape, SH.description) if shape is not None else None
        return (str(name) if name is not None else label + " recorded",
                str(needs) if needs is not None else label[0].upper() + label[1:])

    def patient_property(self, shape: Node) -> URIRef:
        path = self.graph.value(shape, SH.path)
        extra = set(self.graph.predicates(shape)) - {SH.path, SH.minCount, SH.name,
                                                      SH.description}
        if not isinstance(path, URIRef) or extra or \
                self.graph.value(shape, SH.minCount) != Literal(1):
            raise self.fail("a property shape of the patient is sh:path (a property) with "
                            "sh:minCount 1, and nothing else")
        return path

    def alternatives(self, shape: Node) -> list[list[Item]]:
        options = self.graph.value(shape, SH["or"])
        if options is None:
            return [self.items(shape)]
        if set(self.graph.predicates(shape)) - {SH["or"], SH.name, SH.description}:
            raise self.fail("a shape with sh:or has nothing else but its name and description")
        return [self.items(option) for option in Collection(self.graph, options)]

    def items(self, shape: Node) -> list[Item]:
        """The item the shape describes, then those it must come along with."""
        found = [self.item(shape)]
        for other in sorted(self.graph.objects(shape, gkg("alongWith")), key=self._key):
            found += self.items(other)
        return found

    def item(self, shape: Node) -> Item:
        graph = self.graph
        unknown = set(graph.predicates(shape)) - self.ITEM_PREDICATES
        if unknown:
            raise self.fail("an item shape has sh:class, sh:property and gkg:alongWith only, "
                            f"not {', '.join(sorted(curie(p) for p in unknown))}")
        classes = [c for c in graph.objects(shape, SH["class"]) if isinstance(c, URIRef)]
        if len(classes) != len(list(graph.objects(shape, SH["class"]))) or len(classes) > 1:
            raise self.fail("an item shape has at most one sh:class, an IRI")
        tests = sorted((self.value_test(p) for p in graph.objects(shape, SH.property)),
                       key=lambda t: (str(t.path), t.kind, [str(v) for v in t.values]))
        if not classes and not tests:
            raise self.fail("an item shape says something of the item")
        return Item(tuple(subclasses(graph, classes[0])) if classes else (), tuple(tests))

    def single(self, shape: Node, predicate: URIRef) -> Node | None:
        """The one value of predicate on the shape (None without one); several stop it."""
        values = list(self.graph.objects(shape, predicate))
        if len(values) > 1:
            raise self.fail(f"a shape has one {curie(predicate)}, not {len(values)}")
        return values[0] if values else None

    def value_test(self, shape: Node) -> ValueTest:
        graph = self.graph
        path = self.single(shape, SH.path)
        if not isinstance(path, URIRef):
            raise self.fail("an sh:property shape has an sh:path that is one property")
        present = set(graph.predicates(shape)) - {SH.path, SH.name, SH.description}
        if present - self.VALUE_PREDICATES:
            raise self.fail(f"the sh:property shape on {curie(path)} uses "
                            + ", ".join(sorted(curie(p) for p in present - self.VALUE_PREDICATES)))
        min_one = self.single(shape, SH.minCount) == Literal(1)
        without_min = present - {SH.minCount} if min_one else present
        value = self.single(shape, SH.hasValue)
        listed = self.single(shape, SH["in"])
        negated = self.single(shape, SH["not"])
        negated_value = self.single(negated, SH.hasValue) if negated is not None else None
        if without_min == {SH.hasValue} and value is not None:
            return ValueTest("is", path, (value,))
        if present == {SH.minCount} and min_one:
            return ValueTest("has", path)
        if present == {SH.maxCount} and self.single(shape, SH.maxCount) == Literal(0):
            return ValueTest("lacks", path)
        if present == {SH.minCount, SH["in"]} and min_one and listed is not None:
            return ValueTest("in", path, tuple(Collection(graph, listed)))
        if present == {SH.minCount, SH["not"]} and min_one and negated_value is not None and \
                set(graph.predicates(negated)) == {SH.hasValue}:
            return ValueTest("not", path, (negated_value,))
        raise self.fail(f"the sh:property shape on {curie(path)} is not one the script reads: "
                        "sh:hasValue, sh:minCount 1, sh:maxCount 0, or sh:minCount 1 with sh:in "
                        "or sh:not [ sh:hasValue ]")

    def _key(self, node: Node) -> str:
        return str(node) if not isinstance(node, BNode) else \
            " ".join(sorted(f"{p} {o}" for p, o in self.graph.predicate_objects(node)))


def subclasses(graph: Graph, root: URIRef) -> list[URIRef]:
    """root and its subclasses: root first, the others sorted (one list for a SPARQL IN)."""
    found = {root}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for child in graph.subjects(RDFS.subClassOf, parent):
            if isinstance(child, URIRef) and child not in found:
                found.add(child)
                frontier.append(child)
    return [root, *sorted(found - {root}, key=curie)]


# ---------------------------------------------------------------------------------------
# SPARQL for the items
# ---------------------------------------------------------------------------------------


def curie(term: Node) -> str:
    """The term in SPARQL / Turtle: a prefixed name where the files declare the prefix."""
    if isinstance(term, Literal):
        if term.datatype in SHORTHAND_DATATYPES:
            return str(term)
        return term.n3()
    iri = str(term)
    for prefix, namespace in SPARQL_PREFIXES.items():
        if iri.startswith(namespace) and iri[len(namespace):].replace("-", "").isalnum():
            return f"{prefix}:{iri[len(namespace):]}"
    return f"<{iri}>"


def _class_list(classes: Iterable[URIRef], separator: str) -> str:
    return separator.join(curie(c) for c in sorted(classes, key=curie))


def whole_graph_pattern(item: Item, var: str) -> list[str]:
    """The item over the whole graph, constants first (a SPARQL target)."""
    lines, filters = [], []
    if len(item.classes) == 1:
        lines.append(f"?{var} a {curie(item.classes[0])} .")
    elif item.classes:
        lines.insert(0, f"VALUES ?{var}Class {{ {_class_list(item.classes, ' ')} }}")
        lines.append(f"?{var} a ?{var}Class .")
    for i, test in enumerate(item.tests):
        if test.kind == "is":
            lines.append(f"?{var} {curie(test.path)} {curie(test.values[0])} .")
        elif test.kind == "lacks":
            filters.append(f"FILTER NOT EXISTS {{ ?{var} {curie(test.path)} ?{var}No{i} }}")
        else:
            lines.append(f"?{var} {curie(test.path)} ?{var}v{i} .")
            if test.kind in ("in", "not"):
                filters.append(f"FILTER ({_value_condition(test, f'?{var}v{i}')})")
    lines.append(f"?{var} gkg:subject ?this .")
    return lines + filters


def anchored_pattern(item: Item, var: str) -> list[str]:
    """The same item walked from $this (a constraint on one patient): constants are compared
    in a FILTER so that rdflib's join order starts from the patient."""
    if len(item.classes) == 1 and not item.tests:
        return [f"$this ^gkg:subject/rdf:type {curie(item.classes[0])} ."]
    lines, tests, absent = [f"$this ^gkg:subject ?{var} ."], [], []
    if len(item.classes) == 1:
        lines.append(f"?{var} a ?{var}Class .")
        tests.append(f"?{var}Class = {curie(item.classes[0])}")
    elif item.classes:
        lines.append(f"?{var} a ?{var}Class .")
        tests.append(f"?{var}Class IN ({_class_list(item.classes, ', ')})")
    for i, test in enumerate(item.tests):
        if test.kind == "lacks":
            absent.append(f"FILTER NOT EXISTS {{ ?{var} {curie(test.path)} ?{var}No{i} }}")
            continue
        value = f"?{var}{_ANCHORED_NAMES[test.kind]}{i}"
        lines.append(f"?{var} {curie(test.path)} {value} .")
        if test.kind != "has":
            tests.append(_value_condition(test, value))
    if tests:
        lines.append("FILTER (" + " && ".join(tests) + ")")
    return lines + absent


_ANCHORED_NAMES = {"is": "Is", "not": "Not", "in": "In", "has": "Has"}


def _value_condition(test: ValueTest, value: str) -> str:
    if test.kind == "is":
        return f"{value} = {curie(test.values[0])}"
    if test.kind == "not":
        return f"{value} != {curie(test.values[0])}"
    return f"{value} IN ({', '.join(curie(v) for v in test.values)})"


def _indent(lines: Iterable[str], indent: str = "    ") -> list[str]:
    return [indent + line if line else line for line in lines]


def _block(opening: str, lines: Iterable[str], closing: str = "}") -> list[str]:
    return [opening, *_indent(lines), closing]


def decidable_queries(evidence: Evidence) -> tuple[str, str]:
    """(target, constraint): the patients lacking every alternative, over the whole graph by
    aggregation (rdflib runs it in one pass; FILTER NOT EXISTS or MINUS would revisit the
    graph per patient), and the same rule for one patient."""
    alternatives = evidence.alternatives
    simple = all(len(items) == 1 for items in alternatives)
    # One flag per item: ?recorded for all of them when each alternative is one item.
    flags = ["recorded"] if simple else \
        [f"r{a}_{i}" for a, items in enumerate(alternatives) for i in range(len(items))]
    branches, having, absent = [], [], []
    patient = " ".join(f"BIND (0 AS ?{flag})" for flag in flags)
    branches.append(f"{{ ?this a gkg:Patient . {patient} }}")
    for a, items in enumerate(alternatives):
        item_flags, item_absent = [], []
        for i, item in enumerate(items):
            var = f"x{a}" if len(items) == 1 else f"x{a}_{i}"
            flag = "recorded" if simple else f"r{a}_{i}"
            binds = " ".join(f"BIND ({int(f == flag)} AS ?{f})" for f in flags)
            branches += _block("UNION {", [*whole_graph_pattern(item, var), binds])
            item_flags.append(f"MAX(?{flag}) = 0")
            item_absent.append(["NOT EXISTS {", *_indent(anchored_pattern(item, var)), "}"])
        if not simple:
            having.append(item_flags[0] if len(item_flags) == 1
                          else "(" + " || ".join(item_flags) + ")")
        if len(item_absent) == 1:
            absent += ["FILTER " + item_absent[0][0], *item_absent[0][1:]]
        else:  # FILTER (NOT EXISTS { ... } || NOT EXISTS { ... })
            joined = item_absent[0] + [line for lines in item_absent[1:]
                                       for line in ["|| " + lines[0], *lines[1:]]]
            joined[-1] += ")"
            absent += ["FILTER (" + joined[0], *_indent(joined[1:], "        ")]
    condition = "MAX(?recorded) = 0" if simple else " && ".join(having)
    target = _block("SELECT ?this WHERE {", branches,
                    f"}} GROUP BY ?this HAVING ({condition})")
    constraint = _block("SELECT $this WHERE {", absent)
    return "\n".join(target), "\n".join(constraint)


def undecidable_queries(item: Item) -> tuple[str, str]:
    """(target, constraint): the patients with an item that leaves the fact undecidable."""
    target = _block("SELECT DISTINCT ?this WHERE {", whole_graph_pattern(item, "x"))
    constraint = _block("SELECT $this WHERE {", anchored_pattern(item, "x"))
    return "\n".join(target), "\n".join(constraint)


# ---------------------------------------------------------------------------------------
# The Turtle file
# ---------------------------------------------------------------------------------------


def _turtle_name(term: URIRef) -> str:
    fact = PREFIXES["fact"]
    local = str(term)[len(fact):]
    return f"fact:{local}" if str(term).startswith(fact) and local.replace("-", "").isalnum() \
        else f"<{term}>"


def _turtle_string(text: str) -> str:
    return Literal(text).n3()


def _sparql_string(text: str, indent: str) -> str:
    body = ("\n" + indent).join(text.splitlines())
    return '"""\n' + indent + body + '"""'


def _message(what: str, keys: Iterable[str]) -> str:
    return f"{what} is missing: {', '.join(keys)} cannot be decided."


def _shape(need: FactNeed, evidence: Evidence, base: str) -> str:
    recommendations = " , ".join(f"<{r}>" for r in need.recommendations)
    kind = "sh:PropertyShape" if evidence.patient_property is not None else "sh:NodeShape"
    lines = [
        f"pcs:{need.notation} a {kind} ;",
        "    sh:severity sh:Warning ;",
        f"    sh:name {_turtle_string(evidence.name)} ;",
        f"    dcterms:subject {_turtle_name(need.fact)} ;",
        f"    psh:neededBy {recommendations} ;",
    ]
    message = f"    sh:message {_turtle_string(_message(evidence.needs, need.keys))}@en ."
    if evidence.patient_property is not None:
        return "\n".join([*lines, "    sh:targetClass gkg:Patient ;",
                          f"    sh:path {curie(evidence.patient_property)} ;",
                          "    sh:minCount 1 ;", message])
    if evidence.undecidable is not None:
        target, constraint = undecidable_queries(evidence.undecidable)
    else:
        target, constraint = decidable_queries(evidence)
    return "\n".join([
        *lines,
        "    sh:target [",
        "        a sh:SPARQLTarget ;",
        f"        sh:prefixes <{base}> ;",
        "        sh:select " + _sparql_string(target, "            "),
        "    ] ;",
        "    sh:sparql [",
        "        a sh:SPARQLConstraint ;",
        f"        sh:prefixes <{base}> ;",
        "        sh:select " + _sparql_string(constraint, "            "),
        "    ] ;",
        message,
    ])


def _header(module: Module, base: str) -> str:
    declare = " ,\n".join(
        f'        [ sh:prefix "{prefix}" ; sh:namespace "{namespace}"^^xsd:anyURI ]'
        for prefix, namespace in SPARQL_PREFIXES.items())
    return f"""\
# GENERATED by scripts/generate_completeness_shapes.py from the criteria of the guideline
# in this folder and the facts' record evidence (gkg:decidableWhen, gkg:undecidableWhen):
# do not edit by hand; change the guideline or the facts and run the script again.
#
# Warnings (sh:Warning): a patient fact that recommendations need is not recorded, and its
# silence means unknown, so those recommendations cannot be decided. One shape per fact on
# gkg:Patient; its message names what is missing and the recommendation keys
# (psh:neededBy) that depend on it. Observed facts count as recorded when the patient has
# an item of their gkg:recordedAs class; derived facts when the record holds the evidence
# their gkg:decidableWhen shape describes (or lacks the item of their gkg:undecidableWhen).
# The shapes select the patients lacking the input in one query over the graph (SHACL-AF
# sh:SPARQLTarget; pySHACL would otherwise walk every patient's items once per shape) and
# state the rule for each of them (sh:sparql).

@prefix pcs: <{base}#> .
@prefix psh: <{PSH}> .
@prefix gkg: <{GKG}> .
@prefix fact: <{PREFIXES["fact"]}> .
@prefix code: <{CODE}> .
@prefix sh: <{SH}> .
@prefix rdf: <{RDF}> .
@prefix rdfs: <{RDFS}> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix xsd: <{XSD}> .
@prefix dcterms: <http://purl.org/dc/terms/> .

<{base}> a owl:Ontology ;
    dcterms:title {_turtle_string(f"{module.name}: patient completeness shapes (generated)")}@en ;
    sh:declare
{declare} .
"""


def completeness_shapes_text(module: Module, graph: Graph | None = None) -> str:
    """The Turtle text of the guideline's shapes/completeness.ttl."""
    graph = graph if graph is not None else guideline_knowledge(module)
    base = shapes_iri(module)
    shapes = [_shape(need, EvidenceReader(graph, need).evidence(), base)
              for need in fact_needs(graph)]
    return _header(module, base) + "".join("\n" + shape + "\n" for shape in shapes)


def generated_files() -> Iterator[tuple[Module, Path, str]]:
    for module in guideline_modules():
        yield module, output_path(module), completeness_shapes_text(module)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a committed file is out of date; write nothing")
    args = parser.parse_args(argv)
    stale = []
    for _, path, text in generated_files():
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        if args.check:
            stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        for path in stale:
            print(f"{path}: out of date; run scripts/generate_completeness_shapes.py",
                  file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
