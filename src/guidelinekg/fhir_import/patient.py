"""The input's resources and patients: the entries of Bundles (read once each), who each
resource is about (:mod:`guidelinekg.fhir_identity`) and the Patient resources themselves."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rdflib import Literal
from rdflib.namespace import RDF

from guidelinekg.fhir_identity import (
    Entry,
    as_dict,
    as_list,
    attribute,
    checked_iri,
    link_target,
)
from guidelinekg.fhir_import.base import ImporterBase, mark_absent
from guidelinekg.fhir_import.bundles import (
    Deletion,
    failure,
    incompleteness,
    is_subsetted,
    subsetted_message,
)
from guidelinekg.fhir_import.context import Context, Item
from guidelinekg.fhir_import.datatypes import absent_reason, choice, describe_json
from guidelinekg.fhir_import.report import AS_GIVEN, IGNORED, NOTE, ReportEntry
from guidelinekg.loading import InputError
from guidelinekg.namespaces import GKG

# Meta elements the importer reads (a Condition's mCODE profile): two copies of a resource
# that differ in one are different resources.
META_READ = ("profile",)


def meta_difference(first: dict[str, Any], second: dict[str, Any]) -> str | None:
    """How two copies of one resource differ in their meta only (``versionId 1 and 2``), or
    None when they differ in anything else, or in a meta element the importer reads."""
    if {k: v for k, v in first.items() if k != "meta"} != {
            k: v for k, v in second.items() if k != "meta"}:
        return None
    metas = as_dict(first.get("meta")), as_dict(second.get("meta"))
    differing = [key for key in dict.fromkeys([*metas[0], *metas[1]])
                 if metas[0].get(key) != metas[1].get(key)]
    if any(key in META_READ for key in differing) or not isinstance(
            first.get("meta", {}), dict) or not isinstance(second.get("meta", {}), dict):
        return None

    def shown(value: Any) -> str:
        if value is None:
            return "none"
        return value if isinstance(value, str) else json.dumps(value, default=str)

    if not differing:  # an empty meta and none
        return f"meta {shown(first.get('meta'))} and {shown(second.get('meta'))}"
    return ", ".join(f"{key} {shown(metas[0].get(key))} and {shown(metas[1].get(key))}"
                     for key in differing)


class PatientImport(ImporterBase):
    def new_entry(self, resource: dict[str, Any], source: str, position: str,
                  full_url: str | None) -> Entry:
        return Entry(resource, source, position, full_url, len(self.entries),
                     self.labels[source])

    def collect(self) -> None:
        for source, data in self.documents:
            if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
                raise InputError(source, f"not FHIR JSON: {describe_json(data)} "
                                 "(a FHIR resource or Bundle has a resourceType)")
            if data["resourceType"] == "Bundle":
                self._collect_bundle(source, data)
            else:
                self._add_entry(self.new_entry(data, source, "", None))
        self.check_deletions()

    def _collect_bundle(self, source: str, bundle: dict[str, Any]) -> None:
        raw_entries = bundle.get("entry", [])
        if not isinstance(raw_entries, list):
            raise InputError(source, "Bundle.entry is not a list")
        name = bundle.get("id") or Path(source).name
        if is_subsetted(bundle):
            raise InputError(source, f"Bundle {name}: {subsetted_message('Bundle')}")
        refusal = incompleteness(bundle, raw_entries, name)
        if refusal is not None:
            raise InputError(source, refusal)
        self.file_reports.append(ReportEntry(
            source, "Bundle", NOTE,
            f"Bundle {name} (type {bundle.get('type', 'not given')}, {len(raw_entries)} entries); "
            "Bundle.timestamp is not read (it is not the evaluation date)", source=source))
        for index, raw in enumerate(raw_entries):
            self._collect_bundle_entry(source, f"entry {index}", as_dict(raw))

    def _collect_bundle_entry(self, source: str, position: str, raw: dict[str, Any]) -> None:
        resource = raw.get("resource")
        full_url = raw.get("fullUrl") if isinstance(raw.get("fullUrl"), str) else None
        request = as_dict(raw.get("request"))
        delete = request.get("method") == "DELETE"
        url = request.get("url") if isinstance(request.get("url"), str) else None
        failed = failure(raw, position)
        if failed is not None:  # not needed by the record: incompleteness refuses the others
            self.file_reports.append(ReportEntry(
                full_url or f"{source} {position}", "Bundle.entry", IGNORED,
                f"{failed.text()}: the request of this entry failed; it names "
                f"{', '.join(failed.types)}, no resource the record is read from",
                source=source))
        if not isinstance(resource, dict):
            if delete:
                self.deletions.append(Deletion(source, position, full_url, url, False))
            elif failed is None:
                self.file_reports.append(ReportEntry(
                    full_url or f"{source} {position}", "Bundle.entry", IGNORED,
                    "the entry holds no resource", source=source))
            return
        if not isinstance(resource.get("resourceType"), str):
            raise InputError(source, f"{position}: not a FHIR resource (no resourceType)")
        entry = self.new_entry(resource, source, position, full_url)
        if delete:
            self.deletions.append(Deletion(source, position, full_url,
                                           url if url is not None else entry.local_reference, True))
            self.entries.append(entry)
            self.skipped.add(entry.order)
            self.add_report(entry, ReportEntry(entry.reference, entry.type, IGNORED,
                                               "request method DELETE: not a record entry",
                                               source=source))
            return
        self._add_entry(entry)

    def check_deletions(self) -> None:
        """A request DELETE of a resource the input holds refuses the input: it says both
        that the resource exists and that it is deleted. A conditional delete refuses it
        when the input holds a resource of its type (which one it deletes is unknown). A
        DELETE of a resource the input does not hold is reported."""
        remedy = "import the record as it stands after the delete, or correct the Bundle"
        for deletion in self.deletions:
            where = f"{deletion.position}: request DELETE"
            if deletion.url is None:
                raise InputError(deletion.source, f"{where} names no url: the importer cannot "
                                 "tell which resource it deletes, so the input cannot be read; "
                                 "correct the Bundle")
            kind = deletion.conditional_type
            if kind is not None:
                held = [e for e in self.entries if e.type == kind and e.order not in self.skipped]
                if held:
                    raise InputError(deletion.source, f"{where} {deletion.url} deletes the "
                                     f"{kind} resources its search matches, and the input holds "
                                     f"{len(held)} {kind} resource{'s' if len(held) > 1 else ''}"
                                     ": the importer cannot tell which of them it deletes, so "
                                     f"it cannot be read; {remedy}")
            else:
                found = self.deleted_entry(deletion)
                if found is not None:
                    held_at = found.reference + (f", {found.position}" if found.position else "")
                    held_at += f" of {found.source}" if found.source != deletion.source else ""
                    raise InputError(deletion.source, f"{where} {deletion.url} deletes a "
                                     f"resource the input holds ({held_at}): the input says both "
                                     "that it exists and that it is deleted, so it cannot be "
                                     f"read; {remedy}")
            if not deletion.reported:
                self.file_reports.append(ReportEntry(
                    deletion.full_url or f"{deletion.source} {deletion.position}",
                    "Bundle.entry", IGNORED, f"request DELETE {deletion.url}: it deletes no "
                    "resource the input holds; the entry is not read", source=deletion.source))

    def deleted_entry(self, deletion: Deletion) -> Entry | None:
        """The resource of the input a (not conditional) DELETE names, if any."""
        assert deletion.url is not None
        checked_iri(deletion.url, deletion.source, f"{deletion.position} request.url")
        within = Entry({"resourceType": "Bundle"}, deletion.source, deletion.position,
                       deletion.full_url, -1, self.labels[deletion.source])
        return self.names.resolve(deletion.url, within)

    def _add_entry(self, entry: Entry) -> None:
        self.refuse_subsetted(entry)
        for contained in as_list(entry.resource.get("contained")):
            if isinstance(contained, dict) and isinstance(contained.get("id"), str):
                entry.contained["#" + contained["id"]] = contained
        named = self.names.named(entry)
        if named is not None:
            key, other = named
            detail = f"the same resource as {other.position or 'the resource'} of {other.source}"
            if other.resource != entry.resource:
                meta = meta_difference(other.resource, entry.resource)
                if meta is None:
                    raise InputError(entry.source, f"two different resources are named {key} "
                                     f"({other.source} {other.position}, "
                                     f"{entry.position or 'this file'})")
                this = entry.position or f"the resource of {entry.source}"
                detail = f"{this} is {detail} but for its meta ({meta})"
            self.entries.append(entry)
            self.skipped.add(entry.order)
            self.add_report(entry, ReportEntry(
                entry.reference, entry.type, IGNORED, f"{detail}: read once",
                source=entry.source))
            return
        self.entries.append(entry)
        self.names.add(entry)

    def refuse_subsetted(self, entry: Entry) -> None:
        """A resource (or a resource it contains) tagged SUBSETTED is a copy with elements
        left out: a Condition without its verificationStatus would be read as present, an
        Observation without its value as unknown. The input is refused."""
        found = [("", entry.resource)] + [
            (f"contained[{index}]", contained)
            for index, contained in enumerate(as_list(entry.resource.get("contained")))]
        for element, resource in found:
            if isinstance(resource, dict) and is_subsetted(resource):
                raise Context(self, entry).error(
                    subsetted_message(resource.get("resourceType", "resource")), element)

    def assign_patients(self, entries: Sequence[Entry], item_types: frozenset[str]) -> None:
        """Name the patients and attribute each resource (guidelinekg.fhir_identity); a
        subject is looked for in each resource of ``item_types`` (those that become record
        items)."""
        self.attribution = attribute(entries, self.names, item_types)
        if not self.attribution.patients:
            sources = ", ".join(dict.fromkeys(source for source, _ in self.documents))
            raise InputError(sources, "no patient: the input holds no Patient resource and no "
                             "resource names its subject")
        for iri, (ref, source) in self.attribution.named_only.items():
            self.graph.add((iri, RDF.type, GKG.Patient))
            self.file_reports.append(ReportEntry(
                ref, "Patient", NOTE, f"no Patient resource for it in the input: the patient is "
                f"the subject the resources of {source} name ({ref}); no birth date is known",
                item=str(iri), source=source))

    def import_patient(self, ctx: Context) -> None:
        iri = self.attribution.of_entry[ctx.entry.order]
        item = Item(self.graph, iri, [GKG.Patient])
        birth = ctx.resource.get("birthDate")
        ctx.read |= {"identifier", "gender"}  # identity (compared across resources)
        reason = absent_reason(ctx.resource, "birthDate")
        if birth is not None:
            ctx.date(item, GKG.birthDate, birth, "birthDate")
        elif reason is not None:
            mark_absent(ctx, "_birthDate")
            ctx.note(f"no birthDate (data-absent-reason {reason}): age is unknown")
        else:
            ctx.note("no birthDate: age is unknown")
        self.read_death(ctx, item)
        ctx.imported(item)
        # The records it is one patient with, and its retired identifiers (not used).
        for element, note in self.attribution.identity_notes.get(ctx.entry.order, []):
            ctx.note(note, element)
        self.report_status_and_links(ctx)
        self.report_unread(ctx)
        ctx.flush()

    @staticmethod
    def read_death(ctx: Context, item: Item) -> None:
        """Patient.deceased[x]: a date as the death date, a boolean as deceased (true or
        false). Anything else is written as given, for the shapes to refuse: a death is
        never guessed, nor dropped unseen."""
        found = choice(ctx.resource, "deceased")
        if found is None:
            return
        element, value = found
        if element == "deceasedDateTime":
            ctx.date(item, GKG.deathDate, value, element)
            return
        ctx.read.add(element)
        if element == "deceasedBoolean" and isinstance(value, bool):
            item.set(GKG.deceased, Literal(value))
        else:
            item.set(GKG.deceased, Literal(str(value)))
            ctx.note(f"{element} {value!r}: not a boolean; {AS_GIVEN}", element)

    def report_status_and_links(self, ctx: Context) -> None:
        """Patient.active and Patient.link are modifiers: each is reported. A link that says
        which of two records is the one to use was refused as the patients were named
        (guidelinekg.fhir_identity); a seealso link is reported and not followed."""
        ctx.read |= {"active", "link"}
        active = ctx.resource.get("active")
        if active is False:
            ctx.note("active false: the record says this Patient record is not in active use "
                     "(FHIR: created in error, merged, or of a patient no longer seen); it is "
                     "read all the same: check that it is the record to use", "active")
        elif active is not None and active is not True:
            ctx.note(f"active {active!r} is not a boolean: not read", "active")
        for index, link in enumerate(as_list(ctx.resource.get("link"))):
            ctx.note(f"Patient.link seealso {link_target(link)}: the record says another record "
                     f"of the same person, equally valid, exists ({self.linked(ctx, link)}); "
                     "the importer does not merge records: this patient's record items are "
                     "those of the resources that name this Patient", f"link[{index}]")

    def linked(self, ctx: Context, link: Any) -> str:
        """Where the Patient a link points to is in the input, for the report."""
        target = self.resolve(as_dict(link).get("other"), ctx.entry)
        if not (isinstance(target, Entry) and target.type == "Patient"):
            return "it is not in this input"
        iri = self.attribution.of_entry[target.order]
        if iri == self.attribution.of_entry[ctx.entry.order]:
            return f"it is this same patient, {iri}"
        return f"it is patient {iri} of this input, read apart"

