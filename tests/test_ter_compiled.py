"""The compiled TER equals ``sacrebleu.TER().sentence_score`` (sacrebleu 2.6.0 defaults), edit for edit.

Random segments over tiny vocabularies make shifts, ranking ties and the 1000-candidate cap frequent; a
spy on sacrebleu's ``_shift`` proves that the cap is really reached. sacrebleu is the slow side here, so the
sizes are chosen to keep this file within about a minute on two slow cores.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import sacrebleu
from sacrebleu.metrics import lib_ter

from prefixtune.metrics import ter as ter_module
from prefixtune.metrics.ter import ter_score, ter_segment_stats
from prefixtune.metrics.ter_compiled import segment_stats, translation_edit_rate
from prefixtune.metrics.webnlg import (
    N_REFS,
    preprocess_hypothesis,
    preprocess_reference,
    read_webnlg_entries,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WEBNLG_XML = SHARED / "data_samples" / "webnlg" / "testdata_with_lex.xml"
WEBNLG_HYPS = SHARED / "metric_vectors" / "webnlg_bart_anchor" / "hypotheses.txt"

_SACREBLEU = sacrebleu.TER()


def _oracle(hyp: str, refs: list[str]) -> tuple[float, float]:
    score = _SACREBLEU.sentence_score(hyp, refs)
    return float(score.num_edits), float(score.ref_length)


def _mismatches(cases: list[tuple[str, list[str]]]) -> list[tuple[str, list[str], tuple, tuple]]:
    out = []
    for hyp, refs in cases:
        expected, got = _oracle(hyp, refs), segment_stats(hyp, refs)
        if got != expected:
            out.append((hyp, refs, expected, got))
    return out


def _random_cases(
    seed: int,
    n: int,
    vocab: tuple[int, int],
    hyp_len: tuple[int, int],
    ref_len: tuple[int, int],
    n_refs: tuple[int, int],
) -> list[tuple[str, list[str]]]:
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        # mixed case on purpose: TER lowercases, so "W1" and "w1" are the same word
        words = [w for i in range(rng.randint(*vocab)) for w in (f"w{i}", f"W{i}")]
        hyp = " ".join(rng.choice(words) for _ in range(rng.randint(*hyp_len)))
        refs = [
            " ".join(rng.choice(words) for _ in range(rng.randint(*ref_len)))
            for _ in range(rng.randint(*n_refs))
        ]
        cases.append((hyp, refs))
    return cases


@pytest.fixture
def capped(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts sacrebleu's ``_shift`` calls that reach the candidate cap (``lib_ter`` looks ``_shift`` up late)."""
    hits = [0]
    original = lib_ter._shift

    def spy(*args):
        result = original(*args)
        hits[0] += result[2] >= lib_ter._MAX_SHIFT_CANDIDATES
        return result

    monkeypatch.setattr(lib_ter, "_shift", spy)
    return hits


def test_short_random_segments_equal_sacrebleu():
    cases = _random_cases(1, 3000, (3, 8), (0, 12), (1, 12), (1, 3))
    assert _mismatches(cases)[:3] == []


def test_random_segments_up_to_40_words_equal_sacrebleu(capped):
    cases = _random_cases(2, 150, (3, 8), (0, 40), (1, 40), (1, 3))
    assert _mismatches(cases)[:3] == []
    assert capped[0] >= 1, "no case reached the 1000-candidate cap: the cap is untested"


def test_long_segments_hit_the_candidate_cap(capped):
    cases = _random_cases(3, 5, (2, 4), (60, 120), (60, 120), (1, 1))
    assert _mismatches(cases)[:3] == []
    assert capped[0] >= 3  # 4 of these 5 reach it


def test_very_unequal_lengths_widen_the_beam():
    # a length ratio over 2 * 25 widens sacrebleu's beam; without it the band rows would not overlap
    cases = _random_cases(4, 40, (2, 5), (2, 3), (160, 250), (1, 2))
    assert all(len(r.split()) / len(h.split()) > 2 * lib_ter._BEAM_WIDTH for h, refs in cases for r in refs)
    assert _mismatches(cases)[:3] == []


def test_hand_cases_equal_sacrebleu():
    cases = [
        ("", ["a b c"]),
        ("a b c", [""]),
        ("", [""]),
        ("a b c", ["", "c b a"]),
        ("The  Cat sat on the MAT .  ", ["the cat sat on the mat.", "A cat sat  on a mat ."]),
        ("a b c d e f", ["d e f a b c"]),
        ("x y z", ["x y z", "a b"]),
        ("a a a a b b b b", ["b b b b a a a a"]),
    ]
    assert _mismatches([(h, list(r)) for h, r in cases]) == []


def test_word_level_function_equals_lib_ter():
    rng = random.Random(5)
    for _ in range(300):
        hyp = [rng.choice("abcd") for _ in range(rng.randint(0, 15))]
        ref = [rng.choice("abcd") for _ in range(rng.randint(0, 15))]
        assert translation_edit_rate(hyp, ref) == lib_ter.translation_edit_rate(hyp, ref)[0], (hyp, ref)


def test_webnlg_outputs_equal_sacrebleu():
    if not (WEBNLG_XML.is_file() and WEBNLG_HYPS.is_file()):
        pytest.skip(f"../shared absent: {WEBNLG_XML} or {WEBNLG_HYPS} not found")
    entries = read_webnlg_entries(WEBNLG_XML)
    hyps = WEBNLG_HYPS.read_text(encoding="utf-8").split("\n")[:-1]
    assert len(hyps) == len(entries)
    # every 6th entry (311 of 1,862): all categories and sizes, as score_webnlg preprocesses them
    cases = [
        (preprocess_hypothesis(hyps[i]), [preprocess_reference(lex) for lex in entries[i].lexes[:N_REFS]])
        for i in range(0, len(entries), 6)
    ]
    assert sum(len(refs) > 1 for _, refs in cases) > 100  # several references: the fewest edits is taken
    assert _mismatches(cases)[:3] == []


def test_public_api_and_workers(monkeypatch):
    cases = _random_cases(6, 60, (3, 6), (0, 15), (1, 15), (1, 3))
    hyps = [h for h, _ in cases]
    refs = [r for _, r in cases]
    expected = [_oracle(h, r) for h, r in cases]
    assert ter_segment_stats(hyps, refs) == expected
    monkeypatch.setattr(ter_module, "_MIN_SEGMENTS_PER_WORKER", 1)  # force the process pool on a small set
    assert ter_segment_stats(hyps, refs, workers=2) == expected
    corpus = _SACREBLEU.corpus_score(hyps, [[r[k] if k < len(r) else None for r in refs] for k in range(3)])
    assert ter_score(hyps, refs) == pytest.approx(corpus.score / 100, abs=1e-12)
    with pytest.raises(ValueError, match="reference groups"):
        ter_segment_stats(hyps, refs[:-1])
    with pytest.raises(ValueError, match="at least one reference"):
        ter_segment_stats(["a"], [[]])
