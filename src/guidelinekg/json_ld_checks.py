"""Checks of JSON-LD input that the JSON-LD reader would not make: nothing remote, nothing
left out without a word.

JSON-LD prescribes leaving out, without an error, a node whose ``@id`` is not a well-formed
IRI and a key its ``@context`` does not define; a patient, or a finding of one, would vanish
and the rest still conform. The file is refused instead, naming what would be lost.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from guidelinekg import oxigraph as ox
from guidelinekg.loading import MAX_NESTING_DEPTH, InputError, too_deep

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# The vocabulary the check gives a document's @context: a key the context does not define
# becomes an IRI here instead of being left out, and is named.
_UNDEFINED = "urn:guidelinekg:undefined-json-ld-term:"


def _context_references(context: object) -> Iterator[str]:
    """The remote documents a JSON-LD ``@context`` value refers to (directly or by
    ``@import``); inline definitions nested in it are walked by the caller."""
    for item in context if isinstance(context, list) else [context]:
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict) and isinstance(item.get("@import"), str):
            yield item["@import"]


def _remote_contexts(document: object, path: Path | str) -> list[str]:
    """Every remote context a JSON document refers to; an InputError if it is nested deeper
    than the limit. Iterative: a deep document must not exhaust the stack here."""
    remote: list[str] = []
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: list[object] = list(value.values())
            if "@context" in value:
                remote.extend(_context_references(value["@context"]))
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_NESTING_DEPTH:
            raise InputError(path, too_deep("JSON objects and arrays"))
        stack.extend((child, depth + 1) for child in children)
    return remote


def check_json_ld(data: bytes, path: Path | str) -> object:
    """Refuse JSON-LD that is not JSON, is nested too deeply, or needs a remote context
    (pyoxigraph would refuse that too, with a less helpful message); the document read, its
    numbers as text, for :func:`check_json_ld_read_whole`."""
    try:
        # Numbers stay text: only the structure matters here, and int() refuses over
        # 4,300 digits although the JSON is valid (pyoxigraph reads such numbers).
        document = json.loads(data, parse_int=str, parse_float=str, parse_constant=str)
    except RecursionError:
        raise InputError(path, too_deep("JSON objects and arrays")) from None
    except UnicodeDecodeError as error:
        raise InputError(path, f"not UTF-8 text, so not JSON ({error.reason})") from None
    except json.JSONDecodeError as error:
        raise InputError(path, f"not valid JSON ({error.msg})", error.lineno,
                         error.colno) from None
    except ValueError as error:
        raise InputError(path, f"not valid JSON ({error})") from None
    remote = sorted(set(_remote_contexts(document, path)))
    if remote:
        raise InputError(
            path,
            "JSON-LD points to a remote @context (" + ", ".join(remote) + "); "
            "guidelinekg fetches nothing over the network: inline the context",
        )
    return document


def _ill_formed_term(quad: ox.Quad) -> str | None:
    """An IRI or language tag of a leniently parsed statement that is not well-formed, in
    words, or None."""
    for node in (quad.subject, quad.predicate, quad.object):
        if isinstance(node, ox.NamedNode):
            try:
                ox.NamedNode(node.value)  # the constructor checks the IRI
            except ValueError as error:
                return f"@id or IRI {node.value!r} is not a valid IRI ({error})"
        elif isinstance(node, ox.Literal) and node.language:
            try:
                ox.Literal(node.value, language=node.language)
            except ValueError as error:
                return f"language tag {node.language!r} is not valid ({error})"
    return None


def _kept_by_json_ld(quad: ox.Quad) -> bool:
    """Whether a leniently read statement is one JSON-LD keeps: a key that is no IRI and no
    term of the @context (no scheme: ``as_of`` of plain JSON) is ignored by JSON-LD itself,
    in strict reading too (not an ill-formed IRI; see check_json_ld_dropped)."""
    return _SCHEME.match(quad.predicate.value) is not None


def check_json_ld_dropped(data: bytes, path: Path, statements: int) -> None:
    """Refuse JSON-LD of which the reader dropped statements for an ill-formed IRI or
    language tag: as JSON-LD prescribes, a node whose @id (or a value whose IRI) is not a
    well-formed IRI is left out without an error, so a patient would vanish and the rest
    still conform. Read again without those checks (``lenient``), such a file gives more
    statements, and the first ill-formed term is named (RDF/XML and Turtle refuse the same
    IRI with a syntax error). Statements JSON-LD leaves out for another reason (under a key
    of plain JSON) are not refused here."""
    base = path.resolve().as_uri()
    lenient = (quad for quad in ox.parse(data, format=ox.RdfFormat.JSON_LD, base_iri=base,
                                         lenient=True) if _kept_by_json_ld(quad))
    if sum(1 for _ in zip(lenient, range(statements + 1), strict=False)) <= statements:
        return  # nothing left out: the usual case, one quick pass
    for quad in ox.parse(data, format=ox.RdfFormat.JSON_LD, base_iri=base, lenient=True):
        if _kept_by_json_ld(quad) and (problem := _ill_formed_term(quad)) is not None:
            raise InputError(path, f"not valid JSON-LD: {problem}; the JSON-LD reader would "
                                   "leave out what it names without a word, so the file is "
                                   "refused")


def check_json_ld_read_whole(data: bytes, document: object, path: Path,
                             statements: int) -> None:
    """After a strict read of ``statements`` statements: nothing was left out for an
    ill-formed IRI (:func:`check_json_ld_dropped`) or an undefined key
    (:func:`check_json_ld_terms`); ``document``: what :func:`check_json_ld` read."""
    check_json_ld_dropped(data, path, statements)
    check_json_ld_terms(document, path)


def check_json_ld_terms(document: object, path: Path) -> None:
    """Refuse JSON-LD with a key (or a ``@type``) its ``@context`` does not define: JSON-LD
    leaves it out without a word, so a misspelt ``birthDat`` would drop the birth date. Read
    again with a ``@vocab`` of the check's own, such a key becomes an IRI there and is named.
    A document without a ``@context`` of its own (plain JSON), or that sets ``@vocab``
    itself, says nothing of its keys to check, and a term mapped to null is left out on
    purpose: neither is refused."""
    caught = _with_catch_all_vocabulary(document)  # numbers as text: only keys matter
    if caught is None:
        return
    text = json.dumps(caught).encode("utf-8")
    for quad in ox.parse(text, format=ox.RdfFormat.JSON_LD, base_iri=path.resolve().as_uri(),
                         lenient=True):
        for role, node in (("key", quad.predicate), ("@type or value", quad.object)):
            if isinstance(node, ox.NamedNode) and node.value.startswith(_UNDEFINED):
                name = node.value[len(_UNDEFINED):]
                raise InputError(path, f"not valid JSON-LD here: the {role} {name!r} is not "
                                       "defined by the @context (a typo, or a term to add to "
                                       "it); the JSON-LD reader would leave it out without a "
                                       "word, so the file is refused")


def _with_catch_all_vocabulary(document: object) -> object | None:
    """The document with the check's ``@vocab`` added to each top-level ``@context``, or
    None when there is nothing to check (no context of its own, or a ``@vocab`` already)."""
    nodes = document if isinstance(document, list) else [document]
    changed = []
    with_context = False
    for node in nodes:
        if not isinstance(node, dict) or "@context" not in node:
            changed.append(node)
            continue
        context = node["@context"]
        parts = context if isinstance(context, list) else [context]
        if any(isinstance(part, dict) and "@vocab" in part for part in parts):
            return None
        changed.append({**node, "@context": [*parts, {"@vocab": _UNDEFINED}]})
        with_context = True
    if not with_context:
        return None
    return changed if isinstance(document, list) else changed[0]
