"""The FHIR import maps: what the importer does with each code-map role is data in the fhir/
folders of the domains and guidelines (roles.tsv, observation-values.tsv, score-bands.tsv,
body-site-rules.tsv, procedure-refinements.tsv, extensions.tsv), read generically.

The seed domain's maps say what the Python used to; every term they name is an ontology
term; a malformed map is refused with its file and line; and a domain added through
GUIDELINEKG_LIBRARY brings classes, sites, scores and words of its own without a line of
Python.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF

from guidelinekg.fhir_import import code_map, import_fhir_json, import_maps, read_import_maps
from guidelinekg.fhir_import.maps import (
    BODY_SITE,
    BUILT_IN_READINGS,
    PRIMARY_CANCER,
    REASON,
    SITE_CONDITION,
    VALUE,
)
from guidelinekg.loading import PREFIXES, merge_graphs, parse_rdf_file, vocabulary_files
from guidelinekg.resources import LIBRARY_VARIABLE, fhir_folders, resource_root

GKG = Namespace(PREFIXES["gkg"])
CODE = Namespace(PREFIXES["code"])
ONCOLOGY_FHIR = resource_root() / "domains" / "oncology" / "fhir"


@pytest.fixture(scope="module")
def vocabulary() -> Graph:
    return merge_graphs(parse_rdf_file(path) for path in vocabulary_files())


# ---------------------------------------------------------------------------------------
# The seed domain's maps
# ---------------------------------------------------------------------------------------


def test_the_oncology_folder_is_read() -> None:
    assert ONCOLOGY_FHIR in fhir_folders()
    maps = read_import_maps((ONCOLOGY_FHIR,))
    assert maps == import_maps()


def test_the_oncology_maps_say_what_the_importer_did() -> None:
    maps = import_maps()
    (primary,) = maps.primaries()
    assert (primary.name, primary.cls, primary.prop, primary.value_role) == (
        "primary-breast-cancer", GKG.PrimaryBreastCancer, GKG.stageGroup, "stage-value")
    (site,) = maps.of_reading(SITE_CONDITION)
    assert (site.name, site.cls, site.prop) == ("metastasis-site", GKG.MetastasisCondition,
                                                GKG.site)
    assert [role.prop for role in maps.of_reading(REASON)] == [GKG.purpose]
    bands = [(band.low, band.high, band.term)
             for band in maps.score_bands[GKG.BonePainAssessment]]
    assert bands == [(0, 0, CODE["pain-none"]), (1, 3, CODE["pain-mild"]),
                     (4, 6, CODE["pain-moderate"]), (7, 10, CODE["pain-severe"])]
    (refinement,) = maps.refinements
    assert (refinement.cls, refinement.becomes, refinement.site) == (
        GKG.Radiotherapy, GKG.BoneRadiotherapy, CODE["site-bone"])
    (extension,) = maps.extensions
    assert (extension.prop, extension.domain) == (GKG.lineOfTherapy, GKG.SystemicCancerTherapy)
    kinds = {cls: value.kind for cls, value in maps.observation_values.items()}
    assert kinds[GKG.HER2Status] == "code-or-interpretation"
    assert kinds[GKG.BodyWeight] == "quantity"
    assert kinds[GKG.MetastaticLesionCount] == "integer"
    assert kinds[GKG.VisceralCrisisAssessment] == "boolean"


def test_every_code_map_role_is_declared_and_every_declared_role_is_used() -> None:
    maps = import_maps()
    used = {row.role for row in code_map().rows}
    assert used <= set(maps.roles)
    # A declared role that no code-map row uses reads nothing: a slip in one of the files.
    declared = set(maps.roles) - set(BUILT_IN_READINGS)
    assert sorted(declared - used) == []


def test_every_term_the_maps_name_is_an_ontology_term(vocabulary: Graph) -> None:
    maps = import_maps()
    terms: set[URIRef] = set()
    for role in maps.roles.values():
        terms |= {term for term in (role.cls, role.prop) if term is not None}
    terms |= set(maps.observation_values) | set(maps.body_site_rules)
    terms |= {band.term for bands in maps.score_bands.values() for band in bands}
    for refinement in maps.refinements:
        terms |= {refinement.cls, refinement.becomes, refinement.site}
    for extension in maps.extensions:
        terms |= {extension.prop, extension.domain}
    assert sorted(str(t) for t in terms if (t, RDF.type, None) not in vocabulary) == []
    dimensions = {value.unit_dimension for value in maps.observation_values.values()
                  if value.unit_dimension}
    known = {str(d) for d in vocabulary.objects(None, GKG.dimension)}
    assert sorted(str(CODE[d]) for d in dimensions if str(CODE[d]) not in known) == []


def test_value_roles_read_values() -> None:
    maps = import_maps()
    for value in maps.observation_values.values():
        if value.value_role:
            assert maps.roles[value.value_role].reads == VALUE
    for refinement in maps.refinements:
        assert maps.roles[refinement.body_site_role].reads == BODY_SITE
        assert maps.roles[refinement.reason_role].reads == SITE_CONDITION
    assert all(role.words for role in maps.of_reading(PRIMARY_CANCER))


# ---------------------------------------------------------------------------------------
# Malformed maps are refused with their file and line
# ---------------------------------------------------------------------------------------

ROLES_HEADER = "role\treads\tclass\tproperty\tvalue_role\tlabel\tplural\twords\tnote\n"


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize(("name", "text", "message"), [
    ("roles.tsv", ROLES_HEADER + "x\tguess\t\t\t\t\t\t\t\n", "line 3: unknown reading 'guess'"),
    ("roles.tsv", ROLES_HEADER + "x\tsite-condition\tgkg:A\t\t\tx\txs\t\t\n",
     "a role that reads site-condition needs property"),
    ("roles.tsv", ROLES_HEADER + "x\tgenetic-variant\t\t\tnone\t\t\t\t\n",
     "reads its values with 'none', which is not a role that reads value"),
    ("roles.tsv", ROLES_HEADER + "condition\tvalue\t\t\t\t\t\t\t\n",
     "the role 'condition' is declared twice"),
    ("roles.tsv", "role\treads\n", "header must be role reads class"),
    ("roles.tsv", ROLES_HEADER + "x\tvalue\n", "line 3 has 2 columns, not 9"),
    ("observation-values.tsv",
     "class\tvalue\tvalue_role\tunit_dimension\tlabel\tnote\ngkg:A\tcode\t\t\t\t\n",
     "a code value needs value_role"),
    ("observation-values.tsv",
     "class\tvalue\tvalue_role\tunit_dimension\tlabel\tnote\ngkg:A\tcolour\t\t\t\t\n",
     "value must be one of"),
    ("score-bands.tsv", "class\tlow\thigh\tmaps_to\tnote\ngkg:A\t0\t2\tcode:a\t\n"
     "gkg:A\t4\t5\tcode:b\t\n", "overlap or leave a gap"),
    ("extensions.tsv", "url\tvalue\tproperty\tdomain\tnote\nhttp://x\tvalueString\tgkg:p\tgkg:A\t\n",
     "a value of valuePositiveInt"),
    ("procedure-refinements.tsv",
     "class\tbecomes\tsite\tbody_site_role\treason_role\tlabel\tnote\n"
     "gkg:A\tgkg:B\tcode:s\tnone\tnone\tx\t\n",
     "body_site_role must be a role that reads body-site"),
    ("medication-names.tsv", "name\tclass\tsource\tnote\n-\tgkg:A\tx\t\n",
     "a medicine name needs a name (with a letter or digit) and its source"),
    ("medication-names.tsv", "name\tclass\tsource\tnote\nToy\t\tx\t\n", "class is required"),
])
def test_a_malformed_map_is_refused_with_its_file_and_line(tmp_path: Path, name: str, text: str,
                                                          message: str) -> None:
    folder = write(tmp_path / "fhir", name, "# a comment line\n" + text)
    with pytest.raises(ValueError) as error:
        read_import_maps((folder,))
    assert message in str(error.value)
    if "line" in message or "header" in message:
        assert str(folder / name) in str(error.value)


def test_a_code_map_row_of_an_undeclared_role_is_refused(tmp_path: Path) -> None:
    from guidelinekg.fhir_import import read_code_map

    path = write(tmp_path, "code-map.tsv",
                 "system\tcode\tdisplay\tmaps_to\trole\tsource\tnote\n"
                 "http://loinc.org\t1-1\tx\tgkg:A\tcolour\tsome source\t\n") / "code-map.tsv"
    with pytest.raises(ValueError, match="line 2: unknown role 'colour'"):
        read_code_map(path, import_maps().roles)


# ---------------------------------------------------------------------------------------
# A domain of the library brings its own readings, without Python
# ---------------------------------------------------------------------------------------

TOY_ONTOLOGY = """\
@prefix gkg: <https://w3id.org/guidelinekg/ontology#> .
@prefix code: <https://w3id.org/guidelinekg/code/> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
gkg:ToyLesion a owl:Class ; rdfs:subClassOf gkg:Condition ; rdfs:label "toy lesion"@en .
gkg:toySite a owl:ObjectProperty ; rdfs:label "toy site"@en .
gkg:ToyScoreAssessment a owl:Class ; rdfs:subClassOf gkg:Observation .
code:toy-site-knee a skos:Concept ; skos:prefLabel "knee"@en .
code:toy-low a skos:Concept ; skos:prefLabel "low toy score"@en .
code:toy-high a skos:Concept ; skos:prefLabel "high toy score"@en .
"""
TOY_SYSTEM = "http://example.org/toy"


@pytest.fixture
def toy_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    domain = tmp_path / "domains" / "toy"
    write(domain, "toy.ttl", TOY_ONTOLOGY)
    fhir = domain / "fhir"
    write(fhir, "code-map.tsv", "system\tcode\tdisplay\tmaps_to\trole\tsource\tnote\n"
          f"{TOY_SYSTEM}\tknee-lesion\tKnee lesion\tcode:toy-site-knee\ttoy-site\ttest\t\n"
          f"{TOY_SYSTEM}\tscore\tToy score\tgkg:ToyScoreAssessment\tobservation\ttest\t\n")
    write(fhir, "roles.tsv", ROLES_HEADER +
          "toy-site\tsite-condition\tgkg:ToyLesion\tgkg:toySite\t\ttoy lesion\ttoy lesions\t\t\n")
    write(fhir, "observation-values.tsv",
          "class\tvalue\tvalue_role\tunit_dimension\tlabel\tnote\n"
          "gkg:ToyScoreAssessment\tscore\t\t\ttoy score\t\n")
    write(fhir, "score-bands.tsv", "class\tlow\thigh\tmaps_to\tnote\n"
          "gkg:ToyScoreAssessment\t0\t4\tcode:toy-low\t\n"
          "gkg:ToyScoreAssessment\t5\t9\tcode:toy-high\t\n")
    write(fhir, "body-site-rules.tsv", "class\twords\tignored\tnote\n"
          "gkg:ToyScoreAssessment\tknee\ta toy score is read only at the knee\t\n")
    monkeypatch.setenv(LIBRARY_VARIABLE, str(tmp_path))
    return tmp_path


def toy_bundle(*resources: dict) -> dict:
    patient = {"resourceType": "Patient", "id": "p", "birthDate": "1960-01-01"}
    entries = [patient, *resources]
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}", "resource": r}
                      for i, r in enumerate(entries)]}


def toy_score(value: int, site: str) -> dict:
    return {"resourceType": "Observation", "id": f"score-{value}", "status": "final",
            "subject": {"reference": "Patient/p"}, "effectiveDateTime": "2026-01-02",
            "code": {"coding": [{"system": TOY_SYSTEM, "code": "score"}]},
            "bodySite": {"text": site}, "valueInteger": value}


def test_a_library_domain_brings_its_own_site_condition_and_score(toy_library: Path) -> None:
    lesion = {"resourceType": "Condition", "id": "lesion", "subject": {"reference": "Patient/p"},
              "code": {"coding": [{"system": TOY_SYSTEM, "code": "knee-lesion"}]}}
    result = import_fhir_json(toy_bundle(lesion, toy_score(7, "left knee"),
                                         toy_score(12, "knee"), toy_score(3, "elbow")))
    graph = result.graph
    (item,) = graph.subjects(RDF.type, GKG.ToyLesion)
    assert graph.value(item, GKG.toySite) == CODE["toy-site-knee"]
    assert graph.value(item, GKG.present) == Literal(True)
    assert [line.detail for line in result.entries(outcome="imported")
            if line.resource_type == "Condition"] == [
        "gkg:ToyLesion, toySite code:toy-site-knee, present true"]
    scores = {str(graph.value(s, GKG.sourceResource)): graph.value(s, GKG.valueCode)
              for s in graph.subjects(RDF.type, GKG.ToyScoreAssessment)}
    assert scores == {"urn:uuid:00000000-0000-4000-8000-000000000002": CODE["toy-high"],
                      "urn:uuid:00000000-0000-4000-8000-000000000003": Literal(12)}
    text = result.report_text()
    assert "valueCode code:toy-high (score 7)" in text
    assert "toy score needs a whole-number score from 0 to 9; found valueInteger 12" in text
    assert "bodySite: ignored: a toy score is read only at the knee" in text


def test_without_a_library_the_toy_codes_are_unknown(toy_library: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LIBRARY_VARIABLE)
    result = import_fhir_json(toy_bundle(toy_score(7, "knee")))
    assert [line.detail for line in result.entries(outcome="ignored")] == [
        f"Observation code {TOY_SYSTEM} score is not in the code map"]


def test_the_maps_of_a_library_domain_are_checked_against_the_others(
        toy_library: Path) -> None:
    # The toy domain declares the seed domain's metastasis role otherwise: refused.
    roles = toy_library / "domains" / "toy" / "fhir" / "roles.tsv"
    roles.write_text(roles.read_text() + "metastasis-site\tsite-condition\tgkg:ToyLesion\t"
                     "gkg:toySite\t\tlesion\tlesions\t\t\n", encoding="utf-8")
    with pytest.raises(ValueError, match="the role 'metastasis-site' is declared twice"):
        import_maps()


# ---------------------------------------------------------------------------------------
# Names of medicines (medication-names.tsv and the ontology's labels)
# ---------------------------------------------------------------------------------------


def test_every_medicine_name_is_a_display_of_the_code_map_for_its_class() -> None:
    """A brand or ingredient name is data the project already holds: a display of a code
    the code map maps to that class (the source column names it)."""
    import re

    rows = code_map().in_role("medication")
    names = import_maps().medication_names
    assert {(name.name, name.cls) for name in names} >= {
        ("Xgeva", GKG.Denosumab), ("Prolia", GKG.Denosumab), ("Zometa", GKG.ZoledronicAcid),
        ("Herceptin", GKG.Trastuzumab), ("pamidronate", GKG.Bisphosphonate)}
    for name in names:
        word = re.compile(rf"(?<![^\W_]){re.escape(name.name)}(?![^\W_])", re.IGNORECASE)
        assert any(row.term == name.cls and word.search(row.display) for row in rows), name


def medication_statement(text: str, code: str | None = None) -> dict:
    concept: dict = {"text": text}
    if code is not None:
        concept["coding"] = [{"system": TOY_SYSTEM, "code": code}]
    return {"resourceType": "MedicationStatement", "id": "med", "status": "active",
            "subject": {"reference": "Patient/p"}, "medicationCodeableConcept": concept}


def test_a_library_medicine_is_named_by_its_alt_label_and_a_code_may_be_not_used(
        toy_library: Path) -> None:
    from guidelinekg.loading import InputError

    domain = toy_library / "domains" / "toy"
    (domain / "toy.ttl").write_text(TOY_ONTOLOGY + """\
