"""METEOR, ROUGE_L and CIDEr as e2e-metrics computes them (its bundled coco-caption = ``pycocoevalcap==1.2``).

``measure_scores.py`` puts the references and outputs into MS-COCO structures keyed ``inst-0``, ``inst-1``...,
then ``COCOEvalCap`` tokenizes the references and the outputs in two separate batches (Stanford PTBTokenizer
3.4.1, ``-preserveLines -lowerCase``, punctuation tokens dropped) and runs the coco METEOR build
(``-stdio -l en -norm``, corpus score from aggregated statistics), ROUGE_L (LCS, beta 1.2) and CIDEr-D.
Every line is ``strip()``-ed first, as the script's file reader does.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence

from prefixtune.metrics.meteor_jar import java_executable

# Characters the Java tokenizer treats as line ends: inside one text they would shift every later line.
# The official reader cannot produce them inside a line (it splits lines on them), so spaces are safe.
_JAVA_LINE_BREAKS = re.compile("[\r\n\u000b\u000c\u0085\u2028\u2029]")


def _clean(text: str) -> str:
    return _JAVA_LINE_BREAKS.sub(" ", text).strip()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop pycocoevalcap's METEOR JVM now, not at garbage collection (its ``__del__`` is then a no-op)."""
    if proc.stdin is not None:
        proc.stdin.close()
    proc.kill()
    proc.wait()


def coco_scores_detailed(
    hyps: Sequence[str], refs: Sequence[Sequence[str]]
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Corpus and per-segment METEOR, ROUGE_L, CIDEr (fractions; CIDEr 0-10) as e2e-metrics reports them."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference groups")
    if any(len(group) == 0 for group in refs):
        raise ValueError("every instance needs at least one reference")
    java_executable()  # clear error before pycocoevalcap fails on a missing `java`
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    keys = [f"inst-{i}" for i in range(len(hyps))]
    gts = {k: [{"caption": _clean(r)} for r in group] for k, group in zip(keys, refs)}
    res = {k: [{"caption": _clean(h)}] for k, h in zip(keys, hyps)}
    tokenizer = PTBTokenizer()
    gts_tok = tokenizer.tokenize(gts)
    res_tok = tokenizer.tokenize(res)
    if list(gts_tok) != keys or list(res_tok) != keys:
        raise RuntimeError("PTB tokenization lost instances")

    corpus: dict[str, float] = {}
    segments: dict[str, list[float]] = {}
    meteor = Meteor()
    try:
        scorers = [("METEOR", meteor), ("ROUGE_L", Rouge()), ("CIDEr", Cider())]
        for name, scorer in scorers:
            score, per_segment = scorer.compute_score(gts_tok, res_tok)
            corpus[name] = float(score)
            segments[name] = [float(s) for s in per_segment]
    finally:
        _stop(meteor.meteor_p)
    return corpus, segments


def coco_scores(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> dict[str, float]:
    """Corpus METEOR, ROUGE_L, CIDEr exactly as e2e-metrics ``measure_scores.py`` (full precision)."""
    return coco_scores_detailed(hyps, refs)[0]
