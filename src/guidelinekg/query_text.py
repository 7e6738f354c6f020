"""What a query text may do, judged before any engine runs it: the offline check, the
project's prefixes for a user's query, updates refused.

No query reaches the network or the file system: both engines can call a SERVICE endpoint
over HTTP, and rdflib loads FROM graphs from their IRIs. Every query text an engine is given
is therefore inspected in its parsed form (rdflib's SPARQL algebra) before it runs, and
refused when it holds a SERVICE pattern or a FROM / FROM NAMED clause, or cannot be parsed
for the check. The bundled queries are trusted by their exact text (a test checks each of
them), so the derivation does not parse them twice.

A user's query (``query --file``, the server's ``/sparql``, the query page) may use the
project's prefixes without declaring them: :func:`prepare_query` reads the prefixed names of
the parsed query and declares those it uses and does not declare (its own PREFIX wins). An
unknown prefix and an update are named as such, not in the parser's words.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from rdflib import URIRef
from rdflib.namespace import RDF, SH
from rdflib.plugins.sparql import prepareQuery
from rdflib.plugins.sparql.algebra import translateQuery
from rdflib.plugins.sparql.parser import parseQuery, parseUpdate
from rdflib.plugins.sparql.parserutils import CompValue
from rdflib.plugins.sparql.sparql import Query

from guidelinekg.loading import PREFIXES
from guidelinekg.namespaces import GSH, PSH
from guidelinekg.resources import query_roots, resource_root


class QueryError(Exception):
    """A query that cannot be found, parsed or run; the message says which and why."""


class UpdateRefused(QueryError):
    """A SPARQL Update where a query was expected: every way in is read-only."""


UPDATE_REFUSED = "updates are refused: the endpoint is read-only"


def remote_access(algebra: object) -> str | None:
    """What in a translated query would read outside the local graph: "SERVICE",
    "FROM" (a dataset clause) or None. Walks every node of the algebra, sub-queries too."""
    stack = [algebra]
    while stack:
        node = stack.pop()
        if isinstance(node, CompValue):
            if node.name == "ServiceGraphPattern":
                return "SERVICE"
            # dict.get: CompValue.get answers a missing key with the key itself.
            if dict.get(node, "datasetClause"):
                return "FROM"
            stack.extend(node.values())
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            stack.extend(node)
    return None


# rdflib's SPARQL grammar (pyparsing) is not thread-safe: two threads parsing at once get
# spurious errors from its parse actions (the server checks queries in many threads). Every
# rdflib parse of a query in this process takes this lock.
RDFLIB_PARSE_LOCK = threading.Lock()


def prepared_query(text: str, prefixes: Mapping[str, str] | None = None) -> Query:
    """rdflib's prepared form of a query text (``prefixes``: declared before it), parsed
    under :data:`RDFLIB_PARSE_LOCK`."""
    with RDFLIB_PARSE_LOCK:
        return prepareQuery(text, initNs=dict(prefixes or {}))


def query_prefixes() -> dict[str, str]:
    """The prefixes a query may use undeclared: the project's (loading.PREFIXES: the core's,
    each guideline's, the standard ones) and the others the result tables print with."""
    return dict(sorted({**PREFIXES, "rdf": str(RDF), "sh": str(SH), "psh": str(PSH),
                        "gsh": str(GSH)}.items()))


@dataclass(frozen=True)
class _Inspection:  # what the parsed form of a text says before it may run
    error: str | None = None  # the parser's message when the text is not a query
    update: bool = False
    undeclared: tuple[str, ...] = ()  # prefixes used without a PREFIX declaration
    remote: str | None = None  # see remote_access


# An update's first keyword after comments and the prologue: an update the grammar refuses
# (a typo in it) is still named an update rather than given the parser's message.
_UPDATE_START = re.compile(
    r"(?:\s|#[^\n]*(?:\n|$))*"
    r"(?:(?:PREFIX\s*[^\s:]*:\s*<[^>]*>|BASE\s*<[^>]*>)(?:\s|#[^\n]*(?:\n|$))*)*"
    r"(?:INSERT|DELETE|LOAD|CLEAR|DROP|CREATE|ADD|MOVE|COPY|WITH)\b", re.IGNORECASE)


def _parser_message(error: Exception) -> str:
    return " ".join(str(error).split())[:300] or type(error).__name__


def _is_update(text: str) -> bool:  # called with RDFLIB_PARSE_LOCK held
    with contextlib.suppress(Exception):  # pyparsing raises many types
        # An empty text parses as an update of no operation: not one.
        if dict.get(parseUpdate(text), "request"):
            return True
    return bool(_UPDATE_START.match(text))


