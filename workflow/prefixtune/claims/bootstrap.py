"""Paired bootstrap resampling over test items (Koehn 2004) on the scores files' segment statistics.

Each resample draws the test items with replacement (numpy ``default_rng(seed).choice``, as sacrebleu's
paired bootstrap test draws them); both systems are scored on the same draw by the official corpus formula
applied to the summed segment statistics (:mod:`prefixtune.metrics.segments`; sacrebleu's own
``_compute_score_from_stats`` for its BLEU), and the interval is the percentile interval of the resampled
differences. On the full sample the formula gives exactly the official value, and a system against itself
gives exactly [0, 0]. Differences are ``a - b`` on the report's scale, whatever the metric's direction (TER:
lower is better).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from prefixtune.metrics.segments import NO_SEGMENTS, full_score, resampled_scores
from prefixtune.report.cells import metric_spec

# resamples are drawn in blocks of at most this many item draws (memory: 8 bytes each, twice)
_BLOCK_DRAWS = 4_000_000


class MissingSegments(ValueError):
    """The scores file holds no segment statistics for that metric / track (e.g. scored before they existed)."""


@dataclass(frozen=True)
class PairedInterval:
    """``delta`` = score(a) - score(b) on the full test set; [low, high] its percentile bootstrap interval."""

    delta: float
    low: float
    high: float
    n_items: int  # test items resampled (summed over the test sets for a mean over several)
    resamples: int
    seed: int
    confidence: float
    method: str


@dataclass(frozen=True)
class _Target:
    """One metric of one scores file, restricted to a track's items."""

    dataset: str
    metric: str
    track: str | None
    entry: Mapping[str, Any]
    items: np.ndarray

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.metric}" + (f" ({self.track})" if self.track else "")


def _target(scores: Mapping[str, Any], metric: str, track: str | None) -> _Target:
    dataset = scores.get("dataset")
    if not isinstance(dataset, str):
        raise ValueError("scores file without a 'dataset' entry: not written by `prefixtune score`")
    metric_spec(dataset, metric)  # a metric name the report does not know is an error, not a missing value
    label = f"{dataset} {metric}" + (f" ({track})" if track else "")
    if metric in NO_SEGMENTS:
        raise MissingSegments(f"{label}: no per-segment statistics ({NO_SEGMENTS[metric]})")
    segs = scores.get("segments")
    if not segs:
        raise MissingSegments(
            f"{label}: the scores file has no per-segment statistics (scored before they were recorded; "
            "score the outputs again)"
        )
    entry = segs.get("metrics", {}).get(metric)
    if entry is None:
        have = ", ".join(segs.get("metrics", {})) or "none"
        raise MissingSegments(f"{label}: no per-segment statistics for this metric (recorded: {have})")
    n = int(segs["n"])
    if len(entry["stats"]) != n:
        raise ValueError(f"{label}: {len(entry['stats'])} segment statistics for n = {n} items")
    tracks = segs.get("tracks")
    if tracks:
        if track is None:
            raise ValueError(f"{label}: {dataset} is scored per track; name one of {', '.join(tracks)}")
        if track not in tracks:
            raise MissingSegments(
                f"{label}: no items recorded for track {track!r} (have {', '.join(tracks)})"
            )
        items = np.asarray(tracks[track], dtype=np.int64)
    elif track in (None, "all"):
        items = np.arange(n, dtype=np.int64)
    else:
        raise ValueError(f"{label}: {dataset} has no tracks, only the whole test set ('all')")
    if items.size == 0:
        raise MissingSegments(f"{label}: the track has no items")
    return _Target(dataset, metric, track, entry, items)


def full_sample_score(scores: Mapping[str, Any], metric: str, track: str | None = None) -> float:
    """The metric on the whole test set (or track) from the segment statistics: exactly the official value
    that :func:`prefixtune.report.cells.read_metric` returns (for XSUM its ``corpus_mean``)."""
    target = _target(scores, metric, track)
    return full_score(target.entry, target.items.tolist())


