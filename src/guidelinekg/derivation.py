"""Deriving what the guideline says for each patient, and why (``guidelinekg recommend``).

The pipeline runs bundled SPARQL queries on one engine holding the guideline graph and the
patient graph, for every patient at once:

1. ``queries/facts/*``: the value of every patient fact at the evaluation date;
2. ``derive/evaluate-fact-criteria``: each fact criterion, three-valued (1 / 0.5 / 0);
3. ``derive/evaluate-criteria-groups`` until it adds nothing: all-of, any-of, none-of;
4. ``derive/trace-undetermined`` until it adds nothing: which unknown criteria matter;
5. SELECT queries for statuses, missing facts, the basis of each status, contraindicated
   actions, care gaps and dose comparisons.

No statement is special-cased here: criteria, modalities and regimens all come from the
guideline graph. Python only assembles rows into results and decides dose verdicts from
the comparable numbers the dose query returns.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from rdflib import RDF, XSD, Graph, Literal, URIRef
from rdflib.namespace import PROV, SKOS
from rdflib.term import Node

from guidelinekg import __version__
from guidelinekg.loading import PREFIXES, bind_project_prefixes, guideline_graph
from guidelinekg.sparql import EngineName, SparqlEngine, load_query, make_engine

CODE = PREFIXES["code"]
MAX_FIXPOINT_STEPS = 50

# Relative tolerance when comparing an ordered amount or interval with the regimen:
# rounding of a weight-based dose to the vial, and a calendar month against 4 weeks.
AMOUNT_TOLERANCE = Decimal("0.05")
PERIOD_TOLERANCE = Decimal("0.10")


class DerivationError(Exception):
    """The derivation could not complete (a query that never reaches its fixpoint)."""


@dataclass
class RecommendationOutcome:
    key: str
    status: str
    modality: str
    text: str
    sources: list[str]
    because: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    missing_details: list[dict[str, str]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    recommendation: str = ""


@dataclass
class Contraindication:
    key: str
    record_item: str
    text: str
    sources: list[str]
    because: list[str]
    modality: str


@dataclass
class CareGap:
    key: str
    text: str
    because: list[str]
    action: str
    sources: list[str]


@dataclass
class DoseCheck:
    key: str
    record_item: str
    status: str  # matches, deviates, cannot-check
    expected: str
    found: str
    because: list[str]


@dataclass
class PatientResult:
    patient: str
    guideline: str
    as_of: str
    recommendations: list[RecommendationOutcome]
    contraindicated: list[Contraindication]
    care_gaps: list[CareGap]
    dose_checks: list[DoseCheck]

    def to_json(self) -> dict:
        return {
            "patient": self.patient,
            "guideline": self.guideline,
            "as_of": self.as_of,
            "recommendations": [asdict(r) for r in self.recommendations],
            "contraindicated": [asdict(c) for c in self.contraindicated],
            "care_gaps": [asdict(g) for g in self.care_gaps],
            "dose_checks": [asdict(d) for d in self.dose_checks],
        }


@dataclass
class StatementInfo:
    iri: str
    key: str
    text: str
    modality: str
    kinds: list[str]
    sources: list[str]
    unresolved_sources: list[str]
    order: int
    guideline: str
    guideline_version: str | None


@dataclass
class Derivation:
    """All results of one run, and the engine state they were read from."""

    as_of: date
    patients: list[PatientResult]
    engine: SparqlEngine
    started: datetime


# --------------------------------------------------------------------------------------
# Running the queries
# --------------------------------------------------------------------------------------


def _bindings(patient: URIRef | None, **extra: Node) -> dict[str, Node]:
    bindings: dict[str, Node] = dict(extra)
    if patient is not None:
        bindings["patient"] = patient
    return bindings


def _run_to_fixpoint(engine: SparqlEngine, query_name: str, patient: URIRef | None) -> None:
    text = load_query(query_name).text
    for _ in range(MAX_FIXPOINT_STEPS):
        before = len(engine)
        engine.add_constructed(text, _bindings(patient))
        if len(engine) == before:
            return
    raise DerivationError(f"{query_name} did not settle after {MAX_FIXPOINT_STEPS} steps "
                          "(a criteria group that contains itself?)")


def prepare_engine(patient_graph: Graph, as_of: date, engine_name: EngineName = "oxigraph",
                   patient: URIRef | None = None) -> SparqlEngine:
    """An engine holding guideline, patients, fact values and evaluated criteria."""
    from guidelinekg.facts import derive_facts

    engine = make_engine(engine_name)
    engine.add(guideline_graph())
    engine.add(patient_graph)
    engine.add(derive_facts(engine, as_of, patient))
    evaluate_criteria(engine, patient)
    return engine


def evaluate_criteria(engine: SparqlEngine, patient: URIRef | None = None) -> None:
    """Evaluate every criterion for the patients whose fact values the engine holds."""
    engine.add_constructed(load_query("derive/evaluate-fact-criteria").text, _bindings(patient))
    _run_to_fixpoint(engine, "derive/evaluate-criteria-groups", patient)
    _run_to_fixpoint(engine, "derive/trace-undetermined", patient)


def _select(engine: SparqlEngine, name: str, patient: URIRef | None = None) -> list[dict]:
    return engine.select(load_query(name).text, _bindings(patient))


# --------------------------------------------------------------------------------------
# Presenting values
# --------------------------------------------------------------------------------------


class Vocabulary:
    """Readable values (skos:notation of concepts, yes/no for booleans)."""

    def __init__(self, graph: Graph) -> None:
        self.notation: dict[Node, str] = {
            subject: str(notation) for subject, notation in graph.subject_objects(SKOS.notation)
        }

    def value(self, term: Node | None) -> str:
        if term is None:
            return "unknown"
        if isinstance(term, Literal):
            if term.datatype == XSD.boolean:
                return "yes" if term.toPython() else "no"
            return str(term.toPython())
        return self.notation.get(term, str(term))


def _number(term: Node | None) -> Decimal | None:
    if term is None:
        return None
    try:
        return Decimal(str(term.toPython() if isinstance(term, Literal) else term))
    except ArithmeticError:
        return None


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


# --------------------------------------------------------------------------------------
# Assembling the results
# --------------------------------------------------------------------------------------


def read_statements(engine: SparqlEngine) -> dict[str, StatementInfo]:
    statements: dict[str, StatementInfo] = {}
    for row in _select(engine, "derive/statement-metadata"):
        iri = str(row["recommendation"])
        info = statements.get(iri)
        if info is None:
            version = row.get("guidelineVersion")
            info = statements[iri] = StatementInfo(
                iri=iri, key=str(row["key"]), text=str(row["text"]),
                modality=str(row["modality"]), kinds=[], sources=[], unresolved_sources=[],
                order=int(row["order"]), guideline=str(row["guideline"]),
                guideline_version=str(version) if version is not None else None,
            )
        kind, source = str(row["kind"]), str(row["source"])
        if kind not in info.kinds:
            info.kinds.append(kind)
        if source not in info.sources:
            info.sources.append(source)
            if row["sourceUnresolved"].toPython():
                info.unresolved_sources.append(source)
    return statements


def _basis_lines(rows: Iterable[dict], vocabulary: Vocabulary, wanted_truth: Decimal | None
                 ) -> dict[tuple[str, str], list[str]]:
    """(patient, recommendation) -> "because" lines for the criteria of the wanted truth."""
    grouped: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for row in rows:
        truth = _number(row["truth"])
        key = (str(row["patient"]), str(row["recommendation"]))
        criterion = grouped[key].setdefault(str(row["criterion"]), {
            "label": str(row["criterionLabel"]), "truth": truth,
            "fact": str(row["factKey"]), "values": {}, "sources": set(),
        })
        if row.get("value") is not None:
            criterion["values"][str(row.get("factValue"))] = row["value"]
        for source_key in ("recordItem", "source"):
            if row.get(source_key) is not None:
                criterion["sources"].add(str(row[source_key]))
    lines: dict[tuple[str, str], list[str]] = {}
    for key, criteria in grouped.items():
        for criterion in criteria.values():
            if wanted_truth is not None and criterion["truth"] != wanted_truth:
                continue
            holds = {Decimal(1): "yes", Decimal(0): "no"}.get(criterion["truth"], "unknown")
            values = sorted({vocabulary.value(v) for v in criterion["values"].values()})
            shown = ", ".join(values) if values else "not recorded"
            line = f"{criterion['label']}: {holds} ({criterion['fact']} = {shown}"
            if criterion["sources"]:
                line += "; from " + ", ".join(sorted(criterion["sources"]))
            lines.setdefault(key, []).append(line + ")")
        lines.setdefault(key, [])
    return lines


def derive(patient_graph: Graph, as_of: date, engine_name: EngineName = "oxigraph",
           patient: URIRef | None = None) -> Derivation:
    """Every statement's status and every flag, for every patient of the graph."""
    started = datetime.now(UTC)
    engine = prepare_engine(patient_graph, as_of, engine_name, patient)
    vocabulary = Vocabulary(guideline_graph())
    statements = read_statements(engine)
    by_key = {info.key: info for info in statements.values()}

    status_rows = _select(engine, "derive/recommendation-status", patient)
    basis_rows = _select(engine, "derive/criteria-basis", patient)
    missing_rows = _select(engine, "derive/missing-facts", patient)

    basis_by_truth = {
        truth: _basis_lines(basis_rows, vocabulary, truth)
        for truth in (Decimal(1), Decimal(0))
    }
    missing: dict[tuple[str, str], dict[str, dict[str, str]]] = defaultdict(dict)
    for row in missing_rows:
        key = (str(row["patient"]), str(row["recommendation"]))
        entry = missing[key].setdefault(str(row["factKey"]), {
            "fact": str(row["factKey"]), "label": str(row["factLabel"]), "reason": "",
        })
        if row.get("reason") is not None:
            reasons = [r for r in (entry["reason"], str(row["reason"])) if r]
            entry["reason"] = "; ".join(sorted(set(reasons)))

    outcomes: dict[str, list[RecommendationOutcome]] = defaultdict(list)
    status_of: dict[tuple[str, str], str] = {}
    for row in status_rows:
        patient_iri, recommendation = str(row["patient"]), str(row["recommendation"])
        info = statements[recommendation]
        status = str(row["status"])
        status_of[(patient_iri, info.key)] = status
        pair = (patient_iri, recommendation)
        if status == "applies":
            because = basis_by_truth[Decimal(1)].get(pair, [])
        elif status == "does-not-apply":
            because = basis_by_truth[Decimal(0)].get(pair, [])
        else:
            because = basis_by_truth[Decimal(1)].get(pair, []) + basis_by_truth[
                Decimal(0)].get(pair, [])
        details = sorted(missing.get(pair, {}).values(), key=lambda d: d["fact"])
        outcomes[patient_iri].append(RecommendationOutcome(
            key=info.key, status=status, modality=info.modality, text=info.text,
            sources=list(info.sources), because=list(because),
            missing=[d["fact"] for d in details] if status == "undetermined" else [],
            missing_details=details if status == "undetermined" else [],
            kinds=list(info.kinds), recommendation=recommendation,
        ))

    contraindicated = _contraindications(engine, statements, basis_by_truth, patient)
    care_gaps = _care_gaps(engine, statements, basis_by_truth, vocabulary, patient)
    dose_checks = _dose_checks(engine, vocabulary, patient)

    patients = sorted({str(p) for p in _patients(engine, patient)})
    guideline = next(iter(statements.values())).guideline if statements else ""
    results = []
    for patient_iri in patients:
        recommendations = sorted(outcomes.get(patient_iri, []),
                                 key=lambda o: by_key[o.key].order)
        results.append(PatientResult(
            patient=patient_iri, guideline=guideline, as_of=as_of.isoformat(),
            recommendations=recommendations,
            contraindicated=contraindicated.get(patient_iri, []),
            care_gaps=care_gaps.get(patient_iri, []),
            dose_checks=dose_checks.get(patient_iri, []),
        ))
    return Derivation(as_of=as_of, patients=results, engine=engine, started=started)


