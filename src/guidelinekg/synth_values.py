"""What a synthetic FHIR record may vary (guidelinekg.synth_fhir): its codes, within the
project's code maps, and its dates, all moved by one offset.

The codes come from the code maps of every module (``fhir/code-map.tsv``, read by
guidelinekg.fhir_import.maps): a coded value is replaced by a code of a term of the same
value set (``skos:inScheme``), exact codes only (a row ending in * is a family of codes, not
a code). Which values vary, and how, is read from the import maps too (the roles' readings,
observation-values.tsv, score-bands.tsv), so nothing here names a guideline's terms.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from rdflib import URIRef
from rdflib.term import Node

from guidelinekg.fhir_identity import as_dict, as_list
from guidelinekg.fhir_import.codes import CodeMapping
from guidelinekg.synth import value_sets

# Elements never read as dates (ids, references, codes), even when their text looks like one.
NOT_DATES = frozenset({"id", "fullUrl", "reference", "url", "system", "code", "version",
                       "value", "display", "text", "div"})
DATE_ELEMENTS = frozenset({"start", "end", "authoredOn", "issued", "timestamp", "date"})
DATE_TEXT = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(T.+)?)?)?$")


@dataclass(frozen=True)
class Coded:
    """A CodeableConcept's reading: the role a coding of it maps in, the term, its system."""

    role: str
    term: URIRef
    system: str


class CodeChoices:
    """What the project's code maps allow: the codes of each (role, term), exact codes only
    (a row ending in * is a family of codes, not one), and the value sets of terms."""

    def __init__(self) -> None:
        from guidelinekg.fhir_import.codes import NOT_USED, canonical_system
        from guidelinekg.fhir_import.maps import (
            GENETIC_VARIANT,
            OBSERVATION,
            OTHER_PRIMARY_CANCER,
            PRIMARY_CANCER,
            SITE_CONDITION,
            STAGE_OBSERVATION,
            VARIANT_GENE,
            code_map,
            import_maps,
        )
        from guidelinekg.patient_records import core_ontology

        self._canonical = canonical_system
        self.map = code_map()
        self.maps = import_maps()
        self.schemes: dict[Node, tuple[Node, ...]] = value_sets(core_ontology())
        self.codes: dict[tuple[str, URIRef], list[CodeMapping]] = {}
        for row in self.map.rows:
            if row.role != NOT_USED and row.maps_to and not row.code.endswith("*"):
                term = row.term
                if term is not None:
                    self.codes.setdefault((row.role, term), []).append(row)
        self.observation_roles = self.maps.roles_reading(OBSERVATION)
        self.site_roles = self.maps.roles_reading(SITE_CONDITION)
        self.primary_roles = self.maps.roles_reading(PRIMARY_CANCER)
        self.stage_roles = self.maps.roles_reading(STAGE_OBSERVATION)
        self.variant_roles = self.maps.roles_reading(GENETIC_VARIANT)
        self.gene_roles = self.maps.roles_reading(VARIANT_GENE)
        others = frozenset(self.maps.roles_reading(OTHER_PRIMARY_CANCER))
        self.other_primaries = [row for (role, _term), rows in self.codes.items()
                                if role in others for row in rows]
        # The stage the template gives is kept: its value roles vary among synonyms only.
        self.kept_value_roles = frozenset(
            self.maps.roles[role].value_role
            for role in (*self.primary_roles, *self.stage_roles))

    def read(self, concept: Any, roles: Iterable[str]) -> Coded | None:
        """The first coding of a CodeableConcept that one of the roles maps, read."""
        wanted = tuple(roles)
        for coding in as_list(as_dict(concept).get("coding")):
            code = as_dict(coding).get("code")
            if not isinstance(code, str):
                continue
            for role in wanted:
                rows = self.map.lookup(role, coding.get("system"), code)
                term = rows[0].term if rows else None
                if term is not None:
                    return Coded(role, term, self._canonical(coding.get("system")))
        return None

    def terms_like(self, coded: Coded) -> list[URIRef]:
        """The terms of the value set of a coded value that its role has codes for."""
        if coded.role in self.kept_value_roles:
            return [coded.term]
        members = self.schemes.get(coded.term, (coded.term,))
        found = [t for t in members if isinstance(t, URIRef) and (coded.role, t) in self.codes]
        return found or [coded.term]

    def concept(self, role: str, term: URIRef, system: str, rng: random.Random
                ) -> dict[str, Any] | None:
        """A CodeableConcept of one code of the term (of the same system when there is one)."""
        rows = self.codes.get((role, term), [])
        same = [row for row in rows if self._canonical(row.system) == system] or rows
        if not same:
            return None
        return _concept(same[rng.randrange(len(same))]) if same else None

    def other_primary(self, system: str, rng: random.Random) -> dict[str, Any] | None:
        """A primary cancer of another site (of the same system when there is one)."""
        same = [r for r in self.other_primaries if self._canonical(r.system) == system] \
            or self.other_primaries
        return _concept(same[rng.randrange(len(same))]) if same else None

    def observation_value(self, resource: dict[str, Any]) -> tuple[str, str, Node | str]:
        """How an Observation's value varies: ("coded", value role, the kind of finding),
        ("score", "", its class), or ("", "", "") when it does not. The kind of finding is
        its class, for a genetic variant the class of the gene studied."""
        from guidelinekg.fhir_import.maps import CODED_VALUES

        code = resource.get("code")
        found = self.read(code, self.observation_roles)
        if found is not None:
            value = self.maps.observation_values.get(found.term)
            if value is not None and value.kind in CODED_VALUES:
                return "coded", value.value_role, found.term
            if value is not None and value.kind == "score" and found.term in self.maps.score_bands:
                return "score", "", found.term
            return "", "", ""
        found = self.read(code, (*self.stage_roles, *self.variant_roles))
        if found is None:
            return "", "", ""
        genes = [self.read(as_dict(c).get("valueCodeableConcept"), self.gene_roles)
                 for c in as_list(resource.get("component"))]
        gene = next((g.term for g in genes if g is not None), None)
        return "coded", self.maps.roles[found.role].value_role, gene or found.role

    def score_range(self, cls: URIRef) -> tuple[int, int]:
        bands = self.maps.score_bands[cls]
        return min(b.low for b in bands), max(b.high for b in bands)


