"""Loading patient inputs: RDF files (or folders of them) and FHIR JSON, into one graph.

Every file is parsed through :func:`guidelinekg.loading.parse_rdf_bytes` (pyoxigraph: line
and column on syntax errors, remote JSON-LD contexts refused, nothing fetched). A JSON file
whose top-level object has ``resourceType`` is FHIR and goes through
``guidelinekg.fhir_import``. Several patients may share the merged graph: record items name
their patient, and blank nodes of different files never merge: pyoxigraph keeps a file's
blank-node labels (``_:dose``), so each file's blank nodes are renamed apart when files are
merged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import BNode, Graph

from guidelinekg.loading import (
    RDF_FORMATS,
    InputError,
    parse_rdf_bytes,
    rdf_format_for,
    read_bytes_checked,
)

JSON_SUFFIXES = (".json", ".jsonld")
# A patient record nests blank nodes two levels deep at most (a treatment's dose); a
# document nested far deeper is not a record, and deep nesting makes rdflib and pySHACL
# recurse until they crash.
MAX_BLANK_NODE_DEPTH = 50


@dataclass
class PatientInput:
    """The merged patient graph and what each input file gave."""

    graph: Graph
    files: list[Path] = field(default_factory=list)
    # FHIR files: path -> the importer's one-line summary (record items, ignored resources)
    fhir_summaries: dict[Path, str] = field(default_factory=dict)


def input_files(paths: Iterable[Path | str]) -> list[Path]:
    """The files to read: each file as given, and the RDF/JSON files of each folder
    (recursively, sorted, hidden files and folders skipped)."""
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = [
                candidate for candidate in sorted(path.rglob("*"))
                if candidate.is_file()
                and candidate.suffix.lower() in RDF_FORMATS
                and not any(part.startswith(".") for part in candidate.relative_to(path).parts)
            ]
            if not found:
                raise InputError(path, "the folder holds no RDF or JSON file")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise InputError(path, "no such file or folder")
    return files


def _json_document(data: bytes, path: Path) -> object:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise InputError(path, f"not UTF-8 text, so not JSON ({error.reason})") from None
    except RecursionError:
        raise InputError(path, "the JSON is nested too deeply to read (over 1,000 levels): "
                               "not a patient record") from None
    except json.JSONDecodeError as error:
        raise InputError(path, f"not valid JSON ({error.msg}); a {path.suffix} file is read as "
                               "JSON-LD or FHIR JSON", error.lineno, error.colno) from None


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


def _import_fhir(path: Path):
    # Imported here: the FHIR importer is only needed for FHIR input.
    try:
        from guidelinekg.fhir_import import import_fhir_file
    except ImportError:
        raise InputError(path, "FHIR import not available") from None
    return import_fhir_file(path)


def read_patient_file(path: Path | str) -> tuple[Graph, str | None]:
    """One input file as a graph, and the FHIR importer's summary for a FHIR file."""
    path = Path(path)
    rdf_format = rdf_format_for(path)
    if rdf_format is None:
        raise InputError(path, "unknown file type; expected .ttl, .nt, .rdf/.owl/.xml, "
                               ".jsonld or .json (RDF or FHIR JSON)")
    data = read_bytes_checked(path)
    if path.suffix.lower() in JSON_SUFFIXES:
        document = _json_document(data, path)
        if isinstance(document, dict) and "resourceType" in document:
            imported = _import_fhir(path)
            summary = imported.report_text().splitlines()[0]
            _check_depth(imported.graph, path)
            return imported.graph, summary
    graph = parse_rdf_bytes(data, path, rdf_format)
    _check_depth(graph, path)
    return graph, None


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


def load_patient_input(paths: Sequence[Path | str]) -> PatientInput:
    """All inputs merged into one graph, with the list of files read."""
    files = input_files(paths)
    if not files:
        raise InputError("validate", "no input file given")
    merged: Graph | None = None
    result = PatientInput(graph=Graph(), files=files)
    for path in files:
        graph, summary = read_patient_file(path)
        if summary is not None:
            result.fhir_summaries[path] = summary
        if merged is None:
            merged = graph  # one input: no copy (rdflib adds cost seconds at cohort size)
        else:
            _add_renaming_blank_nodes(merged, graph)
    result.graph = merged if merged is not None else Graph()
    return result


def load_patient_graph(paths: Sequence[Path | str]) -> Graph:
    """The patient graph of all inputs (files, folders of files, FHIR JSON), merged."""
    return load_patient_input(paths).graph
