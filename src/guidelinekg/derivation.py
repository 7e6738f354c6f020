"""Deriving what the guideline says for each patient, and why (``guidelinekg recommend``).

The pipeline runs bundled SPARQL queries on one engine holding the guideline graph and the
patient graph, for every patient at once:

1. ``derive/population-gates``: each statement's applicability within its guideline's
   population (an all-of of the two), so a guideline speaks only for its population;
2. ``queries/facts/*``: the value of every patient fact at the evaluation date;
3. ``derive/evaluate-fact-criteria``: each fact criterion, three-valued (1 / 0.5 / 0);
4. ``derive/evaluate-criteria-groups`` once per level of the criteria tree, from the
   leaves up: all-of, any-of, none-of; after each level, ``derive/unknown-leaves``: the
   unknown fact criteria an unknown group rests on (which facts are missing);
5. SELECT queries for the population verdict, statuses, missing facts, the basis of each
   status, contraindicated and possibly contraindicated actions, care gaps and dose
   comparisons.

Queries that do not depend on each other (the fact queries of step 2, the SELECTs of step
5) run side by side on pyoxigraph's threads, and the record is validated in a thread while
the engine is prepared: pyoxigraph plans a query without holding Python's lock, and planning
is most of one patient's time. Nothing is read from the engine before validation passes.

No statement is special-cased here: populations, criteria, modalities and regimens all come
from the guideline graph. Python only assembles rows into results and decides dose verdicts
from the comparable numbers the dose query returns.

:func:`derive` is the one safe path, for the command line, the Python API and any service:
it validates the patient graph first and refuses a record that violates the shapes
(:class:`InvalidRecordError`), unless asked explicitly to derive anyway for research, which
marks every result as derived from an invalid record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, SKOS
from rdflib.term import Node

from guidelinekg.basis import (
    FALSE,
    TRUE,
    Basis,
    BasisCriterion,
    basis_criteria,
    criterion_polarities,
)
from guidelinekg.dose_checks import dose_checks
from guidelinekg.flag_results import care_gaps_of, contraindications
from guidelinekg.loading import shared_guideline_graph
from guidelinekg.namespaces import GKG
from guidelinekg.results import (
    Derivation,
    DoseCheck,
    PatientResult,
    PopulationVerdict,
    RecommendationOutcome,
    StatementInfo,
    Vocabulary,
)
from guidelinekg.sparql import EngineName, SparqlEngine, load_query, make_engine
from guidelinekg.threads import run_beside

if TYPE_CHECKING:
    from guidelinekg.validation import PatientValidation

# The subject of the derivation's own state in an engine (the step being run).
EVALUATION = URIRef("urn:guidelinekg:derivation")


class DerivationError(Exception):
    """The derivation could not complete (a criteria group that contains itself)."""


class InvalidRecordError(Exception):
    """The patient record violates the patient shapes: nothing is derived from it."""

    def __init__(self, validation: PatientValidation) -> None:
        self.validation = validation
        count = validation.count("Violation")
        super().__init__(f"the record violates the patient shapes ({count} violation"
                         f"{'' if count == 1 else 's'}); nothing is derived. Read the "
                         "validation report (guidelinekg validate), correct the record, or "
                         "derive anyway for research with allow_invalid=True")


# --------------------------------------------------------------------------------------
# Running the queries
# --------------------------------------------------------------------------------------


def _bindings(patient: URIRef | None, **extra: Node) -> dict[str, Node]:
    bindings: dict[str, Node] = dict(extra)
    if patient is not None:
        bindings["patient"] = patient
    return bindings


@dataclass(frozen=True)
class _BuiltGuideline:
    """The shared guideline graph built into one engine, kept in the engine's own form, with
    what the derivation reads of the guideline alone: restored into every new engine and
    reused instead of built and queried again for each derivation."""

    snapshot: list
    depth: int
    statements: dict[str, StatementInfo]
    class_labels: dict[str, str]
    basis_criteria: dict[str, list[BasisCriterion]]


# Per shared guideline graph (never changed) and engine.
_BUILT_GUIDELINES: WeakKeyDictionary[Graph, dict[str, _BuiltGuideline]] = WeakKeyDictionary()
_VOCABULARIES: WeakKeyDictionary[Graph, Vocabulary] = WeakKeyDictionary()


def _built_guideline(engine_name: EngineName) -> _BuiltGuideline:
    built = _BUILT_GUIDELINES.setdefault(shared_guideline_graph(), {})
    if engine_name not in built:
        engine, depth = _guideline_engine(engine_name, shared_guideline_graph())
        built[engine_name] = _BuiltGuideline(
            snapshot=engine.snapshot(), depth=depth, statements=read_statements(engine),
            class_labels={str(row["class"]): str(row["label"])
                          for row in _select(engine, "derive/class-labels")},
            basis_criteria=basis_criteria(_select(engine, "derive/basis-criteria-labels"),
                                          _criterion_polarities(engine)))
    return built[engine_name]


def _vocabulary(graph: Graph) -> Vocabulary:
    if graph not in _VOCABULARIES:
        _VOCABULARIES[graph] = Vocabulary(graph)
    return _VOCABULARIES[graph]


def _guideline_engine(engine_name: EngineName, knowledge: Graph | None
                      ) -> tuple[SparqlEngine, int]:
    """A new engine holding the guideline and its population gates, and the depth of its
    criteria groups. The shared guideline graph is built into an engine once and restored
    after (a third of one patient's derivation went to building it); a graph the caller
    gives is added as it is."""
    if knowledge is None:
        built = _built_guideline(engine_name)
        return make_engine(engine_name).restored(built.snapshot), built.depth
    engine = make_engine(engine_name)
    engine.add(knowledge)
    return engine, prepare_guideline(engine)


def prepare_guideline(engine: SparqlEngine) -> int:
    """Write what the derivation reads of the guidelines alone, which no patient changes:
    the population gates, the fact criteria under each statement (the basis), each criteria
    group's level and member count, and the criteria each flag requires. The depth of the
    criteria groups."""
    engine.add_constructed(load_query("derive/population-gates").text, {})
    engine.add_constructed(load_query("derive/basis-criteria").text, {})
    depth = add_criteria_levels(engine)
    required = load_query("derive/required-criteria").text
    for _ in range(depth + 1):  # one level of all-of members a run
        engine.add_constructed(required, {})
    return depth


def prepare_engine(patient_graph: Graph, as_of: date, engine_name: EngineName = "oxigraph",
                   patient: URIRef | None = None, knowledge: Graph | None = None
                   ) -> SparqlEngine:
    """An engine holding guideline, patients, fact values and evaluated criteria.
    ``knowledge``: a guideline graph of the caller's (engines copy what they are given, so
    it is only read); by default the project's guideline graph."""
    from guidelinekg.facts import add_fact_values

    engine, depth = _guideline_engine(engine_name, knowledge)
    engine.add(patient_graph)
    add_fact_values(engine, as_of, patient)
    evaluate_criteria(engine, patient, depth)
    return engine


