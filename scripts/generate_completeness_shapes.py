"""Generate shapes/patient-completeness.ttl: one sh:Warning shape per patient fact.

For every recommendation of the bundled guidelines, its gkg:applicability criterion is
walked through gkg:hasMember* to the facts its gkg:FactCriterion atoms test (gkg:onFact).
Each fact whose silence means unknown (gkg:whenSilent code:silence-unknown) gets a shape on
gkg:Patient whose message names the fact and the recommendation keys, in guideline order,
that cannot be decided without it. Facts whose silence means absent need no warning.

How a fact counts as recorded:
- an observed fact (gkg:ObservedFact with gkg:recordedAs C): the patient has an item of
  class C (a core SHACL shape: the types of the patient's items include C);
- a derived fact: its inputs, stated below in DERIVED_INPUTS (the rules of the fact
  queries under queries/facts/, without the evaluation date). A derived fact a criterion
  uses without an entry here stops the script: a new fact needs a decision.

Run from the repository root:  .venv/bin/python scripts/generate_completeness_shapes.py
tests/test_patient_shapes.py regenerates the file in memory and checks it is in step.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS, SKOS

from guidelinekg.loading import PREFIXES, guideline_graph
from guidelinekg.resources import shapes_dir

GKG = PREFIXES["gkg"]
CODE = PREFIXES["code"]
SHAPES_BASE = "https://w3id.org/guidelinekg/shapes/patient-completeness"
OUTPUT = shapes_dir() / "patient-completeness.ttl"


@dataclass(frozen=True)
class Evidence:
    """A record item that makes a derived fact decidable: of `item_class` (if given), with
    each (property, value) of `equal` and a value other than `value` for each of `unequal`."""

    item_class: str | None = None
    equal: tuple[tuple[str, str], ...] = ()
    unequal: tuple[tuple[str, str], ...] = ()

    def whole_graph_pattern(self, var: str) -> str:
        """The pattern over the whole graph, constants first (a SPARQL target)."""
        lines = []
        if self.item_class:
            lines.append(f"?{var} a {self.item_class} .")
        lines += [f"?{var} {prop} {value} ." for prop, value in self.equal]
        lines += [f"?{var} {prop} ?{var}{i} ." for i, (prop, _) in enumerate(self.unequal)]
        lines.append(f"?{var} gkg:subject ?this .")
        lines += [f"FILTER (?{var}{i} != {value})" for i, (_, value) in enumerate(self.unequal)]
        return "\n".join(lines)

    def anchored_pattern(self, var: str) -> str:
        """The same pattern walked from $this (a constraint on one patient): constants are
        compared in a FILTER so that rdflib's join order starts from the patient."""
        if self.item_class and not self.equal and not self.unequal:
            return f"$this ^gkg:subject/rdf:type {self.item_class} ."
        lines = [f"$this ^gkg:subject ?{var} ."]
        tests = []
        if self.item_class:
            lines.append(f"?{var} a ?{var}Class .")
            tests.append(f"?{var}Class = {self.item_class}")
        for i, (prop, value) in enumerate(self.equal):
            lines.append(f"?{var} {prop} ?{var}Is{i} .")
            tests.append(f"?{var}Is{i} = {value}")
        for i, (prop, value) in enumerate(self.unequal):
            lines.append(f"?{var} {prop} ?{var}Not{i} .")
            tests.append(f"?{var}Not{i} != {value}")
        lines.append("FILTER (" + " && ".join(tests) + ")")
        return "\n".join(lines)


@dataclass(frozen=True)
class DerivedInputs:
    """What makes a derived fact decidable, in words (for the message) and as SPARQL."""

    name: str  # the shape's sh:name
    needs: str  # the message's "... is missing" part names it
    evidence: tuple[Evidence, ...] = ()
    # Instead of evidence: a core constraint (Turtle lines for a property shape).
    core: str | None = None
    # Instead of evidence: SPARQL patterns over ?this / $this selecting the patients that
    # lack the input (a positive condition, no anti-join needed).
    lacking_whole_graph: str | None = None
    lacking_anchored: str | None = None
    # Instead of evidence: the whole queries (target over the graph, constraint on $this).
    custom_target: str | None = None
    custom_constraint: str | None = None


