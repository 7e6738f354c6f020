"""FHIR Bulk Data (``$export``) input: NDJSON files, one per resource type, one resource a
line, read as one small Bundle per patient.

An export writes ``Patient.ndjson``, ``Condition.ndjson``, ``Observation.ndjson``... with
every resource on its own line, in no particular order of patient. A patient's resources are
gathered by the patient they name (``subject`` or ``patient``: ``Patient/<id>``, the same at
the end of an absolute URL, or a logical reference by identifier that a Patient resource
carries). A resource id means something only in its export (the folder of its file):
``Patient/1`` of two exports are two patients, unless their records say they are one (they
share a current identifier, as Bundle files that share one are imported together). A
patient's resources of each export are one Bundle; the Bundles of one person (from several
exports) are imported together. The Medication resources a patient's orders reference, of the
same export, are added to its Bundle (they name no patient; an export writes each once). So
an export and Bundles of the same patients give the same graph when the patients carry
identifiers.

Nothing is dropped silently: a clinical resource that names no patient, or a line that is
not a JSON resource, is returned as a problem to report, never guessed onto a patient. A
line that cannot be read (not JSON, not a resource, bytes that are not UTF-8) also refuses
each patient it names (:func:`unreadable_owners`): derived without it, that patient's record
would be read as whole.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from guidelinekg.fhir_identity import (
    ABSOLUTE_URI,
    SUBJECT_ELEMENTS,
    TYPE_ID_TAIL,
    Key,
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
NOT_A_RESOURCE = "the line is not a FHIR resource (a JSON object with resourceType)"
# The first element of the key of a patient that no Patient resource holds, named only by
# an identifier (no export label is this with a key "identifier|...").
NAMED_BY_IDENTIFIER = "identifier"

# A resource of an export: (the export, its id there). An id names nothing beyond its export.
Node = tuple[str, str]
# A patient (person) of the input: (an export, ``Patient/<id>``) of the first of its Patient
# resources, or (NAMED_BY_IDENTIFIER, ``identifier|<system>|<value>``) of a patient that
# references name only by an identifier no Patient resource holds.
PatientKey = tuple[str, str]


@dataclass(frozen=True)
class BulkProblem:
    """A line of the export that cannot be given to a patient: said, never dropped."""

    source: str
    line: int | None  # None: the problem is no one line's (a patient's whole input)
    resource: str
    because: str


@dataclass
class PatientDirectory:
    """What the exports say about patients and shared resources, read before the rest:
    each identifier's Patient, and every Medication resource, each as (export, id)."""

    by_identifier: dict[Key, Node] = field(default_factory=dict)
    medications: dict[Node, dict[str, Any]] = field(default_factory=dict)
    # Patients that share a current identifier, of one export or of several: one person,
    # whose Bundles are imported together, which the importer then reads as one patient, as
    # it reads Bundles that share one.
    same_person: UnionFind[Node] = field(default_factory=UnionFind)
    # Identifiers held only as retired (use old, an ended period): a logical reference to
    # one goes to its holder's bundle, where the importer reports it and reads it no further.
    by_retired_identifier: dict[Key, Node] = field(default_factory=dict)
    # Medication lines that cannot be read (their bytes are not UTF-8), and why: a patient
    # whose order references one is refused, not read as if the order named no medicine.
    unreadable_medications: dict[Node, str] = field(default_factory=dict)

    def add_line(self, line: ReadLine, export: str) -> None:
        """A line of the export ``export``, as read: a Patient or Medication resource is
        added. Of a line readable only with its bytes that are not UTF-8 replaced, a Patient
        is added all the same (its lines go to it, and it is refused for this one), and a
        Medication is noted as unreadable."""
        if isinstance(line, dict):
            if line["resourceType"] in ("Patient", "Medication"):
                self.add(line, export)
            return
        read = line.resource
        if read is None or not isinstance(read.get("id"), str):
            return
        if read["resourceType"] == "Patient":
            self.add(read, export)
        elif read["resourceType"] == "Medication":
            self.unreadable_medications[(export, read["id"])] = line.because

    def medicines_only(self) -> PatientDirectory:
        """What a patient's import needs of the directory: the Medications, readable or
        not."""
        return PatientDirectory(medications=self.medications,
                                unreadable_medications=self.unreadable_medications)

    def add(self, resource: dict[str, Any], export: str) -> None:
        """A Patient or Medication resource of the export ``export``."""
        kind, local_id = resource.get("resourceType"), resource.get("id")
        if not isinstance(local_id, str):
            return
        node = (export, local_id)
        if kind == "Patient":
            identifiers = patient_identifiers(resource)
            for key in identifiers.current:
                holder = self.by_identifier.setdefault(key, node)
                self.same_person.union(holder, node)
            for _index, key, _why in identifiers.retired:
                self.by_retired_identifier.setdefault(key, node)
        elif kind == "Medication":
            self.medications[node] = resource

    def patient_of(self, export: str, local_id: str) -> PatientKey:
        """The patient of ``Patient/<local_id>`` of the export ``export``: that of the first
        Patient resource of its person."""
        root_export, root_id = self.same_person.find((export, local_id))
        return root_export, f"Patient/{root_id}"

    def holder(self, key: Key) -> PatientKey | None:
        """The patient of a logical reference's identifier, in any export: its current
        holder, else the Patient that held it as retired; None for an identifier no Patient
        holds."""
        found = self.by_identifier.get(key) or self.by_retired_identifier.get(key)
        return self.patient_of(*found) if found is not None else None


