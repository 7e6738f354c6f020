"""Names of medicines, found in the texts of a medication resource whose code the code map
cannot read.

Nothing is read from these texts: the importer never decides from free text which medicine a
record holds. A name only tells a record of a medicine the code map knows (which cannot be
read without its code: it is refused) from one of an unrelated medicine (ignored, with its
report line). The names are the ontology's labels (rdfs:label, skos:prefLabel, skos:altLabel)
of the classes the code map maps medication codes to that have no such class below them
(one medicine, not a kind of medicine), and the names of every module's
``fhir/medication-names.tsv`` (brand names, ingredients mapped to a broader class). They match
whole words, case-insensitively: a text "Brand (ingredient) 120 mg" names both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rdflib import URIRef

from guidelinekg.fhir_import.codes import CodeMap
from guidelinekg.fhir_import.maps import MEDICATION, ImportMaps
from guidelinekg.fhir_import.ontology import OntologyFacts
from guidelinekg.namespaces import curie

# A word: letters and digits; hyphens, slashes and spaces separate words, so a biosimilar's
# "name-suffix" holds the word "name".
WORD = re.compile(r"[^\W_]+")


def words(text: str) -> tuple[str, ...]:
    return tuple(word.casefold() for word in WORD.findall(text))


@dataclass(frozen=True)
class MedicineNames:
    """Each name as words, the name as written, and the class it names."""

    entries: tuple[tuple[tuple[str, ...], str, URIRef], ...]

    def named_in(self, text: str) -> dict[URIRef, list[str]]:
        """The classes a text names, each with the names found in it."""
        found = words(text)
        named: dict[URIRef, list[str]] = {}
        for name_words, name, cls in self.entries:
            size = len(name_words)
            if any(found[start:start + size] == name_words
                   for start in range(len(found) - size + 1)):
                named.setdefault(cls, []).append(name)
        return named


def medicine_names(codes: CodeMap, maps: ImportMaps, ontology: OntologyFacts) -> MedicineNames:
    """The names of the medicines the code map knows; a name in medication-names.tsv of a
    class the code map maps no medication code to is a packaging error (ValueError)."""
    classes = {row.term for row in codes.in_role(MEDICATION) if row.term is not None}
    named: set[tuple[str, URIRef]] = set()
    for entry in maps.medication_names:
        if entry.cls not in classes:
            raise ValueError(f"medication-names.tsv: {entry.name!r} names {curie(entry.cls)}, "
                             "to which the code map maps no medication code")
        named.add((entry.name, entry.cls))
    # A class's own labels name one medicine only when no other class the code map knows is
    # below it: "chemotherapy" or "targeted therapy" name kinds of medicine, which the text
    # of an unrelated one may mention ("for chemotherapy-induced nausea"). A broader class
    # is named through medication-names.tsv only.
    for cls in classes:
        if not any(other != cls and ontology.is_a(other, cls) for other in classes):
            named |= {(name, cls) for name in ontology.names.get(cls, ())}
    return MedicineNames(tuple(sorted(
        ((words(name), name, cls) for name, cls in named if words(name)),
        key=lambda entry: (curie(entry[2]), entry[1].casefold()))))


def describe_named(named: dict[URIRef, list[str]], ontology: OntologyFacts) -> str:
    """``label (prefix:Class)`` for each class; one named by another name than its label:
    ``Name (label, prefix:Class)``."""
    parts = []
    for cls in sorted(named, key=curie):
        label = ontology.label(cls)
        names = list(dict.fromkeys(named[cls]))
        if any(name.casefold() == label.casefold() for name in names):
            parts.append(f"{label} ({curie(cls)})")
        else:
            parts.append(f"{', '.join(names)} ({label}, {curie(cls)})")
    return " and ".join(parts)
