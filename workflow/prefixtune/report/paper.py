"""The published numbers (``config/paper_results.csv``, one number per row, arXiv v1 and ACL)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

VERSIONS = ("arxiv_v1", "acl2021")
REQUIRED = (
    "artifact",
    "version",
    "dataset",
    "split",
    "method",
    "model",
    "param_pct",
    "setting",
    "metric",
    "value",
)


@dataclass(frozen=True)
class PaperKey:
    artifact: str
    dataset: str
    split: str
    method: str
    model: str
    param_pct: str
    setting: str  # e.g. "full-data", "full-data; prefix_len=10": rows differing only here are distinct cells
    metric: str


def load_paper_results(path: Path, version: str) -> dict[PaperKey, float]:
    """Numbers of one paper version keyed by cell; errors name the file and line."""
    if version not in VERSIONS:
        raise ValueError(f"paper version {version!r}: expected one of {VERSIONS}")
    table: dict[PaperKey, float] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}")
        for line, row in enumerate(reader, start=2):
            if row["version"] != version:
                continue
            try:
                value = float(row["value"])
            except ValueError:
                continue  # textual facts (ranges, notes) are not table cells
            key = PaperKey(
                row["artifact"],
                row["dataset"],
                row["split"],
                row["method"],
                row["model"],
                row["param_pct"],
                row["setting"],
                row["metric"],
            )
            if key in table and table[key] != value:
                raise ValueError(f"{path}:{line}: duplicate cell {key} with a different value")
            table[key] = value
    return table
