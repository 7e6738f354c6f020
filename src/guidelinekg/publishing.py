"""``guidelinekg publish --out DIR``: the guideline as a static linked-data site.

The site is built offline and deterministically: building twice gives byte-identical files.
Every graph (core ontology, each guideline's content, the shapes, the FHIR CodeSystem of
findings) is written as Turtle, JSON-LD, RDF/XML and N-Triples under a folder for its version
and under ``latest/``; every IRI of the project namespace gets its own documents (HTML and the
four RDF formats); the guideline, its recommendations, the ontology and the data a patient
record needs are documented in HTML; VoID/DCAT describe the dataset; ``.htaccess`` holds the
redirect rules of the persistent IRIs (https://w3id.org/guidelinekg/...).

Determinism: blank nodes get labels derived from their content, and every format is written
in one sorted order by the writers of rdf_output.py (rdflib's serialisers follow the hash
seed); nothing carries a build time: the only dates are the graphs' own modified dates.

JSON-LD is compacted with the context shipped in the site (``context.jsonld``), inlined in
every document, so no reader ever fetches a remote context.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import jinja2
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS, SH, SKOS, XSD
from rdflib.term import Node

from guidelinekg import __version__
from guidelinekg.cli import output_directory
from guidelinekg.guideline_content import (
    GKG,
    Guideline,
    PatientFact,
    describe_blank_closure,
    guidelines,
    label,
    local_name,
    patient_facts,
    read_criterion,
    read_intervention,
    read_recommendation,
    sorted_terms,
    statement_key,
    text,
)
from guidelinekg.guideline_parts import superclasses
from guidelinekg.loading import BASE, PREFIXES, InputError, parse_rdf_file, read_bytes_checked
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
from guidelinekg.resources import ontology_dir, shapes_dir

PACKAGE_DIR = Path(__file__).resolve().parent
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

_SAFE_PATH = re.compile(r"^[A-Za-z0-9_~-][A-Za-z0-9._~-]*(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*$")
_KEY_IN_TEXT = re.compile(r"\b[A-Z][A-Z0-9]*-\d+\b")


def site_context() -> dict[str, str]:
    """The JSON-LD context shipped in the site: prefix definitions only."""
    return json.loads(CONTEXT_FILE.read_text(encoding="utf-8"))["@context"]


def all_prefixes() -> dict[str, str]:
    prefixes = dict(site_context())
    prefixes.update(PREFIXES)
    prefixes.update(EXTRA_PREFIXES)
    return dict(sorted(prefixes.items()))


# ---------------------------------------------------------------------------------------
# Stable serialisation (rdf_output)
# ---------------------------------------------------------------------------------------


def _term_key(term: Node) -> tuple:
    return term_key(term)


def stable_graph(graph: Graph) -> tuple[Graph, list[Triple]]:
    """A graph with content-derived blank node labels, and its triples in sorted order."""
    triples = stable_triples(graph)
    return graph_of(triples), triples


def write_rdf(extension: str, triples: list[Triple], prefixes: Prefixes) -> bytes:
    """One graph in one format; JSON-LD always with the shipped context."""
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


# ---------------------------------------------------------------------------------------
# The graphs to publish
# ---------------------------------------------------------------------------------------


@dataclass
class PublishedGraph:
    """One graph of the site: where its files go and what it holds."""

    name: str
    title: str
    iri: URIRef
    folder: str
    stem: str
    version: str
    version_iri: URIRef | None
    prior_versions: list[URIRef]
    modified: str | None
    license: URIRef | None
    graph: Graph
    triples: list[Triple]
    source_files: list[str]
    prefixes: dict[str, str] = field(default_factory=dict)
    doc_page: str = ""
    raw_files: dict[str, bytes] = field(default_factory=dict)  # file name -> bytes

    def file(self, version: str, extension: str) -> str:
        return f"{self.folder}/{version}/{self.stem}.{extension}"

    @property
    def version_folder(self) -> str:
        return f"{self.folder}/{self.version}"


def _prefixes_in_turtle(path: Path) -> dict[str, str]:
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    pattern = re.compile(r"^\s*(?:@prefix|PREFIX)\s+([A-Za-z][\w.-]*)?:\s*<([^>]*)>", re.M)
    return {prefix or "": namespace for prefix, namespace in pattern.findall(content) if prefix}


def _relative_path(iri: str) -> str | None:
    if not iri.startswith(BASE):
        return None
    return iri[len(BASE):].split("#", 1)[0].rstrip("/")


def _site_path(iri: URIRef) -> str:
    """The path of a term's page on the site: only a term under BASE has one."""
    path = _relative_path(str(iri))
    if path is None:
        raise ValueError(f"{iri} is not under {BASE}: the site has no page for it")
    return path


def _source_name(path: Path) -> str:
    try:
        return path.relative_to(ontology_dir().parent).as_posix()
    except ValueError:
        return path.name


def _ontology_graph(name: str, files: list[Path], stem: str, default_iri: str,
                    default_title: str, notes: list[str],
                    fallback_version: str | None = None) -> PublishedGraph:
    merged = Graph()
    for path in files:
        for triple in parse_rdf_file(path):
            merged.add(triple)
    ontologies = sorted(s for s in merged.subjects(RDF.type, OWL.Ontology) if isinstance(s, URIRef))
    if URIRef(default_iri) in ontologies or not ontologies:
        iri = URIRef(default_iri)
    else:
        iri = ontologies[0]
        if len(ontologies) > 1:
            notes.append(f"{name}: several owl:Ontology declarations; published as {iri}")
    version = text(merged, iri, OWL.versionInfo)
    if version is None:
        version = fallback_version or __version__
        notes.append(f"{name}: no owl:versionInfo; published as version {version}")
    version_iri = merged.value(iri, OWL.versionIRI)
    folder = _relative_path(str(iri)) or name
    modified = merged.value(iri, DCTERMS.modified)
    license_iri = merged.value(iri, DCTERMS.license)
    known = all_prefixes()
    prefixes = {}
    for path in files:
        for prefix, namespace in _prefixes_in_turtle(path).items():
            if prefix not in known and namespace not in known.values():
                prefixes[prefix] = namespace
    stable, triples = stable_graph(merged)
    return PublishedGraph(
        name=name,
        title=text(merged, iri, DCTERMS.title) or default_title,
        iri=iri,
        folder=folder,
        stem=stem,
        version=version,
        version_iri=version_iri if isinstance(version_iri, URIRef) else None,
        prior_versions=sorted(o for o in merged.objects(iri, OWL.priorVersion)
                              if isinstance(o, URIRef)),
        modified=str(modified) if modified is not None else None,
        license=license_iri if isinstance(license_iri, URIRef) else None,
        graph=stable,
        triples=triples,
        source_files=[_source_name(path) for path in files],
        prefixes=prefixes,
    )


