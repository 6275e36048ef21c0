"""sacrebleu 2.6.0's TER (``sacrebleu.metrics.lib_ter``), re-written step for step as numba kernels.

sacrebleu's pure-Python TER spends minutes on a test set; this module runs the same algorithm on integer word
ids, compiled, and gives the same edit counts (tests/test_ter_compiled.py checks against ``sacrebleu.TER()``
on random and real segments). Replicated exactly, because TER's shift search is a heuristic whose result
depends on every detail: the beam-banded edit distance (pseudo-diagonal band, widened for very unequal
lengths, full last row, ``int(1e16)`` outside the band, preference sub/no-op > deletion > insertion with
strict comparisons), the trace and the alignment read from it, the order of the shift pairs and their
limits, the skip rules, the ``prev_idx`` de-duplication, the ranking ``(gain, length, -start_h, -idx)``
(first candidate kept on a full tie), the three shift cases and the cap of 1000 candidates per segment.

One deliberate difference, in work only: sacrebleu caches edit-distance rows in a trie keyed by hypothesis
prefixes. Row i depends only on the first i hypothesis words and on the hypothesis length (fixed, since shifts
permute), so a candidate's distance is computed here from the current hypothesis' matrix, starting at the
first position where the candidate differs from it: the same numbers, without the trie.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sacrebleu
from numba import njit

# sacrebleu.metrics.lib_ter's constants
_MAX_SHIFT_SIZE = 10
_MAX_SHIFT_DIST = 50
_BEAM_WIDTH = 25
_MAX_SHIFT_CANDIDATES = 1000
_INT_INFINITY = 10**16

# edit operations of the hypothesis -> reference matrix (sacrebleu's ' ', 's', 'i', 'd', 'x')
_OP_NOP = 0
_OP_SUB = 1
_OP_INS = 2  # consumes a reference word
_OP_DEL = 3  # consumes a hypothesis word
_OP_UNDEF = 4

_TER = sacrebleu.TER()  # defaults: lowercased, tercom tokenizer without normalisation or punctuation removal


@njit(cache=True)
def _beam(n_h: int, n_r: int) -> tuple[float, int]:
    """Length ratio and beam width of ``BeamEditDistance._edit_distance``."""
    ratio = n_r / n_h if n_h > 0 else 1.0
    beam = _BEAM_WIDTH
    if _BEAM_WIDTH < ratio / 2:
        beam = int(np.ceil(ratio / 2 + _BEAM_WIDTH))
    return ratio, beam


@njit(cache=True)
def _fill_row(
    i: int,
    word: int,
    words_r: np.ndarray,
    prev: np.ndarray,
    cur: np.ndarray,
    ops: np.ndarray,
    track: bool,
    n_h: int,
    ratio: float,
    beam: int,
) -> None:
    """Row i of the banded edit distance (``ops`` written only when ``track``); cells off the band stay INF."""
    n_r = words_r.shape[0]
    cur[:] = _INT_INFINITY
    if track:
        ops[:] = _OP_UNDEF
    pseudo_diag = int(np.floor(i * ratio))
    min_j = max(0, pseudo_diag - beam)
    max_j = min(n_r + 1, pseudo_diag + beam)
    if i == n_h:
        max_j = n_r + 1
    for j in range(min_j, max_j):
        if j == 0:
            cur[0] = prev[0] + 1
            if track:
                ops[0] = _OP_DEL
            continue
        best = cur[j]
        op = _OP_UNDEF
        if word == words_r[j - 1]:
            cost = prev[j - 1]
            op_sub = _OP_NOP
        else:
            cost = prev[j - 1] + 1
            op_sub = _OP_SUB
        if best > cost:
            best = cost
            op = op_sub
        cost = prev[j] + 1
        if best > cost:
            best = cost
            op = _OP_DEL
        cost = cur[j - 1] + 1
        if best > cost:
            best = cost
            op = _OP_INS
        cur[j] = best
        if track and op != _OP_UNDEF:
            ops[j] = op


@njit(cache=True)
def _full_matrix(words_h: np.ndarray, words_r: np.ndarray, cost: np.ndarray, ops: np.ndarray) -> int:
    """Fill the whole matrix (costs and operations) for ``words_h``; returns the edit distance."""
    n_h = words_h.shape[0]
    n_r = words_r.shape[0]
    ratio, beam = _beam(n_h, n_r)
    for j in range(n_r + 1):
        cost[0, j] = j
        ops[0, j] = _OP_INS
    for i in range(1, n_h + 1):
        _fill_row(i, words_h[i - 1], words_r, cost[i - 1], cost[i], ops[i], True, n_h, ratio, beam)
    return cost[n_h, n_r]


@njit(cache=True)
def _suffix_distance(
    words_h: np.ndarray,
    first: int,
    words_r: np.ndarray,
    cost: np.ndarray,
    row_a: np.ndarray,
    row_b: np.ndarray,
    dummy_ops: np.ndarray,
) -> int:
    """Edit distance of ``words_h``, whose first ``first`` words equal those of the matrix in ``cost``."""
    n_h = words_h.shape[0]
    n_r = words_r.shape[0]
    if first >= n_h:
        return cost[n_h, n_r]
    ratio, beam = _beam(n_h, n_r)
    prev = cost[first]
    for i in range(first + 1, n_h + 1):
        cur = row_a if (i - first) % 2 == 1 else row_b
        _fill_row(i, words_h[i - 1], words_r, prev, cur, dummy_ops, False, n_h, ratio, beam)
        prev = cur
    return prev[n_r]


@njit(cache=True)
def _alignment(
    ops: np.ndarray, n_h: int, n_r: int, align: np.ndarray, hyp_err: np.ndarray, ref_err: np.ndarray
) -> None:
    """The trace back from the corner, flipped, read as ``trace_to_alignment`` does."""
    trace = np.empty(n_h + n_r, dtype=np.int8)
    k = 0
    i = n_h
    j = n_r
    while i > 0 or j > 0:
        op = ops[i, j]
        trace[k] = op
        k += 1
        if op == _OP_SUB or op == _OP_NOP:
            i -= 1
            j -= 1
        elif op == _OP_INS:
            j -= 1
        elif op == _OP_DEL:
            i -= 1
        else:
            raise ValueError("TER: undefined operation in the edit trace")
    pos_h = -1
    pos_r = -1
    for t in range(k - 1, -1, -1):
        op = trace[t]
        if op == _OP_NOP or op == _OP_SUB:
            err = 1 if op == _OP_SUB else 0
            pos_h += 1
            pos_r += 1
            align[pos_r] = pos_h
            hyp_err[pos_h] = err
            ref_err[pos_r] = err
        elif op == _OP_DEL:  # flipped to an insertion: a hypothesis word without a reference word
            pos_h += 1
            hyp_err[pos_h] = 1
        else:  # _OP_INS, flipped to a deletion: a reference word without a hypothesis word
            pos_r += 1
            align[pos_r] = pos_h
            ref_err[pos_r] = 1


@njit(cache=True)
def _copy_slice(src: np.ndarray, lo: int, hi: int, dst: np.ndarray, k: int) -> int:
    """Append ``src[lo:hi]`` (Python slice semantics, non-negative bounds) to ``dst`` at ``k``."""
    n = src.shape[0]
    lo = min(lo, n)
    hi = min(hi, n)
    for t in range(lo, hi):
        dst[k] = src[t]
        k += 1
    return k


@njit(cache=True)
def _perform_shift(words: np.ndarray, start: int, length: int, target: int, out: np.ndarray) -> None:
    """``lib_ter._perform_shift``'s three cases, into ``out``."""
    n = words.shape[0]
    if target < start:
        k = _copy_slice(words, 0, target, out, 0)
        k = _copy_slice(words, start, start + length, out, k)
        k = _copy_slice(words, target, start, out, k)
        k = _copy_slice(words, start + length, n, out, k)
    elif target > start + length:
        k = _copy_slice(words, 0, start, out, 0)
        k = _copy_slice(words, start + length, target, out, k)
        k = _copy_slice(words, start, start + length, out, k)
        k = _copy_slice(words, target, n, out, k)
    else:
        k = _copy_slice(words, 0, start, out, 0)
        k = _copy_slice(words, start + length, length + target, out, k)
        k = _copy_slice(words, start, start + length, out, k)
        k = _copy_slice(words, length + target, n, out, k)
    if k != n:
        raise ValueError("TER: a shift changed the hypothesis length")


