"""Dose checks: each dose of an order or administration against the guideline's regimens.

The query ``derive/dose-comparisons`` returns, for every dose of an item the guideline gives
a regimen for, each regimen step side by side with it in comparable units; this module
decides matches / deviates / cannot-check from those numbers, with the reasons.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from rdflib.term import Node

from guidelinekg.namespaces import CODE, decimal_text
from guidelinekg.results import DoseCheck, RecommendationOutcome, Vocabulary, number

# Relative tolerance when comparing an ordered amount or interval with the regimen:
# rounding of a weight-based dose to the vial, and a calendar month against 4 weeks.
AMOUNT_TOLERANCE = Decimal("0.05")
PERIOD_TOLERANCE = Decimal("0.10")


@dataclass
class _StepVerdict:
    status: str  # matches, deviates, cannot-check
    key: str
    expected: str
    reasons: list[str]


def _shown(term: Node) -> str:
    """A recorded number as plain text; an ill-typed literal (a record derived with
    ``allow_invalid``) as the record wrote it."""
    value = number(term)
    return decimal_text(value) if value is not None else str(term)


def _required_number(row: dict, name: str) -> Decimal:
    """A number the query always binds for a row (a mandatory part of a regimen step, or
    one it computes with arithmetic); its absence is a bug in the query or the guideline."""
    value = number(row.get(name))
    if value is None:
        raise ValueError(f"derive/dose-comparisons gave no number for ?{name} "
                         f"(got {row.get(name)!r}) for regimen step {row.get('step')}")
    return value


def _describe_found(row: dict, vocabulary: Vocabulary) -> str:
    if row.get("dose") is None:
        return "no dosage recorded"
    parts = []
    if row.get("amount") is not None:
        parts.append(f"{_shown(row['amount'])} {row.get('unit', '(no unit)')}")
    else:
        parts.append("no amount")
    if row.get("route") is not None:
        parts.append(vocabulary.value(row["route"]))
    if row.get("count") is not None and number(row["count"]) == 1:
        parts.append("once")
    if row.get("period") is not None:
        upto = f"-{_shown(row['periodMax'])}" if row.get("periodMax") is not None else ""
        # FHIR's frequency per period: "2 times every 4 wk" is a dose every 2 weeks.
        times = number(row.get("frequency"))
        if times is not None and times != 1:
            parts.append(f"{_shown(row['frequency'])} times")
        parts.append(f"every {_shown(row['period'])}{upto} {row.get('periodUnit', '')}")
    if row.get("fractions") is not None:
        parts.append(f"in {_shown(row['fractions'])} fraction(s)")
    return " ".join(parts)


def _days(value: Decimal) -> str:
    return decimal_text(value.quantize(Decimal("0.1")))


def _within(found: Decimal, low: Decimal, high: Decimal, tolerance: Decimal) -> bool:
    return low * (1 - tolerance) <= found <= high * (1 + tolerance)


@dataclass
class _Comparison:
    """What one dose was compared with, part by part: differences, parts the regimen states
    that the order does not record, parts that matched, and notes."""

    differences: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _amount(row: dict, comparison: _Comparison) -> _StepVerdict | None:
    """Compare the amount (per kg through the body weight); a verdict when it cannot be."""
    key, expected = str(row["key"]), _expected(row)
    amount, unit = number(row.get("amount")), row.get("unit")
    if amount is None or unit is None:
        missing_part = "amount" if amount is None else "unit"
        return _StepVerdict("cannot-check", key, expected, [f"the dose has no {missing_part}"])
    if row.get("amountInReference") is None:
        return _StepVerdict("cannot-check", key, expected,
                            [f"unit {unit} is not a dose unit known to the guideline"])
    found_amount = _required_number(row, "amountInReference")
    step_amount, step_unit = _required_number(row, "stepAmount"), str(row["stepUnit"])
    # The units table says what the step's unit measures; its amount in the reference unit.
    step_dimension = row.get("stepUnitDimension")
    step_reference = number(row.get("stepAmountInReference"))
    if step_reference is None:
        return _StepVerdict("cannot-check", key, expected,
                            [f"the regimen's unit {step_unit} is not in the units table"])
    dimension = row.get("unitDimension")
    found_text = f"{decimal_text(amount)} {unit}"
    if step_dimension == CODE["mass-per-body-mass"]:
        weight = number(row.get("weightKg"))
        if dimension == CODE["mass-per-body-mass"]:
            found = found_amount  # per kg on both sides: no weight needed
        elif dimension == CODE.mass and weight is None:
            return _StepVerdict("cannot-check", key, expected, [
                "the regimen is per kg of body weight and no body weight in kg is recorded"])
        elif dimension == CODE.mass and weight is not None:
            found = found_amount / weight
            weighed = (f" (weighed {row['weightDate']})" if row.get("weightDate") is not None
                       else "")
            found_text = (f"{decimal_text(amount)} {unit} for {decimal_text(weight)} kg"
                          f"{weighed} = {found.quantize(Decimal('0.01'))} mg/kg")
            comparison.notes.append(found_text)
        else:
            return _StepVerdict("deviates", key, expected,
                                [f"unit {unit} is not a mass or mass per body weight"])
    else:
        if dimension != step_dimension:
            return _StepVerdict("deviates", key, expected, [
                f"unit {unit} is of another dimension than the regimen's {step_unit}"])
        found = found_amount
    if _within(found, step_reference, step_reference, AMOUNT_TOLERANCE):
        comparison.matched.append("dose")
    else:
        comparison.differences.append(
            f"amount {found_text} differs from {decimal_text(step_amount)} {step_unit}")
    return None


def _route(row: dict, vocabulary: Vocabulary, comparison: _Comparison) -> None:
    step_route, route = row.get("stepRoute"), row.get("route")
    if step_route is None:
        return
    if route is None:
        comparison.unchecked.append("route")
    elif route != step_route:
        comparison.differences.append(f"route {vocabulary.value(route)} differs from "
                                      f"{vocabulary.value(step_route)}")
    else:
        comparison.matched.append("route")


def _schedule(row: dict, comparison: _Comparison) -> None:
    step_count, count = number(row.get("stepCount")), number(row.get("count"))
    if row.get("stepPeriodDays") is not None:
        period_days = number(row.get("periodDays"))
        if count == 1:
            comparison.differences.append("a single dose where the regimen repeats")
        elif period_days is None:
            comparison.unchecked.append("interval")
        else:
            frequency = number(row.get("frequency")) or Decimal(1)
            interval = period_days / frequency
            # An order that allows a range of intervals (every 4 to 52 weeks) matches only
            # when every interval it allows does.
            longest = (number(row.get("periodMaxDays")) or period_days) / frequency
            low = _required_number(row, "stepPeriodDays")
            high = _required_number(row, "stepPeriodMaxDays")
            if _within(interval, low, high, PERIOD_TOLERANCE) and \
                    _within(longest, low, high, PERIOD_TOLERANCE):
                comparison.matched.append("interval")
            else:
                shown = _days(interval) if longest == interval else \
                    f"{_days(interval)}-{_days(longest)}"
                comparison.differences.append(
                    f"interval {shown} days differs from {decimal_text(low)}-{decimal_text(high)} "
                    "days")
    elif step_count == 1 and row.get("stepFractions") is None:
        if row.get("periodDays") is not None and count != 1:
            # A loading (single) dose: a repeating order is not the loading dose.
            comparison.differences.append(
                "a repeating order where the regimen gives a single loading dose")
        else:
            comparison.matched.append("a single dose")


def _fractions_and_infusion(row: dict, comparison: _Comparison) -> None:
    step_fractions = number(row.get("stepFractions"))
    if step_fractions is not None:
        fractions = number(row.get("fractions"))
        if fractions is None:
            comparison.unchecked.append("number of fractions")
        elif fractions != step_fractions:
            comparison.differences.append(f"{decimal_text(fractions)} fractions where the regimen "
                                          f"gives {decimal_text(step_fractions)}")
        else:
            comparison.matched.append("fractions")
    step_infusion = number(row.get("stepInfusionMinutes"))
    if step_infusion is not None:
        infusion = number(row.get("infusionMinutes"))
        stated = decimal_text(step_infusion.quantize(Decimal(1)))
        if infusion is None:
            comparison.unchecked.append("infusion duration")
        elif not _within(infusion, step_infusion, step_infusion, PERIOD_TOLERANCE):
            comparison.differences.append(
                f"infused over {decimal_text(infusion.quantize(Decimal(1)))} min where the regimen "
                f"gives {stated} min")
        else:
            comparison.matched.append("infusion duration")


def _expected(row: dict) -> str:
    return f"{row['regimenLabel']} (step {row['stepOrder']}: {row['stepText']})"


def _judge_step(row: dict, vocabulary: Vocabulary) -> _StepVerdict:
    """Compare one dose of one record item with one regimen step, part by part: every part
    the step states is either compared or named as not recorded."""
    key, expected = str(row["key"]), _expected(row)
    if row.get("dose") is None:
        return _StepVerdict("cannot-check", key, expected, ["the order has no dosage"])
    comparison = _Comparison()
    refused = _amount(row, comparison)
    if refused is not None:
        return refused
    _route(row, vocabulary, comparison)
    _schedule(row, comparison)
    _fractions_and_infusion(row, comparison)
    if comparison.differences:
        return _StepVerdict("deviates", key, expected, comparison.differences)
    condition = number(row.get("conditionTruth"))
    if row.get("conditionTruth") is not None and condition != 1:
        status = "deviates" if condition == 0 else "cannot-check"
        return _StepVerdict(status, key, expected, [
            "the regimen's condition " + ("does not hold" if condition == 0 else
                                          "cannot be decided") + f" ({key})"])
    if comparison.unchecked:
        # Never "matches" while a part the regimen states went unchecked.
        return _StepVerdict("cannot-check", key, expected, [
            f"matches in {_listed(comparison.matched)}; "
            f"{_listed(comparison.unchecked)} not recorded"])
    return _StepVerdict("matches", key, expected, comparison.notes)


def _listed(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts) or "nothing"
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _within_statement(verdict: _StepVerdict, outcome: RecommendationOutcome | None
                      ) -> _StepVerdict:
    """A regimen is the guideline's dose for a treatment, not an indication of it. While the
    regimen's statement is undetermined for the patient, a dose that follows it cannot be
    checked (the regimen may be no standard for them); when the statement does not apply
    (trastuzumab's regimen for a HER2-negative patient; today's facts, where the order may
    be older), the comparison stands and says so, so that a match never reads as an
    endorsement."""
    if outcome is None or outcome.status == "applies":
        return verdict
    key = verdict.key
    if outcome.status == "does-not-apply":
        return _StepVerdict(verdict.status, key, verdict.expected, [
            f"{key} does not apply to this patient: the dose is compared with its regimen, "
            "which is no recommendation for them", *verdict.reasons])
    missing = f" (missing: {', '.join(outcome.missing)})" if outcome.missing else ""
    undetermined = (f"whether {key} applies to this patient is undetermined{missing}: its "
                    "regimen is a standard only where it applies")
    if verdict.status == "deviates":
        return _StepVerdict("deviates", key, verdict.expected, [*verdict.reasons, undetermined])
    return _StepVerdict("cannot-check", key, verdict.expected, [
        undetermined, f"compared with the regimen alone: {verdict.status}", *verdict.reasons])


def dose_checks(comparisons: list[dict], vocabulary: Vocabulary,
                outcomes: Mapping[tuple[str, str], RecommendationOutcome] | None = None
                ) -> dict[str, list[DoseCheck]]:
    """One check per dose of each item, from the rows of derive/dose-comparisons.rq; the best
    verdict over the regimens' steps. ``outcomes``: each statement's result by (patient IRI,
    statement IRI), which qualifies each comparison (:func:`_within_statement`)."""
    outcomes = outcomes or {}
    rows_by_dose: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for row in comparisons:
        dose = str(row.get("dose")) if row.get("dose") is not None else ""
        rows_by_dose[(str(row["patient"]), str(row["item"]), dose)].append(row)
    results: dict[str, list[DoseCheck]] = defaultdict(list)
    # patient -> each matching dose's check and the regimen steps it matches
    matched: dict[str, list[_MatchedDose]] = defaultdict(list)
    steps_of: dict[str, set[int]] = defaultdict(set)  # regimen -> its step orders
    rank = {"matches": 0, "cannot-check": 1, "deviates": 2}
    for (patient_iri, item, _dose), rows in sorted(rows_by_dose.items()):
        statuses = [outcomes.get((patient_iri, str(row["statement"]))) for row in rows]
        verdicts = [_within_statement(_judge_step(row, vocabulary), outcome)
                    for row, outcome in zip(rows, statuses, strict=True)]
        best = min(rank[v.status] for v in verdicts)
        chosen = [v for v in verdicts if rank[v.status] == best]
        # The check is named by a statement whose verdict was chosen, a summary statement
        # (one that repeats others) last; a match, by a statement that applies first.
        named_by, verdict, _outcome = min(
            ((row, v, outcome) for row, v, outcome in zip(rows, verdicts, statuses, strict=True)
             if rank[v.status] == best),
            key=lambda found: (best == 0 and _does_not_apply(found[2]),
                               _statement_order(found[0])))
        found = _describe_found(rows[0], vocabulary)
        if best == 0:
            because = [f"matches {verdict.expected}", *verdict.reasons]
            expected = verdict.expected
        else:
            expected = "; or ".join(sorted({v.expected for v in verdicts}))
            because = sorted({f"{v.expected}: {r}" for v in chosen for r in v.reasons})
        check = DoseCheck(
            key=str(named_by["key"]), record_item=item,
            status={0: "matches", 1: "cannot-check", 2: "deviates"}[best],
            expected=expected, found=found, because=because,
            recommendation=str(named_by["statement"]),
        )
        results[patient_iri].append(check)
        for row in rows:
            steps_of[str(row["regimen"])].add(int(row["stepOrder"]))
        if best == 0:
            matched[patient_iri].append((check, _item_start(rows), [
                _MatchedStep(str(row["regimen"]), str(row["regimenLabel"]), int(row["stepOrder"]),
                             v.status == "matches")
                for row, v in zip(rows, verdicts, strict=True)]))
    for patient_iri, doses in matched.items():
        results[patient_iri] = _regimen_sequences(results[patient_iri], doses, steps_of)
    return results


@dataclass(frozen=True)
class _MatchedStep:
    """A regimen step a dose was compared with, and whether it matched."""

    regimen: str
    label: str
    order: int
    matches: bool


# A matching dose: its check, the start of its order (None when undated), and the regimen
# steps it was compared with.
_MatchedDose = tuple[DoseCheck, date | None, list[_MatchedStep]]


def _item_start(rows: list[dict]) -> date | None:
    """The start of a dose's order (the earliest, should a record give two)."""
    starts = [row["itemStart"].toPython() for row in rows if row.get("itemStart") is not None]
    dates = [start for start in starts if isinstance(start, date)]
    return min(dates) if dates else None


