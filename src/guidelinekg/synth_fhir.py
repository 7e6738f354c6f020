"""``guidelinekg synth --format fhir|ndjson``: a synthetic cohort as FHIR, the same patients
as one Bundle per patient or as a FHIR Bulk Data export (NDJSON, one file per resource type).

Patients are made from template Bundles (the bundled examples in ``examples/fhir/``, which
import cleanly and conform to the shapes, or a folder of the user's own), so the generator
knows no guideline: every code it writes is a code of the project's code maps
(``fhir/code-map.tsv`` of each module), chosen among the codes of terms of the same value set
(``skos:inScheme``). For each patient a template is chosen and copied, then:

- every resource gets a fresh id (a UUID); in a Bundle every entry's fullUrl is
  ``urn:uuid:<id>`` and references between entries use it; in an export they are
  ``Type/<id>`` (:func:`bundle_to_export_resources`);
- the Patient gets the identifier ``http://example.org/synth/mrn`` ``<seed>-<number>``, so the
  patient's IRI is the same in both forms (the importer names a patient by its first
  identifier: guidelinekg.fhir_identity);
- coded values vary, each with some probability, within the code maps: an observation's coded
  result (receptor status, disease status, fracture risk, response, germline variant) among
  the terms of its value set; a metastasis site (other than the record's first) among sites
  the record does not already name; a stage code among the codes of the same stage (the stage
  the template gives is kept); a score (pain) within its bands;
- every date moves by one random offset into the past, so the order of events is kept;
- an incomplete record (20 % by default) loses one clinical resource that no other references;
- an invalid record (5 % by default) gets a birth date after its latest event, which the
  shapes refuse;
- a record outside the population (10 % by default) has its primary cancer recoded to a
  primary cancer of another site (a code whose role reads ``other-primary-cancer``).

The same seed gives the same patients, byte for byte, in both forms; patients are made and
written one at a time, so a cohort of any size streams to disk.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TextIO

from rdflib import URIRef
from rdflib.term import Node

from guidelinekg.fhir_identity import TYPE_ID_TAIL, as_dict, as_list
from guidelinekg.loading import InputError, read_bytes_checked
from guidelinekg.resources import examples_dir
from guidelinekg.stdio import STDIN, is_stdio, read_stdin
from guidelinekg.synth import SynthOptions
from guidelinekg.synth_values import CodeChoices, shift_dates

IDENTIFIER_SYSTEM = "http://example.org/synth/mrn"
TEMPLATES_FOLDER = "fhir"
URN_UUID = "urn:uuid:"
# The made-up server the cohort comes from: Bundle entries' fullUrls are its RESTful URLs
# and the export's manifest names it, so both forms name every resource alike.
SERVER_BASE = "http://example.org/synth/fhir/"
# Resource types that carry no record item of a patient: never dropped.
NOT_DROPPED = frozenset({"Patient", "Medication"})
# Days after the latest event that an invalid record's birth date is set to.
BORN_AFTER_DAYS = 30


@dataclass(frozen=True)
class FhirOptions(SynthOptions):
    """What the FHIR forms add to the RDF cohort's options: patients outside the population."""

    outside_rate: float = 0.10


@dataclass(frozen=True)
class FhirTemplate:
    """One template Bundle: its entries' resources and the names references use."""

    name: str
    resources: tuple[dict[str, Any], ...]
    # every name of each resource (fullUrl, Type/id) -> its index
    names: dict[str, int]

    def target(self, reference: str) -> int | None:
        """The index of the resource a reference names in the Bundle, or None."""
        found = self.names.get(reference.strip())
        if found is None:
            match = TYPE_ID_TAIL.search(reference.strip())
            if match and not reference.startswith(URN_UUID):
                found = self.names.get(f"{match.group(1)}/{match.group(2)}")
        return found

    def referenced(self) -> set[int]:
        """The indexes of the resources another resource of the Bundle references."""
        found: set[int] = set()
        for index, resource in enumerate(self.resources):
            for reference in _references(resource):
                target = self.target(reference)
                if target is not None and target != index:
                    found.add(target)
        return found


@dataclass(frozen=True)
class SynthBundle:
    """One synthetic patient: its Bundle and what was done to it."""

    number: int
    template: str
    bundle: dict[str, Any]
    incomplete: bool = False
    invalid: bool = False
    outside: bool = False

    @property
    def identifier(self) -> tuple[str, str]:
        return IDENTIFIER_SYSTEM, str(self.bundle["entry"][0]["resource"]["identifier"][0]
                                      ["value"])


# --------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------


def default_fhir_templates() -> list[FhirTemplate]:
    """The bundled example Bundles (examples/fhir/)."""
    return fhir_templates_from([examples_dir() / TEMPLATES_FOLDER])


