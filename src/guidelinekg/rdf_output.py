"""Writing RDF byte for byte the same every time: Turtle, N-Triples, RDF/XML and JSON-LD.

rdflib's in-memory store iterates sets, so its serialisers order triples by the process's
hash seed, and blank node labels change with every parse. Here blank nodes get labels computed
from the graph's content (rdflib.compare's canonical labelling when two could be confused),
and every writer emits triples in one sorted order. Literals keep their exact lexical form and
datatype in every format, so each file reads back as the same graph.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeGuard
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.compare import to_canonical_graph
from rdflib.namespace import RDF, XSD
from rdflib.term import Node

Triple = tuple[Node, Node, Node]


def term_key(term: Node) -> tuple:
    if isinstance(term, URIRef):
        return (0, str(term))
    if isinstance(term, BNode):
        return (1, str(term))
    assert isinstance(term, Literal)
    return (2, str(term), str(term.datatype or ""), term.language or "")


def triple_key(triple: Triple) -> tuple:
    return (term_key(triple[0]), term_key(triple[1]), term_key(triple[2]))


def sorted_triples(triples: Iterable[Triple]) -> list[Triple]:
    return sorted(set(triples), key=triple_key)


# ---------------------------------------------------------------------------------------
# Stable blank node labels
# ---------------------------------------------------------------------------------------


class _Cycle(Exception):
    pass


def _digest(parts: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def _plain_key(term: Node) -> str:
    return "\x1f".join(map(str, term_key(term)))


def _content_labels(triples: Sequence[Triple]) -> dict[BNode, str] | None:
    """Labels from each blank node's content below it and its context above it.

    Returns None when blank nodes form a cycle or two get the same label; the caller then
    uses rdflib's canonical labelling, which handles every graph (slowly).
    """
    outgoing: dict[BNode, list[tuple[Node, Node]]] = defaultdict(list)
    incoming: dict[BNode, list[tuple[Node, Node]]] = defaultdict(list)
    blanks: set[BNode] = set()
    for subject, predicate, obj in triples:
        if isinstance(subject, BNode):
            blanks.add(subject)
            outgoing[subject].append((predicate, obj))
        if isinstance(obj, BNode):
            blanks.add(obj)
            incoming[obj].append((subject, predicate))
    content: dict[BNode, str] = {}
    labels: dict[BNode, str] = {}

    def content_of(node: BNode, path: frozenset[BNode]) -> str:
        if node in content:
            return content[node]
        if node in path:
            raise _Cycle
        inner = path | {node}
        parts = sorted(
            _plain_key(p) + "\x1e" + (content_of(o, inner) if isinstance(o, BNode)
                                      else _plain_key(o))
            for p, o in outgoing[node]
        )
        content[node] = _digest(parts)
        return content[node]

    def label_of(node: BNode, path: frozenset[BNode]) -> str:
        if node in labels:
            return labels[node]
        if node in path:
            raise _Cycle
        inner = path | {node}
        parts = sorted(
            (label_of(s, inner) if isinstance(s, BNode) else _plain_key(s)) + "\x1e"
            + _plain_key(p) for s, p in incoming[node]
        )
        labels[node] = _digest([content_of(node, frozenset()), *parts])
        return labels[node]

    try:
        for node in blanks:
            label_of(node, frozenset())
    except _Cycle:
        return None
    if len(set(labels.values())) != len(labels):
        return None
    return {node: "b" + value[:32] for node, value in labels.items()}


def stable_triples(graph: Graph | Iterable[Triple]) -> list[Triple]:
    """The triples with content-derived blank node labels, sorted."""
    triples = list(graph)
    if not any(isinstance(t, BNode) for triple in triples for t in triple):
        return sorted_triples(triples)
    labels = _content_labels(triples)
    if labels is None:
        source = Graph()
        for triple in triples:
            source.add(triple)
        relabelled = list(to_canonical_graph(source))
        mapping: dict[Node, Node] = {}
        for triple in relabelled:
            for term in triple:
                if isinstance(term, BNode):
                    mapping.setdefault(term, BNode("c" + _digest([str(term)])[:32]))
        return sorted_triples((mapping.get(s, s), mapping.get(p, p), mapping.get(o, o))
                              for s, p, o in relabelled)

    def relabel(term: Node) -> Node:
        return BNode(labels[term]) if isinstance(term, BNode) else term

    return sorted_triples((relabel(s), relabel(p), relabel(o)) for s, p, o in triples)


# ---------------------------------------------------------------------------------------
# Prefixed names
# ---------------------------------------------------------------------------------------

_PN_LOCAL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_-])?$")
_NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]*$")


class Prefixes:
    """Prefix -> namespace, with the longest-namespace-first lookup the writers need."""

    def __init__(self, prefixes: Mapping[str, str]) -> None:
        self.prefixes = dict(sorted(prefixes.items()))
        self._by_length = sorted(self.prefixes.items(), key=lambda item: (-len(item[1]), item[0]))

    def split(self, iri: str, local_pattern: re.Pattern[str]) -> tuple[str, str, str] | None:
        for prefix, namespace in self._by_length:
            if iri.startswith(namespace) and len(iri) > len(namespace):
                local = iri[len(namespace):]
                if local_pattern.match(local):
                    return prefix, namespace, local
        return None

    def compact_jsonld(self, iri: str) -> str:
        for prefix, namespace in self._by_length:
            if iri.startswith(namespace) and len(iri) > len(namespace):
                local = iri[len(namespace):]
                if not local.startswith("//"):
                    return f"{prefix}:{local}"
        return iri


# ---------------------------------------------------------------------------------------
# N-Triples and Turtle
# ---------------------------------------------------------------------------------------

_STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t",
                   "\b": "\\b", "\f": "\\f"}
_IRI_FORBIDDEN = re.compile(r'[\x00-\x20<>"{}|^`\\]')


def _string(value: str) -> str:
    out = []
    for char in value:
        if char in _STRING_ESCAPES:
            out.append(_STRING_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _iri(value: str) -> str:
    if _IRI_FORBIDDEN.search(value):
        raise ValueError(f"IRI <{value}> holds a character RDF syntax cannot carry")
    return f"<{value}>"


def _literal(term: Literal, datatype_text: str | None = None) -> str:
    text = _string(str(term))
    if term.language:
        return f"{text}@{term.language}"
    if term.datatype is not None and term.datatype != XSD.string:
        return f"{text}^^{datatype_text or _iri(str(term.datatype))}"
    return text


def _nt_term(term: Node) -> str:
    if isinstance(term, URIRef):
        return _iri(str(term))
    if isinstance(term, BNode):
        return f"_:{term}"
    if isinstance(term, Literal):
        return _literal(term)
    raise TypeError(f"unsupported RDF term {term!r}")


def write_ntriples(triples: Sequence[Triple]) -> bytes:
    lines = sorted({f"{_nt_term(s)} {_nt_term(p)} {_nt_term(o)} ." for s, p, o in triples})
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


_TURTLE_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_TURTLE_DECIMAL = re.compile(r"^[+-]?[0-9]*\.[0-9]+$")


class _TurtleWriter:
    def __init__(self, triples: Sequence[Triple], prefixes: Prefixes) -> None:
        self.prefixes = prefixes
        self.used: dict[str, str] = {}
        self.by_subject: dict[Node, list[tuple[Node, Node]]] = defaultdict(list)
        references: dict[BNode, int] = defaultdict(int)
        for subject, predicate, obj in triples:
            self.by_subject[subject].append((predicate, obj))
            if isinstance(obj, BNode):
                references[obj] += 1
        self.references = references
        self.lists = self._find_lists()
        self.chains = {head: self._chain(head) for head in self.lists}
        in_lists = {node for chain in self.chains.values() for node in chain}
        candidates = {b for b, count in references.items()
                      if (count == 1 and b not in in_lists) or b in self.lists}
        self.inline = self._reachable_inline(candidates, in_lists)
        # Cells of a list written as ( ... ) are never subjects of their own.
        self.hidden = set(self.inline) | {node for head, chain in self.chains.items()
                                          if head in self.inline for node in chain}

    def _chain(self, head: BNode) -> list[BNode]:
        nodes = []
        node: Node = head
        while isinstance(node, BNode):
            nodes.append(node)
            node = dict(self.by_subject[node])[RDF.rest]
        return nodes

    def _find_lists(self) -> dict[BNode, list[Node]]:
        """Well-formed lists, by head: each node only rdf:first and rdf:rest, once referenced."""
        def is_cell(node: Node) -> TypeGuard[BNode]:
            if not isinstance(node, BNode) or self.references.get(node, 0) != 1:
                return False
            predicates = [p for p, _ in self.by_subject.get(node, [])]
            return len(predicates) == 2 and set(predicates) == {RDF.first, RDF.rest}

        rest_targets = {o for s, pairs in self.by_subject.items() for p, o in pairs
                        if p == RDF.rest and is_cell(s)}
        lists: dict[BNode, list[Node]] = {}
        for node in self.by_subject:
            if not is_cell(node) or node in rest_targets:
                continue
            items: list[Node] = []
            current: Node = node
            seen: set[Node] = set()
            while isinstance(current, BNode) and is_cell(current) and current not in seen:
                seen.add(current)
                pairs = dict(self.by_subject[current])
                items.append(pairs[RDF.first])
                current = pairs[RDF.rest]
            if current == RDF.nil:
                lists[node] = items
        return lists

    def _reachable_inline(self, candidates: set[BNode], in_lists: set[BNode]) -> set[BNode]:
        """Inline blank nodes reachable from a written subject (a cycle gets a root)."""
        roots = [s for s in self.by_subject if s not in candidates and s not in in_lists]
        reached: set[BNode] = set()
        pending = list(roots)
        inline = set(candidates)
        while True:
            while pending:
                node = pending.pop()
                children = [o for _, o in self.by_subject.get(node, [])]
                if isinstance(node, BNode) and node in self.lists:
                    children = list(self.lists[node])
                for child in children:
                    if isinstance(child, BNode) and child in inline and child not in reached:
                        reached.add(child)
                        pending.append(child)
            unreached = sorted((b for b in inline if b not in reached and b in self.by_subject),
                               key=str)
            if not unreached:
                return inline
            inline.discard(unreached[0])  # written as a subject of its own
            pending.append(unreached[0])

    def name(self, iri: URIRef) -> str:
        if iri == RDF.type:
            return "a"
        found = self.prefixes.split(str(iri), _PN_LOCAL)
        if found is None:
            return _iri(str(iri))
        prefix, namespace, local = found
        self.used[prefix] = namespace
        return f"{prefix}:{local}"

    def obj(self, term: Node, indent: int) -> str:
        if isinstance(term, URIRef):
            return self.name(term) if term != RDF.type else self._iri_name(term)
        if isinstance(term, BNode):
            if term in self.lists:
                items = [self.obj(item, indent + 1) for item in self.lists[term]]
                return "( " + " ".join(items) + " )"
            if term in self.inline:
                body = self.predicates(term, indent + 1)
                if not body:
                    return "[]"
                pad = "    " * indent
                return "[\n" + body + "\n" + pad + "]"
            return f"_:{term}"
        assert isinstance(term, Literal)
        lexical = str(term)
        if term.language is None and term.datatype == XSD.integer and \
                _TURTLE_INTEGER.match(lexical):
            return lexical
        if term.language is None and term.datatype == XSD.decimal and \
                _TURTLE_DECIMAL.match(lexical):
            return lexical
        if term.language is None and term.datatype == XSD.boolean and lexical in ("true",
                                                                                 "false"):
            return lexical
        datatype = self._iri_name(term.datatype) if term.datatype is not None else None
        return _literal(term, datatype)

    def _predicate_name(self, predicate: Node) -> str:
        if not isinstance(predicate, URIRef):
            raise ValueError(f"predicate {predicate!r} is not an IRI: Turtle cannot carry it")
        return self.name(predicate)

    def _iri_name(self, iri: URIRef) -> str:
        found = self.prefixes.split(str(iri), _PN_LOCAL)
        if found is None:
            return _iri(str(iri))
        self.used[found[0]] = found[1]
        return f"{found[0]}:{found[2]}"

    def predicates(self, subject: Node, indent: int) -> str:
        grouped: dict[Node, list[Node]] = defaultdict(list)
        for predicate, obj in self.by_subject.get(subject, []):
            grouped[predicate].append(obj)
        order = sorted(grouped, key=lambda p: (p != RDF.type, term_key(p)))
        pad = "    " * indent
        lines = []
        for predicate in order:
            objects = sorted(grouped[predicate], key=term_key)
            # A continuation object starts one level deeper, and so does its [ ... ] body.
            rendered = [self.obj(o, indent if i == 0 else indent + 1)
                        for i, o in enumerate(objects)]
            lines.append(f"{pad}{self._predicate_name(predicate)} " + " ,\n{}".format(
                pad + "    ").join(rendered))
        return " ;\n".join(lines)

    def write(self) -> str:
        blocks = []
        subjects = sorted((s for s in self.by_subject if s not in self.hidden), key=term_key)
        for subject in subjects:
            head = self.name(subject) if isinstance(subject, URIRef) else f"_:{subject}"
            body = self.predicates(subject, 1)
            blocks.append(f"{head}\n{body} .")
        header = "".join(f"@prefix {prefix}: {_iri(namespace)} .\n"
                         for prefix, namespace in sorted(self.used.items()))
        return header + ("\n" if header else "") + "\n\n".join(blocks) + ("\n" if blocks else "")


def write_turtle(triples: Sequence[Triple], prefixes: Prefixes) -> bytes:
    return _TurtleWriter(triples, prefixes).write().encode("utf-8")


# ---------------------------------------------------------------------------------------
# RDF/XML
# ---------------------------------------------------------------------------------------

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(value: str) -> str:
    if _XML_INVALID.search(value):
        raise ValueError(f"literal {value[:40]!r} holds a character XML cannot carry")
    return xml_escape(value, {"\r": "&#13;"})


def write_rdfxml(triples: Sequence[Triple], prefixes: Prefixes) -> bytes:
    """Flat RDF/XML: one rdf:Description per subject, in sorted order."""
    generated: dict[str, str] = {}
    names: dict[Node, tuple[str, str, str]] = {}
    unknown = set()
    for predicate in sorted({p for _, p, _ in triples}, key=str):
        found = prefixes.split(str(predicate), _NCNAME)
        if found is not None:
            names[predicate] = found
            continue
        # The longest tail that is an XML name becomes the local name (any prefix of an IRI
        # can be a namespace).
        match = re.match(r"^(.*?)([A-Za-z_][A-Za-z0-9._-]*)$", str(predicate))
        if not match or not match[1]:
            raise ValueError(f"predicate <{predicate}> cannot be written in RDF/XML")
        unknown.add(match[1])
        names[predicate] = ("", match[1], match[2])
    for number, namespace in enumerate(sorted(unknown), start=1):
        generated[namespace] = f"ns{number}"
    used: dict[str, str] = {"rdf": str(RDF)}
    body: list[str] = []
    current: Node | None = None
    for subject, predicate, obj in triples:
        if subject != current:
            if current is not None:
                body.append("  </rdf:Description>")
            about = (f"rdf:about={quoteattr(str(subject))}" if isinstance(subject, URIRef)
                     else f"rdf:nodeID={quoteattr(str(subject))}")
            body.append(f"  <rdf:Description {about}>")
            current = subject
        prefix, namespace, local = names[predicate]
        prefix = prefix or generated[namespace]
        used[prefix] = namespace
        tag = f"{prefix}:{local}"
        if isinstance(obj, URIRef):
            body.append(f"    <{tag} rdf:resource={quoteattr(str(obj))}/>")
        elif isinstance(obj, BNode):
            body.append(f"    <{tag} rdf:nodeID={quoteattr(str(obj))}/>")
        elif isinstance(obj, Literal):
            attributes = ""
            if obj.language:
                attributes = f" xml:lang={quoteattr(obj.language)}"
            elif obj.datatype is not None and obj.datatype != XSD.string:
                attributes = f" rdf:datatype={quoteattr(str(obj.datatype))}"
            body.append(f"    <{tag}{attributes}>{_xml_text(str(obj))}</{tag}>")
        else:
            raise TypeError(f"unsupported RDF term {obj!r}")
    if current is not None:
        body.append("  </rdf:Description>")
    declarations = "\n".join(f"   xmlns:{prefix}={quoteattr(namespace)}"
                             for prefix, namespace in sorted(used.items()))
    lines = ['<?xml version="1.0" encoding="utf-8"?>', f"<rdf:RDF\n{declarations}\n>", *body,
             "</rdf:RDF>"]
    return ("\n".join(lines) + "\n").encode("utf-8")


# ---------------------------------------------------------------------------------------
# JSON-LD
# ---------------------------------------------------------------------------------------


def jsonld_document(triples: Sequence[Triple], context: Mapping[str, str]) -> dict:
    """A compacted JSON-LD document with the given (prefix-only) context inlined.

    Values are written as {"@value", "@type"/"@language"} with their exact lexical form,
    never as JSON numbers, so the document reads back as the same graph.
    """
    prefixes = Prefixes(context)
    nodes: dict[Node, dict[str, list]] = {}
    for subject, predicate, obj in triples:
        node = nodes.setdefault(subject, {})
        if predicate == RDF.type and isinstance(obj, URIRef | BNode):
            node.setdefault("@type", []).append(
                prefixes.compact_jsonld(str(obj)) if isinstance(obj, URIRef) else f"_:{obj}")
            continue
        key = prefixes.compact_jsonld(str(predicate))
        if isinstance(obj, URIRef):
            value: dict[str, str] = {"@id": prefixes.compact_jsonld(str(obj))}
        elif isinstance(obj, BNode):
            value = {"@id": f"_:{obj}"}
        elif isinstance(obj, Literal):
            value = {"@value": str(obj)}
            if obj.language:
                value["@language"] = obj.language
            elif obj.datatype is not None and obj.datatype != XSD.string:
                value["@type"] = prefixes.compact_jsonld(str(obj.datatype))
        else:
            raise TypeError(f"unsupported RDF term {obj!r}")
        node.setdefault(key, []).append(value)
    graph = []
    for subject in sorted(nodes, key=term_key):
        item: dict = {"@id": prefixes.compact_jsonld(str(subject)) if isinstance(subject, URIRef)
                      else f"_:{subject}"}
        properties = nodes[subject]
        if "@type" in properties:
            item["@type"] = sorted(properties.pop("@type"))
        for key in sorted(properties):
            item[key] = sorted(properties[key], key=lambda v: tuple(sorted(v.items())))
        graph.append(item)
    return {"@context": dict(context), "@graph": graph}


def write_jsonld(triples: Sequence[Triple], context: Mapping[str, str]) -> bytes:
    document = jsonld_document(triples, context)
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def graph_of(triples: Iterable[Triple]) -> Graph:
    graph = Graph(bind_namespaces="none")
    for triple in triples:
        graph.add(triple)
    return graph