def _patients(engine: SparqlEngine, patient: URIRef | None) -> list[Node]:
    return [row["patient"] for row in _select(engine, "derive/patients", patient)]


def _contraindications(engine, statements, basis_by_truth, patient):
    results: dict[str, list[Contraindication]] = defaultdict(list)
    for row in _select(engine, "derive/contraindicated-actions", patient):
        info = statements[str(row["recommendation"])]
        pair = (str(row["patient"]), info.iri)
        results[str(row["patient"])].append(Contraindication(
            key=info.key, record_item=str(row["recordItem"]), text=info.text,
            sources=list(info.sources), because=list(basis_by_truth[Decimal(1)].get(pair, [])),
            modality=info.modality,
        ))
    return results


def _care_gaps(engine, statements, basis_by_truth, vocabulary, patient):
    results: dict[str, list[CareGap]] = defaultdict(list)
    labels = {str(row["class"]): str(row["label"])
              for row in _select(engine, "derive/class-labels")}
    for row in _select(engine, "derive/care-gaps", patient):
        info = statements[str(row["recommendation"])]
        pair = (str(row["patient"]), info.iri)
        action = str(row["action"])
        because = list(basis_by_truth[Decimal(1)].get(pair, []))
        because.append(f"no {labels.get(action, action)} in the record "
                       "(given, ongoing or planned)")
        results[str(row["patient"])].append(CareGap(
            key=info.key, text=info.text, because=because, action=action,
            sources=list(info.sources),
        ))
    return results


