"""What a Bundle says of itself that decides whether it can be read as the record: that it is
not the whole result (one page of a search, or a result the server cut short), which refuses
it, and the resources its entries delete (a request DELETE), which PatientImport checks
against the resources of the input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guidelinekg.fhir_identity import as_dict, as_list
from guidelinekg.fhir_import.datatypes import is_integer

# OperationOutcome issue types (FHIR R4 issue-type) that say a result is not whole.
INCOMPLETE_ISSUES = ("incomplete", "too-costly")
# Bundle.link relations (IANA link relations) to another page of the same search.
PAGE_LINKS = ("next", "prev", "previous")
ABSENT_READ = ("what it leaves out would be read as absent (a medicine not given, a finding "
               "not made), so the input is refused")


@dataclass(frozen=True)
class Deletion:
    """A Bundle entry whose request is DELETE: where it is, and the URL it deletes (None
    when the entry names none). ``reported``: the entry holds a resource and has a report
    line of its own."""

    source: str
    position: str
    full_url: str | None
    url: str | None
    reported: bool

    @property
    def conditional_type(self) -> str | None:
        """The resource type of a conditional delete (``Condition?code=...``), else None."""
        if self.url is None or "?" not in self.url:
            return None
        return self.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def incompleteness(bundle: dict[str, Any], entries: list[Any], name: str) -> str | None:
    """Why a Bundle is not the whole result it is part of, as the message that refuses it;
    None when it says nothing of the kind. A searchset is one page when it links to another
    page, or when its total is more than its entries that match (search.mode match, or no
    search.mode: an included resource is not counted in the total); any Bundle is cut short
    when an OperationOutcome in it (an entry, an entry's response.outcome, Bundle.issues)
    has an issue of type incomplete or too-costly."""
    kind = bundle.get("type")
    search = kind == "searchset"
    reasons = page_reasons(bundle, entries) if search else []
    reasons += outcome_reasons(bundle, entries)
    if not reasons:
        return None
    shown = kind if isinstance(kind, str) else "not given"
    if search:
        return (f"Bundle {name} (type searchset) is not the whole result of its search "
                f"({'; '.join(reasons)}): {ABSENT_READ}. It is one page of a search: fetch "
                "every page, or a Bundle of the patient's whole record")
    return (f"Bundle {name} (type {shown}) says it is not the whole result "
            f"({'; '.join(reasons)}): {ABSENT_READ}. Fetch the whole result, or a Bundle of "
            "the patient's whole record")


def page_reasons(bundle: dict[str, Any], entries: list[Any]) -> list[str]:
    reasons = []
    for link in as_list(bundle.get("link")):
        relation = as_dict(link).get("relation")
        if relation in PAGE_LINKS:
            reasons.append(f"link {relation} ({as_dict(link).get('url')})")
    total = bundle.get("total")
    matches = sum(1 for entry in entries
                  if as_dict(as_dict(entry).get("search")).get("mode") in (None, "match"))
    if is_integer(total) and total > matches:
        reasons.append(f"total {total}, but {matches} entr{'y' if matches == 1 else 'ies'} "
                       f"match")
    return reasons


def outcome_reasons(bundle: dict[str, Any], entries: list[Any]) -> list[str]:
    """Each issue of type incomplete or too-costly, named by where its OperationOutcome is."""
    outcomes: list[tuple[str, Any]] = [("Bundle.issues", bundle.get("issues"))]
    for index, entry in enumerate(entries):
        entry = as_dict(entry)
        outcomes += [(f"entry {index}", entry.get("resource")),
                     (f"entry {index} response.outcome",
                      as_dict(entry.get("response")).get("outcome"))]
    reasons = []
    for where, outcome in outcomes:
        outcome = as_dict(outcome)
        if outcome.get("resourceType") != "OperationOutcome":
            continue
        name = f"{where} OperationOutcome" + (
            f" {outcome['id']}" if isinstance(outcome.get("id"), str) else "")
        for issue in as_list(outcome.get("issue")):
            issue = as_dict(issue)
            if issue.get("code") in INCOMPLETE_ISSUES:
                text = issue.get("diagnostics") or as_dict(issue.get("details")).get("text")
                reasons.append(f"{name}: issue {issue['code']}"
                               + (f" ({text!r})" if isinstance(text, str) else ""))
    return reasons