def _concept(row: CodeMapping) -> dict[str, Any]:
    """A CodeableConcept of the code of one row of a code map."""
    coding = {"system": row.system, "code": row.code}
    if row.display:
        coding["display"] = row.display
    return {"coding": [coding]}


# --------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------


def _is_date_element(key: str) -> bool:
    return key not in NOT_DATES and (key in DATE_ELEMENTS or key.endswith(
        ("Date", "DateTime", "Instant")))


def _shift_text(text: str, shift: timedelta) -> str:
    """A FHIR date or dateTime moved ``shift`` into the past, at the precision given."""
    match = DATE_TEXT.match(text)
    if not match:
        return text
    year, month, day, rest = match.groups()
    try:
        moved = date(int(year), int(month or 1), int(day or 1)) - shift
    except ValueError:
        return text
    if day is None:
        return f"{moved.year:04d}" if month is None else f"{moved.year:04d}-{moved.month:02d}"
    return moved.isoformat() + (rest or "")


def _latest_day(text: str) -> date | None:
    """The last calendar day a FHIR date or dateTime may mean."""
    match = DATE_TEXT.match(text)
    if not match:
        return None
    year, month, day, _rest = match.groups()
    try:
        if day is not None:
            return date(int(year), int(month), int(day))
        if month is not None:
            following = date(int(year) + int(month) // 12, int(month) % 12 + 1, 1)
            return following - timedelta(days=1)
        return date(int(year), 12, 31)
    except ValueError:
        return None


def shift_dates(value: Any, shift: timedelta, found: list[date]) -> Any:
    """The value with every date element moved; the latest day of each (but birth dates)
    is added to ``found``."""
    if isinstance(value, list):
        return [shift_dates(item, shift, found) for item in value]
    if not isinstance(value, dict):
        return value
    moved: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, str) and _is_date_element(key):
            moved[key] = _shift_text(item, shift)
            latest = _latest_day(moved[key])
            if latest is not None and key != "birthDate":
                found.append(latest)
        else:
            moved[key] = shift_dates(item, shift, found)
    return moved