@dataclass(frozen=True)
class Unreadable:
    """A line that is not a FHIR resource, and why (what the JSON reader says of it), with
    what tells whose record it belongs to (never read for facts): the resource it reads as
    when only its bytes that are not UTF-8 stand in the way (replaced), else the ids of the
    Patients its text references (``Patient/<id>``). An export's report of an error (an
    OperationOutcome of severity error or fatal, the files its manifest lists under
    ``error``) is one too: the part of a record it concerns did not reach the export, so the
    patients it names are refused as for a line that cannot be read."""

    because: str
    resource: dict[str, Any] | None = None
    patients: tuple[str, ...] = ()


ReadLine = dict[str, Any] | Unreadable  # a line read: its resource, or why it is none
# A reference to a Patient in a line's text (FHIR ids: letters, digits, '-' and '.').
PATIENT_REFERENCE_TEXT = re.compile(r"Patient/([A-Za-z0-9\-.]{1,64})")


def ndjson_lines(path: Path) -> Iterator[tuple[int, ReadLine, str]]:
    """(line number, the resource or why the line is none, the line) for each non-blank line
    of a file, read as a stream."""
    try:
        stream = path.open("rb")
    except OSError as error:
        raise InputError(path, f"cannot read the file ({error.strerror})") from None
    with stream:
        for number, raw in enumerate(stream, start=1):
            if len(raw) > MAX_LINE_BYTES:
                raise InputError(path, f"line {number} is longer than {MAX_LINE_BYTES} "
                                       "bytes: not an NDJSON resource", number)
            text, resource = read_raw_line(raw, path)
            if text:
                yield number, resource, text