def fhir_templates_from(paths: Sequence[Path]) -> list[FhirTemplate]:
    """One template per Bundle file (a file, or the .json files of a folder, sorted)."""
    files: list[Path] = []
    for path in paths:
        if is_stdio(path):
            files.append(STDIN)
        elif path.is_dir():
            files += sorted(p for p in path.rglob("*.json") if p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(path, "no such file or folder")
    if not files:
        raise InputError(", ".join(map(str, paths)), "no FHIR Bundle (.json) to use as template")
    return [template_from_bundle(_read_json(path), str(path)) for path in files]


def _read_json(path: Path) -> Any:
    try:
        return json.loads((read_stdin() if path == STDIN else read_bytes_checked(path))
                          .decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as error:
        raise InputError(path, f"not a FHIR JSON document ({error})") from None


def template_from_bundle(document: Any, name: str) -> FhirTemplate:
    """A template of a Bundle of one patient; InputError when it is none."""
    bundle = as_dict(document)
    if bundle.get("resourceType") != "Bundle":
        raise InputError(name, "a template is a FHIR Bundle (resourceType Bundle)")
    entries = [as_dict(entry) for entry in as_list(bundle.get("entry"))]
    resources = [as_dict(entry.get("resource")) for entry in entries]
    if any(not isinstance(r.get("resourceType"), str) for r in resources):
        raise InputError(name, "every entry of a template holds a resource")
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    if len(patients) != 1:
        raise InputError(name, f"a template holds one Patient, not {len(patients)}")
    # The Patient first: a synthetic Bundle starts with its patient.
    order = sorted(range(len(resources)), key=lambda i: resources[i]["resourceType"] != "Patient")
    names: dict[str, int] = {}
    for new, old in enumerate(order):
        resource, full_url = resources[old], entries[old].get("fullUrl")
        if isinstance(full_url, str) and full_url:
            names.setdefault(full_url, new)
        if isinstance(resource.get("id"), str):
            names.setdefault(f"{resource['resourceType']}/{resource['id']}", new)
    return FhirTemplate(Path(name).stem, tuple(copy.deepcopy(resources[i]) for i in order),
                        names)


def _references(value: Any) -> Iterator[str]:
    """Every reference string in a resource (contained resources' included)."""
    if isinstance(value, dict):
        reference = value.get("reference")
        if isinstance(reference, str):
            yield reference
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


# --------------------------------------------------------------------------------------
# Patients
# --------------------------------------------------------------------------------------


@dataclass
class _Draft:
    """A patient being made: its resources, in template order, and what happens to them."""

    template: FhirTemplate
    ids: list[str]
    dropped: int | None = None
    outside: int | None = None  # the index of the primary cancer recoded
    site_terms: set[URIRef] = field(default_factory=set)
    first_site: int | None = None
    recoded: dict[tuple[Node | str, URIRef], URIRef] = field(default_factory=dict)


class FhirPatientMaker:
    """Copies template Bundles into new patients, varied within the code maps."""

    def __init__(self, templates: Sequence[FhirTemplate], options: FhirOptions,
                 choices: CodeChoices) -> None:
        if not templates:
            raise InputError("templates", "no FHIR Bundle to make a cohort from")
        self.templates = list(templates)
        self.options = options
        self.choices = choices
        self.random = random.Random(options.seed)
        self._droppable = {id(t): [i for i in range(len(t.resources)) if i not in t.referenced()
                                   and t.resources[i]["resourceType"] not in NOT_DROPPED]
                           for t in self.templates}

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.random.getrandbits(128), version=4))

    def patient(self, number: int) -> SynthBundle:
        rng, options = self.random, self.options
        template = self.templates[rng.randrange(len(self.templates))]
        draft = _Draft(template, [self._uuid() for _ in template.resources])
        self._survey(draft)
        shift = timedelta(days=rng.randrange(options.max_shift_days + 1))
        if rng.random() >= options.outside_rate:
            draft.outside = None
        droppable = [i for i in self._droppable[id(template)] if i != draft.outside]
        if droppable and rng.random() < options.incomplete_rate:
            draft.dropped = droppable[rng.randrange(len(droppable))]
        invalid = rng.random() < options.invalid_rate
        dates: list[date] = []
        entries = []
        for index, resource in enumerate(template.resources):
            if index == draft.dropped:
                continue
            made = self._resource(draft, index, resource, number)
            made = shift_dates(made, shift, dates)
            entries.append({"fullUrl": f"{SERVER_BASE}{made['resourceType']}/{made['id']}",
                            "resource": made})
        if invalid:
            latest = max(dates, default=date(2026, 1, 1))
            entries[0]["resource"]["birthDate"] = (
                latest + timedelta(days=BORN_AFTER_DAYS)).isoformat()
        bundle = {"resourceType": "Bundle", "id": self._uuid(), "type": "collection",
                  "entry": entries}
        return SynthBundle(number, template.name, bundle, draft.dropped is not None, invalid,
                           draft.outside is not None)

    def _survey(self, draft: _Draft) -> None:
        """The record's metastasis sites (the first stays as it is) and its primary cancer."""
        for index, resource in enumerate(draft.template.resources):
            if resource["resourceType"] != "Condition":
                continue
            site = self.choices.read(resource.get("code"), self.choices.site_roles)
            if site is not None:
                draft.site_terms.add(site.term)
                if draft.first_site is None:
                    draft.first_site = index
            elif draft.outside is None and self.choices.read(
                    resource.get("code"), self.choices.primary_roles) is not None:
                draft.outside = index

    def _resource(self, draft: _Draft, index: int, template: dict[str, Any],
                  number: int) -> dict[str, Any]:
        resource = copy.deepcopy(template)
        resource["id"] = draft.ids[index]
        self._rewrite_references(resource, draft)
        kind = resource["resourceType"]
        if kind == "Patient":
            identifier = {"system": IDENTIFIER_SYSTEM, "value": f"{self.options.seed}-{number}"}
            resource["identifier"] = [identifier]
        elif kind == "Condition":
            self._condition(resource, draft, index)
        elif kind == "Observation":
            self._observation(resource, draft)
        return resource

    def _rewrite_references(self, value: Any, draft: _Draft) -> None:
        if isinstance(value, list):
            for item in value:
                self._rewrite_references(item, draft)
        elif isinstance(value, dict):
            reference = value.get("reference")
            if isinstance(reference, str) and not reference.startswith("#"):
                target = draft.template.target(reference)
                if target is not None:  # relative: it resolves against the fullUrl's server
                    kind = draft.template.resources[target]["resourceType"]
                    value["reference"] = f"{kind}/{draft.ids[target]}"
            for key, item in value.items():
                if key != "reference":
                    self._rewrite_references(item, draft)

    def _recodes(self) -> bool:
        return self.random.random() < self.options.recode_rate

    def _condition(self, resource: dict[str, Any], draft: _Draft, index: int) -> None:
        choices = self.choices
        if index == draft.outside:
            primary = choices.read(resource.get("code"), choices.primary_roles)
            concept = choices.other_primary(primary.system if primary else "", self.random)
            if concept is not None:
                resource["code"] = concept
            return
        site = choices.read(resource.get("code"), choices.site_roles)
        if site is not None and index != draft.first_site and self._recodes():
            free = [t for t in choices.terms_like(site) if t not in draft.site_terms]
            if free:
                term = free[self.random.randrange(len(free))]
                concept = choices.concept(site.role, term, site.system, self.random)
                if concept is not None:
                    resource["code"] = concept
                    draft.site_terms.add(term)
        for stage in as_list(resource.get("stage")):
            if isinstance(stage, dict) and "summary" in stage:
                stage["summary"] = self._recoded(stage["summary"], choices.kept_value_roles)

    def _observation(self, resource: dict[str, Any], draft: _Draft) -> None:
        kind, value_role, finding = self.choices.observation_value(resource)
        if kind == "score" and isinstance(finding, URIRef) and self._recodes():
            low, high = self.choices.score_range(finding)
            if isinstance(resource.get("valueInteger"), int):
                resource["valueInteger"] = self.random.randint(low, high)
            return
        if kind != "coded":
            return
        value = self.choices.read(resource.get("valueCodeableConcept"), (value_role,))
        if value is None:
            found = [self.choices.read(c, (value_role,))
                     for c in as_list(resource.get("interpretation"))]
            value = next((f for f in found if f is not None), None)
        if value is None:
            return
        if value_role in self.choices.kept_value_roles:  # another code of the same term
            if "valueCodeableConcept" in resource:
                resource["valueCodeableConcept"] = self._recoded(
                    resource["valueCodeableConcept"], (value_role,))
            return
        # One new value per kind of finding and old value: results the template gives alike
        # stay alike (a second result of one date never contradicts the first).
        key = (finding, value.term)
        if key not in draft.recoded:
            terms = self.choices.terms_like(value) if self._recodes() else [value.term]
            draft.recoded[key] = terms[self.random.randrange(len(terms))]
        if draft.recoded[key] == value.term:
            return
        for element in ("valueCodeableConcept", "interpretation"):
            if element in resource:
                resource[element] = self._to_term(resource[element], value_role,
                                                  draft.recoded[key])

    def _to_term(self, concepts: Any, role: str, term: URIRef) -> Any:
        """The CodeableConcept (or list of them) with each one the role reads recoded to a
        code of the term."""
        if isinstance(concepts, list):
            return [self._to_term(concept, role, term) for concept in concepts]
        coded = self.choices.read(concepts, (role,))
        if coded is None:
            return concepts
        return self.choices.concept(role, term, coded.system, self.random) or concepts

    def _recoded(self, concept: Any, roles: Iterable[str]) -> Any:
        """A coded value recoded, with the recode rate, to another term of its value set
        (another code of the same term for the roles whose term is kept)."""
        coded = self.choices.read(concept, roles)
        if coded is None or not self._recodes():
            return concept
        terms = self.choices.terms_like(coded)
        term = terms[self.random.randrange(len(terms))]
        return self.choices.concept(coded.role, term, coded.system, self.random) or concept