# --------------------------------------------------------------------------------------
# Dose checks
# --------------------------------------------------------------------------------------


@dataclass
class _StepVerdict:
    status: str  # matches, deviates, cannot-check
    key: str
    expected: str
    reasons: list[str]


def _describe_found(row: dict, vocabulary: Vocabulary) -> str:
    if row.get("dose") is None:
        return "no dosage recorded"
    parts = []
    if row.get("amount") is not None:
        parts.append(f"{_plain(_number(row['amount']))} {row.get('unit', '(no unit)')}")
    else:
        parts.append("no amount")
    if row.get("route") is not None:
        parts.append(vocabulary.value(row["route"]))
    if row.get("count") is not None and _number(row["count"]) == 1:
        parts.append("once")
    if row.get("period") is not None:
        parts.append(f"every {_plain(_number(row['period']))} {row.get('periodUnit', '')}")
    if row.get("fractions") is not None:
        parts.append(f"in {_plain(_number(row['fractions']))} fraction(s)")
    return " ".join(parts)


def _within(found: Decimal, low: Decimal, high: Decimal, tolerance: Decimal) -> bool:
    return low * (1 - tolerance) <= found <= high * (1 + tolerance)


def _judge_step(row: dict, vocabulary: Vocabulary) -> _StepVerdict:
    """Compare one dose of one record item with one regimen step."""
    key = str(row["key"])
    expected = f"{row['regimenLabel']} (step {row['stepOrder']}: {row['stepText']})"
    if row.get("dose") is None:
        return _StepVerdict("cannot-check", key, expected, ["the order has no dosage"])
    amount, unit = _number(row.get("amount")), row.get("unit")
    if amount is None or unit is None:
        missing_part = "amount" if amount is None else "unit"
        return _StepVerdict("cannot-check", key, expected, [f"the dose has no {missing_part}"])
    if row.get("amountInReference") is None:
        return _StepVerdict("cannot-check", key, expected,
                            [f"unit {unit} is not a dose unit known to the guideline"])
    found_amount = _number(row["amountInReference"])
    step_amount, step_unit = _number(row["stepAmount"]), str(row["stepUnit"])
    per_kg = step_unit == "mg/kg"
    dimension = str(row.get("unitDimension"))
    reasons: list[str] = []
    notes: list[str] = []
    found_text = f"{_plain(amount)} {unit}"
    weight = _number(row.get("weightKg"))
    if per_kg:
        if weight is None:
            return _StepVerdict("cannot-check", key, expected, [
                "the regimen is per kg of body weight and no body weight in kg is recorded"])
        if dimension == CODE + "mass-per-body-mass":
            found_per_kg = found_amount
        elif dimension == CODE + "mass":
            found_per_kg = found_amount / weight
            found_text = (f"{_plain(amount)} {unit} for {_plain(weight)} kg = "
                          f"{found_per_kg.quantize(Decimal('0.01'))} mg/kg")
            notes.append(found_text)
        else:
            return _StepVerdict("deviates", key, expected,
                                [f"unit {unit} is not a mass or mass per body weight"])
        amount_ok = _within(found_per_kg, step_amount, step_amount, AMOUNT_TOLERANCE)
    else:
        expected_dimension = {"mg": "mass", "Gy": "absorbed-dose"}.get(step_unit)
        if dimension != CODE + str(expected_dimension):
            return _StepVerdict("deviates", key, expected, [
                f"unit {unit} is of another dimension than the regimen's {step_unit}"])
        amount_ok = _within(found_amount, step_amount, step_amount, AMOUNT_TOLERANCE)
    if not amount_ok:
        reasons.append(f"amount {found_text} differs from {_plain(step_amount)} {step_unit}")
    step_route, route = row.get("stepRoute"), row.get("route")
    route_unknown = False
    if step_route is not None:
        if route is None:
            route_unknown = True
        elif route != step_route:
            reasons.append(f"route {vocabulary.value(route)} differs from "
                           f"{vocabulary.value(step_route)}")
    schedule_unknown = False
    step_count = _number(row.get("stepCount"))
    count = _number(row.get("count"))
    if row.get("stepPeriodDays") is not None:
        period_days = _number(row.get("periodDays"))
        if count == 1:
            reasons.append("a single dose where the regimen repeats")
        elif period_days is None:
            schedule_unknown = True
        else:
            frequency = _number(row.get("frequency")) or Decimal(1)
            interval = period_days / frequency
            if not _within(interval, _number(row["stepPeriodDays"]),
                           _number(row["stepPeriodMaxDays"]), PERIOD_TOLERANCE):
                reasons.append(f"interval {_plain(interval.quantize(Decimal('0.1')))} days "
                               f"differs from {_plain(_number(row['stepPeriodDays']))}"
                               f"-{_plain(_number(row['stepPeriodMaxDays']))} days")
    elif (step_count == 1 and row.get("stepFractions") is None
          and row.get("periodDays") is not None and count != 1):
        # A loading (single) dose: a repeating order is not the loading dose.
        reasons.append("a repeating order where the regimen gives a single loading dose")
    step_fractions = _number(row.get("stepFractions"))
    if step_fractions is not None:
        fractions = _number(row.get("fractions"))
        if fractions is None:
            schedule_unknown = True
        elif fractions != step_fractions:
            reasons.append(f"{_plain(fractions)} fractions where the regimen gives "
                           f"{_plain(step_fractions)}")
    if reasons:
        return _StepVerdict("deviates", key, expected, reasons)
    condition = _number(row.get("conditionTruth"))
    if row.get("conditionTruth") is not None and condition != 1:
        status = "deviates" if condition == 0 else "cannot-check"
        return _StepVerdict(status, key, expected, [
            "the regimen's condition " + ("does not hold" if condition == 0 else
                                          "cannot be decided") + f" ({key})"])
    if route_unknown or schedule_unknown:
        missing = [name for name, flag in (("route", route_unknown),
                                           ("schedule", schedule_unknown)) if flag]
        return _StepVerdict("cannot-check", key, expected,
                            ["the dose has no " + " and no ".join(missing)])
    return _StepVerdict("matches", key, expected, notes)


