"""Table 1 of the paper (ACL Table 2): table-to-text results, each cell reproduced beside the published value."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from prefixtune.report.paper import PaperKey

# (dataset label in the paper CSV, split, metric, how to read it from our scores.json, scale to paper, decimals)
COLUMNS: list[tuple[str, str, str, tuple[str, ...], float, int]] = [
    ("E2E", "test", "BLEU", ("BLEU",), 100, 1),
    ("E2E", "test", "NIST", ("NIST",), 1, 2),
    ("E2E", "test", "METEOR", ("METEOR",), 100, 1),
    ("E2E", "test", "ROUGE-L", ("ROUGE_L",), 100, 1),
    ("E2E", "test", "CIDEr", ("CIDEr",), 1, 2),
    *[
        ("WebNLG", f"test_{part}", metric, (part, metric), 1, 1 if metric == "BLEU" else 2)
        for metric in ("BLEU", "METEOR", "TER")
        for part in ("seen", "unseen", "all")
    ],
    ("DART", "test", "BLEU", ("BLEU",), 1, 1),
    ("DART", "test", "METEOR", ("METEOR",), 1, 2),
    ("DART", "test", "TER", ("TER",), 1, 2),
    ("DART", "test", "MoverScore", ("MoverScore",), 1, 2),
    ("DART", "test", "BERTScore", ("BERTScore",), 1, 2),
    ("DART", "test", "BLEURT", ("BLEURT",), 1, 2),
]
DATASET_KEYS = {"E2E": "e2e", "WebNLG": "webnlg", "DART": "dart"}
SHORT = {"seen": "S", "unseen": "U", "all": "A"}


@dataclass(frozen=True)
class Row:
    """One table row: a paper method label on a model, and our scores per dataset (None where not run)."""

    label: str  # e.g. "PREFIX (0.1%)"
    method: str  # the paper CSV's method, e.g. PREFIX
    model: str  # the paper CSV's model, e.g. gpt2-medium
    ran: str  # the model this pipeline ran for the row (the demo's tiny-gpt2 stands in for gpt2-medium)
    param_pct: str  # the paper CSV's param_pct, e.g. "0.1"
    scores: dict[str, Path | None]


def _lookup(scores: dict, path: tuple[str, ...]) -> float | None:
    node = scores.get("metrics", {})
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node)


def build_table1(rows: list[Row], paper: dict[PaperKey, float], heading: str) -> tuple[str, list[dict]]:
    """Markdown table (``ours / paper`` per cell) and long-format records for the CSV."""
    records: list[dict] = []
    header = ["", "model"] + [
        f"{d} {m}" + (f" {SHORT[s.split('_')[1]]}" if d == "WebNLG" else "") for d, s, m, *_ in COLUMNS
    ]
    lines = [heading, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.label, row.model if row.ran == row.model else f"{row.ran} (for {row.model})"]
        loaded = {k: json.loads(p.read_text()) if p else None for k, p in row.scores.items()}
        for dataset, split, metric, path, scale, decimals in COLUMNS:
            scores = loaded.get(DATASET_KEYS[dataset])
            ours = _lookup(scores, path) if scores else None
            ours = ours * scale if ours is not None else None
            ref = paper.get(
                PaperKey("table1", dataset, split, row.method, row.model, row.param_pct, "full-data", metric)
            )
            cells.append(f"{_fmt(ours, decimals)} / {_fmt(ref, decimals)}")
            records.append(
                {
                    "row": row.label,
                    "model": row.model,
                    "ran": row.ran,
                    "dataset": dataset,
                    "split": split,
                    "metric": metric,
                    "reproduced": "" if ours is None else repr(ours),
                    "paper": "" if ref is None else repr(ref),
                    "delta": "" if ours is None or ref is None else repr(ours - ref),
                }
            )
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Each cell: reproduced / paper; `–` = not run or not computed. E2E BLEU, METEOR and ROUGE-L are ×100 "
        "(official e2e-metrics `-p`); WebNLG BLEU ×100, METEOR and TER fractions (S/U/A = seen/unseen/all); "
        "DART BLEU ×100, the rest fractions. TER: lower is better.",
    ]
    return "\n".join(lines) + "\n", records


def _fmt(value: float | None, decimals: int) -> str:
    return "–" if value is None else f"{value:.{decimals}f}"


def records_to_csv(records: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(records[0]) if records else ["row"])
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()
