"""Observation resources: each observation class takes the value observation-values.tsv
gives it (a coded result, yes/no, a count, a quantity or a banded score); genetic variants
and stage groups have readers of their own."""

from __future__ import annotations

from typing import Any

from rdflib import Literal, URIRef
from rdflib.term import Node

from guidelinekg.fhir_identity import as_dict, as_list
from guidelinekg.fhir_import.base import mark_absent
from guidelinekg.fhir_import.codes import NOT_USED
from guidelinekg.fhir_import.context import Conflict, Context
from guidelinekg.fhir_import.datatypes import (
    absent_reason,
    as_given,
    choice,
    code_value,
    decimal_literal,
    describe_concept,
    integer_literal,
    is_integer,
    is_number,
    quantity_text,
    status_reason,
)
from guidelinekg.fhir_import.maps import (
    GENETIC_VARIANT,
    OBSERVATION,
    STAGE_OBSERVATION,
    BodySiteRule,
    ObservationValue,
)
from guidelinekg.fhir_import.report import AS_GIVEN
from guidelinekg.fhir_import.stages import StageReading
from guidelinekg.fhir_import.variants import VariantReading
from guidelinekg.namespaces import GKG, curie

FINAL_OBSERVATION_STATUSES = frozenset({"final", "amended", "corrected"})
OBSERVATION_READINGS = (OBSERVATION, GENETIC_VARIANT, STAGE_OBSERVATION, NOT_USED)

# (property, value, how the report shows it when not as the value itself)
Values = list[tuple[URIRef, Node, str | None]]


def component_value(component: dict[str, Any]) -> str:
    """An Observation component's value[x], for the report."""
    value = choice(component, "value")
    if value is None:
        return "no value"
    key, data = value
    if key == "valueCodeableConcept":
        return f"value {describe_concept(data)}"
    if key == "valueQuantity":
        return f"value {quantity_text(as_dict(data))}"
    return f"{key} {as_given(data)}"