def _dose_checks(engine: SparqlEngine, vocabulary: Vocabulary, patient: URIRef | None
                 ) -> dict[str, list[DoseCheck]]:
    """One check per dose of each item; the best verdict over the regimens' steps."""
    rows_by_dose: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for row in _select(engine, "derive/dose-comparisons", patient):
        dose = str(row.get("dose")) if row.get("dose") is not None else ""
        rows_by_dose[(str(row["patient"]), str(row["item"]), dose)].append(row)
    results: dict[str, list[DoseCheck]] = defaultdict(list)
    rank = {"matches": 0, "cannot-check": 1, "deviates": 2}
    for (patient_iri, item, _dose), rows in sorted(rows_by_dose.items()):
        verdicts = [_judge_step(row, vocabulary) for row in rows]
        best = min(rank[v.status] for v in verdicts)
        chosen = [v for v in verdicts if rank[v.status] == best]
        found = _describe_found(rows[0], vocabulary)
        if best == 0:
            verdict = chosen[0]
            because = [f"matches {verdict.expected}", *verdict.reasons]
            expected = verdict.expected
        else:
            expected = "; or ".join(sorted({v.expected for v in verdicts}))
            because = sorted({f"{v.expected}: {r}" for v in chosen for r in v.reasons})
        keys = sorted({v.key for v in chosen}, key=_key_order)
        results[patient_iri].append(DoseCheck(
            key=keys[0], record_item=item, status=chosen[0].status if best == 0 else
            {1: "cannot-check", 2: "deviates"}[best],
            expected=expected, found=found, because=because,
        ))
    return results


