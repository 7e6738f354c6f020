"""Loading patient inputs: RDF files (or folders of them) and FHIR JSON, into one graph.

One loading function for every command (``validate``, ``recommend``, ``import-fhir``), so
the same inputs give the same record whatever the entry point. Every RDF file is parsed
through :func:`guidelinekg.loading.parse_rdf_bytes` (pyoxigraph: line and column on syntax
errors, remote JSON-LD contexts refused, nothing fetched). A JSON file whose top-level
object has ``resourceType`` is FHIR; all FHIR files of the input go through
``guidelinekg.fhir_import`` together, so that identifiers and absolute references join
files that say they are one patient (``guidelinekg.fhir_identity``). Several patients may
share the merged graph: record items name their patient, and blank nodes of different
files never merge: pyoxigraph keeps a file's blank-node labels (``_:dose``), so each file's
blank nodes are renamed apart when files are merged.

RDF IRIs are global: a record item of one file may name a patient another file declares.
That is not refused, but reported (``b.ttl adds 2 record items to patient <p> of a.ttl``),
and the input says, per patient, the files it came from.

``-`` among the inputs is standard input, read once, with the size limit of a file; having
no file name, its format is told from its content (guidelinekg.stdio: FHIR JSON, JSON-LD,
RDF/XML, N-Quads, or else Turtle, which N-Triples is a part of), and messages call it
"standard input".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rdflib import BNode, Graph, URIRef
from rdflib.namespace import RDF

from guidelinekg import console
from guidelinekg import oxigraph as ox
from guidelinekg.fhir_import.datatypes import bounded_integer
from guidelinekg.loading import (
    RDF_FORMATS,
    InputError,
    parse_rdf_bytes,
    rdf_format_for,
    read_bytes_checked,
)
from guidelinekg.namespaces import GKG
from guidelinekg.stdio import (
    STDIN,
    STDIO_ARGUMENT,
    read_stdin,
    stdin_rdf_format,
    stdin_suffix,
)

if TYPE_CHECKING:  # the FHIR importer is loaded only for FHIR input
    from guidelinekg.fhir_import import FhirImport

JSON_SUFFIXES = (".json", ".jsonld")
# A patient record nests blank nodes two levels deep at most (a treatment's dose); a
# document nested far deeper is not a record, and deep nesting makes rdflib and pySHACL
# recurse until they crash.
MAX_BLANK_NODE_DEPTH = 50


@dataclass
class PatientInput:
    """The merged patient graph, what each input file gave, and which files made each
    patient."""

    graph: Graph
    files: list[Path] = field(default_factory=list)
    # FHIR files: path -> the importer's one-line summary (record items, ignored resources)
    fhir_summaries: dict[Path, str] = field(default_factory=dict)
    # the import of all FHIR files together (its report says what became of each resource)
    fhir: FhirImport | None = None
    # patient IRI -> the files it came from (declared in, or given record items by)
    patient_files: dict[URIRef, list[Path]] = field(default_factory=dict)
    # record items of one file naming a patient another file declares, in words
    cross_file: list[str] = field(default_factory=list)

    def provenance_lines(self) -> list[str]:
        """Per patient, its files; then each file that adds items to another's patient."""
        lines = [f"patient <{patient}>: from {', '.join(map(str, files))}"
                 for patient, files in self.patient_files.items()]
        return lines + self.cross_file


# FHIR Bulk Data NDJSON is read by a cohort run only (guidelinekg.cohort_input): an export
# has no size limit, and its lines are gathered by patient on disk.
NDJSON_SUFFIX = ".ndjson"
NDJSON_COHORT_ONLY = ("FHIR Bulk Data NDJSON (a resource a line) is read by a cohort run only "
                      "(recommend --format jsonl or csv, validate --format jsonl), which reads "
                      "the export with the rest of the input: refused here, not left out")
MANIFEST_COHORT_ONLY = ("the manifest of a FHIR Bulk Data export: the export (its NDJSON files) "
                        "is read by a cohort run only (recommend --format jsonl or csv, "
                        "validate --format jsonl)")


