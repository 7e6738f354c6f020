"""HTTP for ``guidelinekg serve``: content negotiation and strict request decoding.

Negotiation weighs the q-values of an Accept header against the media types a resource
has, with the aliases clients use for them; decoding refuses what a lenient reader would
quietly change (bad percent-escapes, text that is not UTF-8, control characters such as
%00), so that a request is answered as sent or refused with 400.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote_to_bytes

from guidelinekg.console import terminal_text
from guidelinekg.publishing import FHIR_JSON, HTML

MAX_FORM_FIELDS = 64
# Other names clients use for the same media types.
ALIASES: dict[str, tuple[str, ...]] = {
    HTML: ("application/xhtml+xml",),
    "text/turtle": ("application/x-turtle", "application/turtle"),
    "application/ld+json": ("application/json",),
    "application/n-triples": ("text/plain",),
    FHIR_JSON: ("application/json", "application/json+fhir"),
    "application/sparql-results+json": ("application/json",),
    "application/sparql-results+xml": ("application/xml", "text/xml"),
}

# ---------------------------------------------------------------------------------------
# Content negotiation
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaRange:
    type: str
    subtype: str
    q: float


def parse_accept(header: str | None) -> list[MediaRange]:
    """The media ranges of an Accept header; a malformed q counts as 0 (not acceptable)."""
    ranges = []
    for part in (header or "").split(","):
        pieces = [piece.strip() for piece in part.split(";")]
        if not pieces[0] or "/" not in pieces[0]:
            continue
        main, _, sub = pieces[0].lower().partition("/")
        q = 1.0
        for parameter in pieces[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                q = min(max(q, 0.0), 1.0)
        ranges.append(MediaRange(main, sub, q))
    return ranges


def _quality(ranges: list[MediaRange], media_type: str) -> float:
    """The q of the most specific range that matches the type (or one of its aliases)."""
    names = (media_type, *ALIASES.get(media_type, ()))
    best: tuple[int, float] | None = None
    for candidate in names:
        main, _, sub = candidate.partition("/")
        for accepted in ranges:
            if accepted.type == main and accepted.subtype == sub:
                specificity = 3 if candidate == media_type else 2
            elif accepted.type == main and accepted.subtype == "*":
                specificity = 1
            elif accepted.type == "*" and accepted.subtype == "*":
                specificity = 0
            else:
                continue
            if best is None or specificity > best[0]:
                best = (specificity, accepted.q)
    return best[1] if best else 0.0


def negotiate(header: str | None, available: list[str]) -> str | None:
    """The available media type the client prefers (q-values), ties in server order."""
    if not available:
        return None
    if header is None or not header.strip():
        return available[0]
    ranges = parse_accept(header)
    if not ranges:
        return available[0]
    scored = [(_quality(ranges, media_type), -index, media_type)
              for index, media_type in enumerate(available)]
    q, _, chosen = max(scored)
    return chosen if q > 0 else None


# ---------------------------------------------------------------------------------------
# Request decoding
# ---------------------------------------------------------------------------------------

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
DIGITS = re.compile(r"[0-9]+")
ORIGIN = re.compile(r"https?://(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?")


class RequestError(Exception):
    """A request the server cannot take as sent: answered with its status and message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def decode_path(raw: str) -> str:
    """The percent-decoded path; strict, since the path names files of the site."""
    if _BAD_ESCAPE.search(raw):
        raise RequestError("malformed percent-encoding in the path")
    try:
        path = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("the path is not UTF-8 once percent-decoded") from None
    if CONTROL_CHARACTERS.search(path):
        raise RequestError("the path contains a control character (such as %00)")
    return path


def parse_form(text: str, where: str) -> dict[str, list[str]]:
    """Parameters of a query string or form; bad escapes and non-UTF-8 text are refused
    (parse_qs would keep them as they are or replace them, and run another query)."""
    if _BAD_ESCAPE.search(text):
        raise RequestError(f"malformed percent-encoding in the {where}")
    try:
        return parse_qs(text, keep_blank_values=True, errors="strict",
                        max_num_fields=MAX_FORM_FIELDS)
    except UnicodeDecodeError:
        raise RequestError(f"the {where} is not UTF-8 once percent-decoded") from None
    except ValueError:
        raise RequestError(f"the {where} has more than {MAX_FORM_FIELDS} fields") from None


def printable(text: str) -> str:
    """Text for a log line: control and bidirectional formatting characters escaped, so a
    request cannot forge lines or reorder what a terminal shows of them."""
    return terminal_text(text, one_line=True).replace('"', '\\"')


# ---------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def common_log_time(now: float | None = None) -> str:
    """[10/Oct/2000:13:55:36 -0700], independent of the locale."""
    local = time.localtime(now)
    offset = time.strftime("%z", local)
    return (f"{local.tm_mday:02d}/{_MONTHS[local.tm_mon - 1]}/{local.tm_year:04d}:"
            f"{local.tm_hour:02d}:{local.tm_min:02d}:{local.tm_sec:02d} {offset}")
