"""Per-segment sufficient statistics of the official metrics, for paired bootstrap resampling over test items.

``prefixtune score`` writes them under the scores file's top-level ``segments`` key::

    {"n": N,
     "metrics": {"BLEU": {"statistic": "sacrebleu_bleu", "scale": 1, "stats": [[...], ...], ...}, ...},
     "tracks": {"all": [...], "seen": [...], "unseen": [...]}}        # WebNLG only

Metric names and scales are the report's (:func:`prefixtune.report.cells.read_metric`): the official value
(``metrics``) times ``scale``. :func:`full_score` of all the rows (of a track's rows, in order) gives exactly
that value, so a bootstrap resample of the rows is a resample of the official formula. Statistics:

* ``e2e_pymteval_bleu`` (E2E BLEU, the ``-p`` variant the paper ran): :data:`mteval.PY_BLEU_STATS` ints,
  corpus formula :func:`mteval.bleu_py_from_stats` on their column sums;
* ``sacrebleu_bleu`` (WebNLG, DART BLEU = multi-bleu.perl): sacrebleu's own segment statistics
  ``[hyp_len, closest_ref_len, correct_1..4, total_1..4]`` of the very BLEU object the scorer uses, scored
  with its ``_compute_score_from_stats`` (``params`` rebuilds the object);
* ``ter`` (WebNLG, DART TER): ``[edits, reference words, references]`` ints; the segment's average reference
  length is words / references, and the corpus value is :func:`ter.ter_from_stats` (sacrebleu's rule as a
  fraction: sacrebleu's own ``TER._compute_score_from_stats`` returns ``100 * x``, which is not always
  bit-identical to ``x`` after dividing back);
* ``mean`` (E2E ROUGE-L of coco-caption, XSUM ROUGE-1/2/L F of rouge-score): one value per segment at full
  precision (0-1), the corpus value is their ``numpy.mean``. For XSUM this is the ``corpus_mean`` aggregation,
  the one the tables read; the authors' ``batch_bootstrap`` aggregation (mean over batches of 8 of a
  bootstrap median) is not a function of per-example sums and has no segment statistics.

Metrics without segment statistics (:data:`NO_SEGMENTS`): METEOR (the jar aligns and aggregates its
statistics internally and its fragmentation penalty is applied to corpus totals), NIST and CIDEr (their
n-gram weights come from the whole reference set, so a resample would change every segment's weights), and
DART's model-based metrics (not recorded per segment).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sacrebleu
from rouge_score import scoring
from sacrebleu.utils import sum_of_lists

from prefixtune.metrics import dart, e2e, mteval, webnlg
from prefixtune.metrics.ter import TerStats, ter_from_stats, ter_segment_stats

NO_SEGMENTS = {
    "METEOR": "METEOR aggregates its alignment statistics inside the official jar",
    "NIST": "NIST weighs n-grams by their information over the whole reference set",
    "CIDEr": "CIDEr weighs n-grams by document frequency over the whole reference set",
    "MoverScore": "model-based scores are not recorded per segment",
    "BERTScore": "model-based scores are not recorded per segment",
    "BLEURT": "model-based scores are not recorded per segment",
}
# XSUM report name -> rouge-score key
XSUM_METRICS = {"ROUGE-1": "rouge1", "ROUGE-2": "rouge2", "ROUGE-L": "rougeL"}


# --- building the statistics (prefixtune score) ---


def _sacrebleu_bleu_entry(
    bleu: sacrebleu.BLEU, hyps: Sequence[str], streams: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """sacrebleu's per-segment BLEU statistics, exactly what ``bleu.corpus_score(hyps, streams)`` sums."""
    stats = bleu._extract_corpus_statistics(list(hyps), streams)
    return {
        "statistic": "sacrebleu_bleu",
        "scale": 1,
        "params": {
            "smooth_method": bleu.smooth_method,
            "smooth_value": bleu.smooth_value,
            "max_ngram_order": bleu.max_ngram_order,
            "effective_order": bleu.effective_order,
        },
        "signature": bleu.get_signature().format(),
        "stats": [[int(v) for v in row] for row in stats],
    }


