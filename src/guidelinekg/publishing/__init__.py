"""``guidelinekg publish --out DIR``: the guidelines as a static linked-data site.

The site is built offline and deterministically: building twice gives byte-identical files.
Every graph (core ontology, each domain, each guideline's content and vocabulary, the
shapes, the FHIR CodeSystems) is written as Turtle, JSON-LD, RDF/XML and N-Triples under a
folder for its version and under ``latest/``; every IRI of the project namespace gets its
own documents (HTML and the four RDF formats); the guidelines, their recommendations, the
ontology and the data a patient record needs are documented in HTML; VoID/DCAT describe the
dataset; ``.htaccess`` holds the redirect rules of the persistent IRIs
(https://w3id.org/guidelinekg/...).

Determinism: blank nodes get labels derived from their content, and every format is written
in one sorted order by the writers of rdf_output.py (rdflib's serialisers follow the hash
seed); nothing carries a build time: the only dates are the graphs' own modified dates.

JSON-LD is compacted with the context shipped in the site (``context.jsonld``), inlined in
every document, so no reader ever fetches a remote context.

The modules, by responsibility (``build.build_site`` runs them as steps):

- ``formats``: RDF formats, media types, the JSON-LD context and prefixes, site paths;
- ``graphs``: the graphs to publish, read from the modules' files and FHIR CodeSystems;
- ``routes``: which document answers for which IRI path;
- ``pages``: what templates are given (links, labels, property rows, descriptions);
- ``ontology_page``, ``shapes_page``: the views of the ontology and of SHACL shapes;
- ``dataset``: VoID/DCAT; ``redirects``: the ``.htaccess`` rules;
- ``output``: the manifest, clearing an earlier build, writing; ``command``: the CLI.
"""

from __future__ import annotations

from guidelinekg.publishing.build import build_site
from guidelinekg.publishing.command import add_arguments, run
from guidelinekg.publishing.dataset import DATASET_DOCUMENT, void_graph
from guidelinekg.publishing.formats import (
    CONTEXT_FILE,
    DCAT,
    EXTRA_PREFIXES,
    FHIR_JSON,
    FOAF,
    HTML,
    MANIFEST_NAME,
    MEDIA_TYPES,
    RDF_FORMATS,
    STATIC_DIR,
    TEMPLATES_DIR,
    VANN,
    VOID,
    RdfFormat,
    all_prefixes,
    script_json,
    site_context,
    stable_graph,
    to_jsonld_document,
    write_rdf,
)
from guidelinekg.publishing.graphs import PublishedGraph, codesystem_graph, collect_graphs
from guidelinekg.publishing.ontology_page import ontology_view
from guidelinekg.publishing.output import Site, _prepare_out
from guidelinekg.publishing.pages import Page, SiteContext, describe, notice, property_rows
from guidelinekg.publishing.redirects import htaccess
from guidelinekg.publishing.routes import Route, resource_paths
from guidelinekg.publishing.shapes_page import shape_anchor, shape_path_text, shapes_view

__all__ = [
    "CONTEXT_FILE",
    "DATASET_DOCUMENT",
    "DCAT",
    "EXTRA_PREFIXES",
    "FHIR_JSON",
    "FOAF",
    "HTML",
    "MANIFEST_NAME",
    "MEDIA_TYPES",
    "RDF_FORMATS",
    "STATIC_DIR",
    "TEMPLATES_DIR",
    "VANN",
    "VOID",
    "Page",
    "PublishedGraph",
    "RdfFormat",
    "Route",
    "Site",
    "SiteContext",
    "_prepare_out",
    "add_arguments",
    "all_prefixes",
    "build_site",
    "codesystem_graph",
    "collect_graphs",
    "describe",
    "htaccess",
    "notice",
    "ontology_view",
    "property_rows",
    "resource_paths",
    "run",
    "script_json",
    "shape_anchor",
    "shape_path_text",
    "shapes_view",
    "site_context",
    "stable_graph",
    "to_jsonld_document",
    "void_graph",
    "write_rdf",
]
