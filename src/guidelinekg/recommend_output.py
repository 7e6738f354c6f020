"""The derivation's results rendered: JSON (the documented contract), text for a clinician,
and RDF with its provenance (PROV-O).

Every rendering states the population verdict first: a patient outside the guideline's
population is told so before anything else. Contraindicated and possibly contraindicated
actions come next, then care gaps and dose checks: what concerns something the patient is
actually getting is never left at the bottom.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from urllib.parse import quote

from rdflib import RDF, XSD, Graph, Literal, URIRef
from rdflib.namespace import OWL, PROV
from rdflib.term import Node

from guidelinekg import __version__
from guidelinekg.console import terminal_text
from guidelinekg.loading import BASE, bind_project_prefixes
from guidelinekg.namespaces import CODE, FACT, GKG
from guidelinekg.results import Derivation, PatientResult, PopulationVerdict
from guidelinekg.sparql import load_query

# Result statuses as concepts of the ResultStatusScheme.
STATUS_CODES = {"applies": CODE.applies, "does-not-apply": CODE["does-not-apply"],
                "undetermined": CODE.undetermined, "matches": CODE["dose-matches"],
                "deviates": CODE["dose-deviates"], "cannot-check": CODE["dose-cannot-check"],
                "contraindicated": CODE.contraindicated,
                "possibly-contraindicated": CODE["possibly-contraindicated"],
                "in": CODE["in-population"], "out": CODE["out-of-population"],
                "population-undetermined": CODE["population-undetermined"]}

POPULATION_WORDS = {"in": "in the guideline's population",
                    "out": "OUTSIDE the guideline's population: no statement applies",
                    "undetermined": "membership of the guideline's population is UNDETERMINED"}


def to_json(derivation: Derivation) -> str:
    """The JSON contract: always a list, one object per patient and guideline (one patient
    is a list of one), each as ``schemas/recommendation-result.schema.json`` describes."""
    return json.dumps([p.to_json() for p in derivation.patients], indent=2, ensure_ascii=False)


# --------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------


class _ItemNames:
    """Record items named as a clinician reads them (their class's label and date) in the
    text report, instead of by IRI; empty (IRIs kept) with --verbose."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        # Longest IRIs first, each ending where an IRI ends: one IRI may begin another.
        self.pattern = re.compile("|".join(
            re.escape(iri) + r"(?=[\s,;)]|$)"
            for iri in sorted(names, key=len, reverse=True))) if names else None

    def __call__(self, text: str) -> str:
        if self.pattern is None:
            return text
        return self.pattern.sub(lambda found: self.names[found.group(0)], text)


def _item_names(derivation: Derivation) -> _ItemNames:
    names: dict[str, str] = {}
    for row in derivation.engine.select(load_query("derive/record-item-labels").text):
        item = str(row["item"])
        if item not in names:
            date_text = f" {row['date']}" if row.get("date") is not None else ""
            names[item] = f"{row['label']}{date_text}"
    return _ItemNames(names)


def _summaries(derivation: Derivation) -> dict[str, list[str]]:
    """Summary statement IRI -> the keys of the statements it summarises."""
    parts: dict[str, list[str]] = defaultdict(list)
    for row in derivation.engine.select(load_query("derive/statement-summaries").text):
        parts[str(row["summary"])].append(str(row["partKey"]))
    return parts


def _population_lines(population: PopulationVerdict, name: _ItemNames) -> list[str]:
    lines = [f"  Population ({population.population}): {POPULATION_WORDS[population.status]}"]
    lines.extend(f"    because {name(line)}" for line in population.because)
    for detail in population.missing_details:
        reason = f" ({detail['reason']})" if detail["reason"] else ""
        lines.append(f"    missing: {detail['label']} [{detail['fact']}]{reason}")
    return lines


def _flag_lines(result: PatientResult, name: _ItemNames) -> list[str]:
    confirmed = [c for c in result.contraindicated if c.status == "contraindicated"]
    possible = [c for c in result.contraindicated if c.status != "contraindicated"]
    lines = [f"  Contraindicated actions ({len(confirmed)}), possibly contraindicated "
             f"({len(possible)})"]
    for item in result.contraindicated:
        word = "CONTRAINDICATED" if item.status == "contraindicated" else "POSSIBLY CONTRAINDICATED"
        lines.append(f"    {word} {item.key} [{item.modality}] {item.text}")
        lines.append(f"      conflicting record item: {name(item.record_item)}")
        for detail in item.to_confirm_details:
            reason = f" ({detail['reason']})" if detail["reason"] else ""
            lines.append(f"      to confirm: {detail['label']} [{detail['fact']}]{reason}")
        lines.append(f"      sources: {', '.join(item.sources)}")
        lines.extend(f"      because {name(line)}" for line in item.because)
    return lines


def _gap_and_dose_lines(result: PatientResult, name: _ItemNames) -> list[str]:
    lines = [f"  Care gaps ({len(result.care_gaps)})"]
    for gap in result.care_gaps:
        lines.append(f"    {gap.key} {gap.text}")
        lines.extend(f"      because {name(line)}" for line in gap.because)
    lines.append("")
    lines.append(f"  Dose checks ({len(result.dose_checks)})")
    for check in result.dose_checks:
        lines.append(f"    {check.key} {check.status}: {name(check.record_item)}")
        lines.append(f"      statement: {check.text}")
        lines.append(f"      found:    {check.found}")
        lines.append(f"      expected: {check.expected}")
        lines.append(f"      sources: {', '.join(check.sources)}")
        lines.extend(f"      because {name(line)}" for line in check.because)
    return lines


def _statement_lines(result: PatientResult, name: _ItemNames,
                     summaries: dict[str, list[str]]) -> list[str]:
    flagged = {c.key for c in result.contraindicated}
    by_status = defaultdict(list)
    for outcome in result.recommendations:
        is_flag = outcome.modality == "should-not" or "precondition" in outcome.kinds
        # A pitfall in the record is listed with the contraindications above, not twice.
        if is_flag and outcome.key in flagged and outcome.status != "does-not-apply":
            continue
        by_status[outcome.status].append(outcome)
    lines = [f"  Undetermined ({len(by_status['undetermined'])})"]
    for outcome in by_status["undetermined"]:
        lines.append(f"    {outcome.key} [{outcome.modality}] {outcome.text}")
        for detail in outcome.missing_details:
            reason = f" ({detail['reason']})" if detail["reason"] else ""
            lines.append(f"      missing: {detail['label']} [{detail['fact']}]{reason}")
    lines.append("")
    lines.append(f"  Applicable recommendations ({len(by_status['applies'])})")
    for outcome in by_status["applies"]:
        if summaries.get(outcome.recommendation):
            # A summary repeats its parts, each reported in its own place.
            parts = ", ".join(summaries[outcome.recommendation])
            lines.append(f"    {outcome.key} [{outcome.modality}] summary of {parts}")
            continue
        lines.append(f"    {outcome.key} [{outcome.modality}] {outcome.text}")
        lines.append(f"      sources: {', '.join(outcome.sources)}")
        lines.extend(f"      because {name(line)}" for line in outcome.because)
    lines.append("")
    keys = ", ".join(o.key for o in by_status["does-not-apply"])
    lines.append(f"  Does not apply ({len(by_status['does-not-apply'])}): {keys}")
    return lines


def to_text(derivation: Derivation, verbose: bool = False) -> str:
    """The report a clinician reads, each patient's actions first; record items by their
    class and date (``verbose``: by their IRIs)."""
    name = _ItemNames({}) if verbose else _item_names(derivation)
    summaries = _summaries(derivation)
    lines: list[str] = []
    for result in derivation.patients:
        lines.append(f"Patient {result.patient}")
        lines.extend(_population_lines(result.population, name))
        named = f"{result.guideline_label}, {result.guideline}" if result.guideline_label \
            else result.guideline
        lines.append(f"  guideline {named}, evaluated as of {result.as_of}")
        if result.derived_from_invalid_record:
            lines.append("  DERIVED FROM A RECORD THAT VIOLATES THE SHAPES: for research only")
        for block in (_flag_lines(result, name), _gap_and_dose_lines(result, name),
                      _statement_lines(result, name, summaries)):
            lines.append("")
            lines.extend(block)
        lines.append("")
    return terminal_text("\n".join(lines))  # a record's text is never a control


# --------------------------------------------------------------------------------------
# RDF
# --------------------------------------------------------------------------------------


def _result_iri(kind: str, patient: str, *parts: str) -> URIRef:
    encoded = ":".join(quote(part, safe="") for part in (patient, *parts))
    return URIRef(f"urn:guidelinekg:{kind}:{encoded}")


class _ResultGraph:
    """The RDF result graph of one run, built result by result."""


    def __init__(self, derivation: Derivation) -> None:
        self.graph = bind_project_prefixes(Graph())
        started = derivation.started
        self.run = URIRef(f"urn:guidelinekg:run:{started.strftime('%Y%m%dT%H%M%S%fZ')}")
        add = self.graph.add
        add((self.run, RDF.type, GKG.DerivationRun))
        add((self.run, RDF.type, PROV.Activity))
        add((self.run, PROV.startedAtTime, Literal(started.isoformat(), datatype=XSD.dateTime)))
        add((self.run, GKG.asOf, Literal(derivation.as_of.isoformat(), datatype=XSD.date)))
        add((self.run, PROV.wasAssociatedWith,
             URIRef(f"{BASE}software/{__version__}")))
        provenance = derivation.engine.construct(load_query("derive/provenance").text)
        self.fact_values: dict[tuple[str, str], list[Node]] = defaultdict(list)
        fact_of: dict[Node, str] = {}
        patient_of: dict[Node, str] = {}
        for subject, predicate, obj in provenance:
            if predicate == OWL.versionIRI:
                add((self.run, PROV.used, obj))
                continue
            add((subject, predicate, obj))
            if predicate == GKG.fact:
                fact_of[subject] = str(obj)
            elif predicate == GKG.patient:
                patient_of[subject] = str(obj)
        for node, fact in fact_of.items():
            self.fact_values[(patient_of.get(node, ""), fact)].append(node)

    def result(self, node: URIRef, kind: str, patient: str, status: str, query: str) -> None:
        add = self.graph.add
        add((node, RDF.type, GKG[kind]))
        add((node, GKG.patient, URIRef(patient)))
        add((node, GKG.resultStatus, STATUS_CODES[status]))
        add((node, PROV.wasGeneratedBy, self.run))
        add((node, GKG.generatedByQuery, Literal(query)))

    def derived_from_facts(self, node: URIRef, patient: str, facts: list[str]) -> None:
        for fact in facts:
            for value in self.fact_values.get((patient, str(FACT[fact])), []):
                self.graph.add((node, PROV.wasDerivedFrom, value))

    def facts(self, node: URIRef, predicate: str, facts: list[str]) -> None:
        for fact in facts:
            self.graph.add((node, GKG[predicate], FACT[fact]))

    def explanations(self, node: URIRef, lines: list[str]) -> None:
        for line in lines:
            self.graph.add((node, GKG.explanation, Literal(line)))

    def add_patient(self, result: PatientResult) -> None:
        add, patient = self.graph.add, result.patient
        population = result.population
        node = _result_iri("population", patient, population.guideline)
        status = "population-undetermined" if population.status == "undetermined" \
            else population.status
        self.result(node, "PopulationResult", patient, status, "derive/population-status")
        if population.guideline:
            add((node, GKG.guideline, URIRef(population.guideline)))
        self.facts(node, "missingFact", population.missing)
        self.explanations(node, population.because)
        for outcome in result.recommendations:
            node = _result_iri("result", patient, outcome.recommendation)
            self.result(node, "RecommendationResult", patient, outcome.status,
                        "derive/recommendation-status")
            add((node, GKG.recommendation, URIRef(outcome.recommendation)))
            self.facts(node, "missingFact", outcome.missing)
            self.explanations(node, outcome.because)
            self.derived_from_facts(node, patient, outcome.basis_facts)
        for item in result.contraindicated:
            node = _result_iri("contraindication", patient, item.recommendation, item.record_item)
            self.result(node, "ContraindicationResult", patient, item.status,
                        "derive/contraindicated-actions")
            add((node, GKG.recommendation, URIRef(item.recommendation)))
            add((node, GKG.recordItem, URIRef(item.record_item)))
            add((node, PROV.wasDerivedFrom, URIRef(item.record_item)))
            self.facts(node, "toConfirm", item.to_confirm)
        for gap in result.care_gaps:
            node = _result_iri("care-gap", patient, gap.recommendation)
            self.result(node, "CareGapResult", patient, "applies", "derive/care-gaps")
            add((node, GKG.recommendation, URIRef(gap.recommendation)))
        for check in result.dose_checks:
            # One node a dose: an order's loading and maintenance doses may differ in status.
            node = _result_iri("dose-check", patient, check.recommendation, check.record_item,
                               check.found)
            self.result(node, "DoseCheckResult", patient, check.status,
                        "derive/dose-comparisons")
            add((node, GKG.recommendation, URIRef(check.recommendation)))
            add((node, GKG.recordItem, URIRef(check.record_item)))
            add((node, GKG.expected, Literal(check.expected)))
            add((node, GKG.found, Literal(check.found)))
            add((node, PROV.wasDerivedFrom, URIRef(check.record_item)))


def to_rdf(derivation: Derivation) -> Graph:
    """The results as RDF with their provenance (PROV-O)."""
    result_graph = _ResultGraph(derivation)
    for result in derivation.patients:
        result_graph.add_patient(result)
    return result_graph.graph