def folder_files(folder: Path, suffixes: Iterable[str]) -> list[Path]:
    """The files of a folder with one of the suffixes: recursively, sorted, hidden files and
    folders skipped. Every other file is named in a warning (console.warn, never silenced):
    a record in a file of another kind must not be left out without a word."""
    wanted = tuple(suffixes)
    found: list[Path] = []
    for candidate in sorted(folder.rglob("*")):
        if candidate.is_dir() or any(part.startswith(".") for part in
                                     candidate.relative_to(folder).parts):
            continue
        if not candidate.is_file():  # a FIFO, a socket: reading it may never end
            console.warn(f"{candidate}: not read: not a regular file (a pipe or a socket "
                         "found in a folder is not read; give it by name to read it)")
        elif candidate.suffix.lower() in wanted:
            found.append(candidate)
        else:
            console.warn(f"{candidate}: not read: a {candidate.suffix or 'suffixless'} "
                         f"file is not a kind read here ({', '.join(wanted)})")
    return found


def given_files(path: Path, suffixes: Iterable[str], kinds: str) -> list[Path]:
    """A path as given: the file itself, or the files of a folder with one of the suffixes
    (:func:`folder_files`). A folder holding none (``kinds``: what it should hold, "RDF or
    JSON"), or a path that does not exist, is bad input."""
    if path.is_dir():
        found = folder_files(path, suffixes)
        if not found:
            raise InputError(path, f"the folder holds no {kinds} file")
        return found
    if path.exists():  # a pipe given by name is read (a shell's <(...) is one)
        return [path]
    raise InputError(path, "no such file or folder")


def input_files(paths: Iterable[Path | str], json_only: bool = False,
                stdin: bool = False) -> list[Path]:
    """The files to read: each file as given, and the RDF/JSON files of each folder
    (recursively, sorted, hidden files and folders skipped; only .json files when
    ``json_only``, for FHIR); with ``stdin``, ``-`` gives :data:`STDIN`. A folder's FHIR
    Bulk Data NDJSON file is refused (only a cohort run reads it: the whole input would
    otherwise differ from the cohort run's); a file of an unknown kind is named in a
    warning (:func:`folder_files`)."""
    suffixes = ((".json",) if json_only else tuple(RDF_FORMATS)) + (NDJSON_SUFFIX,)
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if stdin and str(given) == STDIO_ARGUMENT:
            if STDIN in files:  # it can be read only once
                raise InputError(STDIN, "given twice (as -)")
            files.append(STDIN)
        else:
            found = given_files(path, suffixes, "JSON" if json_only else "RDF or JSON")
            # Refused before anything is read: an export folder is said to be one, rather
            # than its manifest found to hold no patient.
            for file in found if path.is_dir() else []:
                if file.suffix.lower() == NDJSON_SUFFIX:
                    raise InputError(file, NDJSON_COHORT_ONLY)
            files.extend(found)
    return files


def _json_document(data: bytes, path: Path) -> object:
    try:
        return json.loads(data.decode("utf-8-sig"), parse_int=bounded_integer)
    except UnicodeDecodeError as error:
        raise InputError(path, f"not UTF-8 text, so not JSON ({error.reason})") from None
    except RecursionError:
        raise InputError(path, "the JSON is nested too deeply to read (over 1,000 levels): "
                               "not a patient record") from None
    except json.JSONDecodeError as error:
        raise InputError(path, f"not valid JSON ({error.msg}); a {path.suffix} file is read as "
                               "JSON-LD or FHIR JSON", error.lineno, error.colno) from None
    except ValueError as error:  # an integer of more digits than Python converts
        raise InputError(path, f"a value of the JSON cannot be read ({error})") from None


def blank_node_depth(graph: Graph) -> int:
    """The longest chain of blank nodes, each the object of the one before (iterative: a
    deep document must not exhaust the stack here either)."""
    children: dict[BNode, list[BNode]] = {}
    for subject, _, obj in graph:
        if isinstance(subject, BNode) and isinstance(obj, BNode):
            children.setdefault(subject, []).append(obj)
    depth: dict[BNode, int] = {}
    for root in children:
        if root in depth:
            continue
        stack = [(root, iter(children[root]))]
        on_path = {root}
        while stack:
            node, pending = stack[-1]
            child = next(pending, None)
            if child is None:
                stack.pop()
                on_path.discard(node)
                depth[node] = 1 + max((depth[kid] for kid in children.get(node, ())
                                       if kid in depth), default=0)
            elif child not in depth and child not in on_path:  # a cycle is not deeper
                on_path.add(child)
                stack.append((child, iter(children.get(child, ()))))
    return max(depth.values(), default=0)


def _check_depth(graph: Graph, path: Path) -> None:
    depth = blank_node_depth(graph)
    if depth > MAX_BLANK_NODE_DEPTH:
        raise InputError(path, f"blank nodes are nested {depth} levels deep (a patient "
                               f"record needs a few; the limit is {MAX_BLANK_NODE_DEPTH})")


