"""The human-readable parts of the CPG-on-FHIR export (``guidelinekg export-fhir``).

- :class:`CodeDisplays`: the ``display`` of each coding, from the repository's own data only
  (the modules' FHIR code maps and CodeSystems, read as the published pages read them);
- the generated narratives (``Resource.text``): XHTML listing each statement a resource
  carries, by key, with its verbatim text, strength and direction, and sources.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from guidelinekg import __version__
from guidelinekg.guideline_content import Guideline, Recommendation
from guidelinekg.publishing.graphs import codesystem_graph
from guidelinekg.publishing.pages import code_displays
from guidelinekg.resources import fhir_folders

XHTML = "http://www.w3.org/1999/xhtml"


class CodeDisplays:
    """Codings with the display the repository's data gives their code; a code it names
    nowhere gets no display (nothing is guessed) and is remembered in ``missing``."""

    def __init__(self, displays: dict[tuple[str, str], str] | None = None) -> None:
        self.displays = displays if displays is not None else _repository_displays()
        self.missing: set[tuple[str, str]] = set()

    def coding(self, system: str, code: str) -> dict:
        coding = {"system": system, "code": code}
        display = self.displays.get((system, code))
        if display:
            coding["display"] = display
        else:
            self.missing.add((system, code))
        return coding


def _repository_displays() -> dict[tuple[str, str], str]:
    # The same names the published pages show (publishing.pages.code_displays), over the
    # code maps and the CodeSystems only: the ontology graphs add no code names.
    notes: list[str] = []  # a CodeSystem without a version is the publisher's concern
    graphs = [codesystem_graph(path, __version__, notes) for folder in fhir_folders()
              for path in sorted(folder.glob("CodeSystem-*.json"))]
    return code_displays(graphs)


def direction(recommendation: Recommendation) -> str | None:
    """for / against; a statement that only forbids actions is against whatever its modality."""
    if recommendation.forbidden_actions and not recommendation.actions:
        return "against"
    return recommendation.modality.direction


def _strength_direction(recommendation: Recommendation) -> str:
    modality = recommendation.modality
    parts = [f"strength {modality.strength}" if modality.strength else "strength not stated"]
    way = direction(recommendation)
    parts.append(f"direction {way}" if way else "direction not stated")
    if modality.label:
        parts.append(f"modality “{modality.label}”")
    return ", ".join(parts)


def statement_html(recommendation: Recommendation) -> str:
    """One statement as an XHTML list item: key, verbatim text, strength/direction, sources."""
    sources = "; ".join(escape(s.display) for s in recommendation.sources) or "none recorded"
    return (f"<li><b>{escape(recommendation.key)}</b>: {escape(recommendation.verbatim)}"
            f"<br/>{escape(_strength_direction(recommendation))}"
            f"<br/>Sources: {sources}</li>")


def _div(title: str, body: Iterable[str]) -> dict:
    content = "".join(body)
    return {"status": "generated",
            "div": f'<div xmlns="{XHTML}"><p><b>{escape(title)}</b></p>{content}</div>'}


def plan_text(recommendation: Recommendation, guideline: Guideline) -> dict:
    """The narrative of a statement's eca-rule PlanDefinition."""
    return _div(f"{guideline.title}: recommendation {recommendation.key}", [
        f"<ul>{statement_html(recommendation)}</ul>",
        f"<p>Applies when: {escape(recommendation.criteria_words)}</p>"])


def activity_text(resource: dict, statements: list[Recommendation]) -> dict:
    """The narrative of an ActivityDefinition: what it is and the statements pointing at it."""
    what = f"{resource['kind']}" + (", do not perform" if resource.get("doNotPerform") else "")
    body = [f"<p>{escape(resource['description'])} ({escape(what)})</p>"]
    doses = [step["text"] for step in resource.get("dosage", [])]
    if doses:
        body.append("<p>Dosage:</p><ul>"
                    + "".join(f"<li>{escape(d)}</li>" for d in doses) + "</ul>")
    body.append("<p>Recommended by:</p><ul>"
                + "".join(statement_html(r) for r in statements) + "</ul>")
    return _div(resource["title"], body)


def protocol_text(guideline: Guideline) -> dict:
    """The narrative of a guideline's clinical-protocol PlanDefinition, section by section."""
    body = []
    for section in guideline.sections:
        body.append(f"<p>{escape(section.title)}</p><ul>"
                    + "".join(statement_html(r) for r in section.recommendations) + "</ul>")
    sources = "; ".join(escape(s.display) for s in guideline.sources)
    if sources:
        body.append(f"<p>Sources: {sources}</p>")
    return _div(guideline.title, body)
