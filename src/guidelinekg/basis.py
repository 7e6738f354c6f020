"""What each status rests on: the fact criteria under a statement, guideline population or
precondition check, with their truths for a patient and the fact values they read.

Three answers are joined here, each read once: the guideline's criteria under each node
(``derive/basis-criteria-labels``, read with the guideline), every patient's fact-criterion
truths (``derive/fact-criterion-truths``) and every patient's fact values
(``derive/fact-values``). One query joining the three repeated each fact value under every
statement that reads it (fifty thousand rows for 500 patients); the join costs little in
Python, where each (patient, statement) is looked up only when a result shows it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from rdflib.term import Node

from guidelinekg.results import Vocabulary, number

TRUE, FALSE = Decimal(1), Decimal(0)


@dataclass(frozen=True)
class BasisCriterion:
    """One fact criterion under a statement (or population, or check): what a line names.
    ``negated``: reached through an odd number of none-of groups, so that it is its being
    false that makes the statement apply (a pitfall flagged for "no good response")."""

    criterion: str
    label: str
    fact: str  # the fact's IRI
    fact_key: str  # its skos:notation
    negated: bool = False


def basis_criteria(rows: Iterable[dict], negations: dict[str, set[tuple[str, bool]]]
                   ) -> dict[str, list[BasisCriterion]]:
    """Statement (or guideline, or check) IRI -> its fact criteria, in the order of their
    IRIs, each once for each way it is reached (``negations``: :func:`criterion_polarities`;
    its first label and fact key in the query's order)."""
    found: dict[str, dict[tuple[str, bool], BasisCriterion]] = defaultdict(dict)
    for row in rows:
        node, criterion = str(row["recommendation"]), str(row["criterion"])
        for negated in sorted({n for c, n in negations.get(node, ()) if c == criterion}
                              or {False}):
            found[node].setdefault((criterion, negated), BasisCriterion(
                criterion=criterion, label=str(row["criterionLabel"]), fact=str(row["fact"]),
                fact_key=str(row["factKey"]), negated=negated))
    return {node: sorted(criteria.values(), key=lambda c: (c.criterion, c.negated))
            for node, criteria in found.items()}


def criterion_polarities(roots: Iterable[tuple[str, str]], members: dict[str, list[str]],
                         none_of: set[str]) -> dict[str, set[tuple[str, bool]]]:
    """Holder (statement, guideline, check) -> the (criterion, negated) pairs under its
    criteria root(s) (``roots``: (holder, root) pairs; ``members``: each group's members;
    ``none_of``: the none-of groups). The tree has no cycle (criteria_levels refuses one)."""
    found: dict[str, set[tuple[str, bool]]] = defaultdict(set)
    for holder, root in roots:
        pending = [(root, False)]
        while pending:
            node, negated = pending.pop()
            if node not in members:
                found[holder].add((node, negated))
                continue
            flipped = negated != (node in none_of)
            pending.extend((member, flipped) for member in members[node])
    return found


@dataclass
class _FactValues:
    """The values of one fact for one patient (by FactValue node) and what they came from."""

    values: dict[str, Node] = field(default_factory=dict)
    sources: set[str] = field(default_factory=set)


class Basis:
    """The fact criteria under each (patient, statement or guideline), with their truths:
    what a status rests on, as "because" lines and as the facts used."""

    def __init__(self, criteria: dict[str, list[BasisCriterion]], truth_rows: Iterable[dict],
                 value_rows: Iterable[dict], vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self.criteria = criteria
        # (patient, criterion) -> truth; the first row wins, as one result per pair is made.
        self.truths: dict[tuple[str, str], Decimal | None] = {}
        for row in truth_rows:
            self.truths.setdefault((str(row["patient"]), str(row["criterion"])),
                                   number(row["truth"]))
        self.values: dict[tuple[str, str], _FactValues] = defaultdict(_FactValues)
        for row in value_rows:
            entry = self.values[(str(row["patient"]), str(row["fact"]))]
            if row.get("value") is not None:
                entry.values[str(row["factValue"])] = row["value"]
            for source_key in ("recordItem", "source"):
                if row.get(source_key) is not None:
                    entry.sources.add(str(row[source_key]))

    def _chosen(self, pair: tuple[str, str], truths: tuple[Decimal, ...]
                ) -> list[BasisCriterion]:
        # A criterion without a truth for the patient (None) is in no chosen set; under a
        # none-of group its truth counts the other way (false there is what holds).
        return [c for c in self.criteria.get(pair[1], ())
                if _counted(self.truths.get((pair[0], c.criterion)), c.negated) in truths]

    def _line(self, patient: str, criterion: BasisCriterion) -> str:
        truth = self.truths[(patient, criterion.criterion)]
        holds = {TRUE: "yes", FALSE: "no"}.get(truth, "unknown") if truth is not None \
            else "unknown"
        facts = self.values.get((patient, criterion.fact)) or _FactValues()
        values = sorted({self.vocabulary.value(v) for v in facts.values.values()})
        shown = ", ".join(values) if values else "not recorded"
        line = f"{criterion.label}: {holds} ({criterion.fact_key} = {shown}"
        if facts.sources:
            line += "; from " + ", ".join(sorted(facts.sources))
        return line + ")"

    def lines(self, pair: tuple[str, str], *truths: Decimal) -> list[str]:
        return [self._line(pair[0], c) for c in self._chosen(pair, truths)]

    def facts(self, pair: tuple[str, str], *truths: Decimal) -> list[str]:
        return sorted({c.fact_key for c in self._chosen(pair, truths)})


def _counted(truth: Decimal | None, negated: bool) -> Decimal | None:
    """A criterion's truth as it counts for its statement: flipped under a none-of group."""
    if truth is None or not negated:
        return truth
    return {TRUE: FALSE, FALSE: TRUE}.get(truth, truth)
