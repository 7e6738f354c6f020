"""Reading RDF files safely, and the bundled guideline graph.

All RDF parsing of user files goes through :func:`parse_rdf_file`. It parses with
pyoxigraph, which reports the line and column of a syntax error, copes with very deep
nesting, and never fetches anything over the network (a JSON-LD file that points to a
remote ``@context`` is refused, not fetched). The triples are handed on as an rdflib
graph, with ``xsd:string`` literals turned back into plain literals so that SHACL
``sh:in`` lists and SPARQL joins see the same terms as in the source file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import XSD
from rdflib.term import Node

from guidelinekg.resources import ontology_dir

# Files larger than this are refused before parsing: a patient record is never this big,
# and a runaway file must not exhaust memory.
MAX_FILE_BYTES = 512 * 1024 * 1024

RDF_FORMATS: dict[str, ox.RdfFormat] = {
    ".ttl": ox.RdfFormat.TURTLE,
    ".turtle": ox.RdfFormat.TURTLE,
    ".nt": ox.RdfFormat.N_TRIPLES,
    ".ntriples": ox.RdfFormat.N_TRIPLES,
    ".nq": ox.RdfFormat.N_QUADS,
    ".trig": ox.RdfFormat.TRIG,
    ".rdf": ox.RdfFormat.RDF_XML,
    ".owl": ox.RdfFormat.RDF_XML,
    ".xml": ox.RdfFormat.RDF_XML,
    ".jsonld": ox.RdfFormat.JSON_LD,
    ".json": ox.RdfFormat.JSON_LD,
}


class InputError(Exception):
    """A file that cannot be read as asked; the message names the file (and line)."""

    def __init__(self, path: Path | str, message: str, line: int | None = None,
                 column: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.column = column
        self.detail = message
        where = self.path if line is None else f"{self.path}, line {line}"
        if line is not None and column is not None:
            where += f", column {column}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class RdfSource:
    """A parsed file: its path and triples (rdflib terms)."""

    path: Path
    graph: Graph


def from_oxigraph(term: ox.NamedNode | ox.BlankNode | ox.Literal) -> Node:
    """An rdflib term for a pyoxigraph term (plain literals stay plain)."""
    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    if isinstance(term, ox.Literal):
        if term.language:
            return Literal(term.value, lang=term.language)
        if term.datatype.value == str(XSD.string):
            return Literal(term.value)
        return Literal(term.value, datatype=URIRef(term.datatype.value))
    raise TypeError(f"unsupported RDF term {term!r}")


def to_oxigraph(term: Node) -> ox.NamedNode | ox.BlankNode | ox.Literal:
    """A pyoxigraph term for an rdflib term."""
    if isinstance(term, URIRef):
        return ox.NamedNode(str(term))
    if isinstance(term, BNode):
        return ox.BlankNode(str(term))
    if isinstance(term, Literal):
        if term.language:
            return ox.Literal(str(term), language=term.language)
        if term.datatype is not None:
            return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype)))
        return ox.Literal(str(term))
    raise TypeError(f"unsupported RDF term {term!r}")


def _remote_contexts(value: object) -> Iterator[str]:
    """Every ``@context`` in a JSON-LD document that is a reference, not inline."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "@context":
                contexts = item if isinstance(item, list) else [item]
                yield from (c for c in contexts if isinstance(c, str))
            yield from _remote_contexts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _remote_contexts(item)


def rdf_format_for(path: Path) -> ox.RdfFormat | None:
    return RDF_FORMATS.get(path.suffix.lower())


def read_bytes_checked(path: Path) -> bytes:
    """The file's bytes, or an InputError for a missing, unreadable, empty or huge file."""
    try:
        size = path.stat().st_size
    except OSError as error:
        raise InputError(path, f"cannot read the file ({error.strerror})") from None
    if path.is_dir():
        raise InputError(path, "is a folder, not a file")
    if size > MAX_FILE_BYTES:
        raise InputError(path, f"file is too large ({size} bytes; limit {MAX_FILE_BYTES})")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(path, f"cannot read the file ({error.strerror})") from None
    if not data.strip():
        raise InputError(path, "the file is empty")
    return data


def parse_rdf_bytes(data: bytes, path: Path, rdf_format: ox.RdfFormat) -> Graph:
    """Parse RDF bytes into an rdflib graph, with errors that name the file and line."""
    if rdf_format == ox.RdfFormat.JSON_LD:
        try:
            document = json.loads(data)
        except (ValueError, RecursionError) as error:
            raise InputError(path, f"not valid JSON ({error})") from None
        remote = sorted(set(_remote_contexts(document)))
        if remote:
            raise InputError(
                path,
                "JSON-LD points to a remote @context (" + ", ".join(remote) + "); "
                "guidelinekg fetches nothing over the network: inline the context",
            )
    graph = Graph()
    add = graph.add
    try:
        for quad in ox.parse(data, format=rdf_format, base_iri=path.resolve().as_uri()):
            add((from_oxigraph(quad.subject), from_oxigraph(quad.predicate),
                 from_oxigraph(quad.object)))
    except SyntaxError as error:
        line = getattr(error, "lineno", None)
        column = getattr(error, "offset", None)
        message = str(error.msg if hasattr(error, "msg") else error)
        raise InputError(path, f"not valid {rdf_format.name}: {message}", line, column) from None
    except (ValueError, OSError) as error:
        raise InputError(path, f"not valid {rdf_format.name}: {error}") from None
    return graph


def parse_rdf_file(path: Path | str, rdf_format: ox.RdfFormat | None = None) -> Graph:
    """Parse one RDF file (format from its extension unless given)."""
    path = Path(path)
    rdf_format = rdf_format or rdf_format_for(path)
    if rdf_format is None:
        raise InputError(
            path, "unknown file type; expected .ttl, .nt, .rdf/.owl/.xml, .jsonld or .json"
        )
    data = read_bytes_checked(path)
    return parse_rdf_bytes(data, path, rdf_format)


def merge_graphs(graphs: Iterable[Graph]) -> Graph:
    merged = Graph()
    for graph in graphs:
        for triple in graph:
            merged.add(triple)
    return merged


def bind_project_prefixes(graph: Graph) -> Graph:
    """Bind the project's prefixes (from the bundled ontology) on a graph for output."""
    for prefix, namespace in PREFIXES.items():
        graph.bind(prefix, namespace, override=True)
    return graph


# The project's namespaces. The ontology files declare the same prefixes.
BASE = "https://w3id.org/guidelinekg/"
PREFIXES: dict[str, str] = {
    "gkg": BASE + "ontology#",
    "fact": BASE + "fact/",
    "code": BASE + "code/",
    "unit": BASE + "unit/",
    "bcbm": BASE + "guideline/bcbm/",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "dcterms": "http://purl.org/dc/terms/",
    "prov": "http://www.w3.org/ns/prov#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
}


def ontology_files() -> list[Path]:
    """The core ontology and every guideline's content, in a stable order."""
    root = ontology_dir()
    return sorted(root.glob("*.ttl")) + sorted((root / "guidelines").glob("*.ttl"))


@cache
def _guideline_graph_cached() -> Graph:
    return merge_graphs(parse_rdf_file(path) for path in ontology_files())


def guideline_graph() -> Graph:
    """The bundled knowledge graph: core ontology plus all guideline content (a copy)."""
    copy = Graph()
    for triple in _guideline_graph_cached():
        copy.add(triple)
    return bind_project_prefixes(copy)