BONE_ONLY_TRUE = Evidence("gkg:BoneOnlyMetastasisAssessment", (("gkg:valueBoolean", "true"),))

# Response to systemic therapy is read from a response assessment, or from the latest
# disease status after the start of a given systemic therapy (facts/response.rq). Its
# inputs are there when the record has a response assessment, or a disease status and a
# given systemic therapy with a start date; whether the status comes after the start, and
# what it says, is the derivation's reading (undetermined, with the reason, when it tells
# nothing). The systemic therapy classes are listed ({systemic_classes}, filled in from the
# ontology): a subclass walk per treatment costs rdflib more than the rest of the query.
RESPONSE_TARGET = """\
SELECT ?this WHERE {{
    {{ ?this a gkg:Patient . BIND (0 AS ?assessed) BIND (0 AS ?status) BIND (0 AS ?treated) }}
    UNION {{
        ?x a gkg:ResponseAssessment ; gkg:subject ?this .
        BIND (1 AS ?assessed) BIND (0 AS ?status) BIND (0 AS ?treated)
    }}
    UNION {{
        ?y a gkg:DiseaseStatusObservation ; gkg:subject ?this .
        BIND (0 AS ?assessed) BIND (1 AS ?status) BIND (0 AS ?treated)
    }}
    UNION {{
        VALUES ?zClass {{ {systemic_classes_list} }}
        ?z a ?zClass ; gkg:startDate ?zStart ; gkg:status ?zStatus ; gkg:subject ?this .
        FILTER (?zStatus != code:planned)
        BIND (0 AS ?assessed) BIND (0 AS ?status) BIND (1 AS ?treated)
    }}
}} GROUP BY ?this HAVING (MAX(?assessed) = 0 && (MAX(?status) = 0 || MAX(?treated) = 0))"""
RESPONSE_CONSTRAINT = """\
SELECT $this WHERE {{
    FILTER NOT EXISTS {{ $this ^gkg:subject/rdf:type gkg:ResponseAssessment }}
    FILTER (NOT EXISTS {{ $this ^gkg:subject/rdf:type gkg:DiseaseStatusObservation }}
            || NOT EXISTS {{
                $this ^gkg:subject ?z .
                ?z a ?zClass ; gkg:startDate ?zStart ; gkg:status ?zStatus .
                FILTER (?zStatus != code:planned && ?zClass IN ({systemic_classes}))
            }})
}}"""

