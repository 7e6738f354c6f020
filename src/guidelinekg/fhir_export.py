"""``guidelinekg export-fhir --out DIR``: the guidelines as HL7 CPG-on-FHIR artefacts.

One Bundle (type collection) in FHIR R4 (4.0.1), written to ``DIR/guidelinekg-cpg-bundle.json``,
with the artefacts of every guideline found (the bundled ones and those of GUIDELINEKG_LIBRARY):

- a PlanDefinition of type ``eca-rule`` per recommendation, its id and identifier system
  carrying the guideline (two guidelines may use the same statement key), its url the
  statement's IRI: the key as identifier value, the verbatim text as description, the
  curators' reading as usage, the citations as relatedArtifact
  (type citation, display the source title; an unresolved source as "unresolved citation
  REF-4"), links to related statements as relatedArtifact too; one action carrying the
  applicability criterion in words (condition kind ``applicability``), the strength from the
  modality (``cqf-strengthOfRecommendation``: strong for should / should not, weak for may /
  consider) and the direction (``cpg-directionOfRecommendation``: for / against), pointing at
  the ActivityDefinition of each action;
- an ActivityDefinition per action (intervention class, and per dose regimen of it), of the
  kind the class's ``gkg:fhirActivityKind`` (or its nearest superclass's) names: its codes
  where the ontology has verified ones, ``doNotPerform`` for what a should-not statement
  forbids, and the regimen's steps as Dosage (doseAndRate.doseQuantity in UCUM, mg/kg for a
  per-kilogram dose; timing.repeat; route SNOMED CT where the ontology has the code);
- the guideline as a whole as a PlanDefinition of type ``clinical-protocol``, one action per
  section listing its recommendations by canonical URL.

Every PlanDefinition claims the CPG IG's computable PlanDefinition profile and every
ActivityDefinition its computable ActivityDefinition profile (``meta.profile``); every resource
has a generated narrative and every coding the display the repository's data gives it
(fhir_narrative). An applicability condition references its criterion in the guideline graph
by IRI (language ``application/x-guidelinekg-criterion``, evaluated by ``guidelinekg
recommend``), the criterion in words as its description.

Resources are checked structurally with the R4B models of fhir.resources 8 (the package has no
R4 module; the elements used here are the same in R4 4.0.1 and R4B 4.3.0), and the Bundle is read
back before it is written. Nothing is invented: codes come from the ontology only, and an
element whose value the graph does not hold is left out.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from pathlib import Path

from fhir.resources.R4B.activitydefinition import ActivityDefinition
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.domainresource import DomainResource
from fhir.resources.R4B.plandefinition import PlanDefinition
from rdflib import Graph, URIRef
from rdflib.namespace import DCTERMS, OWL, RDF
from rdflib.term import Node

from guidelinekg import __version__
from guidelinekg.cli import output_directory
from guidelinekg.fhir_narrative import (
    CodeDisplays,
    activity_text,
    direction,
    plan_text,
    protocol_text,
)
from guidelinekg.guideline_content import (
    DoseRegimen,
    Guideline,
    Intervention,
    Recommendation,
    guidelines,
    local_name,
)
from guidelinekg.guideline_parts import DoseStep, superclasses
from guidelinekg.loading import BASE, PREFIXES, guideline_graph
from guidelinekg.namespaces import GKG

FHIR_VERSION = "4.0.1"
BUNDLE_FILE = "guidelinekg-cpg-bundle.json"

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
FINDING = "https://w3id.org/guidelinekg/CodeSystem/finding"
PLAN_TYPE = "http://terminology.hl7.org/CodeSystem/plan-definition-type"
STRENGTH_EXTENSION = "http://hl7.org/fhir/StructureDefinition/cqf-strengthOfRecommendation"
STRENGTH_SYSTEM = "http://terminology.hl7.org/CodeSystem/recommendation-strength"
DIRECTION_EXTENSION = "http://hl7.org/fhir/uv/cpg/StructureDefinition/cpg-directionOfRecommendation"
DIRECTION_SYSTEM = "http://hl7.org/fhir/uv/cpg/CodeSystem/cpg-recommendation-direction-cs"
FHIR_VERSION_SYSTEM = "http://hl7.org/fhir/FHIR-version"
ACTIVITY_BASE = BASE + "fhir/ActivityDefinition/"
UNITS_OF_TIME = {"s", "min", "h", "d", "wk", "mo", "a"}
CODE_SYSTEMS = {"RxNorm": RXNORM, "SNOMED CT": SNOMED, "guidelinekg finding": FINDING}
CPG_PLAN_PROFILE = "http://hl7.org/fhir/uv/cpg/StructureDefinition/cpg-computableplandefinition"
CPG_ACTIVITY_PROFILE = "http://hl7.org/fhir/uv/cpg/StructureDefinition/cpg-computableactivity"
# The project's media type for an expression that is a criterion's IRI in the guideline graph:
# the criteria test patient facts derived by the project's queries, which FHIRPath over the raw
# resources could not state without code lists the repository does not hold.
CRITERION_LANGUAGE = "application/x-guidelinekg-criterion"


def fhir_id(text: str) -> str:
    """A FHIR id ([A-Za-z0-9-.]{1,64}) for a name; long names keep a stable hash suffix."""
    cleaned = re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "x"
    if len(cleaned) > 64:
        cleaned = cleaned[:55] + "-" + uuid.uuid5(uuid.NAMESPACE_URL, text).hex[:8]
    return cleaned


def qualified_name(iri: Node) -> str:
    """The local name of a shared term (``gkg:``), ``<prefix>-<local name>`` of a term in a
    guideline's namespace (``<id>-regimen-...``), so names from two guidelines never meet."""
    text = str(iri)
    for prefix, namespace in PREFIXES.items():
        if text.startswith(namespace) and namespace.startswith(BASE + "guideline/"):
            return f"{prefix}-{text[len(namespace):]}"
    return local_name(iri)