def read_raw_line(raw: bytes, source: Path | str) -> tuple[str, ReadLine]:
    """A line's text, without the byte order mark an export file may start with (a .json
    file's is accepted too: both are read as utf-8-sig), and its resource or why it is none
    (:func:`read_line`). Bytes that are not UTF-8 make the line unreadable, as they make a
    Bundle file unreadable: its text has them replaced (U+FFFD), never read as facts."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        text = _stripped(raw.decode("utf-8", errors="replace"))
        read = read_line(text, source)
        # The position only: Hadoop's text reader (Spark) keeps no more of it.
        because = (f"the line is not UTF-8 text (from byte {error.start + 1}), so not a FHIR "
                   "resource")
        if isinstance(read, Unreadable):
            return text, Unreadable(because, patients=read.patients)
        return text, Unreadable(because, resource=read)
    text = _stripped(text)
    return text, read_line(text, source)


def _stripped(text: str) -> str:
    return text.strip().removeprefix(BOM).strip()


def read_line(text: str, source: Path | str) -> ReadLine:
    """A line's resource, read as the importer reads JSON (numbers as exact decimals), or
    why it is none: the JSON reader's words when it cannot read the line (those a Bundle
    file of the same text is refused with), else that it is no resource. A leading byte
    order mark is no part of it: the first line of a file saved with one, or of each file of
    an export concatenated on standard input, keeps it."""
    from guidelinekg.fhir_import.datatypes import parse_json_text

    try:
        document = parse_json_text(text.removeprefix(BOM), source)
    except InputError as error:
        return Unreadable(f"the line is not a FHIR resource: {error.detail}",
                          patients=_referenced_patients(text))
    if not _is_resource(document):
        return Unreadable(NOT_A_RESOURCE, patients=_referenced_patients(text))
    reported = _export_error(document)
    if reported is not None:
        return Unreadable(reported, patients=_referenced_patients(text))
    return document


def _export_error(document: dict[str, Any]) -> str | None:
    """Why an OperationOutcome line is an export's report that something was not exported
    (an issue of severity error or fatal: its diagnostics, or its code), else None: a
    warning or a note is a line given to no patient, listed as any other."""
    if document["resourceType"] != "OperationOutcome":
        return None
    issues = [issue for issue in as_list(document.get("issue")) if isinstance(issue, dict)
              and issue.get("severity") in ("error", "fatal")]
    if not issues:
        return None
    said = "; ".join(_issue_words(issue) for issue in issues[:3])
    more = f" (and {len(issues) - 3} more)" if len(issues) > 3 else ""
    return (f"the export reports an error here (OperationOutcome: {said}{more}): what it "
            "concerns is missing from the export")


def _issue_words(issue: dict[str, Any]) -> str:
    """An issue's diagnostics (else its details' text, else its code), printable and short."""
    details = issue.get("details")
    return _printable(issue.get("diagnostics") or (details.get("text") if isinstance(
        details, dict) else None) or issue.get("code") or "no detail")


def _printable(words: object, limit: int = 200) -> str:
    shown = "".join(c if c.isprintable() else " " for c in str(words))
    return shown[:limit] + ("..." if len(shown) > limit else "")


# An export's manifest as the input gives it: its export, where it was read, its JSON.
Manifest = tuple[str, str, object]


def export_servers(manifests: Iterable[Manifest]) -> dict[str, str]:
    """Each export's FHIR server, from its manifest's request URL (:func:`export_server`),
    for the exports whose manifest names one."""
    return {export: server for export, _source, document in manifests
            if (server := export_server(document))}


def unread_export_errors(manifests: Iterable[Manifest],
                         files: Iterable[tuple[str, str]]) -> list[BulkProblem]:
    """The files the exports' manifests (each: its export, where it was read, its JSON) list
    under ``error`` that are not among the files given (each: its export, its name),
    compared by file name: each a problem. What a server could not export is said there,
    and only there: without them, any of the export's records may be incomplete, and which
    is not known."""
    given: dict[str, set[str]] = defaultdict(set)
    for export, name in files:
        given[export].add(name.rsplit("/", 1)[-1])
    problems = []
    for export, source, manifest in manifests:
        for entry in as_list(as_dict(manifest).get("error")):
            url = as_dict(entry).get("url")
            name = url.split("?", 1)[0].rsplit("/", 1)[-1] if isinstance(url, str) else ""
            if name and name in given[export]:
                continue
            problems.append(BulkProblem(source, None, "", (
                f"the export's manifest lists {_printable(name or url)!r} under error (the "
                "server's report of what it could not export), and it is not in the input: "
                "any of the export's records may be incomplete; give the file with the "
                "export")))
    return problems


def _referenced_patients(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(PATIENT_REFERENCE_TEXT.findall(text)))


def _is_resource(document: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(document, dict) and isinstance(document.get("resourceType"), str)


def read_directory(paths: Iterable[Path], export_of: Callable[[Path], str] = lambda path:
                   export_label(path)) -> PatientDirectory:
    """The first pass over the exports: Patient identifiers and Medication resources, each
    of its file's export (``export_of``: its folder)."""
    directory = PatientDirectory()
    for path in paths:
        export = export_of(path)
        for _number, resource, _text in ndjson_lines(path):
            directory.add_line(resource, export)
    return directory


def patient_key(resource: dict[str, Any], directory: PatientDirectory, export: str
                ) -> PatientKey | None:
    """The patient a resource of the export ``export`` belongs to, or None."""
    if resource.get("resourceType") == "Patient":
        local_id = resource.get("id")
        return (directory.patient_of(export, local_id)
                if isinstance(local_id, str) and local_id else None)
    for element in SUBJECT_ELEMENTS:
        reference = as_dict(resource.get(element))
        if not reference:
            continue
        text = reference.get("reference")
        if isinstance(text, str):
            match = TYPE_ID_TAIL.search(text.strip())
            if match and match.group(1) == "Patient":
                return directory.patient_of(export, match.group(2))
            return None
        logical = first_identifier([reference.get("identifier")])
        if logical is None:
            return None
        holder = directory.holder(logical)
        if holder is not None:
            return holder
        # A patient named only by identifier: one of its own, as in a Bundle (the same one
        # whichever export names it, as the identifier is).
        return NAMED_BY_IDENTIFIER, "identifier|" + "|".join(logical)
    return None


def referenced_medications(resources: Iterable[dict[str, Any]],
                           directory: PatientDirectory, export: str
                           ) -> list[dict[str, Any]]:
    """The Medication resources of the export that the patient's resources of the export
    reference, each once."""
    found: dict[str, dict[str, Any]] = {}
    for resource in resources:
        reference = as_dict(resource.get("medicationReference")).get("reference")
        if not isinstance(reference, str):
            continue
        # Relative, absolute or versioned (Medication/m1/_history/2), as the importer reads it.
        match = TYPE_ID_TAIL.search(reference.strip())
        if match is None or match.group(1) != "Medication":
            continue
        node = (export, match.group(2))
        if node in directory.unreadable_medications:
            raise InputError(export, f"{resource['resourceType']}/{resource.get('id', '?')} "
                             f"references {reference.strip()}, whose line cannot be read "
                             f"({directory.unreadable_medications[node]}): which medicine "
                             "it orders is not known")
        medication = directory.medications.get(node)
        if medication is not None:
            found.setdefault(match.group(2), medication)
    return list(found.values())


