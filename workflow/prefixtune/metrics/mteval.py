"""BLEU and NIST as the E2E challenge scores them (tuetschek/e2e-metrics ``measure_scores.py``), two variants.

* ``-p`` variant (``metrics/pymteval.py``; what Prefix-Tuning ran, ``measure_scores.py gold pred -p -t -H``):
  :func:`bleu_nist_py`. Quirks kept on purpose: tokens are lower-cased only inside n-gram extraction, an empty
  output is one empty token, candidate n-gram totals add ``len - n + 1`` even when negative, no mteval
  smoothing (hits floored at 1e-15, totals at 1e-9), and the NIST length penalty uses the sum over segments
  of the per-segment average reference length.
* Perl ``mteval-v13a-sig.pl`` variant (the challenge default): :func:`bleu_perl` (sacrebleu on text tokenized
  by :func:`tokenize_13a`) and :func:`nist_perl` (own port, with tuetschek's variable-number-of-references
  length penalty).

Own implementation of the rules in shared/reference/evaluation.md §2.2-2.3 (no third-party code copied).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import sacrebleu

BLEU_ORDER = 4
NIST_ORDER = 5
# NIST length penalty: a system 1.5x shorter than the references loses half its score.
NIST_BETA = -math.log(0.5) / math.log(1.5) ** 2

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# mteval-v13a (non-international): space out { | } ~ [ \ ] ^ _ ` space ! " # $ % & ( ) * + : ; < = > ? @ /
_PUNCT = re.compile(r"([{-~\[-` -&(-+:-@/])")
_PERIOD_COMMA_AFTER_NONDIGIT = re.compile(r"([^0-9])([.,])")
_PERIOD_COMMA_BEFORE_NONDIGIT = re.compile(r"([.,])([^0-9])")
_DASH_AFTER_DIGIT = re.compile(r"([0-9])(-)")
_SPACES = re.compile(r"\s+")


def _normalize_13a(text: str, lowercase: bool) -> str:
    """mteval-v13a ``NormalizeText``; the Perl script lower-cases ASCII A-Z only (``tr/[A-Z]/[a-z]/``)."""
    text = text.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    text = text.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    text = f" {text} "
    if lowercase:
        text = text.translate(_ASCII_LOWER)
    text = _PUNCT.sub(r" \1 ", text)
    text = _PERIOD_COMMA_AFTER_NONDIGIT.sub(r"\1 \2 ", text)
    text = _PERIOD_COMMA_BEFORE_NONDIGIT.sub(r" \1 \2", text)
    text = _DASH_AFTER_DIGIT.sub(r"\1 \2 ", text)
    return _SPACES.sub(" ", text).strip()


def tokenize_13a(text: str, lowercase: bool = True) -> str:
    """The mteval-v13a tokenizer as the E2E Perl scorer runs it: a space-joined token string.

    ``doesn't`` stays one token (no split at ``'``), ``-`` is split only after a digit, ``.``/``,`` only
    when not between digits; non-ASCII characters (``£``, ``é``) stay attached to their word.
    """
    return _normalize_13a(text, lowercase)


def tokenize_pymteval(text: str) -> list[str]:
    """The ``-p`` tokenizer: same rules, case kept; ``"".split(" ")`` makes an empty text one empty token."""
    return _normalize_13a(text, lowercase=False).split(" ")


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _max_ref_counts(refs: Sequence[Sequence[str]], n: int) -> Counter[tuple[str, ...]]:
    merged: Counter[tuple[str, ...]] = Counter()
    for ref in refs:
        merged |= _ngrams(ref, n)  # element-wise max
    return merged


def _clipped(hyp: Counter[tuple[str, ...]], refs_max: Counter[tuple[str, ...]]) -> dict[tuple[str, ...], int]:
    return {g: min(c, refs_max[g]) for g, c in hyp.items() if refs_max.get(g, 0) > 0}


def _check(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference groups")
    for i, group in enumerate(refs):
        if len(group) == 0:
            raise ValueError(f"instance {i} has no reference")


def _nist_length_penalty(ratio: float) -> float:
    if ratio >= 1:
        return 1.0
    if ratio <= 0:
        return 0.0
    return math.exp(-NIST_BETA * math.log(ratio) ** 2)


def _nist_info(
    ref_counts: list[Counter[tuple[str, ...]]], total_ref_words: int, gram: tuple[str, ...]
) -> float:
    """``log2(count(w1..wn-1) / count(w1..wn))`` over all reference n-grams of the test set."""
    prefix = ref_counts[len(gram) - 2][gram[:-1]] if len(gram) > 1 else total_ref_words
    return math.log2(prefix / ref_counts[len(gram) - 1][gram])


# one segment's BLEU statistics in the ``-p`` variant: clipped hits for n = 1..4, hypothesis n-gram counts
# (``len - n + 1``, negative for short outputs) for n = 1..4, closest reference length (ties to the shorter)
PY_BLEU_STATS = (
    *(f"hits_{n}" for n in range(1, BLEU_ORDER + 1)),
    *(f"ngrams_{n}" for n in range(1, BLEU_ORDER + 1)),
    "ref_len",
)


def _py_segment(
    hyp_text: str, ref_texts: Sequence[str], max_order: int
) -> tuple[list[str], list[list[str]], list[list[str]], list[dict[tuple[str, ...], int]]]:
    """Tokens (case kept), lower-cased reference tokens and clipped n-gram counts (n = 1..max_order)."""
    hyp = tokenize_pymteval(hyp_text)
    ref_toks = [tokenize_pymteval(r) for r in ref_texts]
    hyp_low = [t.lower() for t in hyp]
    refs_low = [[t.lower() for t in r] for r in ref_toks]
    clipped = [_clipped(_ngrams(hyp_low, n), _max_ref_counts(refs_low, n)) for n in range(1, max_order + 1)]
    return hyp, ref_toks, refs_low, clipped


def _py_bleu_stats(
    hyp: Sequence[str], ref_toks: Sequence[Sequence[str]], clipped: Sequence[dict[tuple[str, ...], int]]
) -> list[int]:
    """One segment's ``PY_BLEU_STATS`` (the only place they are computed)."""
    hits = [sum(clipped[n].values()) for n in range(BLEU_ORDER)]
    ngrams = [len(hyp) - n for n in range(BLEU_ORDER)]  # may be negative for short outputs (kept on purpose)
    ref_len = min((abs(len(r) - len(hyp)), len(r)) for r in ref_toks)[1]  # closest, ties to the shorter
    return [*hits, *ngrams, ref_len]