def fhir_name(text: str) -> str:
    """A computable name (^[A-Z]([A-Za-z0-9_]){0,254}$)."""
    cleaned = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = "X" + cleaned
    return (cleaned[0].upper() + cleaned[1:])[:255]


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _full_url(canonical: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, canonical)}"


# ---------------------------------------------------------------------------------------
# Activities
# ---------------------------------------------------------------------------------------


def activity_kind(graph: Graph, intervention: Intervention) -> str:
    """The request resource an activity becomes (R4 RequestResourceType).

    Data, not code: the ``gkg:fhirActivityKind`` of the class, else of its nearest superclass
    that has one (the core states it on its broad classes, a domain on its own where they
    differ); an intervention with none is a Task.
    """
    for cls in (intervention.iri, *superclasses(graph, intervention.iri)):
        kinds = sorted(str(kind) for kind in graph.objects(cls, GKG.fhirActivityKind))
        if kinds:
            return kinds[0]
    return "Task"


def dosage(step: DoseStep, sequence: int, codes: CodeDisplays) -> dict:
    """A Dosage from a dose step: only what the step states."""
    words = step.as_written or step.words()
    item: dict = {"sequence": sequence,
                  "text": f"{step.phase}: {words}" if step.phase else words}
    repeat: dict = {}
    if step.count is not None:
        repeat["count"] = step.count
    if step.infusion_duration_value is not None and step.infusion_duration_unit in UNITS_OF_TIME:
        repeat["duration"] = _number(step.infusion_duration_value)
        repeat["durationUnit"] = step.infusion_duration_unit
    if step.period_value is not None and step.period_unit in UNITS_OF_TIME:
        repeat["frequency"] = step.frequency if step.frequency is not None else 1
        repeat["period"] = _number(step.period_value)
        if step.period_max_value is not None:
            repeat["periodMax"] = _number(step.period_max_value)
        repeat["periodUnit"] = step.period_unit
    if repeat:
        item["timing"] = {"repeat": repeat}
    if step.route:
        route: dict = {"text": step.route}
        if step.route_snomed:
            route["coding"] = [codes.coding(SNOMED, step.route_snomed)]
        item["route"] = route
    if step.amount_value is not None and step.unit:
        item["doseAndRate"] = [{"doseQuantity": {
            "value": _number(step.amount_value), "unit": step.unit, "system": UCUM,
            "code": step.unit}}]
    return item


