"""`guidelinekg synth`: a synthetic cohort made from template records, varied within the
vocabulary, reproducible by its seed, with the share of invalid records asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rdflib import Graph, URIRef
from rdflib.namespace import RDF

from guidelinekg.loading import PREFIXES, parse_rdf_file
from guidelinekg.resources import examples_dir
from guidelinekg.synth import SynthOptions, synthesize, templates_from, write_ntriples
from guidelinekg.validation import validate_patients

PATIENT = URIRef(PREFIXES["gkg"] + "Patient")
TEMPLATE = examples_dir() / "patients" / "hr-positive-her2-negative-bone-only.ttl"


def _cohort(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "cohort.nt"
    result = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "synth", *args,
                             "-o", str(out)], capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr
    return out


def test_the_same_seed_gives_the_same_cohort_byte_for_byte(tmp_path: Path) -> None:
    first = _cohort(tmp_path / "a", "--patients", "30", "--seed", "7", "--from", str(TEMPLATE))
    second = _cohort(tmp_path / "b", "--patients", "30", "--seed", "7", "--from", str(TEMPLATE))
    other = _cohort(tmp_path / "c", "--patients", "30", "--seed", "8", "--from", str(TEMPLATE))
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_patients_are_distinct_and_keep_the_template_shape(tmp_path: Path) -> None:
    graph = parse_rdf_file(_cohort(tmp_path, "--patients", "25", "--from", str(TEMPLATE),
                                   "--invalid", "0", "--incomplete", "0"))
    patients = set(graph.subjects(RDF.type, PATIENT))
    assert len(patients) == 25
    template = parse_rdf_file(TEMPLATE)
    # Every patient has the template's items, none shared with another patient.
    subject = URIRef(PREFIXES["gkg"] + "subject")
    items = {p: set(graph.subjects(subject, p)) for p in patients}
    assert {len(found) for found in items.values()} == {
        len(set(template.subjects(subject, None)))}
    assert len(set().union(*items.values())) == sum(len(found) for found in items.values())
    validation = validate_patients(graph)
    assert not validation.has_violations


def test_the_invalid_share_is_refused_by_the_shapes() -> None:
    template = templates_from(parse_rdf_file(TEMPLATE))
    options = SynthOptions(patients=200, seed=3, invalid_rate=0.25, incomplete_rate=0.0)
    graph = Graph()
    for triples in synthesize(options, template):
        for triple in triples:
            graph.add(triple)
    refused = validate_patients(graph).patients_with("Violation") - {None}
    # 25 % asked for: the shapes refuse those and only those (binomial, seed fixed).
    assert 30 <= len(refused) <= 70
    assert len(set(graph.subjects(RDF.type, PATIENT))) == 200


def test_values_vary_within_their_value_sets() -> None:
    template = templates_from(parse_rdf_file(TEMPLATE))
    options = SynthOptions(patients=60, seed=5, invalid_rate=0.0, incomplete_rate=0.0,
                           recode_rate=1.0)
    value_code = URIRef(PREFIXES["gkg"] + "valueCode")
    codes = {o for triples in synthesize(options, template)
             for _, p, o in triples if p == value_code}
    in_template = set(parse_rdf_file(TEMPLATE).objects(None, value_code))
    assert len(codes) > len(in_template)
    assert all(str(code).startswith(PREFIXES["code"]) for code in codes)


def test_write_ntriples_streams_patient_by_patient(tmp_path: Path) -> None:
    template = templates_from(parse_rdf_file(TEMPLATE))
    path = tmp_path / "out.nt"
    with path.open("w", encoding="utf-8") as out:
        count = write_ntriples(synthesize(SynthOptions(patients=5), template), out)
    assert count == 5
    assert len(set(parse_rdf_file(path).subjects(RDF.type, PATIENT))) == 5