def bleu_py_from_stats(totals: Sequence[int]) -> float:
    """Corpus BLEU (fraction) of the ``-p`` variant from ``PY_BLEU_STATS`` summed over segments."""
    hits = [int(v) for v in totals[:BLEU_ORDER]]
    cand_lens = [int(v) for v in totals[BLEU_ORDER : 2 * BLEU_ORDER]]
    bleu_ref_len = int(totals[2 * BLEU_ORDER])
    log_sum = 0.0
    for n in range(BLEU_ORDER):
        log_sum += math.log(max(hits[n], 1e-15) / max(cand_lens[n], 1e-9))
    precision = math.exp(log_sum / BLEU_ORDER)
    brevity = 1.0
    if cand_lens[0] <= bleu_ref_len:
        brevity = math.exp(1.0 - bleu_ref_len / (cand_lens[0] if cand_lens[0] else 1e-5))
    return brevity * precision


def bleu_py_segment_stats(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> list[list[int]]:
    """Per-segment ``PY_BLEU_STATS``; :func:`bleu_py_from_stats` of their column sums is the corpus BLEU."""
    _check(hyps, refs)
    out = []
    for hyp_text, ref_texts in zip(hyps, refs):
        hyp, ref_toks, _, clipped = _py_segment(hyp_text, ref_texts, BLEU_ORDER)
        out.append(_py_bleu_stats(hyp, ref_toks, clipped))
    return out


def bleu_nist_py(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> tuple[float, float]:
    """Corpus BLEU and NIST exactly as e2e-metrics ``measure_scores.py -p`` (``metrics/pymteval.py``)."""
    _check(hyps, refs)
    bleu_totals = [0] * len(PY_BLEU_STATS)
    cand_lens = [0] * NIST_ORDER
    nist_avg_ref_len = 0.0
    ref_counts: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(NIST_ORDER)]
    total_ref_words = 0
    nist_hits: list[list[dict[tuple[str, ...], int]]] = [[] for _ in range(NIST_ORDER)]
    for hyp_text, ref_texts in zip(hyps, refs):
        hyp, ref_toks, refs_low, clipped = _py_segment(hyp_text, ref_texts, NIST_ORDER)
        bleu_totals = [t + s for t, s in zip(bleu_totals, _py_bleu_stats(hyp, ref_toks, clipped))]
        for n in range(1, NIST_ORDER + 1):
            cand_lens[n - 1] += len(hyp) - (n - 1)  # may be negative for short outputs (kept on purpose)
            nist_hits[n - 1].append(clipped[n - 1])
            for r in refs_low:
                ref_counts[n - 1].update(_ngrams(r, n))
        ref_words = sum(len(r) for r in ref_toks)
        total_ref_words += ref_words
        nist_avg_ref_len += ref_words / len(ref_toks)
    bleu = bleu_py_from_stats(bleu_totals)

    nist_sum = 0.0
    for n in range(NIST_ORDER):
        info = sum(
            _nist_info(ref_counts, total_ref_words, g) * c for seg in nist_hits[n] for g, c in seg.items()
        )
        nist_sum += info / (cand_lens[n] if cand_lens[n] != 0 else 1)
    nist = nist_sum * _nist_length_penalty(cand_lens[0] / nist_avg_ref_len)
    return bleu, nist


def _ref_streams(refs: Sequence[Sequence[str]], missing: str | None) -> list[list[str | None]]:
    """Transpose instance-major references into reference streams, padding short instances."""
    width = max(len(group) for group in refs)
    return [[group[k] if k < len(group) else missing for group in refs] for k in range(width)]


def bleu_perl(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU (fraction) as the E2E script's mteval-v13a-sig.pl: 13a tokens, ASCII lower-case, smoothing.

    Same as ``sacrebleu.BLEU(tokenize="13a", lowercase=True, smooth_method="exp")`` with missing references as
    ``None``, except that only ASCII is lower-cased, like the Perl script (``CAFÉ`` stays ``cafÉ``).
    """
    _check(hyps, refs)
    tok_hyps = [tokenize_13a(h) for h in hyps]
    tok_refs = [[tokenize_13a(r) for r in group] for group in refs]
    bleu = sacrebleu.BLEU(tokenize="none", smooth_method="exp", force=True)
    return bleu.corpus_score(tok_hyps, _ref_streams(tok_refs, None)).score / 100.0


def nist_perl(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """Corpus NIST as tuetschek's mteval-v13a-sig.pl (variable number of references per segment).

    Length penalty ratio = hypothesis words / (reference words / average number of references per segment).
    """
    _check(hyps, refs)
    tok_hyps = [tokenize_13a(h).split() for h in hyps]
    tok_refs = [[tokenize_13a(r).split() for r in group] for group in refs]
    ref_counts: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(NIST_ORDER)]
    total_ref_words = 0
    n_refs = 0
    for group in tok_refs:
        for ref in group:
            total_ref_words += len(ref)
            n_refs += 1 if ref else 0  # empty (padding) segments do not count as references
            for n in range(1, NIST_ORDER + 1):
                ref_counts[n - 1].update(_ngrams(ref, n))
    info_sum = [0.0] * NIST_ORDER
    hyp_ngrams = [0] * NIST_ORDER
    for hyp, group in zip(tok_hyps, tok_refs):
        for n in range(1, NIST_ORDER + 1):
            hyp_ngrams[n - 1] += max(len(hyp) - n + 1, 0)
            clipped = _clipped(_ngrams(hyp, n), _max_ref_counts(group, n))
            info_sum[n - 1] += sum(_nist_info(ref_counts, total_ref_words, g) * c for g, c in clipped.items())
    score = sum(info_sum[n] / max(hyp_ngrams[n], 1) for n in range(NIST_ORDER))
    avg_refs_per_segment = n_refs / len(tok_refs)
    return score * _nist_length_penalty(hyp_ngrams[0] / (total_ref_words / avg_refs_per_segment))