def _check_pair(a: _Target, b: _Target) -> None:
    if a.dataset != b.dataset:
        raise ValueError(f"paired bootstrap needs one test set: {a.label} against {b.label}")
    if len(a.entry["stats"]) != len(b.entry["stats"]) or not np.array_equal(a.items, b.items):
        raise ValueError(
            f"paired bootstrap needs the same test items: {a.label} has n = {len(a.entry['stats'])} "
            f"({a.items.size} in the track), the other system n = {len(b.entry['stats'])} ({b.items.size})"
        )
    same = ("statistic", "scale", "params")
    if any(a.entry.get(k) != b.entry.get(k) for k in same):
        raise ValueError(f"{a.label}: the two scores files computed the metric differently")


def _check_args(resamples: int, confidence: float) -> None:
    if not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")


def _draw_counts(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """``size`` resamples of n items: how often each item was drawn (rows: resamples)."""
    idx = rng.choice(n, size=(size, n), replace=True)
    idx += (np.arange(size, dtype=idx.dtype) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=size * n).reshape(size, n)


def _interval(deltas: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(deltas, [tail, 100 - tail])
    return float(low), float(high)


def _pair_deltas(pairs: Sequence[tuple[_Target, _Target]], resamples: int, seed: int) -> np.ndarray:
    """Resampled mean over the pairs of score(a) - score(b); each test set drawn independently per resample."""
    rng = np.random.default_rng(seed)
    block = max(1, min(resamples, _BLOCK_DRAWS // max(a.items.size for a, _ in pairs)))
    out = []
    done = 0
    while done < resamples:
        size = min(block, resamples - done)
        total = np.zeros(size)
        for a, b in pairs:
            counts = _draw_counts(rng, a.items.size, size)
            total += resampled_scores(a.entry, a.items, counts) - resampled_scores(b.entry, b.items, counts)
        out.append(total / len(pairs))
        done += size
    return np.concatenate(out)


def paired_bootstrap(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    metric: str,
    *,
    track: str | None = None,
    resamples: int = 1000,
    seed: int = 12345,
    confidence: float = 0.95,
) -> PairedInterval:
    """score(a) - score(b) of two systems on the same test set, with its paired bootstrap interval."""
    _check_args(resamples, confidence)
    ta, tb = _target(a, metric, track), _target(b, metric, track)
    _check_pair(ta, tb)
    delta = full_score(ta.entry, ta.items.tolist()) - full_score(tb.entry, tb.items.tolist())
    low, high = _interval(_pair_deltas([(ta, tb)], resamples, seed), confidence)
    return PairedInterval(
        delta=delta,
        low=low,
        high=high,
        n_items=int(ta.items.size),
        resamples=resamples,
        seed=seed,
        confidence=confidence,
        method="paired bootstrap over test items",
    )


def paired_bootstrap_mean(
    pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any], str, str | None]],
    *,
    resamples: int = 1000,
    seed: int = 12345,
    confidence: float = 0.95,
) -> PairedInterval:
    """The mean over several ``(a, b, metric, track)`` pairs of score(a) - score(b) (e.g. a BLEU gain averaged
    over E2E, WebNLG and DART), each test set resampled independently in every draw."""
    _check_args(resamples, confidence)
    if not pairs:
        raise ValueError("paired_bootstrap_mean needs at least one (a, b, metric, track) pair")
    targets = []
    for a, b, metric, track in pairs:
        ta, tb = _target(a, metric, track), _target(b, metric, track)
        _check_pair(ta, tb)
        targets.append((ta, tb))
    full = [
        full_score(ta.entry, ta.items.tolist()) - full_score(tb.entry, tb.items.tolist())
        for ta, tb in targets
    ]
    low, high = _interval(_pair_deltas(targets, resamples, seed), confidence)
    return PairedInterval(
        delta=sum(full) / len(full),
        low=low,
        high=high,
        n_items=int(sum(ta.items.size for ta, _ in targets)),
        resamples=resamples,
        seed=seed,
        confidence=confidence,
        method=f"paired bootstrap over test items, mean over {len(targets)} test sets",
    )
