"""A tour of the Python API, as a notebook would use it (the tests run this script).

    .venv/bin/python examples/python/api_tour.py
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import guidelinekg

EXAMPLES = Path(__file__).resolve().parents[1]

# Patient records: files and folders of RDF or FHIR JSON, an rdflib Graph, or FHIR documents.
patients = guidelinekg.read_patients([EXAMPLES / "patients" / "demo-cohort"])

# Validation against the patient shapes: no violations here; warnings name missing facts.
report = guidelinekg.validate(patients)
print("conforms:", report.conforms, "-", len(report.results), "warnings and notes")

# The guideline's word for each patient, validated first (as the command line does).
results = guidelinekg.recommend(patients, as_of=date(2026, 12, 1))
for result in results:
    flagged = [f"{c.key} ({c.status})" for c in result.contraindicated]
    undetermined = [r.key for r in result.recommendations if r.status == "undetermined"]
    print(result.patient, result.population.status, "flags:", flagged or "none",
          "undetermined:", ", ".join(undetermined) or "none")

# The JSON contract (always a list) and the results with their provenance (PROV-O).
print(json.dumps(results.to_json())[:80], "...")
print(len(results.to_rdf()), "triples of results and provenance")

# A record that violates the shapes is refused, never derived from.
try:
    guidelinekg.recommend([EXAMPLES / "patients" / "invalid-mg-for-weight.ttl"])
except guidelinekg.InvalidRecordError as refused:
    print("refused:", str(refused).split(";")[0])

# FHIR documents as Python objects, imported as import-fhir imports files.
bundle = json.loads((EXAMPLES / "fhir" / "hr-positive-bone-only-denosumab.json").read_text())
(fhir_result,) = guidelinekg.recommend([bundle], as_of=date(2026, 12, 1))
print("from FHIR:", fhir_result.population.status, len(fhir_result.recommendations),
      "statements")