def codesystem_graph(path: Path, fallback_version: str, notes: list[str]) -> PublishedGraph:
    """The FHIR CodeSystem as JSON (as written) and as a SKOS concept scheme."""
    data = read_bytes_checked(path)
    try:
        resource = json.loads(data)
    except ValueError as error:
        raise InputError(path, f"not valid JSON ({error})") from None
    if not isinstance(resource, dict) or resource.get("resourceType") != "CodeSystem":
        raise InputError(path, "not a FHIR CodeSystem (resourceType must be CodeSystem)")
    url = resource.get("url")
    if not isinstance(url, str) or not url:
        raise InputError(path, "the CodeSystem has no url")
    graph = Graph()
    scheme = URIRef(url)
    graph.add((scheme, RDF.type, SKOS.ConceptScheme))
    language = resource.get("language") if isinstance(resource.get("language"), str) else None
    for key, predicate in (("title", DCTERMS.title), ("description", DCTERMS.description),
                           ("publisher", DCTERMS.publisher), ("name", SKOS.prefLabel)):
        if isinstance(resource.get(key), str):
            graph.add((scheme, predicate, Literal(resource[key], lang=language)
                       if predicate in (DCTERMS.title, DCTERMS.description, SKOS.prefLabel)
                       else Literal(resource[key])))
    version = resource.get("version") if isinstance(resource.get("version"), str) else None
    if version:
        graph.add((scheme, OWL.versionInfo, Literal(version)))
    else:
        notes.append(f"{path.name}: no version; published as version {fallback_version}")
    if isinstance(resource.get("date"), str):
        graph.add((scheme, DCTERMS.modified, Literal(resource["date"])))

    def add_concepts(concepts: object, parent: URIRef | None) -> None:
        if not isinstance(concepts, list):
            return
        for concept in concepts:
            if not isinstance(concept, dict) or not isinstance(concept.get("code"), str):
                continue
            code = concept["code"]
            iri = URIRef(f"{url}#{quote(code, safe='-._~')}")
            graph.add((iri, RDF.type, SKOS.Concept))
            graph.add((iri, SKOS.inScheme, scheme))
            graph.add((iri, SKOS.notation, Literal(code)))
            if isinstance(concept.get("display"), str):
                graph.add((iri, SKOS.prefLabel, Literal(concept["display"], lang=language)))
            if isinstance(concept.get("definition"), str):
                graph.add((iri, SKOS.definition, Literal(concept["definition"], lang=language)))
            if parent is None:
                graph.add((iri, SKOS.topConceptOf, scheme))
                graph.add((scheme, SKOS.hasTopConcept, iri))
            else:
                graph.add((iri, SKOS.broader, parent))
            add_concepts(concept.get("concept"), iri)

    add_concepts(resource.get("concept"), None)
    folder = _relative_path(url) or "CodeSystem/finding"
    stem = PurePosixPath(folder).name or "codesystem"
    return PublishedGraph(
        name="codesystem-" + stem,
        title=str(resource.get("title") or resource.get("name") or stem),
        iri=scheme,
        folder=folder,
        stem=stem,
        version=version or fallback_version,
        version_iri=None,
        prior_versions=[],
        modified=resource.get("date") if isinstance(resource.get("date"), str) else None,
        license=None,
        graph=stable_graph(graph)[0],
        triples=stable_graph(graph)[1],
        source_files=[_source_name(path)],
        raw_files={f"{stem}.json": data},
    )


def collect_graphs(shapes_files: list[Path] | None = None,
                   codesystem_file: Path | None = None,
                   notes: list[str] | None = None) -> list[PublishedGraph]:
    """Every graph the site publishes, read from the bundled files."""
    notes = notes if notes is not None else []
    root = ontology_dir()
    core = _ontology_graph("ontology", sorted(root.glob("*.ttl")), "guidelinekg",
                           BASE + "ontology", "guidelinekg core ontology", notes)
    graphs = [core]
    for path in sorted((root / "guidelines").glob("*.ttl")):
        graphs.append(_ontology_graph(f"guideline-{path.stem}", [path], path.stem,
                                      BASE + f"guideline/{path.stem}",
                                      f"Guideline content: {path.stem}", notes))
    shapes = sorted(shapes_dir().glob("*.ttl")) if shapes_files is None else list(shapes_files)
    # Each shapes file declares its own owl:Ontology (shapes/patient, shapes/guideline, ...)
    # and is published as its own graph.
    for path in shapes:
        graphs.append(_ontology_graph(f"shapes-{path.stem}", [path], path.stem,
                                      BASE + f"shapes/{path.stem}",
                                      f"guidelinekg SHACL shapes ({path.stem})", notes,
                                      fallback_version=core.version))
    if not shapes:
        notes.append("shapes/*.ttl: no shapes found; no shapes graph is published")
    codesystem = root / "fhir" / "CodeSystem-finding.json" if codesystem_file is None \
        else codesystem_file
    if codesystem.is_file():
        graphs.append(codesystem_graph(codesystem, core.version, notes))
    else:
        notes.append(f"{_source_name(codesystem)}: not found; the FHIR CodeSystem of findings "
                     "is not published")
    return graphs


# ---------------------------------------------------------------------------------------
# Routes: which document answers for which IRI
# ---------------------------------------------------------------------------------------


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
                path = _relative_path(str(term))
                if path and path not in reserved:
                    found.add(path)
    paths = []
    for path in sorted(found):
        if not _SAFE_PATH.match(path) or ".." in path.split("/"):
            notes.append(f"{BASE}{path}: not a plain path; no document is published for it")
            continue
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@dataclass
class SiteContext:
    """What every page needs to link terms and show the notice."""

    union: Graph
    routes: dict[str, Route]
    prefixes: Prefixes
    guidelines: list[Guideline]
    facts: list[PatientFact]
    graphs: list[PublishedGraph]
    shapes: Graph | None
    _labels: dict[Node, str] = field(default_factory=dict)

    def html_document(self, iri: Node) -> str | None:
        """The site path (with #fragment) of the HTML document of an IRI, if it has one."""
        if not isinstance(iri, URIRef):
            return None
        value = str(iri)
        if not value.startswith(BASE):
            return None
        path = _relative_path(value)
        route = self.routes.get(path or "")
        if route is None or HTML not in route.documents:
            return None
        document = route.documents[HTML]
        if "#" in value:
            return f"{document}#{value.split('#', 1)[1]}"
        return document

    def compact(self, iri: Node) -> str:
        return self.prefixes.compact_jsonld(str(iri)) if isinstance(iri, URIRef) else str(iri)

    def label(self, term: Node) -> str:
        # Pages ask for the same labels thousands of times.
        if term not in self._labels:
            self._labels[term] = label(self.union, term)
        return self._labels[term]