def _codeable(codes: list[tuple[str, str]], text: str, displays: CodeDisplays) -> dict:
    concept: dict = {"text": text}
    if codes:
        concept["coding"] = [displays.coding(system, code) for system, code in codes]
    return concept


def activity_definition(graph: Graph, intervention: Intervention, regimen: DoseRegimen | None,
                        do_not_perform: bool, version: str, publisher: str | None,
                        displays: CodeDisplays) -> dict:
    # Names qualified by their guideline's prefix where two modules could share a local name:
    # a guideline's own action (example:X beside gkg:X), a regimen (each guideline's own).
    name = qualified_name(intervention.iri) + (f"-{qualified_name(regimen.iri)}"
                                               if regimen else "")
    if do_not_perform:
        name = "do-not-" + name
    identifier = fhir_id(name)
    kind = activity_kind(graph, intervention)
    title = intervention.label if regimen is None else regimen.label
    if do_not_perform:
        title = f"do not: {title}"
    resource: dict = {
        "resourceType": "ActivityDefinition",
        "id": identifier,
        "meta": {"profile": [CPG_ACTIVITY_PROFILE]},
        "url": ACTIVITY_BASE + identifier,
        "identifier": [{"system": ACTIVITY_BASE.rstrip("/"), "value": identifier}],
        "version": version,
        "name": fhir_name(name),
        "title": title,
        "status": "draft",
        "description": (intervention.definition or intervention.label)
        + (f" Regimen: {regimen.label}." if regimen else ""),
        "relatedArtifact": [{"type": "documentation", "display": f"ontology class "
                             f"{local_name(intervention.iri)} ({intervention.label})",
                             "url": str(intervention.iri)}],
        "kind": kind,
    }
    if publisher:
        resource["publisher"] = publisher
    medication = [(RXNORM, c.code) for c in intervention.codes if c.system == "RxNorm"]
    other = [(CODE_SYSTEMS[c.system], c.code) for c in intervention.codes
             if c.system != "RxNorm"]
    if kind == "MedicationRequest":
        resource["productCodeableConcept"] = _codeable(medication, intervention.label, displays)
        if other:
            resource["code"] = _codeable(other, intervention.label, displays)
    else:
        resource["code"] = _codeable(other + medication, intervention.label, displays)
    if do_not_perform:
        resource["doNotPerform"] = True
    if regimen is not None and regimen.steps:
        resource["dosage"] = [dosage(step, index, displays) for index, step in
                              enumerate(regimen.steps, start=1)]
        if regimen.condition is not None:
            resource["usage"] = f"Only when: {regimen.condition.words()}"
    return resource


# ---------------------------------------------------------------------------------------
# Recommendations and the guideline
# ---------------------------------------------------------------------------------------


def _citation(source) -> dict:
    if source.unresolved or not source.title:
        return {"type": "citation", "label": source.key, "display": source.display}
    parts = [source.title]
    if source.publisher:
        parts.append(source.publisher)
    if source.year:
        parts.append(source.year)
    return {"type": "citation", "label": source.key, "display": source.title,
            "citation": ". ".join(parts) + "."}


_LINK_TYPES = {"summarises": "composed-of", "applies with": "depends-on"}


