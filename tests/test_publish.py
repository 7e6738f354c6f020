"""`guidelinekg publish`: the static linked-data site.

The site is built once per session, with every network call refused (it must build offline).
Every RDF file is read back with the project's parser and compared with the graph it was
written from (rdflib.compare.isomorphic); a second build in another process (another hash
seed) must give byte-identical files.
"""

from __future__ import annotations

import html
import json
import os
import re
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic, to_isomorphic
from rdflib.namespace import DCTERMS, RDF, SKOS

from guidelinekg.cli import main
from guidelinekg.loading import BASE, InputError, parse_rdf_file
from guidelinekg.publishing import (
    MANIFEST_NAME,
    RDF_FORMATS,
    Site,
    _prepare_out,
    build_site,
    collect_graphs,
    site_context,
)
from guidelinekg.resources import resource_root

ROOT = Path(__file__).resolve().parents[1]
VOID = Namespace("http://rdfs.org/ns/void#")
DCAT = Namespace("http://www.w3.org/ns/dcat#")
BCBM = Namespace(BASE + "guideline/bcbm/")
# Open, unlike guidelinekg.namespaces.GKG: the tests also name the domain's terms.
GKG = Namespace(BASE + "ontology#")
DISCLAIMER_START = "This information is intended for healthcare professionals."
CODESYSTEM = resource_root() / "domains" / "oncology" / "fhir" / "CodeSystem-finding.json"


