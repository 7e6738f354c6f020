"""Reading RDF files safely, and the bundled guideline graph.

All RDF parsing of user files goes through :func:`parse_rdf_file` (or
:func:`parse_rdf_bytes` for data already in memory). It parses with pyoxigraph, which
reports the line and column of a syntax error, copes with very deep Turtle nesting, and
never fetches anything over the network (a JSON-LD file that points to a remote
``@context`` is refused, not fetched). The triples are handed on as an rdflib graph, with
``xsd:string`` literals turned back into plain literals so that SHACL ``sh:in`` lists and
SPARQL joins see the same terms as in the source file.

A hostile file must cost time and memory in proportion to its size, and fail with an
:class:`InputError` that names the file, never a traceback or a dead process. So, before
pyoxigraph sees the bytes:

- RDF/XML is scanned with the stdlib expat parser (C, streaming): a DOCTYPE is refused at
  once, so no entity is ever declared, expanded or fetched; element depth, attributes per
  element, namespaces in scope and single-token size are capped while scanning, because
  pyoxigraph's RDF/XML parser slows down quadratically in each of them.
- JSON-LD is read with :mod:`json` and walked without recursion: nesting depth is capped,
  and remote contexts are refused with a clear message.

While converting, the number of triples and the tags in ``rdf:HTML`` literals (which
rdflib parses, quadratically in their depth) are capped; errors the parsers raise
(``SyntaxError``, pyoxigraph's ``MemoryError`` on a token over 16 MiB, ``ValueError``,
``RecursionError``...) become InputErrors.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import BinaryIO, NoReturn
from xml.parsers import expat

from rdflib import Graph
from rdflib.term import Node

from guidelinekg import oxigraph as ox
from guidelinekg.oxigraph import from_oxigraph
from guidelinekg.resources import LIBRARY_VARIABLE, guideline_modules, modules

# Files larger than this are refused before reading: a patient record is never this big,
# and a runaway file must not exhaust memory.
MAX_FILE_BYTES = 512 * 1024 * 1024
# One literal, IRI or name longer than this is refused. It is pyoxigraph's own buffer limit
# for Turtle, N-Triples and JSON-LD; RDF/XML gets the same limit from the expat scan.
MAX_TOKEN_BYTES = 16 * 1024 * 1024
# Elements (RDF/XML) or objects and arrays (JSON-LD) nested deeper than this are refused
# while scanning. A record needs a handful of levels; pyoxigraph's RDF/XML parser takes
# time quadratic in the depth (84 s for 100,000 levels).
MAX_NESTING_DEPTH = 256
# Per RDF/XML element, and in scope at once: both make pyoxigraph quadratic too.
MAX_XML_ATTRIBUTES = 256
MAX_XML_NAMESPACES = 256
# Turtle can state a triple in two bytes ("( ( ( ..."), and an rdflib triple costs about
# a kilobyte, so the byte limit alone does not bound memory. Five million is what the
# largest accepted file holds in ordinary N-Triples; the bundled guideline has ~3,500.
MAX_TRIPLES = 5_000_000
# rdflib parses every rdf:HTML literal with html5rdf, in time quadratic in its nesting
# (256 nested <b> tags: 0.3 s), so the tags of all of a file's rdf:HTML literals together
# are capped: at most about a second of that work per file.
MAX_HTML_TAGS = 512

# CPython hands expat at most 1 MiB per call anyway; feeding that much at a time lets the
# scan see a token that never ends (expat re-reads a pending token on every call).
_XML_CHUNK_BYTES = 1024 * 1024
_READ_STEP_BYTES = 1024 * 1024
_RDF_HTML = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#HTML")
# The UTF-8 byte-order mark some editors (Notepad, Excel) write first: not part of the text.
UTF8_BOM = b"\xef\xbb\xbf"

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


def parses_whole_as(data: bytes, suffix: str) -> bool:
    """Whether ``data`` is RDF in the format of the file suffix, every byte of it, with at
    least one triple (telling the format of input that has no name)."""
    try:
        return sum(1 for _ in ox.parse(data.removeprefix(UTF8_BOM),
                                       format=RDF_FORMATS[suffix])) > 0
    except (SyntaxError, ValueError, OSError, MemoryError):
        return False


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


def too_deep(what: str) -> str:
    return (f"{what} nested more than {MAX_NESTING_DEPTH} levels deep (the limit; a record "
            "needs a few levels)")


def _too_long(size: str) -> str:
    return (f"a single literal, IRI or name is longer than the limit of "
            f"{MAX_TOKEN_BYTES // (1024 * 1024)} MiB ({size})")


class _XmlLimits:
    """expat handlers that refuse, as soon as they are seen, the XML constructs that make
    RDF/XML parsing explode: a DOCTYPE (entities), and too much depth, width or length."""

    def __init__(self, parser: expat.XMLParserType, path: Path | str) -> None:
        self.parser = parser
        self.path = path
        self.declared: list[int] = []  # namespace declarations of each open element
        self.in_scope = 0
        self.text = 0  # characters in the current run of text
        parser.StartDoctypeDeclHandler = self.doctype
        # Unreachable while every DOCTYPE is refused (entities live in one); kept so that
        # entities stay refused if the DOCTYPE rule is ever relaxed.
        parser.EntityDeclHandler = self.doctype
        parser.StartElementHandler = self.start
        parser.EndElementHandler = self.end
        parser.CharacterDataHandler = self.characters

    def refuse(self, message: str) -> NoReturn:
        raise InputError(self.path, message, self.parser.CurrentLineNumber,
                         self.parser.CurrentColumnNumber + 1)

    def doctype(self, *_: object) -> NoReturn:
        self.refuse("XML DOCTYPE and entity declarations are not accepted (entities can "
                    "expand without bound, and an external DTD or entity would have to be "
                    "fetched); remove the DOCTYPE")

    def start(self, _name: str, attributes: list[str]) -> None:
        self.text = 0
        if len(self.declared) >= MAX_NESTING_DEPTH:
            self.refuse(too_deep("XML elements"))
        if len(attributes) > 2 * MAX_XML_ATTRIBUTES:
            self.refuse(f"an XML element has {len(attributes) // 2} attributes (the limit is "
                        f"{MAX_XML_ATTRIBUTES})")
        if attributes and max(map(len, attributes)) > MAX_TOKEN_BYTES:
            self.refuse(_too_long("an XML attribute value"))
        declared = sum(1 for key in attributes[::2] if key.startswith("xmlns"))
        self.in_scope += declared
        if self.in_scope > MAX_XML_NAMESPACES:
            self.refuse(f"more than {MAX_XML_NAMESPACES} XML namespace declarations are in "
                        "scope at once (the limit)")
        self.declared.append(declared)

    def end(self, _name: str) -> None:
        self.text = 0
        self.in_scope -= self.declared.pop()

    def characters(self, text: str) -> None:
        self.text += len(text)
        if self.text > MAX_TOKEN_BYTES:
            self.refuse(_too_long("XML text"))


def check_xml_limits(data: bytes, path: Path | str) -> None:
    """Scan XML with expat, in time linear in its size, and raise an InputError (file, line,
    column) at the first DOCTYPE, malformed markup, or construct over the module's limits.
    Nothing is expanded or fetched: the scan stops at a DOCTYPE before its first
    declaration, and expat itself never opens a file or URL."""
    parser = expat.ParserCreate()  # namespaces unprocessed: xmlns="..." counts as declared
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.ordered_attributes = True
    parser.buffer_text = True
    limits = _XmlLimits(parser, path)
    view = memoryview(data)
    try:
        for start in range(0, len(view), _XML_CHUNK_BYTES):
            fed = start + len(chunk := view[start:start + _XML_CHUNK_BYTES])
            parser.Parse(chunk, False)
            # CurrentByteIndex is where the token expat is still waiting to complete began.
            if fed - parser.CurrentByteIndex > MAX_TOKEN_BYTES:
                limits.refuse(_too_long("an XML tag, comment or other markup"))
        parser.Parse(b"", True)
    except expat.ExpatError as error:
        raise InputError(path, f"not well-formed XML: {expat.ErrorString(error.code)}",
                         error.lineno, error.offset + 1) from None


def rdf_format_for(path: Path) -> ox.RdfFormat | None:
    return RDF_FORMATS.get(path.suffix.lower())


def _read_at_most(stream: BinaryIO, limit: int) -> bytes:
    chunks: list[bytes] = []
    while limit > 0 and (chunk := stream.read(min(limit, _READ_STEP_BYTES))):
        chunks.append(chunk)
        limit -= len(chunk)
    return b"".join(chunks)


def read_bytes_checked(path: Path) -> bytes:
    """The file's bytes, or an InputError for a missing, unreadable, empty or huge file."""
    try:
        status = path.stat()
    except OSError as error:
        raise InputError(path, f"cannot read the file ({error.strerror})") from None
    if stat.S_ISDIR(status.st_mode):
        raise InputError(path, "is a folder, not a file")
    # A device such as /dev/zero reports size 0 and never ends.
    if not (stat.S_ISREG(status.st_mode) or stat.S_ISFIFO(status.st_mode)):
        raise InputError(path, "is not a regular file")
    if status.st_size > MAX_FILE_BYTES:
        raise InputError(path, f"file is too large ({status.st_size} bytes; "
                               f"limit {MAX_FILE_BYTES})")
    try:
        with path.open("rb") as stream:
            # Exactly the size stat gave (read(n) allocates n bytes up front)...
            data = stream.read(status.st_size + 1)
            if len(data) > status.st_size:
                # ...but a pipe, or a file that grew since, is read on in steps, and only
                # up to the limit.
                data += _read_at_most(stream, MAX_FILE_BYTES + 1 - len(data))
    except OSError as error:
        raise InputError(path, f"cannot read the file ({error.strerror})") from None
    return checked_bytes(data, path)


