"""The importer's state and the helpers every resource family uses: references, record
items, code lookups, units."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from rdflib import Graph, Literal, URIRef

from guidelinekg.fhir_identity import Attribution, Entry, Names, as_dict, as_list, file_labels
from guidelinekg.fhir_import.bundles import Deletion
from guidelinekg.fhir_import.codes import (
    SYSTEM_NAMES,
    UCUM,
    CodeMapping,
    canonical_system,
    local_name,
)
from guidelinekg.fhir_import.context import Conflict, Context, Item
from guidelinekg.fhir_import.datatypes import (
    DATA_ABSENT_REASON,
    absent_reason,
    choice,
    codings,
    describe_concept,
    element_extensions,
    extension_name,
    has_code,
    quantity_text,
    system_oids,
)
from guidelinekg.fhir_import.maps import Role, code_map, import_maps
from guidelinekg.fhir_import.medication_names import MedicineNames, medicine_names
from guidelinekg.fhir_import.ontology import ontology_facts
from guidelinekg.fhir_import.report import AS_GIVEN, ReportEntry
from guidelinekg.namespaces import CODE, GKG, curie

# Top-level elements that carry clinical meaning: when present and not read they are
# reported, so nothing of substance is dropped silently. Administrative elements (names,
# identifiers, performers, narrative) are not listed. A name ending in [x] is a choice type.
CLINICAL_ELEMENTS = (
    "note", "reasonCode", "reasonReference", "bodySite", "interpretation", "component",
    "hasMember", "stage", "evidence", "severity", "abatement[x]", "outcome", "complication",
    "statusReason", "deceased[x]", "dosage", "dosageInstruction", "value[x]", "focus",
    "onset[x]", "performed[x]", "occurrence[x]", "effective[x]", "dispenseRequest",
    "asNeeded[x]", "followUp", "usedCode", "focalDevice", "quantity[x]", "orderDetail",
)


def mark_absent(ctx: Context, where: str) -> None:
    """The data-absent-reason extension of a primitive (``_birthDate``) was read."""
    ctx.read_element_extensions.add((where, DATA_ABSENT_REASON))


def top_element(where: str) -> str:
    """The resource element a path is in, without a primitive's ``_``: ``code`` for
    ``code.coding[0]``, ``birthDate`` for ``_birthDate``."""
    return re.split(r"[.\[]", where, maxsplit=1)[0].lstrip("_")


# The medicine names made for the last maps an importer used, with those maps (see
# ImporterBase.medicine_names): empty, or one pair.
_medicine_names_made: list[tuple[tuple[object, ...], MedicineNames]] = []


class ImporterBase:
    """What the readers of each resource family share: the input, the maps, the graph being
    written and what one resource tells the import of another."""

    def __init__(self, documents: Sequence[tuple[str, Any]],
                 labels: Mapping[str, str] | None = None) -> None:
        self.documents = documents
        # Given when the documents are part of a larger input (a cohort read in pieces):
        # local IRIs must then be those of the whole input.
        self.labels = dict(labels) if labels is not None else file_labels(
            source for source, _ in documents)
        self.codes = code_map()
        self.maps = import_maps()
        self.ontology = ontology_facts()
        self.graph = Graph()
        self.entries: list[Entry] = []
        self.reports: dict[int, list[ReportEntry]] = {}
        self.file_reports: list[ReportEntry] = []
        self.names = Names()
        self.skipped: set[int] = set()  # entries not imported: DELETE requests, duplicates
        self.deletions: list[Deletion] = []  # the input's request DELETE entries
        self.attribution = Attribution()
        self.item_origins: dict[URIRef, tuple[str, URIRef]] = {}
        # The guideline's primary cancers read so far, with the role that read each.
        self.primaries: list[tuple[Entry, URIRef, Role]] = []
        # A stage group per claim: a code-map term, or the description it could not read.
        self.stage_claims: dict[URIRef, list[tuple[URIRef | Literal, str]]] = {}
        self.stage_assessments: dict[int, URIRef] = {}
        self.other_stage_assessments: dict[int, str] = {}  # observation -> other primary
        self.referenced_medications: dict[int, list[str]] = {}
        self.administered_requests: set[int] = set()
        # entry order -> the role of a Condition's code (None: unknown, or codings disagree)
        self.condition_kinds: dict[int, Role | None] = {}
        # entry order -> (role, site) of a present site condition (a metastasis and its site)
        self.condition_sites: dict[int, tuple[str, URIRef]] = {}

    @property
    def medicine_names(self) -> MedicineNames:
        """The names of the medicines the code map knows, made once for the maps in use (a
        cohort makes an importer for every few patients) and only when a medication the code
        map cannot read asks for them."""
        maps = (self.codes, self.maps, self.ontology)
        # By identity: the maps are made once per library (a test may change it).
        if not _medicine_names_made or any(
                made is not used for made, used in zip(_medicine_names_made[0][0], maps,
                                                       strict=True)):
            _medicine_names_made[:] = [(maps, medicine_names(*maps))]
        return _medicine_names_made[0][1]

    def add_report(self, entry: Entry, line: ReportEntry) -> None:
        self.reports.setdefault(entry.order, []).append(line)

    def resolve(self, reference: Any, within: Entry) -> Entry | dict | None:
        """The entry (or contained resource) a Reference points to, if it is in the input."""
        ref = as_dict(reference).get("reference")
        if not isinstance(ref, str) or not ref:
            return None
        if ref.startswith("#"):
            return within.contained.get(ref)
        return self.names.resolve(ref, within)

    def new_item(self, ctx: Context, iri: URIRef, classes: Sequence[URIRef]) -> Item:
        assert ctx.patient is not None
        item = Item(self.graph, iri, classes)
        item.set(GKG.subject, ctx.patient, report=False)
        item.set(GKG.sourceResource, Literal(ctx.entry.reference), report=False)
        self.item_origins[iri] = (ctx.entry.source, ctx.patient)
        return item

    def same_patient(self, ctx: Context, entry: Entry) -> bool:
        return self.attribution.of_entry.get(entry.order) == ctx.patient

    def report_unread(self, ctx: Context) -> None:
        unread = []
        for name in CLINICAL_ELEMENTS:
            if name.endswith("[x]"):
                found = choice(ctx.resource, name[:-3])
                if found and found[0] not in ctx.read and name[:-3] not in ctx.read:
                    unread.append(found[0])
            elif name in ctx.resource and name not in ctx.read:
                unread.append(name)
        # Extensions of primitives, codings and other elements: the importer reads none of
        # them (a data-absent-reason it acts on is marked read, mark_absent). Those inside an
        # element reported as not read are part of it.
        nested = [f"{where} {text}" for where, found in element_extensions(ctx.resource)
                  if top_element(where) not in unread for url, text in found
                  if (where, url) not in ctx.read_element_extensions]
        for extension in as_list(ctx.resource.get("extension")):
            url = as_dict(extension).get("url")
            if isinstance(url, str) and url not in ctx.read_extensions:
                unread.append(f"extension {extension_name(url)}")
        if unread:
            ctx.note("not read (no patient fact uses it): " + ", ".join(unread))
        if nested:
            ctx.note("not read (extensions the importer does not read): " + ", ".join(nested))

    @staticmethod
    def note_system_oids(ctx: Context, document: Any) -> None:
        """A line for each code system a document names by its OID, read as its URL."""
        for element, oid, system in system_oids(document):
            ctx.note(f"system {oid} is the OID of {SYSTEM_NAMES.get(system, system)}: read as "
                     f"{system}", element)

    @staticmethod
    def note_missing_end(ctx: Context, status: URIRef, end: Any,
                         unknown: str = "when its last dose was given") -> None:
        """A course (an order, a statement, a period with only its start) that has ended
        without an end date: when it ended is unknown. It is not one administration on its
        start date, and no end date is made up for it."""
        if end is None and status in (CODE.completed, CODE.stopped):
            ctx.note(f"the course has ended (status {local_name(status)}) but its end date is "
                     f"missing: {unknown} is unknown")

    @staticmethod
    def unknown_do_not_perform(ctx: Context, what: str) -> bool:
        """Whether doNotPerform (a modifier) is missing with a data-absent-reason: then the
        request may be one NOT to do it, and it is ignored (reported) rather than read as
        an order."""
        reason = absent_reason(ctx.resource, "doNotPerform")
        if reason is None:
            return False
        mark_absent(ctx, "_doNotPerform")
        ctx.ignore(f"doNotPerform is unknown (data-absent-reason {reason}): whether it is "
                   f"{what} is unknown, so it is not read")
        return True

    # -- mapping codes ----------------------------------------------------------------

    def map_concept(self, concept: Any, roles: Sequence[str]) -> list[CodeMapping]:
        found = []
        for coding in codings(concept):
            for role in roles:
                found += self.codes.lookup(role, coding.get("system"), coding["code"])
        return found

    def terms(self, rows: Sequence[CodeMapping]) -> list[URIRef]:
        """The terms the codings of one concept map to; several codings must agree.

        Codings that map to a class and its subclass agree (the subclass is kept). A code that
        maps to several terms (a combination product) keeps them all.
        """
        per_code: dict[tuple[str, str], set[URIRef]] = {}
        for row in rows:
            if row.term is not None:
                per_code.setdefault((canonical_system(row.system), row.code), set()).add(row.term)
        sets = {frozenset(terms) for terms in per_code.values()}
        if len(sets) <= 1:
            return sorted(next(iter(sets), frozenset()))
        if all(len(terms) == 1 for terms in sets):
            singles = [next(iter(terms)) for terms in sets]
            for candidate in singles:
                if all(self.ontology.is_a(candidate, other) for other in singles):
                    return [candidate]
        raise Conflict(" and ".join(sorted(
            "+".join(sorted(curie(t) for t in terms)) for terms in sets)))

    def value_label(self, role: str) -> str:
        """What the report says of a value the code map cannot read with a value role."""
        return self.maps.roles[role].label or f"not a {role} of the code map"

    def require_code(self, ctx: Context, element: str = "code") -> Any:
        concept = ctx.resource.get(element)
        ctx.read.add(element)
        if not has_code(concept):
            raise ctx.error(f"the {ctx.entry.type} has no {element}: the importer cannot tell "
                            "what it records")
        return concept

    def unknown(self, concept: Any, what: str) -> str:
        if not codings(concept):
            return f"{what} is given as text only ({describe_concept(concept)}): no code to map"
        return f"{what} {describe_concept(concept)} is not in the code map"

    def observation_date(self, ctx: Context, item: Item) -> None:
        effective = choice(ctx.resource, "effective")
        if effective is None:
            ctx.note("no effective date")
            return
        key, value = effective
        if key in ("effectiveDateTime", "effectiveInstant"):
            ctx.date(item, GKG.effectiveDate, value, key)
        elif key == "effectivePeriod" and "start" in as_dict(value):
            ctx.date(item, GKG.effectiveDate, value["start"], "effectivePeriod.start")
        else:
            ctx.ignore(f"{key} is not read as a date", key)

    # -- quantities -------------------------------------------------------------------

    def quantity_doubt(self, quantity: dict[str, Any]) -> str | None:
        """Why a Quantity's number is not the exact value it records, or None.

        A comparator ("<120 mg") makes the number a bound, not a value. A unit text and a
        UCUM code that name different units ("mg/kg" and "mg") leave the unit in doubt, and
        mg and mg/kg are never guessed. Either way the number is not written: a dose or a
        weight read as exact would be checked as if it were known."""
        comparator = quantity.get("comparator")
        if comparator is not None:
            return (f"the comparator {comparator!r} makes {quantity_text(quantity)} a bound, "
                    "not a value")
        code, unit = quantity.get("code"), quantity.get("unit")
        if not (isinstance(code, str) and isinstance(unit, str)):
            return None
        # Only UCUM codes can be compared with a unit text: another system's code may be
        # spelled in any way.
        if quantity.get("system") not in (None, UCUM):
            return None
        code, unit = code.strip(), unit.strip()
        if code and unit and code != unit and self.names_a_unit(unit):
            return (f"its unit {unit!r} and its UCUM code {code!r} name different units "
                    f"({quantity_text(quantity)})")
        return None

    def names_a_unit(self, text: str) -> bool:
        """Whether a unit text is a UCUM code of the project's units, or one of them per
        something ("mg/m2"): then it says which unit is meant. A display text such as
        "milligram" or "lb" names no UCUM code and cannot disagree with one."""
        known = self.ontology.unit_dimensions
        return text in known or ("/" in text and text.split("/", 1)[0] in known)

    def quantity_unit(self, ctx: Context, quantity: dict[str, Any], element: str,
                      dimensions: Sequence[URIRef], what: str, strict: bool = True
                      ) -> str | None:
        """The unit of a Quantity as given: its UCUM code (or its unit text when no code is
        given), or ``code (system S)`` for another system; None when there is none. A unit
        the project cannot convert is written all the same and noted: the patient shapes
        refuse it (mg and mg/kg are never guessed). When ``strict`` (doses), a unit of
        another kind that the shapes would accept (a medicine dose in Gy) is bad input."""
        allowed = self.ontology.ucum_codes(*dimensions)
        system = quantity.get("system")
        code = quantity.get("code") if isinstance(quantity.get("code"), str) else None
        unit_text = quantity.get("unit") if isinstance(quantity.get("unit"), str) else None
        given = (code or unit_text or "").strip()
        if not given:
            ctx.note(f"{what} {quantity.get('value')} has no unit: written without one, for "
                     "the patient shapes to judge (they refuse it)", element)
            return None
        if system is not None and system != UCUM:
            ctx.note(f"{what} unit {given!r} is not UCUM (system {system}); {AS_GIVEN}", element)
            return f"{given} (system {system})"
        if not code:
            ctx.note(f"unit read from Quantity.unit {given!r} (no UCUM code given)", element)
        elif system is None:
            # FHIR asks for a system with a code (qty-3); UCUM is the one every code the
            # project reads is of, and the note says it was assumed.
            ctx.note(f"unit code {given!r} has no system: read as a UCUM code", element)
        if given in allowed:
            return given
        if given in self.ontology.unit_dimensions and strict:
            raise ctx.error(f"{what} unit {given!r} is not a unit of a {what} "
                            f"({', '.join(allowed)})", element)
        ctx.note(f"{what} unit {given!r} cannot be converted to a unit the project checks "
                 f"({', '.join(allowed)}); {AS_GIVEN}", element)
        return given
