"""What a Bundle says of itself that decides whether it can be read as the record: that it is
not the whole result (one page of a search, a result the server cut short, a request of a
batch that failed), which refuses it, the resources its entries delete (a request DELETE),
which PatientImport checks against the resources of the input, and resources the server sent
with elements left out (tagged SUBSETTED), which refuse it too."""

from __future__ import annotations

import re
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
# The resource types the record is read from (the importer's handlers, Patient and
# Medication): a failed request for one of them leaves the record incomplete.
RECORD_TYPES = frozenset({
    "Patient", "Condition", "Observation", "MedicationRequest", "MedicationStatement",
    "MedicationAdministration", "Medication", "Procedure", "ServiceRequest"})
# The tag of a resource the server returned with elements left out (FHIR R4 search, _summary
# and _elements: "SHOULD mark the resources with the tag SUBSETTED"): HL7 v3 ObservationValue
# SUBSETTED; R3 named the system http://hl7.org/fhir/v3/ObservationValue.
SUBSETTED = "SUBSETTED"
SUBSETTED_SYSTEMS = ("http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                     "http://hl7.org/fhir/v3/ObservationValue")
# A resource type named with an id or a search (``Observation/her2``, ``Condition?code=``) in a
# failed entry's response.location or OperationOutcome text: CamelCase words only.
NAMED_TYPE = re.compile(r"(?<![A-Za-z])((?:[A-Z][a-z]+)+)(?:/[A-Za-z0-9.\-]|\?)")


def is_subsetted(resource: dict[str, Any]) -> bool:
    """Whether a resource's meta.tag says it is a subsetted copy (a tag SUBSETTED of the v3
    ObservationValue system, or of no system)."""
    return any(as_dict(tag).get("code") == SUBSETTED
               and as_dict(tag).get("system") in (*SUBSETTED_SYSTEMS, None)
               for tag in as_list(as_dict(resource.get("meta")).get("tag")))


def subsetted_message(kind: Any) -> str:
    """Why a subsetted copy refuses the input, and what to do."""
    return (f"the {kind} is a subsetted copy (meta.tag {SUBSETTED}, {SUBSETTED_SYSTEMS[0]}): "
            "the server left elements out of it (a _summary or _elements fetch), and what it "
            "left out (a verificationStatus, a value, a dose) would be read as not given, so "
            "the input is refused. Fetch the full resource")


@dataclass(frozen=True)
class Failure:
    """A Bundle entry whose response.status is an error (4xx or 5xx): where it is, its status,
    the issues of its OperationOutcome and the resource types they (or response.location)
    name."""

    position: str
    status: str
    issues: tuple[str, ...]
    types: tuple[str, ...]

    @property
    def needed(self) -> bool:
        """Whether the failed request may be for a resource the record is read from: it names
        one of RECORD_TYPES, or no resource type at all."""
        return not self.types or any(kind in RECORD_TYPES for kind in self.types)

    def text(self) -> str:
        shown = f"{self.position} response.status {self.status!r}"
        if self.issues:
            shown += f" (OperationOutcome: {'; '.join(self.issues)})"
        return shown

    def reason(self) -> str:
        """The reason of a refusal: the failure, and what its request was for."""
        kinds = [kind for kind in self.types if kind in RECORD_TYPES]
        what = (f"a request for {' and '.join(dict.fromkeys(kinds))} failed" if kinds else
                "a request failed, and the entry does not say for which resource")
        return f"{self.text()}: {what}"


def failure(entry: dict[str, Any], position: str) -> Failure | None:
    """The Failure of an entry whose response.status is 4xx or 5xx, else None. Its outcome is
    response.outcome, or the entry's resource when that is an OperationOutcome."""
    response = as_dict(entry.get("response"))
    status = response.get("status")
    code = re.match(r"\s*(\d{3})(?!\d)", str(status)) if isinstance(status, str | int) else None
    if code is None or not 400 <= int(code.group(1)) <= 599:
        return None
    outcomes = [as_dict(response.get("outcome")), as_dict(entry.get("resource"))]
    issues, texts = [], [str(response.get("location", ""))]
    for outcome in outcomes:
        if outcome.get("resourceType") != "OperationOutcome":
            continue
        for issue in as_list(outcome.get("issue")):
            issue = as_dict(issue)
            text = issue.get("diagnostics") or as_dict(issue.get("details")).get("text")
            parts = [str(issue[key]) for key in ("severity", "code") if key in issue]
            issues.append(" ".join(parts + ([repr(text)] if isinstance(text, str) else [])))
            texts.append(text if isinstance(text, str) else "")
    types = tuple(dict.fromkeys(found for text in texts for found in NAMED_TYPE.findall(text)))
    return Failure(position, str(status), tuple(issues), types)


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
    has an issue of type incomplete or too-costly, or an entry's request (a batch's, a
    transaction's) failed (response.status 4xx or 5xx) and may have been for a resource the
    record is read from (Failure.needed)."""
    kind = bundle.get("type")
    search = kind == "searchset"
    reasons = page_reasons(bundle, entries) if search else []
    reasons += outcome_reasons(bundle, entries)
    failed = [found.reason() for index, entry in enumerate(entries)
              if (found := failure(as_dict(entry), f"entry {index}")) is not None
              and found.needed]
    reasons += failed
    if not reasons:
        return None
    shown = kind if isinstance(kind, str) else "not given"
    if search:
        return (f"Bundle {name} (type searchset) is not the whole result of its search "
                f"({'; '.join(reasons)}): {ABSENT_READ}. It is one page of a search: fetch "
                "every page, or a Bundle of the patient's whole record")
    remedy = " (repeat the failed requests)" if failed else ""
    return (f"Bundle {name} (type {shown}) says it is not the whole result "
            f"({'; '.join(reasons)}): {ABSENT_READ}. Fetch the whole result{remedy}, or a "
            "Bundle of the patient's whole record")


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