def _key_order(key: str) -> tuple[int, str]:
    # A summary statement is the last choice to name a dose check by.
    return (1 if key.startswith("SUM-") else 0, key)


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------


def to_json(derivation: Derivation) -> str:
    documents = [p.to_json() for p in derivation.patients]
    payload = documents[0] if len(documents) == 1 else documents
    return json.dumps(payload, indent=2, ensure_ascii=False)


def to_text(derivation: Derivation) -> str:
    lines: list[str] = []
    for result in derivation.patients:
        lines.append(f"Patient {result.patient}")
        lines.append(f"  guideline {result.guideline}, evaluated as of {result.as_of}")
        by_status = defaultdict(list)
        for outcome in result.recommendations:
            by_status[outcome.status].append(outcome)
        lines.append("")
        lines.append(f"  Applicable recommendations ({len(by_status['applies'])})")
        for outcome in by_status["applies"]:
            if outcome.modality == "should-not" or "precondition" in outcome.kinds:
                continue
            lines.append(f"    {outcome.key} [{outcome.modality}] {outcome.text}")
            lines.append(f"      sources: {', '.join(outcome.sources)}")
            lines.extend(f"      because {line}" for line in outcome.because)
        lines.append("")
        lines.append(f"  Contraindicated actions ({len(result.contraindicated)})")
        for item in result.contraindicated:
            lines.append(f"    {item.key} [{item.modality}] {item.text}")
            lines.append(f"      conflicting record item: {item.record_item}")
            lines.append(f"      sources: {', '.join(item.sources)}")
            lines.extend(f"      because {line}" for line in item.because)
        lines.append("")
        lines.append(f"  Care gaps ({len(result.care_gaps)})")
        for gap in result.care_gaps:
            lines.append(f"    {gap.key} {gap.text}")
            lines.extend(f"      because {line}" for line in gap.because)
        lines.append("")
        lines.append(f"  Dose checks ({len(result.dose_checks)})")
        for check in result.dose_checks:
            lines.append(f"    {check.key} {check.status}: {check.record_item}")
            lines.append(f"      found:    {check.found}")
            lines.append(f"      expected: {check.expected}")
            lines.extend(f"      because {line}" for line in check.because)
        lines.append("")
        lines.append(f"  Undetermined ({len(by_status['undetermined'])})")
        for outcome in by_status["undetermined"]:
            lines.append(f"    {outcome.key} [{outcome.modality}] {outcome.text}")
            for detail in outcome.missing_details:
                reason = f" ({detail['reason']})" if detail["reason"] else ""
                lines.append(f"      missing: {detail['label']} [{detail['fact']}]{reason}")
        lines.append("")
        keys = ", ".join(o.key for o in by_status["does-not-apply"])
        lines.append(f"  Does not apply ({len(by_status['does-not-apply'])}): {keys}")
        lines.append("")
    return "\n".join(lines)


