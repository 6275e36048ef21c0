"""``prefixtune score``: one entry point for the official protocols (table-to-text and XSUM), on files."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from prefixtune.metrics import dart, e2e, rouge, segments, webnlg
from prefixtune.metrics.meteor_jar import JAR_NAME, java_executable

DATASETS = ("e2e", "webnlg", "dart", "xsum")
SCALES = {
    "e2e": "all fractions as e2e-metrics prints them (BLEU, BLEU_perl, METEOR, ROUGE_L in 0-1; NIST, "
    "NIST_perl unbounded; CIDEr 0-10); papers report BLEU/METEOR/ROUGE_L x100",
    "webnlg": "BLEU 0-100 (multi-bleu.perl); METEOR and TER fractions 0-1 (TER lower is better)",
    "dart": "BLEU 0-100 (multi-bleu.perl); METEOR and TER fractions 0-1 (TER lower is better); MoverScore, "
    "BERTScore (F1) fractions 0-1 and BLEURT (a regression score, about -1..1) when --model-metrics is given",
    "xsum": "ROUGE-1/2/L F-measure x100",
}
PROTOCOLS = {
    "e2e": "tuetschek/e2e-metrics measure_scores.py: BLEU/NIST = -p (metrics/pymteval.py, as Prefix-Tuning "
    "ran it), BLEU_perl/NIST_perl = mteval-v13a-sig.pl; METEOR/ROUGE_L/CIDEr = coco-caption "
    "(pycocoevalcap 1.2)",
    "webnlg": "WebNLG 2017 challenge evaluation.py preprocessing; BLEU = multi-bleu.perl -lc (sacrebleu), "
    "METEOR = official jar -l en -norm -r 3, TER = tercom 0.7.25 (sacrebleu TER); tracks all/seen/unseen",
    "dart": "Yale-LILY/dart run_eval_on_dart.sh: BLEU = multi-bleu.perl (sacrebleu), METEOR = official jar "
    "-l en -norm -r 8, TER = tercom 0.7.25 (sacrebleu TER); hypotheses scored as given",
    "xsum": "Prefix-Tuning seq2seq: rouge-score RougeScorer(rouge1, rouge2, rougeL, use_stemmer=True); corpus_mean = "
    "mean over examples, batch_bootstrap = mean over batches of 8 of BootstrapAggregator mid (seeded)",
}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _java_version() -> str:
    try:
        proc = subprocess.run([java_executable(), "-version"], capture_output=True, text=True, check=False)
    except (OSError, RuntimeError) as err:
        return f"unavailable ({err})"
    lines = (proc.stderr or proc.stdout).strip().splitlines()
    return lines[0] if lines else "unknown"


def tool_versions(dataset: str) -> dict[str, str]:
    """Versions and binaries behind a dataset's numbers (recorded next to the scores)."""
    if dataset == "xsum":
        return {
            "protocol": PROTOCOLS[dataset],
            "rouge-score": _version("rouge-score"),
            "nltk": _version("nltk"),
        }
    tools = {
        "protocol": PROTOCOLS[dataset],
        "sacrebleu": _version("sacrebleu"),
        "pycocoevalcap": _version("pycocoevalcap"),
        "java": _java_version(),
    }
    if dataset == "e2e":
        tools["jars"] = (
            "pycocoevalcap meteor/meteor-1.5.jar (coco build), tokenizer/stanford-corenlp-3.4.1.jar"
        )
    else:
        tools["jars"] = (
            f"pycocoevalcap spice/lib/{JAR_NAME} (official METEOR 1.5) + meteor/data/paraphrase-en.gz"
        )
    if dataset == "webnlg":
        tools["Unidecode"] = _version("Unidecode")
        tools["natsort"] = _version("natsort")
    return tools


