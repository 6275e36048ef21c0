"""Reading one paper metric from our scores.json files and aggregating a cell's replicate runs."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

# dataset -> (paper metric, path in scores.json "metrics", scale to the paper's, decimals as printed)
METRICS: dict[str, list[tuple[str, tuple[str, ...], float, int]]] = {
    "e2e": [
        ("BLEU", ("BLEU",), 100, 1),
        ("NIST", ("NIST",), 1, 2),
        ("METEOR", ("METEOR",), 100, 1),
        ("ROUGE-L", ("ROUGE_L",), 100, 1),
        ("CIDEr", ("CIDEr",), 1, 2),
    ],
    "webnlg": [("BLEU", ("BLEU",), 1, 1), ("METEOR", ("METEOR",), 1, 2), ("TER", ("TER",), 1, 2)],
    "dart": [
        ("BLEU", ("BLEU",), 1, 1),
        ("METEOR", ("METEOR",), 1, 2),
        ("TER", ("TER",), 1, 2),
        ("MoverScore", ("MoverScore",), 1, 2),
        ("BERTScore", ("BERTScore",), 1, 2),
        ("BLEURT", ("BLEURT",), 1, 2),
    ],
    "xsum": [
        ("ROUGE-1", ("corpus_mean", "rouge1"), 1, 2),
        ("ROUGE-2", ("corpus_mean", "rouge2"), 1, 2),
        ("ROUGE-L", ("corpus_mean", "rougeL"), 1, 2),
    ],
}
PAPER_DATASET = {"e2e": "E2E", "webnlg": "WebNLG", "dart": "DART", "xsum": "XSUM"}
LOWER_IS_BETTER = {"TER"}


def metric_spec(dataset: str, metric: str) -> tuple[tuple[str, ...], float, int]:
    for name, path, scale, decimals in METRICS[dataset]:
        if name == metric:
            return path, scale, decimals
    raise ValueError(
        f"no metric {metric!r} for {dataset}; expected one of {[m[0] for m in METRICS[dataset]]}"
    )


def read_metric(scores: dict, dataset: str, metric: str, track: str | None = None) -> float | None:
    """A metric on the paper's scale, or None where it was not computed (e.g. a model-based metric not run)."""
    path, scale, _ = metric_spec(dataset, metric)
    node = scores.get("metrics", {})
    for part in ((track,) if track else ()) + path:
        if not isinstance(node, dict) or part not in node or node[part] is None:
            return None
        node = node[part]
    return float(node) * scale


def unavailable_reason(scores: dict, metric: str) -> str | None:
    """Why a metric could not run (the scorer records it under ``unavailable``)."""
    return (scores.get("unavailable") or {}).get(metric)


@dataclass(frozen=True)
class Aggregate:
    """A cell over its replicate runs: mean, sample sd (0 with one value), n of the runs planned."""

    values: tuple[float, ...]
    planned: int
    reason: str | None = None  # why the value is missing where a run has finished

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def sd(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0


def load_scores(paths: list[str | None]) -> list[dict | None]:
    """Each replicate's scores.json, None where it is not there (yet)."""
    out: list[dict | None] = []
    for path in paths:
        if path and Path(path).is_file():
            out.append(json.loads(Path(path).read_text(encoding="utf-8")))
        else:
            out.append(None)
    return out


def aggregate(scores: list[dict | None], dataset: str, metric: str, track: str | None = None) -> Aggregate:
    values, reason = [], None
    for s in scores:
        if s is None:
            continue
        value = read_metric(s, dataset, metric, track)
        if value is None:
            reason = reason or unavailable_reason(s, metric) or "not computed"
        else:
            values.append(value)
    return Aggregate(tuple(values), len(scores), reason if not values else None)


def fmt_aggregate(agg: Aggregate, decimals: int) -> str:
    """``68.9``, ``68.9 ± 0.4 (n=2)``, ``68.9 ± 0.4 (n=2 of 10)``; ``–`` when nothing ran."""
    if agg.mean is None:
        return "–"
    text = f"{agg.mean:.{decimals}f}"
    if agg.planned > 1:
        text += f" ± {agg.sd:.{decimals}f} (n={agg.n}" + (
            f" of {agg.planned})" if agg.n < agg.planned else ")"
        )
    return text
