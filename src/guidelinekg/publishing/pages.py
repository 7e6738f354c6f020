"""What the page templates are given: the site's links and labels (SiteContext, Page), the
views of terms and their properties, and the RDF description of one IRI."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import jinja2
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS, SKOS
from rdflib.paths import MulPath, SequencePath
from rdflib.term import Node

from guidelinekg.fhir_import.codes import (
    FINDING,
    RXNORM,
    SNOMED,
    canonical_system,
    code_map_paths,
    read_code_map,
)
from guidelinekg.guideline_content import (
    Guideline,
    PatientFact,
    _key_order,
    describe_blank_closure,
    label,
    local_name,
    statement_key,
    text,
)
from guidelinekg.loading import BASE, PREFIXES
from guidelinekg.namespaces import GKG, prefixed_name
from guidelinekg.publishing.formats import HTML, TEMPLATES_DIR, _term_key, relative_path
from guidelinekg.publishing.graphs import PublishedGraph
from guidelinekg.publishing.routes import Route
from guidelinekg.rdf_output import Prefixes

_KEY_IN_TEXT = re.compile(r"\b[A-Z][A-Z0-9]*-\d+\b")
# The code systems as guideline_parts.Code names them, and the properties holding codes.
_CODE_SYSTEMS = {"RxNorm": RXNORM, "SNOMED CT": SNOMED, "guidelinekg finding": FINDING}
_CODE_PROPERTIES = {GKG.rxnormCode: RXNORM, GKG.snomedCode: SNOMED, GKG.findingCode: FINDING}
# How many sentences of a disclaimer every page shows before "Full disclaimer".
_DISCLAIMER_LEAD = 2


def environment() -> jinja2.Environment:
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
    # (code system URL, code) -> the name the repository's data gives it (code_displays).
    code_displays: dict[tuple[str, str], str] = field(default_factory=dict)
    _labels: dict[Node, str] = field(default_factory=dict)

    def html_document(self, iri: Node) -> str | None:
        """The site path (with #fragment) of the HTML document of an IRI, if it has one."""
        if not isinstance(iri, URIRef):
            return None
        value = str(iri)
        if not value.startswith(BASE):
            return None
        path = relative_path(value)
        route = self.routes.get(path or "")
        if route is None or HTML not in route.documents:
            return None
        document = route.documents[HTML]
        if "#" in value:
            return f"{document}#{value.split('#', 1)[1]}"
        return document

    def compact(self, term: Node) -> str:
        """An IRI's prefixed name in the site's prefixes (those its RDF documents declare),
        else the IRI as written: pages show it beside a link, not as N3."""
        if isinstance(term, URIRef):
            return prefixed_name(term, self.prefixes.prefixes) or str(term)
        return str(term)

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

    def code_display(self, system: str, code: str) -> str | None:
        """The name of a code shown as ``system`` (``RxNorm``, ``SNOMED CT``), if the
        repository's data holds one."""
        return self.site.code_displays.get((_CODE_SYSTEMS.get(system, system), code))

    def fact_href(self, fact: Node) -> str:
        key = text(self.site.union, fact, SKOS.notation) or local_name(fact)
        return self.url("patient-data.html") + "#" + key

    # Statements are linked by IRI, never by key alone: two guidelines may share a key.

    def statement_link(self, statement: Node) -> dict[str, str | None]:
        """A link to a statement, shown as its key; with several guidelines as its compact
        IRI (``<guideline>:<key>``), which says whose it is."""
        shown = statement_key(self.site.union, statement)
        if len(self.site.guidelines) > 1:
            shown = self.compact(statement)
        return {"text": shown, "href": self.href(statement)}

    def statement_links(self, statements: Iterable[Node]) -> list[dict[str, str | None]]:
        return [self.statement_link(statement) for statement in statements]

    def statements_named(self, message: str, guideline: str | None = None) -> list[Node]:
        """The statements whose keys a message names, in the order it names them; only
        ``guideline``'s (a module name) when the message is that guideline's."""
        namespace = PREFIXES.get(guideline) if guideline is not None else None
        found: list[Node] = []
        for key in dict.fromkeys(_KEY_IN_TEXT.findall(message)):
            found += [r.iri for g in self.site.guidelines for r in g.recommendations
                      if r.key == key and (namespace is None or str(r.iri).startswith(namespace))]
        return found


class RootPage(Page):
    """A page served at any path (the 404 page): its links start at the site's root, where
    the .htaccess puts the site (RewriteBase /) and where `guidelinekg serve` serves it."""

    def url(self, target: str) -> str:
        return "/" + target


def disclaimer_parts(disclaimer: str) -> dict[str, str]:
    """A disclaimer's first sentences, which every page shows, and the rest, folded: whole,
    it fills a phone's first screen."""
    sentences = re.split(r"(?<=[.!?])\s+", disclaimer.strip())
    return {"lead": " ".join(sentences[:_DISCLAIMER_LEAD]),
            "rest": " ".join(sentences[_DISCLAIMER_LEAD:])}


def notice(guideline_list: list[Guideline]) -> dict[str, list]:
    """The review status and disclaimer(s) every page shows."""
    statuses = sorted({g.review_status for g in guideline_list if g.review_status})
    disclaimers = sorted({g.disclaimer for g in guideline_list if g.disclaimer})
    return {
        "statuses": statuses or ["not stated"],
        "notes": sorted({g.review_note for g in guideline_list if g.review_note}),
        "disclaimers": disclaimers,
        "disclaimer_parts": [disclaimer_parts(d) for d in disclaimers],
    }


def code_displays(graphs: list[PublishedGraph]) -> dict[tuple[str, str], str]:
    """What the repository's own data calls each code: the modules' FHIR code maps, then the
    published CodeSystems. A code named nowhere has no entry; its pages show it bare."""
    displays: dict[tuple[str, str], str] = {}
    for path in code_map_paths():
        for row in read_code_map(path).rows:
            if row.display and not row.code.endswith("*"):  # "C50*" is a range, not a code
                displays.setdefault((canonical_system(row.system), row.code), row.display)
    for graph in graphs:
        if graph.kind != "codesystem":
            continue
        for concept in graph.graph.subjects(SKOS.inScheme, graph.iri):
            notation = text(graph.graph, concept, SKOS.notation)
            name = text(graph.graph, concept, SKOS.prefLabel)
            if notation and name:
                displays.setdefault((str(graph.iri), notation), name)
    return displays


def value_view(page: Page, term: Node) -> dict[str, str | None]:
    """A term as a template shows it: text, link, note (language, datatype or compact IRI)."""
    if isinstance(term, Literal):
        extra = term.language or (page.compact(term.datatype) if term.datatype else None)
        return {"text": str(term), "href": None, "note": extra, "iri": None}
    if isinstance(term, BNode):
        return {"text": "(blank node)", "href": None, "note": None, "iri": None}
    return {"text": page.label(term), "href": page.href(term), "note": page.compact(term),
            "iri": str(term)}


def optional_value_view(page: Page, term: Node | None) -> dict[str, str | None] | None:
    return value_view(page, term) if term is not None else None


def _property_value(page: Page, graph: Graph, predicate: Node,
                    value: Node) -> dict[str, object]:
    if isinstance(value, BNode):
        return {"text": "", "href": None, "note": None, "iri": None,
                "rows": property_rows(page, graph, value)}
    view: dict[str, object] = dict(value_view(page, value))
    system = _CODE_PROPERTIES.get(predicate) if isinstance(predicate, URIRef) else None
    if system is not None and isinstance(value, Literal):
        view["display"] = page.site.code_displays.get((system, str(value)))
    return view


def property_rows(page: Page, graph: Graph, subject: Node) -> list[dict]:
    """Every property of a subject with its values (a code with its name); a blank node's
    properties nested."""
    rows = []
    for predicate in sorted(set(graph.predicates(subject)), key=lambda p: page.compact(p)):
        values = sorted(graph.objects(subject, predicate), key=_term_key)
        rows.append({
            "predicate": value_view(page, predicate),
            "values": [_property_value(page, graph, predicate, value) for value in values],
        })
    return rows


def _recommendation_parts(union: Graph, iri: URIRef) -> list[Node]:
    """What a recommendation's description includes besides itself: its precondition checks,
    dose regimens and steps, the criteria tree, comparative evidence and sources."""
    subjects: list[Node] = []
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
    return subjects


def describe(union: Graph, iri: URIRef) -> Graph:
    """The RDF description of one IRI: its bounded description, for a recommendation also its
    criteria tree, dose regimens, evidence and sources, and the labels of what it names."""
    description = Graph()
    subjects: list[Node] = [iri]
    if (iri, RDF.type, GKG.Recommendation) in union:
        subjects += _recommendation_parts(union, iri)
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


def statements_by_fact(union: Graph) -> dict[Node, list[Node]]:
    """The statements whose criteria test each fact
    (gkg:applicability/gkg:hasMember*/gkg:onFact), in key order; by IRI, so statements of
    several guidelines with the same key stay apart."""
    path = SequencePath(GKG.applicability, MulPath(GKG.hasMember, "*"), GKG.onFact)
    found: dict[Node, list[Node]] = {}
    for statement in union.subjects(RDF.type, GKG.Recommendation):
        for fact in set(union.objects(statement, path)):
            found.setdefault(fact, []).append(statement)
    return {fact: sorted(statements, key=lambda s: (_key_order(statement_key(union, s)), str(s)))
            for fact, statements in found.items()}
