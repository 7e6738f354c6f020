"""Reading FHIR JSON, and small readers of FHIR datatypes (codings, dates, numbers).

JSON is read with plain :mod:`json`; numbers become :class:`~decimal.Decimal` so that a value
is written as the record gives it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal, DecimalException
from pathlib import Path
from typing import Any, TypeGuard

from rdflib import Literal, URIRef
from rdflib.namespace import XSD
from rdflib.term import Node

from guidelinekg.fhir_identity import as_dict, as_list
from guidelinekg.fhir_import.codes import SYSTEM_NAMES, SYSTEM_OIDS, canonical_system
from guidelinekg.loading import InputError, checked_bytes, read_bytes_checked
from guidelinekg.namespaces import curie

FULL_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(T.*)?$")
# The time of a FHIR R4 dateTime or instant: hh:mm:ss (00-23, 00-59, 00-60) with an optional
# fraction, and a zone (Z, or +/-hh:mm up to 14:00), which FHIR requires with a time.
FHIR_TIME = re.compile(r"^T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
                       r"(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$")
PARTIAL_DATE = re.compile(r"^\d{4}(?:-\d{2})?$")
# A surrogate code point in JSON text (an escape \ud800, or the character itself): looked
# for before the parsed document is walked for a lone one.
SURROGATE_IN_TEXT = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}|[\ud800-\udfff]")
SURROGATE = re.compile(r"[\ud800-\udfff]")


def read_json_file(path: Path | str) -> Any:
    """The JSON document of a file, or an InputError that names the file."""
    path = Path(path)
    return _json_document(read_bytes_checked(path), path)


def read_json_bytes(data: bytes, source: str) -> Any:
    """The JSON document of a file's bytes read elsewhere (by Spark), or the InputError
    :func:`read_json_file` gives for the same bytes in a local file."""
    return _json_document(checked_bytes(data, source), source)


def _json_document(data: bytes, source: Path | str) -> Any:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(source, f"not UTF-8 text ({error.reason})") from None
    return parse_json_text(text, source)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# A number whose exponent is beyond this (0.1e1000000) is no clinical value, and writing it
# out in full, as a literal needs, takes minutes: it is refused as it is read.
MAX_DECIMAL_EXPONENT = 100


def _bounded_decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
        in_range = abs(value.adjusted()) <= MAX_DECIMAL_EXPONENT
    except DecimalException:  # an exponent beyond what Decimal holds (1e99999999999999999999)
        in_range = False
    if not in_range:
        shown = text if len(text) <= 24 else text[:21] + "..."
        raise ValueError(f"the number {shown} is out of range (more than "
                         f"{MAX_DECIMAL_EXPONENT} digits before or after the point)")
    return value


def bounded_integer(text: str) -> int:
    """An integer of the JSON; one of more than MAX_DECIMAL_EXPONENT digits is refused (no
    clinical value has them, and Python refuses to read 4,300)."""
    if len(text.lstrip("-")) > MAX_DECIMAL_EXPONENT:
        raise ValueError(f"the number {text[:21]}... is out of range (more than "
                         f"{MAX_DECIMAL_EXPONENT} digits)")
    return int(text)


class DuplicateKeyError(ValueError):
    """An object of the JSON names a key twice."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's members; a key given twice is refused, not read as its last value (a
    second birthDate silently replaced the first)."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise DuplicateKeyError(f"the key {json.dumps(key)} is given twice in one object: "
                                    "which value holds is not known")
        found[key] = value
    return found


def parse_json_text(text: str, source: Path | str) -> Any:
    try:
        document = json.loads(text, parse_float=_bounded_decimal, parse_int=bounded_integer,
                              parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except DuplicateKeyError as error:
        raise InputError(source, str(error)) from None
    except (ValueError, RecursionError) as error:
        raise InputError(source, f"not valid JSON ({error})") from None
    if SURROGATE_IN_TEXT.search(text):
        _refuse_lone_surrogate(document, source)
    return document


def json_elements(document: Any) -> Iterator[tuple[str, Any]]:
    """Every value of a JSON document with its path (``dosage[0].doseAndRate``; "" for the
    document itself), in document order, each before what it holds."""
    pending: list[tuple[str, Any]] = [("", document)]
    while pending:
        where, value = pending.pop()
        yield where, value
        if isinstance(value, dict):
            children = [(f"{where}.{key}" if where else str(key), child)
                        for key, child in value.items()]
        elif isinstance(value, list):
            children = [(f"{where}[{index}]", child) for index, child in enumerate(value)]
        else:
            continue
        pending.extend(reversed(children))


def _refuse_lone_surrogate(document: Any, source: Path | str) -> None:
    """Refuse a string (or key) holding a lone surrogate (``"\\ud800"``): JSON lets one be
    written, but it is no Unicode character, and no output (Turtle, JSON, a terminal) can
    write it. A pair (an emoji) is one character once parsed, and is read."""
    for where, value in json_elements(document):
        if isinstance(value, dict):
            texts = [(f"the name of {(f'{where}.{key}' if where else key)!r}", key)
                     for key in value]
        elif isinstance(value, str):
            texts = [(where or "the document", value)]
        else:
            continue
        for place, text in texts:
            if (found := SURROGATE.search(text)) is not None:
                raise InputError(source, f"not valid JSON text: {place} holds a lone "
                                 f"surrogate (\\u{ord(found.group()):04x}), which is no "
                                 "Unicode character; correct the record")


def describe_json(value: Any) -> str:
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, dict):
        return "a JSON object without resourceType"
    return f"a JSON {type(value).__name__}"


