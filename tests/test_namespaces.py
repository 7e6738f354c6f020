"""guidelinekg.namespaces: the closed namespaces name only core terms, a misspelt term
raises, CURIEs follow the project's prefixes (a guideline added through GUIDELINEKG_LIBRARY
included), and numbers and booleans have one canonical form."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from rdflib import BNode, Literal, Namespace, URIRef

from guidelinekg.graph_reading import number_text
from guidelinekg.loading import PREFIXES, merge_graphs, parse_rdf_file
from guidelinekg.namespaces import (
    CODE,
    GKG,
    canonical_literal,
    curie,
    decimal_text,
    expand_curie,
)
from guidelinekg.resources import LIBRARY_VARIABLE, modules

if TYPE_CHECKING:
    from rdflib.namespace import DefinedNamespace as _DefinedNamespace

# Plain namespaces: pytest's collection probes module attributes, and rdflib's own XSD and
# RDF warn about every name they do not define.
XSD = Namespace(PREFIXES["xsd"])
RDF_TYPE = URIRef("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")

LIBRARY = Path(__file__).resolve().parent / "fixtures" / "library"
EXAMPLE = "https://w3id.org/guidelinekg/guideline/example/"
BCBM = "https://w3id.org/guidelinekg/guideline/bcbm/"


def _terms(namespace: type[_DefinedNamespace]) -> set[URIRef]:
    names = [*namespace.__annotations__, *namespace._extras]
    return {namespace[name] for name in names}


def _subjects(kind: str) -> set[URIRef]:
    files = [path for module in modules() if module.kind == kind
             for path in module.ontology_files()]
    return {s for s in merge_graphs(parse_rdf_file(p) for p in files).subjects()
            if isinstance(s, URIRef)}


@pytest.mark.parametrize("namespace", [GKG, CODE], ids=["GKG", "CODE"])
def test_every_term_of_a_closed_namespace_is_declared_by_the_core(
        namespace: type[_DefinedNamespace]) -> None:
    core = _subjects("core")
    terms = _terms(namespace)
    assert len(terms) > 5
    assert sorted(terms - core) == []


def test_the_closed_namespaces_name_no_domain_or_guideline_term() -> None:
    core = _subjects("core")
    elsewhere = (_subjects("domain") | _subjects("guideline")) - core
    assert sorted((_terms(GKG) | _terms(CODE)) & elsewhere) == []


def test_a_misspelt_term_raises() -> None:
    assert GKG.Recommendation == URIRef(PREFIXES["gkg"] + "Recommendation")
    assert GKG["count"] == URIRef(PREFIXES["gkg"] + "count")
    assert CODE["mass-per-body-mass"] == URIRef(PREFIXES["code"] + "mass-per-body-mass")
    with pytest.raises(AttributeError):
        _ = GKG.Recomendation
    with pytest.raises(AttributeError):
        _ = CODE["dose-matched"]
    with pytest.raises(AttributeError):
        _ = GKG + "recommendaton"
    # A domain's term is data, not a name the code may use.
    with pytest.raises(AttributeError):
        _ = GKG.Denosumab


def test_curie_of_project_and_foreign_terms() -> None:
    assert curie(GKG.Patient) == "gkg:Patient"
    assert curie(CODE["mass-per-body-mass"]) == "code:mass-per-body-mass"
    assert curie(URIRef(PREFIXES["fact"] + "age")) == "fact:age"
    assert curie(URIRef(BCBM + "BMA-1")) == "bcbm:BMA-1"
    assert curie(XSD.date) == "xsd:date"
    assert curie(RDF_TYPE) == "rdf:type"
    assert curie(URIRef("https://w3id.org/guidelinekg/shapes/patient#UnknownTerm")) == \
        "psh:UnknownTerm"
    assert curie(URIRef("http://example.org/patients/p1")) == "<http://example.org/patients/p1>"
    # A namespace itself, or a local name with a slash, is no prefixed name.
    assert curie(URIRef(PREFIXES["gkg"])) == f"<{PREFIXES['gkg']}>"
    assert curie(URIRef(PREFIXES["code"] + "a/b")) == f"<{PREFIXES['code']}a/b>"
    assert curie(URIRef("http://example.org/x"), {"ex": "http://example.org/"}) == "ex:x"


def test_curie_of_blank_nodes_literals_and_none() -> None:
    assert curie(None) == ""
    assert curie(BNode("b1")) == "_:b1"
    assert curie(Literal(3)) == "3"
    assert curie(Literal("120.0", datatype=XSD.decimal)) == "120.0"
    assert curie(Literal("text", lang="en")) == '"text"@en'
    assert curie(Literal('say "no"')) == '"say \\"no\\""'
    assert curie(Literal("2026-01-05", datatype=XSD.date)) == '"2026-01-05"^^xsd:date'


def test_a_guideline_added_through_the_library_variable_gets_its_curies(
        monkeypatch: pytest.MonkeyPatch) -> None:
    statement = URIRef(EXAMPLE + "GOAL-1")
    monkeypatch.delenv(LIBRARY_VARIABLE, raising=False)
    assert curie(statement) == f"<{statement}>"
    with pytest.raises(ValueError):
        expand_curie("example:GOAL-1")
    monkeypatch.setenv(LIBRARY_VARIABLE, str(LIBRARY))
    assert curie(statement) == "example:GOAL-1"
    assert expand_curie("example:GOAL-1") == statement
    assert curie(URIRef(BCBM + "GOAL-1")) == "bcbm:GOAL-1"
    monkeypatch.delenv(LIBRARY_VARIABLE)
    assert curie(statement) == f"<{statement}>"


def test_expand_curie() -> None:
    assert expand_curie("gkg:Patient") == GKG.Patient
    assert expand_curie("bcbm:BMA-1") == URIRef(BCBM + "BMA-1")
    for name in ("nope:x", "no-colon", "http://example.org/x"):
        with pytest.raises(ValueError):
            expand_curie(name)


@pytest.mark.parametrize(("lexical", "datatype", "canonical"), [
    ("120.0", XSD.decimal, "120"),
    ("0.470", XSD.decimal, "0.47"),
    ("+068.50", XSD.decimal, "68.5"),
    ("-0.0", XSD.decimal, "0"),
    ("007", XSD.integer, "7"),
    ("+5", XSD.nonNegativeInteger, "5"),
    ("1", XSD.boolean, "true"),
    ("0", XSD.boolean, "false"),
    ("true", XSD.boolean, "true"),
    ("12.5kg", XSD.decimal, "12.5kg"),  # ill-typed: shown as written
    ("2026-01-05", XSD.date, "2026-01-05"),
])
def test_canonical_literal(lexical: str, datatype: URIRef, canonical: str) -> None:
    assert canonical_literal(Literal(lexical, datatype=datatype)) == Literal(
        canonical, datatype=datatype)


def test_other_terms_keep_their_form() -> None:
    for term in (Literal("mg"), Literal("120.0"), Literal("x", lang="en"), GKG.Patient,
                 BNode("b")):
        assert canonical_literal(term) == term


def test_readers_see_the_canonical_form() -> None:
    assert decimal_text(Decimal("120.0")) == "120"
    assert decimal_text(Decimal("1E+2")) == "100"
    assert decimal_text(Decimal("0.0500")) == "0.05"
    assert number_text(Literal("120.0", datatype=XSD.decimal)) == "120"
    assert number_text(Literal("0.470", datatype=XSD.decimal)) == "0.47"
    assert number_text(Literal("4", datatype=XSD.integer)) == "4"
