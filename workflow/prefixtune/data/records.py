"""The two records every later stage reads, a training ``Pair`` and a scoring ``EvalItem``, as JSON lines.

Files are written through a temp file and ``os.replace`` so that a killed job never leaves half a file behind.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from prefixtune.data.errors import DataError, read_utf8
from prefixtune.provenance import write_text_atomic


@dataclass
class Pair:
    """One training example: linearized source and target exactly as the authors fed them (not stripped)."""

    source: str
    target: str


@dataclass
class EvalItem:
    """One scoring unit (one output line): ``key`` is what identical decodings are shared on."""

    id: str
    source: str
    references: list[str]
    key: str
    meta: dict[str, Any] = field(default_factory=dict)


Record = TypeVar("Record", Pair, EvalItem)

_FIELD_TYPES: dict[type, dict[str, Any]] = {
    Pair: {"source": str, "target": str},
    EvalItem: {"id": str, "source": str, "references": list, "key": str, "meta": dict},
}


def write_jsonl(path: Path, records: Iterable[Pair | EvalItem]) -> None:
    """One JSON object per line (UTF-8, not ASCII-escaped), written atomically."""
    lines = [json.dumps(dataclasses.asdict(r), ensure_ascii=False) + "\n" for r in records]
    write_text_atomic(Path(path), "".join(lines))


def _check(obj: Any, cls: type, path: Path, lineno: int) -> None:
    where = f"line {lineno}"
    if not isinstance(obj, dict):
        raise DataError(path, where, f"expected a JSON object for {cls.__name__}, got {type(obj).__name__}")
    types = _FIELD_TYPES[cls]
    required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING} & set(types)
    if missing := sorted(required - obj.keys()):
        raise DataError(path, where, f"{cls.__name__} is missing field(s) {missing}")
    if unknown := sorted(obj.keys() - types.keys()):
        raise DataError(
            path, where, f"{cls.__name__} has unknown field(s) {unknown}; expected {sorted(types)}"
        )
    for name, value in obj.items():
        if not isinstance(value, types[name]):
            raise DataError(
                path, where, f"field {name!r} should be {types[name].__name__}, got {value!r:.80}"
            )
    if cls is EvalItem and not all(isinstance(r, str) for r in obj["references"]):
        raise DataError(path, where, "field 'references' should be a list of strings")


def read_jsonl(path: Path, cls: type[Record]) -> list[Record]:
    """Records of type ``cls``; a malformed line raises ``DataError`` naming the file and line."""
    path = Path(path)
    if cls not in _FIELD_TYPES:
        raise TypeError(f"read_jsonl reads Pair or EvalItem records, not {cls!r}")
    records = []
    for lineno, line in enumerate(read_utf8(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(path, f"line {lineno}", f"expected one JSON object per line ({err})") from err
        _check(obj, cls, path, lineno)
        records.append(cls(**obj))
    return records


def make_key(source: str, relations: Iterable[str]) -> str:
    """The authors' decoding key ``(source, tuple(relations))`` as one string (WebNLG and DART)."""
    return json.dumps([source, list(relations)], ensure_ascii=False)
