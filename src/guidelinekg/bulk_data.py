"""FHIR Bulk Data (``$export``) input: NDJSON files, one per resource type, one resource a
line, read as one small Bundle per patient.

An export writes ``Patient.ndjson``, ``Condition.ndjson``, ``Observation.ndjson``... with
every resource on its own line, in no particular order of patient. A patient's resources are
gathered by the patient they name (``subject`` or ``patient``: ``Patient/<id>``, the same at
the end of an absolute URL, or a logical reference by identifier that a Patient resource of
the export carries). The Medication resources a patient's orders reference are added to its
Bundle (they name no patient; an export writes each once). Each patient's Bundle is then
imported as one FHIR document (guidelinekg.fhir_import), so an export and Bundles of the
same patients give the same graph when the patients carry identifiers.

Nothing is dropped silently: a clinical resource that names no patient, or a line that is
not a JSON resource, is returned as a problem to report, never guessed onto a patient.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from guidelinekg.fhir_identity import (
    ABSOLUTE_URI,
    SUBJECT_ELEMENTS,
    TYPE_ID_TAIL,
    as_dict,
    as_list,
    first_identifier,
    patient_identifiers,
    reference_base,
)
from guidelinekg.fhir_import.report import FhirImport
from guidelinekg.grouping import UnionFind
from guidelinekg.loading import InputError

NDJSON_SUFFIX = ".ndjson"
BOM = "\ufeff"
# A resource line is a few kilobytes; a line longer than this is not a resource.
MAX_LINE_BYTES = 16 * 1024 * 1024
MEDICATION_REFERENCE = re.compile(r"(?:^|/)Medication/([A-Za-z0-9\-.]{1,64})$")


@dataclass(frozen=True)
class BulkProblem:
    """A line of the export that cannot be given to a patient: said, never dropped."""

    source: str
    line: int
    resource: str
    because: str


@dataclass
class PatientDirectory:
    """What the export says about patients and shared resources, read before the rest:
    each identifier's patient id, and every Medication resource by id."""

    by_identifier: dict[tuple[str, str], str] = field(default_factory=dict)
    medications: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Patient ids that share a current identifier: one person, one bundle, which the
    # importer then reads as one patient, as it reads Bundles that share one.
    same_person: UnionFind[str] = field(default_factory=UnionFind)
    # Identifiers held only as retired (use old, an ended period): a logical reference to
    # one goes to its holder's bundle, where the importer reports it and reads it no further.
    by_retired_identifier: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, resource: dict[str, Any]) -> None:
        kind, local_id = resource.get("resourceType"), resource.get("id")
        if not isinstance(local_id, str):
            return
        if kind == "Patient":
            identifiers = patient_identifiers(resource)
            for key in identifiers.current:
                holder = self.by_identifier.setdefault(key, local_id)
                self.same_person.union(holder, local_id)
            for _index, key, _why in identifiers.retired:
                self.by_retired_identifier.setdefault(key, local_id)
        elif kind == "Medication":
            self.medications[local_id] = resource

    def patient_of(self, local_id: str) -> str:
        """The patient id that names the bundle of a Patient id's person."""
        return self.same_person.find(local_id)

    def holder(self, key: tuple[str, str]) -> str | None:
        """The patient id of a logical reference's identifier: its current holder, else the
        Patient that held it as retired; None for an identifier no Patient holds."""
        found = self.by_identifier.get(key) or self.by_retired_identifier.get(key)
        return self.patient_of(found) if found is not None else None


def ndjson_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line number, the resource or None, the line) for each non-blank line of a file,
    read as a stream."""
    try:
        stream = path.open("rb")
    except OSError as error:
        raise InputError(path, f"cannot read the file ({error.strerror})") from None
    with stream:
        for number, raw in enumerate(stream, start=1):
            if len(raw) > MAX_LINE_BYTES:
                raise InputError(path, f"line {number} is longer than {MAX_LINE_BYTES} "
                                       "bytes: not an NDJSON resource", number)
            text = line_text(raw)
            if text:
                document = read_resource_line(text, path)
                yield number, document if _is_resource(document) else None, text


def line_text(raw: bytes) -> str:
    """A line's text, without the byte order mark an export file may start with (a .json
    file's is accepted too: both are read as utf-8-sig)."""
    return raw.decode("utf-8", errors="replace").strip().removeprefix(BOM).strip()


