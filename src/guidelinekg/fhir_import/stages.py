"""The stage of the guideline's primary cancer: from Condition.stage.summary and from stage
group Observations, attached to the primary and written once every resource is read."""

from __future__ import annotations

from typing import Any

from rdflib import Literal, URIRef

from guidelinekg.fhir_identity import Entry, as_dict, as_list
from guidelinekg.fhir_import.base import ImporterBase
from guidelinekg.fhir_import.codes import local_name
from guidelinekg.fhir_import.context import Conflict, Context
from guidelinekg.fhir_import.datatypes import describe_concept, shown_term
from guidelinekg.fhir_import.maps import Role
from guidelinekg.fhir_import.report import AS_GIVEN, IGNORED, IMPORTED, ReportEntry


def labels(roles: list[Role], plural: bool = False) -> str:
    """How the report names the conditions of some roles (their labels, roles.tsv)."""
    return " or ".join(role.plural if plural else role.label for role in roles)


class StageReading(ImporterBase):
    def read_condition_stages(self, ctx: Context, primary: URIRef, role: Role) -> None:
        """The stage a primary cancer's Condition gives, and the observations it names as
        its stage assessments."""
        claims = self.stage_claims.setdefault(primary, [])
        ctx.read.add("stage")
        for index, stage in enumerate(as_list(ctx.resource.get("stage"))):
            stage = as_dict(stage)
            element = f"stage[{index}].summary"
            for assessment in as_list(stage.get("assessment")):
                target = self.resolve(assessment, ctx.entry)
                if isinstance(target, Entry):
                    self.stage_assessments[target.order] = primary
            if "summary" not in stage:
                continue
            value = self.stage_value(ctx, stage["summary"], element, role.value_role)
            if value is not None:
                claims.append((value, f"{ctx.entry.reference} {element}"))

    def stage_value(self, ctx: Context, concept: Any, element: str, value_role: str
                    ) -> URIRef | Literal | None:
        """The stage group a stage concept gives; one the code map cannot read is its
        description, a literal that the stage shape refuses."""
        rows = self.map_concept(concept, (value_role,))
        try:
            terms = self.terms(rows)
        except Conflict as conflict:
            ctx.ignore(f"stage codings disagree: {conflict}", element)
            return None
        if not terms:
            ctx.note(f"stage {describe_concept(concept)} is {self.value_label(value_role)}; "
                     f"{AS_GIVEN}", element)
            return Literal(describe_concept(concept))
        return terms[0]

    def import_stage_observation(self, ctx: Context, role: Role) -> None:
        res = ctx.resource
        ctx.read |= {"valueCodeableConcept", "focus"}
        if "valueCodeableConcept" not in res:
            ctx.ignore("a stage group observation without valueCodeableConcept")
            return
        value = self.stage_value(ctx, res["valueCodeableConcept"], "valueCodeableConcept",
                                 role.value_role)
        if value is None:
            return
        shown = shown_term(value)
        target, why = self.stage_target(ctx, role.value_role)
        if target is None:
            ctx.ignore(f"stage {shown}: {why}")
            return
        self.stage_claims.setdefault(target, []).append((value, ctx.entry.reference))
        primaries = labels(self.maps.primaries(role.value_role))
        ctx.imported_into(f"stage group {shown} of the primary {primaries} {target}", target)

    def stage_target(self, ctx: Context, value_role: str) -> tuple[URIRef | None, str]:
        """The primary cancer a stage observation is about (its focus, the primary whose
        stage.assessment names it, or the patient's only one), or why there is none."""
        name = labels(self.maps.primaries(value_role))
        focus = [found for found in (self.resolve(f, ctx.entry)
                                     for f in as_list(ctx.resource.get("focus")))
                 if isinstance(found, Entry)]
        mine = [(entry, iri) for entry, iri, role in self.primaries
                if self.same_patient(ctx, entry) and role.value_role == value_role]
        if focus:
            target = next((iri for entry, iri in mine if entry in focus), None)
            return target, ("" if target else f"its focus is not a primary {name} of the "
                            "patient")
        if ctx.entry.order in self.stage_assessments:
            return self.stage_assessments[ctx.entry.order], ""
        if ctx.entry.order in self.other_stage_assessments:
            return None, (f"the stage of {self.other_stage_assessments[ctx.entry.order]}, a "
                          "primary cancer of another site")
        if not mine:
            return None, f"no primary {name} in the record to attach it to"
        if len(mine) > 1:
            plural = labels(self.maps.primaries(value_role), plural=True)
            return None, (f"several primary {plural}, and the observation does not say "
                          "which one (focus)")
        return mine[0][1], ""

    def finish_stages(self) -> None:
        for entry, primary, role in self.primaries:
            claims = self.stage_claims.get(primary, [])
            values = sorted({value for value, _ in claims})
            if not values or role.prop is None:
                continue
            sources = "; ".join(f"{shown_term(v)} from {s}" for v, s in claims)
            if len(values) == 1 or any(isinstance(v, Literal) for v in values):
                # One stage, or one the code map cannot read: every claim is written, and
                # the stage shape refuses what it cannot accept.
                for value in values:
                    self.graph.add((primary, role.prop, value))
                detail = (f"{local_name(role.prop)} {', '.join(map(shown_term, values))} "
                          f"({sources})")
                self.add_report(entry, ReportEntry(entry.reference, entry.type, IMPORTED, detail,
                                                   "stage", str(primary), entry.source))
            else:
                self.add_report(entry, ReportEntry(
                    entry.reference, entry.type, IGNORED, f"stage groups disagree ({sources}): "
                    "no stage group written", "stage", str(primary), entry.source))