def checked_bytes(data: bytes, source: Path | str) -> bytes:
    """A file's bytes, however they were read, or an InputError for an empty or huge one."""
    if len(data) > MAX_FILE_BYTES:
        raise InputError(source, f"file is too large (over the limit of {MAX_FILE_BYTES} "
                                 "bytes)")
    if not data.strip():
        raise InputError(source, "the file is empty")
    return data


def _parse_error(error: Exception, path: Path, rdf_format: ox.RdfFormat) -> InputError:
    """The InputError for an exception raised while pyoxigraph (or rdflib) parsed a file."""
    name = rdf_format.name
    if isinstance(error, SyntaxError):
        message = str(error.msg if hasattr(error, "msg") else error)
        return InputError(path, f"not valid {name}: {message}", getattr(error, "lineno", None),
                          getattr(error, "offset", None))
    if isinstance(error, MemoryError):
        # pyoxigraph raises MemoryError("Reached the buffer maximal size of 16777216") for
        # an over-long token: that is a fault of the file, not of the machine.
        if "buffer maximal size" in str(error):
            return InputError(path, f"not valid {name}: " + _too_long("more than the parser "
                                                                      "can buffer"))
        return InputError(path, f"ran out of memory while reading this {name} file")
    if isinstance(error, RecursionError):
        return InputError(path, f"not valid {name}: nested too deeply to read")
    return InputError(path, f"not valid {name}: {error}")