def evaluate_criteria(engine: SparqlEngine, patient: URIRef | None = None,
                      depth: int | None = None) -> None:
    """Evaluate every criterion for the patients whose fact values the engine holds.
    ``depth``: the deepest level of the criteria groups when the engine already holds their
    levels (:func:`add_criteria_levels`); they are written first otherwise. Each level is
    evaluated once, after the levels below it."""
    if depth is None:
        depth = add_criteria_levels(engine)
    engine.add_constructed(load_query("derive/evaluate-fact-criteria").text, _bindings(patient))
    groups = load_query("derive/evaluate-criteria-groups").text
    leaves = load_query("derive/unknown-leaves").text
    for level in range(1, depth + 1):
        with at_step(engine, level):
            engine.add_constructed(groups, _bindings(patient))
            engine.add_constructed(leaves, _bindings(patient))


@contextmanager
def at_step(engine: SparqlEngine, step: int) -> Iterator[None]:
    """The derivation's step (the level of criteria groups to evaluate) written into the
    engine while a query that reads it runs. It is data, not a parameter: pyoxigraph binds
    nothing inside a subquery, and its plan does not start from a bound parameter (one
    level of groups cost as much as all of them)."""
    marker = [(EVALUATION, GKG.currentStep, Literal(step))]
    engine.add(marker)
    try:
        yield
    finally:
        engine.remove(marker)


def add_criteria_levels(engine: SparqlEngine) -> int:
    """Write each criteria group's level (gkg:evaluationLevel, its height: a group of fact
    criteria only, or of none, is 1) and its number of members (gkg:memberCount), and return
    the deepest level. A group that contains itself raises DerivationError."""
    members = _group_members(engine)
    levels = criteria_levels(engine, members)
    engine.add((group, GKG.evaluationLevel, Literal(level)) for group, level in levels.items())
    engine.add((group, GKG.memberCount, Literal(len(found))) for group, found in members.items())
    return max(levels.values(), default=0)