@pytest.fixture(scope="session")
def second_build(
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, subprocess.Popen]]:
    """A second build, in another process with another hash seed, running in the background."""
    out = tmp_path_factory.mktemp("publish-again") / "site"
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    process = subprocess.Popen([sys.executable, "-m", "guidelinekg.cli", "publish", "--out",
                                str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=environment)
    yield out, process
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory,
         second_build: tuple[Path, subprocess.Popen]) -> Iterator[Site]:
    """The site, built with the network cut off (while the second build runs)."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"the build tried to use the network: {args!r}")

    patch = pytest.MonkeyPatch()
    patch.setattr(socket.socket, "connect", refuse)
    patch.setattr(socket.socket, "connect_ex", refuse)
    patch.setattr(socket, "getaddrinfo", refuse)
    patch.setattr(socket, "create_connection", refuse)
    try:
        built = build_site(tmp_path_factory.mktemp("publish") / "site")
    finally:
        patch.undo()
    yield built


def page(site: Site, path: str) -> str:
    return (site.root / path).read_text(encoding="utf-8")


def text_of(markup: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup)))


# ---------------------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------------------


def test_cli_builds_the_site(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A small proof that the command is wired; the session build does the real work.
    with pytest.raises(SystemExit) as usage:
        main(["publish"])
    assert usage.value.code == 2
    assert "--out" in capsys.readouterr().err


def test_every_rdf_file_reads_back_as_the_graph_it_came_from(site: Site) -> None:
    assert len(site.rdf_files) > 1000
    canonical: dict[int, int] = {}
    for name, source in sorted(site.rdf_files.items()):
        path = site.root / name
        assert path.is_file(), name
        if "/latest/" in name:
            # The latest copy is byte for byte the versioned file, which is checked.
            graph = next(g for g in site.graphs if name.startswith(g.folder + "/latest/"))
            assert path.read_bytes() == (site.root / name.replace(
                "/latest/", f"/{graph.version}/")).read_bytes(), name
            continue
        back = parse_rdf_file(path)
        # What rdflib.compare.isomorphic(back, source) computes, with the source's canonical
        # digest computed once for its four formats.
        if id(source) not in canonical:
            canonical[id(source)] = to_isomorphic(source).graph_digest()
        assert len(back) == len(source), name
        assert to_isomorphic(back).graph_digest() == canonical[id(source)], name


def test_each_graph_in_every_format_under_its_version_and_latest(site: Site) -> None:
    names = {g.name for g in site.graphs}
    assert {"ontology", "guideline-bcbm"} <= names
    for graph in site.graphs:
        for version in (graph.version, "latest"):
            for fmt in RDF_FORMATS:
                assert (site.root / graph.file(version, fmt.extension)).is_file()
    core = next(g for g in site.graphs if g.name == "ontology")
    assert core.folder == "ontology" and core.version == "0.1.0"
    assert str(core.version_iri) == BASE + "ontology/0.1.0"
    assert site.routes["ontology/0.1.0"].documents["text/turtle"] == \
        "ontology/0.1.0/guidelinekg.ttl"
    # The core ontology file is the merged core (guidelinekg.ttl + patient-facts.ttl); a
    # domain's files are one graph of their own, a guideline's content and vocabulary two.
    owl_class = URIRef("http://www.w3.org/2002/07/owl#Class")
    turtle = parse_rdf_file(site.root / "ontology/0.1.0/guidelinekg.ttl")
    assert (URIRef(BASE + "fact/age"), RDF.type, GKG.DerivedFact) in turtle
    assert (GKG.Intervention, RDF.type, owl_class) in turtle
    assert (GKG.Denosumab, RDF.type, owl_class) not in turtle
    domain = next(g for g in site.graphs if g.name == "domain-oncology")
    assert domain.folder == "domain/oncology" and domain.kind == "domain"
    domain_turtle = parse_rdf_file(site.root / domain.file(domain.version, "ttl"))
    assert (URIRef(BASE + "fact/her2-status"), RDF.type, GKG.ObservedFact) in domain_turtle
    assert (GKG.Denosumab, RDF.type, owl_class) in domain_turtle
    vocabulary = next(g for g in site.graphs if g.name == "guideline-bcbm-vocabulary")
    assert (vocabulary.kind, vocabulary.guideline) == ("vocabulary", "bcbm")
    content = next(g for g in site.graphs if g.name == "guideline-bcbm")
    assert (content.kind, content.guideline) == ("guideline", "bcbm")
    imports = URIRef("http://www.w3.org/2002/07/owl#imports")
    # The content imports its vocabulary, which imports the domain it builds on.
    assert (content.iri, imports, vocabulary.iri) in content.graph
    assert (vocabulary.iri, imports, domain.iri) in vocabulary.graph


def test_building_twice_gives_byte_identical_files(
        site: Site, second_build: tuple[Path, subprocess.Popen]) -> None:
    again, process = second_build
    _, errors = process.communicate(timeout=600)
    assert process.returncode == 0, errors
    first = sorted(p.relative_to(site.root).as_posix() for p in site.root.rglob("*")
                   if p.is_file())
    second = sorted(p.relative_to(again).as_posix() for p in again.rglob("*") if p.is_file())
    assert first == second
    differing = [name for name in first
                 if (site.root / name).read_bytes() != (again / name).read_bytes()]
    assert differing == []


def test_blank_nodes_have_stable_labels(site: Site) -> None:
    shapes = [g for g in site.graphs if g.name.startswith("shapes-")]
    assert shapes, "the shapes graphs (with blank nodes) must be published"
    triples = (site.root / shapes[0].file(shapes[0].version, "nt")).read_text()
    labels = set(re.findall(r"_:(\S+)", triples))
    assert labels and all(re.fullmatch(r"b[0-9a-f]{32}", label) for label in labels)


def test_jsonld_files_carry_the_shipped_context_inline(site: Site) -> None:
    shipped = json.loads((site.root / "context.jsonld").read_text())["@context"]
    assert shipped == site_context()
    for name in sorted(n for n in site.rdf_files if n.endswith(".jsonld")):
        document = json.loads((site.root / name).read_text())
        assert document["@context"] == shipped, name
    for name in sorted(p for p in site.files if p.endswith(".html")):
        for block in re.findall(r'<script type="application/ld\+json">(.*?)</script>',
                                page(site, name), re.S):
            assert isinstance(json.loads(block)["@context"], dict), name


def test_a_graph_missing_at_build_time_is_a_note(tmp_path: Path) -> None:
    notes: list[str] = []
    graphs = collect_graphs(shapes_files=[], codesystem_file=tmp_path / "absent.json",
                            notes=notes)
    assert [g.name for g in graphs] == ["ontology", "domain-oncology", "guideline-bcbm",
                                        "guideline-bcbm-vocabulary"]
    assert any("no shapes found" in note for note in notes)
    assert any("absent.json: not found" in note for note in notes)


def test_a_foreign_folder_is_refused_and_earlier_versions_are_kept(tmp_path: Path) -> None:
    graphs = collect_graphs(shapes_files=[], codesystem_file=tmp_path / "absent.json")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not written by `guidelinekg publish`"):
        _prepare_out(foreign, graphs)
    earlier = tmp_path / "earlier"
    for name in ("ontology/0.0.9/guidelinekg.ttl", "ontology/0.1.0/guidelinekg.ttl",
                 "index.html"):
        (earlier / name).parent.mkdir(parents=True, exist_ok=True)
        (earlier / name).write_text("x")
    (earlier / MANIFEST_NAME).write_text(json.dumps({
        "files": ["ontology/0.0.9/guidelinekg.ttl", "ontology/0.1.0/guidelinekg.ttl",
                  "index.html", MANIFEST_NAME],
        "versions": {"ontology": ["0.0.9", "0.1.0", "latest"]}}))
    kept = _prepare_out(earlier, graphs)
    assert kept == {"ontology": ["0.0.9"]}
    assert (earlier / "ontology/0.0.9/guidelinekg.ttl").is_file()
    assert not (earlier / "ontology/0.1.0").exists() and not (earlier / "index.html").exists()


# ---------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------


def test_every_page_shows_review_status_and_disclaimer(site: Site) -> None:
    pages = sorted(p for p in site.files if p.endswith(".html"))
    assert len(pages) > 280
    for name in pages:
        content = page(site, name)
        assert "Review status: pending human review." in content, name
        assert DISCLAIMER_START in content, name


def test_index_page(site: Site) -> None:
    content = page(site, "index.html")
    words = text_of(content)
    assert "Treatment for Stage 4 Breast Cancer with Bone Metastasis" in words
    assert "Clinical question What is the treatment approach for a patient with stage 4 " \
           "breast cancer and bone metastasis?" in words
    assert "Last updated 2026-02-02" in words
    assert "Review status pending human review" in words
    titles = re.findall(r'<section class="section" id="[^"]+">\s*<h2>([^<]+)</h2>', content)
    assert titles == ["Summary", "Immediate Bone-Directed Therapy",
                      "Systemic Therapy Selection by Tumor Subtype",
                      "HR-Positive/HER2-Negative Disease", "HER2-Positive Disease",
                      "Triple-Negative Disease", "Radiation Therapy for Bone Lesions",
                      "Orthopedic Surgical Evaluation", "Oligometastatic Disease Considerations",
                      "Treatment Goals and Patient Communication", "Critical Pitfalls to Avoid"]
    keys = re.findall(r'class="key" href="guideline/bcbm/([^"]+)\.html"', content)
    assert len(keys) == 37 and keys[0] == "SUM-1" and keys[-1] == "AVOID-6"


def test_one_page_per_recommendation(site: Site) -> None:
    pages = sorted((site.root / "guideline/bcbm").glob("*.html"))
    recommendation_pages = [p for p in pages if 'class="recommendation"' in p.read_text()]
    assert len(recommendation_pages) == 37


def test_recommendation_page_renders_criteria_in_words(site: Site) -> None:
    content = page(site, "guideline/bcbm/HRP-1.html")
    assert ('<p class="criteria-words">all of: HR-positive (any of: ER positive, PR positive); '
            "HER2 negative; no visceral crisis</p>") in content
    words = text_of(content)
    assert "ER positive — estrogen receptor (ER) status is positive (silence means unknown)" \
        in words
    assert "Recommended: endocrine therapy" in words
    every = text_of(page(site, "guideline/bcbm/GOAL-2.html"))
    assert "every patient (no condition)" in every


def test_recommendation_page_sources_pitfalls_and_links(site: Site) -> None:
    her2_2 = text_of(page(site, "guideline/bcbm/HER2-2.html"))
    assert "REF-4 : unresolved citation REF-4" in her2_2
    her2_1 = text_of(page(site, "guideline/bcbm/HER2-1.html"))
    assert "Management of Stage 4 Breast Cancer Related Bleeding Breast Wound" in her2_1
    assert "Curation note: Cited by the trastuzumab statements (HER2-1, HER2-3)" in her2_1
    bma_1 = page(site, "guideline/bcbm/BMA-1.html")
    pitfalls = bma_1[bma_1.index("Related pitfalls"):bma_1.index("Related statements")]
    assert 'related statement: <a href="AVOID-1.html">AVOID-1</a>' in pitfalls
    related = bma_1[bma_1.index("Related statements"):]
    assert "qualified by: <a" in related and "summarised by: <a" in related
    sum_1 = text_of(page(site, "guideline/bcbm/SUM-1.html"))
    assert "summarises: BMA-1" in sum_1 and "summarises: RT-2" in sum_1


def test_recommendation_page_doses(site: Site) -> None:
    words = text_of(page(site, "guideline/bcbm/HER2-3.html"))
    assert "4 mg/kg (per kg body weight) intravenous SNOMED CT 47625008 Intravenous route " \
           "(qualifier value) 4 mg/kg, intravenous, over 90 min, once" in words
    assert "6 mg/kg, intravenous, every 3 wk" in words
    denosumab = text_of(page(site, "guideline/bcbm/BMA-2.html"))
    assert "120 mg subcutaneous SNOMED CT 34206005 Subcutaneous 120 mg, subcutaneous, every 4 wk" \
        in denosumab


def test_recommendation_page_embeds_its_rdf(site: Site) -> None:
    content = page(site, "guideline/bcbm/AVOID-4.html")
    block = re.search(r'<script type="application/ld\+json">\n(.*?)\n</script>', content, re.S)[1]
    path = site.root / "embedded.jsonld"
    path.write_text(block)
    try:
        graph = parse_rdf_file(path)
    finally:
        path.unlink()
    assert isomorphic(graph, site.rdf_files["guideline/bcbm/AVOID-4.jsonld"])
    assert (BCBM["AVOID-4"], GKG.hasEvidenceSource, BCBM["REF-4"]) in graph
    assert (BCBM["REF-4"], RDF.type, GKG.UnresolvedCitation) in graph
    assert (BCBM["AVOID-4"], GKG.forbidsAction, GKG.InvasiveDentalProcedure) in graph


def test_ontology_page_has_an_anchor_for_every_term(site: Site) -> None:
    # The core's terms and those the domains and guideline vocabularies add to its
    # namespace: every gkg: hash IRI resolves on the one page.
    content = page(site, "ontology.html")
    anchors = set(re.findall(r'id="([^"]+)"', content))
    documented = [g for g in site.graphs if g.kind in ("core", "domain", "vocabulary")]
    assert {g.name for g in documented} >= {"ontology", "domain-oncology",
                                            "guideline-bcbm-vocabulary"}
    assert all(g.doc_page == "ontology.html" for g in documented)
    terms = {str(s).split("#", 1)[1] for g in documented for s in g.graph.subjects()
             if str(s).startswith(BASE + "ontology#")}
    assert len(terms) > 200
    assert {"Intervention", "Denosumab", "SpecialistBreastNurseSupport"} <= terms
    assert terms - anchors == set()
    # Every link to an ontology term, from any page, reaches an anchor.
    for name in sorted(p for p in site.files if p.endswith(".html")):
        for fragment in re.findall(r'href="(?:\.\./)*ontology\.html#([^"]+)"', page(site, name)):
            assert fragment in anchors, (name, fragment)


def test_patient_data_page_from_facts_and_shapes(site: Site) -> None:
    content = page(site, "patient-data.html")
    row = content[content.index('<tr id="her2-status">'):]
    row = row[:row.index("</tr>")]
    used = re.findall(r'href="guideline/bcbm/([^"]+)\.html"', row)
    assert used == ["AVOID-2", "HER2-1", "HER2-2", "HER2-3", "HRP-1", "HRP-2", "HRP-3", "ORTH-3",
                    "SUM-1", "SYS-1", "TN-1", "TN-2"]
    assert "Receptor status" in row and "silence means unknown" in row
    weight = content[content.index('<tr id="body-weight">'):]
    assert "kilogram (kg)" in weight[:weight.index("</tr>")]
    assert any(g.name.startswith("shapes-patient") for g in site.graphs)
    assert "(Violation)" in weight[:weight.index("</tr>")]


# ---------------------------------------------------------------------------------------
# Dataset description, redirects, CodeSystem, wheel
# ---------------------------------------------------------------------------------------


def test_void_and_dcat_describe_every_file(site: Site) -> None:
    void = parse_rdf_file(site.root / "void.ttl")
    dataset = URIRef(BASE + "void#dataset")
    assert (dataset, VOID.sparqlEndpoint, URIRef(BASE + "sparql")) in void
    assert (dataset, DCTERMS.license, URIRef("https://www.apache.org/licenses/LICENSE-2.0")) \
        in void
    assert void.value(dataset, DCTERMS.modified) is not None
    assert void.value(dataset, DCAT.version) == Literal("0.1.0")
    assert void.value(dataset, DCTERMS.publisher) is not None
    for graph in site.graphs:
        subset = URIRef(f"{BASE}void#{graph.name}")
        assert int(void.value(subset, VOID.triples)) == len(graph.graph)
        distributions = set(void.objects(subset, DCAT.distribution))
        expected = {graph.file(v, f.extension) for v in (graph.version, "latest")
                    for f in RDF_FORMATS}
        expected |= {f"{graph.folder}/{v}/{name}" for v in (graph.version, "latest")
                     for name in graph.raw_files}
        assert len(distributions) == len(expected)
        for distribution in distributions:
            url = str(void.value(distribution, DCAT.downloadURL))
            path = url[len(BASE):]
            assert path in expected
            assert void.value(distribution, DCAT.mediaType) is not None
            assert int(void.value(distribution, DCAT.byteSize)) == (site.root / path).stat().st_size
    index = page(site, "index.html")
    embedded = json.loads(re.search(r'<script type="application/ld\+json">\n(.*?)\n</script>',
                                    index, re.S)[1])
    assert any(node["@id"] == BASE + "void#dataset" for node in embedded["@graph"])


def test_htaccess_has_303_rules_for_every_media_type(site: Site) -> None:
    rules = page(site, ".htaccess")
    assert "RewriteEngine on" in rules
    for pattern in (r"text/turtle", r"application/ld\+json", r"application/rdf\+xml",
                    r"application/n-triples"):
        assert f"RewriteCond %{{HTTP_ACCEPT}} {pattern}" in rules
    assert "RewriteRule ^([^/.]+)$" not in rules  # no catch-all at the root
    assert "RewriteRule ^guideline/bcbm/([^/.]+)$ /guideline/bcbm/$1.ttl [R=303,L]" in rules
    assert "RewriteRule ^ontology$ /ontology.html [R=303,L]" in rules
    for target in re.findall(r"RewriteRule \S+ /(\S+) \[R=303,L\]", rules):
        if "$1" in target:
            continue
        assert (site.root / target).is_file(), target


def test_htaccess_for_a_w3id_entry_points_at_the_site(site: Site) -> None:
    from guidelinekg.publishing import htaccess

    rules = htaccess(site.routes, "https://example.org/guidelinekg/")
    assert "RewriteRule ^ontology$ https://example.org/guidelinekg/ontology.html [R=303,L]" \
        in rules
    assert "RewriteRule ^sparql$ https://example.org/guidelinekg/sparql [R=307,L]" in rules
    assert "RewriteCond %{REQUEST_FILENAME} -f" not in rules


def test_codesystem_published_as_json_and_rdf(site: Site) -> None:
    graph = next(g for g in site.graphs if g.name.startswith("codesystem-"))
    json_file = site.root / f"{graph.folder}/{graph.version}/{graph.stem}.json"
    assert json_file.read_bytes() == CODESYSTEM.read_bytes()
    resource = json.loads(CODESYSTEM.read_text())

    def codes(concepts: list) -> list[str]:
        return [c["code"] for c in concepts] + [code for c in concepts
                                                 for code in codes(c.get("concept", []))]

    rdf = parse_rdf_file(site.root / graph.file(graph.version, "ttl"))
    notations = {str(n) for c in rdf.subjects(RDF.type, SKOS.Concept)
                 for n in rdf.objects(c, SKOS.notation)}
    assert notations == set(codes(resource["concept"]))
    assert site.routes[graph.folder].documents["application/fhir+json"].endswith(".json")


def test_wheel_ships_templates_static_files_and_context(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                             "--no-build-isolation", "-w", str(tmp_path), "-q"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    [wheel] = tmp_path.glob("guidelinekg-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"guidelinekg/site_context.jsonld", "guidelinekg/static/style.css",
                "guidelinekg/static/query.js", "guidelinekg/static/favicon.svg"}
    expected |= {f"guidelinekg/templates/{p.name}"
                 for p in (ROOT / "src/guidelinekg/templates").glob("*.html")}
    assert expected - names == set()


TRICKY_GRAPH = """
@prefix ex: <http://example.org/> .
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
ex:s ex:text "line one\\nline \\"two\\"\\ttab \\\\ back" , "chapeau"@fr , "2.50"^^xsd:decimal ,
        "007"^^xsd:integer , "true"^^xsd:boolean , "x"^^ex:custom , "" ;
    ex:list ( ex:a [ ex:p 1 ] ( "nested" ) ) , () ;
    ex:shared _:shared , [ ex:q _:shared ] ;
    ex:cycle _:c1 ;
    ex:odd <http://example.org/with%20space?and=query#frag> ;
    <http://example.org/2nd-predicate> ex:o .
