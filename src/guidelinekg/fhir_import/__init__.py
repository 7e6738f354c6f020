"""Import a patient record from FHIR R4 JSON (mCODE STU1 to STU4) into the patient graph.

``guidelinekg import-fhir BUNDLE.json... [-o patient.ttl]`` reads Bundles or single resources
with plain :mod:`json` (fhir.resources is the exporter's library) and writes the project's
patient graph: one ``gkg:Patient`` and one record item per resource it understands, each with
``gkg:sourceResource`` naming the FHIR resource it came from.

Resources are recognised by their codes, never by ``meta.profile`` (the STU1 and STU4 profile
URLs differ). Every code that carries meaning comes from the code maps (``fhir/code-map.tsv``
of every domain and guideline), and what the importer does with each code's role -- which
class a code becomes, which property it sets, how a value is read, the words of the report --
from the import maps beside them (:mod:`.maps`); the Python knows generic readings and the
structural codes of FHIR and mCODE only. Nothing is dropped silently: the import report says
what each resource became, or why it (or one of its elements) was ignored, and a value the
importer reads is written as given even when it is impossible (a negative weight, a dose
without a unit, a partial date), so that the patient shapes refuse the record with their own
message. Input that cannot be read at all -- not FHIR, a resource without a code, patients
that claim to be one but differ -- raises :class:`~guidelinekg.loading.InputError` naming the
file and the resource. Who each resource is about, and how resources are named across files,
is :mod:`guidelinekg.fhir_identity`. docs/fhir-import.md documents every rule.

The modules: :mod:`.codes` (systems, the code map), :mod:`.maps` (the import maps),
:mod:`.ontology`, :mod:`.report` (the result), :mod:`.datatypes` (JSON and FHIR datatypes),
:mod:`.context` (one resource's import), :mod:`.base` (shared state), :mod:`.bundles`
(a Bundle that is not the whole record, failed requests, DELETE entries, subsetted copies),
one reader per resource family (:mod:`.patient`, :mod:`.conditions`, :mod:`.stages`,
:mod:`.observations`, :mod:`.variants`, :mod:`.medications` with
:mod:`.medication_ingredients` and :mod:`.medication_names`, :mod:`.doses`,
:mod:`.procedures`), :mod:`.importer` (the handler registry and the API) and :mod:`.command`
(the command line).
"""

from __future__ import annotations

from guidelinekg.fhir_import.codes import (
    AJCC,
    CODE_MAP_COLUMNS,
    FINDING,
    HGNC,
    ICD10,
    ICD10CM,
    LOINC,
    RXNORM,
    SNOMED,
    SYSTEM_NAMES,
    UCUM,
    CodeMap,
    CodeMapping,
    canonical_system,
    code_map_paths,
    normalise_code,
    read_code_map,
)
from guidelinekg.fhir_import.command import add_arguments, run
from guidelinekg.fhir_import.context import Conflict, Context, Item
from guidelinekg.fhir_import.datatypes import parse_json_text, read_json_file
from guidelinekg.fhir_import.importer import (
    HANDLERS,
    Importer,
    import_fhir_file,
    import_fhir_files,
    import_fhir_json,
)
from guidelinekg.fhir_import.maps import ImportMaps, Role, code_map, import_maps, read_import_maps
from guidelinekg.fhir_import.ontology import OntologyFacts, ontology_facts
from guidelinekg.fhir_import.report import (
    AS_GIVEN,
    IGNORED,
    IMPORTED,
    NOTE,
    FhirImport,
    ReportEntry,
)
from guidelinekg.namespaces import curie  # the shared function, as the tests import it

__all__ = [
    "AJCC", "AS_GIVEN", "CODE_MAP_COLUMNS", "FINDING", "HANDLERS", "HGNC", "ICD10", "ICD10CM",
    "IGNORED", "IMPORTED", "LOINC", "NOTE", "RXNORM", "SNOMED", "SYSTEM_NAMES", "UCUM",
    "CodeMap", "CodeMapping", "Conflict", "Context", "FhirImport", "ImportMaps", "Importer",
    "Item", "OntologyFacts", "ReportEntry", "Role", "add_arguments", "canonical_system",
    "code_map", "code_map_paths", "curie", "import_fhir_file", "import_fhir_files",
    "import_fhir_json", "import_maps", "normalise_code", "ontology_facts", "parse_json_text",
    "read_code_map", "read_import_maps", "read_json_file", "run",
]
