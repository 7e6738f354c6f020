"""The graphs the site publishes, read from the modules' files: the core ontology, one graph
per domain, per guideline content file and per guideline vocabulary file, one per shapes
file, and each FHIR CodeSystem (as written and as a SKOS concept scheme)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, OWL, RDF, SKOS

from guidelinekg import __version__
from guidelinekg.guideline_content import text
from guidelinekg.loading import BASE, InputError, parse_rdf_file, read_bytes_checked
from guidelinekg.publishing.formats import all_prefixes, relative_path, stable_graph
from guidelinekg.rdf_output import Triple
from guidelinekg.resources import (
    Module,
    all_shape_files,
    fhir_folders,
    library_roots,
    modules,
    resource_root,
)


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
    # "core", "domain", "guideline" (content), "vocabulary" (a guideline's own terms),
    # "shapes" or "codesystem"; and the guideline module a graph belongs to, if one.
    kind: str = ""
    guideline: str | None = None

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


def source_name(path: Path) -> str:
    """A source file as the pages show it: relative to the library root it comes from."""
    for root in library_roots():
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return path.name


def _is_bundled(path: Path) -> bool:
    """Whether a file is one of the project's own (shipped with the package)."""
    return path.resolve().is_relative_to(resource_root().resolve())


def _ontology_iri(name: str, merged: Graph, default_iri: str, notes: list[str]) -> URIRef:
    ontologies = sorted(s for s in merged.subjects(RDF.type, OWL.Ontology) if isinstance(s, URIRef))
    if URIRef(default_iri) in ontologies or not ontologies:
        return URIRef(default_iri)
    if len(ontologies) > 1:
        notes.append(f"{name}: several owl:Ontology declarations; published as {ontologies[0]}")
    return ontologies[0]


def _new_prefixes(files: list[Path]) -> dict[str, str]:
    """The prefixes the files declare that the project does not already bind."""
    known = all_prefixes()
    prefixes = {}
    for path in files:
        for prefix, namespace in _prefixes_in_turtle(path).items():
            if prefix not in known and namespace not in known.values():
                prefixes[prefix] = namespace
    return prefixes


def ontology_graph(name: str, files: list[Path], stem: str, default_iri: str,
                   default_title: str, notes: list[str],
                   fallback_version: str | None = None) -> PublishedGraph:
    """Turtle files merged into one graph, answering for its owl:Ontology (or the default)."""
    merged = Graph()
    for path in files:
        for triple in parse_rdf_file(path):
            merged.add(triple)
    iri = _ontology_iri(name, merged, default_iri, notes)
    version = text(merged, iri, OWL.versionInfo)
    if version is None:
        version = fallback_version or __version__
        # The project's own files are released together and take the release's version;
        # only a library's file, whose author can add owl:versionInfo, is worth a note.
        if not all(_is_bundled(path) for path in files):
            notes.append(f"{name}: no owl:versionInfo; published as version {version}")
    version_iri = merged.value(iri, OWL.versionIRI)
    modified = merged.value(iri, DCTERMS.modified)
    license_iri = merged.value(iri, DCTERMS.license)
    stable, triples = stable_graph(merged)
    return PublishedGraph(
        name=name,
        title=text(merged, iri, DCTERMS.title) or default_title,
        iri=iri,
        folder=relative_path(str(iri)) or name,
        stem=stem,
        version=version,
        version_iri=version_iri if isinstance(version_iri, URIRef) else None,
        prior_versions=sorted(o for o in merged.objects(iri, OWL.priorVersion)
                              if isinstance(o, URIRef)),
        modified=str(modified) if modified is not None else None,
        license=license_iri if isinstance(license_iri, URIRef) else None,
        graph=stable,
        triples=triples,
        source_files=[source_name(path) for path in files],
        prefixes=_new_prefixes(files),
    )


# ---------------------------------------------------------------------------------------
# FHIR CodeSystems
# ---------------------------------------------------------------------------------------


def _read_codesystem(path: Path) -> tuple[bytes, dict, str]:
    """The file's bytes, the CodeSystem resource and its url; InputError when it is not one."""
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
    return data, resource, url


def _string(resource: dict, key: str) -> str | None:
    value = resource.get(key)
    return value if isinstance(value, str) else None


def _scheme_metadata(graph: Graph, scheme: URIRef, resource: dict,
                     language: str | None) -> None:
    for key, predicate in (("title", DCTERMS.title), ("description", DCTERMS.description),
                           ("publisher", DCTERMS.publisher), ("name", SKOS.prefLabel)):
        if isinstance(resource.get(key), str):
            graph.add((scheme, predicate, Literal(resource[key], lang=language)
                       if predicate in (DCTERMS.title, DCTERMS.description, SKOS.prefLabel)
                       else Literal(resource[key])))


def _add_concepts(graph: Graph, scheme: URIRef, url: str, concepts: object,
                  parent: URIRef | None, language: str | None) -> None:
    """The CodeSystem's concepts (nested ones under their parent) as SKOS concepts."""
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
        _add_concepts(graph, scheme, url, concept.get("concept"), iri, language)