# ---------------------------------------------------------------------------------------
# Small readers of FHIR datatypes
# ---------------------------------------------------------------------------------------


def codings(concept: Any) -> list[dict[str, Any]]:
    return [c for c in as_list(as_dict(concept).get("coding"))
            if isinstance(c, dict) and isinstance(c.get("code"), str) and c["code"].strip()]


def status_code(concept: Any) -> str | None:
    """The code of a status CodeableConcept (Condition.clinicalStatus, verificationStatus)."""
    found = codings(concept)
    return found[0]["code"].strip().lower() if found else None


def code_value(value: Any) -> str | None:
    """A FHIR code element (status, intent): the string, or None for anything else."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def describe_coding(coding: dict[str, Any]) -> str:
    system = canonical_system(coding.get("system"))
    name = SYSTEM_NAMES.get(system, system or "no system")
    text = f"{name} {coding['code']}"
    display = coding.get("display")
    return f"{text} ({display})" if isinstance(display, str) and display else text


def describe_concept(concept: Any) -> str:
    found = codings(concept)
    if found:
        return ", ".join(describe_coding(c) for c in found)
    text = as_dict(concept).get("text")
    return f"text only: {text!r}" if text else "no coding"


def has_code(concept: Any) -> bool:
    concept = as_dict(concept)
    return bool(codings(concept) or (isinstance(concept.get("text"), str) and concept["text"]))


def choice(resource: dict[str, Any], name: str) -> tuple[str, Any] | None:
    """The element of a choice type name[x] that is present, as (element name, value)."""
    for key, value in resource.items():
        if key.startswith(name) and key[len(name):][:1].isupper():
            return key, value
    return None


def is_calendar_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def is_number(value: Any) -> bool:
    return isinstance(value, (int, Decimal)) and not isinstance(value, bool)


def is_integer(value: Any) -> TypeGuard[int | Decimal]:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, Decimal) and value == value.to_integral())


def as_given(value: Any) -> Literal:
    """A FHIR value the importer cannot read, as a literal of what was given (a number stays
    a number, so a negative weight is refused as negative)."""
    if isinstance(value, bool):
        return Literal(value)
    if isinstance(value, int):
        return integer_literal(value)
    if isinstance(value, Decimal):
        return decimal_literal(value)
    if isinstance(value, str):
        return Literal(value)
    if isinstance(value, dict) and ("coding" in value or "text" in value):
        return Literal(describe_concept(value))
    return Literal(json.dumps(value, default=str, ensure_ascii=False))


def decimal_literal(value: int | Decimal) -> Literal:
    """An xsd:decimal in the lexical form Turtle writes and reads back unchanged (4 -> 4.0)."""
    text = format(Decimal(value), "f")
    return Literal(text if "." in text else f"{text}.0", datatype=XSD.decimal)


def integer_literal(value: int | Decimal) -> Literal:
    return Literal(int(value), datatype=XSD.integer)


def quantity_text(quantity: dict[str, Any]) -> str:
    """A Quantity for the report as the record gives it: ``<120 mg``, ``6 mg/kg (code mg)``."""
    comparator = quantity.get("comparator")
    value, unit, code = quantity.get("value"), quantity.get("unit"), quantity.get("code")
    number = "(no value)" if value is None else value
    text = f"{comparator if isinstance(comparator, str) else ''}{number}"
    shown_unit = unit if isinstance(unit, str) else code
    if isinstance(shown_unit, str) and shown_unit:
        text += f" {shown_unit}"
    if isinstance(code, str) and code != shown_unit:
        text += f" (code {code})"
    return text


def dates_only(dosage: dict[str, Any]) -> bool:
    """A Dosage that only gives the treatment's start and end (read as the item's dates)."""
    timing = as_dict(dosage.get("timing"))
    return (set(dosage) <= {"timing", "sequence"} and set(timing) <= {"repeat"}
            and set(as_dict(timing.get("repeat"))) <= {"boundsPeriod"})


STATUS_REASONS = {
    "entered-in-error": "status entered-in-error: recorded by mistake",
    "not-done": "status not-done: it was not done",
    "not-taken": "status not-taken: it was not taken",
    "unknown": "status unknown: the record does not say whether it happened",
}


# Statuses of a request withdrawn before it is known to have been acted on (FHIR R4): not an
# item given, ongoing or planned, so not read as stopped (the fact layer counts a stopped
# treatment as one received).
WITHDRAWN_REASONS = {
    ("MedicationRequest", "cancelled"): "status cancelled: the order was withdrawn before any "
    "dose was given; not a medicine given, ongoing or planned",
    ("ServiceRequest", "revoked"): "status revoked: the request was withdrawn, and a request "
    "does not say whether any of it was done (a Procedure records what was done); not a "
    "procedure done, ongoing or planned",
}


def status_reason(status: Any, expected: str, kind: str = "") -> str:
    """Why a resource of type ``kind`` is not read for its status."""
    if not status:
        return f"no status: not known to be {expected}"
    if (kind, status) in WITHDRAWN_REASONS:
        return WITHDRAWN_REASONS[kind, status]
    return STATUS_REASONS.get(status, f"status {status}: not {expected}")


def extension_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1] or url


# FHIR's extension saying why a value is missing (on a primitive: ``"_birthDate"``).
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"


def absent_reason(container: Any, name: str) -> str | None:
    """The data-absent-reason of a primitive element given without its value (FHIR JSON
    ``"_name": {"extension": [...]}``): its code, or "no code" when it gives none; None when
    the value is there or no data-absent-reason says it is missing. The value is then
    unknown: never read as a value, nor as "no"."""
    container = as_dict(container)
    if container.get(name) is not None:
        return None
    for extension in as_list(as_dict(container.get("_" + name)).get("extension")):
        extension = as_dict(extension)
        if extension.get("url") == DATA_ABSENT_REASON:
            code = extension.get("valueCode")
            return code if isinstance(code, str) and code.strip() else "no code"
    return None


def describe_extension(extension: Any) -> str:
    """An extension for the report: its name, and the code of a data-absent-reason."""
    extension = as_dict(extension)
    url = extension.get("url")
    if not isinstance(url, str) or not url:
        return "extension without url"
    text = f"extension {extension_name(url)}"
    if url == DATA_ABSENT_REASON and isinstance(extension.get("valueCode"), str):
        text += f" ({extension['valueCode']})"
    return text


def element_extensions(resource: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The extensions below the root of a resource, by the element that holds them: those of
    primitives (``_birthDate``, ``name[0]._family``), of codings (``code.coding[0]``) and of
    any other element, each as :func:`describe_extension` gives it. Not the resource's own
    ``extension`` (reported by name), nor what is inside an extension (part of it) or a
    modifierExtension (which stops the resource being read). Each extension is given as
    (its url, or "", and its description)."""
    found: list[tuple[str, list[tuple[str, str]]]] = []
    for where, value in json_elements(resource):
        if not where or not isinstance(value, dict) or "extension" not in value:
            continue
        parts = {part.split("[", 1)[0] for part in where.split(".")}
        if parts & {"extension", "modifierExtension"}:
            continue
        found.append((where, [(str(as_dict(e).get("url") or ""), describe_extension(e))
                              for e in as_list(value["extension"])]))
    return found


def system_oids(document: Any) -> list[tuple[str, str, str]]:
    """Every ``system`` of a document that names a code system by its OID (SYSTEM_OIDS), as
    (element, OID, the system's URL), in document order."""
    found = []
    for where, value in json_elements(document):
        system = as_dict(value).get("system") if isinstance(value, dict) else None
        if isinstance(system, str) and system.strip() in SYSTEM_OIDS:
            element = f"{where}.system" if where else "system"
            found.append((element, system.strip(), SYSTEM_OIDS[system.strip()]))
    return found


def shown_term(term: Node) -> str:
    """A term for the report: a CURIE, or a literal's text quoted."""
    return curie(term) if isinstance(term, URIRef) else repr(str(term))
