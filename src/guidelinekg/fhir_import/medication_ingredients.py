"""The medicine of a medication resource as the importer finds it (its CodeableConcept and the
Medication it references), and the ingredients of that Medication, through which a medicine
whose own code the code map lacks is read (MedicationImport.ingredient_rows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from guidelinekg.fhir_identity import as_dict, as_list
from guidelinekg.fhir_import.datatypes import codings, describe_coding, describe_concept


@dataclass(frozen=True)
class Ingredient:
    """One ingredient of a Medication: how a message names it, its CodeableConcept (None
    for an itemReference, which the importer does not follow) and the texts that may name
    a medicine."""

    shown: str
    concept: Any
    texts: tuple[Any, ...]


def ingredient_list(medication: dict[str, Any] | None) -> tuple[list[Ingredient],
                                                                list[Ingredient]]:
    """The active ingredients of a Medication (isActive true or not given) and the inactive
    ones (isActive false); an ingredient with neither an itemCodeableConcept with a code
    or text nor an itemReference is no ingredient the importer can name, and is left out."""
    active: list[Ingredient] = []
    inactive: list[Ingredient] = []
    for raw in as_list(as_dict(medication).get("ingredient")):
        ingredient = as_dict(raw)
        concept = ingredient.get("itemCodeableConcept")
        reference = as_dict(ingredient.get("itemReference"))
        if codings(concept) or isinstance(as_dict(concept).get("text"), str):
            texts = tuple(as_dict(coding).get("display")
                          for coding in as_list(as_dict(concept).get("coding")))
            found = Ingredient(describe_concept(concept), concept,
                               (*texts, as_dict(concept).get("text")))
        elif reference:
            display = reference.get("display")
            shown = f"itemReference {reference.get('reference')}" + (
                f" ({display!r})" if isinstance(display, str) and display.strip() else "")
            found = Ingredient(shown, None, (display,))
        else:
            continue
        (inactive if ingredient.get("isActive") is False else active).append(found)
    return active, inactive


@dataclass(frozen=True)
class Medicine:
    """What a medication resource records as its medicine: the CodeableConcept (None or
    empty for a Medication without a code), how a message names it, and the Medication it
    references (None for a medicationCodeableConcept)."""

    concept: Any
    whose: str
    medication: dict[str, Any] | None = None
    ingredients: list[Ingredient] = field(init=False)
    inactive: list[Ingredient] = field(init=False)

    def __post_init__(self) -> None:
        active, inactive = ingredient_list(self.medication)
        object.__setattr__(self, "ingredients", active)
        object.__setattr__(self, "inactive", inactive)


def unmapped_problem(concept: Any, whose: str) -> tuple[str, str]:
    """What a message says of a medicine whose code the code map cannot read, and what to
    do about it."""
    text = as_dict(concept).get("text")
    found = codings(concept)
    if found:
        shown = ", ".join([describe_coding(coding) for coding in found]
                          + ([f"text {text!r}"] if isinstance(text, str) else []))
        return (f"{whose} ({shown}) is not in the code map",
                "add the code to the code map, or record a code the code map knows")
    if isinstance(text, str) and text:
        return f"{whose} is given as text only ({text!r})", "record a code the code map knows"
    return f"{whose} has no code", "record a code the code map knows"
