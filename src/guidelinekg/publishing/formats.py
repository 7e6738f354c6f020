"""What the site is written in: the RDF formats and media types, the JSON-LD context, the
prefixes, and the site path of an IRI.

Every format is written in one sorted order by the writers of rdf_output.py (rdflib's
serialisers follow the hash seed), so building twice gives the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rdflib import Graph, Namespace
from rdflib.namespace import RDF, SH
from rdflib.term import Node

from guidelinekg.loading import BASE, PREFIXES
from guidelinekg.rdf_output import (
    Prefixes,
    Triple,
    graph_of,
    jsonld_document,
    stable_triples,
    term_key,
    write_jsonld,
    write_ntriples,
    write_rdfxml,
    write_turtle,
)
from guidelinekg.resources import guideline_modules

PACKAGE_DIR = Path(__file__).resolve().parents[1]
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
CONTEXT_FILE = PACKAGE_DIR / "site_context.jsonld"
MANIFEST_NAME = ".guidelinekg-site.json"

VOID = Namespace("http://rdfs.org/ns/void#")
DCAT = Namespace("http://www.w3.org/ns/dcat#")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
VANN = Namespace("http://purl.org/vocab/vann/")
IANA_MEDIA = "https://www.iana.org/assignments/media-types/"

HTML = "text/html"
FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class RdfFormat:
    extension: str
    media_type: str
    name: str


RDF_FORMATS: tuple[RdfFormat, ...] = (
    RdfFormat("ttl", "text/turtle", "Turtle"),
    RdfFormat("jsonld", "application/ld+json", "JSON-LD"),
    RdfFormat("rdf", "application/rdf+xml", "RDF/XML"),
    RdfFormat("nt", "application/n-triples", "N-Triples"),
)
MEDIA_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".ttl": "text/turtle; charset=utf-8",
    ".jsonld": "application/ld+json",
    ".rdf": "application/rdf+xml",
    ".nt": "application/n-triples",
    ".json": "application/fhir+json",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}

# Namespaces bound in every output, besides the project's own (loading.PREFIXES).
EXTRA_PREFIXES: dict[str, str] = {
    "rdf": str(RDF),
    "sh": str(SH),
    "void": str(VOID),
    "dcat": str(DCAT),
    "foaf": str(FOAF),
    "vann": str(VANN),
    "schema": "http://schema.org/",
}


def site_context() -> dict[str, str]:
    """The JSON-LD context of the site: prefix definitions only.

    The shipped file holds the core's and the standard prefixes; each guideline found brings
    its own (loading.PREFIXES), placed after the project's core prefixes, so the code names no
    guideline and a guideline added through GUIDELINEKG_LIBRARY is compacted too.
    """
    shipped: dict[str, str] = json.loads(CONTEXT_FILE.read_text(encoding="utf-8"))["@context"]
    guideline_names = {module.name for module in guideline_modules()}
    own = {prefix: namespace for prefix, namespace in PREFIXES.items()
           if prefix in guideline_names and prefix not in shipped}
    core = {prefix: namespace for prefix, namespace in shipped.items()
            if PREFIXES.get(prefix) == namespace and namespace.startswith(BASE)}
    rest = {prefix: namespace for prefix, namespace in shipped.items() if prefix not in core}
    return {**core, **dict(sorted(own.items())), **rest}


def context_document() -> bytes:
    """The site's ``context.jsonld``: the context as a document, written like the shipped file."""
    return (json.dumps({"@context": site_context()}, indent=2, ensure_ascii=False)
            + "\n").encode("utf-8")


def all_prefixes() -> dict[str, str]:
    prefixes = dict(site_context())
    prefixes.update(PREFIXES)
    prefixes.update(EXTRA_PREFIXES)
    return dict(sorted(prefixes.items()))


def site_prefixes(declared: list[dict[str, str]]) -> Prefixes:
    """The prefixes of every output: the project's, then those the source files declare
    (a prefix or namespace already known is not bound twice)."""
    prefix_map = all_prefixes()
    for prefixes in declared:
        for prefix, namespace in prefixes.items():
            prefix_map.setdefault(prefix, namespace)
    return Prefixes(prefix_map)


def _term_key(term: Node) -> tuple:
    return term_key(term)


def stable_graph(graph: Graph) -> tuple[Graph, list[Triple]]:
    """A graph with content-derived blank node labels, and its triples in sorted order."""
    triples = stable_triples(graph)
    return graph_of(triples), triples


def write_rdf(extension: str, triples: list[Triple], prefixes: Prefixes) -> bytes:
    """One graph in one format; JSON-LD always with the site's context."""
    if extension == "ttl":
        return write_turtle(triples, prefixes)
    if extension == "nt":
        return write_ntriples(triples)
    if extension == "rdf":
        return write_rdfxml(triples, prefixes)
    if extension == "jsonld":
        return write_jsonld(triples, site_context())
    raise ValueError(f"no writer for .{extension}")


def to_jsonld_document(graph: Graph) -> dict:
    return jsonld_document(stable_triples(graph), site_context())


def script_json(document: dict) -> str:
    """JSON for a <script> element: '<' escaped so the text can never close the element."""
    return json.dumps(document, indent=2, ensure_ascii=False).replace("<", "\\u003c")


def relative_path(iri: str) -> str | None:
    """The path of an IRI under BASE (without its #fragment), or None outside BASE."""
    if not iri.startswith(BASE):
        return None
    return iri[len(BASE):].split("#", 1)[0].rstrip("/")


def site_path(iri: Node) -> str:
    """The path of a term's page on the site: only a term under BASE has one."""
    path = relative_path(str(iri))
    if path is None:
        raise ValueError(f"{iri} is not under {BASE}: the site has no page for it")
    return path
