"""Errors for bad input files: each message names the file, where (line or entry) and what was expected."""

from __future__ import annotations

from pathlib import Path


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
