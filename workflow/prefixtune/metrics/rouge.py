"""XSUM ROUGE as the authors scored it (official_code.md §6.4): rouge-score, not ROUGE-1.5.5.

``RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)``, ``score(target=reference,
prediction=hypothesis)``, F-measure ×100; rougeL, not rougeLsum. Two aggregations:
- ``corpus_mean``: the mean over examples (what the tables report);
- ``batch_bootstrap``: the authors' number, the mean over test batches of 8 of each batch's
  ``BootstrapAggregator`` mid F-measure. The authors' bootstrap was unseeded; ours is seeded, so it repeats.
Empty outputs are scored (as 0), never skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rouge_score import rouge_scorer, scoring

from prefixtune.data.errors import read_utf8

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def read_lines(path: str | Path) -> list[str]:
    """One text per line; a final newline ends the last line rather than adding an empty one."""
    text = read_utf8(Path(path))
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def per_example(hyps: list[str], refs: list[str]) -> list[dict[str, scoring.Score]]:
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    return [scorer.score(ref, hyp) for hyp, ref in zip(hyps, refs, strict=True)]


def corpus_mean(scores: list[dict[str, scoring.Score]]) -> dict[str, float]:
    return {t: 100 * float(np.mean([s[t].fmeasure for s in scores])) if scores else 0.0 for t in ROUGE_TYPES}


def batch_bootstrap(scores: list[dict[str, scoring.Score]], batch_size: int, seed: int) -> dict[str, float]:
    """Mean over consecutive batches of each batch's bootstrap mid F-measure (the authors' test loop)."""
    np.random.seed(seed)  # BootstrapAggregator samples with numpy's global RNG
    mids: dict[str, list[float]] = {t: [] for t in ROUGE_TYPES}
    for start in range(0, len(scores), batch_size):
        aggregator = scoring.BootstrapAggregator()
        for score in scores[start : start + batch_size]:
            aggregator.add_scores(score)
        result = aggregator.aggregate()
        for t in ROUGE_TYPES:
            mids[t].append(result[t].mid.fmeasure)
    return {t: 100 * float(np.mean(v)) if v else 0.0 for t, v in mids.items()}


def score_xsum(hyps: list[str], refs: list[str], *, batch_size: int = 8, seed: int = 0) -> dict[str, Any]:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} outputs for {len(refs)} references: one output per reference expected")
    scores = per_example(hyps, refs)
    return {
        "corpus_mean": corpus_mean(scores),
        "batch_bootstrap": batch_bootstrap(scores, batch_size, seed),
        "batch_size": batch_size,
        "bootstrap_seed": seed,
    }


def score_xsum_files(hyp_path: str | Path, refs_path: str | Path, **kwargs: Any) -> dict[str, Any]:
    hyps, refs = read_lines(hyp_path), read_lines(refs_path)
    if len(hyps) != len(refs):
        raise ValueError(
            f"{hyp_path} has {len(hyps)} lines but {refs_path} has {len(refs)}: one output per reference"
        )
    return score_xsum(hyps, refs, **kwargs)