def _ter_entry(stats: Sequence[TerStats], refs: Sequence[Sequence[str]]) -> dict[str, Any]:
    """``(edits, average reference length)`` per segment as exact ints ``[edits, words, references]``."""
    rows = []
    for i, ((edits, avg_len), group) in enumerate(zip(stats, refs, strict=True)):
        words = round(avg_len * len(group))
        if edits != int(edits) or words / len(group) != avg_len:
            raise RuntimeError(
                f"segment {i}: TER statistics {edits, avg_len} are not edits, words/references"
            )
        rows.append([int(edits), words, len(group)])
    return {"statistic": "ter", "scale": 1, "stats": rows}


def _mean_entry(values: Sequence[float], scale: float) -> dict[str, Any]:
    return {"statistic": "mean", "scale": scale, "stats": [[float(v)] for v in values]}


def e2e_segments(
    hyps: Sequence[str], refs: Sequence[Sequence[str]], coco_segments: Mapping[str, Sequence[float]]
) -> dict[str, Any]:
    """E2E: BLEU (``-p``) and, where the coco metrics ran, ROUGE-L (``coco_segments`` of
    :func:`e2e.score_e2e_detailed`)."""
    hyps, refs = e2e.clean_inputs(hyps, refs)
    metrics = {
        "BLEU": {
            "statistic": "e2e_pymteval_bleu",
            "scale": 100,
            "columns": list(mteval.PY_BLEU_STATS),
            "stats": mteval.bleu_py_segment_stats(hyps, refs),
        }
    }
    if "ROUGE_L" in coco_segments:
        metrics["ROUGE-L"] = _mean_entry(coco_segments["ROUGE_L"], 100)
    return {"n": len(hyps), "metrics": metrics}


def webnlg_segments(
    hyps: Sequence[str], xml_path: str | Path, *, workers: int = 1, source: str = "hypotheses"
) -> dict[str, Any]:
    """WebNLG: BLEU and TER per entry once, plus the entry indices of the all/seen/unseen tracks."""
    hyp_tok, refs, tracks = webnlg.prepare_webnlg(hyps, xml_path, source=source)
    metrics = {
        "BLEU": _sacrebleu_bleu_entry(webnlg.bleu_metric(), hyp_tok, webnlg.reference_streams(refs)),
        "TER": _ter_entry(ter_segment_stats(hyp_tok, refs, workers), refs),
    }
    return {"n": len(hyp_tok), "metrics": metrics, "tracks": tracks}


def dart_segments(hyps: Sequence[str], refs: Sequence[Sequence[str]], *, workers: int = 1) -> dict[str, Any]:
    """DART: BLEU and TER per entry, on the inputs :func:`dart.score_dart` scores."""
    ter_hyps, ter_refs = dart.ter_inputs(hyps, refs)
    metrics = {
        "BLEU": _sacrebleu_bleu_entry(dart.bleu_metric(), hyps, dart.reference_streams(refs)),
        "TER": _ter_entry(ter_segment_stats(ter_hyps, ter_refs, workers), ter_refs),
    }
    return {"n": len(hyps), "metrics": metrics}


def xsum_segments(per_example: Sequence[Mapping[str, scoring.Score]]) -> dict[str, Any]:
    """XSUM: per-example ROUGE-1/2/L F (:func:`rouge.per_example`), statistic ``mean``, scale 100."""
    metrics = {
        name: _mean_entry([s[key].fmeasure for s in per_example], 100) for name, key in XSUM_METRICS.items()
    }
    return {"n": len(per_example), "metrics": metrics}


# --- scoring from the statistics (prefixtune.claims.bootstrap) ---