def _targets(recommendation: Recommendation) -> list[tuple[Intervention, DoseRegimen | None,
                                                             bool]]:
    """(intervention, regimen, do not perform) for each action of a statement."""
    against = recommendation.modality.direction == "against"
    targets: list[tuple[Intervention, DoseRegimen | None, bool]] = []
    covered: set[URIRef] = set()
    for action in recommendation.actions:
        regimens = [r for r in recommendation.regimens if r.intervention is not None
                    and r.intervention.iri == action.iri]
        covered.add(action.iri)
        if regimens:
            targets += [(action, regimen, against) for regimen in regimens]
        else:
            targets.append((action, None, against))
    for action in recommendation.forbidden_actions:
        targets.append((action, None, True))
        covered.add(action.iri)
    # A regimen stated in a statement whose action is not recorded (a summary): the regimen's
    # own intervention is the action.
    for regimen in recommendation.regimens:
        if regimen.intervention is not None and regimen.intervention.iri not in covered:
            targets.append((regimen.intervention, regimen, against))
    return targets


def plan_definition(recommendation: Recommendation, guideline: Guideline, version: str,
                    activities: Activities) -> dict:
    key = recommendation.key
    canonical = str(recommendation.iri)
    modality = recommendation.modality
    extensions = []
    if modality.strength:
        extensions.append({"url": STRENGTH_EXTENSION, "valueCodeableConcept": {"coding": [{
            "system": STRENGTH_SYSTEM, "code": modality.strength,
            "display": modality.strength.capitalize()}], "text": modality.label}})
    way = direction(recommendation)
    if way:
        extensions.append({"url": DIRECTION_EXTENSION, "valueCodeableConcept": {"coding": [{
            "system": DIRECTION_SYSTEM, "code": way, "display": way.capitalize()}]}})
    action: dict = {
        "id": fhir_id(key),
        "title": key,
        "description": recommendation.verbatim,
        "condition": [{"kind": "applicability", "expression": applicability(recommendation)}],
    }
    if extensions:
        action["extension"] = extensions
    if recommendation.reading:
        action["textEquivalent"] = recommendation.reading
    targets = _targets(recommendation)
    urls = []
    for intervention, regimen, do_not in targets:
        activity = activities.get(intervention, regimen, do_not)
        users = activities.statements.setdefault(activity["id"], [])
        if all(r.iri != recommendation.iri for r in users):  # regimens may share an activity
            users.append(recommendation)
        urls.append((activity["url"], activity["title"]))
    if len(urls) == 1:
        action["definitionCanonical"] = urls[0][0]
    elif urls:
        same_intervention = len({t[0].iri for t in targets}) == 1
        action["selectionBehavior"] = "exactly-one" if same_intervention else "all"
        action["action"] = [{"title": title, "definitionCanonical": url} for url, title in urls]
    related = [_citation(source) for source in recommendation.sources]
    for link in recommendation.links:
        related.append({"type": _LINK_TYPES.get(link.relation, "documentation"),
                        "display": f"{link.relation} {link.key}", "resource": str(link.iri)})
    usage = [recommendation.reading] if recommendation.reading else []
    for source in recommendation.sources:
        usage += [f"Curation note on {source.key}: {note}" for note in source.notes]
    resource: dict = {
        "resourceType": "PlanDefinition",
        "id": fhir_id(f"{guideline.key}-{key}"),
        "meta": {"profile": [CPG_PLAN_PROFILE]},
        "text": plan_text(recommendation, guideline),
        "url": canonical,
        "identifier": [{"system": BASE + f"guideline/{guideline.key}", "value": key}],
        "version": version,
        "name": fhir_name(f"{guideline.key}_{key}"),
        "title": f"{key}: {recommendation.verbatim[:80]}"
                 + ("…" if len(recommendation.verbatim) > 80 else ""),
        "type": {"coding": [{"system": PLAN_TYPE, "code": "eca-rule", "display": "ECA Rule"}]},
        "status": "draft",
        "description": recommendation.verbatim,
        "relatedArtifact": related,
        "action": [action],
    }
    _attribution(resource, guideline, activities.publisher)
    if usage:
        resource["usage"] = " ".join(usage)
    return resource