gkg:ToyTablet a owl:Class ; rdfs:subClassOf gkg:MedicationTherapy ; rdfs:label "toytabine"@en ;
    skos:altLabel "Toymax"@en .
""", encoding="utf-8")
    code_map_file = domain / "fhir" / "code-map.tsv"
    code_map_file.write_text(code_map_file.read_text() +
                             f"{TOY_SYSTEM}\ttablet\tToytabine\tgkg:ToyTablet\tmedication\ttest\t\n"
                             f"{TOY_SYSTEM}\tdiary\tToy diary\t\tnot-used\ttest\t\n",
                             encoding="utf-8")
    with pytest.raises(InputError, match=r"is given as text only \('TOYMAX 5 mg'\), but its "
                                         r"text names Toymax \(toytabine, gkg:ToyTablet\)"):
        import_fhir_json(toy_bundle(medication_statement("TOYMAX 5 mg")), "toy.json")
    # A code the map knows as not used: ignored, whatever its text names.
    result = import_fhir_json(toy_bundle(medication_statement("Toymax diary", "diary")))
    assert [line.detail for line in result.entries(outcome="ignored")] == [
        f"medication {TOY_SYSTEM} diary is known, but no patient fact uses it"]


def test_a_medicine_name_of_a_class_without_medication_codes_is_refused(
        toy_library: Path) -> None:
    write(toy_library / "domains" / "toy" / "fhir", "medication-names.tsv",
          "name\tclass\tsource\tnote\nToyname\tgkg:ToyLesion\ttest\t\n")
    with pytest.raises(ValueError, match="'Toyname' names gkg:ToyLesion, to which the code "
                                         "map maps no medication code"):
        import_fhir_json(toy_bundle(medication_statement("Toyname")))
