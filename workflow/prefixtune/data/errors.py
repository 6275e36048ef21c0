"""Errors for bad input files: each message names the file, where (line or entry) and what was expected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class DataError(ValueError):
    """Bad input data; ``str(err)`` reads ``<file>: <line N | entry N>: <what was expected>``."""

    def __init__(self, path: Path | str, where: str, expected: str) -> None:
        super().__init__(f"{path}: {where}: {expected}")
        self.path = str(path)
        self.where = where


def read_utf8(path: Path) -> str:
    """The whole file as text; a file that is not UTF-8 is reported with the line of the first bad byte."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            path, f"line {line}", f"expected UTF-8 text ({err.reason} at byte {err.start})"
        ) from err


def read_json(path: Path) -> Any:  # noqa: ANN401
    """A UTF-8 JSON file; a syntax error is reported with its line."""
    try:
        return json.loads(read_utf8(path))
    except json.JSONDecodeError as err:
        raise DataError(path, f"line {err.lineno}", f"expected JSON ({err.msg})") from err


def require_strings(path: Path, where: str, triples: list, texts: list, what: str) -> None:
    """Every triple element and every text is a string, or a DataError saying ``expected <what>``."""
    if not all(isinstance(x, str) for t in triples for x in t) or not all(isinstance(x, str) for x in texts):
        raise DataError(path, where, f"expected {what}")