class ObservationImport(VariantReading, StageReading):
    def import_observation(self, ctx: Context) -> None:
        res = ctx.resource
        concept = self.require_code(ctx)
        if not self.final_status(ctx):
            return
        rows = self.map_concept(concept, self.maps.roles_reading(*OBSERVATION_READINGS))
        roles = {row.role for row in rows}
        if not rows:
            ctx.ignore(self.unknown(concept, "Observation code") + self.panel_results(ctx))
            return
        if len(roles) > 1:
            ctx.ignore(f"its codings disagree ({describe_concept(concept)})")
            return
        role = self.maps.roles[roles.pop()]
        if role.reads == NOT_USED:
            ctx.ignore(f"{describe_concept(concept)} is known, but no patient fact uses it"
                       + self.panel_results(ctx))
            return
        value = choice(res, "value")
        if value is None and "dataAbsentReason" in res:
            ctx.read.add("dataAbsentReason")
            ctx.ignore(f"no value (dataAbsentReason {describe_concept(res['dataAbsentReason'])})")
            return
        if value is None and self.value_absent(ctx):
            return
        if role.reads == GENETIC_VARIANT:
            self.import_variant(ctx, role)
        elif role.reads == STAGE_OBSERVATION:
            self.import_stage_observation(ctx, role)
        else:
            try:
                (cls,) = self.terms(rows)
            except (Conflict, ValueError):
                ctx.ignore(f"its codings map to different classes ({describe_concept(concept)})")
                return
            self.import_observation_value(ctx, cls, value)

    def panel_results(self, ctx: Context) -> str:
        """For the line that ignores an Observation (a panel whose own code is not read): its
        components whose codes the code map reads as results, which are not read from it
        (they would be read as findings of the panel's date, status and subject without a
        check of their own), so that the report shows results were in the record."""
        found = []
        roles = self.maps.roles_reading(OBSERVATION, GENETIC_VARIANT, STAGE_OBSERVATION)
        for index, component in enumerate(as_list(ctx.resource.get("component"))):
            component = as_dict(component)
            rows = self.map_concept(component.get("code"), roles)
            if rows:
                terms = ", ".join(dict.fromkeys(curie(row.term) for row in rows if row.term))
                found.append(f"component[{index}] {describe_concept(component['code'])} "
                             f"({terms}), {component_value(component)}")
        if not found:
            return ""
        return ("; its components hold results the code map reads, which are not read from "
                f"a panel: {'; '.join(found)}: record them as Observations of their own")

    @staticmethod
    def value_absent(ctx: Context) -> bool:
        """Whether a primitive value[x] is missing with a data-absent-reason on it
        (``"_valueBoolean"``): the finding is unknown, and the observation is ignored (an
        item without its value would have the shapes refuse the record)."""
        for key in ctx.resource:
            name = key[1:] if isinstance(key, str) and key.startswith("_value") else ""
            reason = absent_reason(ctx.resource, name) if name[5:6].isupper() else None
            if reason is not None:
                mark_absent(ctx, key)
                ctx.ignore(f"no value ({key}: data-absent-reason {reason}): the finding is "
                           "unknown")
                return True
        return False

    @staticmethod
    def final_status(ctx: Context) -> bool:
        """Only final results are read: a preliminary one may change."""
        ctx.read.add("status")
        status = code_value(ctx.resource.get("status"))
        if status in ("entered-in-error", "cancelled"):
            ctx.ignore(f"status {status}")
        elif status == "preliminary":
            ctx.ignore("status preliminary: only final, amended or corrected results are read")
        elif status not in FINAL_OBSERVATION_STATUSES:
            ctx.ignore(f"status {status}: only final, amended or corrected results are read"
                       if status else status_reason(status, "final, amended or corrected"))
        else:
            return True
        return False

    def import_observation_value(self, ctx: Context, cls: URIRef,
                                 value: tuple[str, Any] | None) -> None:
        spec = self.maps.observation_values.get(cls)
        name = curie(cls)
        if value is not None:
            ctx.read.add(value[0])
        key, data = value if value is not None else ("", None)
        if spec is None:
            ctx.ignore(f"{name} is not an observation class the importer can fill")
            return
        rule = self.maps.body_site_rules.get(cls)
        if rule is not None and not self.body_site_says(ctx, rule):
            return
        reason = absent_reason(data, "value") if key == "valueQuantity" else None
        if reason is not None:
            mark_absent(ctx, "valueQuantity._value")
            ctx.ignore(f"no value (valueQuantity._value: data-absent-reason {reason}): the "
                       f"{spec.label or name} is unknown", key)
            return
        doubt = self.quantity_doubt(as_dict(data)) if key == "valueQuantity" else None
        if doubt is not None:
            # Not an item without its value: the shapes would refuse the record, where the
            # finding is unknown (as with dataAbsentReason).
            ctx.ignore(f"{doubt}: the {spec.label} is not read, so it is unknown", key)
            return
        item_value = self.observation_value(ctx, spec, key, data)
        item = self.new_item(ctx, ctx.entry.iri, [cls])
        for prop, literal, shown in item_value:
            item.set(prop, literal, shown)
        self.observation_date(ctx, item)
        ctx.imported(item)

    def observation_value(self, ctx: Context, spec: ObservationValue, key: str,
                          data: Any) -> Values:
        name = curie(spec.cls)
        if spec.kind == "boolean":
            return ([(GKG.valueBoolean, Literal(data), None)]
                    if key == "valueBoolean" and isinstance(data, bool) else
                    self.value_as_given(ctx, GKG.valueBoolean, key, data,
                                        f"{name} needs valueBoolean"))
        if spec.kind == "integer":
            return ([(GKG.valueInteger, integer_literal(data), None)]
                    if key == "valueInteger" and is_integer(data) and data >= 0 else
                    self.value_as_given(ctx, GKG.valueInteger, key, data,
                                        f"{name} needs a valueInteger of 0 or more"))
        if spec.kind == "quantity":
            return self.quantity_value(ctx, spec, key, data)
        if spec.kind == "score":
            return self.score_value(ctx, spec, key, data)
        return self.coded_value(ctx, spec, key, data)

    @staticmethod
    def body_site_says(ctx: Context, rule: BodySiteRule) -> bool:
        """Whether the observation's body site names one of the rule's words (in a text or a
        coding display); if not, it is ignored with the rule's reason and the fact stays
        unknown (the completeness warning names it)."""
        ctx.read.add("bodySite")
        sites = as_list(ctx.resource.get("bodySite"))
        words = " ".join(
            [str(as_dict(site).get("text", "")) for site in sites]
            + [str(as_dict(coding).get("display", "")) for site in sites
               for coding in as_list(as_dict(site).get("coding"))]).lower()
        if any(word in words for word in rule.words):
            return True
        ctx.ignore(rule.ignored, "bodySite")
        return False

    @staticmethod
    def value_as_given(ctx: Context, prop: URIRef, key: str, data: Any, why: str) -> Values:
        """A value the importer cannot read, kept for the patient shapes to refuse: as given,
        or none when the observation has none (the shapes then find the value missing)."""
        if not key:
            ctx.note(f"{why}; the observation has no value: written without one, for the "
                     "patient shapes to judge (they refuse it)")
            return []
        shown = repr(data) if isinstance(data, str) else str(as_given(data))
        ctx.note(f"{why}; found {key} {shown}; {AS_GIVEN}", key)
        return [(prop, as_given(data), None)]

    def coded_value(self, ctx: Context, spec: ObservationValue, key: str, data: Any) -> Values:
        source = ""
        role = spec.value_role
        if key == "" and spec.kind == "code-or-interpretation" \
                and ctx.resource.get("interpretation"):
            # Only when value[x] is absent: the interpretation then carries the result.
            ctx.read.add("interpretation")
            concepts = as_list(ctx.resource["interpretation"])
            source = " (from Observation.interpretation)"
        elif key != "valueCodeableConcept":
            return self.value_as_given(ctx, GKG.valueCode, key, data,
                                       f"{curie(spec.cls)} needs valueCodeableConcept")
        else:
            concepts = [data]
        rows = [row for concept in concepts for row in self.map_concept(concept, (role,))]
        try:
            terms = self.terms(rows)
        except Conflict as conflict:
            # Every value is written: the shapes refuse a finding with two values.
            ctx.note(f"value codings disagree: {conflict}; {AS_GIVEN}", key or "interpretation")
            return [(GKG.valueCode, row.term, None) for row in rows if row.term is not None]
        if not terms:
            shown = "; ".join(describe_concept(c) for c in concepts)
            ctx.note(f"value {shown} is {self.value_label(role)}; {AS_GIVEN}",
                     key or "interpretation")
            return [(GKG.valueCode, Literal(shown), None)]
        return [(GKG.valueCode, terms[0], curie(terms[0]) + source)]

    def quantity_value(self, ctx: Context, spec: ObservationValue, key: str,
                       data: Any) -> Values:
        """The original value and unit: converting them is the fact layer's job."""
        what = spec.label
        if key != "valueQuantity":
            return self.value_as_given(ctx, GKG.valueDecimal, key, data,
                                       f"{what} needs valueQuantity")
        quantity = as_dict(data)
        found: Values = []
        amount = quantity.get("value")
        if amount is None:
            ctx.note(f"{what} quantity has no value: written without one, for the patient "
                     "shapes to judge (they refuse it)", "valueQuantity")
        else:
            found.append((GKG.valueDecimal, decimal_literal(amount) if is_number(amount)
                          else as_given(amount), None))
            if not is_number(amount) or amount <= 0:
                ctx.note(f"{what} {amount!r} is not a positive number; {AS_GIVEN}",
                         "valueQuantity")
        # A unit of another dimension is written as given: the shapes refuse it.
        unit = self.quantity_unit(ctx, quantity, "valueQuantity", (spec.dimension,), what,
                                  strict=False)
        if unit is not None:
            found.append((GKG.unitCode, Literal(unit), None))
        return found

    def score_value(self, ctx: Context, spec: ObservationValue, key: str, data: Any) -> Values:
        """A whole-number score read as the concept of its band (score-bands.tsv)."""
        bands = self.maps.score_bands[spec.cls]
        low, high = bands[0].low, bands[-1].high
        score: Any = None
        if key == "valueInteger":
            score = data
        elif key == "valueQuantity":
            score = as_dict(data).get("value")
        if not is_integer(score) or not low <= score <= high:
            return self.value_as_given(ctx, GKG.valueCode, key, data if score is None else score,
                                       f"{spec.label} needs a whole-number score from {low} "
                                       f"to {high}")
        score = int(score)
        term = next(band.term for band in bands if band.low <= score <= band.high)
        return [(GKG.valueCode, term, f"{curie(term)} (score {score})")]