def to_rdf(derivation: Derivation) -> Graph:
    """The results as RDF with their provenance (PROV-O)."""
    gkg = PREFIXES["gkg"]
    graph = bind_project_prefixes(Graph())
    run = URIRef(f"urn:guidelinekg:run:{derivation.started.strftime('%Y%m%dT%H%M%S%fZ')}")
    graph.add((run, RDF.type, URIRef(gkg + "DerivationRun")))
    graph.add((run, RDF.type, PROV.Activity))
    graph.add((run, PROV.startedAtTime, Literal(derivation.started.isoformat(),
                                                datatype=XSD.dateTime)))
    graph.add((run, URIRef(gkg + "asOf"), Literal(derivation.as_of.isoformat(),
                                                  datatype=XSD.date)))
    graph.add((run, PROV.wasAssociatedWith, URIRef(
        f"https://w3id.org/guidelinekg/software/{__version__}")))
    provenance = derivation.engine.construct(load_query("derive/provenance").text)
    owl_version = URIRef("http://www.w3.org/2002/07/owl#versionIRI")
    fact_value_triples = [t for t in provenance if t[1] != owl_version]
    for _ontology, _predicate, version in (t for t in provenance if t[1] == owl_version):
        graph.add((run, PROV.used, version))
    for triple in fact_value_triples:
        graph.add(triple)
    fact_values: dict[tuple[str, str], list[Node]] = defaultdict(list)
    fact_of: dict[Node, str] = {}
    for subject, predicate, obj in fact_value_triples:
        if predicate == URIRef(gkg + "fact"):
            fact_of[subject] = str(obj)
    for subject, predicate, obj in fact_value_triples:
        if predicate == URIRef(gkg + "patient"):
            fact_values[(str(obj), fact_of.get(subject, ""))].append(subject)
    status_code = {"applies": "applies", "does-not-apply": "does-not-apply",
                   "undetermined": "undetermined", "matches": "dose-matches",
                   "deviates": "dose-deviates", "cannot-check": "dose-cannot-check"}
    for result in derivation.patients:
        patient = URIRef(result.patient)
        for outcome in result.recommendations:
            node = _result_iri("result", result.patient, outcome.key)
            graph.add((node, RDF.type, URIRef(gkg + "RecommendationResult")))
            graph.add((node, URIRef(gkg + "patient"), patient))
            graph.add((node, URIRef(gkg + "recommendation"), URIRef(outcome.recommendation)))
            graph.add((node, URIRef(gkg + "resultStatus"),
                       URIRef(CODE + status_code[outcome.status])))
            graph.add((node, PROV.wasGeneratedBy, run))
            graph.add((node, URIRef(gkg + "generatedByQuery"),
                       Literal("derive/recommendation-status")))
            for fact in outcome.missing:
                graph.add((node, URIRef(gkg + "missingFact"),
                           URIRef(PREFIXES["fact"] + fact)))
            for line in outcome.because:
                graph.add((node, URIRef(gkg + "explanation"), Literal(line)))
            for fact in _facts_of_basis(outcome.because):
                for value in fact_values.get((result.patient, PREFIXES["fact"] + fact), []):
                    graph.add((node, PROV.wasDerivedFrom, value))
        for item in result.contraindicated:
            node = _result_iri("contraindication", result.patient, item.key, item.record_item)
            graph.add((node, RDF.type, URIRef(gkg + "ContraindicationResult")))
            graph.add((node, URIRef(gkg + "patient"), patient))
            graph.add((node, URIRef(gkg + "recommendation"),
                       URIRef(PREFIXES["bcbm"] + item.key)))
            graph.add((node, URIRef(gkg + "recordItem"), URIRef(item.record_item)))
            graph.add((node, PROV.wasDerivedFrom, URIRef(item.record_item)))
            graph.add((node, PROV.wasGeneratedBy, run))
            graph.add((node, URIRef(gkg + "generatedByQuery"),
                       Literal("derive/contraindicated-actions")))
        for gap in result.care_gaps:
            node = _result_iri("care-gap", result.patient, gap.key)
            graph.add((node, RDF.type, URIRef(gkg + "CareGapResult")))
            graph.add((node, URIRef(gkg + "patient"), patient))
            graph.add((node, URIRef(gkg + "recommendation"), URIRef(PREFIXES["bcbm"] + gap.key)))
            graph.add((node, PROV.wasGeneratedBy, run))
            graph.add((node, URIRef(gkg + "generatedByQuery"), Literal("derive/care-gaps")))
        for check in result.dose_checks:
            node = _result_iri("dose-check", result.patient, check.key, check.record_item)
            graph.add((node, RDF.type, URIRef(gkg + "DoseCheckResult")))
            graph.add((node, URIRef(gkg + "patient"), patient))
            graph.add((node, URIRef(gkg + "recordItem"), URIRef(check.record_item)))
            graph.add((node, URIRef(gkg + "resultStatus"),
                       URIRef(CODE + status_code[check.status])))
            graph.add((node, URIRef(gkg + "expected"), Literal(check.expected)))
            graph.add((node, URIRef(gkg + "found"), Literal(check.found)))
            graph.add((node, PROV.wasDerivedFrom, URIRef(check.record_item)))
            graph.add((node, PROV.wasGeneratedBy, run))
            graph.add((node, URIRef(gkg + "generatedByQuery"),
                       Literal("derive/dose-comparisons")))
    return graph