class Page:
    """Helpers a template calls, relative to one page."""

    def __init__(self, site: SiteContext, path: str) -> None:
        self.site = site
        self.path = path

    def url(self, target: str) -> str:
        """The relative link from this page to a site path (with an optional #fragment)."""
        path, hash_mark, fragment = target.partition("#")
        if path == self.path:
            return hash_mark + fragment if fragment else posixpath.basename(path)
        start = posixpath.dirname(self.path) or "."
        return posixpath.relpath(path, start) + hash_mark + fragment

    def href(self, iri: Node) -> str | None:
        document = self.site.html_document(iri)
        if document is not None:
            return self.url(document)
        if isinstance(iri, URIRef) and re.match(r"^https?://", str(iri)):
            return str(iri)
        return None

    def label(self, term: Node) -> str:
        return self.site.label(term)

    def compact(self, term: Node) -> str:
        return self.site.compact(term)

    def recommendation_href(self, key: str) -> str | None:
        for guideline in self.site.guidelines:
            for recommendation in guideline.recommendations:
                if recommendation.key == key:
                    return self.href(recommendation.iri)
        return None

    def fact_href(self, fact: Node) -> str:
        key = text(self.site.union, fact, SKOS.notation) or local_name(fact)
        return self.url("patient-data.html") + "#" + key

    def keys_in(self, message: str) -> list[str]:
        known = {r.key for g in self.site.guidelines for r in g.recommendations}
        return [key for key in dict.fromkeys(_KEY_IN_TEXT.findall(message)) if key in known]


def notice(guideline_list: list[Guideline]) -> dict[str, list[str]]:
    """The review status and disclaimer(s) every page shows."""
    statuses = sorted({g.review_status for g in guideline_list if g.review_status})
    return {
        "statuses": statuses or ["not stated"],
        "notes": sorted({g.review_note for g in guideline_list if g.review_note}),
        "disclaimers": sorted({g.disclaimer for g in guideline_list if g.disclaimer}),
    }


def _value_view(page: Page, term: Node) -> dict[str, str | None]:
    if isinstance(term, Literal):
        extra = term.language or (page.compact(term.datatype) if term.datatype else None)
        return {"text": str(term), "href": None, "note": extra, "iri": None}
    if isinstance(term, BNode):
        return {"text": "(blank node)", "href": None, "note": None, "iri": None}
    return {"text": page.label(term), "href": page.href(term), "note": page.compact(term),
            "iri": str(term)}


def _optional_value_view(page: Page, term: Node | None) -> dict[str, str | None] | None:
    return _value_view(page, term) if term is not None else None


def property_rows(page: Page, graph: Graph, subject: Node) -> list[dict]:
    rows = []
    for predicate in sorted(set(graph.predicates(subject)), key=lambda p: page.compact(p)):
        values = sorted(graph.objects(subject, predicate), key=_term_key)
        rows.append({
            "predicate": _value_view(page, predicate),
            "values": [_value_view(page, value) if not isinstance(value, BNode)
                       else {"text": "", "href": None, "note": None, "iri": None,
                             "rows": property_rows(page, graph, value)}
                       for value in values],
        })
    return rows


def describe(union: Graph, iri: URIRef) -> Graph:
    """The RDF description of one IRI: its bounded description, for a recommendation also its
    criteria tree, dose regimens, evidence and sources, and the labels of what it names."""
    description = Graph()
    subjects: list[Node] = [iri]
    if (iri, RDF.type, GKG.Recommendation) in union:
        criteria = list(union.objects(iri, GKG.applicability))
        for check in sorted(union.objects(iri, GKG.hasPreconditionCheck), key=str):
            subjects.append(check)
            criteria.extend(union.objects(check, GKG.flaggedWhen))
        regimens = set(union.objects(iri, GKG.hasDoseRegimen)) | set(
            union.subjects(GKG.statedIn, iri))
        for regimen in sorted(regimens, key=str):
            subjects.append(regimen)
            subjects.extend(sorted(union.objects(regimen, GKG.hasStep), key=str))
            criteria.extend(union.objects(regimen, GKG.regimenCondition))
        seen: set[Node] = set()
        while criteria:
            criterion = criteria.pop()
            if criterion in seen:
                continue
            seen.add(criterion)
            subjects.append(criterion)
            criteria.extend(union.objects(criterion, GKG.hasMember))
        subjects.extend(sorted(union.objects(iri, GKG.hasComparativeEvidence), key=str))
        subjects.extend(sorted(union.objects(iri, GKG.hasEvidenceSource), key=str))
    for subject in dict.fromkeys(subjects):
        for triple in describe_blank_closure(union, subject):
            description.add(triple)
    named = {o for _, p, o in description if isinstance(o, URIRef) and p != RDF.type}
    named |= {o for _, p, o in description if isinstance(o, URIRef) and p == RDF.type
              and str(o).startswith(BASE)}
    for other in named:
        for predicate in (RDFS.label, SKOS.prefLabel, SKOS.notation):
            for value in union.objects(other, predicate):
                description.add((other, predicate, value))
    return description