def _criterion_polarities(engine: SparqlEngine) -> dict[str, set[tuple[str, bool]]]:
    """Each statement's, population's and check's fact criteria, each with whether it is
    reached through a none-of group (basis.criterion_polarities)."""
    rows = _select(engine, "derive/criteria-groups")
    members = {str(group): [str(m) for m in found]
               for group, found in _members_of(rows).items()}
    none_of = {str(row["group"]) for row in rows if row.get("kind") == GKG.NoneOf}
    roots = [(str(row["holder"]), str(row["root"]))
             for row in _select(engine, "derive/basis-roots")]
    return criterion_polarities(roots, members, none_of)


def _group_members(engine: SparqlEngine) -> dict[Node, list[Node]]:
    """Each criteria group's members, each once, in the order the query gives them."""
    return _members_of(_select(engine, "derive/criteria-groups"))


def _members_of(rows: Iterable[dict]) -> dict[Node, list[Node]]:
    """Each group's members of the rows of derive/criteria-groups."""
    members: dict[Node, dict[Node, None]] = defaultdict(dict)
    for row in rows:
        members[row["group"]].update(dict.fromkeys([row["member"]] if "member" in row else []))
    return {group: list(found) for group, found in members.items()}


def criteria_levels(engine: SparqlEngine, members: dict[Node, list[Node]] | None = None
                    ) -> dict[Node, int]:
    """The height of every criteria group of the guidelines an engine holds (a group of fact
    criteria only, or of none, is 1). A group that contains itself raises DerivationError."""
    if members is None:
        members = _group_members(engine)
    heights: dict[Node, int] = {}

    def height(group: Node, path: frozenset[Node]) -> int:
        if group in path:
            raise DerivationError(f"the criteria group {group} contains itself")
        if group not in heights:
            inner = [height(m, path | {group}) for m in members[group] if m in members]
            heights[group] = 1 + max(inner, default=0)
        return heights[group]

    for group in list(members):
        height(group, frozenset())
    return heights


def _select(engine: SparqlEngine, name: str, patient: URIRef | None = None) -> list[dict]:
    return engine.select(load_query(name).text, _bindings(patient))


# What the results are assembled from: queries that only read the prepared engine.
RESULT_QUERIES = ("derive/patients", "derive/fact-criterion-truths", "derive/fact-values",
                  "derive/missing-facts", "derive/population-status",
                  "derive/recommendation-status", "derive/contraindicated-actions",
                  "derive/care-gaps", "derive/dose-comparisons")


def _result_rows(engine: SparqlEngine, patient: URIRef | None) -> dict[str, list[dict]]:
    """The rows of every result query, by name (run side by side where the engine can)."""
    answers = engine.select_each([load_query(name).text for name in RESULT_QUERIES],
                                 _bindings(patient))
    return dict(zip(RESULT_QUERIES, answers, strict=True))


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


def _missing_facts(rows: Iterable[dict]) -> dict[tuple[str, str], list[dict[str, str]]]:
    """(patient, statement or guideline) -> the missing facts, with what is known of why."""
    missing: dict[tuple[str, str], dict[str, dict[str, str]]] = defaultdict(dict)
    for row in rows:
        key = (str(row["patient"]), str(row["recommendation"]))
        entry = missing[key].setdefault(str(row["factKey"]), {
            "fact": str(row["factKey"]), "label": str(row["factLabel"]), "reason": "",
        })
        if row.get("reason") is not None:
            reasons = [r for r in (entry["reason"], str(row["reason"])) if r]
            entry["reason"] = "; ".join(sorted(set(reasons)))
    return {key: sorted(found.values(), key=lambda d: d["fact"])
            for key, found in missing.items()}


def _populations(rows: list[dict], basis: Basis,
                 missing: dict[tuple[str, str], list[dict[str, str]]]
                 ) -> dict[tuple[str, str], PopulationVerdict]:
    """(patient, guideline) -> the verdict of each guideline that declares a population."""
    verdicts: dict[tuple[str, str], PopulationVerdict] = {}
    for row in rows:
        pair = (str(row["patient"]), str(row["guideline"]))
        if pair in verdicts:
            continue
        status = str(row["status"])
        because = {"in": basis.lines(pair, TRUE), "out": basis.lines(pair, FALSE),
                   "undetermined": basis.lines(pair, TRUE)}[status]
        details = missing.get(pair, []) if status == "undetermined" else []
        verdicts[pair] = PopulationVerdict(
            status=status, population=str(row.get("populationLabel") or row["population"]),
            because=because, missing=[d["fact"] for d in details], missing_details=details,
            guideline=pair[1],
        )
    return verdicts


