"""Coverage of the curation spec: does the graph hold every statement and reference, exactly?

Each guideline has its own spec: two tab-separated files in its folder,
``guidelines/<id>/statements.tsv`` and ``references.tsv``, compared with that guideline's
content alone (statement keys are per guideline; two guidelines may both have a key ``S-1``):

- statements: key, seed_line, section, kind (``action+dose``), modality, references
  (``REF-1,REF-2``), statement (the verbatim text) and reading;
- references: key, seed_line, type, title, publisher, year, note; a row without a title is
  a citation the guideline does not list, to be modelled as ``gkg:UnresolvedCitation``.

Every statement key must be the skos:notation of exactly one gkg:Recommendation whose
verbatim text equals the spec's text character for character, with the same sources,
modality, kinds, section and source line; every reference must be reproduced with its
title, publisher, year and type, or be unresolved when the spec lists none.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import Graph, URIRef
from rdflib.namespace import DCTERMS, RDF, SKOS
from rdflib.term import Node

from guidelinekg.loading import InputError, merge_graphs, parse_rdf_file
from guidelinekg.namespaces import GKG
from guidelinekg.resources import Module, modules

STATEMENT_COLUMNS = ("key", "seed_line", "section", "kind", "modality", "references",
                     "statement")
REFERENCE_COLUMNS = ("key", "seed_line", "type", "title", "publisher", "year")


@dataclass(frozen=True)
class CoverageProblem:
    """One difference between the spec and the graph."""

    key: str  # statement or reference key
    field: str  # what differs: missing, duplicate, text, sources, modality, ...
    expected: str
    found: str

    def describe(self) -> str:
        if self.field == "missing":
            return f"{self.key}: in the spec but not in the graph"
        if self.field == "extra":
            return f"{self.key}: in the graph but not in the spec"
        if self.field == "duplicate":
            return f"{self.key}: {self.found}"
        return f"{self.key}: {self.field} differs: spec {self.expected!r}, graph {self.found!r}"


@dataclass
class CoverageReport:
    statements_path: Path
    references_path: Path
    guideline: str = ""
    statement_keys: list[str] = field(default_factory=list)
    reference_keys: list[str] = field(default_factory=list)
    statement_problems: list[CoverageProblem] = field(default_factory=list)
    reference_problems: list[CoverageProblem] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)  # reference keys left unresolved

    @property
    def statements_covered(self) -> int:
        failing = {p.key for p in self.statement_problems}
        return sum(1 for key in self.statement_keys if key not in failing)

    @property
    def references_reproduced(self) -> int:
        failing = {p.key for p in self.reference_problems}
        return sum(1 for key in self.reference_keys if key not in failing)

    @property
    def problems(self) -> list[CoverageProblem]:
        return self.statement_problems + self.reference_problems

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {
            "guideline": self.guideline,
            "statements": str(self.statements_path),
            "references": str(self.references_path),
            "statements_total": len(self.statement_keys),
            "statements_covered": self.statements_covered,
            "references_total": len(self.reference_keys),
            "references_reproduced": self.references_reproduced,
            "unresolved": list(self.unresolved),
            "problems": [vars(p) | {"description": p.describe()} for p in self.problems],
        }

    def text_lines(self, mark: Callable[[bool], str], where: Callable[[Path], str]) -> list[str]:
        """The report in words, with the check's PASS / FAIL marks and paths."""
        name = f"{self.guideline}: " if self.guideline else ""
        lines = [f"Coverage ({name}{where(self.statements_path)}, "
                 f"{where(self.references_path)})"]
        total = len(self.statement_keys)
        text = "statements covered, text verbatim" if not self.statement_problems \
            else "statements covered"
        lines.append(f"  {mark(not self.statement_problems)}  {self.statements_covered}/{total} "
                     f"{text}")
        lines.extend(f"        {p.describe()}" for p in self.statement_problems)
        unresolved = f" ({', '.join(self.unresolved)} unresolved)" if self.unresolved else ""
        lines.append(f"  {mark(not self.reference_problems)}  "
                     f"{self.references_reproduced}/{len(self.reference_keys)} "
                     f"references reproduced{unresolved}")
        lines.extend(f"        {p.describe()}" for p in self.reference_problems)
        return lines