def ontology_view(page: Page, graph: PublishedGraph) -> dict:
    """The ontology documentation: metadata, classes, properties, value sets, other terms."""
    g = graph.graph
    union = page.site.union
    namespace = PREFIXES["gkg"]

    def terms_of(types: Iterable[URIRef]) -> list[URIRef]:
        found = {s for t in types for s in g.subjects(RDF.type, t)
                 if isinstance(s, URIRef) and str(s).startswith(namespace)}
        return sorted_terms(union, found)

    def entity(term: URIRef) -> dict:
        return {
            "iri": str(term),
            "anchor": local_name(term),
            "compact": page.compact(term),
            "label": page.label(term),
            "definition": text(union, term, SKOS.definition),
            "scope_note": text(union, term, SKOS.scopeNote),
            "rows": [row for row in property_rows(page, g, term)
                     if row["predicate"]["iri"] not in (str(RDFS.label), str(SKOS.definition),
                                                        str(SKOS.scopeNote))],
        }

    classes = []
    for cls in terms_of([OWL.Class]):
        view = entity(cls)
        view["superclasses"] = [_value_view(page, s) for s in superclasses(union, cls)]
        view["subclasses"] = [_value_view(page, s) for s in sorted_terms(
            union, union.subjects(RDFS.subClassOf, cls))]
        view["codes"] = read_intervention(union, cls).codes
        classes.append(view)
    kinds = [
        ("Object properties", [OWL.ObjectProperty]),
        ("Datatype properties", [OWL.DatatypeProperty]),
        ("Annotation properties", [OWL.AnnotationProperty]),
    ]
    properties = [(title, [entity(p) for p in terms_of(types)]) for title, types in kinds]
    schemes = []
    for scheme in sorted_terms(union, (s for s in g.subjects(RDF.type, SKOS.ConceptScheme)
                                       if isinstance(s, URIRef))):
        concepts = sorted_terms(union, g.subjects(SKOS.inScheme, scheme))
        schemes.append({
            **entity(scheme),
            "concepts": [{"value": _value_view(page, c),
                          "notation": text(union, c, SKOS.notation),
                          "definition": text(union, c, SKOS.definition),
                          "anchor": local_name(c) if str(c).startswith(namespace) else None,
                          "rows": property_rows(page, g, c) if str(c).startswith(namespace)
                          else []}
                         for c in concepts],
        })
    covered = {c["iri"] for c in classes}
    covered |= {p["iri"] for _, group in properties for p in group}
    covered |= {s["iri"] for s in schemes}
    covered |= {c["value"]["iri"] for s in schemes for c in s["concepts"]}
    others = [entity(t) for t in sorted_terms(union, (
        s for s in g.subjects() if isinstance(s, URIRef) and str(s).startswith(namespace)
        and str(s) not in covered))]
    units = [{"value": _value_view(page, u), "ucum": text(union, u, GKG.ucumCode),
              "dimension": _optional_value_view(page, union.value(u, GKG.dimension)),
              "reference": _optional_value_view(page, union.value(u, GKG.referenceUnit)),
              "factor": text(union, u, GKG.conversionFactor)}
             for u in sorted_terms(union, g.subjects(RDF.type, GKG.Unit))]
    reused = sorted_terms(union, (s for s in g.subjects() if isinstance(s, URIRef)
                                  and not str(s).startswith(BASE)))
    return {
        "metadata": property_rows(page, g, graph.iri),
        "classes": classes,
        "properties": properties,
        "schemes": schemes,
        "others": others,
        "units": units,
        "reused": [_value_view(page, t) for t in reused],
    }


def shape_path_text(graph: Graph, path: Node, compact: Callable[[Node], str]) -> str:
    """A SHACL property path in SPARQL path syntax."""
    if isinstance(path, URIRef):
        return compact(path)
    if (path, RDF.first, None) in graph:
        return "/".join(shape_path_text(graph, item, compact)
                        for item in graph.items(path))
    for predicate, operator in ((SH.inversePath, "^{}"), (SH.zeroOrMorePath, "({})*"),
                                (SH.oneOrMorePath, "({})+"), (SH.zeroOrOnePath, "({})?")):
        inner = graph.value(path, predicate)
        if inner is not None:
            return operator.format(shape_path_text(graph, inner, compact))
    alternatives = graph.value(path, SH.alternativePath)
    if alternatives is not None:
        return "(" + "|".join(shape_path_text(graph, item, compact)
                              for item in graph.items(alternatives)) + ")"
    return "(path)"


_CONSTRAINT_WORDS: dict[URIRef, str] = {
    SH.datatype: "datatype", SH["class"]: "instance of", SH.nodeKind: "node kind",
    SH.minCount: "at least", SH.maxCount: "at most", SH.hasValue: "has value",
    SH.pattern: "matches", SH.minInclusive: "≥", SH.maxInclusive: "≤",
    SH.minExclusive: ">", SH.maxExclusive: "<", SH.node: "conforms to",
    SH.minLength: "length at least", SH.maxLength: "length at most",
}
_SHAPE_TEXT_KEYS = {SH.path, SH.message, SH.severity, SH.name, SH.description, SH.order,
                    SH.group, RDF.type, SH.property, SH.targetClass, SH.targetNode,
                    SH.targetSubjectsOf, SH.targetObjectsOf, SH.sparql, SH.deactivated,
                    SH.target, SH.prefixes, SH.declare, SH.select, SH.ask,
                    RDFS.label, RDFS.comment, SKOS.definition}


def _constraint_texts(page: Page, graph: Graph, shape: Node) -> list[str]:
    texts = []
    for predicate in sorted(set(graph.predicates(shape)), key=str):
        if predicate in _SHAPE_TEXT_KEYS:
            continue
        for value in sorted(graph.objects(shape, predicate), key=_term_key):
            if predicate == SH["in"]:
                items = [page.label(item) for item in graph.items(value)]
                texts.append("one of: " + ", ".join(items))
            elif isinstance(predicate, URIRef) and predicate in (SH["or"], SH["and"], SH.xone):
                words = {SH["or"]: "any of", SH["and"]: "all of", SH.xone: "exactly one of"}
                parts = [_shape_words(page, graph, item) for item in graph.items(value)]
                texts.append(f"{words[predicate]}: " + " | ".join(parts))
            elif predicate == SH["not"]:
                texts.append(f"not [{_shape_words(page, graph, value)}]")

            elif isinstance(predicate, URIRef) and predicate in _CONSTRAINT_WORDS:
                shown = str(value) if isinstance(value, Literal) else (
                    page.compact(value) if predicate in (SH.datatype, SH.nodeKind)
                    else page.label(value))
                texts.append(f"{_CONSTRAINT_WORDS[predicate]} {shown}")
            elif isinstance(value, BNode):
                inner = "; ".join(_constraint_texts(page, graph, value))
                texts.append(f"{page.compact(predicate)} [{inner}]")
            else:
                texts.append(f"{page.compact(predicate)} {page.label(value)}")
    return texts


def _shape_words(page: Page, graph: Graph, shape: Node) -> str:
    if isinstance(shape, URIRef):
        return text(graph, shape, SH.name) or page.label(shape)
    parts = _constraint_texts(page, graph, shape)
    for prop in graph.objects(shape, SH.property):
        path = graph.value(prop, SH.path)
        shown = shape_path_text(graph, path, page.compact) if path is not None else ""
        parts.append(f"{shown}: {'; '.join(_constraint_texts(page, graph, prop))}")
    return "; ".join(parts) or "(any node)"


def _severity(graph: Graph, shape: Node, default: str = "Violation") -> str:
    severity = graph.value(shape, SH.severity)
    return local_name(severity) if severity is not None else default


def _mentioned_iris(graph: Graph, shape: Node) -> set[URIRef]:
    mentioned: set[URIRef] = set()
    for _, _, obj in describe_blank_closure(graph, shape):
        if isinstance(obj, URIRef):
            mentioned.add(obj)
        elif isinstance(obj, Literal):
            for iri in re.findall(r"<(https?://[^>\s]+)>", str(obj)):
                mentioned.add(URIRef(iri))
            for prefix, local in re.findall(r"\b(gkg|fact|code|unit):([A-Za-z][\w-]*)", str(obj)):
                mentioned.add(URIRef(PREFIXES[prefix] + local))
    return mentioned


def shape_anchor(shape: Node) -> str:
    """The id of a shape on its page: the IRI's fragment or local name."""
    if isinstance(shape, URIRef):
        return local_name(shape)
    return f"shape-b{shape}"