def _sacrebleu_bleu(entry: Mapping[str, Any]) -> sacrebleu.BLEU:
    return sacrebleu.BLEU(tokenize="none", force=True, **entry["params"])


def full_score(entry: Mapping[str, Any], items: Sequence[int]) -> float:
    """The official value (report scale) on the rows ``items``, in the scorer's order and arithmetic."""
    rows = [entry["stats"][i] for i in items]
    statistic, scale = entry["statistic"], entry["scale"]
    if statistic == "e2e_pymteval_bleu":
        value = mteval.bleu_py_from_stats([sum(col) for col in zip(*rows, strict=True)])
    elif statistic == "sacrebleu_bleu":
        value = _sacrebleu_bleu(entry)._compute_score_from_stats(sum_of_lists(rows)).score
    elif statistic == "ter":
        value = ter_from_stats([(edits, words / n_refs) for edits, words, n_refs in rows])
    elif statistic == "mean":
        value = float(np.mean(np.array([row[0] for row in rows], dtype=np.float64)))
    else:
        raise ValueError(f"unknown segment statistic {statistic!r}")
    return value * scale


def resampled_scores(entry: Mapping[str, Any], items: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The metric on each resample: ``counts[r, j]`` = how often item ``items[j]`` was drawn in resample r."""
    statistic, scale = entry["statistic"], entry["scale"]
    if statistic in ("e2e_pymteval_bleu", "sacrebleu_bleu"):
        stats = np.asarray(entry["stats"], dtype=np.int64)[items]
        totals = (counts @ stats).tolist()  # exact integer sums
        if statistic == "e2e_pymteval_bleu":
            values = [mteval.bleu_py_from_stats(t) for t in totals]
        else:
            bleu = _sacrebleu_bleu(entry)
            values = [bleu._compute_score_from_stats(t).score for t in totals]
        return np.asarray(values, dtype=np.float64) * scale
    if statistic == "ter":
        stats = np.asarray(entry["stats"], dtype=np.float64)[items]
        edits = counts @ stats[:, 0]
        ref_len = counts @ (stats[:, 1] / stats[:, 2])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(ref_len > 0, edits / ref_len, np.where(edits > 0, 1.0, 0.0))
        return ratio * scale
    if statistic == "mean":
        values = np.asarray(entry["stats"], dtype=np.float64)[items, 0]
        return (counts @ values) / len(items) * scale
    raise ValueError(f"unknown segment statistic {statistic!r}")


# --- writing ---


def format_scores_json(result: Mapping[str, Any]) -> str:
    """The scores file as JSON (indent 2), each ``stats`` and ``tracks`` list of ``segments`` on one line."""
    segs = result.get("segments")
    if not segs:
        return json.dumps(result, indent=2) + "\n"
    compact: dict[str, str] = {}

    def placeholder(value: Any) -> str:  # noqa: ANN401
        key = f"@@segments-{len(compact)}@@"
        compact[key] = json.dumps(value, separators=(",", ":"), allow_nan=False)
        return key

    shown = {
        **segs,
        "metrics": {
            name: {**entry, "stats": placeholder(entry["stats"])} for name, entry in segs["metrics"].items()
        },
    }
    if "tracks" in segs:
        shown["tracks"] = {name: placeholder(idx) for name, idx in segs["tracks"].items()}
    text = json.dumps({**result, "segments": shown}, indent=2)
    for key, value in compact.items():
        text = text.replace(f'"{key}"', value, 1)
    return text + "\n"


def summary(segs: Mapping[str, Any]) -> dict[str, Any]:
    """What a log shows of ``segments``: the number of items, the statistic per metric, the track sizes."""
    out: dict[str, Any] = {
        "n": segs["n"],
        "metrics": {name: entry["statistic"] for name, entry in segs["metrics"].items()},
    }
    if "tracks" in segs:
        out["tracks"] = {name: len(idx) for name, idx in segs["tracks"].items()}
    return out
