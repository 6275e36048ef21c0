"""The paper's result tables: each cell reproduced beside the published value.

One builder serves every table: an artifact picks its datasets' columns (``COLUMNS``) and each row names the paper
cell it reproduces (method, model, parameter share, setting).
"""

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
    *[
        ("XSUM", "test", metric, ("corpus_mean", key), 1, 2)
        for metric, key in (("ROUGE-1", "rouge1"), ("ROUGE-2", "rouge2"), ("ROUGE-L", "rougeL"))
    ],
]
DATASET_KEYS = {"E2E": "e2e", "WebNLG": "webnlg", "DART": "dart", "XSUM": "xsum"}
TITLES = {
    "table1": "Table 1 — table-to-text (arXiv v1 Table 1 = ACL Table 2)",
    "table2": "Table 2 — summarization, XSUM (arXiv v1 Table 2 = ACL Table 3)",
    "table4": "Table 4 — embedding-only and infix ablations on E2E (arXiv v1 Table 4 = ACL Table 5)",
    "methods": "Every method of the pipeline (a check that each runs end to end; no paper table)",
}
NOTES = {
    "e2e": "E2E BLEU, METEOR and ROUGE-L are ×100 (official e2e-metrics `-p`)",
    "webnlg": "WebNLG BLEU ×100, METEOR and TER fractions (S/U/A = seen/unseen/all; TER: lower is better)",
    "dart": "DART BLEU ×100, the rest fractions (TER: lower is better)",
    "xsum": "XSUM ROUGE F ×100 (rouge-score with stemming, mean over examples)",
}
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
    setting: str = "full-data"  # the paper CSV's setting, e.g. "full-data; prefix_len=10"


def _lookup(scores: dict, path: tuple[str, ...]) -> float | None:
    node = scores.get("metrics", {})
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node)


def columns_for(datasets: list[str]) -> list[tuple[str, str, str, tuple[str, ...], float, int]]:
    return [c for c in COLUMNS if DATASET_KEYS[c[0]] in datasets]


def build_table(
    artifact: str, datasets: list[str], rows: list[Row], paper: dict[PaperKey, float], heading: str
) -> tuple[str, list[dict]]:
    """Markdown table (``ours / paper`` per cell) and long-format records for the CSV."""
    columns = columns_for(datasets)
    records: list[dict] = []
    header = ["", "model"] + [
        f"{d} {m}" + (f" {SHORT[s.split('_')[1]]}" if d == "WebNLG" else "") for d, s, m, *_ in columns
    ]
    lines = [heading, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.label, row.model if row.ran == row.model else f"{row.ran} (for {row.model})"]
        loaded = {k: json.loads(p.read_text()) if p else None for k, p in row.scores.items()}
        for dataset, split, metric, path, scale, decimals in columns:
            scores = loaded.get(DATASET_KEYS[dataset])
            ours = _lookup(scores, path) if scores else None
            ours = ours * scale if ours is not None else None
            ref = paper.get(
                PaperKey(artifact, dataset, split, row.method, row.model, row.param_pct, row.setting, metric)
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
    notes = "; ".join(NOTES[d] for d in datasets)
    lines += ["", f"Each cell: reproduced / paper; `–` = not run or not computed. {notes}."]
    return "\n".join(lines) + "\n", records


def _fmt(value: float | None, decimals: int) -> str:
    return "–" if value is None else f"{value:.{decimals}f}"


def records_to_csv(records: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(records[0]) if records else ["row"])
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()
