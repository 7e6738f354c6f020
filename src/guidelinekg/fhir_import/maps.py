"""The import maps: what the importer does with the codes of each role, as data.

The Python knows generic readings only ("a Condition whose code maps to a role that reads
``site-condition`` becomes an instance of the role's class, with the role's property set to
the term the code maps to"). Which roles there are, their classes, properties and the words
the report uses come from the ``fhir/`` folder of every domain and guideline
(:func:`guidelinekg.resources.fhir_folders`), each file optional:

* ``roles.tsv``: each role of the code map and the reading it gets;
* ``observation-values.tsv``: the value each observation class takes;
* ``score-bands.tsv``: the bands of a score (a whole number read as a concept);
* ``body-site-rules.tsv``: observation classes read only when their body site says where;
* ``procedure-refinements.tsv``: a procedure class that becomes a narrower one at a site;
* ``extensions.tsv``: extensions of medicine resources that carry a property;
* ``medication-names.tsv``: names of medicines beyond the ontology's labels, by which a
  medicine the code map cannot read is recognised in a text (and refused, never read).

docs/fhir-import.md documents each file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import TypeVar

from rdflib import URIRef

from guidelinekg.fhir_import.codes import (
    NOT_USED,
    CodeMap,
    code_map_paths,
    data_rows,
    map_term,
    read_code_map,
)
from guidelinekg.namespaces import expand_curie
from guidelinekg.resources import fhir_folders

# The importer's readings of a role (the "reads" column). The first six are roles of their
# own, which need no declaration: a code that maps straight to a class of that kind.
CONDITION = "condition"
OBSERVATION = "observation"
MEDICATION = "medication"
PROCEDURE = "procedure"
ROUTE = "route"
BUILT_IN_READINGS = (CONDITION, OBSERVATION, MEDICATION, PROCEDURE, ROUTE, NOT_USED)
PRIMARY_CANCER = "primary-cancer"  # the guideline's primary cancer: its stage is read
OTHER_PRIMARY_CANCER = "other-primary-cancer"  # a primary cancer of another site
SITE_CONDITION = "site-condition"  # a condition of a fixed class; the code gives its site
GENETIC_VARIANT = "genetic-variant"  # an mCODE genetic variant Observation
VARIANT_GENE = "variant-gene"  # the gene studied: the class of the result
STAGE_OBSERVATION = "stage-observation"  # a stage group Observation
VALUE = "value"  # the values of a coded result
REASON = "reason"  # a procedure's reasonCode, written as the role's property
BODY_SITE = "body-site"  # a procedure's bodySite (read by procedure refinements)

# What each reading needs of its row in roles.tsv.
REQUIRED: dict[str, tuple[str, ...]] = {
    PRIMARY_CANCER: ("class", "property", "value_role", "label", "plural"),
    OTHER_PRIMARY_CANCER: ("class", "label"),
    SITE_CONDITION: ("class", "property", "label", "plural"),
    GENETIC_VARIANT: ("value_role",),
    VARIANT_GENE: ("label",),
    STAGE_OBSERVATION: ("value_role",),
    VALUE: (),
    REASON: ("property",),
    BODY_SITE: (),
}

ROLE_COLUMNS = ("role", "reads", "class", "property", "value_role", "label", "plural", "words",
                "note")
VALUE_COLUMNS = ("class", "value", "value_role", "unit_dimension", "label", "note")
BAND_COLUMNS = ("class", "low", "high", "maps_to", "note")
BODY_SITE_COLUMNS = ("class", "words", "ignored", "note")
REFINEMENT_COLUMNS = ("class", "becomes", "site", "body_site_role", "reason_role", "label",
                      "note")
EXTENSION_COLUMNS = ("url", "value", "property", "domain", "note")
MEDICATION_NAME_COLUMNS = ("name", "class", "source", "note")

# How an observation class's value is read (observation-values.tsv).
CODED_VALUES = frozenset({"code", "code-or-interpretation"})
VALUE_KINDS = CODED_VALUES | {"boolean", "integer", "quantity", "score"}
EXTENSION_VALUES = frozenset({"valuePositiveInt"})


@dataclass(frozen=True)
class Role:
    """A code-map role and the reading the importer gives its codes."""

    name: str
    reads: str
    cls: URIRef | None = None
    prop: URIRef | None = None
    value_role: str = ""
    label: str = ""
    plural: str = ""
    words: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class ObservationValue:
    """The value an observation class takes."""

    cls: URIRef
    kind: str
    value_role: str = ""
    unit_dimension: str = ""
    label: str = ""

    @property
    def dimension(self) -> URIRef:
        """The dimension of its units: the ``code:`` concept unit_dimension names."""
        return expand_curie(f"code:{self.unit_dimension}")


@dataclass(frozen=True)
class ScoreBand:
    low: int
    high: int
    term: URIRef


@dataclass(frozen=True)
class BodySiteRule:
    """An observation class read only when its bodySite names one of the words."""

    cls: URIRef
    words: tuple[str, ...]
    ignored: str


@dataclass(frozen=True)
class Refinement:
    """A procedure class that becomes a narrower one when it is about a site."""

    cls: URIRef
    becomes: URIRef
    site: URIRef
    body_site_role: str
    reason_role: str
    label: str


@dataclass(frozen=True)
class ExtensionRule:
    """An extension of a medicine resource whose value is written as a property."""

    url: str
    value: str
    prop: URIRef
    domain: URIRef


@dataclass(frozen=True)
class MedicationName:
    """A name of a medicine class (a brand, an ingredient mapped to a broader class)."""

    name: str
    cls: URIRef


@dataclass(frozen=True)
class ImportMaps:
    roles: dict[str, Role]
    observation_values: dict[URIRef, ObservationValue]
    score_bands: dict[URIRef, tuple[ScoreBand, ...]]
    body_site_rules: dict[URIRef, BodySiteRule]
    refinements: tuple[Refinement, ...]
    extensions: tuple[ExtensionRule, ...]
    medication_names: tuple[MedicationName, ...] = ()

    def roles_reading(self, *readings: str) -> tuple[str, ...]:
        """The names of the roles with these readings, in the order of the readings."""
        return tuple(role.name for reading in readings for role in self.roles.values()
                     if role.reads == reading)

    def of_reading(self, reading: str) -> list[Role]:
        return [role for role in self.roles.values() if role.reads == reading]

    def primaries(self, value_role: str | None = None) -> list[Role]:
        """The primary-cancer roles (those whose stage is read with ``value_role``)."""
        return [role for role in self.of_reading(PRIMARY_CANCER)
                if value_role is None or role.value_role == value_role]


def import_maps() -> ImportMaps:
    """The import maps of every module's fhir/ folder, checked against each other."""
    return read_import_maps(fhir_folders())


