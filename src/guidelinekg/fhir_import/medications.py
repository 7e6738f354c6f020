"""MedicationRequest, MedicationStatement and MedicationAdministration: the medicine (its
code, or the code of the Medication it references), its status, dates, doses and the
extensions extensions.tsv names (a line of therapy)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rdflib import Literal, URIRef

from guidelinekg.fhir_identity import Entry, as_dict, as_list
from guidelinekg.fhir_import.codes import NOT_USED, CodeMapping, local_name
from guidelinekg.fhir_import.context import Conflict, Context, Item
from guidelinekg.fhir_import.datatypes import (
    as_given,
    choice,
    code_value,
    describe_concept,
    extension_name,
    has_code,
    integer_literal,
    is_integer,
    status_reason,
)
from guidelinekg.fhir_import.doses import DoseReading
from guidelinekg.fhir_import.maps import MEDICATION, ExtensionRule
from guidelinekg.fhir_import.medication_ingredients import (
    Ingredient,
    Medicine,
    ingredient_list,
    unmapped_problem,
)
from guidelinekg.fhir_import.medication_names import describe_named
from guidelinekg.fhir_import.report import AS_GIVEN, IGNORED, NOTE, ReportEntry
from guidelinekg.namespaces import CODE, GKG, curie

ORDER_INTENTS = frozenset({
    "order", "original-order", "reflex-order", "filler-order", "instance-order"})
PLAN_INTENTS = frozenset({"proposal", "plan"})
Dates = tuple[tuple[Any, str], tuple[Any, str]]


class MedicationImport(DoseReading):
    def medication_concept(self, ctx: Context) -> Medicine | None:
        """The medicine's CodeableConcept, with how a message names it (this resource's
        medication, or the Medication it references) and that Medication; None when the
        resource is ignored. A referenced Medication without a code of its own is read
        through its ingredients (import_medication)."""
        res = ctx.resource
        found = choice(res, "medication")
        if found is None:
            raise ctx.error(f"the {ctx.entry.type} has no medication[x]: the importer cannot "
                            "tell which medicine it records")
        key, value = found
        ctx.read.add(key)
        if key == "medicationCodeableConcept":
            if not has_code(value):
                raise ctx.error(f"the {ctx.entry.type} has no medication code", key)
            return Medicine(value, f"the medication of this {ctx.entry.type}")
        target = self.resolve(value, ctx.entry)
        medication = target.resource if isinstance(target, Entry) else target
        reference = as_dict(value).get("reference")
        if not isinstance(medication, dict) or medication.get("resourceType") != "Medication":
            display = as_dict(value).get("display")
            shown = f" ({display!r})" if isinstance(display, str) and display.strip() else ""
            if not self.refuse_named(
                    ctx, f"its medicationReference {reference}{shown} is not a Medication in "
                    "the input", "give the Medication it references in the input, or record "
                    "a code the code map knows", [display]):
                ctx.ignore(f"medicationReference {reference} is not a Medication in the input",
                           key)
            return None
        if isinstance(target, Entry):
            self.referenced_medications.setdefault(target.order, []).append(ctx.entry.reference)
        if not has_code(medication.get("code")) and not ingredient_list(medication)[0]:
            raise ctx.error("the Medication it references has no code", key)
        return Medicine(medication.get("code"), f"the Medication {reference} it references",
                        medication)

    def unknown_medication(self, ctx: Context, medicine: Medicine) -> None:
        """A medicine the code map cannot read: ignored with its report line, unless a text
        of the resource (or of its Medication's ingredients) names a medicine the code map
        knows (refuse_named)."""
        concept = medicine.concept
        if self.map_concept(concept, (NOT_USED,)):
            ctx.ignore(f"medication {describe_concept(concept)} is known, but no patient fact "
                       "uses it")
            return
        problem, remedy = unmapped_problem(concept, medicine.whose)
        texts = [as_dict(coding).get("display")
                 for coding in as_list(as_dict(concept).get("coding"))]
        texts += [as_dict(concept).get("text")]
        texts += [text for ingredient in medicine.ingredients for text in ingredient.texts]
        if not self.refuse_named(ctx, problem, remedy, texts):
            ctx.ignore(self.unknown(concept, "medication"))

    def medicine_rows(self, ctx: Context, medicine: Medicine) -> list[CodeMapping] | None:
        """The code-map rows of the medicine: of its own code, else of the ingredients of
        the Medication it references (ingredient_rows). None when the code map cannot read
        it: the resource is then ignored with its report line, or refused."""
        rows: list[CodeMapping] | None = self.map_concept(medicine.concept, (MEDICATION,))
        if not rows and medicine.ingredients and not self.map_concept(medicine.concept,
                                                                       (NOT_USED,)):
            rows = self.ingredient_rows(ctx, medicine)
            if rows is None:  # ignored for its status or intent (the report says why)
                return None
        if rows:
            return rows
        if not has_code(medicine.concept):
            raise ctx.error("the Medication it references has no code, and the code map knows "
                            "none of its ingredients ("
                            + ", ".join(ingredient.shown for ingredient in medicine.ingredients)
                            + "): the importer cannot tell which medicine it records",
                            "medicationReference")
        self.unknown_medication(ctx, medicine)
        return None

    def ingredient_rows(self, ctx: Context, medicine: Medicine) -> list[CodeMapping] | None:
        """A Medication whose own code the code map cannot read, read through its active
        ingredients: the code-map rows of those the code map knows when they all map to one
        medicine (a report line names them), [] when none does. Ingredients that are
        different medicines (or an unknown one whose text names another medicine the code
        map knows) are a combination the code map cannot split: refused (InputError), unless
        the resource is ignored for its status or intent anyway (None; the report says
        why)."""
        mapped: list[tuple[Ingredient, list[CodeMapping], str]] = []
        unmapped: list[Ingredient] = []
        conflicts = False
        for ingredient in medicine.ingredients:
            rows = self.map_concept(ingredient.concept, (MEDICATION,))
            if not rows:
                unmapped.append(ingredient)
                continue
            try:
                is_class = " + ".join(curie(cls) for cls in self.terms(rows))
            except Conflict as conflict:
                is_class, conflicts = f"{conflict} (its codings disagree)", True
            mapped.append((ingredient, rows, is_class))
        if not mapped:
            return []
        classes = {is_class for _, _, is_class in mapped}
        parts = [f"{ingredient.shown} is {is_class}" for ingredient, _, is_class in mapped]
        parts += self.ingredients_named(unmapped, {term for _, rows, _ in mapped
                                                   for term in self.terms_of(rows)})
        problem = unmapped_problem(medicine.concept, medicine.whose)[0]
        if conflicts or len(classes) > 1 or len(parts) > len(mapped):
            if self.medication_status(ctx) is None:
                return None
            raise ctx.error(f"{problem}, and its ingredients are different medicines: "
                            f"{', '.join(parts)}; a combination the code map cannot split "
                            "between them: add the Medication's code to the code map, or "
                            "record each medicine in a resource of its own; the record is "
                            "refused rather than read without them")
        plural = "s" if len(mapped) > 1 else ""
        line = (f"{problem}: read through its ingredient{plural} "
                f"{' and '.join(ingredient.shown for ingredient, _, _ in mapped)}, which the "
                f"code map maps to {classes.pop()}")
        if unmapped:
            line += ("; its other ingredients are no medicine the code map knows and are "
                     "not read: "
                     + ", ".join(ingredient.shown for ingredient in unmapped))
        if medicine.inactive:
            line += ("; its inactive ingredients (isActive false) are not read: "
                     + ", ".join(ingredient.shown for ingredient in medicine.inactive))
        ctx.note(line, "medicationReference")
        return [row for _, rows, _ in mapped for row in rows]

    @staticmethod
    def terms_of(rows: list[CodeMapping]) -> set[URIRef]:
        return {row.term for row in rows if row.term is not None}

    def ingredients_named(self, unmapped: list[Ingredient], known: set[URIRef]) -> list[str]:
        """For each ingredient the code map cannot read whose text names a medicine the
        code map knows other than ``known`` (those of the mapped ingredients): what it
        names, for the message that refuses the combination."""
        parts = []
        for ingredient in unmapped:
            named: dict[URIRef, list[str]] = {}
            for text in ingredient.texts:
                if isinstance(text, str):
                    for cls, names in self.medicine_names.named_in(text).items():
                        if cls not in known:
                            named.setdefault(cls, []).extend(names)
            if named:
                parts.append(f"{ingredient.shown} is not in the code map but names "
                             f"{describe_named(named, self.ontology)}")
        return parts

    def refuse_named(self, ctx: Context, problem: str, remedy: str,
                     texts: Sequence[Any]) -> bool:
        """Refuse (InputError) a resource whose medicine the code map cannot read when a text
        of its medication or dosage names a medicine the code map knows: ignored, it would
        make the record say that medicine is not given, and reading it from the text would be
        a guess. False when no text names one (the caller ignores the resource); True when
        the resource is ignored for its status or intent anyway (the report says why)."""
        named: dict[URIRef, list[str]] = {}
        places: list[str] = []
        found = [("its text", text) for text in texts if isinstance(text, str)]
        found += [(f"its dosage text {dosage['text']!r}", dosage["text"])
                  for dosage, _ in self.dosages(ctx) if isinstance(dosage.get("text"), str)]
        for place, text in found:
            for cls, names in self.medicine_names.named_in(text).items():
                named.setdefault(cls, []).extend(names)
                places += [place] if place not in places else []
        if not named:
            return False
        if self.medication_status(ctx) is None:
            return True
        verb = "names" if len(places) == 1 else "name"
        raise ctx.error(f"{problem}, but {' and '.join(places)} {verb} "
                        f"{describe_named(named, self.ontology)}: {remedy}; the record is "
                        "refused rather than read without it")

    def medication_status(self, ctx: Context) -> tuple[URIRef, str] | None:
        res = ctx.resource
        status = code_value(res.get("status"))
        ctx.read |= {"status", "intent", "doNotPerform"}
        kind = ctx.entry.type
        if res.get("doNotPerform") is True:
            ctx.ignore("doNotPerform: an order not to give it")
            return None
        if self.unknown_do_not_perform(ctx, "an order not to give it"):
            return None
        note = ""
        if kind == "MedicationRequest":
            intent = code_value(res.get("intent"))
            if intent not in ORDER_INTENTS | PLAN_INTENTS:
                ctx.ignore(f"intent {intent or 'missing'}: only proposals, plans and orders "
                           "are read")
                return None
            if status == "active":
                if intent in PLAN_INTENTS and ctx.entry.order not in self.administered_requests:
                    return CODE.planned, (f"status active with intent {intent} and no dose given: "
                                          "planned")
                return CODE.ongoing, ""
            # cancelled: withdrawn before any dose was given (ignored, WITHDRAWN_REASONS)
            table = {"draft": "planned", "on-hold": "ongoing", "completed": "completed",
                     "stopped": "stopped"}
        elif kind == "MedicationStatement":
            table = {"active": "ongoing", "completed": "completed", "intended": "planned",
                     "stopped": "stopped", "on-hold": "ongoing"}
        else:
            table = {"completed": "completed", "in-progress": "ongoing", "stopped": "stopped",
                     "on-hold": "ongoing"}
        if status not in table:
            ctx.ignore(status_reason(status, "a medicine given, ongoing or planned", kind))
            return None
        if status == "on-hold":
            note = "status on-hold read as ongoing (treatment in course, paused)"
        return CODE[table[status]], note

    def import_medication(self, ctx: Context) -> None:
        medicine = self.medication_concept(ctx)
        rows = None if medicine is None else self.medicine_rows(ctx, medicine)
        if not rows:
            return
        try:
            classes = self.terms(rows)
        except Conflict as conflict:
            ctx.ignore(f"medication codings map to different classes: {conflict}")
            return
        status = self.medication_status(ctx)
        if status is None:
            return
        status_value, status_note = status
        dates = self.medication_dates(ctx)
        extensions = self.extension_values(ctx)
        dosages = self.dosages(ctx)
        base = ctx.entry.iri
        # A completed course without its end date is no administration on its start date.
        course = self.is_course(ctx, dates)
        course_without_end = course and status_value == CODE.completed and dates[1][0] is None
        for cls in classes:
            # A fullUrl with a fragment already takes no second '#' (no IRI has two).
            sep = "-" if "#" in str(base) else "#"
            iri = base if len(classes) == 1 else URIRef(f"{base}{sep}{local_name(cls)}")
            item = self.new_item(ctx, iri, [cls])
            item.set(GKG.status, status_value)
            self.medication_details(ctx, item, cls, dates, extensions)
            if course_without_end:
                item.set(GKG.recordedAsCourse, Literal(True))
            if len(classes) == 1:
                for number, (dosage, element) in enumerate(dosages, start=1):
                    self.dose(ctx, item, dosage, element, number, len(dosages), dates[0])
            ctx.imported(item)
        notes = [row.note for row in rows if row.note]
        if len(classes) > 1 and dosages:
            ctx.ignore("dose of a combination product: it cannot be split between its "
                       "ingredients", dosages[0][1].split("[", 1)[0])
        if status_note:
            ctx.note(status_note)
        if course:
            self.note_missing_end(ctx, status_value, dates[1][0])
        for text in sorted(set(notes)):
            ctx.note(f"code map: {text}")

    def medication_details(self, ctx: Context, item: Item, cls: URIRef, dates: Dates,
                           extensions: list[tuple[ExtensionRule, Literal]]) -> None:
        """Dates and extension values (a line of therapy) of one medicine item; an extension
        value on a class outside its rule's domain is reported as ignored."""
        for prop, (value, element) in zip((GKG.startDate, GKG.endDate), dates, strict=True):
            if value is not None:
                ctx.date(item, prop, value, element)
        for rule, value in extensions:
            if self.ontology.is_a(cls, rule.domain):
                item.set(rule.prop, value)
            else:
                ctx.ignore(f"{self.ontology.label(rule.prop)} {value} on {curie(cls)}, which is "
                           f"not a {self.ontology.label(rule.domain)}",
                           f"extension {extension_name(rule.url)}")

    @staticmethod
    def is_course(ctx: Context, dates: Dates) -> bool:
        """A course of treatment, not one administration: an order or a statement, or a
        period (an administration's effectivePeriod) with its start. A
        MedicationAdministration on one date is one administration."""
        start_element = dates[0][1]
        return (ctx.entry.type != "MedicationAdministration"
                or start_element.endswith("Period.start"))

    def medication_dates(self, ctx: Context) -> Dates:
        res = ctx.resource
        none: tuple[Any, str] = (None, "")
        if ctx.entry.type == "MedicationRequest":
            ctx.read.add("authoredOn")
            for index, dosage in enumerate(as_list(res.get("dosageInstruction"))):
                timing = as_dict(as_dict(dosage).get("timing"))
                bounds = as_dict(as_dict(timing.get("repeat")).get("boundsPeriod"))
                element = f"dosageInstruction[{index}].timing.repeat.boundsPeriod"
                if "start" in bounds:
                    end = (bounds["end"], f"{element}.end") if "end" in bounds else none
                    return (bounds["start"], f"{element}.start"), end
                events = sorted(e for e in as_list(timing.get("event")) if isinstance(e, str))
                if events:
                    return (events[0], f"dosageInstruction[{index}].timing.event"), none
            ctx.note("no start date in the order (authoredOn is when it was written, not when "
                     "the treatment starts)")
            return none, none
        effective = choice(res, "effective")
        if effective is None:
            ctx.note("no effective date")
            return none, none
        key, value = effective
        if key == "effectiveDateTime":
            return (value, key), none
        if key == "effectivePeriod":
            period = as_dict(value)
            start = (period["start"], f"{key}.start") if "start" in period else none
            end = (period["end"], f"{key}.end") if "end" in period else none
            return start, end
        ctx.ignore(f"{key} is not read as a date", key)
        return none, none

    def extension_values(self, ctx: Context) -> list[tuple[ExtensionRule, Literal]]:
        """The values of the extensions extensions.tsv names, each read once."""
        found = []
        for rule in self.maps.extensions:
            value = self.extension_value(ctx, rule)
            if value is not None:
                found.append((rule, value))
        return found

    @staticmethod
    def extension_value(ctx: Context, rule: ExtensionRule) -> Literal | None:
        """A positive whole number (1, 2, ...); another value is kept as given for the
        patient shapes to refuse."""
        name = extension_name(rule.url)
        for extension in as_list(ctx.resource.get("extension")):
            extension = as_dict(extension)
            if extension.get("url") != rule.url:
                continue
            ctx.read_extensions.add(rule.url)
            value = extension.get(rule.value)
            if is_integer(value) and value >= 1:
                return integer_literal(value)
            if value is None:
                ctx.ignore(f"the {name} extension has no {rule.value}", f"extension {name}")
                return None
            ctx.note(f"the {name} extension needs {rule.value} (1, 2, ...); found {value!r}; "
                     f"{AS_GIVEN}", f"extension {name}")
            return as_given(value)
        return None

    def dosages(self, ctx: Context) -> list[tuple[dict[str, Any], str]]:
        res = ctx.resource
        if ctx.entry.type == "MedicationAdministration":
            ctx.read.add("dosage")
            dosage = as_dict(res.get("dosage"))
            return [(dosage, "dosage")] if dosage else []
        key = "dosageInstruction" if ctx.entry.type == "MedicationRequest" else "dosage"
        ctx.read.add(key)
        return [(as_dict(d), f"{key}[{i}]") for i, d in enumerate(as_list(res.get(key)))
                if isinstance(d, dict)]

    def report_medications(self) -> None:
        for entry in self.entries:
            if entry.type != "Medication" or entry.order in self.skipped:
                continue
            users = self.referenced_medications.get(entry.order)
            line = (ReportEntry(entry.reference, entry.type, NOTE,
                                "read through " + ", ".join(users), source=entry.source)
                    if users else
                    ReportEntry(entry.reference, entry.type, IGNORED,
                                "no medication resource of the patient references it",
                                source=entry.source))
            self.add_report(entry, line)
            if users:
                ctx = Context(self, entry)
                self.note_system_oids(ctx, entry.resource)
                ctx.flush()