def applicability(recommendation: Recommendation) -> dict:
    """The applicability condition's Expression: the criterion's IRI in the guideline graph,
    its words as description. A statement without a criterion IRI keeps words only (no
    bundled statement lacks one)."""
    criterion = recommendation.criterion
    if criterion is None or not isinstance(criterion.iri, URIRef):
        return {"description": recommendation.criteria_words, "language": "text/plain",
                "expression": recommendation.criteria_words}
    return {"description": recommendation.criteria_words, "language": CRITERION_LANGUAGE,
            "expression": str(criterion.iri)}


def _attribution(resource: dict, guideline: Guideline, publisher: str | None) -> None:
    """guidelinekg publishes the artefacts; the guideline's publisher authored the content."""
    if guideline.modified:
        resource["date"] = guideline.modified
    if publisher:
        resource["publisher"] = publisher
    if guideline.publisher:
        resource["author"] = [{"name": guideline.publisher}]


class Activities:
    """The ActivityDefinitions of a bundle, one per (intervention, regimen, do-not-perform)."""

    def __init__(self, graph: Graph, version: str, publisher: str | None,
                 displays: CodeDisplays) -> None:
        self.graph = graph
        self.version = version
        self.publisher = publisher
        self.displays = displays
        self.resources: dict[str, dict] = {}
        # activity id -> the statements pointing at it, for its narrative
        self.statements: dict[str, list[Recommendation]] = {}

    def get(self, intervention: Intervention, regimen: DoseRegimen | None,
            do_not: bool) -> dict:
        resource = activity_definition(self.graph, intervention, regimen, do_not, self.version,
                                       self.publisher, self.displays)
        return self.resources.setdefault(resource["id"], resource)


def guideline_plan(guideline: Guideline, version: str, publisher: str | None) -> dict:
    sections = []
    for section in guideline.sections:
        sections.append({
            "title": section.title,
            "action": [{"title": r.key, "description": r.verbatim,
                        "definitionCanonical": str(r.iri)} for r in section.recommendations],
        })
    usage = [f"Review status: {guideline.review_status or 'not stated'}."]
    if guideline.review_note:
        usage.append(guideline.review_note)
    if guideline.disclaimer:
        usage.append(f"Disclaimer: {guideline.disclaimer}")
    related = [_citation(source) for source in guideline.sources]
    related.append({"type": "documentation", "display": "the guideline as linked data",
                    "url": str(guideline.iri)})
    resource: dict = {
        "resourceType": "PlanDefinition",
        "id": fhir_id(f"{guideline.key}-guideline"),
        "meta": {"profile": [CPG_PLAN_PROFILE]},
        "text": protocol_text(guideline),
        "url": str(guideline.iri),
        "identifier": [{"system": BASE + "guideline", "value": guideline.key}],
        "version": version,
        "name": fhir_name(f"{guideline.key}_guideline"),
        "title": guideline.title,
        "type": {"coding": [{"system": PLAN_TYPE, "code": "clinical-protocol",
                             "display": "Clinical Protocol"}]},
        "status": "draft",
        "description": guideline.question or guideline.title,
        "usage": " ".join(usage),
        "relatedArtifact": related,
        "action": sections,
    }
    _attribution(resource, guideline, publisher)
    return resource


MODELS: dict[str, type[DomainResource]] = {
    "PlanDefinition": PlanDefinition, "ActivityDefinition": ActivityDefinition}


def _content_ontology(graph: Graph, guideline: Guideline) -> URIRef:
    """The ontology holding a guideline's content, whose version its artefacts carry: the one
    whose IRI is the guideline's namespace (``guideline/<id>`` for ``guideline/<id>/...``)."""
    owners = sorted((o for o in graph.subjects(RDF.type, OWL.Ontology) if isinstance(o, URIRef)
                     and str(guideline.iri).startswith(str(o) + "/")), key=lambda o: -len(o))
    return owners[0] if owners else URIRef(BASE + f"guideline/{guideline.key}")