def shapes_view(page: Page, shapes: Graph) -> list[dict]:
    """The node shapes: targets, severity, messages, property constraints, facts concerned."""
    union = page.site.union
    node_shapes = {s for s in shapes.subjects(RDF.type, SH.NodeShape)}
    node_shapes |= {s for p in (SH.targetClass, SH.targetNode, SH.targetSubjectsOf,
                                SH.targetObjectsOf, SH.target) for s in shapes.subjects(p, None)}
    # Only shapes a reader can name: blank nodes nested in other shapes are shown inside them.
    node_shapes = {s for s in node_shapes if isinstance(s, URIRef)
                   or not any(True for _ in shapes.subject_predicates(s))}
    fact_of_class: dict[Node, set[str]] = {}
    for fact in page.site.facts:
        for cls, _ in fact.recorded_as + fact.presence_of:
            fact_of_class.setdefault(cls, set()).add(fact.key)
    fact_keys = {f.iri: f.key for f in page.site.facts}
    anchors_used: set[str] = set()
    views = []
    for shape in sorted(node_shapes, key=_term_key):
        targets = []
        for predicate, words in ((SH.targetClass, "every"), (SH.targetNode, "the node"),
                                 (SH.targetSubjectsOf, "subjects of"),
                                 (SH.targetObjectsOf, "objects of")):
            targets += [{"words": words, "value": _value_view(page, t)}
                        for t in sorted_terms(union, shapes.objects(shape, predicate))]
        for target in sorted(shapes.objects(shape, SH.target), key=_term_key):
            kind = shapes.value(target, RDF.type)
            targets.append({"words": "the nodes selected by",
                            "value": {"text": "a SPARQL target" if kind == SH.SPARQLTarget
                                      else page.compact(kind) if kind is not None
                                      else "a custom target", "href": None,
                                      "note": None, "iri": None}})
        properties: list[dict[str, Any]] = []  # template views, one per property shape
        for prop in sorted(shapes.objects(shape, SH.property), key=_term_key):
            path = shapes.value(prop, SH.path)
            anchor = shape_anchor(prop) if isinstance(prop, URIRef) else None
            if anchor in anchors_used:
                anchor = None  # a property shape shared by several node shapes: id once
            elif anchor:
                anchors_used.add(anchor)
            properties.append({
                "iri": str(prop) if isinstance(prop, URIRef) else None,
                "anchor": anchor,
                "path": shape_path_text(shapes, path, page.compact) if path is not None
                else "(no path)",
                "name": text(shapes, prop, SH.name),
                "constraints": _constraint_texts(page, shapes, prop),
                "severity": _severity(shapes, prop, _severity(shapes, shape)),
                "messages": sorted(str(m) for m in shapes.objects(prop, SH.message)),
            })
        sparql: list[dict[str, Any]] = []
        for constraint in sorted(shapes.objects(shape, SH.sparql), key=_term_key):
            sparql.append({
                "messages": sorted(str(m) for m in shapes.objects(constraint, SH.message)),
                "severity": _severity(shapes, constraint, _severity(shapes, shape)),
            })
        mentioned = _mentioned_iris(shapes, shape)
        facts = {fact_keys[iri] for iri in mentioned if iri in fact_keys}
        for iri in mentioned:
            facts |= fact_of_class.get(iri, set())
        messages = sorted(str(m) for m in shapes.objects(shape, SH.message))
        all_messages = messages + [m for p in properties for m in p["messages"]] + [
            m for s in sparql for m in s["messages"]]
        views.append({
            "iri": str(shape) if isinstance(shape, URIRef) else None,
            "anchor": shape_anchor(shape),
            "href": page.href(shape),
            "label": (text(shapes, shape, SH.name) or page.label(shape))
            if isinstance(shape, URIRef) else (text(shapes, shape, SH.name) or "(unnamed shape)"),
            "description": text(shapes, shape, SH.description, RDFS.comment),
            "targets": targets,
            "severity": _severity(shapes, shape),
            "messages": messages,
            "constraints": _constraint_texts(page, shapes, shape),
            "properties": properties,
            "sparql": sparql,
            "facts": sorted(facts),
            "statement_keys": page.keys_in(" ".join(all_messages)),
            "severities": sorted({_severity(shapes, shape)} | {p["severity"] for p in properties}
                                 | {s["severity"] for s in sparql}),
        })
    return views


# ---------------------------------------------------------------------------------------
# VoID and DCAT
# ---------------------------------------------------------------------------------------

DATASET_DOCUMENT = BASE + "void"


def void_graph(graphs: list[PublishedGraph], union_size: int, sizes: dict[str, int],
               guideline_list: list[Guideline]) -> Graph:
    """The dataset description: one void:Dataset per graph, a dcat:Distribution per file."""
    void = Graph()
    dataset = URIRef(DATASET_DOCUMENT + "#dataset")
    core = graphs[0]
    void.add((dataset, RDF.type, VOID.Dataset))
    void.add((dataset, RDF.type, DCAT.Dataset))
    void.add((dataset, DCTERMS.title, Literal("guidelinekg: clinical practice guidelines as a "
                                              "computable knowledge graph", lang="en")))
    titles = "; ".join(g.title for g in guideline_list)
    void.add((dataset, DCTERMS.description, Literal(
        "The guidelinekg core ontology, the curated content of the guideline(s) " + titles
        + ", the SHACL shapes of patient records and the FHIR CodeSystem of findings.",
        lang="en")))
    publisher = URIRef(DATASET_DOCUMENT + "#publisher")
    publisher_name = text(core.graph, core.iri, DCTERMS.publisher) or "guidelinekg"
    void.add((publisher, RDF.type, FOAF.Agent))
    void.add((publisher, FOAF.name, Literal(publisher_name)))
    void.add((dataset, DCTERMS.publisher, publisher))
    if core.license is not None:
        void.add((dataset, DCTERMS.license, core.license))
    void.add((dataset, DCAT.version, Literal(core.version)))
    void.add((dataset, OWL.versionInfo, Literal(core.version)))
    dates = sorted(g.modified for g in graphs if g.modified)
    if dates:
        void.add((dataset, DCTERMS.modified, Literal(dates[-1], datatype=XSD.date)))
    endpoint = URIRef(BASE + "sparql")
    void.add((dataset, VOID.sparqlEndpoint, endpoint))
    void.add((dataset, VOID.uriSpace, Literal(BASE)))
    void.add((dataset, VOID.vocabulary, URIRef(PREFIXES["gkg"])))
    void.add((dataset, VOID.triples, Literal(union_size, datatype=XSD.integer)))
    void.add((dataset, DCAT.landingPage, URIRef(BASE)))
    service = URIRef(DATASET_DOCUMENT + "#sparql")
    void.add((service, RDF.type, DCAT.DataService))
    void.add((service, DCTERMS.title, Literal("SPARQL 1.1 endpoint (guidelinekg serve)",
                                              lang="en")))
    void.add((service, DCAT.endpointURL, endpoint))
    void.add((service, DCAT.servesDataset, dataset))
    for graph in graphs:
        subset = URIRef(f"{DATASET_DOCUMENT}#{graph.name}")
        void.add((dataset, VOID.subset, subset))
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
        license_iri = graph.license or core.license
        if license_iri is not None:
            void.add((subset, DCTERMS.license, license_iri))
        void.add((subset, DCTERMS.publisher, publisher))
        void.add((subset, VOID.triples, Literal(len(graph.graph), datatype=XSD.integer)))
        void.add((subset, VOID.sparqlEndpoint, endpoint))
        formats = [(f.extension, f.media_type, f.name) for f in RDF_FORMATS]
        formats += [(name.rsplit(".", 1)[1], FHIR_JSON, "FHIR JSON") for name in graph.raw_files]
        for version in (graph.version, "latest"):
            for extension, media_type, format_name in formats:
                path = graph.file(version, extension)
                distribution = URIRef(f"{DATASET_DOCUMENT}#{graph.name}-{version}-{extension}")
                void.add((subset, DCAT.distribution, distribution))
                void.add((distribution, RDF.type, DCAT.Distribution))
                void.add((distribution, DCTERMS.title, Literal(
                    f"{graph.title}, {'latest version' if version == 'latest' else version}"
                    f" ({format_name})", lang="en")))
                void.add((distribution, DCAT.mediaType, URIRef(IANA_MEDIA + media_type)))
                void.add((distribution, DCAT.downloadURL, URIRef(BASE + path)))
                void.add((distribution, DCAT.accessURL, URIRef(BASE + path)))
                if path in sizes:
                    void.add((distribution, DCAT.byteSize,
                              Literal(sizes[path], datatype=XSD.nonNegativeInteger)))
                if license_iri is not None:
                    void.add((distribution, DCTERMS.license, license_iri))
    return stable_graph(void)[0]