def _within_populations(outcomes: dict[tuple[str, str], list[RecommendationOutcome]],
                        populations: dict[tuple[str, str], PopulationVerdict]
                        ) -> dict[tuple[str, str], RecommendationOutcome]:
    """Each statement's result by (patient, statement), for patients in its guideline's
    population: those qualify the dose checks (outside it, or while membership is
    undetermined, the population verdict does: _traced)."""
    return {(patient_iri, outcome.recommendation): outcome
            for (patient_iri, guideline), found in outcomes.items()
            if (populations.get((patient_iri, guideline)) or _everyone(guideline)).status == "in"
            for outcome in found}


def _everyone(guideline: str) -> PopulationVerdict:
    return PopulationVerdict(status="in", population="every patient", guideline=guideline,
                             because=["the guideline declares no population"])


def _outcome(row: dict, info: StatementInfo, population: PopulationVerdict, basis: Basis,
             missing: dict[tuple[str, str], list[dict[str, str]]]) -> RecommendationOutcome:
    patient_iri = str(row["patient"])
    pair = (patient_iri, info.iri)
    status = str(row["status"])
    if status == "does-not-apply" and population.status == "out":
        because = [f"outside the guideline's population ({population.population}): "
                   + "; ".join(population.because)]
        facts = basis.facts((patient_iri, population.guideline), FALSE)
    elif status == "applies":
        because, facts = basis.lines(pair, TRUE), basis.facts(pair, TRUE)
        if not because:  # a statement for every patient the guideline speaks for
            because = [f"applies to every patient of the guideline's population "
                       f"({population.population})"]
    elif status == "does-not-apply":
        because, facts = basis.lines(pair, FALSE), basis.facts(pair, FALSE)
    else:
        because, facts = basis.lines(pair, TRUE, FALSE), basis.facts(pair, TRUE, FALSE)
        if population.status == "undetermined":
            because.append(f"membership of the guideline's population "
                           f"({population.population}) is undetermined")
    details = missing.get(pair, []) if status == "undetermined" else []
    return RecommendationOutcome(
        key=info.key, status=status, modality=info.modality, text=info.text,
        sources=list(info.sources), because=because,
        missing=[d["fact"] for d in details], missing_details=details,
        kinds=list(info.kinds), recommendation=info.iri, basis_facts=facts,
    )


def derive(patient_graph: Graph, as_of: date, engine_name: EngineName = "oxigraph",
           patient: URIRef | None = None, *, validation: PatientValidation | None = None,
           allow_invalid: bool = False, guidelines: Sequence[str] | None = None) -> Derivation:
    """Every statement's status and every flag, for every patient of the graph.

    The record is validated first (pass ``validation`` when it already was): a record with
    violations raises :class:`InvalidRecordError`, unless ``allow_invalid`` is set, which
    derives anyway for research and marks every result ``derived_from_invalid_record``.
    There is one result per patient and guideline (``guidelines``: the ids to report on;
    every guideline by default); ValueError names an unknown id.
    """
    started = datetime.now(UTC)
    validation, engine = _validated_and_prepared(patient_graph, as_of, engine_name, patient,
                                                 validation, allow_invalid)
    invalid = validation.has_violations
    knowledge = shared_guideline_graph()  # only read here
    vocabulary = _vocabulary(knowledge)
    built = _built_guideline(engine_name)
    statements = built.statements
    rows = _result_rows(engine, patient)
    basis = Basis(built.basis_criteria, rows["derive/fact-criterion-truths"],
                  rows["derive/fact-values"], vocabulary)
    missing = _missing_facts(rows["derive/missing-facts"])
    populations = _populations(rows["derive/population-status"], basis, missing)
    chosen = _chosen_guidelines(statements, vocabulary, guidelines)

    # Everything is per (patient, guideline): each guideline speaks for its own population,
    # and its statements' keys are its own.
    outcomes: dict[tuple[str, str], list[RecommendationOutcome]] = defaultdict(list)
    for row in rows["derive/recommendation-status"]:
        info = statements[str(row["recommendation"])]
        pair = (str(row["patient"]), info.guideline)
        outcomes[pair].append(_outcome(row, info, populations.get(pair) or
                                       _everyone(info.guideline), basis, missing))
    contraindicated = contraindications(rows["derive/contraindicated-actions"], statements,
                                         basis, missing)
    care_gaps = care_gaps_of(rows["derive/care-gaps"], statements, built.class_labels, basis)
    checks = dose_checks(rows["derive/dose-comparisons"], vocabulary,
                         _within_populations(outcomes, populations))

    labels = {guideline: _guideline_label(knowledge, guideline) for guideline in chosen}
    results = []
    for patient_iri in sorted({str(row["patient"]) for row in rows["derive/patients"]}):
        for guideline in chosen:
            pair = (patient_iri, guideline)
            population = populations.get(pair) or _everyone(guideline)
            doses = [_traced(c, statements[c.recommendation], population)
                     for c in checks.get(patient_iri, [])
                     if statements[c.recommendation].guideline == guideline]
            results.append(PatientResult(
                patient=patient_iri, guideline=guideline, as_of=as_of.isoformat(),
                population=population,
                recommendations=sorted(outcomes.get(pair, []),
                                       key=lambda o: statements[o.recommendation].order),
                contraindicated=[c for c in contraindicated.get(patient_iri, [])
                                 if statements[c.recommendation].guideline == guideline],
                care_gaps=[g for g in care_gaps.get(patient_iri, [])
                           if statements[g.recommendation].guideline == guideline],
                # A guideline's regimens are no standard for a patient outside its population.
                dose_checks=[] if population.status == "out" else doses,
                derived_from_invalid_record=invalid,
                guideline_label=labels[guideline],
            ))
    return Derivation(as_of=as_of, patients=results, engine=engine, started=started,
                      derived_from_invalid_record=invalid)