_:shared ex:r "shared" .
_:c1 ex:next _:c2 . _:c2 ex:next _:c1 .
[ ex:loose "unreferenced blank subject" ] .
ex:s sh:property [ sh:path ex:a ] , [ sh:path ex:a ] .
"""


@pytest.mark.parametrize("extension", ["ttl", "jsonld", "rdf", "nt"])
def test_writers_round_trip_tricky_graphs(extension: str, tmp_path: Path) -> None:
    from guidelinekg.publishing import all_prefixes, write_rdf
    from guidelinekg.rdf_output import Prefixes, graph_of, stable_triples

    source = Graph().parse(data=TRICKY_GRAPH, format="turtle")
    triples = stable_triples(source)
    data = write_rdf(extension, triples, Prefixes(all_prefixes()))
    path = tmp_path / f"tricky.{extension}"
    path.write_bytes(data)
    back = parse_rdf_file(path)
    assert isomorphic(back, graph_of(triples))
    assert isomorphic(back, source)
    # Parsing again and relabelling gives the same bytes: labels follow content only.
    assert write_rdf(extension, stable_triples(back), Prefixes(all_prefixes())) == data


def test_each_chosen_reading_is_shown_on_its_statement_page(site: Site) -> None:
    # Issue 10: every reading the seed leaves open carries its curation note, published.
    for key, words in (("AVOID-2", "Read as HR-positive, HER2-negative disease."),
                       ("AVOID-5", "is read by dates"),
                       ("AVOID-6", "is read as: local therapy is flagged unless"),
                       ("RT-4", "Not checked as a care gap."),
                       ("ORTH-2", "Not checked as a care gap."),
                       ("ORTH-3", "read as all of them together"),
                       ("RT-2", "Read as radiotherapy for bone lesions"),
                       ("RT-1", "\"Uncomplicated bone metastases\" is read as"),
                       ("RT-1", "makes the multi-fraction schemes accepted doses"),
                       ("RT-3", "is read by dates"),
                       ("BMA-3", "monthly"),
                       ("BMA-6", "a dose covers its dosing interval"),
                       ("OLIGO-1", "is read as a precondition on the local ablative therapy")):
        text = text_of(page(site, f"guideline/bcbm/{key}.html"))
        notes = [line for line in text.split("Curation note: ")[1:]]
        assert any(words in note for note in notes), (key, notes)


def test_a_precondition_check_is_shown_with_its_statement(site: Site) -> None:
    # OLIGO-1: "may be offered after multidisciplinary discussion".
    text = text_of(page(site, "guideline/bcbm/OLIGO-1.html"))
    assert "Precondition: local ablative therapy after multidisciplinary discussion" in text
    assert "local ablative therapy with no multidisciplinary discussion before it" in text


# ---------------------------------------------------------------------------------------
# Pages for readers (issue 15): the source by its title, codes with names, a 404 page, and
# no notes about the project's own files
# ---------------------------------------------------------------------------------------


def test_publish_prints_no_notes_about_the_projects_own_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], site: Site) -> None:
    assert site.notes == []
    assert main(["publish", "--out", str(tmp_path / "site")]) == 0
    assert "note:" not in capsys.readouterr().err


def test_a_library_file_without_a_version_is_still_a_note(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from guidelinekg.resources import LIBRARY_VARIABLE

    folder = tmp_path / "guidelines" / "mine"
    folder.mkdir(parents=True)
    (folder / "mine.ttl").write_text(
        "@prefix owl: <http://www.w3.org/2002/07/owl#> .\n"
        f"<{BASE}guideline/mine> a owl:Ontology .\n", encoding="utf-8")
    monkeypatch.setenv(LIBRARY_VARIABLE, str(tmp_path))
    notes: list[str] = []
    collect_graphs(shapes_files=[], codesystem_file=tmp_path / "absent.json", notes=notes)
    versions = [note for note in notes if "owl:versionInfo" in note]
    assert versions == ["guideline-mine: no owl:versionInfo; published as version 0.1.0"]


def test_curated_from_names_the_source_by_its_title(site: Site) -> None:
    title = "Treatment for Stage 4 Breast Cancer with Bone Metastasis"
    source = f"{title} (Dr.Oracle Medical Advisory Board) source file 000_98d52ddb3bbd7ff4.txt"
    assert f"Curated from {source}" in text_of(page(site, "index.html"))
    statement = page(site, "guideline/bcbm/BMA-2.html")
    assert f"Curated from line 26 of {source}" in text_of(statement)
    assert f"<cite>{title}</cite>" in statement


def test_codes_are_shown_with_the_names_the_data_gives_them(site: Site) -> None:
    for key, code, name in (("BMA-2", "RxNorm 993449", "Denosumab"),
                            ("BMA-2", "RxNorm 1046399", "Xgeva"),
                            ("BMA-2", "SNOMED CT 34206005", "Subcutaneous"),
                            ("BMA-3", "RxNorm 77655", "Zoledronic acid")):
        assert f'<code>{code}</code> <span class="code-display">{name}</span>' in \
            page(site, f"guideline/bcbm/{key}.html"), code
    ontology = page(site, "ontology.html")
    assert '<code>RxNorm 72965</code> <span class="code-display">Letrozole</span>' in ontology
    # A term's statements: gkg:rxnormCode "993449" with its name.
    assert '<li>993449 <span class="code-display">Denosumab</span></li>' in ontology
    # Every code the pages show has a name in the repository's data (none is left bare).
    bare = {code for name in site.files if name.endswith(".html")
            for code in re.findall(r'<span class="coded"><code>([^<]+)</code></span>',
                                   page(site, name))}
    assert bare == set()


def test_the_site_has_a_404_page_and_the_htaccess_points_at_it(site: Site) -> None:
    not_found = page(site, "404.html")
    assert "<h1>Not found</h1>" in not_found and DISCLAIMER_START in not_found
    # Served at any path, so its links start at the root.
    assert '<link rel="stylesheet" href="/static/style.css">' in not_found
    assert '<a href="/index.html">' in not_found
    assert "ErrorDocument 404 /404.html" in page(site, ".htaccess").splitlines()
    from guidelinekg.publishing import htaccess

    assert "ErrorDocument" not in htaccess(site.routes, "https://example.org/guidelinekg/")
