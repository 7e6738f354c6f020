"""Dose checks: each dose of an order or administration against the guideline's regimens.

The query ``derive/dose-comparisons`` returns, for every dose of an item the guideline gives
a regimen for, each regimen step side by side with it in comparable units; this module
decides matches / deviates / cannot-check from those numbers, with the reasons.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from rdflib import URIRef

from guidelinekg.loading import PREFIXES
from guidelinekg.results import DoseCheck, Vocabulary, number, plain
from guidelinekg.sparql import SparqlEngine, load_query

CODE = PREFIXES["code"]


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


def _describe_found(row: dict, vocabulary: Vocabulary) -> str:
    if row.get("dose") is None:
        return "no dosage recorded"
    parts = []
    if row.get("amount") is not None:
        parts.append(f"{plain(number(row['amount']))} {row.get('unit', '(no unit)')}")
    else:
        parts.append("no amount")
    if row.get("route") is not None:
        parts.append(vocabulary.value(row["route"]))
    if row.get("count") is not None and number(row["count"]) == 1:
        parts.append("once")
    if row.get("period") is not None:
        parts.append(f"every {plain(number(row['period']))} {row.get('periodUnit', '')}")
    if row.get("fractions") is not None:
        parts.append(f"in {plain(number(row['fractions']))} fraction(s)")
    return " ".join(parts)


def _within(found: Decimal, low: Decimal, high: Decimal, tolerance: Decimal) -> bool:
    return low * (1 - tolerance) <= found <= high * (1 + tolerance)


def _judge_step(row: dict, vocabulary: Vocabulary) -> _StepVerdict:
    """Compare one dose of one record item with one regimen step."""
    key = str(row["key"])
    expected = f"{row['regimenLabel']} (step {row['stepOrder']}: {row['stepText']})"
    if row.get("dose") is None:
        return _StepVerdict("cannot-check", key, expected, ["the order has no dosage"])
    amount, unit = number(row.get("amount")), row.get("unit")
    if amount is None or unit is None:
        missing_part = "amount" if amount is None else "unit"
        return _StepVerdict("cannot-check", key, expected, [f"the dose has no {missing_part}"])
    if row.get("amountInReference") is None:
        return _StepVerdict("cannot-check", key, expected,
                            [f"unit {unit} is not a dose unit known to the guideline"])
    found_amount = number(row["amountInReference"])
    step_amount, step_unit = number(row["stepAmount"]), str(row["stepUnit"])
    per_kg = step_unit == "mg/kg"
    dimension = str(row.get("unitDimension"))
    reasons: list[str] = []
    notes: list[str] = []
    found_text = f"{plain(amount)} {unit}"
    weight = number(row.get("weightKg"))
    if per_kg:
        if weight is None:
            return _StepVerdict("cannot-check", key, expected, [
                "the regimen is per kg of body weight and no body weight in kg is recorded"])
        if dimension == CODE + "mass-per-body-mass":
            found_per_kg = found_amount
        elif dimension == CODE + "mass":
            found_per_kg = found_amount / weight
            found_text = (f"{plain(amount)} {unit} for {plain(weight)} kg = "
                          f"{found_per_kg.quantize(Decimal('0.01'))} mg/kg")
            notes.append(found_text)
        else:
            return _StepVerdict("deviates", key, expected,
                                [f"unit {unit} is not a mass or mass per body weight"])
        amount_ok = _within(found_per_kg, step_amount, step_amount, AMOUNT_TOLERANCE)
    else:
        expected_dimension = {"mg": "mass", "Gy": "absorbed-dose"}.get(step_unit)
        if dimension != CODE + str(expected_dimension):
            return _StepVerdict("deviates", key, expected, [
                f"unit {unit} is of another dimension than the regimen's {step_unit}"])
        amount_ok = _within(found_amount, step_amount, step_amount, AMOUNT_TOLERANCE)
    if not amount_ok:
        reasons.append(f"amount {found_text} differs from {plain(step_amount)} {step_unit}")
    step_route, route = row.get("stepRoute"), row.get("route")
    route_unknown = False
    if step_route is not None:
        if route is None:
            route_unknown = True
        elif route != step_route:
            reasons.append(f"route {vocabulary.value(route)} differs from "
                           f"{vocabulary.value(step_route)}")
    schedule_unknown = False
    step_count = number(row.get("stepCount"))
    count = number(row.get("count"))
    if row.get("stepPeriodDays") is not None:
        period_days = number(row.get("periodDays"))
        if count == 1:
            reasons.append("a single dose where the regimen repeats")
        elif period_days is None:
            schedule_unknown = True
        else:
            frequency = number(row.get("frequency")) or Decimal(1)
            interval = period_days / frequency
            if not _within(interval, number(row["stepPeriodDays"]),
                           number(row["stepPeriodMaxDays"]), PERIOD_TOLERANCE):
                reasons.append(f"interval {plain(interval.quantize(Decimal('0.1')))} days "
                               f"differs from {plain(number(row['stepPeriodDays']))}"
                               f"-{plain(number(row['stepPeriodMaxDays']))} days")
    elif (step_count == 1 and row.get("stepFractions") is None
          and row.get("periodDays") is not None and count != 1):
        # A loading (single) dose: a repeating order is not the loading dose.
        reasons.append("a repeating order where the regimen gives a single loading dose")
    step_fractions = number(row.get("stepFractions"))
    if step_fractions is not None:
        fractions = number(row.get("fractions"))
        if fractions is None:
            schedule_unknown = True
        elif fractions != step_fractions:
            reasons.append(f"{plain(fractions)} fractions where the regimen gives "
                           f"{plain(step_fractions)}")
    if reasons:
        return _StepVerdict("deviates", key, expected, reasons)
    condition = number(row.get("conditionTruth"))
    if row.get("conditionTruth") is not None and condition != 1:
        status = "deviates" if condition == 0 else "cannot-check"
        return _StepVerdict(status, key, expected, [
            "the regimen's condition " + ("does not hold" if condition == 0 else
                                          "cannot be decided") + f" ({key})"])
    if route_unknown or schedule_unknown:
        missing = [name for name, flag in (("route", route_unknown),
                                           ("schedule", schedule_unknown)) if flag]
        return _StepVerdict("cannot-check", key, expected,
                            ["the dose has no " + " and no ".join(missing)])
    return _StepVerdict("matches", key, expected, notes)


def dose_checks(engine: SparqlEngine, vocabulary: Vocabulary, patient: URIRef | None
                ) -> dict[str, list[DoseCheck]]:
    """One check per dose of each item; the best verdict over the regimens' steps."""
    rows_by_dose: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    bindings = {"patient": patient} if patient is not None else {}
    for row in engine.select(load_query("derive/dose-comparisons").text, bindings):
        dose = str(row.get("dose")) if row.get("dose") is not None else ""
        rows_by_dose[(str(row["patient"]), str(row["item"]), dose)].append(row)
    results: dict[str, list[DoseCheck]] = defaultdict(list)
    rank = {"matches": 0, "cannot-check": 1, "deviates": 2}
    for (patient_iri, item, _dose), rows in sorted(rows_by_dose.items()):
        verdicts = [_judge_step(row, vocabulary) for row in rows]
        best = min(rank[v.status] for v in verdicts)
        chosen = [v for v in verdicts if rank[v.status] == best]
        found = _describe_found(rows[0], vocabulary)
        if best == 0:
            verdict = chosen[0]
            because = [f"matches {verdict.expected}", *verdict.reasons]
            expected = verdict.expected
        else:
            expected = "; or ".join(sorted({v.expected for v in verdicts}))
            because = sorted({f"{v.expected}: {r}" for v in chosen for r in v.reasons})
        keys = sorted({v.key for v in chosen}, key=_key_order)
        results[patient_iri].append(DoseCheck(
            key=keys[0], record_item=item, status=chosen[0].status if best == 0 else
            {1: "cannot-check", 2: "deviates"}[best],
            expected=expected, found=found, because=because,
        ))
    return results


def _key_order(key: str) -> tuple[int, str]:
    # A summary statement is the last choice to name a dose check by.
    return (1 if key.startswith("SUM-") else 0, key)