# ---------------------------------------------------------------------------------------
# Redirect rules for w3id.org
# ---------------------------------------------------------------------------------------

# In the order the rules test them.
_ACCEPT_PATTERNS = {
    FHIR_JSON: r"application/fhir\+json",
    "text/turtle": r"text/turtle",
    "application/ld+json": r"application/ld\+json",
    "application/rdf+xml": r"application/rdf\+xml",
    "application/n-triples": r"application/n-triples",
}


def htaccess(routes: dict[str, Route], site_url: str | None) -> str:
    """Apache rules: 303 from every IRI to its document by Accept, HTML by default.

    With ``site_url`` (where the static site is hosted) this is the entry for the w3id.org
    repository (folder guidelinekg/); without it the file works at the root of the site itself.
    mod_rewrite only tests whether a type is present in Accept; ``guidelinekg serve`` weighs
    q-values.
    """
    target = site_url.rstrip("/") + "/" if site_url else "/"
    lines = [
        "# Persistent IRIs https://w3id.org/guidelinekg/... (generated by `guidelinekg publish`).",
        "# Every IRI answers 303 See Other with the document for the Accept header:",
        "# Turtle, JSON-LD, RDF/XML, N-Triples on request, HTML otherwise.",
        f"# Documents are served from {target}",
        "Options -MultiViews",
        "AddType text/turtle .ttl",
        "AddType application/ld+json .jsonld",
        "AddType application/rdf+xml .rdf",
        "AddType application/n-triples .nt",
        "AddType application/fhir+json .json",
        "AddCharset utf-8 .html .ttl .jsonld .nt .json",
        "<IfModule mod_headers.c>",
        "  Header append Vary Accept",
        "</IfModule>",
        "RewriteEngine on",
    ]
    if not site_url:
        lines += ["RewriteBase /", "", "# Existing files are served as they are.",
                  "RewriteCond %{REQUEST_FILENAME} -f", "RewriteRule ^ - [L]"]
    # Pattern rules for folders of resources: path -> path.<extension>.
    folders: dict[str, list[str]] = {}
    explicit: list[Route] = []
    for route in routes.values():
        if route.kind != "resource":
            explicit.append(route)
            continue
        folder, _, name = route.path.rpartition("/")
        if "." in name or route.documents[HTML] != route.path + ".html":
            explicit.append(route)
        else:
            folders.setdefault(folder, []).append(name)
    reserved = {route.path for route in explicit}
    for route in sorted(explicit, key=lambda r: r.path):
        pattern = "^" + re.escape(route.path) + "$"
        lines += ["", f"# {BASE}{route.path} ({route.kind})"]
        for media_type in _ACCEPT_PATTERNS:
            if media_type not in route.documents:
                continue
            lines += [f"RewriteCond %{{HTTP_ACCEPT}} {_ACCEPT_PATTERNS[media_type]}",
                      f"RewriteRule {pattern} {target}{route.documents[media_type]} [R=303,L]"]
        lines.append(f"RewriteRule {pattern} {target}{route.documents[HTML]} [R=303,L]")
    for folder in sorted(folders):
        prefix = re.escape(folder) + "/" if folder else ""
        pattern = f"^{prefix}([^/.]+)$"
        lines += ["", f"# {BASE}{folder}/<name> ({len(folders[folder])} resources)"]
        excluded = sorted({r.rsplit("/", 1)[1] for r in reserved
                           if r.rpartition("/")[0] == folder})
        guard = [f"RewriteCond %{{REQUEST_URI}} !/({'|'.join(map(re.escape, excluded))})$"] \
            if excluded else []
        for fmt in RDF_FORMATS:
            lines += [*guard, f"RewriteCond %{{HTTP_ACCEPT}} {_ACCEPT_PATTERNS[fmt.media_type]}",
                      f"RewriteRule {pattern} {target}{folder + '/' if folder else ''}$1."
                      f"{fmt.extension} [R=303,L]"]
        lines += [*guard, f"RewriteRule {pattern} {target}{folder + '/' if folder else ''}$1.html"
                  " [R=303,L]"]
    if site_url:
        lines += ["", "# The SPARQL endpoint of `guidelinekg serve` (307 keeps a POST a POST).",
                  f"RewriteRule ^sparql$ {target}sparql [R=307,L]",
                  "", "# Everything else: the same path on the site.",
                  f"RewriteRule ^$ {target} [R=302,L]",
                  f"RewriteRule ^(.+)$ {target}$1 [R=302,L]"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# Building the site
# ---------------------------------------------------------------------------------------


@dataclass
class Site:
    """What a build produced: files, the graph each RDF file holds, and the routes."""

    root: Path
    files: dict[str, bytes]
    rdf_files: dict[str, Graph]
    routes: dict[str, Route]
    graphs: list[PublishedGraph]
    notes: list[str]
    union: Graph

    def route_for(self, path: str) -> Route | None:
        return self.routes.get(path.strip("/"))


def _read_manifest(out: Path) -> dict | None:
    marker = out / MANIFEST_NAME
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _prepare_out(out: Path, graphs: list[PublishedGraph]) -> dict[str, list[str]]:
    """Empty the output of a previous build, keeping its earlier version folders.

    A folder that is not empty and was not made by ``guidelinekg publish`` is refused.
    Returns the earlier versions kept, per graph folder.
    """
    kept: dict[str, list[str]] = {}
    if not out.exists():
        return kept
    if not out.is_dir():
        raise InputError(out, "is a file, not a folder")
    if not any(out.iterdir()):
        return kept
    manifest = _read_manifest(out)
    if manifest is None:
        raise InputError(out, "is not empty and was not written by `guidelinekg publish`; "
                              "choose an empty or new folder")
    current = {g.folder: g.version for g in graphs}
    for folder, versions in manifest.get("versions", {}).items():
        for version in versions:
            if folder in current and version != current[folder] and version != "latest":
                kept.setdefault(folder, []).append(version)
    keep_prefixes = tuple(f"{folder}/{v}/" for folder, versions in kept.items() for v in versions)
    for name in manifest.get("files", []):
        if name.startswith(keep_prefixes) or ".." in PurePosixPath(name).parts:
            continue
        path = out / name
        if path.is_file():
            path.unlink()
    for directory in sorted((p for p in out.rglob("*") if p.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()
    return {folder: sorted(versions) for folder, versions in kept.items()}


def build_site(out: Path | str, site_url: str | None = None,  # noqa: C901 - issue 12: to become small steps
               shapes_files: list[Path] | None = None,
               codesystem_file: Path | None = None, write: bool = True) -> Site:
    """Build the site into ``out`` (deterministic, offline)."""
    out = Path(out)
    notes: list[str] = []
    graphs = collect_graphs(shapes_files, codesystem_file, notes)
    union = Graph(bind_namespaces="none")
    for graph in graphs:
        for triple in graph.graph:
            union.add(triple)
    prefix_map = all_prefixes()
    for graph in graphs:
        for prefix, namespace in graph.prefixes.items():
            prefix_map.setdefault(prefix, namespace)
    prefixes = Prefixes(prefix_map)
    files: dict[str, bytes] = {}
    rdf_files: dict[str, Graph] = {}
    kept = _prepare_out(out, graphs) if write else {}

    def add_rdf(path_stems: list[str], graph: Graph, triples: list[Triple] | None = None) -> None:
        triples = triples if triples is not None else stable_triples(graph)
        for fmt in RDF_FORMATS:
            data = write_rdf(fmt.extension, triples, prefixes)
            for stem in path_stems:
                files[f"{stem}.{fmt.extension}"] = data
                rdf_files[f"{stem}.{fmt.extension}"] = graph

    # Graph files, per version and latest.
    routes: dict[str, Route] = {}
    guideline_list = guidelines(union)
    for graph in graphs:
        if graph.name == "ontology":
            graph.doc_page = "ontology.html"
        elif graph.name.startswith("shapes-") or graph.name.startswith("codesystem-"):
            graph.doc_page = f"{graph.folder}.html"
        else:
            inside = [g for g in guideline_list if (g.iri, RDF.type, GKG.Guideline) in graph.graph]
            graph.doc_page = (_site_path(inside[0].iri) + ".html") if len(inside) == 1 \
                else f"{graph.version_folder}/index.html"
        add_rdf([f"{graph.folder}/{v}/{graph.stem}" for v in (graph.version, "latest")],
                graph.graph, graph.triples)
        for version in (graph.version, "latest"):
            for name, data in graph.raw_files.items():
                files[f"{graph.folder}/{version}/{name}"] = data
        documents = {HTML: graph.doc_page}
        documents.update({f.media_type: graph.file("latest", f.extension) for f in RDF_FORMATS})
        for name in graph.raw_files:
            documents[FHIR_JSON] = f"{graph.folder}/latest/{name}"
        routes[graph.folder] = Route(graph.folder, documents, "graph")
        version_documents = {HTML: f"{graph.version_folder}/index.html"}
        version_documents.update({f.media_type: graph.file(graph.version, f.extension)
                                  for f in RDF_FORMATS})
        for name in graph.raw_files:
            version_documents[FHIR_JSON] = f"{graph.version_folder}/{name}"
        version_paths = {graph.version_folder}
        if graph.version_iri is not None and _relative_path(str(graph.version_iri)):
            version_paths.add(_relative_path(str(graph.version_iri)) or graph.version_folder)
        for path in version_paths:
            routes[path] = Route(path, version_documents, "version")

    routes["void"] = Route("void", {HTML: "index.html", **{
        f.media_type: f"void.{f.extension}" for f in RDF_FORMATS}}, "dataset")
    reserved = set(routes) | {"sparql"} | {f"{g.folder}/latest" for g in graphs}
    for path in resource_paths(union, reserved, notes):
        routes[path] = Route(path, {HTML: f"{path}.html", **{
            f.media_type: f"{path}.{f.extension}" for f in RDF_FORMATS}}, "resource")
    # Shapes files named patient*.ttl describe patient records (the rest check the guideline).
    patient_shape_graphs = [g for g in graphs if g.name.startswith("shapes-patient")]
    shapes: Graph | None = None
    if patient_shape_graphs:
        shapes = Graph()
        for graph in patient_shape_graphs:
            for triple in graph.graph:
                shapes.add(triple)
    facts = patient_facts(union)
    site = SiteContext(union, routes, prefixes, guideline_list, facts, graphs, shapes)
    environment = _environment()
    shown_notice = notice(guideline_list)

    def render(template: str, path: str, title: str, jsonld: dict | None = None,
               alternates: list[tuple[str, str]] | None = None, **context: object) -> None:
        page = Page(site, path)
        html = environment.get_template(template).render(
            page=page, title=title, notice=shown_notice,
            jsonld=script_json(jsonld) if jsonld is not None else None,
            alternates=[(media, page.url(target)) for media, target in (alternates or [])],
            guidelines=guideline_list, **context)
        files[path] = html.encode("utf-8")

    # Per-resource documents.
    recommendation_iris = {r.iri for g in guideline_list for r in g.recommendations}
    guideline_by_iri = {g.iri: g for g in guideline_list}
    for path, route in sorted(routes.items()):
        if route.kind != "resource":
            continue
        iri = URIRef(BASE + path)
        description = describe(union, iri)
        add_rdf([path], description)
        alternates = [(f.media_type, f"{path}.{f.extension}") for f in RDF_FORMATS]
        document = to_jsonld_document(description)
        page_title = label(union, iri)
        if iri in recommendation_iris:
            recommendation = read_recommendation(union, iri)
            render("recommendation.html", f"{path}.html", f"{recommendation.key}: recommendation",
                   document, alternates, recommendation=recommendation,
                   guideline=(guideline_by_iri.get(recommendation.guideline)
                              if recommendation.guideline is not None else None),
                   iri=str(iri))
        elif iri in guideline_by_iri:
            render("guideline.html", f"{path}.html", guideline_by_iri[iri].title, document,
                   alternates, guideline=guideline_by_iri[iri], iri=str(iri))
        else:
            page = Page(site, f"{path}.html")
            criterion = read_criterion(union, iri) if (
                iri, RDF.type, GKG.FactCriterion) in union or any(
                (iri, RDF.type, t) in union for t in (GKG.AllOf, GKG.AnyOf, GKG.NoneOf)) \
                else None
            used_in = sorted({statement_key(union, s) for s in union.subjects(
                GKG.applicability, iri)})
            incoming = sorted({(s, p) for s, p in union.subject_predicates(iri)
                               if isinstance(s, URIRef)}, key=lambda sp: (str(sp[1]), str(sp[0])))
            render("resource.html", f"{path}.html", page_title, document, alternates,
                   iri=str(iri), compact=page.compact(iri),
                   types=[_value_view(page, t) for t in sorted_terms(
                       union, union.objects(iri, RDF.type))],
                   rows=property_rows(page, union, iri), criterion=criterion,
                   used_in=used_in,
                   incoming=[{"subject": _value_view(page, s), "predicate": _value_view(page, p)}
                             for s, p in incoming[:300]],
                   fact_key=(text(union, iri, SKOS.notation) if any(
                       f.iri == iri for f in facts) else None))

    # Graph documentation pages and version indexes.
    for graph in graphs:
        versions = sorted(set(kept.get(graph.folder, [])) | {graph.version})
        render("version.html", f"{graph.version_folder}/index.html",
               f"{graph.title} {graph.version}", None, None, graph=graph, versions=versions,
               formats=RDF_FORMATS, folder=graph.version_folder)
        if graph.name == "ontology":
            page = Page(site, "ontology.html")
            render("ontology.html", "ontology.html", graph.title,
                   to_jsonld_document(describe(union, graph.iri)),
                   [(f.media_type, graph.file("latest", f.extension)) for f in RDF_FORMATS],
                   graph=graph, view=ontology_view(page, graph), formats=RDF_FORMATS,
                   versions=versions)
        elif graph.name.startswith("shapes-"):
            page = Page(site, graph.doc_page)
            render("shapes.html", graph.doc_page, graph.title,
                   to_jsonld_document(describe(union, graph.iri)),
                   [(f.media_type, graph.file("latest", f.extension)) for f in RDF_FORMATS],
                   graph=graph, shapes=shapes_view(page, graph.graph), formats=RDF_FORMATS,
                   metadata=property_rows(page, graph.graph, graph.iri))
        elif graph.name.startswith("codesystem-"):
            page = Page(site, graph.doc_page)
            concepts = [{"value": _value_view(page, c),
                         "notation": text(union, c, SKOS.notation),
                         "definition": text(union, c, SKOS.definition),
                         "anchor": str(c).split("#", 1)[1] if "#" in str(c) else None,
                         "broader": [_value_view(page, b) for b in union.objects(c, SKOS.broader)]}
                        for c in sorted(graph.graph.subjects(SKOS.inScheme, graph.iri),
                                        key=lambda c: text(union, c, SKOS.notation) or str(c))]
            render("codesystem.html", graph.doc_page, graph.title, None,
                   [(FHIR_JSON, f"{graph.folder}/latest/{graph.stem}.json")]
                   + [(f.media_type, graph.file("latest", f.extension)) for f in RDF_FORMATS],
                   graph=graph, concepts=concepts, formats=RDF_FORMATS)

    # The patient-data page, the query page, the dataset description and the index.
    page = Page(site, "patient-data.html")
    render("patient_data.html", "patient-data.html", "Data a patient record needs", None, None,
           facts=facts, shapes=shapes_view(page, shapes) if shapes is not None else [],
           shape_graphs=patient_shape_graphs)
    render("query.html", "query.html", "SPARQL query", None, None)

    sizes = {name: len(data) for name, data in files.items()}
    dataset = void_graph(graphs, len(union), sizes, guideline_list)
    add_rdf(["void"], dataset)
    files["context.jsonld"] = CONTEXT_FILE.read_bytes()
    render("index.html", "index.html", "guidelinekg", to_jsonld_document(dataset),
           [(f.media_type, f"void.{f.extension}") for f in RDF_FORMATS],
           graphs=graphs, formats=RDF_FORMATS, sizes=sizes,
           triples={g.name: len(g.graph) for g in graphs}, union_size=len(union), notes=notes)
    files[".htaccess"] = htaccess(routes, site_url).encode("utf-8")
    for static in sorted(STATIC_DIR.rglob("*")):
        if static.is_file() and not static.name.startswith("."):
            files["static/" + static.relative_to(STATIC_DIR).as_posix()] = static.read_bytes()

    manifest_versions = {g.folder: sorted(set(kept.get(g.folder, [])) | {g.version, "latest"})
                         for g in graphs}
    kept_files = sorted(
        p.relative_to(out).as_posix() for folder, vs in kept.items() for v in vs
        for p in (out / folder / v).rglob("*") if p.is_file()) if write else []
    manifest = {"generator": f"guidelinekg {__version__}",
                "files": sorted(set(files) | set(kept_files) | {MANIFEST_NAME}),
                "versions": manifest_versions}
    files[MANIFEST_NAME] = (json.dumps(manifest, indent=1) + "\n").encode("utf-8")
    if write:
        for name in sorted(files):
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(files[name])
    return Site(out, files, rdf_files, routes, graphs, notes, union)


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="folder to write the site into (new, empty, or an earlier site)")
    parser.add_argument("--site-url", metavar="URL",
                        help="where the site will be hosted; the .htaccess is then the w3id.org "
                             "entry redirecting the persistent IRIs there (default: rules for "
                             "the root of the site itself)")


def run(args: argparse.Namespace) -> int:
    output_directory(args.out)
    site = build_site(args.out, site_url=args.site_url)
    for note in site.notes:
        print(f"note: {note}", file=sys.stderr)
    resources = sum(1 for r in site.routes.values() if r.kind == "resource")
    print(f"wrote {len(site.files)} files to {args.out}: "
          + ", ".join(f"{g.name} {g.version} ({len(g.graph)} triples)" for g in site.graphs)
          + f"; {resources} IRIs with their own documents")
    return 0