def _prefix_usage(tree: object) -> tuple[set[str], set[str]]:
    """(prefixes declared, prefixes used) in rdflib's parse tree of a query ("": the empty
    prefix)."""
    declared: set[str] = set()
    used: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, CompValue):
            # dict.get: CompValue.get answers a missing key with the key itself.
            if node.name == "PrefixDecl":
                declared.add(dict.get(node, "prefix") or "")
            elif node.name == "pname":
                used.add(dict.get(node, "prefix") or "")
            stack.extend(node.values())
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif not isinstance(node, str) and hasattr(node, "__iter__"):
            stack.extend(node)  # lists and pyparsing's ParseResults
    return declared, used


@lru_cache(maxsize=512)
def _inspect(text: str) -> _Inspection:
    with RDFLIB_PARSE_LOCK:
        try:
            tree = parseQuery(text)
        except Exception as error:  # pyparsing raises many types
            return _Inspection(error=_parser_message(error), update=_is_update(text))
        declared, used = _prefix_usage(tree)
        if used - declared:
            return _Inspection(undeclared=tuple(sorted(used - declared)))
        try:
            query = translateQuery(tree)
        except Exception as error:  # the translator raises many types
            return _Inspection(error=_parser_message(error))
    return _Inspection(remote=remote_access(query.algebra))


def _undeclared(where: str, prefixes: Sequence[str]) -> QueryError:
    names = ", ".join(f"{prefix}:" for prefix in prefixes)
    said = f"prefix {names} is" if len(prefixes) == 1 else f"prefixes {names} are"
    known = ", ".join(f"{prefix}:" for prefix in query_prefixes())
    return QueryError(f"{where}: the {said} not declared; known prefixes: {known}")


def _refuse(inspection: _Inspection, where: str) -> None:
    """Raise the error the inspection of a text calls for, if any."""
    if inspection.update:
        raise UpdateRefused(f"{where}: {UPDATE_REFUSED}")
    if inspection.error is not None:
        raise QueryError(f"{where}: SPARQL syntax error (the query is parsed before it runs, "
                         f"to check that it stays offline): {inspection.error}")
    if inspection.undeclared:
        raise _undeclared(where, inspection.undeclared)
    if inspection.remote is not None:
        raise offline_refusal(where, inspection.remote)


# The one keyword this module writes into a query: a declaration made of a prefix name the
# parser found in the query and an IRI of the project's own table; no text of the user's is
# spliced into a query.
_DECLARATION = "PREFIX"


def prepare_query(text: str, where: str = "query") -> str:
    """A user's query made ready to run (by the CLI, the server and its query page): a PREFIX
    declaration added at its start for each project prefix (:func:`query_prefixes`) it uses
    and does not declare (its own declaration wins), then :func:`refuse_remote_access`. A
    prefix neither declared nor the project's, and an update (:class:`UpdateRefused`), are
    named as such."""
    bundled = text in _bundled_texts()
    if not bundled:  # the bounds first: the parse holds a lock every query waits on
        refuse_unparsable_alike(text, where)
    inspection = _Inspection() if bundled else _inspect(text)
    if inspection.undeclared:
        known = query_prefixes()
        unknown = [prefix for prefix in inspection.undeclared if prefix not in known]
        if unknown:
            raise _undeclared(where, unknown)
        declarations = [" ".join((_DECLARATION, f"{prefix}:", URIRef(known[prefix]).n3()))
                        for prefix in inspection.undeclared]
        text = "\n".join([*declarations, text])
    refuse_remote_access(text, where)
    return text


def _bundled_texts() -> frozenset[str]:
    """The texts of the project's own queries, which the test suite checks offline. Not a
    library's (GUIDELINEKG_LIBRARY): those are checked as a user's query is."""
    own = resource_root()
    return _texts_under(tuple(root for root in query_roots() if root.is_relative_to(own)))


@cache
def _texts_under(roots: tuple[Path, ...]) -> frozenset[str]:
    return frozenset(path.read_text(encoding="utf-8")
                     for root in roots for path in root.rglob("*.rq"))


# SPARQL's codepoint escapes (\u0022, \U0001F600). rdflib replaces them in the whole text
# before it parses, comments included, as the SPARQL grammar says; pyoxigraph only inside
# strings and IRIs. A "\u000a" in a comment therefore ends the comment for the checker but
# not for the engine, and could hide a SERVICE from the check: they are refused.
_CODEPOINT_ESCAPE = re.compile(r"\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8}")