DERIVED_INPUTS: dict[str, DerivedInputs] = {
    "age": DerivedInputs(
        name="birth date recorded (age)",
        needs="Birth date (for the age)",
        core="sh:path gkg:birthDate ;\n    sh:minCount 1 ;",
    ),
    "bone-metastasis": DerivedInputs(
        name="bone metastasis recorded",
        needs="Bone metastasis (a gkg:MetastasisCondition at code:site-bone, confirmed or "
              "refuted, or a bone-only assessment that is true)",
        evidence=(Evidence(None, (("gkg:site", "code:site-bone"),)), BONE_ONLY_TRUE),
    ),
    "pathological-fracture": DerivedInputs(
        name="pathological fracture recorded",
        needs="Pathological fracture (a gkg:PathologicalFracture diagnosis, present or "
              "refuted)",
        evidence=(Evidence("gkg:PathologicalFracture"),),
    ),
    "primary-breast-cancer": DerivedInputs(
        name="primary cancer recorded",
        needs="The primary cancer (a breast cancer diagnosis, or a primary cancer of another "
              "site)",
        evidence=(Evidence("gkg:PrimaryBreastCancer"), Evidence("gkg:PrimaryCancerOtherSite")),
    ),
    "stage-iv": DerivedInputs(
        name="stage recorded",
        needs="The stage (a stage group of the breast cancer, a confirmed distant metastasis, "
              "or a bone-only assessment that is true)",
        evidence=(Evidence("gkg:PrimaryBreastCancer", (("gkg:stageGroup", "code:stage-iv"),)),
                  Evidence("gkg:PrimaryBreastCancer", (("gkg:stageGroup", "code:stage-i-iii"),)),
                  Evidence("gkg:MetastasisCondition", (("gkg:present", "true"),)),
                  BONE_ONLY_TRUE),
    ),
    "bone-only-metastasis": DerivedInputs(
        name="bone-only disease recorded",
        needs="Bone-only metastatic disease (a bone-only assessment, or a confirmed "
              "metastasis at a site other than bone)",
        evidence=(
            Evidence("gkg:BoneOnlyMetastasisAssessment"),
            Evidence(None, (("gkg:present", "true"),), (("gkg:site", "code:site-bone"),)),
        ),
    ),
    "bone-predominant-disease": DerivedInputs(
        name="bone-predominant disease recorded",
        needs="Bone-predominant disease (a bone-predominant assessment, a bone-only "
              "assessment that is true, or a refuted bone metastasis)",
        evidence=(
            Evidence("gkg:BonePredominantDiseaseAssessment"),
            BONE_ONLY_TRUE,
            Evidence(None, (("gkg:site", "code:site-bone"), ("gkg:present", "false"))),
        ),
    ),
    "response-to-systemic-therapy": DerivedInputs(
        name="response to systemic therapy recorded",
        needs="Response to initial systemic therapy (a response assessment, or a disease "
              "status and a given systemic therapy with its start date)",
        custom_target=RESPONSE_TARGET,
        custom_constraint=RESPONSE_CONSTRAINT,
    ),
    "bone-modifying-agent-duration": DerivedInputs(
        name="start of the bone-modifying agent recorded",
        needs="The start date of a given or ongoing bone-modifying agent (for the months "
              "on therapy)",
        lacking_whole_graph="""\
?xClass rdfs:subClassOf* gkg:BoneModifyingAgent .
?x a ?xClass ; gkg:status ?xStatus ; gkg:subject ?this .
FILTER (?xStatus IN (code:ongoing, code:completed))
FILTER NOT EXISTS { ?x gkg:startDate ?xStart }""",
        lacking_anchored="""\
$this ^gkg:subject ?x .
?x a ?xClass ; gkg:status ?xStatus .
FILTER (?xStatus IN (code:ongoing, code:completed))
FILTER EXISTS { ?xClass rdfs:subClassOf* gkg:BoneModifyingAgent }
FILTER NOT EXISTS { ?x gkg:startDate ?xStart }""",
    ),
}


@dataclass(frozen=True)
class FactNeed:
    fact: URIRef
    notation: str
    label: str
    recommendations: tuple[URIRef, ...]
    keys: tuple[str, ...]
    recorded_as: URIRef | None
    derived: bool


def _criterion_facts(graph: Graph, criterion: URIRef, seen: set) -> set[URIRef]:
    if criterion in seen:
        return set()
    seen.add(criterion)
    facts = set(graph.objects(criterion, URIRef(GKG + "onFact")))
    for member in graph.objects(criterion, URIRef(GKG + "hasMember")):
        facts |= _criterion_facts(graph, member, seen)
    return facts


