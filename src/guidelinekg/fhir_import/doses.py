"""Dose specifications: a FHIR Dosage (or a radiotherapy dose delivered to a volume) as a
gkg:DoseSpecification, its amount, unit, route and timing as given."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rdflib import Literal, URIRef

from guidelinekg.fhir_identity import as_dict, as_list
from guidelinekg.fhir_import.base import ImporterBase
from guidelinekg.fhir_import.context import Context, Item
from guidelinekg.fhir_import.datatypes import (
    as_given,
    codings,
    dates_only,
    decimal_literal,
    describe_concept,
    integer_literal,
    is_integer,
    is_number,
    quantity_text,
)
from guidelinekg.fhir_import.maps import ROUTE
from guidelinekg.fhir_import.report import AS_GIVEN
from guidelinekg.namespaces import CODE, GKG

# Dosage.doseAndRate.type: HL7 Terminology, CodeSystem dose-rate-type (ordered, calculated).
DOSE_RATE_TYPE = "http://terminology.hl7.org/CodeSystem/dose-rate-type"


def dose_rate_type(dose_rate: dict[str, Any]) -> str | None:
    """The dose-rate-type code of a doseAndRate entry (ordered, calculated), or None when it
    has none or codes that disagree."""
    found = {coding["code"].strip() for coding in codings(dose_rate.get("type"))
             if coding.get("system") == DOSE_RATE_TYPE}
    return found.pop() if len(found) == 1 else None


def describe_doses(doses: Iterable[tuple[str, dict[str, Any] | None, str | None]]) -> str:
    return ", ".join(f"{path} {quantity_text(quantity)}" if quantity is not None
                     else f"{path} (a range)" for path, quantity, _ in doses)


class DoseReading(ImporterBase):
    def dose(self, ctx: Context, item: Item, dosage: dict[str, Any], element: str,
             number: int, total: int, start: tuple[Any, str] = (None, "")) -> None:
        """One gkg:DoseSpecification from a FHIR Dosage (or MedicationAdministration.dosage).
        ``start``: the resource's start date and its element (an order's may be an event of
        this Dosage's timing)."""
        sep = "-" if "#" in str(item.iri) else "#"
        dose = Item(self.graph, URIRef(f"{item.iri}{sep}dose-{number}"), [GKG.DoseSpecification])
        unread: list[str] = []
        quantity: dict[str, Any] | None = None
        quantity_element = ""
        if ctx.entry.type == "MedicationAdministration":
            if "dose" in dosage:
                quantity, quantity_element = as_dict(dosage["dose"]), f"{element}.dose"
            unread += [k for k in ("rateQuantity", "rateRatio", "site", "method") if k in dosage]
        else:
            quantity, quantity_element = self.dose_and_rate(ctx, dosage, element, unread)
            unread += [k for k in dosage if isinstance(k, str) and (
                k.startswith("asNeeded")
                or k in ("maxDosePerPeriod", "maxDosePerAdministration", "site", "method"))]
        if quantity is not None:
            self.dose_amount(ctx, dose, quantity, quantity_element)
        route = dosage.get("route")
        if route is not None:
            routes = self.map_concept(route, (ROUTE,))
            if routes and routes[0].term is not None:
                dose.set(GKG.route, routes[0].term)
            else:
                ctx.ignore(f"route {describe_concept(route)} is not in the code map",
                           f"{element}.route")
        unread += self.dose_timing(ctx, dose, as_dict(dosage.get("timing")), f"{element}.timing")
        self.report_events(ctx, as_dict(dosage.get("timing")), f"{element}.timing.event", start)
        if isinstance(dosage.get("text"), str) and dosage["text"].strip():
            dose.set(GKG.doseText, Literal(dosage["text"].strip()), report=False)
        if len(dose.parts) == 0 and not isinstance(dosage.get("text"), str):
            self.graph.remove((dose.iri, None, None))
            if not dates_only(dosage):
                ctx.ignore("the dosage says nothing the importer reads (no dose, route or "
                           "timing)", element)
            return
        if ctx.entry.type != "MedicationAdministration":
            self.dose_phase(dose, dosage, ctx)
        item.set(GKG.hasDose, dose.iri, f"({dose.describe().split(', ', 1)[-1]})"
                 if dose.parts else "(dose text only)")
        if unread:
            ctx.ignore("not read: " + ", ".join(unread), element)

    @staticmethod
    def dose_and_rate(ctx: Context, dosage: dict[str, Any], element: str,
                      unread: list[str]) -> tuple[dict[str, Any] | None, str]:
        """The dose quantity of a Dosage's doseAndRate and its element; what is not read is
        added to ``unread``. Two doses in one Dosage are ambiguous: the record does not say
        which was meant, so no amount is read (the dose is then unknown) rather than the
        first; unless exactly one is typed ordered and every other calculated (dose-rate-type):
        the ordered one is read, and a line names the others."""
        doses: list[tuple[str, dict[str, Any] | None, str | None]] = []
        for index, dose_rate in enumerate(as_list(dosage.get("doseAndRate"))):
            dose_rate = as_dict(dose_rate)
            path = f"doseAndRate[{index}]"
            kind = dose_rate_type(dose_rate)
            if "doseQuantity" in dose_rate:
                doses.append((f"{path}.doseQuantity", as_dict(dose_rate["doseQuantity"]), kind))
            elif "doseRange" in dose_rate:
                doses.append((f"{path}.doseRange", None, kind))
            unread += [f"{path}.{k}" for k in dose_rate
                       if k in ("doseRange", "rateQuantity", "rateRatio", "rateRange")]
        if len(doses) > 1:
            ordered = [dose for dose in doses if dose[2] == "ordered"]
            if len(ordered) == 1 and all(dose[2] == "calculated" for dose in doses
                                         if dose is not ordered[0]):
                chosen = describe_doses(ordered)
                ctx.ignore(f"{describe_doses(d for d in doses if d is not ordered[0])} (type "
                           "calculated): not read; the dose typed ordered is "
                           + (f"read, {chosen}" if ordered[0][1] is not None else
                              f"{chosen}, not read either (a range gives no amount)"),
                           f"{element}.doseAndRate")
                doses = ordered
            else:
                ctx.ignore(f"{len(doses)} doses are given ({describe_doses(doses)}): the "
                           "record does not say which is meant; no dose amount written, so "
                           "the dose is unknown", f"{element}.doseAndRate")
                return None, ""
        if doses and doses[0][1] is not None:
            return doses[0][1], f"{element}.{doses[0][0]}"
        return None, ""

    def dose_phase(self, dose: Item, dosage: dict[str, Any], ctx: Context) -> None:
        repeat = as_dict(as_dict(dosage.get("timing")).get("repeat"))
        if repeat.get("count") == 1:
            dose.set(GKG.dosePhase, CODE["loading-dose"])
            return
        siblings = as_list(ctx.resource.get("dosageInstruction", ctx.resource.get("dosage")))
        if any(as_dict(as_dict(as_dict(s).get("timing")).get("repeat")).get("count") == 1
               for s in siblings if s is not dosage):
            dose.set(GKG.dosePhase, CODE["maintenance-dose"])

    def dose_amount(self, ctx: Context, dose: Item, quantity: dict[str, Any], element: str,
                    dimensions: Sequence[URIRef] = (CODE.mass, CODE["mass-per-body-mass"],
                                                    CODE["mass-per-body-surface-area"]),
                    what: str = "dose") -> None:
        """gkg:doseAmount and gkg:doseUnit as given: a dose that is not a positive number,
        or has no unit or one the project cannot convert, is written all the same (the
        patient shapes refuse it)."""
        value = quantity.get("value")
        if value is None:
            ctx.ignore(f"the {what} quantity has no value: no amount written", element)
            return
        doubt = self.quantity_doubt(quantity)
        if doubt is not None:
            ctx.ignore(f"{doubt}: no {what} amount or unit written, so the {what} is unknown",
                       element)
            return
        unit = self.quantity_unit(ctx, quantity, element, dimensions, what)
        dose.set(GKG.doseAmount, decimal_literal(value) if is_number(value) else as_given(value))
        if not is_number(value) or value <= 0:
            ctx.note(f"{what} {value!r} is not a positive number; {AS_GIVEN}", element)
        if unit is not None:
            dose.set(GKG.doseUnit, Literal(unit))
            if unit == "mg/kg":
                dose.set(GKG.perBodyWeight, Literal(True), report=False)

    def dose_timing(self, ctx: Context, dose: Item, timing: dict[str, Any],
                    element: str) -> list[str]:
        repeat = as_dict(timing.get("repeat"))
        unread = [f"timing.{k}" for k in timing if k not in ("repeat", "event")]
        for key, prop, whole in (("frequency", GKG.frequency, True), ("count", GKG["count"], True),
                                 ("period", GKG.period, False),
                                 ("periodMax", GKG.periodMax, False)):
            if key in repeat:
                self.timing_number(ctx, dose, prop, repeat[key], whole, f"{element}.repeat.{key}")
        if "period" in repeat or "periodMax" in repeat:
            self.timing_unit(ctx, dose, GKG.periodUnit, repeat.get("periodUnit"),
                             f"{element}.repeat.periodUnit")
        if "duration" in repeat:
            self.timing_number(ctx, dose, GKG.infusionDuration, repeat["duration"], False,
                               f"{element}.repeat.duration")
            self.timing_unit(ctx, dose, GKG.infusionDurationUnit, repeat.get("durationUnit"),
                             f"{element}.repeat.durationUnit")
        known = {"frequency", "count", "period", "periodMax", "periodUnit", "duration",
                 "durationUnit", "boundsPeriod"}
        unread += [f"timing.repeat.{k}" for k in repeat if k not in known]
        return unread

    @staticmethod
    def report_events(ctx: Context, timing: dict[str, Any], element: str,
                      start: tuple[Any, str]) -> None:
        """A line naming the timing.event dates not read: all of them but the one read as the
        start date (``start``: that date and its element). A list of dates is no schedule the
        importer reads: no frequency, period, count or end date is made from it."""
        events = list(as_list(timing.get("event")))
        read = start[0] if start[1] == element else None
        if read in events:
            events.remove(read)
        if not events:
            return
        shown = ", ".join(event if isinstance(event, str) else repr(event) for event in events)
        why = f"the start date is the earliest event, {read}; " if read is not None else ""
        ctx.ignore(f"timing.event {shown} not read: {why}no schedule is read from a list of "
                   "dates (no frequency, period, count or end date is made from them)", element)

    @staticmethod
    def timing_number(ctx: Context, dose: Item, prop: URIRef, value: Any, whole: bool,
                      element: str) -> None:
        """A count (1 or more) or an amount of time (above 0), as given when it is not."""
        if whole and is_integer(value) and value >= 1:
            dose.set(prop, integer_literal(value))
        elif not whole and is_number(value) and value > 0:
            dose.set(prop, decimal_literal(value))
        else:
            dose.set(prop, as_given(value))
            wanted = "a whole number of 1 or more" if whole else "a positive number"
            ctx.note(f"{value!r} is not {wanted}; {AS_GIVEN}", element)

    def timing_unit(self, ctx: Context, dose: Item, prop: URIRef, unit: Any,
                    element: str) -> None:
        """A UCUM time unit, as given when it is not one (none: written without one)."""
        units = self.ontology.ucum_codes(CODE.time)
        if unit is None:
            ctx.note(f"no unit: written without one, for the patient shapes to judge (they "
                     f"refuse it; give one of {', '.join(units)})", element)
            return
        dose.set(prop, as_given(unit))
        if unit not in units:
            ctx.note(f"{unit!r} is not a UCUM time unit ({', '.join(units)}); {AS_GIVEN}",
                     element)