def build_bundle(graph: Graph | None = None, displays: CodeDisplays | None = None) -> dict:
    """The CPG-on-FHIR Bundle of every guideline in the graph, checked structurally.

    ``displays`` names the codes (the repository's code maps and CodeSystems by default); the
    codes it has no name for are left in its ``missing``."""
    graph = graph if graph is not None else guideline_graph()
    displays = displays if displays is not None else CodeDisplays()
    resources: list[dict] = []
    activity_resources: dict[str, dict] = {}
    statements: dict[str, list[Recommendation]] = {}
    for guideline in guidelines(graph):
        version = str(graph.value(_content_ontology(graph, guideline), OWL.versionInfo)
                      or __version__)
        publisher = str(graph.value(URIRef(BASE + "ontology"), DCTERMS.publisher) or "guidelinekg")
        activities = Activities(graph, version, publisher, displays)
        # One ActivityDefinition per action across guidelines: shared dicts.
        activities.resources, activities.statements = activity_resources, statements
        resources.append(guideline_plan(guideline, version, publisher))
        resources += [plan_definition(r, guideline, version, activities)
                      for r in guideline.recommendations]
    for key in sorted(activity_resources):
        activity = activity_resources[key]
        activity["text"] = activity_text(activity, statements.get(key, []))
        resources.append(activity)
    for resource in resources:
        MODELS[resource["resourceType"]].model_validate(resource)
    bundle = {
        "resourceType": "Bundle",
        "id": "guidelinekg-cpg",
        "meta": {"tag": [{"system": FHIR_VERSION_SYSTEM, "code": FHIR_VERSION,
                          "display": f"FHIR R4 {FHIR_VERSION}"}]},
        "identifier": {"system": BASE + "fhir/Bundle", "value": "guidelinekg-cpg"},
        "type": "collection",
        "entry": [{"fullUrl": _full_url(resource["url"]), "resource": resource}
                  for resource in resources],
    }
    Bundle.model_validate(bundle)
    return bundle


def read_bundle(path: Path) -> Bundle:
    """A written Bundle, read back and checked with the R4B models."""
    return Bundle.model_validate_json(path.read_text(encoding="utf-8"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help=f"folder to write {BUNDLE_FILE} into; - writes the Bundle to "
                             "standard output (and the summary line to standard error)")
    parser.add_argument("--fhir-version", default="R4", choices=["R4"],
                        help="FHIR release of the artefacts (R4, 4.0.1)")


def run(args: argparse.Namespace) -> int:
    from guidelinekg import console
    from guidelinekg.stdio import is_stdio

    to_stdout = is_stdio(args.out)
    if not to_stdout:
        output_directory(args.out)
    started = console.clock()
    displays = CodeDisplays()
    bundle = build_bundle(displays=displays)
    text = json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"
    if to_stdout:
        sys.stdout.write(text)
        read_back = Bundle.model_validate_json(text)
    else:
        path = args.out / BUNDLE_FILE
        path.write_text(text, encoding="utf-8")
        read_back = read_bundle(path)
    kinds: dict[str, int] = {}
    for entry in read_back.entry or []:
        if entry.resource is None:  # build_bundle gives every entry a resource
            raise ValueError("a Bundle entry without a resource")
        kind = entry.resource.get_resource_type()
        kinds[kind] = kinds.get(kind, 0) + 1
    console.detail(f"built and checked the Bundle ({len(bundle['entry'])} entries) in "
                   f"{console.since(started)}")
    rules = sum(1 for e in bundle["entry"] if e["resource"]["resourceType"] == "PlanDefinition"
                and e["resource"]["type"]["coding"][0]["code"] == "eca-rule")
    summary = (f"wrote {'standard output' if to_stdout else args.out / BUNDLE_FILE}: Bundle "
               f"(collection, FHIR R4 {FHIR_VERSION}) with "
               + ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
               + f" ({rules} recommendations as eca-rule PlanDefinitions, 1 clinical-protocol "
                 "per guideline); checked with the fhir.resources R4B models")
    if to_stdout:
        console.say(summary)  # standard output holds the Bundle
    else:
        print(summary)
    for system, code in sorted(displays.missing):
        console.say(f"note: {system} code {code} has no display in the repository's code maps "
                    "or CodeSystems; its coding has none")
    return 0
