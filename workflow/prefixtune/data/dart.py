"""DART v1.1.1: the JSON list ``[{tripleset, subtree_was_extended, annotations: [{source, text}]}]``, and XML.

Every annotation is a training pair (nothing filtered). Evaluation is one item per entry in file order;
entries with the same (source, relations) key are decoded once and mapped back, as the authors'
``data/dart/temp.py`` did.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prefixtune.data.benchmark import Entry, Lex, read_benchmark_xml, write_benchmark_xml
from prefixtune.data.errors import DataError, read_json, require_strings
from prefixtune.data.linearize import linearize_dart
from prefixtune.data.records import EvalItem, Pair, make_key
from prefixtune.provenance import write_text_atomic

N_SCORED_REFERENCES = 3  # the official run_eval_on_dart.sh reads all-delex-reference{0,1,2}.lex


def _json_entry(value: Any, n: int, path: Path) -> Entry:
    where = f"entry {n}"
    try:
        triples = [(s, r, o) for s, r, o in value["tripleset"]]
        lexes = [Lex(a["text"], a["source"], f"Id{k}") for k, a in enumerate(value["annotations"], start=1)]
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(
            path,
            where,
            "expected {tripleset: [[subject, relation, object], ...], annotations: [{source, text}, ...]} "
            f"({type(err).__name__}: {err})",
        ) from err
    if not triples:
        raise DataError(path, where, "expected a non-empty tripleset")
    require_strings(
        path,
        where,
        triples,
        [x.text for x in lexes],
        "string subjects, relations, objects and annotation texts",
    )
    extra = {"subtree_was_extended": value["subtree_was_extended"]} if "subtree_was_extended" in value else {}
    return Entry(f"Id{n}", "MISC", len(triples), triples, lexes, extra=extra)


def read_dart_json(path: Path) -> list[Entry]:
    """The JSON list in file order; entry ids become ``Id<position>``."""
    data = read_json(path)
    if not isinstance(data, list) or not data:
        raise DataError(path, "line 1", "expected a non-empty JSON list of DART entries")
    return [_json_entry(value, n, path) for n, value in enumerate(data, start=1)]


def read_dart(path: Path) -> list[Entry]:
    """Entries of a DART ``.json`` or ``.xml`` file, in file order (the official XML ids are not sorted)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return read_dart_json(path)
    if suffix == ".xml":
        return read_benchmark_xml(path)
    raise DataError(path, "file name", f"expected a DART .json or .xml file, got suffix {suffix!r}")


def dart_pairs(entries: list[Entry]) -> list[Pair]:
    """One pair per annotation, the text as is."""
    return [Pair(linearize_dart(e.triples), lex.text) for e in entries for lex in e.lexes]


def dart_items(entries: list[Entry]) -> list[EvalItem]:
    """One item per entry; ``key`` = source + lower-cased relations, the authors' decoding key."""
    items = []
    for entry in entries:
        source = linearize_dart(entry.triples)
        key = make_key(source, [r.lower() for _, r, _ in entry.triples])
        meta = {"annotation_sources": [lex.comment for lex in entry.lexes]}
        items.append(EvalItem(entry.eid, source, [lex.text for lex in entry.lexes], key, meta))
    return items


def dart_reference_line(text: str) -> str:
    """Official reference form: split off every non-word character, squeeze spaces, lower-case."""
    return " ".join(" ".join(re.split(r"(\W)", text)).split()).lower()


def write_dart_refs(out_dir: Path, items: list[EvalItem]) -> None:
    """``reference0.lex`` .. ``reference2.lex``: the k-th reference of each item per line, blank when missing.

    Reproduces the official ``all-delex-reference{k}.lex`` files line for line (with LF line ends).
    """
    for k in range(N_SCORED_REFERENCES):
        lines = [dart_reference_line(i.references[k]) if k < len(i.references) else "" for i in items]
        write_text_atomic(Path(out_dir) / f"reference{k}.lex", "".join(line + "\n" for line in lines))


def write_dart_json(path: Path, entries: list[Entry]) -> None:
    """The v1.1.1 JSON list."""
    body = [
        {
            "tripleset": [list(t) for t in e.triples],
            **e.extra,
            "annotations": [{"source": x.comment, "text": x.text} for x in e.lexes],
        }
        for e in entries
    ]
    write_text_atomic(path, json.dumps(body, indent=2, ensure_ascii=False) + "\n")


def write_dart_xml(path: Path, entries: list[Entry]) -> None:
    """The v1.1.1 XML (category MISC, lex comment = annotation source)."""
    write_benchmark_xml(path, entries)