def _regimen_sequences(checks: list[DoseCheck], doses: list[_MatchedDose],
                       steps_of: dict[str, set[int]]) -> list[DoseCheck]:
    """Each dose is compared with every step on its own, so an 8 mg/kg loading dose of the
    3-weekly schedule followed by 2 mg/kg weekly matched a step of each regimen, and is
    neither. A dose that matches only a regimen's first step (of several: the loading
    dose) deviates when the patient's maintenance doses of that drug that follow it all
    follow another regimen. (A switch from one schedule to the other after its own loading
    dose keeps a maintenance dose of the first, and is not flagged.) The maintenance doses
    that follow it are those of orders starting on or after its own order's start (or
    undated, which cannot be placed): a course of years before, adjuvant trastuzumab every
    3 weeks, does not make a mixed loading of today one regimen.

    A maintenance dose with no dose matching its regimen's loading dose on or before it
    still matches its step (the loading dose may be recorded elsewhere), and says so: the
    loading dose is to confirm."""
    revised: dict[int, DoseCheck] = {}
    for check, start, compared in doses:
        maintained = {step.regimen: step.label
                      for _other, other_start, other_steps in doses
                      if start is None or other_start is None or other_start >= start
                      for step in other_steps if step.matches and step.order > 1}
        found = [step for step in compared if step.matches]
        of_the_drug = {step.regimen for step in compared}  # the regimens for its class
        loading_only = all(step.order == 1 and len(steps_of[step.regimen]) > 1
                           for step in found)
        others = sorted({label for regimen, label in maintained.items()
                         if regimen in of_the_drug} - {step.label for step in found})
        if loading_only and others and not {step.regimen for step in found} & maintained.keys():
            expected = "; or ".join(others)
            revised[id(check)] = replace(check, status="deviates", expected=expected, because=[
                f"{check.because[0]}, but the maintenance doses follow {expected}: a loading "
                "dose of one regimen before the maintenance of another is neither regimen",
                *check.because[1:]])
            continue
        loaded = {step.regimen for _other, other_start, other_steps in doses
                  if start is None or other_start is None or other_start <= start
                  for step in other_steps if step.matches and step.order == 1}
        unloaded = sorted({step.label for step in found if step.regimen not in loaded})
        if found and all(step.order > 1 for step in found) and unloaded:
            revised[id(check)] = replace(check, because=[
                *check.because,
                f"no dose matching the loading dose of {' or '.join(unloaded)} is recorded on "
                "or before it: confirm that the loading dose was given"])
    return [revised.get(id(check), check) for check in checks]


def _does_not_apply(outcome: RecommendationOutcome | None) -> bool:
    return outcome is not None and outcome.status == "does-not-apply"


def _statement_order(row: dict) -> tuple[bool, str]:
    return (row.get("summary") is not None and bool(row["summary"].toPython()), str(row["key"]))

