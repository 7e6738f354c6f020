"""Building the site: an orchestrator of small named steps.

collect the graphs -> routes -> graph files -> pages (resources, graphs, patient data, query, 404)
-> dataset description -> server files (context, .htaccess, static assets) -> manifest ->
write. Every step adds to one ``_Build``; nothing is written to disk before the last step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdflib import Graph, URIRef
from rdflib.namespace import RDF, SKOS

from guidelinekg.guideline_content import (
    Guideline,
    guidelines,
    label,
    patient_facts,
    read_criterion,
    read_recommendation,
    sorted_terms,
    statement_key,
    text,
)
from guidelinekg.loading import BASE
from guidelinekg.namespaces import GKG
from guidelinekg.patient_records import shape_files
from guidelinekg.publishing.dataset import void_graph
from guidelinekg.publishing.formats import (
    FHIR_JSON,
    MANIFEST_NAME,
    RDF_FORMATS,
    STATIC_DIR,
    context_document,
    script_json,
    site_prefixes,
    to_jsonld_document,
    write_rdf,
)
from guidelinekg.publishing.graphs import PublishedGraph, collect_graphs, source_name
from guidelinekg.publishing.ontology_page import ontology_view
from guidelinekg.publishing.output import Site, _prepare_out, manifest, write_files
from guidelinekg.publishing.pages import (
    Page,
    RootPage,
    SiteContext,
    code_displays,
    describe,
    environment,
    notice,
    property_rows,
    statements_by_fact,
    value_view,
)
from guidelinekg.publishing.redirects import htaccess
from guidelinekg.publishing.routes import (
    ONTOLOGY_PAGE_KINDS,
    Route,
    assign_doc_pages,
    dataset_route,
    graph_routes,
    resource_routes,
)
from guidelinekg.publishing.shapes_page import shapes_view
from guidelinekg.query_text import query_prefixes
from guidelinekg.rdf_output import Prefixes, Triple, stable_triples

# Shown on a resource page: the first links to it (a code used everywhere has thousands).
_INCOMING_SHOWN = 300


@dataclass
class _Build:
    """The files of one build as they are made: site path -> bytes, and the graph each RDF
    file holds (the tests read every file back against it)."""

    prefixes: Prefixes
    files: dict[str, bytes] = field(default_factory=dict)
    rdf_files: dict[str, Graph] = field(default_factory=dict)

    def add_rdf(self, path_stems: list[str], graph: Graph,
                triples: list[Triple] | None = None) -> None:
        """One graph in every RDF format, under each of the stems."""
        triples = triples if triples is not None else stable_triples(graph)
        for fmt in RDF_FORMATS:
            data = write_rdf(fmt.extension, triples, self.prefixes)
            for stem in path_stems:
                self.files[f"{stem}.{fmt.extension}"] = data
                self.rdf_files[f"{stem}.{fmt.extension}"] = graph


class _Renderer:
    """Renders the templates into the build, with what every page shows (the notice)."""

    def __init__(self, site: SiteContext, build: _Build) -> None:
        self.site = site
        self.build = build
        self.environment = environment()
        self.notice = notice(site.guidelines)

    def page(self, path: str) -> Page:
        return Page(self.site, path)

    def render(self, template: str, path: str, title: str, jsonld: dict | None = None,
               alternates: list[tuple[str, str]] | None = None, page: Page | None = None,
               **context: Any) -> None:
        page = page or self.page(path)
        html = self.environment.get_template(template).render(
            page=page, title=title, notice=self.notice,
            jsonld=script_json(jsonld) if jsonld is not None else None,
            alternates=[(media, page.url(target)) for media, target in (alternates or [])],
            guidelines=self.site.guidelines, **context)
        self.build.files[path] = html.encode("utf-8")


def _rdf_alternates(graph: PublishedGraph) -> list[tuple[str, str]]:
    return [(f.media_type, graph.file("latest", f.extension)) for f in RDF_FORMATS]


# ---------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------


def _union(graphs: list[PublishedGraph]) -> Graph:
    """Every published graph merged: what the pages describe and link."""
    union = Graph(bind_namespaces="none")
    for graph in graphs:
        for triple in graph.graph:
            union.add(triple)
    return union


def _routes(union: Graph, graphs: list[PublishedGraph], notes: list[str]) -> dict[str, Route]:
    routes = graph_routes(graphs)
    routes["void"] = dataset_route()
    routes.update(resource_routes(union, routes, graphs, notes))
    return routes


def _graph_files(build: _Build, graphs: list[PublishedGraph]) -> None:
    """Each graph in every format (and its raw files), under its version and latest."""
    for graph in graphs:
        build.add_rdf([f"{graph.folder}/{v}/{graph.stem}" for v in (graph.version, "latest")],
                      graph.graph, graph.triples)
        for version in (graph.version, "latest"):
            for name, data in graph.raw_files.items():
                build.files[f"{graph.folder}/{version}/{name}"] = data


def _patient_shapes(graphs: list[PublishedGraph]) -> tuple[list[PublishedGraph], Graph | None]:
    """The shapes records are validated with (the core's patient shapes and every
    module's, completeness warnings included; the rest check the guideline): their
    graphs, and their shapes merged."""
    patient_files = {source_name(path) for path in shape_files()}
    shape_graphs = [g for g in graphs if g.kind == "shapes"
                    and set(g.source_files) <= patient_files]
    if not shape_graphs:
        return shape_graphs, None
    shapes = Graph()
    for graph in shape_graphs:
        for triple in graph.graph:
            shapes.add(triple)
    return shape_graphs, shapes


def _recommendation_page(renderer: _Renderer, path: str, iri: URIRef, document: dict,
                         alternates: list[tuple[str, str]]) -> None:
    union = renderer.site.union
    recommendation = read_recommendation(union, iri)
    guideline = next((g for g in renderer.site.guidelines
                      if g.iri == recommendation.guideline), None)
    renderer.render("recommendation.html", f"{path}.html", f"{recommendation.key}: recommendation",
                    document, alternates, recommendation=recommendation, guideline=guideline,
                    iri=str(iri))


def _is_criterion(union: Graph, iri: URIRef) -> bool:
    return any((iri, RDF.type, t) in union
               for t in (GKG.FactCriterion, GKG.AllOf, GKG.AnyOf, GKG.NoneOf))


def _term_page(renderer: _Renderer, path: str, iri: URIRef, document: dict,
               alternates: list[tuple[str, str]]) -> None:
    """The page of any other IRI: its types and properties, the criterion it is, what links
    to it."""
    site = renderer.site
    union = site.union
    page = renderer.page(f"{path}.html")
    used_in = sorted(set(union.subjects(GKG.applicability, iri)),
                     key=lambda s: (statement_key(union, s), str(s)))
    incoming = sorted({(s, p) for s, p in union.subject_predicates(iri)
                       if isinstance(s, URIRef)}, key=lambda sp: (str(sp[1]), str(sp[0])))
    renderer.render(
        "resource.html", f"{path}.html", label(union, iri), document, alternates,
        iri=str(iri), compact=page.compact(iri),
        types=[value_view(page, t) for t in sorted_terms(union, union.objects(iri, RDF.type))],
        rows=property_rows(page, union, iri),
        criterion=read_criterion(union, iri) if _is_criterion(union, iri) else None,
        used_in=page.statement_links(used_in),
        incoming=[{"subject": value_view(page, s), "predicate": value_view(page, p)}
                  for s, p in incoming[:_INCOMING_SHOWN]],
        fact_key=(text(union, iri, SKOS.notation) if any(
            f.iri == iri for f in site.facts) else None))


def _resource_documents(build: _Build, renderer: _Renderer) -> None:
    """Per IRI with a plain path: its RDF description in every format and its page."""
    site = renderer.site
    recommendation_iris = {r.iri for g in site.guidelines for r in g.recommendations}
    guideline_by_iri: dict[URIRef, Guideline] = {g.iri: g for g in site.guidelines}
    for path, route in sorted(site.routes.items()):
        if route.kind != "resource":
            continue
        iri = URIRef(BASE + path)
        description = describe(site.union, iri)
        build.add_rdf([path], description)
        alternates = [(f.media_type, f"{path}.{f.extension}") for f in RDF_FORMATS]
        document = to_jsonld_document(description)
        if iri in recommendation_iris:
            _recommendation_page(renderer, path, iri, document, alternates)
        elif iri in guideline_by_iri:
            renderer.render("guideline.html", f"{path}.html", guideline_by_iri[iri].title,
                            document, alternates, guideline=guideline_by_iri[iri],
                            iri=str(iri))
        else:
            _term_page(renderer, path, iri, document, alternates)


def _codesystem_concepts(page: Page, graph: PublishedGraph) -> list[dict]:
    union = page.site.union
    return [{"value": value_view(page, c),
             "notation": text(union, c, SKOS.notation),
             "definition": text(union, c, SKOS.definition),
             "anchor": str(c).split("#", 1)[1] if "#" in str(c) else None,
             "broader": [value_view(page, b) for b in union.objects(c, SKOS.broader)]}
            for c in sorted(graph.graph.subjects(SKOS.inScheme, graph.iri),
                            key=lambda c: text(union, c, SKOS.notation) or str(c))]


def _graph_documentation(renderer: _Renderer, graph: PublishedGraph,
                         versions: list[str]) -> None:
    """The documentation page of a graph: the ontology, a shapes file, a CodeSystem."""
    union = renderer.site.union
    page = renderer.page(graph.doc_page)
    if graph.kind == "core":
        included = [g for g in renderer.site.graphs
                    if g.kind in ONTOLOGY_PAGE_KINDS and g is not graph]
        renderer.render("ontology.html", "ontology.html", graph.title,
                        to_jsonld_document(describe(union, graph.iri)), _rdf_alternates(graph),
                        graph=graph, view=ontology_view(page, graph, included),
                        formats=RDF_FORMATS, versions=versions)
    elif graph.kind == "shapes":
        renderer.render("shapes.html", graph.doc_page, graph.title,
                        to_jsonld_document(describe(union, graph.iri)), _rdf_alternates(graph),
                        graph=graph, shapes=shapes_view(page, graph.graph, graph.guideline),
                        formats=RDF_FORMATS,
                        metadata=property_rows(page, graph.graph, graph.iri))
    elif graph.kind == "codesystem":
        renderer.render("codesystem.html", graph.doc_page, graph.title, None,
                        [(FHIR_JSON, f"{graph.folder}/latest/{graph.stem}.json"),
                         *_rdf_alternates(graph)],
                        graph=graph, concepts=_codesystem_concepts(page, graph),
                        formats=RDF_FORMATS)


def _graph_pages(renderer: _Renderer, kept: dict[str, list[str]]) -> None:
    """Per graph: the index of its version folder, and its documentation page."""
    for graph in renderer.site.graphs:
        versions = sorted(set(kept.get(graph.folder, [])) | {graph.version})
        renderer.render("version.html", f"{graph.version_folder}/index.html",
                        f"{graph.title} {graph.version}", None, None, graph=graph,
                        versions=versions, formats=RDF_FORMATS, folder=graph.version_folder)
        _graph_documentation(renderer, graph, versions)


def _patient_and_query_pages(renderer: _Renderer,
                             patient_shape_graphs: list[PublishedGraph]) -> None:
    site = renderer.site
    page = renderer.page("patient-data.html")
    by_fact = statements_by_fact(site.union)
    renderer.render("patient_data.html", "patient-data.html", "Data a patient record needs",
                    None, None, facts=site.facts,
                    used_by={f.key: page.statement_links(by_fact.get(f.iri, []))
                             for f in site.facts},
                    shapes=shapes_view(page, site.shapes) if site.shapes is not None else [],
                    shape_graphs=patient_shape_graphs)
    # The page's editor offers the prefixes the endpoint declares for a query.
    renderer.render("query.html", "query.html", "SPARQL query", None, None,
                    prefixes=query_prefixes())


def _not_found_page(renderer: _Renderer) -> None:
    """404.html: the answer to an unknown path, in the site's layout (served at that path,
    so its links start at the root)."""
    renderer.render("not_found.html", "404.html", "Not found", None, None,
                    page=RootPage(renderer.site, "404.html"))


def _dataset_and_index(build: _Build, renderer: _Renderer, notes: list[str]) -> None:
    """VoID/DCAT with the size of every file written so far, and the index page that
    embeds it."""
    site = renderer.site
    sizes = {name: len(data) for name, data in build.files.items()}
    dataset = void_graph(site.graphs, len(site.union), sizes, site.guidelines)
    build.add_rdf(["void"], dataset)
    build.files["context.jsonld"] = context_document()
    renderer.render("index.html", "index.html", "guidelinekg", to_jsonld_document(dataset),
                    [(f.media_type, f"void.{f.extension}") for f in RDF_FORMATS],
                    graphs=site.graphs, formats=RDF_FORMATS, sizes=sizes,
                    triples={g.name: len(g.graph) for g in site.graphs},
                    union_size=len(site.union), notes=notes)


def _server_files(build: _Build, routes: dict[str, Route], site_url: str | None) -> None:
    """The redirect rules and the static assets (stylesheet, script, icon)."""
    build.files[".htaccess"] = htaccess(routes, site_url).encode("utf-8")
    for static in sorted(STATIC_DIR.rglob("*")):
        if static.is_file() and not static.name.startswith("."):
            build.files["static/" + static.relative_to(STATIC_DIR).as_posix()] = \
                static.read_bytes()


# ---------------------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------------------


def build_site(out: Path | str, site_url: str | None = None,
               shapes_files: list[Path] | None = None,
               codesystem_file: Path | None = None, write: bool = True) -> Site:
    """Build the site into ``out`` (deterministic, offline)."""
    out = Path(out)
    notes: list[str] = []
    graphs = collect_graphs(shapes_files, codesystem_file, notes)
    union = _union(graphs)
    build = _Build(site_prefixes([graph.prefixes for graph in graphs]))
    kept = _prepare_out(out, graphs) if write else {}
    guideline_list = guidelines(union)
    assign_doc_pages(graphs, guideline_list)
    routes = _routes(union, graphs, notes)
    _graph_files(build, graphs)
    patient_shape_graphs, patient_shapes = _patient_shapes(graphs)
    site = SiteContext(union, routes, build.prefixes, guideline_list, patient_facts(union),
                       graphs, patient_shapes, code_displays(graphs))
    renderer = _Renderer(site, build)
    _resource_documents(build, renderer)
    _graph_pages(renderer, kept)
    _patient_and_query_pages(renderer, patient_shape_graphs)
    _not_found_page(renderer)
    _dataset_and_index(build, renderer, notes)
    _server_files(build, routes, site_url)
    build.files[MANIFEST_NAME] = manifest(out, build.files, graphs, kept, write)
    if write:
        write_files(out, build.files)
    return Site(out, build.files, build.rdf_files, routes, graphs, notes, union)