def fact_needs(graph: Graph) -> list[FactNeed]:
    """The silence-unknown facts the guideline's criteria test, with the recommendations
    (in guideline order) whose applicability depends on each."""
    recommendations = []
    for recommendation in graph.subjects(RDF.type, URIRef(GKG + "Recommendation")):
        key = graph.value(recommendation, SKOS.notation)
        order = graph.value(recommendation, URIRef(GKG + "sectionOrder"))
        criterion = graph.value(recommendation, URIRef(GKG + "applicability"))
        if key is None or criterion is None:
            continue
        recommendations.append((int(order) if order is not None else 0, str(key),
                                recommendation, criterion))
    recommendations.sort()
    by_fact: dict[URIRef, list[tuple[str, URIRef]]] = {}
    # A guideline's population gates every statement: a fact it tests leaves them all
    # undecidable, which the message says once.
    for guideline in sorted(graph.subjects(RDF.type, URIRef(GKG + "Guideline"))):
        population = graph.value(guideline, URIRef(GKG + "population"))
        if population is None:
            continue
        label = graph.value(population, RDFS.label) or "its population"
        for fact in _criterion_facts(graph, population, set()):
            by_fact.setdefault(fact, []).append(
                (f"every statement (the guideline's population: {label})", guideline))
    for _, key, recommendation, criterion in recommendations:
        for fact in _criterion_facts(graph, criterion, set()):
            if any(node != recommendation and (node, RDF.type, URIRef(GKG + "Guideline"))
                   in graph for _, node in by_fact.get(fact, [])):
                continue  # already named: every statement
            by_fact.setdefault(fact, []).append((key, recommendation))
    needs = []
    for fact, used_by in by_fact.items():
        if graph.value(fact, URIRef(GKG + "whenSilent")) != URIRef(CODE + "silence-unknown"):
            continue
        types = set(graph.objects(fact, RDF.type))
        needs.append(FactNeed(
            fact=fact,
            notation=str(graph.value(fact, SKOS.notation)),
            label=str(graph.value(fact, SKOS.prefLabel)),
            recommendations=tuple(r for _, r in used_by),
            keys=tuple(k for k, _ in used_by),
            recorded_as=graph.value(fact, URIRef(GKG + "recordedAs")),
            derived=URIRef(GKG + "ObservedFact") not in types,
        ))
    return sorted(needs, key=lambda need: need.notation)


def _turtle_string(text: str) -> str:
    return Literal(text).n3()


def _sparql_string(text: str, indent: str) -> str:
    body = ("\n" + indent).join(text.splitlines())
    return '"""\n' + indent + body + '"""'


def _indent(text: str, indent: str) -> str:
    return "\n".join(indent + line if line else line for line in text.splitlines())


def _message(what: str, keys: Iterable[str]) -> str:
    return f"{what} is missing: {', '.join(keys)} cannot be decided."


def _subclasses(graph: Graph, root: URIRef) -> list[str]:
    """Prefixed names of root and its subclasses, sorted (for a SPARQL IN list)."""
    found = {root}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for child in graph.subjects(RDFS.subClassOf, parent):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return sorted("gkg:" + str(term).rsplit("#", 1)[-1] for term in found)


def _fill(text: str, graph: Graph) -> str:
    systemic = _subclasses(graph, URIRef(GKG + "SystemicCancerTherapy"))
    return text.format(systemic_classes=", ".join(systemic),
                       systemic_classes_list=" ".join(systemic))


def _inputs(need: FactNeed) -> DerivedInputs:
    """What makes the fact decidable: its observation class, or the DERIVED_INPUTS entry."""
    if not need.derived:
        return DerivedInputs(
            name=need.label + " recorded",
            needs=need.label[0].upper() + need.label[1:],
            evidence=(Evidence("gkg:" + str(need.recorded_as).rsplit("#", 1)[-1]),),
        )
    inputs = DERIVED_INPUTS.get(need.notation)
    if inputs is None:
        raise SystemExit(
            f"fact:{need.notation} is derived and its silence means unknown, but "
            "scripts/generate_completeness_shapes.py does not say which record items it is "
            "derived from: add it to DERIVED_INPUTS."
        )
    return inputs


