"""The dataset description (VoID and DCAT): one void:Dataset for the site, a subset per
graph, a dcat:Distribution per file (with its byte size), and the SPARQL endpoint of
``guidelinekg serve`` as a dcat:DataService."""

from __future__ import annotations

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, OWL, RDF, XSD

from guidelinekg.guideline_content import Guideline, text
from guidelinekg.loading import BASE
from guidelinekg.namespaces import GKG
from guidelinekg.publishing.formats import (
    DCAT,
    FHIR_JSON,
    FOAF,
    IANA_MEDIA,
    RDF_FORMATS,
    VOID,
    stable_graph,
)
from guidelinekg.publishing.graphs import PublishedGraph

DATASET_DOCUMENT = BASE + "void"
_DATASET = URIRef(DATASET_DOCUMENT + "#dataset")
_PUBLISHER = URIRef(DATASET_DOCUMENT + "#publisher")
_ENDPOINT = URIRef(BASE + "sparql")


def _describe_dataset(void: Graph, graphs: list[PublishedGraph], union_size: int,
                      guideline_list: list[Guideline]) -> None:
    core = graphs[0]
    dataset = _DATASET
    void.add((dataset, RDF.type, VOID.Dataset))
    void.add((dataset, RDF.type, DCAT.Dataset))
    void.add((dataset, DCTERMS.title, Literal("guidelinekg: clinical practice guidelines as a "
                                              "computable knowledge graph", lang="en")))
    titles = "; ".join(g.title for g in guideline_list)
    void.add((dataset, DCTERMS.description, Literal(
        "The guidelinekg core ontology, the curated content of the guideline(s) " + titles
        + ", the SHACL shapes of patient records and the FHIR CodeSystem of findings.",
        lang="en")))
    publisher_name = text(core.graph, core.iri, DCTERMS.publisher) or "guidelinekg"
    void.add((_PUBLISHER, RDF.type, FOAF.Agent))
    void.add((_PUBLISHER, FOAF.name, Literal(publisher_name)))
    void.add((dataset, DCTERMS.publisher, _PUBLISHER))
    if core.license is not None:
        void.add((dataset, DCTERMS.license, core.license))
    void.add((dataset, DCAT.version, Literal(core.version)))
    void.add((dataset, OWL.versionInfo, Literal(core.version)))
    dates = sorted(g.modified for g in graphs if g.modified)
    if dates:
        void.add((dataset, DCTERMS.modified, Literal(dates[-1], datatype=XSD.date)))
    void.add((dataset, VOID.sparqlEndpoint, _ENDPOINT))
    void.add((dataset, VOID.uriSpace, Literal(BASE)))
    void.add((dataset, VOID.vocabulary, URIRef(str(GKG))))
    void.add((dataset, VOID.triples, Literal(union_size, datatype=XSD.integer)))
    void.add((dataset, DCAT.landingPage, URIRef(BASE)))
    service = URIRef(DATASET_DOCUMENT + "#sparql")
    void.add((service, RDF.type, DCAT.DataService))
    void.add((service, DCTERMS.title, Literal("SPARQL 1.1 endpoint (guidelinekg serve)",
                                              lang="en")))
    void.add((service, DCAT.endpointURL, _ENDPOINT))
    void.add((service, DCAT.servesDataset, dataset))


def _describe_subset(void: Graph, graph: PublishedGraph,
                     license_iri: URIRef | None) -> URIRef:
    subset = URIRef(f"{DATASET_DOCUMENT}#{graph.name}")
    void.add((_DATASET, VOID.subset, subset))
    void.add((subset, RDF.type, VOID.Dataset))
    void.add((subset, RDF.type, DCAT.Dataset))
    void.add((subset, DCTERMS.title, Literal(graph.title, lang="en")))
    void.add((subset, DCTERMS.source, URIRef(graph.iri)))
    void.add((subset, DCAT.version, Literal(graph.version)))
    void.add((subset, OWL.versionInfo, Literal(graph.version)))
    if graph.version_iri is not None:
        void.add((subset, OWL.versionIRI, graph.version_iri))
    for prior in graph.prior_versions:
        void.add((subset, OWL.priorVersion, prior))
    if graph.modified:
        void.add((subset, DCTERMS.modified, Literal(graph.modified, datatype=XSD.date)))
    if license_iri is not None:
        void.add((subset, DCTERMS.license, license_iri))
    void.add((subset, DCTERMS.publisher, _PUBLISHER))
    void.add((subset, VOID.triples, Literal(len(graph.graph), datatype=XSD.integer)))
    void.add((subset, VOID.sparqlEndpoint, _ENDPOINT))
    return subset


def _describe_distributions(void: Graph, graph: PublishedGraph, subset: URIRef,
                            sizes: dict[str, int], license_iri: URIRef | None) -> None:
    """A distribution per file of the graph: each format, per version and latest."""
    formats = [(f.extension, f.media_type, f.name) for f in RDF_FORMATS]
    formats += [(name.rsplit(".", 1)[1], FHIR_JSON, "FHIR JSON") for name in graph.raw_files]
    for version in (graph.version, "latest"):
        shown_version = "latest version" if version == "latest" else version
        for extension, media_type, format_name in formats:
            path = graph.file(version, extension)
            distribution = URIRef(f"{DATASET_DOCUMENT}#{graph.name}-{version}-{extension}")
            void.add((subset, DCAT.distribution, distribution))
            void.add((distribution, RDF.type, DCAT.Distribution))
            void.add((distribution, DCTERMS.title, Literal(
                f"{graph.title}, {shown_version} ({format_name})", lang="en")))
            void.add((distribution, DCAT.mediaType, URIRef(IANA_MEDIA + media_type)))
            void.add((distribution, DCAT.downloadURL, URIRef(BASE + path)))
            void.add((distribution, DCAT.accessURL, URIRef(BASE + path)))
            if path in sizes:
                void.add((distribution, DCAT.byteSize,
                          Literal(sizes[path], datatype=XSD.nonNegativeInteger)))
            if license_iri is not None:
                void.add((distribution, DCTERMS.license, license_iri))


def void_graph(graphs: list[PublishedGraph], union_size: int, sizes: dict[str, int],
               guideline_list: list[Guideline]) -> Graph:
    """The dataset description: one void:Dataset per graph, a dcat:Distribution per file."""
    void = Graph()
    _describe_dataset(void, graphs, union_size, guideline_list)
    for graph in graphs:
        # A graph without a licence of its own is under the core's.
        license_iri = graph.license or graphs[0].license
        subset = _describe_subset(void, graph, license_iri)
        _describe_distributions(void, graph, subset, sizes, license_iri)
    return stable_graph(void)[0]