def _facts_of_basis(lines: Iterable[str]) -> list[str]:
    facts = []
    for line in lines:
        start = line.find(" (")
        end = line.find(" = ", start)
        if start != -1 and end != -1:
            facts.append(line[start + 2:end])
    return facts


def _result_iri(kind: str, patient: str, *parts: str) -> URIRef:
    from urllib.parse import quote

    encoded = ":".join(quote(part, safe="") for part in (patient, *parts))
    return URIRef(f"urn:guidelinekg:{kind}:{encoded}")


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="patient records: RDF files, FHIR JSON, or folders of them")
    parser.add_argument("--as-of", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                        help="evaluation date for ages, durations and counts (default: today)")
    parser.add_argument("--format", choices=("text", "json", "turtle"), default="text")
    parser.add_argument("--patient", default=None, metavar="IRI",
                        help="only this patient of the graph")
    parser.add_argument("--engine", choices=("oxigraph", "rdflib"), default="oxigraph",
                        help="SPARQL engine (both give the same results)")


def run(args: argparse.Namespace) -> int:
    from guidelinekg.patients import load_patient_input
    from guidelinekg.sparql import expand_iri
    from guidelinekg.validation import text_report, validate_patients

    source = load_patient_input(args.paths)
    validation = validate_patients(source.graph)
    if validation.has_violations:
        # A record that violates the shapes is refused: nothing is derived from it.
        print("guidelinekg recommend: the record violates the patient shapes; nothing is "
              "derived. Validation report:\n", file=sys.stderr)
        print(text_report(validation, source), file=sys.stderr)
        return 1
    if validation.results:
        # Warnings and notes: shown, and the statements they name come out undetermined.
        print(text_report(validation, source), file=sys.stderr)
    as_of = args.as_of or date.today()
    patient = expand_iri(args.patient) if args.patient else None
    derivation = derive(source.graph, as_of, args.engine, patient)
    if not derivation.patients:
        print("guidelinekg recommend: no gkg:Patient in the input", file=sys.stderr)
        return 2
    if args.format == "json":
        print(to_json(derivation))
    elif args.format == "turtle":
        print(to_rdf(derivation).serialize(format="turtle"))
    else:
        print(to_text(derivation))
    return 0
