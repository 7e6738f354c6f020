"""Who each FHIR resource is about, and how resources are named across input files.

The rules (docs/fhir-import.md, "Identity") in one place:

- A Patient's identifiers are those with both a system and a value; one with ``use`` old,
  or with a ``period`` that has an end (the importer has no clock), is retired: it neither
  joins nor names patients (a note says so). Patient resources that share a current
  identifier (the same system and value) are one patient, in one file or in several, and
  through one another (A shares one with B, B another with C: one patient). The patient is
  named by the smallest of the current identifiers of all its Patient resources (system
  first, then value, compared as strings): ``urn:guidelinekg:patient:<system>:<value>``,
  each part percent-encoded, whatever their order. Patient resources made one whose birth
  dates or sexes differ, or that give one identifier system values none of which the other
  gives, are refused (they cannot be one person, or the records contradict each other).
- Without a current identifier, a patient (and every record item) is named by its absolute
  ``Bundle.entry.fullUrl`` (``urn:uuid:...``, ``http://server/fhir/Patient/1``), else by the
  file and the local id: ``urn:guidelinekg:fhir:<file>:<resourceType>/<id>``. ``<file>`` is
  the file's name, or the path as given when two input files share a name. So Patient/tnbc
  of two bundles without identifiers are two patients.
- A reference resolves to a resource anywhere in the input by an absolute reference equal to
  its fullUrl, and within its file by a relative ``Type/id`` (or an absolute URL ending in
  ``Type/id``: a versioned URL, or one to a resource of the file named by its id only),
  unless a fullUrl says the two are on different servers (the resource's own, or that of the
  referencing resource): a reference to another server's ``Patient/p1`` is not this
  server's ``Patient/p1``. A relative reference resolves in another file only through the
  absolute base of the referencing resource's own fullUrl. A reference that carries
  ``identifier`` (a logical reference) names the patient one of whose current identifiers
  it is; an identifier only retired ones hold names no one (ignored, reported).
- A resource is about the patient its ``subject`` (or ``patient``) resolves to. A file that
  holds no Patient resource names its patients by the subjects of its resources (a patient
  without a birth date). A resource without a subject is the only patient's of its file;
  with several patients in the file, the input is refused.
- A Patient whose ``link`` says that it and another Patient record are one person and that
  one of them is the record to use (``replaced-by``, ``replaces``, ``refer``; a link of a type
  the importer does not know) is refused: the importer neither merges patient records nor
  reads them as two people; the records must be merged first. A ``seealso`` link (both
  records in use, equally valid) is reported, and the Patient read as named above.
- A fullUrl or a reference that holds a character no IRI may hold (a space, a control,
  ``{}|\\^`<>"``), or an absolute one the SPARQL engine does not parse as an IRI, is refused
  as it is read (InputError naming the entry and the character): it would become a name in
  the graph that no reader accepts.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rdflib import URIRef

from guidelinekg.grouping import file_groups
from guidelinekg.loading import InputError
from guidelinekg.oxigraph import NamedNode

ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]+$")
TYPE_ID_TAIL = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
PATIENT_PREFIX = "urn:guidelinekg:patient:"
LOCAL_PREFIX = "urn:guidelinekg:fhir:"
SUBJECT_ELEMENTS = ("subject", "patient")
# Characters no IRI holds (RFC 3987): spaces, controls and <>"{}|\^`. A fullUrl or a
# reference with one would be written into the graph as a name that no reader of it (Turtle,
# the SPARQL engine) accepts: the record is refused as it is read.
IRI_ILLEGAL = re.compile(r'[\x00-\x20<>"{}|\\^`\x7f-\x9f]')


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def text_value(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def file_labels(sources: Iterable[str]) -> dict[str, str]:
    """Each source's label in local IRIs: its file name, or the path as given when two
    different files of the input share that name (the same file given twice is one)."""
    distinct: dict[str, Path] = {}
    for source in sources:
        distinct.setdefault(source, Path(source).resolve())
    files_by_name: dict[str, set[Path]] = {}
    for source, resolved in distinct.items():
        files_by_name.setdefault(Path(source).name or source, set()).add(resolved)
    labels = {}
    for source in distinct:
        name = Path(source).name or source
        labels[source] = name if len(files_by_name[name]) == 1 else source
    return labels


def iri_problem(text: str) -> str | None:
    """Why a fullUrl or reference cannot name a resource in the graph, or None. An absolute
    one must also be an IRI as the SPARQL engine parses it (percent-encoding, one #)."""
    bad = IRI_ILLEGAL.search(text)
    if bad is not None:
        char = bad.group()
        return f"the character {char!r} (U+{ord(char):04X}) is not allowed in an IRI"
    if ABSOLUTE_URI.match(text):
        try:
            NamedNode(text)
        except ValueError as error:
            return f"it is not a valid IRI ({error})"
    return None


def checked_iri(text: str, source: str, where: str) -> URIRef:
    """The IRI a fullUrl or reference names, or the InputError that refuses the record,
    naming the file, ``where`` (the entry) and the offending character."""
    problem = iri_problem(text)
    if problem is not None:
        raise InputError(source, f"{where}: {text!r}: {problem}; correct the record")
    return URIRef(text)


def local_iri(label: str, resource_type: str, local_id: str) -> URIRef:
    return URIRef(f"{LOCAL_PREFIX}{quote(label, safe='')}:{resource_type}/"
                  f"{quote(local_id, safe='-.')}")


def identifier_iri(system: str, value: str) -> URIRef:
    return URIRef(f"{PATIENT_PREFIX}{quote(system, safe='')}:{quote(value, safe='')}")


Key = tuple[str, str]  # an Identifier's system and value


def identifier_key(identifier: Any) -> Key | None:
    """An Identifier's (system, value), when it has both."""
    system = text_value(as_dict(identifier).get("system"))
    value = text_value(as_dict(identifier).get("value"))
    return (system, value) if system and value else None


def first_identifier(identifiers: Any) -> Key | None:
    """The first Identifier with both a system and a value (in the order given): a
    Reference's one identifier. A Patient's identity reads all of them
    (:func:`patient_identifiers`)."""
    for identifier in as_list(identifiers):
        if (key := identifier_key(identifier)) is not None:
            return key
    return None


def retired(identifier: Any) -> str | None:
    """Why an Identifier no longer identifies its patient, or None: ``use`` old, or a
    ``period`` with an end (the importer has no clock: an identifier that ends, on whatever
    date, is not one to join records on)."""
    given = as_dict(identifier)
    why = ["use old"] if given.get("use") == "old" else []
    end = as_dict(given.get("period")).get("end")
    if end is not None:
        why.append(f"its period ends {end}")
    return " and ".join(why) or None


@dataclass(frozen=True)
class PatientIdentifiers:
    """A Patient's identifiers as identity reads them."""

    current: tuple[Key, ...]  # they join and name patients
    retired: tuple[tuple[int, Key, str], ...]  # (index, identifier, why): not for identity


def patient_identifiers(resource: dict[str, Any]) -> PatientIdentifiers:
    current: dict[Key, None] = {}
    old: list[tuple[int, Key, str]] = []
    for index, identifier in enumerate(as_list(resource.get("identifier"))):
        key = identifier_key(identifier)
        why = retired(identifier) if key is not None else None
        if key is not None and why is None:
            current.setdefault(key, None)
        elif key is not None and why is not None:
            old.append((index, key, why))
    return PatientIdentifiers(tuple(current), tuple(o for o in old if o[1] not in current))


def shown(key: Key) -> str:
    return f"{key[0]} {key[1]}"


def reference_base(full_url: str | None) -> str | None:
    """The server base of an absolute RESTful URL (``http://x/fhir/`` of
    ``http://x/fhir/Condition/1``): relative references of that resource resolve there."""
    if not full_url or not full_url.startswith(("http://", "https://")):
        return None
    match = TYPE_ID_TAIL.search(full_url)
    return full_url[:match.start(1)] if match else None


@dataclass
class Entry:
    """A resource of the input, with where it came from."""

    resource: dict[str, Any]
    source: str
    position: str  # "entry 3" in a Bundle, "" for a resource on its own
    full_url: str | None
    order: int
    label: str = ""  # the file's label in local IRIs
    contained: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Refused as it is read: a fullUrl names the resource (its IRI, or within its file).
        if self.full_url is not None:
            checked_iri(self.full_url, self.source,
                        f"{self.position or 'the resource'} fullUrl")

    @property
    def type(self) -> str:
        return self.resource["resourceType"]

    @property
    def id(self) -> str | None:
        return text_value(self.resource.get("id"))

    @property
    def local_reference(self) -> str | None:
        return f"{self.type}/{self.id}" if self.id else None

    @property
    def absolute_url(self) -> str | None:
        return self.full_url if self.full_url and ABSOLUTE_URI.match(self.full_url) else None

    @property
    def reference(self) -> str:
        """The gkg:sourceResource value: fullUrl, else resourceType/id."""
        if self.full_url:
            return self.full_url
        if self.id:
            return f"{self.type}/{self.id}"
        return f"{self.type} ({self.position or 'the file'})"

    @property
    def named(self) -> bool:
        return bool(self.id or self.absolute_url)

    @property
    def iri(self) -> URIRef:
        """The item's IRI: its absolute fullUrl, else file and local id."""
        if self.absolute_url:
            return checked_iri(self.absolute_url, self.source, f"{self.position} fullUrl")
        if not self.id:
            raise InputError(self.source, f"{self.reference}: the resource has neither an id "
                             "nor an absolute fullUrl, so its record item cannot be named")
        return local_iri(self.label, self.type, self.id)

    def where(self, element: str) -> str:
        """The resource and one of its elements, for a message: ``urn:uuid:x reference
        (entry 3)``."""
        return f"{self.reference} {element}" + (f" ({self.position})" if self.position else "")

    def names(self) -> list[str | tuple[str, str]]:
        """Its names: the absolute fullUrl (global), and Type/id or a relative fullUrl in
        its file."""
        keys: list[str | tuple[str, str]] = []
        if self.absolute_url:
            keys.append(self.absolute_url)
        elif self.full_url:
            keys.append((self.label, self.full_url))
        if self.local_reference:
            keys.append((self.label, self.local_reference))
        return keys


class Names:
    """The resources of the input by name, and reference resolution between them."""

    def __init__(self) -> None:
        self.by_key: dict[str | tuple[str, str], Entry] = {}

    def named(self, entry: Entry) -> tuple[str, Entry] | None:
        """A resource already read under one of the entry's names, and that name."""
        for key in entry.names():
            if key in self.by_key:
                return (key if isinstance(key, str) else key[1]), self.by_key[key]
        return None

    def add(self, entry: Entry) -> None:
        for key in entry.names():
            self.by_key.setdefault(key, entry)

    def resolve(self, ref: str, within: Entry) -> Entry | None:
        checked_iri(ref, within.source, within.where("reference"))
        match = TYPE_ID_TAIL.search(ref)
        if ABSOLUTE_URI.match(ref):
            found = self.by_key.get(ref)
            if found is None and match and not ref.startswith("urn:"):
                # A versioned URL, or the URL of a resource of this file named by its id
                # only: the same resource unless a fullUrl puts it on another server.
                found = self._in_file(within, f"{match.group(1)}/{match.group(2)}",
                                      ref[:match.start(1)])
            return found
        base = reference_base(within.absolute_url)
        key = f"{match.group(1)}/{match.group(2)}" if match else ref
        found = self._in_file(within, key, base)
        if found is None and base:
            found = self.by_key.get(base + key)
        return found

    def _in_file(self, within: Entry, key: str, server: str | None) -> Entry | None:
        """The resource of ``within``'s file named ``key`` (``Type/id``), unless its fullUrl
        or that of ``within`` names a server other than ``server`` (the reference's)."""
        found = self.by_key.get((within.label, key))
        if found is None or server is None:
            return found
        bases = {reference_base(found.absolute_url), reference_base(within.absolute_url)}
        return found if bases <= {None, server} else None


@dataclass
class Attribution:
    """Which patient each resource of the input is about."""

    patients: dict[URIRef, list[Entry]] = field(default_factory=dict)  # IRI -> Patient entries
    of_entry: dict[int, URIRef] = field(default_factory=dict)  # entry order -> patient IRI
    ignored: dict[int, str] = field(default_factory=dict)  # entry order -> why it is no one's
    notes: dict[int, str] = field(default_factory=dict)  # entry order -> how it was attributed
    # Patients named only by references: IRI -> (the reference, the file that names it)
    named_only: dict[URIRef, tuple[str, str]] = field(default_factory=dict)
    # Patient entry order -> (element, note): how its identifiers made and named its patient
    identity_notes: dict[int, list[tuple[str, str]]] = field(default_factory=dict)

    def sources(self, patient: URIRef) -> list[str]:
        """The files that hold the patient's Patient resource, or name it."""
        found = [entry.source for entry in self.patients.get(patient, [])]
        if patient in self.named_only:
            found.append(self.named_only[patient][1])
        return list(dict.fromkeys(found))


# Patient.link types (FHIR R4 link-type) that say which of two records of one person is the
# one to use: the record must be merged before it is imported.
MERGE_LINKS = {
    "replaced-by": "this Patient record is no longer in use, the one it links to replaces it",
    "replaces": "this Patient record replaces the one it links to, which was merged into it",
    "refer": "the record it links to is the main record of this person",
}
SEE_ALSO = "seealso"


def link_target(link: Any) -> str:
    """How a message names the Patient (or RelatedPerson) a Patient.link points to."""
    other = as_dict(as_dict(link).get("other"))
    identifier = first_identifier(other.get("identifier"))
    return (text_value(other.get("reference"))
            or (f"identifier {identifier[0]} {identifier[1]}" if identifier else None)
            or text_value(other.get("display")) or "a record it does not name")


def _check_links(entry: Entry) -> None:
    """Refuse a Patient whose link says it is one person with another record of which one
    is the record to use: merging them, or reading them as two people, would each be a
    guess the record does not allow (docs/fhir-import.md, "Identity")."""
    for index, link in enumerate(as_list(entry.resource.get("link"))):
        kind = text_value(as_dict(link).get("type"))
        if kind == SEE_ALSO:
            continue
        says = MERGE_LINKS.get(kind or "", "a link of a type the importer does not know (it "
                               "may say the records are one person)")
        raise InputError(entry.source, f"{entry.where(f'link[{index}]')}: Patient.link "
                         f"{kind or '(no type)'} {link_target(link)}: {says}. The importer "
                         "does not follow Patient.link "
                         "(it neither merges two patient records nor reads them as two "
                         "people): merge the records first (one Patient without the link, "
                         "every resource naming it) and import the merged record")


def _joined_by(one: PatientIdentifiers, other: PatientIdentifiers) -> str:
    """What makes two Patient resources one patient, for a message."""
    shared = [key for key in one.current if key in other.current]
    if not shared:
        return "identifiers they each share with other Patient records of the input"
    return ("the same identifier " if len(shared) == 1 else "the same identifiers ") + \
        ", ".join(map(shown, sorted(shared)))


def _by_system(found: PatientIdentifiers) -> dict[str, set[str]]:
    systems: dict[str, set[str]] = {}
    for system, value in found.current:
        systems.setdefault(system, set()).add(value)
    return systems


def _check_identifiers(members: Sequence[tuple[Entry, PatientIdentifiers]]) -> None:
    """Patient resources made one patient by a shared identifier must not give one identifier
    system values none of which the other gives (an MRN 1 and an MRN 2): the records
    contradict each other, and neither merging nor splitting them is safe."""
    for index, (first, first_ids) in enumerate(members):
        first_systems = _by_system(first_ids)
        for entry, ids in members[index + 1:]:
            systems = _by_system(ids)
            for system in sorted(first_systems.keys() & systems.keys()):
                if first_systems[system].isdisjoint(systems[system]):
                    values = (", ".join(sorted(first_systems[system])),
                              ", ".join(sorted(systems[system])))
                    raise InputError(", ".join(dict.fromkeys([first.source, entry.source])),
                                     f"{first.reference} ({first.source}) and {entry.reference} "
                                     f"({entry.source}) have {_joined_by(first_ids, ids)} but "
                                     f"other identifiers of the system {system} ({values[0]}; "
                                     f"{values[1]}): the records contradict each other, and the "
                                     "importer neither merges nor splits them; correct the "
                                     "identifiers")


def _check_one_person(members: Sequence[tuple[Entry, PatientIdentifiers]]) -> None:
    """Patient resources made one patient must not describe two people."""
    for element, what in (("birthDate", "birth dates"), ("gender", "sexes")):
        given = [(entry, ids, entry.resource[element]) for entry, ids in members
                 if entry.resource.get(element) is not None]
        for entry, ids, value in given[1:]:
            first, first_ids, first_value = given[0]
            if value != first_value:
                sources = ", ".join(dict.fromkeys([first.source, entry.source]))
                raise InputError(sources, f"{first.reference} ({first.source}) and "
                                 f"{entry.reference} ({entry.source}) have "
                                 f"{_joined_by(first_ids, ids)} but their "
                                 f"{what} differ ({first_value}, {value}): they cannot be one "
                                 "patient; correct the identifier or the record")


class _Attributor:
    """Builds the Attribution of a set of entries (see the module's rules)."""

    def __init__(self, names: Names) -> None:
        self.names = names
        self.result = Attribution()
        self.in_file: dict[str, list[URIRef]] = {}  # file -> its Patient resources' IRIs
        self.by_identifier: dict[Key, URIRef] = {}  # a current identifier -> its patient
        # an identifier that only retired ones hold -> (a Patient holding it, why retired)
        self.retired_only: dict[Key, tuple[Entry, str]] = {}

    def add_patients(self, entries: Iterable[Entry]) -> None:
        """Patient resources sharing a current identifier are one patient (union-find),
        named by the smallest current identifier of them all."""
        patients = [(entry, patient_identifiers(entry.resource)) for entry in entries]
        for entry, _ids in patients:
            _check_links(entry)
        first_with: dict[Key, int] = {}
        links = [(first_with.setdefault(key, index), index)
                 for index, (_entry, ids) in enumerate(patients) for key in ids.current]
        iris: dict[int, URIRef] = {}
        for group in file_groups(len(patients), links):
            members = [patients[index] for index in group]
            keys = {key for _entry, ids in members for key in ids.current}
            _check_identifiers(members)
            _check_one_person(members)
            iri = identifier_iri(*min(keys)) if keys else members[0][0].iri
            self.result.patients.setdefault(iri, []).extend(entry for entry, _ids in members)
            self.by_identifier.update(dict.fromkeys(keys, iri))
            iris.update(dict.fromkeys(group, iri))
        for index, (entry, _ids) in enumerate(patients):
            self.result.of_entry[entry.order] = iris[index]
            found = self.in_file.setdefault(entry.source, [])
            if iris[index] not in found:
                found.append(iris[index])
        all_ids = {entry.order: ids for entry, ids in patients}
        for entry, ids in patients:
            self.note_identity(entry, ids, all_ids)

    def note_identity(self, entry: Entry, ids: PatientIdentifiers,
                      all_ids: dict[int, PatientIdentifiers]) -> None:
        """The report's notes on a Patient: the records it is one patient with, and each
        retired identifier (not used)."""
        iri = self.result.of_entry[entry.order]
        notes = self.result.identity_notes.setdefault(entry.order, [])
        first = self.result.patients[iri][0]
        if first is not entry:
            notes.append(("", f"the same patient as {first.reference} of {first.source} "
                          f"({_joined_by(all_ids[first.order], ids)}): one patient, {iri}"))
        for index, key, why in ids.retired:
            holder = self.by_identifier.get(key)
            said = (f"identifier {shown(key)}: {why}: not used for identity (it neither makes "
                    "this Patient one patient with another record nor names it)")
            if holder is not None and holder != iri:
                said += f"; it is a current identifier of patient {holder} of this input, " \
                    "read apart"
            elif holder is None:
                self.retired_only.setdefault(key, (entry, why))
            notes.append((f"identifier[{index}]", said))

    def attribute(self, entry: Entry) -> bool:
        """Attribute one clinical resource; False when it names no subject at all."""
        reference = next((as_dict(entry.resource[name]) for name in SUBJECT_ELEMENTS
                          if name in entry.resource), None)
        if reference is None:
            return False
        outcome = self.subject(entry, reference)
        if isinstance(outcome, URIRef):
            self.result.of_entry[entry.order] = outcome
        else:
            self.result.ignored[entry.order] = outcome
        return True

    def subject(self, entry: Entry, reference: dict[str, Any]) -> URIRef | str:
        """The patient a subject reference names, or why it names none of the input."""
        ref = text_value(reference.get("reference"))
        target = self.names.resolve(ref, entry) if ref else None
        if target is not None:
            if target.type != "Patient":
                return f"its subject {ref} is a {target.type}, not a patient"
            return self.result.of_entry[target.order]
        identifier = first_identifier(reference.get("identifier"))
        if identifier:
            return self.logical(identifier, ref, entry)
        if ref is None:
            return "its subject has neither a reference nor an identifier: it names no patient"
        if self.in_file.get(entry.source):
            shown = ", ".join(map(str, self.in_file[entry.source]))
            return (f"its subject {ref} is not a patient of this input (its file holds "
                    f"{shown})")
        match = TYPE_ID_TAIL.search(ref)
        if match and match.group(1) != "Patient":
            return f"its subject {ref} is not a patient"
        if ABSOLUTE_URI.match(ref):
            return self.named_only(checked_iri(ref, entry.source, entry.where("subject")),
                                   ref, entry)
        if match is None:
            return f"its subject {ref} is not a reference the importer can resolve"
        return self.named_only(local_iri(entry.label, "Patient", match.group(2)), ref, entry)

    def logical(self, key: Key, ref: str | None, entry: Entry) -> URIRef | str:
        """The patient a logical reference names: the one with that current identifier, or
        one of its own (no Patient resource); no one's when only a retired identifier is
        that identifier (whose record it is now is not known)."""
        if key in self.by_identifier:
            return self.by_identifier[key]
        if key in self.retired_only:
            holder, why = self.retired_only[key]
            return (f"its subject names the identifier {shown(key)}, which {holder.reference} "
                    f"of {holder.source} holds as retired ({why}) and no Patient of the input "
                    "holds as current: whose record it is now is not known; name the subject "
                    "by a current identifier or a reference")
        return self.named_only(identifier_iri(*key), ref or f"identifier {shown(key)}", entry)

    def named_only(self, iri: URIRef, ref: str, entry: Entry) -> URIRef:
        if iri not in self.result.patients:
            self.result.patients[iri] = []
            self.result.named_only[iri] = (ref, entry.source)
        return iri

    def attribute_subjectless(self, entries: Sequence[Entry]) -> None:
        by_file: dict[str, list[Entry]] = {}
        for entry in entries:
            by_file.setdefault(entry.source, []).append(entry)
        for source, found in by_file.items():
            patients = self.in_file.get(source, [])
            if len(patients) > 1:
                names = ", ".join(entry.reference for entry in found)
                what = "1 resource names" if len(found) == 1 else f"{len(found)} resources name"
                raise InputError(source, f"{what} no subject ({names}) "
                                 f"and the file holds {len(patients)} patients "
                                 f"({', '.join(map(str, patients))}): the importer cannot "
                                 "tell whose they are; give each its subject")
            for entry in found:
                if patients:
                    self.result.of_entry[entry.order] = patients[0]
                    self.result.notes[entry.order] = (
                        f"no subject: attributed to the only patient of its file, {patients[0]}")
                else:
                    self.result.ignored[entry.order] = (
                        "it names no subject, and its file holds no Patient resource: it is "
                        "not known to be about a patient")


def attribute(entries: Sequence[Entry], names: Names, clinical: Collection[str]) -> Attribution:
    """Name the patients of the input and say which patient each clinical resource is about."""
    attributor = _Attributor(names)
    attributor.add_patients(e for e in entries if e.type == "Patient")
    subjectless = [entry for entry in entries
                   if entry.type in clinical and not attributor.attribute(entry)]
    attributor.attribute_subjectless(subjectless)
    return attributor.result