def _shape(need: FactNeed, graph: Graph) -> str:
    inputs = _inputs(need)
    recommendations = " , ".join(f"<{r}>" for r in need.recommendations)
    kind = "sh:PropertyShape" if inputs.core is not None else "sh:NodeShape"
    lines = [
        f"pcs:{need.notation} a {kind} ;",
        "    sh:severity sh:Warning ;",
        f"    sh:name {_turtle_string(inputs.name)} ;",
        f"    dcterms:subject fact:{need.notation} ;",
        f"    pcs:neededBy {recommendations} ;",
    ]
    message = f"    sh:message {_turtle_string(_message(inputs.needs, need.keys))}@en ."
    if inputs.core is not None:
        return "\n".join([*lines, "    sh:targetClass gkg:Patient ;", "    " + inputs.core,
                          message])
    if inputs.custom_target is not None:
        target = _fill(inputs.custom_target, graph)
        constraint = _fill(inputs.custom_constraint or "", graph)
    elif inputs.lacking_whole_graph is not None:
        target = "SELECT DISTINCT ?this WHERE {\n" + _indent(inputs.lacking_whole_graph, "    ") \
            + "\n}"
        constraint = "SELECT $this WHERE {\n" + _indent(inputs.lacking_anchored or "", "    ") \
            + "\n}"
    else:
        # Patients without any of the inputs: an anti-join by aggregation, which rdflib runs
        # in one pass (FILTER NOT EXISTS or MINUS would revisit the graph per patient).
        branches = ["{ ?this a gkg:Patient . BIND (0 AS ?recorded) }"]
        for i, evidence in enumerate(inputs.evidence):
            branches.append("UNION {\n" + _indent(evidence.whole_graph_pattern(f"x{i}"), "    ")
                            + "\n    BIND (1 AS ?recorded)\n}")
        target = "SELECT ?this WHERE {\n" + _indent("\n".join(branches), "    ") \
            + "\n} GROUP BY ?this HAVING (MAX(?recorded) = 0)"
        absent = [
            "FILTER NOT EXISTS {\n" + _indent(evidence.anchored_pattern(f"x{i}"), "    ") + "\n}"
            for i, evidence in enumerate(inputs.evidence)
        ]
        constraint = "SELECT $this WHERE {\n" + _indent("\n".join(absent), "    ") + "\n}"
    return "\n".join([
        *lines,
        "    sh:target [",
        "        a sh:SPARQLTarget ;",
        f"        sh:prefixes <{SHAPES_BASE}> ;",
        "        sh:select " + _sparql_string(target, "            "),
        "    ] ;",
        "    sh:sparql [",
        "        a sh:SPARQLConstraint ;",
        f"        sh:prefixes <{SHAPES_BASE}> ;",
        "        sh:select " + _sparql_string(constraint, "            "),
        "    ] ;",
        message,
    ])


HEADER = f"""\
# GENERATED by scripts/generate_completeness_shapes.py from the guideline's criteria: do not
# edit by hand; change the guideline or the script and run it again.
#
# Warnings (sh:Warning): a patient fact that recommendations need is not recorded, and its
# silence means unknown, so those recommendations cannot be decided. One shape per fact on
# gkg:Patient; its message names the fact and the recommendation keys (pcs:neededBy) that
# depend on it. Observed facts count as recorded when the patient has an item of their
# gkg:recordedAs class; derived facts when one of the inputs the script lists is there.
# The shapes select the patients lacking the input in one query over the graph (SHACL-AF
# sh:SPARQLTarget; pySHACL would otherwise walk every patient's items once per shape) and
# state the rule for each of them (sh:sparql).

@prefix pcs: <{SHAPES_BASE}#> .
@prefix gkg: <{GKG}> .
@prefix fact: <{PREFIXES["fact"]}> .
@prefix code: <{CODE}> .
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix dcterms: <http://purl.org/dc/terms/> .

<{SHAPES_BASE}> a owl:Ontology ;
    dcterms:title "guidelinekg patient completeness shapes (generated)"@en ;
    sh:declare
        [ sh:prefix "gkg" ; sh:namespace "{GKG}"^^xsd:anyURI ] ,
        [ sh:prefix "code" ; sh:namespace "{CODE}"^^xsd:anyURI ] ,
        [ sh:prefix "rdf" ; sh:namespace "{RDF}"^^xsd:anyURI ] ,
        [ sh:prefix "rdfs" ; sh:namespace "{RDFS}"^^xsd:anyURI ] .

pcs:neededBy a owl:AnnotationProperty ;
    rdfs:label "needed by"@en ;
    rdfs:comment "A recommendation that cannot be decided without the shape's fact."@en .
"""


def completeness_shapes_text(graph: Graph | None = None) -> str:
    """The Turtle text of shapes/patient-completeness.ttl for the guideline graph."""
    graph = graph if graph is not None else guideline_graph()
    shapes = [_shape(need, graph) for need in fact_needs(graph)]
    return HEADER + "\n" + "\n\n".join(shapes) + "\n"


def main(argv: list[str] | None = None) -> int:
    output = Path(argv[0]) if argv else OUTPUT
    output.write_text(completeness_shapes_text(), encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
