"""Write docs/patient-facts.md from ontology/patient-facts.ttl (and the core ontology's labels).

    python scripts/generate_fact_docs.py           # rewrite the document
    python scripts/generate_fact_docs.py --check   # exit 1 when the committed one is stale

The document is generated so that it cannot drift from the vocabulary the criteria use; a
test (tests/test_fact_docs.py) fails when the committed file is out of step.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS, SKOS, XSD
from rdflib.term import Node

from guidelinekg.loading import PREFIXES, merge_graphs, parse_rdf_file, vocabulary_files

GKG = PREFIXES["gkg"]
CODE = PREFIXES["code"]
DOC_PATH = Path(__file__).resolve().parents[1] / "docs" / "patient-facts.md"

FACT_KINDS = {
    URIRef(GKG + "ObservedFact"): "observed",
    URIRef(GKG + "ItemPresenceFact"): "item presence",
    URIRef(GKG + "DerivedFact"): "derived",
}


def gkg(local: str) -> URIRef:
    return URIRef(GKG + local)


def curie(term: Node) -> str:
    iri = str(term)
    for prefix, namespace in sorted(PREFIXES.items(), key=lambda item: -len(item[1])):
        if iri.startswith(namespace):
            return f"{prefix}:{iri[len(namespace):]}"
    return iri


def cell(text: str) -> str:
    """Text for one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def literal_text(term: Node) -> str:
    if isinstance(term, Literal):
        return str(term.toPython()).lower() if term.datatype == XSD.boolean else str(term)
    return curie(term)


def load_vocabulary() -> Graph:
    """The core's, the domains' and the guidelines' own vocabulary: every fact declared."""
    return merge_graphs(parse_rdf_file(path) for path in vocabulary_files())


def notation(graph: Graph, term: Node) -> str:
    value = graph.value(term, SKOS.notation)
    return str(value) if value is not None else curie(term)


def value_type(graph: Graph, fact: Node) -> str:
    value_type = graph.value(fact, gkg("valueType"))
    if value_type is None:
        return "(not stated)"
    unit = graph.value(fact, gkg("factUnit"))
    if (value_type, RDF.type, SKOS.ConceptScheme) in graph:
        concepts = list(graph.subjects(SKOS.inScheme, value_type))
        values = sorted(notation(graph, c) for c in concepts if not indeterminate(graph, c))
        unsettled = sorted(notation(graph, c) for c in concepts if indeterminate(graph, c))
        label = graph.value(value_type, SKOS.prefLabel)
        text = f"{label or curie(value_type)}: " + ", ".join(f"`{v}`" for v in values)
        if unsettled:
            text += ("; indeterminate, read as unknown: "
                     + ", ".join(f"`{v}`" for v in unsettled))
        return text
    text = f"`{curie(value_type)}`"
    if unit is not None:
        ucum = graph.value(unit, gkg("ucumCode"))
        label = graph.value(unit, RDFS.label)
        text += f", unit `{ucum or curie(unit)}`" + (f" ({label})" if label else "")
    return text


def indeterminate(graph: Graph, concept: Node) -> bool:
    """Whether the value set marks the concept as an indeterminate result (not a value)."""
    return graph.value(concept, gkg("indeterminate")) == Literal(True)


def how_read(graph: Graph, fact: Node) -> str:
    kinds = [FACT_KINDS[kind] for kind in graph.objects(fact, RDF.type) if kind in FACT_KINDS]
    recorded_as = graph.value(fact, gkg("recordedAs"))
    derived_by = graph.value(fact, gkg("derivedBy"))
    query = f"query `queries/{derived_by}.rq`" if derived_by is not None else "a query"
    parts: list[str] = []
    if "item presence" in kinds:
        classes = " or ".join(sorted(f"`{curie(c)}`"
                                     for c in graph.objects(fact, gkg("presenceOfClass"))))
        statuses = ", ".join(sorted(notation(graph, s)
                                    for s in graph.objects(fact, gkg("presenceStatus"))))
        parts.append(f"true when the record holds an item of {classes} (or a narrower class) "
                     f"with status {statuses}, by {query}")
    elif "observed" in kinds and recorded_as is not None:
        parts.append(f"the latest `{curie(recorded_as)}` observation, by {query}")
    elif recorded_as is not None:
        parts.append(f"computed by {query}; a `{curie(recorded_as)}` observation is read first")
    else:
        parts.append(f"computed by {query}")
    settled_by = graph.value(fact, gkg("settledBy"))
    if settled_by is not None:
        parts.append(f"an indeterminate result is settled by {settled_by}")
    fhir = graph.value(fact, gkg("fhirSource"))
    if fhir is not None:
        parts.append(f"FHIR: {fhir}")
    return "; ".join(parts)


def silence(graph: Graph, fact: Node) -> str:
    rule = graph.value(fact, gkg("whenSilent"))
    if rule == URIRef(CODE + "silence-unknown"):
        return "unknown (criteria on it are undetermined)"
    if rule == URIRef(CODE + "silence-absent"):
        value = graph.value(fact, gkg("valueWhenSilent"))
        shown = literal_text(value) if value is not None else "(no value stated)"
        return f"absent: the fact is `{shown}`"
    return "(no rule stated)"


def render(graph: Graph | None = None) -> str:
    graph = load_vocabulary() if graph is None else graph
    facts = sorted(graph.subjects(SKOS.inScheme, gkg("PatientFactScheme")),
                   key=lambda fact: notation(graph, fact))
    rules = [URIRef(CODE + "silence-unknown"), URIRef(CODE + "silence-absent")]
    lines = [
        "<!-- Generated by scripts/generate_fact_docs.py from ontology/patient-facts.ttl: "
        "do not edit by hand. -->",
        "",
        "# Patient facts",
        "",
        "The facts about a patient that guideline criteria test (`gkg:onFact`). Each fact says "
        "what its value is, how it is read from a patient record, and what the record's silence "
        "about it means. A new guideline reuses these facts or adds its own to "
        "`ontology/patient-facts.ttl`; this page is regenerated from that file.",
        "",
        "What silence means (`gkg:whenSilent`):",
        "",
    ]
    for rule in rules:
        lines.append(f"- `{curie(rule)}` ({graph.value(rule, SKOS.prefLabel)}): "
                     f"{cell(str(graph.value(rule, SKOS.definition)))}")
    lines += [
        "",
        f"Indeterminate results (`gkg:indeterminate`): "
        f"{cell(str(graph.value(gkg('indeterminate'), SKOS.definition)))}",
        "",
        "How a fact is read:",
        "",
    ]
    for kind in FACT_KINDS:
        lines.append(f"- `{curie(kind)}`: {cell(str(graph.value(kind, SKOS.definition)))}")
    lines += [
        "",
        f"{len(facts)} facts:",
        "",
        "| Fact | Label | Value type | How it is read | When the record is silent | Scope note |",
        "|---|---|---|---|---|---|",
    ]
    for fact in facts:
        scope = graph.value(fact, SKOS.scopeNote)
        lines.append("| " + " | ".join([
            f"`{curie(fact)}`",
            cell(str(graph.value(fact, SKOS.prefLabel) or "")),
            cell(value_type(graph, fact)),
            cell(how_read(graph, fact)),
            cell(silence(graph, fact)),
            cell(str(scope)) if scope is not None else "",
        ]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only check that docs/patient-facts.md is up to date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.is_file() else ""
        if current != text:
            print(f"{DOC_PATH} is out of date: run python scripts/generate_fact_docs.py",
                  file=sys.stderr)
            return 1
        return 0
    DOC_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
