"""WebNLG 2017 challenge data: the challenge XML and the authors' JSON ``{"entries": [{"1": {...}}, ...]}``.

Training uses only ``comment == "good"`` lexicalisations. Evaluation is one item per entry in Id order (what
the official scorer needs), with category, size and seen/unseen. ``first_entry_bug`` reproduces the authors'
decode prompt for the first entry: its triples run together without separators (official_code.md §7).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefixtune.data.benchmark import Entry, Lex, eid_number, read_benchmark_xml, write_benchmark_xml
from prefixtune.data.errors import DataError, read_json, require_strings
from prefixtune.data.linearize import linearize_webnlg, linearize_webnlg_first_entry_bug
from prefixtune.data.records import EvalItem, Pair, make_key
from prefixtune.provenance import write_text_atomic

UNSEEN_CATEGORIES = frozenset({"Artist", "Athlete", "CelestialBody", "MeanOfTransportation", "Politician"})
SEEN_CATEGORIES = frozenset(
    {
        "Airport",
        "Astronaut",
        "Building",
        "City",
        "ComicsCharacter",
        "Food",
        "Monument",
        "SportsTeam",
        "University",
    }
    | {"WrittenWork"}
)


def read_webnlg_xml(path: Path) -> list[Entry]:
    """Challenge XML entries sorted by Id number (the scorer's order; the official test file is in it)."""
    return sorted(read_benchmark_xml(path), key=lambda e: eid_number(e.eid))


def _json_entry(value: Any, n: int, path: Path) -> Entry:
    where = f"entry {n}"
    if not isinstance(value, dict) or list(value) != [str(n)] or not isinstance(value[str(n)], dict):
        raise DataError(path, where, f'expected an object {{"{n}": {{...}}}} (entries are numbered from 1)')
    body = value[str(n)]
    try:
        triples = [(t["subject"], t["property"], t["object"]) for t in body["modifiedtripleset"]]
        lexes = [Lex(x["lex"], x["comment"], x.get("xml_id", "")) for x in body["lexicalisations"]]
        originals = [
            [(t["subject"], t["property"], t["object"]) for t in group]
            for group in body.get("originaltriplesets", {}).get("originaltripleset", [])
        ]
        entry = Entry(f"Id{n}", body["category"], int(body["size"]), triples, lexes, originals)
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(
            path,
            where,
            "expected category, size, modifiedtripleset [{subject, property, object}] and "
            f"lexicalisations [{{comment, lex}}] ({type(err).__name__}: {err})",
        ) from err
    if not triples:
        raise DataError(path, where, "expected at least one triple in modifiedtripleset")
    require_strings(
        path, where, triples, [x.text for x in lexes], "string subjects, properties, objects and lex texts"
    )
    return entry


def read_webnlg_json(path: Path) -> list[Entry]:
    """The authors' JSON: ``entries[i][str(i + 1)]``; entry ids become ``Id<i + 1>``."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list) or not data["entries"]:
        raise DataError(path, "line 1", "expected a JSON object with a non-empty list 'entries'")
    return [_json_entry(value, n, path) for n, value in enumerate(data["entries"], start=1)]


def read_webnlg(path: Path) -> list[Entry]:
    """Entries of a challenge ``.xml`` or the authors' ``.json`` file."""
    suffix = Path(path).suffix.lower()
    if suffix == ".xml":
        return read_webnlg_xml(path)
    if suffix == ".json":
        return read_webnlg_json(path)
    raise DataError(path, "file name", f"expected a WebNLG .xml or .json file, got suffix {suffix!r}")


def webnlg_pairs(entries: list[Entry]) -> list[Pair]:
    """One pair per ``good`` lexicalisation, the text as is."""
    return [
        Pair(linearize_webnlg(e.triples), lex.text)
        for e in entries
        for lex in e.lexes
        if lex.comment == "good"
    ]


def webnlg_items(entries: list[Entry], first_entry_bug: bool = False) -> list[EvalItem]:
    """One item per entry, in the given (Id) order.

    References are the ``good`` lexicalisations (the authors' gold); an entry without any (dev Id69) keeps
    all of its lexicalisations, so that no item is left without references.
    """
    items = []
    for index, entry in enumerate(entries):
        if first_entry_bug and index == 0:
            source = linearize_webnlg_first_entry_bug(entry.triples)
        else:
            source = linearize_webnlg(entry.triples)
        good = [lex.text.strip() for lex in entry.lexes if lex.comment == "good"]
        meta = {
            "category": entry.category,
            "size": entry.size,
            "seen": entry.category not in UNSEEN_CATEGORIES,
            "first_entry_bug": bool(first_entry_bug and index == 0),
        }
        references = good or [lex.text.strip() for lex in entry.lexes]
        key = make_key(source, [p for _, p, _ in entry.triples])
        items.append(EvalItem(entry.eid, source, references, key, meta))
    return items


def write_webnlg_xml(path: Path, entries: list[Entry]) -> None:
    """Challenge XML of ``entries`` (all lexicalisations, with their comments), for the official scorer."""
    write_benchmark_xml(path, entries)


def write_webnlg_json(path: Path, entries: list[Entry]) -> None:
    """The authors' JSON form (webnlg benchmark_reader layout), entries numbered from 1 in the given order."""

    def triple(t: tuple[str, str, str]) -> dict[str, str]:
        return {"object": t[2], "property": t[1], "subject": t[0]}

    body = [
        {
            str(n): {
                "category": e.category,
                "dbpedialinks": [],
                "lexicalisations": [
                    {"comment": x.comment, "lang": "", "lex": x.text, "xml_id": x.lid} for x in e.lexes
                ],
                "links": [],
                "modifiedtripleset": [triple(t) for t in e.triples],
                "originaltriplesets": {
                    "originaltripleset": [[triple(t) for t in o] for o in e.original_triplesets]
                },
                "shape": "NA",
                "shape_type": "NA",
                "size": str(e.size),
                "xml_id": e.eid,
            }
        }
        for n, e in enumerate(entries, start=1)
    ]
    write_text_atomic(path, json.dumps({"entries": body}, indent=4, ensure_ascii=False) + "\n")
