"""The mCODE genetic variant Observation: a germline result for the gene studied, whose class
the code map gives (a role that reads variant-gene)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rdflib import Literal
from rdflib.term import Node

from guidelinekg.fhir_identity import as_dict, as_list
from guidelinekg.fhir_import.base import ImporterBase
from guidelinekg.fhir_import.codes import LOINC, CodeMapping, canonical_system
from guidelinekg.fhir_import.context import Conflict, Context
from guidelinekg.fhir_import.datatypes import codings, describe_coding, describe_concept
from guidelinekg.fhir_import.maps import VARIANT_GENE, Role
from guidelinekg.fhir_import.report import AS_GIVEN
from guidelinekg.namespaces import GKG

# Structural codes of the mCODE genetic-variant Observation (LOINC), not mappings to the
# ontology: they say which component holds the gene, the origin and the significance.
GENE_STUDIED = "48018-6"
GENOMIC_SOURCE_CLASS = "48002-0"
GERMLINE = "LA6683-2"
SOMATIC = "LA6684-0"
CLINICAL_SIGNIFICANCE = "53037-8"
PATHOGENIC = {"LA6668-3": "pathogenic", "LA26332-9": "likely pathogenic"}
NOT_PATHOGENIC = {
    "LA26333-7": "uncertain significance",
    "LA26334-5": "likely benign",
    "LA6675-8": "benign",
}
# The LOINC answer "Present": a present variant of no clinical significance is not read.
PRESENT = "LA9633-4"


@dataclass
class Components:
    """What the components of a genetic variant Observation say."""

    genes: list[CodeMapping] = field(default_factory=list)
    studied: list[str] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    significance: list[str] = field(default_factory=list)


class VariantReading(ImporterBase):
    def variant_components(self, resource: dict[str, Any]) -> Components:
        found = Components()
        gene_roles = self.maps.roles_reading(VARIANT_GENE)
        for component in as_list(resource.get("component")):
            component = as_dict(component)
            codes = {c["code"] for c in codings(component.get("code"))
                     if canonical_system(c.get("system")) == LOINC}
            value = component.get("valueCodeableConcept")
            if GENE_STUDIED in codes:
                found.studied += [describe_coding(c) for c in codings(value)]
                found.genes += self.map_concept(value, gene_roles)
            if GENOMIC_SOURCE_CLASS in codes:
                found.origins += [c["code"] for c in codings(value)]
            if CLINICAL_SIGNIFICANCE in codes:
                found.significance += [c["code"] for c in codings(value)]
        return found

    def import_variant(self, ctx: Context, role: Role) -> None:
        res = ctx.resource
        ctx.read |= {"component", "valueCodeableConcept", "interpretation"}
        parts = self.variant_components(res)
        gene_classes = sorted({row.term for row in parts.genes if row.term is not None})
        if not gene_classes:
            genes = " or ".join(gene.label for gene in self.maps.of_reading(VARIANT_GENE))
            ctx.ignore(f"gene studied {', '.join(parts.studied) or 'not given'}: not {genes}")
            return
        if len(gene_classes) > 1:
            shown = " and ".join(sorted({row.display for row in parts.genes}))
            ctx.ignore(f"several genes studied ({shown}): one result cannot be assigned")
            return
        if GERMLINE not in parts.origins:
            if SOMATIC in parts.origins:
                ctx.ignore("somatic variant: not a germline result")
            else:
                ctx.ignore("genomic source class " + (", ".join(parts.origins) or "not given")
                           + ": not known to be germline, so not a germline result")
            return
        values = self.variant_values(ctx, res.get("valueCodeableConcept"), role.value_role)
        present = {row.term for row in self.codes.lookup(role.value_role, LOINC, PRESENT)}
        not_pathogenic = [NOT_PATHOGENIC[c] for c in parts.significance if c in NOT_PATHOGENIC]
        if len(values) == 1 and values[0] in present and not_pathogenic and not any(
                c in PATHOGENIC for c in parts.significance):
            ctx.ignore(f"a variant of {', '.join(not_pathogenic)} is present: not a pathogenic "
                       "variant, and not an absent one")
            return
        item = self.new_item(ctx, ctx.entry.iri, gene_classes)
        for value in values:
            item.set(GKG.valueCode, value)
        self.observation_date(ctx, item)
        ctx.imported(item)

    def variant_values(self, ctx: Context, concept: Any, value_role: str) -> list[Node]:
        """The values the code map reads (present or absent); a value it cannot read, or
        codings that disagree, are written as given for the shapes to refuse."""
        element = "valueCodeableConcept"
        rows = self.map_concept(concept, (value_role,))
        try:
            values: list[Node] = list(self.terms(rows))
        except Conflict as conflict:
            ctx.note(f"value codings disagree: {conflict}; {AS_GIVEN}", element)
            return [row.term for row in rows if row.term is not None]
        if values:
            return values
        if concept is None:
            ctx.note("no value: written without one, for the patient shapes to judge (they "
                     "refuse it)", element)
            return []
        ctx.note(f"value {describe_concept(concept)} is {self.value_label(value_role)}; "
                 f"{AS_GIVEN}", element)
        return [Literal(describe_concept(concept))]