def _validated_and_prepared(patient_graph: Graph, as_of: date, engine_name: EngineName,
                            patient: URIRef | None, validation: PatientValidation | None,
                            allow_invalid: bool) -> tuple[PatientValidation, SparqlEngine]:
    """The record's validation and the engine prepared for its derivation; a record with
    violations raises InvalidRecordError before anything prepared is read (unless
    ``allow_invalid``). Validation runs in a thread while the engine is prepared: it is
    mostly Python, the preparation mostly pyoxigraph's planning, which runs beside it."""
    if validation is not None:
        _refuse_if_invalid(validation, allow_invalid)
        return validation, prepare_engine(patient_graph, as_of, engine_name, patient)
    from guidelinekg.validation import validate_patients

    # Not the query threads: the preparation waits on those.
    checking = run_beside("validation", 2, validate_patients, patient_graph)
    try:
        engine = prepare_engine(patient_graph, as_of, engine_name, patient)
    except Exception:
        # A record with violations is refused as such, whatever its derivation ran into.
        _refuse_if_invalid(checking.result(), allow_invalid)
        raise
    validation = checking.result()
    _refuse_if_invalid(validation, allow_invalid)
    return validation, engine


def _refuse_if_invalid(validation: PatientValidation, allow_invalid: bool) -> None:
    if validation.has_violations and not allow_invalid:
        raise InvalidRecordError(validation) from None  # the refusal is the whole answer


def _traced(check: DoseCheck, info: StatementInfo, population: PopulationVerdict
            ) -> DoseCheck:
    """A dose check with its statement's text and sources. While the patient's membership of
    the guideline's population is undetermined, its regimens are no standard yet: the check
    cannot be made, and says what the comparison gave."""
    traced = replace(check, text=info.text, sources=list(info.sources))
    if population.status != "undetermined":
        return traced
    missing = f" (missing: {', '.join(population.missing)})" if population.missing else ""
    return replace(traced, status="cannot-check", because=[
        f"membership of the guideline's population ({population.population}) is "
        f"undetermined{missing}: its regimens are a standard only within it",
        f"compared with the regimen alone: {check.status}",
        *check.because])


def _guideline_label(graph: Graph, guideline: str) -> str:
    """'Title (id)' of a guideline, as the text output names it."""
    node = URIRef(guideline)
    title = graph.value(node, DCTERMS.title)
    notation = graph.value(node, SKOS.notation)
    return f"{title or guideline} ({notation})" if notation is not None else str(title or "")


def _chosen_guidelines(statements: dict[str, StatementInfo], vocabulary: Vocabulary,
                       names: Sequence[str] | None) -> list[str]:
    """The IRIs of the guidelines to report on, in order of their ids: those named (by the
    skos:notation of their gkg:Guideline, the id of their folder), or every one."""
    ids = {guideline: vocabulary.notation.get(URIRef(guideline), guideline)
           for guideline in {info.guideline for info in statements.values()}}
    if names:
        unknown = sorted(set(names) - set(ids.values()))
        if unknown:
            raise ValueError(f"no guideline named {', '.join(map(repr, unknown))} "
                             f"(known: {', '.join(sorted(ids.values()))})")
    return sorted((iri for iri, name in ids.items() if not names or name in names),
                  key=lambda iri: ids[iri])
