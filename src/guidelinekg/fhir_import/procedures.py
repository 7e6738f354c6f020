"""Procedure and ServiceRequest: an intervention done, ongoing or planned; a procedure class
that procedure-refinements.tsv narrows at a site (radiotherapy to a site), its purpose (a
role that reads reason) and the mCODE radiotherapy dose delivered to a volume."""

from __future__ import annotations

from rdflib import Literal, URIRef

from guidelinekg.fhir_identity import Entry, as_dict, as_list
from guidelinekg.fhir_import.context import Conflict, Context, Item
from guidelinekg.fhir_import.datatypes import (
    choice,
    code_value,
    codings,
    describe_coding,
    describe_concept,
    extension_name,
    status_reason,
)
from guidelinekg.fhir_import.doses import DoseReading
from guidelinekg.fhir_import.maps import PROCEDURE, REASON, Refinement
from guidelinekg.namespaces import CODE, GKG

# mCODE radiotherapy course summary: dose delivered to a volume (STU2 to STU4).
DOSE_TO_VOLUME_SUFFIX = "radiotherapy-dose-delivered-to-volume"


class ProcedureImport(DoseReading):
    def procedure_status(self, ctx: Context) -> tuple[URIRef, str] | None:
        res = ctx.resource
        status = code_value(res.get("status"))
        ctx.read |= {"status", "intent", "doNotPerform"}
        if ctx.entry.type == "ServiceRequest":
            if res.get("doNotPerform") is True:
                ctx.ignore("doNotPerform: a request not to do it")
                return None
            if self.unknown_do_not_perform(ctx, "a request not to do it"):
                return None
            intent = code_value(res.get("intent"))
            if intent == "option":
                ctx.ignore("intent option: an option is not a plan")
                return None
            # revoked: withdrawn, not known to be done (ignored, WITHDRAWN_REASONS)
            table = {"draft": "planned", "active": "planned", "on-hold": "planned",
                     "completed": "completed"}
        else:
            table = {"completed": "completed", "in-progress": "ongoing", "preparation": "ongoing",
                     "on-hold": "ongoing", "stopped": "stopped"}
        if status not in table:
            ctx.ignore(status_reason(status, "a procedure done, ongoing or planned",
                                     ctx.entry.type))
            return None
        note = f"status {status} read as {table[status]}" if status == "on-hold" else ""
        return CODE[table[status]], note

    def import_procedure(self, ctx: Context) -> None:
        res = ctx.resource
        concept = self.require_code(ctx)
        rows = self.map_concept(concept, (PROCEDURE,))
        if not rows:
            ctx.ignore(self.unknown(concept, f"{ctx.entry.type} code"))
            return
        try:
            (cls,) = self.terms(rows)
        except (Conflict, ValueError):
            ctx.ignore(f"its codings map to different classes ({describe_concept(concept)})")
            return
        status = self.procedure_status(ctx)
        if status is None:
            return
        refinement, why, element = self.refinement(ctx, cls)
        if refinement is not None and cls == refinement.cls:
            cls = refinement.becomes
            ctx.read.add(element)
        item = self.new_item(ctx, ctx.entry.iri, [cls])
        item.set(GKG.status, status[0])
        self.procedure_dates(ctx, item)
        ctx.read.add("bodySite")
        for site in as_list(res.get("bodySite")):
            found = codings(site)
            text = (", ".join(f"{describe_coding(c)}" for c in found) if found
                    else as_dict(site).get("text"))
            if text:
                item.set(GKG.bodySite, Literal(text))
        self.purposes(ctx, item)
        if self.ontology.is_a(cls, GKG.Radiotherapy):
            self.radiotherapy_doses(ctx, item)
        ctx.imported(item)
        if refinement is not None and cls == refinement.becomes:
            ctx.note(f"{refinement.label}: {why}")
        if status[1]:
            ctx.note(status[1])
        period = choice(res, "performed" if ctx.entry.type == "Procedure" else "occurrence")
        if period is not None and period[0].endswith("Period") and "start" in as_dict(period[1]):
            # A period with only its start: a course (radiotherapy), not one session.
            self.note_missing_end(ctx, status[0], as_dict(period[1]).get("end"),
                                  "when it ended")

    def purposes(self, ctx: Context, item: Item) -> None:
        """reasonCode codes a role that reads reason maps, each written as its property."""
        for reason in as_list(ctx.resource.get("reasonCode")):
            for row in self.map_concept(reason, self.maps.roles_reading(REASON)):
                prop = self.maps.roles[row.role].prop
                if row.term is not None and prop is not None:
                    item.set(prop, row.term)
                    ctx.read.add("reasonCode")

    def refinement(self, ctx: Context, cls: URIRef) -> tuple[Refinement | None, str, str]:
        """The refinement of the procedure's class (or the one it is already narrowed to)
        that its site says applies, why (for the report) and the element that says it."""
        for rule in self.maps.refinements:
            if cls in (rule.cls, rule.becomes):
                why, element = self.refinement_site(ctx, rule)
                if why:
                    return rule, why, element
        return None, "", ""

    def refinement_site(self, ctx: Context, rule: Refinement) -> tuple[str, str]:
        """Why a procedure is at the rule's site (its body site, its reason, or the condition
        at that site its reason references), and the element; ("", "") when it is not."""
        res = ctx.resource
        for site in as_list(res.get("bodySite")):
            if any(r.term == rule.site for r in self.map_concept(site, (rule.body_site_role,))):
                return f"body site {describe_concept(site)}", "bodySite"
        for reason in as_list(res.get("reasonCode")):
            if any(r.term == rule.site for r in self.map_concept(reason, (rule.reason_role,))):
                return f"reasonCode {describe_concept(reason)}", "reasonCode"
        for reason in as_list(res.get("reasonReference")):
            found = self.resolve(reason, ctx.entry)
            if isinstance(found, Entry) and self.condition_sites.get(found.order) == (
                    rule.reason_role, rule.site):
                what = f"{self.ontology.label(rule.site)} {self.maps.roles[rule.reason_role].label}"
                return f"reasonReference {found.reference} ({what})", "reasonReference"
        return "", ""

    def procedure_dates(self, ctx: Context, item: Item) -> None:
        name = "performed" if ctx.entry.type == "Procedure" else "occurrence"
        found = choice(ctx.resource, name)
        if found is None:
            ctx.note(f"no {name} date" + (": the planned date is unknown"
                                           if name == "occurrence" else ""))
            return
        key, value = found
        if key.endswith("DateTime"):
            ctx.date(item, GKG.startDate, value, key)
        elif key.endswith("Period"):
            period = as_dict(value)
            if "start" in period:
                ctx.date(item, GKG.startDate, period["start"], f"{key}.start")
            if "end" in period:
                ctx.date(item, GKG.endDate, period["end"], f"{key}.end")
        elif key == "occurrenceTiming":
            events = sorted(e for e in as_list(as_dict(value).get("event")) if isinstance(e, str))
            if events:
                ctx.date(item, GKG.startDate, events[0], f"{key}.event")
                self.report_events(ctx, as_dict(value), f"{key}.event",
                                   (events[0], f"{key}.event"))
            else:
                ctx.ignore("occurrenceTiming without an event date is not read", key)
        else:
            ctx.ignore(f"{key} is not read as a date", key)

    def radiotherapy_doses(self, ctx: Context, item: Item) -> None:
        number = 0
        for extension in as_list(ctx.resource.get("extension")):
            extension = as_dict(extension)
            url = extension.get("url")
            if not isinstance(url, str) or not url.endswith(DOSE_TO_VOLUME_SUFFIX):
                continue
            ctx.read_extensions.add(url)
            number += 1
            parts = {e["url"]: e for e in as_list(extension.get("extension"))
                     if isinstance(e, dict) and isinstance(e.get("url"), str)}
            element = f"extension {extension_name(url)}[{number - 1}]"
            sep = "-" if "#" in str(item.iri) else "#"
            dose = Item(self.graph, URIRef(f"{item.iri}{sep}dose-{number}"),
                        [GKG.DoseSpecification])
            total = parts.get("totalDoseDelivered", {}).get("valueQuantity")
            if isinstance(total, dict) and total.get("value") is not None:
                self.dose_amount(ctx, dose, total, element, (CODE["absorbed-dose"],),
                                 "radiotherapy dose")
            fractions = parts.get("fractionsDelivered", {})
            if "valueUnsignedInt" in fractions:
                self.timing_number(ctx, dose, GKG.fractions, fractions["valueUnsignedInt"], True,
                                   f"{element}.fractionsDelivered")
            if not dose.parts:
                self.graph.remove((dose.iri, None, None))
                ctx.ignore("no total dose or fractions in the dose delivered to a volume", element)
                continue
            item.set(GKG.hasDose, dose.iri, f"({dose.describe().split(', ', 1)[-1]})")

