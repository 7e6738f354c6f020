"""Routes: which document answers for which IRI path, per media type.

The same routes drive the pages' links, the redirect rules of the persistent IRIs
(``.htaccess``) and the content negotiation of ``guidelinekg serve``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rdflib import Graph, URIRef
from rdflib.namespace import RDF

from guidelinekg.guideline_content import Guideline
from guidelinekg.loading import BASE
from guidelinekg.namespaces import GKG
from guidelinekg.publishing.formats import (
    FHIR_JSON,
    HTML,
    RDF_FORMATS,
    relative_path,
    site_path,
)
from guidelinekg.publishing.graphs import PublishedGraph

_SAFE_PATH = re.compile(r"^[A-Za-z0-9_~-][A-Za-z0-9._~-]*(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*$")


@dataclass
class Route:
    """The documents of one IRI path: media type -> site path."""

    path: str
    documents: dict[str, str]
    kind: str  # "graph", "version", "resource", "dataset"


def resource_paths(union: Graph, reserved: set[str], notes: list[str]) -> list[str]:
    """The paths (under BASE) of every IRI of the graph that gets its own documents."""
    found: set[str] = set()
    for triple in union:
        for term in triple:
            if isinstance(term, URIRef) and str(term).startswith(BASE):
                path = relative_path(str(term))
                if path and path not in reserved:
                    found.add(path)
    paths = []
    for path in sorted(found):
        if not _SAFE_PATH.match(path) or ".." in path.split("/"):
            notes.append(f"{BASE}{path}: not a plain path; no document is published for it")
            continue
        paths.append(path)
    return paths


# Graphs whose terms the ontology page documents: they share the core's namespace
# (gkg:Term is ontology#Term wherever it is declared), so that page is where they resolve.
ONTOLOGY_PAGE_KINDS = ("core", "domain", "vocabulary")


def assign_doc_pages(graphs: list[PublishedGraph], guideline_list: list[Guideline]) -> None:
    """The HTML page documenting each graph: the ontology page (the core, the domains, the
    guidelines' vocabularies), a shapes or CodeSystem page, the guideline's page for a
    guideline's content, the version index otherwise."""
    for graph in graphs:
        if graph.kind in ONTOLOGY_PAGE_KINDS:
            graph.doc_page = "ontology.html"
        elif graph.kind in ("shapes", "codesystem"):
            graph.doc_page = f"{graph.folder}.html"
        else:
            inside = [g for g in guideline_list if (g.iri, RDF.type, GKG.Guideline) in graph.graph]
            graph.doc_page = (site_path(inside[0].iri) + ".html") if len(inside) == 1 \
                else f"{graph.version_folder}/index.html"


def _graph_documents(graph: PublishedGraph, version: str, html: str) -> dict[str, str]:
    documents = {HTML: html}
    documents.update({f.media_type: graph.file(version, f.extension) for f in RDF_FORMATS})
    for name in graph.raw_files:
        documents[FHIR_JSON] = f"{graph.folder}/{version}/{name}"
    return documents


def graph_routes(graphs: list[PublishedGraph]) -> dict[str, Route]:
    """A graph's IRI answers with its latest files; its version IRI (and the version folder)
    with the files of that version."""
    routes: dict[str, Route] = {}
    for graph in graphs:
        routes[graph.folder] = Route(graph.folder, _graph_documents(
            graph, "latest", graph.doc_page), "graph")
        version_documents = _graph_documents(graph, graph.version,
                                              f"{graph.version_folder}/index.html")
        version_paths = {graph.version_folder}
        if graph.version_iri is not None and relative_path(str(graph.version_iri)):
            version_paths.add(relative_path(str(graph.version_iri)) or graph.version_folder)
        for path in version_paths:
            routes[path] = Route(path, version_documents, "version")
    return routes


def dataset_route() -> Route:
    """The dataset description (VoID/DCAT): the index page in HTML."""
    return Route("void", {HTML: "index.html", **{
        f.media_type: f"void.{f.extension}" for f in RDF_FORMATS}}, "dataset")


def resource_routes(union: Graph, routes: dict[str, Route], graphs: list[PublishedGraph],
                    notes: list[str]) -> dict[str, Route]:
    """Every other IRI under BASE with a plain path: its page and its four RDF documents."""
    reserved = set(routes) | {"sparql"} | {f"{g.folder}/latest" for g in graphs}
    return {path: Route(path, {HTML: f"{path}.html", **{
        f.media_type: f"{path}.{f.extension}" for f in RDF_FORMATS}}, "resource")
        for path in resource_paths(union, reserved, notes)}