def code_map() -> CodeMap:
    """Every module's code map, in one, checked against the roles the modules declare."""
    return _code_map(tuple(code_map_paths()))


@cache
def _code_map(paths: tuple[Path, ...]) -> CodeMap:
    roles = import_maps().roles
    return CodeMap([row for path in paths for row in read_code_map(path, roles).rows])


@cache
def read_import_maps(folders: tuple[Path, ...]) -> ImportMaps:
    """The import maps of these fhir/ folders; a malformed or inconsistent row is a
    packaging error (ValueError naming the file and line)."""
    roles = {name: Role(name, name) for name in BUILT_IN_READINGS}
    for path, number, values in _rows(folders, "roles.tsv", ROLE_COLUMNS):
        role = _role(path, number, values)
        if role.name in BUILT_IN_READINGS or roles.setdefault(role.name, role) != role:
            raise ValueError(f"{path}: line {number}: the role {role.name!r} is declared "
                             "twice, differently")
    for role in roles.values():
        _check_value_role(roles, role.value_role, f"the role {role.name!r}")
    observation_values = _unique(_observation_value(roles, *row) for row in _rows(
        folders, "observation-values.tsv", VALUE_COLUMNS))
    bands = _bands(folders)
    for cls, value in observation_values.items():
        if value.kind == "score" and cls not in bands:
            raise ValueError(f"the score of {cls} has no bands (score-bands.tsv)")
    rules = _unique(_body_site_rule(*row) for row in _rows(
        folders, "body-site-rules.tsv", BODY_SITE_COLUMNS))
    refinements = tuple(_refinement(roles, *row) for row in _rows(
        folders, "procedure-refinements.tsv", REFINEMENT_COLUMNS))
    extensions = tuple(_extension(*row) for row in _rows(
        folders, "extensions.tsv", EXTENSION_COLUMNS))
    if len({rule.url for rule in extensions}) != len(extensions):
        raise ValueError("an extension is declared twice (extensions.tsv)")
    names = tuple(_medication_name(*row) for row in _rows(
        folders, "medication-names.tsv", MEDICATION_NAME_COLUMNS))
    return ImportMaps(roles, observation_values, bands, rules, refinements, extensions, names)