def _import_fhir(paths: Sequence[Path], stdin: bytes | None = None) -> FhirImport:
    """Import the FHIR files together; ``stdin``: the bytes of :data:`STDIN`, if among them."""
    # Imported here: the FHIR importer is only needed for FHIR input.
    try:
        from guidelinekg.fhir_import import import_fhir_files
        from guidelinekg.fhir_import.datatypes import parse_json_text, read_json_file
        from guidelinekg.fhir_import.importer import Importer
    except ImportError:
        raise InputError(paths[0], "FHIR import not available") from None
    if stdin is None:
        return import_fhir_files(paths)
    try:
        text = stdin.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(STDIN, f"not UTF-8 text ({error.reason})") from None
    return Importer([(str(path), parse_json_text(text, STDIN) if path == STDIN
                      else read_json_file(path)) for path in paths]).run()


def _is_json(path: Path, data: bytes) -> bool:
    suffix = stdin_suffix(data) if path == STDIN else path.suffix.lower()
    return suffix in JSON_SUFFIXES


def _is_fhir(path: Path, data: bytes) -> bool:
    """Whether a file is FHIR JSON (an object with resourceType); a Bulk Data manifest is
    refused: only a cohort run reads an export."""
    if not _is_json(path, data):
        return False
    document = _json_document(data, path)
    if not isinstance(document, dict):
        return False
    if "resourceType" in document:
        return True
    from guidelinekg.bulk_data import is_manifest  # here: it loads the FHIR importer

    if is_manifest(document):
        raise InputError(path, MANIFEST_COHORT_ONLY)
    return False


def _rdf_format(path: Path, data: bytes) -> ox.RdfFormat:
    if path == STDIN:
        return stdin_rdf_format(data)
    rdf_format = rdf_format_for(path)
    assert rdf_format is not None  # _read_bytes refused other file types
    return rdf_format


def _read_bytes(path: Path) -> bytes:
    if path == STDIN:
        data = read_stdin()
        stdin_suffix(data)  # refuses what only a cohort run reads
        return data
    if path.suffix.lower() == NDJSON_SUFFIX:
        raise InputError(path, NDJSON_COHORT_ONLY)
    if rdf_format_for(path) is None:
        raise InputError(path, "unknown file type; expected .ttl, .nt, .rdf/.owl/.xml, "
                               ".jsonld or .json (RDF or FHIR JSON)")
    return read_bytes_checked(path)


def _parse_rdf(path: Path, data: bytes) -> Graph:
    graph = parse_rdf_bytes(data, path, _rdf_format(path, data))
    _check_depth(graph, path)
    return graph


def read_patient_file(path: Path | str) -> tuple[Graph, str | None]:
    """One input file on its own as a graph, and the FHIR importer's summary for a FHIR
    file (several files that belong together: :func:`load_patient_input`)."""
    path = STDIN if str(path) == STDIO_ARGUMENT else Path(path)
    return read_patient_bytes(path, _read_bytes(path))


def read_patient_bytes(path: Path, data: bytes) -> tuple[Graph, str | None]:
    """:func:`read_patient_file` of bytes already read (``path``: :data:`STDIN` for standard
    input, or a copy of it: the format is then told from the content)."""
    if _is_fhir(path, data):
        imported = _import_fhir([path], data if path == STDIN else None)
        _check_depth(imported.graph, path)
        return imported.graph, imported.summary()
    return _parse_rdf(path, data), None


def _add_renaming_blank_nodes(target: Graph, source: Graph) -> None:
    """Add source's triples to target, each blank node of source under a fresh name (two
    files' ``_:dose`` are two doses, and must not become one shared by two patients)."""
    renamed: dict[BNode, BNode] = {}

    def fresh(term):
        if isinstance(term, BNode):
            if term not in renamed:
                renamed[term] = BNode()
            return renamed[term]
        return term

    for subject, predicate, obj in source:
        target.add((fresh(subject), predicate, fresh(obj)))


