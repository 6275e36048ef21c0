"""XSUM ROUGE as the authors scored it (official_code.md §6.4): rouge-score, not ROUGE-1.5.5.

``RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)``, ``score(target=reference,
prediction=hypothesis)``, F-measure ×100; rougeL, not rougeLsum. Two aggregations:
- ``corpus_mean``: the mean over examples (what the tables report);
- ``batch_bootstrap``: the authors' number, the mean over test batches of 8 of each batch's
  ``BootstrapAggregator`` mid F-measure. The authors' bootstrap was unseeded; ours is seeded, so it repeats.
Empty outputs are scored (as 0), never skipped. References: the authors' were their label ids (truncated to 100
tokens) decoded back to text with transformers 3.2's clean-up; ``truncate_references`` does the same given the
model's tokenizer.
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


def truncate_references(refs: list[str], tokenizer: Any, max_tokens: int) -> list[str]:  # noqa: ANN401
    """``<s> ref </s>`` truncated to ``max_tokens`` ids and decoded as the authors' test loop did."""
    from prefixtune.models.detokenize import clean_up_tokenization

    out = []
    for ref in refs:
        ids = tokenizer(ref, truncation=True, max_length=max_tokens)["input_ids"]
        text = tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        out.append(clean_up_tokenization(text).strip())
    return out


def per_example(hyps: list[str], refs: list[str]) -> list[dict[str, scoring.Score]]:
    """rouge-score's precision / recall / F (0-1) per pair; an empty output scores 0."""
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    return [scorer.score(ref, hyp) for hyp, ref in zip(hyps, refs, strict=True)]


def corpus_mean(scores: list[dict[str, scoring.Score]]) -> dict[str, float]:
    return {t: 100 * float(np.mean([s[t].fmeasure for s in scores])) if scores else 0.0 for t in ROUGE_TYPES}


def batch_bootstrap(scores: list[dict[str, scoring.Score]], batch_size: int, seed: int) -> dict[str, float]:
    """Mean over consecutive batches of each batch's bootstrap mid F-measure (the authors' test loop).

    A short last batch counts as much as a full one, as in the authors' loop. ``BootstrapAggregator`` samples
    with numpy's global RNG: it is seeded here and its previous state restored afterwards, so the number repeats
    and the caller's random stream is left as it was.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        mids: dict[str, list[float]] = {t: [] for t in ROUGE_TYPES}
        for start in range(0, len(scores), batch_size):
            aggregator = scoring.BootstrapAggregator()
            for score in scores[start : start + batch_size]:
                aggregator.add_scores(score)
            result = aggregator.aggregate()
            for t in ROUGE_TYPES:
                mids[t].append(result[t].mid.fmeasure)
    finally:
        np.random.set_state(saved)
    return {t: 100 * float(np.mean(v)) if v else 0.0 for t, v in mids.items()}


def score_xsum(hyps: list[str], refs: list[str], *, batch_size: int = 8, seed: int = 0) -> dict[str, Any]:
    """Both aggregations (F-measure x100) for one output per reference, in order."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} outputs for {len(refs)} references: one output per reference expected")
    return aggregate_xsum(per_example(hyps, refs), batch_size=batch_size, seed=seed)


def aggregate_xsum(
    scores: list[dict[str, scoring.Score]], *, batch_size: int = 8, seed: int = 0
) -> dict[str, Any]:
    """Both aggregations of :func:`per_example` scores (the metrics part of :func:`score_xsum`)."""
    return {
        "corpus_mean": corpus_mean(scores),
        "batch_bootstrap": batch_bootstrap(scores, batch_size, seed),
        "batch_size": batch_size,
        "bootstrap_seed": seed,
    }


def score_xsum_files(
    hyp_path: str | Path,
    refs_path: str | Path,
    reference_tokenizer: str | Path | None = None,
    reference_max_tokens: int = 100,
    **kwargs: Any,
) -> dict[str, Any]:
    """``score_xsum`` on two files with one text per line (``refs_path``: prepare's ``test.refs.txt``).

    With ``reference_tokenizer`` (a model directory) the references are first cut as the authors' were
    (``truncate_references``); the result then counts the references that changed.
    """
    hyps, refs, extra = read_xsum_files(hyp_path, refs_path, reference_tokenizer, reference_max_tokens)
    return {**score_xsum(hyps, refs, **kwargs), **extra}


def read_xsum_files(
    hyp_path: str | Path,
    refs_path: str | Path,
    reference_tokenizer: str | Path | None = None,
    reference_max_tokens: int = 100,
) -> tuple[list[str], list[str], dict[str, int]]:
    """Outputs and the references as scored (cut with ``reference_tokenizer``), plus what the cut changed."""
    hyps, refs = read_lines(hyp_path), read_lines(refs_path)
    if len(hyps) != len(refs):
        raise ValueError(
            f"{hyp_path} has {len(hyps)} lines but {refs_path} has {len(refs)}: one output per reference"
        )
    if reference_tokenizer is None:
        return hyps, refs, {}
    from prefixtune.models.loading import load_tokenizer

    cut = truncate_references(refs, load_tokenizer(reference_tokenizer), reference_max_tokens)
    extra = {
        "reference_max_tokens": reference_max_tokens,
        "references_changed_by_truncation": sum(a != b for a, b in zip(refs, cut, strict=True)),
    }
    return hyps, cut, extra