def check_hypothesis_file(path: str | Path) -> None:
    """A hypothesis file exists and holds at least one output line (an empty file is an unfinished decode)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: hypothesis file not found")
    if path.stat().st_size == 0:
        raise ValueError(
            f"{path}: empty hypothesis file (0 outputs); expected one output per line, one line per test "
            "instance (did decoding finish?)"
        )


def score_files(
    dataset: str,
    hyp_path: str | Path,
    refs_path: str | Path,
    *,
    workers: int = 1,
    reference_tokenizer: str | Path | None = None,
    reference_max_tokens: int = 100,
    model_metrics: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Score a hypothesis file (one output per line) against the dataset's references.

    ``refs_path``: E2E grouped references (plain text or MR,ref CSV); WebNLG challenge XML; DART folder of
    ``.lex`` files or the DART test XML; XSUM one reference per line (prepare's ``test.refs.txt``).
    ``workers``: processes for TER (WebNLG, DART).
    ``model_metrics`` (DART only): ``{"moverscore": {...}, "bertscore": {...}, "bleurt": {...}}``, each optional
    (:mod:`prefixtune.metrics.dart_model_metrics`); a metric whose model cannot be loaded is left out of
    ``metrics`` and its reason recorded under ``unavailable``.
    ``segments``: per-segment statistics of the metrics that have them (:mod:`prefixtune.metrics.segments`).
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}")
    model_spec: dict[str, dict[str, Any]] = {}
    if model_metrics:  # torch/transformers are imported only when asked for
        if dataset != "dart":
            raise ValueError(f"model-based metrics are part of the DART protocol only, not {dataset}")
        from prefixtune.metrics import dart_model_metrics

        model_spec = dart_model_metrics.validate_spec(model_metrics)
    check_hypothesis_file(hyp_path)
    metrics: dict[str, Any]
    if dataset == "xsum":  # empty outputs are legal here (scored 0)
        xsum_hyps, xsum_refs, extra = rouge.read_xsum_files(
            hyp_path, refs_path, reference_tokenizer, reference_max_tokens
        )
        per_example = rouge.per_example(xsum_hyps, xsum_refs)
        return {
            "dataset": dataset,
            "n_hypotheses": len(xsum_hyps),
            "metrics": {**rouge.aggregate_xsum(per_example), **extra},
            "scales": SCALES[dataset],
            "tools": tool_versions(dataset),
            "segments": segments.xsum_segments(per_example),
        }
    hyps = e2e.read_hypotheses(hyp_path)
    if dataset == "e2e":
        e2e_hyps, e2e_refs = e2e.read_e2e_files(hyp_path, refs_path)
        metrics, coco_segments = e2e.score_e2e_detailed(e2e_hyps, e2e_refs)
        segs = segments.e2e_segments(e2e_hyps, e2e_refs, coco_segments)
    elif dataset == "webnlg":
        metrics = webnlg.score_webnlg(hyps, refs_path, workers=workers, source=str(hyp_path))
        segs = segments.webnlg_segments(hyps, refs_path, workers=workers, source=str(hyp_path))
    else:
        refs = dart.load_dart_references(refs_path)
        if len(hyps) != len(refs):
            raise ValueError(
                f"{hyp_path} has {len(hyps)} outputs but {refs_path} has {len(refs)} reference entries"
            )
        metrics = dart.score_dart(hyps, refs, workers=workers)
        segs = segments.dart_segments(hyps, refs, workers=workers)
    result: dict[str, Any] = {"dataset": dataset, "n_hypotheses": len(hyps), "metrics": metrics}
    tools = tool_versions(dataset)
    if model_spec:
        from prefixtune.metrics import dart_model_metrics

        extra = dart_model_metrics.score_dart_model_metrics(hyps, refs, model_spec)
        metrics.update(extra.metrics)
        if extra.unavailable:
            result["unavailable"] = extra.unavailable
        tools["model_metrics"] = extra.models
        tools.update({name: _version(name) for name in ("torch", "transformers", "pyemd")})
    return {**result, "scales": SCALES[dataset], "tools": tools, "segments": segs}