def load_patient_input(paths: Sequence[Path | str], *, fhir_only: bool = False,
                       quiet: bool = False) -> PatientInput:
    """All inputs merged into one graph: the FHIR files imported together, the RDF files
    each parsed and merged. ``fhir_only`` (import-fhir): every file must be FHIR JSON, and
    folders give their .json files. With several input files, the files of each patient
    (and the record items one file adds to another's patient) are written to standard
    error unless ``quiet``. ``-`` reads standard input."""
    files = input_files(paths, json_only=fhir_only, stdin=True)
    if not files:
        raise InputError("validate", "no input file given")
    fhir_paths: list[Path] = []
    rdf: list[tuple[Path, Graph]] = []
    stdin: bytes | None = None
    for path in files:
        # import-fhir's files are read by the importer; standard input only here, once.
        data = b"" if fhir_only and path != STDIN else _read_bytes(path)
        if path == STDIN:
            stdin = data
        if fhir_only or _is_fhir(path, data):
            fhir_paths.append(path)
        else:
            rdf.append((path, _parse_rdf(path, data)))
    result = PatientInput(graph=Graph(), files=files)
    graphs = [graph for _, graph in rdf]
    if fhir_paths:
        result.fhir = _import_fhir(fhir_paths, stdin if STDIN in fhir_paths else None)
        _check_depth(result.fhir.graph, fhir_paths[0])
        summaries = result.fhir.summaries()
        for path in dict.fromkeys(fhir_paths):
            result.fhir_summaries[path] = summaries[str(path)]
        graphs.append(result.fhir.graph)  # last: the import's own graph is not added to
    _record_provenance(result, rdf)
    # One input: no copy (rdflib adds cost seconds at cohort size).
    result.graph = graphs[0]
    for graph in graphs[1:]:
        _add_renaming_blank_nodes(result.graph, graph)
    if not quiet and len(set(files)) > 1:
        for line in result.provenance_lines():
            console.say(line)
    return result


def _contributions(result: PatientInput, rdf: Sequence[tuple[Path, Graph]]
                   ) -> tuple[dict[URIRef, list[Path]], dict[Path, dict[URIRef, int]]]:
    """Which files declare each patient, and how many record items each file gives each
    patient."""
    declared: dict[URIRef, list[Path]] = {}
    adds: dict[Path, dict[URIRef, int]] = {}
    if result.fhir is not None:
        for patient in result.fhir.patients:
            declared[patient] = [Path(s) for s in result.fhir.patient_sources.get(patient, [])]
        for source, patient in result.fhir.item_origins.values():
            counts = adds.setdefault(Path(source), {})
            counts[patient] = counts.get(patient, 0) + 1
    for path, graph in rdf:
        for node in graph.subjects(RDF.type, GKG.Patient):
            if isinstance(node, URIRef):
                declared.setdefault(node, []).append(path)
        counts = adds.setdefault(path, {})
        for item in set(graph.subjects(GKG.subject, None)):
            for subject in graph.objects(item, GKG.subject):
                if isinstance(subject, URIRef):
                    counts[subject] = counts.get(subject, 0) + 1
    return declared, adds


def _record_provenance(result: PatientInput, rdf: Sequence[tuple[Path, Graph]]) -> None:
    """Per patient, the files it came from; and the files that add record items to a
    patient another file declares."""
    declared, adds = _contributions(result, rdf)
    for patient, owners in declared.items():
        result.patient_files[patient] = list(dict.fromkeys(owners))
    for path, counts in adds.items():
        for patient, number in counts.items():
            owners = list(dict.fromkeys(declared.get(patient, [])))
            if path in owners:
                continue
            files = result.patient_files.setdefault(patient, [])
            if path not in files:
                files.append(path)
            items = f"{number} record item{'s' if number != 1 else ''}"
            result.cross_file.append(
                f"{path} adds {items} to patient <{patient}> of {', '.join(map(str, owners))}"
                if owners else
                f"{path}: {items} name patient <{patient}>, which no input file declares")


def absent_patient(graph: Graph, patient: URIRef | None, shown: int = 3) -> str | None:
    """Why ``patient`` (``recommend --patient``) cannot be reported on: not a gkg:Patient of
    the input (the first few that are, named); None when it is, or none was asked for."""
    if patient is None or (patient, RDF.type, GKG.Patient) in graph:
        return None
    patients = sorted(str(node) for node in graph.subjects(RDF.type, GKG.Patient))
    if not patients:
        return f"no patient <{patient}> in the input (it declares no gkg:Patient)"
    named = ", ".join(f"<{iri}>" for iri in patients[:shown])
    more = f" and {len(patients) - shown} more" if len(patients) > shown else ""
    return f"no patient <{patient}> in the input (patients: {named}{more})"


def load_patient_graph(paths: Sequence[Path | str]) -> Graph:
    """The patient graph of all inputs (files, folders of files, FHIR JSON), merged."""
    return load_patient_input(paths, quiet=True).graph