def patient_bundle(resources: list[dict[str, Any]], directory: PatientDirectory,
                   server: str | None = None, *, export: str) -> dict[str, Any]:
    """One patient's resources of the export ``export`` (and the Medications of the export
    they reference) as a collection Bundle; references stay relative (``Patient/<id>``), as
    the export wrote them. With the server the export came from (its manifest's request
    URL), each entry's fullUrl is the resource's URL there, so a resource is named as that
    server's Bundles name it."""
    entries = []
    for resource in [*resources, *referenced_medications(resources, directory, export)]:
        entry: dict[str, Any] = {"resource": resource}
        local_id = resource.get("id")
        if server and isinstance(local_id, str) and local_id:
            entry["fullUrl"] = f"{server}{resource['resourceType']}/{local_id}"
        entries.append(entry)
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def patient_documents(resources: Iterable[tuple[str, dict[str, Any]]],
                      directory: PatientDirectory, servers: Mapping[str, str]
                      ) -> list[tuple[str, dict[str, Any]]]:
    """A patient's resources (export, resource), in input order, as what one import reads:
    (export, its Bundle of them) for each export, in the order they first come; the
    Bundles of a person's several exports are imported together, as Bundle files that
    share an identifier are."""
    by_export: dict[str, list[dict[str, Any]]] = {}
    for export, resource in resources:
        by_export.setdefault(export, []).append(resource)
    return [(export, patient_bundle(found, directory, servers.get(export), export=export))
            for export, found in by_export.items()]


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


def owner_of(source: str, number: int, resource: ReadLine, directory: PatientDirectory,
             clinical_types: frozenset[str], *, export: str
             ) -> tuple[PatientKey | None, BulkProblem | None]:
    """The patient of line ``number`` of the file ``source`` of the export ``export``, or
    the problem to report, naming the file (and, for a line that is no resource, why).
    Medication resources belong to no patient and are no problem (each Bundle of their
    export that references one gets it)."""
    if isinstance(resource, Unreadable):
        return None, BulkProblem(source, number, "", resource.because)
    key = patient_key(resource, directory, export)
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


def unreadable_owners(line: Unreadable, directory: PatientDirectory, export: str
                      ) -> list[PatientKey]:
    """The patients whose records an unreadable line of the export ``export`` would belong
    to: that of the resource it reads as with its bytes that are not UTF-8 replaced, else
    each Patient its text references. Each is refused for it (its record would be
    incomplete, and which facts the line held is not known); a line that names none is a
    line given to no patient."""
    if line.resource is not None:
        key = patient_key(line.resource, directory, export)
        return [] if key is None else [key]
    return list(dict.fromkeys(directory.patient_of(export, local_id)
                              for local_id in line.patients))


def unreadable_refusal(source: str, number: int, because: str, patient: PatientKey
                       ) -> InputError:
    """Why a patient named by an unreadable line is refused."""
    return InputError(source, f"{because}; the line names {patient_words(patient)}, whose "
                              "record is incomplete without it: that patient is refused", number)


def patient_words(patient: PatientKey) -> str:
    """A patient key as a message names it."""
    first, second = patient
    if first == NAMED_BY_IDENTIFIER:
        return f"the patient of identifier {second.removeprefix('identifier|')}"
    return f"{second} of the export {first}"


def group_by_patient(lines: Iterable[tuple[str, int, str]], directory: PatientDirectory,
                     clinical_types: Iterable[str]
                     ) -> tuple[dict[PatientKey, list[tuple[str, dict[str, Any]]]],
                                list[BulkProblem]]:
    """Lines (their export, line number, text) grouped by patient, each resource with its
    export, in input order (:func:`patient_documents` makes a group what one import reads):
    ``Patient/1`` of two exports are two patients unless they share an identifier; with the
    problems (:func:`owner_of`)."""
    clinical = frozenset(clinical_types)
    groups: dict[PatientKey, list[tuple[str, dict[str, Any]]]] = {}
    problems: list[BulkProblem] = []
    for export, number, text in lines:
        resource = read_line(text, export)
        key, problem = owner_of(export, number, resource, directory, clinical, export=export)
        if key is not None and isinstance(resource, dict):
            groups.setdefault(key, []).append((export, resource))
        elif problem is not None:
            problems.append(problem)
    return groups, problems


def is_ndjson(path: Path) -> bool:
    return path.suffix.lower() == NDJSON_SUFFIX


def export_label(path: Path) -> str:
    """The export an NDJSON file belongs to: its folder. ``Patient/1`` of two exports are two
    patients (the id alone does not say they are one)."""
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
