"""Condition resources: the guideline's primary cancer, primary cancers of other sites,
conditions at a site (a metastasis and its site) and other conditions, each as its code-map
role reads it (roles.tsv)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rdflib import Literal, URIRef

from guidelinekg.fhir_identity import Entry, as_dict, as_list
from guidelinekg.fhir_import.codes import CodeMapping
from guidelinekg.fhir_import.context import Conflict, Context, Item
from guidelinekg.fhir_import.datatypes import choice, codings, describe_concept, status_code
from guidelinekg.fhir_import.maps import (
    CONDITION,
    OTHER_PRIMARY_CANCER,
    PRIMARY_CANCER,
    SITE_CONDITION,
    Role,
)
from guidelinekg.fhir_import.report import AS_GIVEN
from guidelinekg.fhir_import.stages import StageReading, labels
from guidelinekg.namespaces import CODE, GKG

CONDITION_READINGS = (PRIMARY_CANCER, OTHER_PRIMARY_CANCER, SITE_CONDITION, CONDITION)
UNCERTAIN_VERIFICATION = frozenset({"unconfirmed", "provisional", "differential"})
# FHIR R4 Condition.verificationStatus: only the codes of this system are read.
VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
VERIFICATION_CODES = UNCERTAIN_VERIFICATION | {"confirmed", "refuted", "entered-in-error"}
# FHIR Condition.clinicalStatus (condition-clinical) -> the ontology's ClinicalStatusScheme.
CLINICAL_STATUS = {code: CODE[f"condition-{code}"] for code in (
    "active", "recurrence", "relapse", "inactive", "remission", "resolved")}
# mCODE extension naming the primary cancer a secondary one belongs to.
RELATED_PRIMARY_SUFFIX = "related-primary-cancer-condition"
# mCODE profile of a primary cancer: read only for a code the code map does not know
# (docs/fhir-import.md, "Primary cancers of other sites").
PRIMARY_CANCER_PROFILE_SUFFIX = "mcode-primary-cancer-condition"


def primary_cancer_profile(resource: dict[str, Any]) -> bool:
    return any(isinstance(url, str) and url.split("|", 1)[0].endswith(
        PRIMARY_CANCER_PROFILE_SUFFIX) for url in as_list(as_dict(resource.get("meta")).get(
            "profile")))


def verification_status(concept: Any) -> tuple[str | None, str]:
    """The condition-ver-status code of a Condition.verificationStatus (None when the
    element is not given), or why it cannot be read: a code of another system or of none, a
    text, a code that is not a verification status or codes that disagree are no
    verification status, and are never guessed at (a local "refuted" may mean anything)."""
    if concept is None:
        return None, ""
    found = {coding["code"].strip() for coding in codings(concept)
             if coding.get("system") == VERIFICATION_SYSTEM}
    if len(found) == 1 and found <= VERIFICATION_CODES:
        return found.pop(), ""
    if len(found) > 1:
        why = "its condition-ver-status codes disagree"
    elif found:
        why = f"{found.pop()!r} is not a condition-ver-status code"
    else:
        why = f"no code of {VERIFICATION_SYSTEM}"
    shown = describe_concept(concept) if isinstance(concept, dict) else repr(concept)
    return None, (f"verificationStatus {shown} cannot be read ({why}): "
                  "the condition is read neither as present nor as absent")


def names_any(resource: dict[str, Any], words: Iterable[str]) -> bool:
    """Whether a Condition's code or body site says one of the words in a display or text:
    an unknown code that may be the guideline's primary cancer is not read as another
    site's."""
    concepts = [resource.get("code"), *as_list(resource.get("bodySite"))]
    texts = [as_dict(concept).get("text") for concept in concepts]
    texts += [coding.get("display") for concept in concepts for coding in codings(concept)]
    lowered = [text.lower() for text in texts if isinstance(text, str)]
    return any(word in text for word in words for text in lowered)


