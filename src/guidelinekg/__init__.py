"""guidelinekg: a clinical practice guideline as a computable, publishable knowledge graph."""

import rdflib

__version__ = "0.1.0"

# rdflib rewrites a literal into the canonical form of its value when it parses it, and reads
# any boolean other than "true" or "1" as false: "yes"^^xsd:boolean would become false, a
# finding the record never stated. The project keeps every literal as the record wrote it;
# the patient checks (guidelinekg.literal_checks) refuse the ill-typed ones.
rdflib.NORMALIZE_LITERALS = False