def _rows(folders: Sequence[Path], name: str,
          columns: tuple[str, ...]) -> list[tuple[Path, int, list[str]]]:
    return [(folder / name, number, values) for folder in folders
            if (folder / name).is_file()
            for number, values in data_rows(folder / name, columns)]


def _term(path: Path, number: int, text: str) -> URIRef | None:
    try:
        return map_term(text) if text else None
    except ValueError as error:
        raise ValueError(f"{path}: line {number}: {error}") from None


def _required_term(path: Path, number: int, text: str, column: str) -> URIRef:
    term = _term(path, number, text)
    if term is None:
        raise ValueError(f"{path}: line {number}: {column} is required")
    return term


def _role(path: Path, number: int, values: list[str]) -> Role:
    row = dict(zip(ROLE_COLUMNS, values, strict=True))
    if row["reads"] not in REQUIRED:
        raise ValueError(f"{path}: line {number}: unknown reading {row['reads']!r} (one of "
                         f"{', '.join(REQUIRED)})")
    missing = [column for column in REQUIRED[row["reads"]] if not row[column]]
    if missing:
        raise ValueError(f"{path}: line {number}: a role that reads {row['reads']} needs "
                         f"{', '.join(missing)}")
    return Role(row["role"], row["reads"], _term(path, number, row["class"]),
                _term(path, number, row["property"]), row["value_role"], row["label"],
                row["plural"], tuple(row["words"].lower().split()), row["note"])


def _check_value_role(roles: dict[str, Role], name: str, owner: str) -> None:
    if name and (name not in roles or roles[name].reads != VALUE):
        raise ValueError(f"{owner} reads its values with {name!r}, which is not a role that "
                         f"reads {VALUE} (roles.tsv)")


def _observation_value(roles: dict[str, Role], path: Path, number: int,
                       values: list[str]) -> ObservationValue:
    row = dict(zip(VALUE_COLUMNS, values, strict=True))
    cls = _required_term(path, number, row["class"], "class")
    if row["value"] not in VALUE_KINDS:
        raise ValueError(f"{path}: line {number}: value must be one of "
                         f"{', '.join(sorted(VALUE_KINDS))}")
    needs = {"quantity": ("unit_dimension", "label"), "score": ("label",)}.get(
        row["value"], ("value_role",) if row["value"] in CODED_VALUES else ())
    missing = [column for column in needs if not row[column]]
    if missing:
        raise ValueError(f"{path}: line {number}: a {row['value']} value needs "
                         f"{', '.join(missing)}")
    _check_value_role(roles, row["value_role"], f"{path}: line {number}")
    return ObservationValue(cls, row["value"], row["value_role"], row["unit_dimension"],
                            row["label"])


