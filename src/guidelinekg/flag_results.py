"""Flags and gaps of a derivation, assembled from the rows of their queries: each
contraindicated or possibly contraindicated record item (derive/contraindicated-actions), with
what to confirm, and each care gap (derive/care-gaps), with what the record lacks. The
queries decide; this module only words and groups their rows."""

from __future__ import annotations

from collections import defaultdict

from guidelinekg.basis import TRUE, Basis
from guidelinekg.results import CareGap, Contraindication, StatementInfo


def contraindications(rows: list[dict], statements: dict[str, StatementInfo],
                      basis: Basis, missing: dict[tuple[str, str], list[dict[str, str]]]
                      ) -> dict[str, list[Contraindication]]:
    results: dict[str, list[Contraindication]] = defaultdict(list)
    for row, item_facts in _flagged_items(rows):
        info = statements[str(row["recommendation"])]
        # The statement, or its precondition check: the node whose criteria decide the flag.
        pair = (str(row["patient"]), str(row["flag"]))
        status = str(row["status"])
        to_confirm = (item_facts or missing.get(pair, [])
                      if status == "possibly-contraindicated" else [])
        because = basis.lines(pair, TRUE) if status == "contraindicated" else [
            *basis.lines(pair, TRUE),
            "the action it forbids (or sets a precondition on) is in the record (given, "
            "ongoing or planned); "
            "confirm: " + ", ".join(d["label"] for d in to_confirm)]
        results[str(row["patient"])].append(Contraindication(
            key=info.key, record_item=str(row["recordItem"]), text=info.text,
            sources=list(info.sources), because=because, modality=info.modality,
            status=status, to_confirm=[d["fact"] for d in to_confirm],
            to_confirm_details=to_confirm, recommendation=info.iri,
        ))
    for found in results.values():
        # Confirmed contraindications first, then the possible ones; statement order within.
        found.sort(key=lambda c: (c.status != "contraindicated",
                                  statements[c.recommendation].order, c.record_item))
    return results


def _flagged_items(rows: list[dict]) -> list[tuple[dict, list[dict[str, str]]]]:
    """Each flagged item once, with the facts about the item itself to confirm: those of a
    criterion the flag requires that are undetermined for it (one row each), when the flag
    holds through other items."""
    found: dict[tuple[str, ...], tuple[dict, dict[str, dict[str, str]]]] = {}
    for row in rows:
        key = tuple(str(row[name]) for name in
                    ("patient", "recommendation", "flag", "recordItem", "status"))
        unsure = found.setdefault(key, (row, {}))[1]
        if row.get("unsureFactKey") is not None:
            unsure.setdefault(str(row["unsureFactKey"]), {
                "fact": str(row["unsureFactKey"]), "label": str(row["unsureFactLabel"]),
                "reason": str(row["unsureReason"])})
    return [(row, sorted(unsure.values(), key=lambda d: d["fact"]))
            for row, unsure in found.values()]


def care_gaps_of(rows: list[dict], statements: dict[str, StatementInfo],
                 labels: dict[str, str], basis: Basis) -> dict[str, list[CareGap]]:
    results: dict[str, list[CareGap]] = defaultdict(list)
    for row in rows:
        info = statements[str(row["recommendation"])]
        pair = (str(row["patient"]), info.iri)
        because = basis.lines(pair, TRUE)
        because.append(_missing_action(row, labels))
        results[str(row["patient"])].append(CareGap(
            key=info.key, text=info.text, because=because, action=str(row["action"]),
            sources=list(info.sources), recommendation=info.iri,
        ))
    return results


def _missing_action(row: dict, labels: dict[str, str]) -> str:
    """What the record lacks for a care gap: the action, and when the statement orders it
    after another item or past a finding, that order."""
    action = str(row["action"])
    named = labels.get(action, action)
    after = sorted(labels.get(cls, cls) for cls in str(row.get("afterClasses") or "").split())
    if row.get("findingDate") is not None:
        finding = str(row.get("findingLabel") or "finding")
        return (f"no {named} under way on or after the latest {finding} "
                f"({row['findingDate']}) in the record (given, ongoing or planned)")
    if after:
        return f"no {named} after {' or '.join(after)} in the record (given, ongoing or planned)"
    if row.get("judgedBy") is not None:
        uncounted = str(row.get("uncountedItems") or "").split()
        return (f"no {named} in the record that counts (given, ongoing or planned, and true "
                f"for fact {row['judgedBy']}, item by item)"
                + (f"; in the record but not counted (fact {row['judgedBy']} false or "
                   f"unknown): {', '.join(sorted(uncounted))}" if uncounted else ""))
    return f"no {named} in the record (given, ongoing or planned)"