def read_tsv(path: Path, required: Iterable[str]) -> list[dict[str, str]]:
    """The rows of a tab-separated file with a header line; InputError names what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(path, f"cannot read the spec file ({error})") from None
    # No quoting: the spec's texts contain quotes that are part of the verbatim text.
    reader = csv.DictReader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE)
    missing = [name for name in required if name not in (reader.fieldnames or [])]
    if missing:
        raise InputError(path, "missing column(s) " + ", ".join(missing))
    rows = []
    for number, row in enumerate(reader, start=2):
        if None in row or any(row[name] is None for name in required):
            raise InputError(path, "wrong number of tab-separated fields", line=number)
        rows.append({name: value for name, value in row.items() if name is not None})
    return rows


def _strings(graph: Graph, subject: Node, predicate: URIRef) -> list[str]:
    return sorted(str(value) for value in graph.objects(subject, predicate))


def _notations(graph: Graph, subjects: Iterable[Node]) -> list[str]:
    return sorted({str(n) for subject in subjects for n in graph.objects(subject, SKOS.notation)})


def _joined(values: Iterable[str]) -> str:
    return ", ".join(sorted(values)) or "none"


def _by_key(graph: Graph, *classes: URIRef) -> dict[str, list[Node]]:
    """Instances of the classes by their skos:notation (a list: a key may be reused)."""
    found: dict[str, set[Node]] = {}
    for cls in classes:
        for subject in graph.subjects(RDF.type, cls):
            for notation in graph.objects(subject, SKOS.notation):
                found.setdefault(str(notation), set()).add(subject)
    # By their text: the order is only seen through a single subject or a message that
    # sorts the names again.
    return {key: sorted(subjects, key=str) for key, subjects in found.items()}


def check_statements(graph: Graph, rows: list[dict[str, str]]) -> list[CoverageProblem]:
    problems: list[CoverageProblem] = []
    recommendations = _by_key(graph, GKG.Recommendation)
    spec_keys = [row["key"] for row in rows]
    for key in sorted({k for k in spec_keys if spec_keys.count(k) > 1}):
        problems.append(CoverageProblem(key, "duplicate", "", "listed twice in the spec"))
    for row in rows:
        key = row["key"]
        subjects = recommendations.get(key, [])
        if not subjects:
            problems.append(CoverageProblem(key, "missing", key, ""))
            continue
        if len(subjects) > 1:
            names = ", ".join(sorted(str(s) for s in subjects))
            problems.append(CoverageProblem(key, "duplicate", "",
                                            f"key of {len(subjects)} statements ({names})"))
            continue
        subject = subjects[0]

        def compare(name: str, expected: str, found: str, subject_key: str = key) -> None:
            if expected != found:
                problems.append(CoverageProblem(subject_key, name, expected, found))

        texts = _strings(graph, subject, GKG.verbatimText)
        compare("text", row["statement"], texts[0] if len(texts) == 1 else " | ".join(texts))
        sources = _notations(graph, graph.objects(subject, GKG.hasEvidenceSource))
        expected_sources = [part.strip() for part in row["references"].split(",") if part.strip()]
        compare("sources", _joined(expected_sources), _joined(sources))
        modalities = _notations(graph, graph.objects(subject, GKG.modality))
        compare("modality", row["modality"], _joined(modalities))
        kinds = _notations(graph, graph.objects(subject, GKG.statementKind))
        expected_kinds = [part.strip() for part in row["kind"].split("+") if part.strip()]
        compare("kinds", _joined(expected_kinds), _joined(kinds))
        sections = sorted({str(title) for section in graph.objects(subject, GKG.inSection)
                           for title in graph.objects(section, DCTERMS.title)})
        compare("section", row["section"], _joined(sections))
        compare("source line", row["seed_line"],
                _joined(_strings(graph, subject, GKG.sourceLine)))
    for key in sorted(set(recommendations) - set(spec_keys)):
        problems.append(CoverageProblem(key, "extra", "", key))
    return problems


def check_references(graph: Graph, rows: list[dict[str, str]],
                     cited: Iterable[str] = ()) -> tuple[list[CoverageProblem], list[str]]:
    """Problems with the references, and the keys that are (rightly) unresolved."""
    problems: list[CoverageProblem] = []
    unresolved: list[str] = []
    sources = _by_key(graph, GKG.EvidenceSource, GKG.UnresolvedCitation)
    spec_keys = [row["key"] for row in rows]
    for row in rows:
        key = row["key"]
        subjects = sources.get(key, [])
        if not subjects:
            problems.append(CoverageProblem(key, "missing", key, ""))
            continue
        if len(subjects) > 1:
            problems.append(CoverageProblem(key, "duplicate", "",
                                            f"key of {len(subjects)} sources"))
            continue
        subject = subjects[0]
        is_unresolved = (subject, RDF.type, GKG.UnresolvedCitation) in graph
        if not row["title"]:
            # The guideline does not list this source: it must stay unresolved, with nothing
            # about it invented.
            if not is_unresolved:
                problems.append(CoverageProblem(key, "unresolved", "gkg:UnresolvedCitation",
                                                "a resolved source"))
            invented = [name for name in ("sourceTitle", "sourcePublisher", "publicationYear")
                        if _strings(graph, subject, GKG[name])]
            if invented:
                problems.append(CoverageProblem(key, "invented details", "none",
                                                ", ".join(invented)))
            if is_unresolved and not invented:
                unresolved.append(key)
            continue
        if is_unresolved:
            problems.append(CoverageProblem(key, "unresolved", "a listed source",
                                            "gkg:UnresolvedCitation"))
        for column, name in (("title", "sourceTitle"), ("publisher", "sourcePublisher"),
                             ("year", "publicationYear"), ("type", "sourceType"),
                             ("seed_line", "sourceLine")):
            found = _joined(_strings(graph, subject, GKG[name]))
            if row[column] != found:
                problems.append(CoverageProblem(key, column, row[column], found))
    for key in sorted(set(sources) - set(spec_keys)):
        problems.append(CoverageProblem(key, "extra", "", key))
    for key in sorted(set(cited) - set(spec_keys)):
        problems.append(CoverageProblem(key, "cited but not in the reference spec", key, ""))
    return problems, unresolved


def check_coverage(graph: Graph, statements: Path, references: Path,
                   guideline: str = "") -> CoverageReport:
    """Compare one guideline's content graph with its spec."""
    statements, references = Path(statements), Path(references)
    statement_rows = read_tsv(statements, STATEMENT_COLUMNS)
    reference_rows = read_tsv(references, REFERENCE_COLUMNS)
    cited = {part.strip() for row in statement_rows for part in row["references"].split(",")
             if part.strip()}
    report = CoverageReport(statements, references, guideline)
    report.statement_keys = [row["key"] for row in statement_rows]
    report.reference_keys = [row["key"] for row in reference_rows]
    report.statement_problems = check_statements(graph, statement_rows)
    report.reference_problems, report.unresolved = check_references(graph, reference_rows,
                                                                    cited)
    return report


def check_guideline_coverage(module: Module, content: Sequence[Path] = (),
                             statements: Path | None = None,
                             references: Path | None = None) -> CoverageReport:
    """One guideline's content (its own file, or the given files instead) against its
    spec (the copies in its folder, or the given files instead). Only this guideline's
    statements are in the graph, with the shared vocabulary (modality and kind notations)."""
    own = [module.content_file] if module.content_file is not None else []
    shared = [path for other in modules() if other.kind != "guideline"
              for path in other.ontology_files()]
    files = [*shared, *module.vocabulary_files(), *(list(content) or own)]
    graph = merge_graphs(parse_rdf_file(Path(path)) for path in files)
    return check_coverage(graph, statements or module.statements_file,
                          references or module.references_file, module.name)