def _bands(folders: Sequence[Path]) -> dict[URIRef, tuple[ScoreBand, ...]]:
    found: dict[URIRef, list[ScoreBand]] = {}
    for path, number, values in _rows(folders, "score-bands.tsv", BAND_COLUMNS):
        row = dict(zip(BAND_COLUMNS, values, strict=True))
        try:
            low, high = int(row["low"]), int(row["high"])
        except ValueError:
            raise ValueError(f"{path}: line {number}: low and high are whole numbers") from None
        band = ScoreBand(low, high, _required_term(path, number, row["maps_to"], "maps_to"))
        found.setdefault(_required_term(path, number, row["class"], "class"), []).append(band)
    bands = {cls: tuple(sorted(rows, key=lambda band: band.low)) for cls, rows in found.items()}
    for cls, ordered in bands.items():
        # One range without gaps or overlaps: the report states it as "from low to high".
        if any(band.low > band.high for band in ordered) or any(
                later.low != earlier.high + 1 for earlier, later in pairwise(ordered)):
            raise ValueError(f"the score bands of {cls} overlap or leave a gap "
                             "(score-bands.tsv)")
    return bands


def _body_site_rule(path: Path, number: int, values: list[str]) -> BodySiteRule:
    row = dict(zip(BODY_SITE_COLUMNS, values, strict=True))
    words = tuple(row["words"].lower().split())
    if not words or not row["ignored"]:
        raise ValueError(f"{path}: line {number}: words and ignored are required")
    return BodySiteRule(_required_term(path, number, row["class"], "class"), words,
                        row["ignored"])


def _refinement(roles: dict[str, Role], path: Path, number: int,
                values: list[str]) -> Refinement:
    row = dict(zip(REFINEMENT_COLUMNS, values, strict=True))
    for column, reading in (("body_site_role", BODY_SITE), ("reason_role", SITE_CONDITION)):
        role = roles.get(row[column])
        if role is None or role.reads != reading:
            raise ValueError(f"{path}: line {number}: {column} must be a role that reads "
                             f"{reading} (roles.tsv)")
    if not row["label"]:
        raise ValueError(f"{path}: line {number}: label is required")
    cls, becomes, site = (_required_term(path, number, row[column], column)
                          for column in ("class", "becomes", "site"))
    return Refinement(cls, becomes, site, row["body_site_role"], row["reason_role"],
                      row["label"])


def _extension(path: Path, number: int, values: list[str]) -> ExtensionRule:
    row = dict(zip(EXTENSION_COLUMNS, values, strict=True))
    if not row["url"] or row["value"] not in EXTENSION_VALUES:
        raise ValueError(f"{path}: line {number}: an extension needs its url and a value of "
                         f"{', '.join(sorted(EXTENSION_VALUES))}")
    return ExtensionRule(row["url"], row["value"],
                         _required_term(path, number, row["property"], "property"),
                         _required_term(path, number, row["domain"], "domain"))


def _medication_name(path: Path, number: int, values: list[str]) -> MedicationName:
    row = dict(zip(MEDICATION_NAME_COLUMNS, values, strict=True))
    if not any(character.isalnum() for character in row["name"]) or not row["source"]:
        raise ValueError(f"{path}: line {number}: a medicine name needs a name (with a letter "
                         "or digit) and its source")
    return MedicationName(row["name"].strip(),
                          _required_term(path, number, row["class"], "class"))


Keyed = TypeVar("Keyed", ObservationValue, BodySiteRule)


def _unique(rows: Iterable[Keyed]) -> dict[URIRef, Keyed]:
    """The rows by class: a class given two different rows (in two modules) is an error."""
    found: dict[URIRef, Keyed] = {}
    for row in rows:
        if found.setdefault(row.cls, row) != row:
            raise ValueError(f"{row.cls} is given two different rows in the import maps")
    return found