def read_resource_line(text: str, path: Path | str) -> object:
    """A line's JSON as the importer reads JSON (numbers as exact decimals), or None. A
    leading byte order mark is no part of it: the first line of a file saved with one, or of
    each file of an export concatenated on standard input, keeps it."""
    from guidelinekg.fhir_import.datatypes import parse_json_text

    try:
        return parse_json_text(text.removeprefix(BOM), Path(path))
    except InputError:
        return None


def _is_resource(document: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(document, dict) and isinstance(document.get("resourceType"), str)


def read_directory(paths: Iterable[Path]) -> PatientDirectory:
    """The first pass over an export: Patient identifiers and Medication resources."""
    directory = PatientDirectory()
    for path in paths:
        for _number, resource, _text in ndjson_lines(path):
            if resource is not None and resource["resourceType"] in ("Patient", "Medication"):
                directory.add(resource)
    return directory


def patient_key(resource: dict[str, Any], directory: PatientDirectory) -> str | None:
    """The id of the patient a resource belongs to (``Patient/<id>`` form), or None."""
    if resource.get("resourceType") == "Patient":
        local_id = resource.get("id")
        return (f"Patient/{directory.patient_of(local_id)}"
                if isinstance(local_id, str) and local_id else None)
    for element in SUBJECT_ELEMENTS:
        reference = as_dict(resource.get(element))
        if not reference:
            continue
        text = reference.get("reference")
        if isinstance(text, str):
            match = TYPE_ID_TAIL.search(text.strip())
            if match and match.group(1) == "Patient":
                return f"Patient/{directory.patient_of(match.group(2))}"
            return None
        logical = first_identifier([reference.get("identifier")])
        if logical is None:
            return None
        holder = directory.holder(logical)
        if holder is not None:
            return f"Patient/{holder}"
        # A patient the export names only by identifier: one of its own, as in a Bundle.
        return "identifier|" + "|".join(logical)
    return None


def referenced_medications(resources: Iterable[dict[str, Any]],
                           directory: PatientDirectory) -> list[dict[str, Any]]:
    """The Medication resources the patient's resources reference, each once."""
    found: dict[str, dict[str, Any]] = {}
    for resource in resources:
        reference = as_dict(resource.get("medicationReference")).get("reference")
        if not isinstance(reference, str):
            continue
        match = MEDICATION_REFERENCE.search(reference.strip())
        if match and match.group(1) in directory.medications:
            found.setdefault(match.group(1), directory.medications[match.group(1)])
    return list(found.values())


def patient_bundle(resources: list[dict[str, Any]], directory: PatientDirectory,
                   server: str | None = None) -> dict[str, Any]:
    """One patient's resources (and the Medications they reference) as a collection Bundle;
    references stay relative (``Patient/<id>``), as the export wrote them. With the server
    the export came from (its manifest's request URL), each entry's fullUrl is the
    resource's URL there, so a resource is named as that server's Bundles name it."""
    entries = []
    for resource in [*resources, *referenced_medications(resources, directory)]:
        entry: dict[str, Any] = {"resource": resource}
        local_id = resource.get("id")
        if server and isinstance(local_id, str) and local_id:
            entry["fullUrl"] = f"{server}{resource['resourceType']}/{local_id}"
        entries.append(entry)
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def is_manifest(document: object) -> bool:
    """A Bulk Data export's manifest (the JSON the server's status URL returns at the end)."""
    return (isinstance(document, dict) and "resourceType" not in document
            and isinstance(document.get("output"), list) and "transactionTime" in document)


def export_server(document: object) -> str | None:
    """The FHIR server base of a manifest's request URL (``https://x/fhir/`` of
    ``https://x/fhir/Patient/$export``, of ``https://x/fhir/Group/g/$export``)."""
    request = as_dict(document).get("request")
    if not isinstance(request, str) or "$export" not in request:
        return None
    base = request.split("$export", 1)[0].split("?", 1)[0]
    base = base.removesuffix("Patient/")
    if "/Group/" in base:
        base = base[:base.index("/Group/") + 1]
    return base if ABSOLUTE_URI.match(base) and base.startswith(("http://", "https://")) \
        else None


def owner_of(source: str, number: int, resource: dict[str, Any] | None,
             directory: PatientDirectory, clinical_types: frozenset[str]
             ) -> tuple[str | None, BulkProblem | None]:
    """The patient key of line ``number`` of the file ``source`` (within its export: the
    caller keys it by the export), or the problem to report, naming the file. Medication
    resources belong to no patient and are no problem (each Bundle that references one gets
    it)."""
    if resource is None:
        return None, BulkProblem(source, number, "", "the line is not a FHIR resource (a JSON "
                                                     "object with resourceType)")
    key = patient_key(resource, directory)
    if key is not None:
        return key, None
    kind = resource["resourceType"]
    if kind == "Medication":
        return None, None
    because = ("it names no patient of the export (no subject or patient reference to a "
               "Patient): it is not given to any patient"
               if kind in clinical_types or kind == "Patient" else
               "it names no patient and no patient fact is read from this type")
    return None, BulkProblem(source, number, f"{kind}/{resource.get('id', '?')}", because)


def group_by_patient(lines: Iterable[tuple[str, int, str]], directory: PatientDirectory,
                     clinical_types: Iterable[str]
                     ) -> tuple[dict[tuple[str, str], list[dict[str, Any]]], list[BulkProblem]]:
    """Resources (source, line number, text) grouped by (source, patient key), in input
    order: ``Patient/1`` of two exports are two patients; with the problems
    (:func:`owner_of`)."""
    clinical = frozenset(clinical_types)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    problems: list[BulkProblem] = []
    for source, number, text in lines:
        document = read_resource_line(text, source)
        resource = document if _is_resource(document) else None
        key, problem = owner_of(source, number, resource, directory, clinical)
        if key is not None and resource is not None:
            groups.setdefault((source, key), []).append(resource)
        elif problem is not None:
            problems.append(problem)
    return groups, problems


def is_ndjson(path: Path) -> bool:
    return path.suffix.lower() == NDJSON_SUFFIX


def export_label(path: Path) -> str:
    """The export an NDJSON file belongs to: its folder. ``Patient/1`` of two exports are two
    patients (nothing says they are one)."""
    return str(path.parent)


def bundle_identity_keys(document: object) -> set[str]:
    """What can make a Bundle file one patient with another file (guidelinekg.fhir_identity):
    its patients' identifiers, its absolute fullUrls, and the references it makes that can
    reach another file (absolute ones, relative ones through the base of an absolute
    fullUrl, logical ones by identifier). Files that share a key are imported together;
    sharing one does not by itself make two patients one: the importer decides that."""
    keys: set[str] = set()
    top = as_dict(document)
    entries = ([as_dict(entry) for entry in as_list(top.get("entry"))]
               if top.get("resourceType") == "Bundle" else [{"resource": top}])
    for entry in entries:
        resource = as_dict(entry.get("resource"))
        given = entry.get("fullUrl")
        full_url = given if isinstance(given, str) else None
        if full_url and ABSOLUTE_URI.match(full_url):
            keys.add(f"url|{full_url}")
        if resource.get("resourceType") == "Patient":
            keys.update("identifier|" + "|".join(found) for identifier in
                        as_list(resource.get("identifier"))
                        if (found := first_identifier([identifier])) is not None)
        _reference_keys(resource, reference_base(full_url), keys, depth=0)
    return keys


def _reference_keys(value: object, base: str | None, keys: set[str], depth: int) -> None:
    if depth > 64:  # no resource is this deep; the importer refuses what is
        return
    if isinstance(value, dict):
        reference = value.get("reference")
        if isinstance(reference, str):
            reference = reference.strip()
            if ABSOLUTE_URI.match(reference):
                keys.add(f"url|{reference}")
            elif base and (match := TYPE_ID_TAIL.search(reference)):
                keys.add(f"url|{base}{match.group(1)}/{match.group(2)}")
        logical = first_identifier([value.get("identifier")]) if "reference" in value or \
            "type" in value or "identifier" in value else None
        if logical is not None:
            keys.add("identifier|" + "|".join(logical))
        for item in value.values():
            _reference_keys(item, base, keys, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _reference_keys(item, base, keys, depth + 1)


def import_groups(groups: Iterable[Sequence[tuple[str, object]]],
                  labels: Mapping[str, str]) -> FhirImport:
    """Each group of (source, document) (a patient's Bundle from an export, or Bundle files
    that belong together) imported on its own, the graphs merged: patients of different
    groups are never joined here; ``labels`` are the sources' labels in the whole input, so
    local IRIs are those a whole import would give."""
    from guidelinekg.fhir_import.importer import Importer

    merged: FhirImport | None = None
    for group in groups:
        imported = Importer(list(group), labels).run()
        if merged is None:
            merged = imported
            continue
        for triple in imported.graph:
            merged.graph.add(triple)
        merged.report += imported.report
        merged.patients += imported.patients
    if merged is None:
        raise InputError("FHIR input", "no FHIR document given")
    return merged