@njit(cache=True)
def _shift(
    words_h: np.ndarray,
    words_r: np.ndarray,
    checked: int,
    cost: np.ndarray,
    ops: np.ndarray,
    row_a: np.ndarray,
    row_b: np.ndarray,
    best_words: np.ndarray,
) -> tuple[int, int, int, bool]:
    """``lib_ter._shift``: (edit distance of ``words_h``, gain of the best shift, candidates checked, found).

    The best shifted hypothesis is written to ``best_words`` when found.
    """
    n_h = words_h.shape[0]
    n_r = words_r.shape[0]
    pre_score = _full_matrix(words_h, words_r, cost, ops)
    align = np.empty(n_r, dtype=np.int64)
    hyp_err = np.zeros(n_h, dtype=np.int64)
    ref_err = np.zeros(n_r, dtype=np.int64)
    _alignment(ops, n_h, n_r, align, hyp_err, ref_err)
    dummy_ops = np.empty(0, dtype=np.int8)
    shifted = np.empty(n_h, dtype=words_h.dtype)

    found = False
    best_score = 0
    best_length = 0
    best_neg_start = 0
    best_neg_idx = 0
    stop = False
    # _find_shifted_pairs, inlined: every (start_h, start_r, length) prefix of a match, in its order
    for start_h in range(n_h):
        if stop:
            break
        for start_r in range(n_r):
            if abs(start_r - start_h) > _MAX_SHIFT_DIST:
                continue
            length = 0
            while length < _MAX_SHIFT_SIZE and words_h[start_h + length] == words_r[start_r + length]:
                length += 1
                # --- the body of _shift's loop for this pair ---
                considered = True
                if hyp_err[start_h : start_h + length].sum() == 0:
                    considered = False
                elif ref_err[start_r : start_r + length].sum() == 0:
                    considered = False
                elif start_h <= align[start_r] < start_h + length:
                    considered = False
                if considered:
                    prev_idx = -1
                    for offset in range(-1, length):
                        pos = start_r + offset
                        if pos == -1:
                            idx = 0
                        elif pos < n_r:
                            idx = align[pos] + 1
                        else:
                            break
                        if idx == prev_idx:
                            continue
                        prev_idx = idx
                        _perform_shift(words_h, start_h, length, idx, shifted)
                        first = 0
                        while first < n_h and shifted[first] == words_h[first]:
                            first += 1
                        score = pre_score - _suffix_distance(
                            shifted, first, words_r, cost, row_a, row_b, dummy_ops
                        )
                        checked += 1
                        better = not found
                        if found:
                            if score != best_score:
                                better = score > best_score
                            elif length != best_length:
                                better = length > best_length
                            elif -start_h != best_neg_start:
                                better = -start_h > best_neg_start
                            else:
                                # a full tie means the same shifted words: the first one stays
                                better = -idx > best_neg_idx
                        if better:
                            found = True
                            best_score = score
                            best_length = length
                            best_neg_start = -start_h
                            best_neg_idx = -idx
                            best_words[:] = shifted
                    if checked >= _MAX_SHIFT_CANDIDATES:
                        stop = True
                        break
                # --- back in the generator: stop when one sequence is consumed ---
                if n_h == start_h + length or n_r == start_r + length:
                    break
            if stop:
                break
    return pre_score, best_score, checked, found