def codesystem_graph(path: Path, fallback_version: str, notes: list[str]) -> PublishedGraph:
    """The FHIR CodeSystem as JSON (as written) and as a SKOS concept scheme."""
    data, resource, url = _read_codesystem(path)
    graph = Graph()
    scheme = URIRef(url)
    graph.add((scheme, RDF.type, SKOS.ConceptScheme))
    language = _string(resource, "language")
    _scheme_metadata(graph, scheme, resource, language)
    version = _string(resource, "version")
    if version:
        graph.add((scheme, OWL.versionInfo, Literal(version)))
    else:
        notes.append(f"{path.name}: no version; published as version {fallback_version}")
    date = _string(resource, "date")
    if date is not None:
        graph.add((scheme, DCTERMS.modified, Literal(date)))
    _add_concepts(graph, scheme, url, resource.get("concept"), None, language)
    folder = relative_path(url) or "CodeSystem/finding"
    stem = PurePosixPath(folder).name or "codesystem"
    stable, triples = stable_graph(graph)
    return PublishedGraph(
        name="codesystem-" + stem,
        title=str(resource.get("title") or resource.get("name") or stem),
        iri=scheme,
        folder=folder,
        stem=stem,
        version=version or fallback_version,
        version_iri=None,
        prior_versions=[],
        modified=date,
        license=None,
        graph=stable,
        triples=triples,
        source_files=[source_name(path)],
        raw_files={f"{stem}.json": data},
        kind="codesystem",
    )


# ---------------------------------------------------------------------------------------
# Every graph of the site
# ---------------------------------------------------------------------------------------


def _module_graph(module: Module, files: list[Path], notes: list[str]) -> PublishedGraph:
    """A domain's files, or one file of a guideline, as a graph: a guideline's content
    answers for the guideline's IRI, a domain for the domain's."""
    path = files[0]
    if module.kind == "domain" or path == module.content_file:
        iri, title = f"{BASE}{module.kind}/{module.name}", f"{module.kind.title()}: {module.name}"
        name = f"{module.kind}-{module.name}"
    else:
        iri = f"{BASE}{module.kind}/{module.name}/{path.stem}"
        title, name = f"{module.name}: {path.stem}", f"{module.kind}-{module.name}-{path.stem}"
    graph = ontology_graph(name, files, path.stem, iri, title, notes)
    if module.kind == "domain":
        graph.kind = "domain"
    else:
        graph.kind = "guideline" if path == module.content_file else "vocabulary"
        graph.guideline = module.name
    return graph


def _owning_module(path: Path) -> Module | None:
    """The domain or guideline whose folder holds a file (its shapes), if one does."""
    resolved = path.resolve()
    return next((m for m in modules() if m.kind != "core"
                 and resolved.is_relative_to(m.folder.resolve())), None)


def _shape_graph(path: Path, fallback_version: str, notes: list[str]) -> PublishedGraph:
    # Each shapes file declares its own owl:Ontology (shapes/patient, shapes/guideline,
    # domain/<name>/shapes/..., guideline/<id>/shapes/...) and is published as its own graph;
    # a module's shapes are named with the module, since two modules may both have (say)
    # patient.ttl.
    owner = _owning_module(path)
    if owner is None:
        graph = ontology_graph(f"shapes-{path.stem}", [path], path.stem,
                               BASE + f"shapes/{path.stem}",
                               f"guidelinekg SHACL shapes ({path.stem})", notes,
                               fallback_version=fallback_version)
    else:
        graph = ontology_graph(f"shapes-{owner.name}-{path.stem}", [path], path.stem,
                               f"{BASE}{owner.kind}/{owner.name}/shapes/{path.stem}",
                               f"{owner.name}: SHACL shapes ({path.stem})", notes,
                               fallback_version=fallback_version)
        graph.guideline = owner.name if owner.kind == "guideline" else None
    graph.kind = "shapes"
    return graph


def _shape_graphs(shapes: list[Path], fallback_version: str,
                  notes: list[str]) -> list[PublishedGraph]:
    if not shapes:
        notes.append("shapes/*.ttl: no shapes found; no shapes graph is published")
    return [_shape_graph(path, fallback_version, notes) for path in shapes]


def _codesystem_graphs(codesystems: list[Path], fallback_version: str,
                       notes: list[str]) -> list[PublishedGraph]:
    graphs = []
    for codesystem in codesystems:
        if codesystem.is_file():
            graphs.append(codesystem_graph(codesystem, fallback_version, notes))
        else:
            notes.append(f"{source_name(codesystem)}: not found; the FHIR CodeSystem is not "
                         "published")
    return graphs


def collect_graphs(shapes_files: list[Path] | None = None,
                   codesystem_file: Path | None = None,
                   notes: list[str] | None = None) -> list[PublishedGraph]:
    """Every graph the site publishes, read from the bundled files (and the library's)."""
    notes = notes if notes is not None else []
    found = modules()
    core = ontology_graph("ontology", found[0].ontology_files(), "guidelinekg",
                          BASE + "ontology", "guidelinekg core ontology", notes)
    core.kind = "core"
    graphs = [core]
    for module in found[1:]:
        # A domain is one ontology over its files (like the core); a guideline's content
        # and its own vocabulary are two.
        parts = [module.ontology_files()] if module.kind == "domain" \
            else [[path] for path in module.ontology_files()]
        graphs += [_module_graph(module, files, notes) for files in parts]
    shapes = all_shape_files() if shapes_files is None else list(shapes_files)
    graphs += _shape_graphs(shapes, core.version, notes)
    codesystems = sorted(path for folder in fhir_folders()
                         for path in folder.glob("CodeSystem-*.json")) \
        if codesystem_file is None else [codesystem_file]
    graphs += _codesystem_graphs(codesystems, core.version, notes)
    return graphs