def synthesize_fhir(options: FhirOptions, templates: Sequence[FhirTemplate] | None = None
                    ) -> Iterator[SynthBundle]:
    """The cohort, one patient's Bundle at a time."""
    maker = FhirPatientMaker(templates if templates is not None else default_fhir_templates(),
                             options, CodeChoices())
    for number in range(1, options.patients + 1):
        yield maker.patient(number)


# --------------------------------------------------------------------------------------
# Output forms
# --------------------------------------------------------------------------------------


def bundle_to_export_resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources of a Bundle as a Bulk Data export writes them: each entry's resource
    (a copy, in entry order), references to an entry's fullUrl (``urn:uuid:...`` or an
    absolute URL) rewritten to ``Type/<id>`` wherever they are (in contained resources too).
    A resource without an id gets the UUID of its ``urn:uuid`` fullUrl. Contained resources
    stay inside their resource, never written on their own; local ``#id`` references stay
    as they are."""
    entries = [as_dict(entry) for entry in as_list(bundle.get("entry"))]
    resources = [copy.deepcopy(as_dict(entry.get("resource"))) for entry in entries]
    relative: dict[str, str] = {}
    for entry, resource in zip(entries, resources, strict=True):
        full_url = entry.get("fullUrl")
        if not isinstance(resource.get("id"), str) and isinstance(full_url, str) \
                and full_url.startswith(URN_UUID):
            resource["id"] = full_url[len(URN_UUID):]
        if isinstance(full_url, str) and full_url and isinstance(resource.get("id"), str):
            relative[full_url] = f"{resource.get('resourceType')}/{resource['id']}"
    for resource in resources:
        _relative_references(resource, relative)
    return resources


def _relative_references(value: Any, relative: dict[str, str]) -> None:
    if isinstance(value, list):
        for item in value:
            _relative_references(item, relative)
    elif isinstance(value, dict):
        reference = value.get("reference")
        if isinstance(reference, str) and reference.strip() in relative:
            value["reference"] = relative[reference.strip()]
        for item in value.values():
            _relative_references(item, relative)


def _json_line(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"


def empty_output_folder(folder: Path) -> None:
    """Make the output folder; InputError when it holds files already (a cohort written over
    another would mix the two)."""
    from guidelinekg.cli import output_directory

    output_directory(folder)
    if any(folder.iterdir()):
        raise InputError(folder, "the output folder is not empty: give a new or empty folder "
                                 "(a cohort written over another would mix them)")


def bundle_file_name(patient: SynthBundle) -> str:
    seed, number = patient.identifier[1].rsplit("-", 1)
    return f"patient-{seed}-{int(number):06d}.json"


def write_bundles(cohort: Iterable[SynthBundle], folder: Path) -> int:
    """One Bundle file per patient in ``folder``; the number of patients written."""
    count = 0
    for patient in cohort:
        with (folder / bundle_file_name(patient)).open("w", encoding="utf-8") as out:
            out.write(_json_line(patient.bundle))
        count += 1
    return count


def write_ndjson(cohort: Iterable[SynthBundle], folder: Path) -> int:
    """A Bulk Data export in ``folder``: ``<resourceType>.ndjson``, one resource a line,
    references relative, and the export's ``manifest.json`` naming the server; the number
    of patients written."""
    streams: dict[str, TextIO] = {}
    count = 0
    try:
        for patient in cohort:
            for resource in bundle_to_export_resources(patient.bundle):
                kind = str(resource["resourceType"])
                if kind not in streams:
                    streams[kind] = (folder / f"{kind}.ndjson").open("w", encoding="utf-8")
                streams[kind].write(_json_line(resource))
            count += 1
    finally:
        for stream in streams.values():
            stream.close()
    manifest = {"transactionTime": "2026-12-01T00:00:00Z", "request": f"{SERVER_BASE}$export",
                "requiresAccessToken": False,
                "output": [{"type": kind, "url": f"{kind}.ndjson"} for kind in sorted(streams)],
                "error": []}
    (folder / "manifest.json").write_text(_json_line(manifest), encoding="utf-8")
    return count
