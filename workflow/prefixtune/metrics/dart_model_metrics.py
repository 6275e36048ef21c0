"""DART's model-based metrics (MoverScore, BERTScore, BLEURT) from a config block, as ``run_eval_on_dart.sh`` runs
them: MoverScore and BLEURT against reference 0, BERTScore against the 3 reference lines (blank ones included).

A metric whose model cannot be loaded (no network, missing directory, unconverted checkpoint) is skipped with a
warning and its reason is returned; a malformed config block is an error before anything is scored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from prefixtune.metrics import bertscore, bleurt, moverscore
from prefixtune.metrics.model_common import MetricModelUnavailable, describe

log = logging.getLogger(__name__)

N_REFS = 3  # bert-score -r ref0 ref1 ref2
METRIC_NAMES = {"moverscore": "MoverScore", "bertscore": "BERTScore", "bleurt": "BLEURT"}
OPTIONS = {
    "moverscore": {"model", "revision", "device", "batch_size"},
    "bertscore": {"model", "layer", "revision", "device", "batch_size", "add_prefix_space"},
    "bleurt": {"checkpoint", "max_seq_length", "revision", "device", "batch_size"},
}


@dataclass
class ModelMetricScores:
    """Values (fractions, keyed as in scores.json), reasons for the skipped metrics, and what ran."""

    metrics: dict[str, float] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)


def validate_spec(spec: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Check a ``{"moverscore": {...}, "bertscore": {...}, "bleurt": {...}}`` block (each optional)."""
    if not spec:
        return {}
    unknown = set(spec) - set(METRIC_NAMES)
    if unknown:
        raise ValueError(f"unknown model metrics {sorted(unknown)}: expected some of {sorted(METRIC_NAMES)}")
    checked: dict[str, dict[str, Any]] = {}
    for name, options in spec.items():
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise ValueError(f"model metric {name}: expected a mapping of options, got {options!r}")
        extra = set(options) - OPTIONS[name]
        if extra:
            raise ValueError(
                f"model metric {name}: unknown options {sorted(extra)} (known: {sorted(OPTIONS[name])})"
            )
        checked[name] = dict(options)
    if "bleurt" in checked and not checked["bleurt"].get("checkpoint"):
        raise ValueError(
            "model metric bleurt: set `checkpoint` (a converted BLEURT checkpoint directory or hub id)"
        )
    return checked


def _reference0(refs: Sequence[Sequence[str]]) -> list[str]:
    return [group[0] if group else "" for group in refs]


def _three_lines(refs: Sequence[Sequence[str]]) -> list[list[str]]:
    """Each entry's 3 reference lines as bert-score reads them from the files: missing ones blank."""
    return [[*group, *[""] * (N_REFS - len(group))] for group in refs]


def _moverscore(
    hyps: Sequence[str], refs: Sequence[Sequence[str]], options: dict[str, Any]
) -> tuple[float, str]:
    scorer = moverscore.MoverScorer.load(
        options.get("model", moverscore.DEFAULT_MODEL),
        revision=options.get("revision"),
        device=options.get("device"),
    )
    value = scorer.corpus_score(
        _reference0(refs), list(hyps), options.get("batch_size", moverscore.BATCH_SIZE)
    )
    model = describe(scorer.source, scorer.model)
    about = (
        f"{model} (last layer), reference 0, idf from the hypotheses / reference 0, no stop words, "
        f"EMD pyemd {metadata.version('pyemd')} (C++ FastEMD)"
    )
    return value, about


def _bertscore(
    hyps: Sequence[str], refs: Sequence[Sequence[str]], options: dict[str, Any]
) -> tuple[float, str]:
    scorer = bertscore.BertScorer.load(
        options.get("model", bertscore.DEFAULT_MODEL),
        int(options.get("layer", bertscore.DEFAULT_LAYER)),
        revision=options.get("revision"),
        device=options.get("device"),
        add_prefix_space=options.get("add_prefix_space"),
    )
    value = scorer.corpus_f1(list(hyps), _three_lines(refs), options.get("batch_size", bertscore.BATCH_SIZE))
    model = describe(scorer.source, scorer.model)
    about = (
        f"{model} layer {scorer.layer}, F1, no idf, no baseline rescaling, prefix space "
        f"{scorer.add_prefix_space}, max over {N_REFS} reference lines"
    )
    return value, about


def _bleurt(hyps: Sequence[str], refs: Sequence[Sequence[str]], options: dict[str, Any]) -> tuple[float, str]:
    scorer = bleurt.BleurtScorer.load(
        options["checkpoint"],
        max_seq_length=options.get("max_seq_length"),
        revision=options.get("revision"),
        device=options.get("device"),
    )
    value = scorer.corpus_score(_reference0(refs), list(hyps), options.get("batch_size", bleurt.BATCH_SIZE))
    model = describe(scorer.source, scorer.model)
    name = f" [{scorer.name}]" if scorer.name else ""
    about = (
        f"{model}{name} (max_seq_length {scorer.max_seq_length}), reference 0, mean over lines; the DART paper "
        "used BLEURT's TensorFlow test checkpoint (convert it with `prefixtune convert-bleurt`)"
    )
    return value, about


_RUNNERS = {"moverscore": _moverscore, "bertscore": _bertscore, "bleurt": _bleurt}


def score_dart_model_metrics(
    hyps: Sequence[str], refs: Sequence[Sequence[str]], spec: Mapping[str, Any] | None
) -> ModelMetricScores:
    """Run the configured metrics on DART hypotheses (used as given) and reference groups (<= 3, ref0 first)."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference groups")
    result = ModelMetricScores()
    for name, options in validate_spec(spec).items():
        key = METRIC_NAMES[name]
        try:
            result.metrics[key], result.models[key] = _RUNNERS[name](hyps, refs, options)
        except MetricModelUnavailable as err:
            log.warning("%s not computed: %s", key, err)
            result.unavailable[key] = str(err)
    return result