def _read_triples(data: bytes, path: Path, rdf_format: ox.RdfFormat) -> tuple[Graph, int]:
    """The file's triples as an rdflib graph, and how many statements the parser gave."""
    graph = Graph()
    add = graph.add
    html_tags = 0
    # One rdflib term per distinct term of the file: made once (a literal parses its value
    # when made), and every later lookup of it in a dictionary or graph index is then
    # settled by identity, without rdflib's comparison in Python.
    terms: dict[ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple, Node] = {}

    def term(found: ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple) -> Node:
        made = terms.get(found)
        if made is None:
            made = terms[found] = from_oxigraph(found)
        return made

    quads = ox.parse(data, format=rdf_format, base_iri=path.resolve().as_uri())
    count = 0
    for count, quad in enumerate(quads, start=1):
        if count > MAX_TRIPLES:
            raise InputError(path, f"more than {MAX_TRIPLES} triples (the limit)")
        obj = quad.object
        if isinstance(obj, ox.Literal) and obj.datatype == _RDF_HTML:
            html_tags += obj.value.count("<")
            if html_tags > MAX_HTML_TAGS:
                raise InputError(path, f"rdf:HTML literals with more than {MAX_HTML_TAGS} tags "
                                       "in all (the limit; parsing them slows down with "
                                       "their nesting)")
        add((term(quad.subject), term(quad.predicate), term(obj)))
    return graph, count