class ConditionImport(StageReading):
    def import_condition(self, ctx: Context) -> None:
        res = ctx.resource
        concept = self.require_code(ctx)
        ctx.read |= {"verificationStatus", "clinicalStatus"}
        verification, unreadable = verification_status(res.get("verificationStatus"))
        if verification == "entered-in-error":
            ctx.ignore("verificationStatus entered-in-error")
            return
        role, rows = self.condition_kind(res)
        if role is None:
            ctx.ignore(f"its codings disagree ({describe_concept(concept)} map to "
                       f"{', '.join(sorted({row.role for row in rows}))})" if rows
                       else self.unknown(concept, "Condition code"))
            return
        if unreadable:
            ctx.ignore(unreadable)
            return
        if not rows:  # a primary cancer by its mCODE profile
            ctx.note(self.profile_note(concept, role), "meta.profile")
            self.import_other_primary(ctx, role, verification)
            return
        try:
            terms = self.terms(rows)
        except Conflict as conflict:
            ctx.ignore(f"its codings map to different terms: {conflict}")
            return
        if role.reads == SITE_CONDITION:
            self.import_site_condition(ctx, role, terms[0], verification)
        elif role.reads == PRIMARY_CANCER:
            self.import_primary(ctx, role, verification)
        elif role.reads == OTHER_PRIMARY_CANCER:
            self.import_other_primary(ctx, role, verification)
        else:
            self.import_other_condition(ctx, terms[0], verification)

    def condition_kind(self, res: dict[str, Any]) -> tuple[Role | None, list[CodeMapping]]:
        """The code-map role of a Condition's code, and its rows; None when the code is
        unknown or its codings disagree. An unknown code under the mCODE primary-cancer
        profile that names none of the words of the guideline's primary cancers is a primary
        cancer of another site."""
        rows = self.map_concept(res.get("code"), self.maps.roles_reading(*CONDITION_READINGS))
        kinds = {row.role for row in rows}
        if len(kinds) == 1:
            return self.maps.roles[kinds.pop()], rows
        others = self.maps.of_reading(OTHER_PRIMARY_CANCER)
        words = [word for role in self.maps.primaries() for word in role.words]
        if not rows and others and primary_cancer_profile(res) and not names_any(res, words):
            return others[0], []
        return None, rows

    def profile_note(self, concept: Any, role: Role) -> str:
        primaries = self.maps.primaries()
        words = " or ".join(word for primary in primaries for word in primary.words)
        text = (f"Condition code {describe_concept(concept)} is not in the code map; read as a "
                f"{role.label} because its profile is mCODE primary-cancer-condition")
        if words:
            text += f" and its code names no {words}"
        if primaries:
            text += f" (if it is a {labels(primaries)}, add its code to the code map)"
        return text

    def clinical_status(self, ctx: Context, item: Item) -> None:
        """gkg:clinicalStatus from Condition.clinicalStatus; a code outside FHIR's
        condition-clinical codes is written as given (the shapes refuse it)."""
        concept = ctx.resource.get("clinicalStatus")
        if concept is None:
            return
        code = status_code(concept)
        if code in CLINICAL_STATUS:
            item.set(GKG.clinicalStatus, CLINICAL_STATUS[code])
            return
        item.set(GKG.clinicalStatus, Literal(code or describe_concept(concept)))
        ctx.note(f"clinicalStatus {describe_concept(concept)} is not a FHIR condition clinical "
                 f"status; {AS_GIVEN}", "clinicalStatus")

    def condition_date(self, ctx: Context, item: Item) -> None:
        onset = choice(ctx.resource, "onset")
        ctx.read.add("recordedDate")
        if onset and onset[0] == "onsetDateTime":
            ctx.date(item, GKG.effectiveDate, onset[1], "onsetDateTime")
        elif onset and onset[0] == "onsetPeriod" and "start" in as_dict(onset[1]):
            ctx.date(item, GKG.effectiveDate, onset[1]["start"], "onsetPeriod.start")
        elif "recordedDate" in ctx.resource:
            ctx.date(item, GKG.effectiveDate, ctx.resource["recordedDate"], "recordedDate")

    def import_primary(self, ctx: Context, role: Role, verification: str | None) -> None:
        if verification == "refuted":
            ctx.ignore(f"verificationStatus refuted: not a {role.label}")
            return
        if verification in UNCERTAIN_VERIFICATION:
            ctx.ignore(f"verificationStatus {verification}: a diagnosis that is not confirmed "
                       f"is not read as {role.label}")
            return
        assert role.cls is not None  # checked as the maps are read
        item = self.new_item(ctx, ctx.entry.iri, [role.cls])
        self.clinical_status(ctx, item)
        self.condition_date(ctx, item)
        ctx.imported(item)
        self.primaries.append((ctx.entry, item.iri, role))
        self.read_condition_stages(ctx, item.iri, role)

    def related_primary(self, ctx: Context, role: Role) -> str:
        """Why a condition at a site belongs to a cancer other than the guideline's primary
        cancer (its mCODE related primary), or ""."""
        for extension in as_list(ctx.resource.get("extension")):
            url = as_dict(extension).get("url", "")
            if isinstance(url, str) and url.endswith(RELATED_PRIMARY_SUFFIX):
                ctx.read_extensions.add(url)
                related = self.resolve(as_dict(extension).get("valueReference"), ctx.entry)
                if not (isinstance(related, Entry) and related.type == "Condition"
                        and related.order in self.condition_kinds):
                    continue
                kind = self.condition_kinds[related.order]
                primaries = labels(self.maps.primaries())
                if kind is None:
                    return (f"a {role.label} of {related.reference}, which is not a "
                            f"{primaries} in the code map")
                if kind.reads == OTHER_PRIMARY_CANCER:
                    return (f"a {role.label} of {related.reference}, a primary cancer of "
                            f"another site (not a {primaries})")
        return ""

    def diagnosis(self, ctx: Context, cls: URIRef, verification: str | None,
                  *values: tuple[URIRef, URIRef]) -> Item:
        """A condition item: present unless refuted, with its clinical status and date."""
        item = self.new_item(ctx, ctx.entry.iri, [cls])
        for prop, value in values:
            item.set(prop, value)
        item.set(GKG.present, Literal(verification != "refuted"))
        self.clinical_status(ctx, item)
        self.condition_date(ctx, item)
        return item

    def import_site_condition(self, ctx: Context, role: Role, site: URIRef,
                              verification: str | None) -> None:
        other_cancer = self.related_primary(ctx, role)
        if other_cancer:
            ctx.ignore(other_cancer)
            return
        if verification in UNCERTAIN_VERIFICATION:
            ctx.ignore(f"verificationStatus {verification}: not read as present (only confirmed "
                       f"{role.plural} are), nor as absent")
            return
        assert role.cls is not None and role.prop is not None  # checked as the maps are read
        # In remission, inactive or resolved it stays present: the site was affected
        # (docs/fhir-import.md, "Clinical status").
        item = self.diagnosis(ctx, role.cls, verification, (role.prop, site))
        if verification != "refuted":
            self.condition_sites[ctx.entry.order] = (role.name, site)
        ctx.imported(item)
        if verification is None:
            ctx.note("no verificationStatus: read as asserted (present)")

    def import_other_primary(self, ctx: Context, role: Role, verification: str | None) -> None:
        if verification in UNCERTAIN_VERIFICATION:
            ctx.ignore(f"verificationStatus {verification}: not read as present (only confirmed "
                       "diagnoses are), nor as absent")
            return
        assert role.cls is not None  # checked as the maps are read
        item = self.diagnosis(ctx, role.cls, verification)
        ctx.imported(item)
        # Its stage is not the guideline's primary cancer's: an observation it names is not
        # read as one.
        for stage in as_list(ctx.resource.get("stage")):
            for assessment in as_list(as_dict(stage).get("assessment")):
                target = self.resolve(assessment, ctx.entry)
                if isinstance(target, Entry):
                    self.other_stage_assessments[target.order] = ctx.entry.reference
        if verification is None:
            ctx.note("no verificationStatus: read as asserted (present)")

    def import_other_condition(self, ctx: Context, cls: URIRef, verification: str | None) -> None:
        if verification in UNCERTAIN_VERIFICATION:
            ctx.ignore(f"verificationStatus {verification}: a diagnosis that is not confirmed "
                       "is not recorded")
            return
        # A refuted diagnosis is kept as refuted: it says the condition is absent (a
        # fracture ruled out), which silence would not.
        item = self.diagnosis(ctx, cls, verification)
        ctx.imported(item)
