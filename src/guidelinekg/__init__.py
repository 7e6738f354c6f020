"""guidelinekg: a clinical practice guideline as a computable, publishable knowledge graph.

The Python API (:mod:`guidelinekg.api`, re-exported here)::

    import guidelinekg
    patients = guidelinekg.read_patients(["examples/patients/demo-cohort"])
    guidelinekg.validate(patients).conforms
    results = guidelinekg.recommend(patients, as_of=datetime.date(2026, 12, 1))

Names are imported when first used, so that the command line starts without them.
"""

import threading
import types
from collections.abc import Callable
from typing import Any

import rdflib

__version__ = "0.1.0"

# rdflib rewrites a literal into the canonical form of its value when it parses it, and reads
# any boolean other than "true" or "1" as false: "yes"^^xsd:boolean would become false, a
# finding the record never stated. The project keeps every literal as the record wrote it;
# the patient checks (guidelinekg.literal_checks) refuse the ill-typed ones.
#
# The switch is rdflib's one module attribute, and validation turns it on while it
# evaluates SPARQL (pySHACL's literals are normalised): with threads (a record validated
# while its derivation is prepared, the server's requests) that would change what another
# thread parses at the same moment. So the attribute is made per thread, off by default.
class _RdflibWithSwitchPerThread(types.ModuleType):
    _switch = threading.local()

    @property
    def NORMALIZE_LITERALS(self) -> bool:  # rdflib's name for it
        return bool(getattr(self._switch, "on", False))

    @NORMALIZE_LITERALS.setter
    def NORMALIZE_LITERALS(self, value: bool) -> None:
        self._switch.on = bool(value)


rdflib.__dict__.pop("NORMALIZE_LITERALS", None)
rdflib.__class__ = _RdflibWithSwitchPerThread
rdflib.NORMALIZE_LITERALS = False


# pySHACL (the reference engine) also replaces, while it runs, rdflib's reading of booleans
# with its own, in which "1"^^xsd:boolean is false. That too is made per thread: the table
# keeps one reader for booleans, which asks the thread's own; writing the boolean entry
# changes only the writing thread's.
class _BooleanReadingPerThread(dict):
    _readers = threading.local()

    def __setitem__(self, datatype: Any, reader: Any) -> None:
        if datatype == _XSD_BOOLEAN:
            self._readers.boolean = reader
        else:
            super().__setitem__(datatype, reader)


def _read_boolean(lexical: str) -> Any:
    return getattr(_BooleanReadingPerThread._readers, "boolean", _parse_boolean)(lexical)


_XSD_BOOLEAN = rdflib.URIRef("http://www.w3.org/2001/XMLSchema#boolean")
_parse_boolean: Callable[[str], Any] = rdflib.term._parseBoolean
rdflib.term._toPythonMapping = _BooleanReadingPerThread(rdflib.term._toPythonMapping)
dict.__setitem__(rdflib.term._toPythonMapping, _XSD_BOOLEAN, _read_boolean)

__all__ = ["InvalidRecordError", "Patients", "Recommendations", "ValidationReport",
           "__version__", "load_guideline", "read_patients", "recommend", "validate"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from guidelinekg import api

        return getattr(api, name)
    raise AttributeError(f"module 'guidelinekg' has no attribute {name!r}")