@njit(cache=True)
def _translation_edit_rate(words_hyp: np.ndarray, words_ref: np.ndarray) -> int:
    """``lib_ter.translation_edit_rate``'s number of edits (shifts + final edit distance)."""
    n_h = words_hyp.shape[0]
    n_r = words_ref.shape[0]
    if n_r == 0:
        return n_h
    cost = np.empty((n_h + 1, n_r + 1), dtype=np.int64)
    ops = np.empty((n_h + 1, n_r + 1), dtype=np.int8)
    row_a = np.empty(n_r + 1, dtype=np.int64)
    row_b = np.empty(n_r + 1, dtype=np.int64)
    words = words_hyp.copy()
    best_words = np.empty(n_h, dtype=words_hyp.dtype)
    shifts = 0
    checked = 0
    while True:
        edit_distance, delta, checked, found = _shift(
            words, words_ref, checked, cost, ops, row_a, row_b, best_words
        )
        # sacrebleu's final edit distance is that of ``words`` as they stand, which _shift has just computed
        if checked >= _MAX_SHIFT_CANDIDATES:
            break
        if not found or delta <= 0:
            break
        shifts += 1
        words[:] = best_words
    return shifts + edit_distance


def translation_edit_rate(words_hyp: Sequence[str], words_ref: Sequence[str]) -> int:
    """Edits of ``words_hyp`` against ``words_ref`` (already tokenized), as ``lib_ter.translation_edit_rate``."""
    vocab: dict[str, int] = {}
    hyp = np.array([vocab.setdefault(w, len(vocab)) for w in words_hyp], dtype=np.int64)
    ref = np.array([vocab.setdefault(w, len(vocab)) for w in words_ref], dtype=np.int64)
    return int(_translation_edit_rate(hyp, ref))


def segment_stats(hyp: str, refs: Sequence[str]) -> tuple[float, float]:
    """(fewest edits over the references, average reference length), as ``sacrebleu.TER().sentence_score``."""
    if not refs:
        raise ValueError("TER needs at least one reference")
    # sacrebleu preprocesses a hypothesis once and each reference twice (in _cache_references, then in
    # _extract_reference_info); repeated here so that even a non-idempotent lowercasing could not differ
    hyp_words = _TER._preprocess_segment(hyp).split()
    ref_words = [_TER._preprocess_segment(_TER._preprocess_segment(ref)).split() for ref in refs]
    vocab: dict[str, int] = {}
    hyp_ids = np.array([vocab.setdefault(w, len(vocab)) for w in hyp_words], dtype=np.int64)
    best = _INT_INFINITY
    ref_lengths = 0
    for words in ref_words:
        ref_ids = np.array([vocab.setdefault(w, len(vocab)) for w in words], dtype=np.int64)
        edits = int(_translation_edit_rate(hyp_ids, ref_ids))
        ref_lengths += len(words)
        best = min(best, edits)
    return float(best), ref_lengths / len(ref_words)