def parse_rdf_bytes(data: bytes, path: Path, rdf_format: ox.RdfFormat) -> Graph:
    """Parse RDF bytes into an rdflib graph, with errors that name the file and line. A
    leading byte-order mark is dropped: the Turtle and N-Triples parsers would refuse it as
    an (invisible) first character, though the JSON and XML readers accept it."""
    data = data.removeprefix(UTF8_BOM)
    if len(data) > MAX_FILE_BYTES:
        raise InputError(path, f"too large ({len(data)} bytes; limit {MAX_FILE_BYTES})")
    if rdf_format == ox.RdfFormat.RDF_XML:
        check_xml_limits(data, path)
    document: object = None
    if rdf_format == ox.RdfFormat.JSON_LD:
        from guidelinekg.json_ld_checks import check_json_ld

        document = check_json_ld(data, path)
    try:
        graph, statements = _read_triples(data, path, rdf_format)
        if rdf_format == ox.RdfFormat.JSON_LD:
            from guidelinekg.json_ld_checks import check_json_ld_read_whole

            check_json_ld_read_whole(data, document, path, statements)
        return graph
    except (SyntaxError, ValueError, OSError, MemoryError, RecursionError) as error:
        failure = _parse_error(error, path, rdf_format)
    # Raised outside the except block, so that the half-built graph, which the original
    # exception's traceback holds, is freed now rather than when the InputError is.
    raise failure


def parse_ntriples(data: bytes, what: str) -> Graph:
    """N-Triples the project wrote itself (a cohort partition sent to a worker process)."""
    return parse_rdf_bytes(data, Path(what), ox.RdfFormat.N_TRIPLES)


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


def _guideline_prefixes() -> dict[str, str]:
    """Each guideline's prefix, named by its folder: guidelines/NAME/ holds the statements
    of NAME: <https://w3id.org/guidelinekg/guideline/NAME/> (a new guideline brings its
    prefix with its folder, and no code names one)."""
    return {module.name: f"{BASE}guideline/{module.name}/" for module in guideline_modules()}


# The core's prefixes; guidelinekg.namespaces builds its namespaces from them.
CORE_PREFIXES: dict[str, str] = {
    "gkg": BASE + "ontology#",
    "fact": BASE + "fact/",
    "code": BASE + "code/",
    "unit": BASE + "unit/",
}
_STANDARD_PREFIXES: dict[str, str] = {
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "dcterms": "http://purl.org/dc/terms/",
    "prov": "http://www.w3.org/ns/prov#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
}


@cache
def _prefix_table(library: str) -> dict[str, str]:
    """The prefixes for one GUIDELINEKG_LIBRARY setting (``library`` is its value)."""
    return {**CORE_PREFIXES, **_guideline_prefixes(), **_STANDARD_PREFIXES}


class _ProjectPrefixes(Mapping[str, str]):
    """The project's prefixes: the core's, one per guideline found, the standard ones.
    Read when used, so guidelines added through GUIDELINEKG_LIBRARY get theirs."""

    def _current(self) -> dict[str, str]:
        # Read per use (reports ask thousands of times): cached by the library setting.
        return _prefix_table(os.environ.get(LIBRARY_VARIABLE, ""))

    def __getitem__(self, key: str) -> str:
        return self._current()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


PREFIXES: Mapping[str, str] = _ProjectPrefixes()


def ontology_files() -> list[Path]:
    """Every module's ontology: the core, the domains, each guideline's vocabulary and
    content, in a stable order."""
    return [path for module in modules() for path in module.ontology_files()]


def vocabulary_files() -> list[Path]:
    """The ontology without guideline content: what patient records are checked against
    (a guideline's dose steps would otherwise be validated as if they were a patient's)."""
    return [path for module in modules() for path in module.vocabulary_files()]


@cache
def _merged_files(paths: tuple[Path, ...]) -> Graph:
    return merge_graphs(parse_rdf_file(path) for path in paths)


def shared_guideline_graph() -> Graph:
    """The knowledge graph as read once: shared by every caller, so never to be changed
    (:func:`guideline_graph` gives a copy to change)."""
    return _merged_files(tuple(ontology_files()))


def guideline_graph() -> Graph:
    """The knowledge graph: every module's ontology and all guideline content (a copy)."""
    copy = Graph()
    for triple in _merged_files(tuple(ontology_files())):
        copy.add(triple)
    return bind_project_prefixes(copy)
