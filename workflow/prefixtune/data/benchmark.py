"""The WebNLG-challenge XML ``<benchmark><entries><entry>``: the raw format of WebNLG 2017 and of DART's XML.

``<entry category eid size>`` holds ``<modifiedtripleset><mtriple>s | p | o</mtriple>`` and
``<lex comment lid>`` elements. Readers keep file order; the WebNLG reader applies the scorer's Id order.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefixtune.data.errors import DataError, read_utf8
from prefixtune.data.linearize import Triple
from prefixtune.provenance import write_text_atomic

_EID = re.compile(r"Id(\d+)")


@dataclass
class Lex:
    """One lexicalisation: ``comment`` is WebNLG's quality flag (``good``) or DART's annotation source."""

    text: str
    comment: str = "good"
    lid: str = ""


@dataclass
class Entry:
    """One tripleset with its lexicalisations; ``extra`` keeps format-specific fields (DART subtree flag)."""

    eid: str
    category: str
    size: int
    triples: list[Triple]
    lexes: list[Lex]
    original_triplesets: list[list[Triple]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def eid_number(eid: str) -> int:
    """``Id12`` -> 12 (the scorer's natural sort key)."""
    match = _EID.fullmatch(eid)
    if match is None:
        raise ValueError(f"expected an entry id 'Id<n>', got {eid!r}")
    return int(match.group(1))


def split_triple(text: str) -> Triple:
    """``s | p | o`` -> (s, p, o); the parts keep their own inner whitespace (DART has ``' x  | p | o'``)."""
    parts = text.split(" | ")
    if len(parts) != 3:
        raise ValueError(f"expected 'subject | property | object', got {text!r:.120}")
    return parts[0], parts[1], parts[2]


def _entry(element: ET.Element, index: int, path: Path) -> Entry:
    eid = element.get("eid", "")
    where = f"entry {index} (eid={eid!r})"
    try:
        eid_number(eid)
        size = int(element.get("size", ""))
    except ValueError as err:
        raise DataError(path, where, f"expected attributes eid='Id<n>' and an integer size ({err})") from err
    modified = element.findall("modifiedtripleset")
    if len(modified) != 1:
        raise DataError(path, where, f"expected one <modifiedtripleset>, found {len(modified)}")
    try:
        triples = [split_triple(m.text or "") for m in modified[0].findall("mtriple")]
        originals = [
            [split_triple(t.text or "") for t in o.findall("otriple")]
            for o in element.findall("originaltripleset")
        ]
    except ValueError as err:
        raise DataError(path, where, str(err)) from err
    if not triples:
        raise DataError(path, where, "expected at least one <mtriple>")
    lexes = [
        Lex(lex.text or "", lex.get("comment", ""), lex.get("lid", "")) for lex in element.findall("lex")
    ]
    return Entry(eid, element.get("category", ""), size, triples, lexes, originals)


def read_benchmark_xml(path: Path) -> list[Entry]:
    """All ``<entry>`` elements in file order; malformed XML or entries raise ``DataError``."""
    try:
        root = ET.fromstring(read_utf8(path).encode("utf-8"))
    except ET.ParseError as err:
        line, column = err.position
        raise DataError(
            path, f"line {line}", f"expected well-formed XML ({err.msg}, column {column})"
        ) from err
    if root.tag != "benchmark":
        raise DataError(path, "line 1", f"expected a <benchmark> root element, got <{root.tag}>")
    entries = [_entry(e, i, path) for i, e in enumerate(root.iter("entry"), start=1)]
    if not entries:
        raise DataError(path, "entry 1", "expected <benchmark><entries><entry ...> elements, found none")
    seen: set[str] = set()
    for i, entry in enumerate(entries, start=1):
        if entry.eid in seen:
            raise DataError(path, f"entry {i} (eid={entry.eid!r})", "expected unique entry ids")
        seen.add(entry.eid)
    return entries


def _join(triple: Triple) -> str:
    return " | ".join(triple)


def write_benchmark_xml(path: Path, entries: list[Entry]) -> None:
    """The challenge layout, readable by the official WebNLG scorer's benchmark reader."""
    root = ET.Element("benchmark")
    container = ET.SubElement(root, "entries")
    for entry in entries:
        element = ET.SubElement(
            container, "entry", {"category": entry.category, "eid": entry.eid, "size": str(entry.size)}
        )
        for original in entry.original_triplesets:
            ots = ET.SubElement(element, "originaltripleset")
            for triple in original:
                ET.SubElement(ots, "otriple").text = _join(triple)
        mts = ET.SubElement(element, "modifiedtripleset")
        for triple in entry.triples:
            ET.SubElement(mts, "mtriple").text = _join(triple)
        for lex in entry.lexes:
            ET.SubElement(element, "lex", {"comment": lex.comment, "lid": lex.lid}).text = lex.text
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    write_text_atomic(path, "<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n" + body + "\n")