def refuse_remote_access(text: str, where: str = "query") -> None:
    """Raise QueryError for a query that would read over the network or the file system
    (SERVICE, FROM, FROM NAMED), judged on its parsed form, before anything evaluates it.

    A text the checker cannot parse is refused too (what cannot be inspected cannot be run),
    and so are an update (:class:`UpdateRefused`), an undeclared prefix and a codepoint
    escape (the checker and the engine would not read the same query).
    """
    if text in _bundled_texts():
        return
    refuse_unparsable_alike(text, where)
    _refuse(_inspect(text), where)


def refuse_unparsable_alike(text: str, where: str = "query") -> None:
    """What is refused before a parser reads the text: a query too large to parse in
    bounded time (:func:`refuse_oversized`), and what the check's parser and the engine's
    would read differently (:func:`refuse_codepoint_escapes`,
    :func:`refuse_lone_carriage_returns`)."""
    refuse_oversized(text, where)
    refuse_codepoint_escapes(text, where)
    refuse_lone_carriage_returns(text, where)


# A carriage return not followed by a line feed. The SPARQL grammar, and pyoxigraph, end a
# comment at it; rdflib's comment runs on to the line feed. "# note<CR> SERVICE <...>" was a
# comment to the check and a SERVICE call to the engine: refused. (CRLF line ends are read
# alike: the comment ends at the pair for both.)
_LONE_CARRIAGE_RETURN = re.compile(r"\r(?!\n)")


def refuse_lone_carriage_returns(text: str, where: str = "query") -> None:
    if _LONE_CARRIAGE_RETURN.search(text):
        raise QueryError(f"{where}: a carriage return not followed by a line feed is not "
                         "accepted in a query: end lines with LF or CRLF (the offline check "
                         "and the engine would read the line's end differently)")


# Bounds on a query's size, checked before any parser reads it: rdflib's parser takes about a
# millisecond a token of a long list (holding the lock every parse takes), and pyoxigraph's
# recursion overflows the stack, killing the process, on a few thousand nested brackets or
# chained operators. The largest bundled query has about 5,400 tokens and a depth under 20.
MAX_QUERY_TOKENS = 10_000
MAX_QUERY_NESTING = 200
# rdflib's translation of an object or predicate list takes time in the square of its
# length (1,000 objects: four seconds, 3,300: half a minute, holding that lock): the longest
# run of commas and semicolons (a list: one not broken by a bracket or a statement's end) is
# bounded too.
MAX_QUERY_LIST = 200
_LIST_MARK = re.compile(r"[,;(){}]|\.(?=\s|$)")
_TOKEN = re.compile(r"[A-Za-z0-9_]+|[^\sA-Za-z0-9_]")
_BRACKET = re.compile(r"[(){}\[\]]")


def refuse_oversized(text: str, where: str = "query") -> None:
    """Raise QueryError for a query over :data:`MAX_QUERY_TOKENS` tokens, with a list longer
    than :data:`MAX_QUERY_LIST` items, or nesting brackets deeper than
    :data:`MAX_QUERY_NESTING` (those in strings count too: a refusal, never a pass, can
    come of it)."""
    tokens = sum(1 for _ in itertools.islice(_TOKEN.finditer(text), MAX_QUERY_TOKENS + 1))
    if tokens > MAX_QUERY_TOKENS:
        raise QueryError(f"{where}: the query has more than {MAX_QUERY_TOKENS:,} tokens, the "
                         "most a query may have (every query is parsed before it runs)")
    run = 0
    for mark in _LIST_MARK.finditer(text):
        run = run + 1 if mark[0] in ",;" else 0
        if run > MAX_QUERY_LIST:
            raise QueryError(f"{where}: the query has a list of more than {MAX_QUERY_LIST + 1} "
                             "items (objects or predicates of one subject, or values in "
                             "brackets), the most a query may have: every query is parsed "
                             "before it runs, and the parser takes minutes over long lists")
    depth = 0
    for bracket in _BRACKET.finditer(text):
        depth += 1 if bracket[0] in "({[" else -1
        if depth > MAX_QUERY_NESTING:
            raise QueryError(f"{where}: the query nests brackets more than "
                             f"{MAX_QUERY_NESTING} deep, the most a query may")


def refuse_codepoint_escapes(text: str, where: str = "query") -> None:
    """Raise QueryError for a query holding a codepoint escape (see _CODEPOINT_ESCAPE)."""
    if _CODEPOINT_ESCAPE.search(text):
        raise QueryError(f"{where}: codepoint escapes (\\uXXXX, \\UXXXXXXXX) are not accepted "
                         "in a query: write the character itself (the offline check and the "
                         "engine would read the escape differently)")


def offline_refusal(where: str, found: str) -> QueryError:
    return QueryError(f"{where}: {found} is not allowed: queries run offline on the graphs "
                      "loaded here and nothing is fetched over the network or read from files")
