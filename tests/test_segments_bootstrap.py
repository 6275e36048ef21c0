"""Segment statistics in the scores files and the paired bootstrap over test items (prefixtune.claims.bootstrap).

The full-sample score from the segment statistics must be the official value exactly, per protocol; METEOR
(Java) is replaced by a constant where a test only needs BLEU/TER, so these tests need no Java runtime.
"""

from __future__ import annotations

import json
import random
import time

import numpy as np
import pytest

from prefixtune.claims.bootstrap import (
    MissingSegments,
    PairedInterval,
    full_sample_score,
    paired_bootstrap,
    paired_bootstrap_mean,
)
from prefixtune.metrics import dart, e2e, segments, webnlg
from prefixtune.metrics.mteval import bleu_nist_py
from prefixtune.metrics.score import score_files
from prefixtune.metrics.ter import ter_score
from prefixtune.report.cells import read_metric

TRACKS = ("all", "seen", "unseen")
VOCAB = "the a restaurant pub serves cheap expensive food italian french near river centre city five stars".split()


@pytest.fixture
def no_meteor(monkeypatch: pytest.MonkeyPatch) -> None:
    """METEOR (a Java jar) is not what these tests check: a constant stands in for it."""
    monkeypatch.setattr(
        webnlg, "meteor_track_scores", lambda hyps, refs, n, tracks: dict.fromkeys(tracks, 0.5)
    )
    monkeypatch.setattr(dart, "meteor_score", lambda hyps, refs, n: 0.5)


def _e2e_scores(hyps: list[str], refs: list[list[str]]) -> dict:
    """An E2E scores file with only the paper's BLEU (``-p``, :func:`e2e.score_e2e`'s ``BLEU``)."""
    return {
        "dataset": "e2e",
        "metrics": {"BLEU": bleu_nist_py(*e2e.clean_inputs(hyps, refs))[0]},
        "segments": segments.e2e_segments(hyps, refs, {}),
    }


def _dart_scores(hyps: list[str], refs: list[list[str]]) -> dict:
    return {
        "dataset": "dart",
        "metrics": _dart_metrics(hyps, refs),
        "segments": segments.dart_segments(hyps, refs),
    }


def _dart_metrics(hyps: list[str], refs: list[list[str]]) -> dict:
    """BLEU and TER exactly as :func:`dart.score_dart` computes them (its METEOR needs Java)."""
    ter_hyps, ter_refs = dart.ter_inputs(hyps, refs)
    return {"BLEU": dart._bleu(hyps, refs), "TER": ter_score(ter_hyps, ter_refs)}


def _synthetic(n: int, seed: int) -> tuple[list[list[str]], list[str], list[str]]:
    """References, a good system (a reference with one word changed) and a bad one (shuffled words)."""
    rng = random.Random(seed)
    refs, good, bad = [], [], []
    for _ in range(n):
        group = [" ".join(rng.choices(VOCAB, k=rng.randint(6, 14))) for _ in range(rng.randint(1, 3))]
        words = group[0].split()
        words[rng.randrange(len(words))] = rng.choice(VOCAB)
        shuffled = words[:]
        rng.shuffle(shuffled)
        refs.append(group)
        good.append(" ".join(words))
        bad.append(" ".join(shuffled[: max(1, len(shuffled) - 3)]))
    return refs, good, bad


def _assert_full_equals_official(scores: dict, metrics: tuple[str, ...], tracks=(None,)) -> None:
    for metric in metrics:
        for track in tracks:
            official = read_metric(scores, scores["dataset"], metric, track)
            assert official is not None, (metric, track)
            assert full_sample_score(scores, metric, track) == official, (metric, track)  # bit-identical


# --- full sample = official value, per protocol ---


def test_e2e_constructed_full_sample_is_the_official_bleu():
    refs, good, bad = _synthetic(60, 0)
    for hyps in (good, bad, ["", *good[1:]]):  # an empty output: negative n-gram counts kept on purpose
        _assert_full_equals_official(_e2e_scores(hyps, refs), ("BLEU",))


def test_e2e_shipped_vector_full_sample(shipped_vectors):
    folder = shipped_vectors / "e2e"
    hyps, refs = e2e.read_e2e_files(folder / "hypotheses.txt", folder / "references.txt")
    scores = _e2e_scores(hyps, refs)
    _assert_full_equals_official(scores, ("BLEU",))
    official = json.loads((folder / "official_scores.json").read_text())["full_precision"]["BLEU_py_mteval"]
    assert full_sample_score(scores, "BLEU") == pytest.approx(100 * official, abs=1e-9)


def test_e2e_real_test_set_full_sample(shared_vectors):
    folder = shared_vectors / "e2e_test_loo_anchor"  # the real E2E test set, 616 MRs
    hyps, refs = e2e.read_e2e_files(folder / "hypotheses.txt", folder / "references.txt")
    scores = _e2e_scores(hyps, refs)
    _assert_full_equals_official(scores, ("BLEU",))
    interval = paired_bootstrap(scores, scores, "BLEU")
    assert (interval.delta, interval.low, interval.high, interval.n_items) == (0.0, 0.0, 0.0, 616)


def _coco_without_java(hyps, refs):
    """coco's real ROUGE_L (pure Python) on lower-cased whitespace tokens instead of the Java PTB tokenizer."""
    from pycocoevalcap.rouge.rouge import Rouge

    gts = {i: [r.lower() for r in group] for i, group in enumerate(refs)}
    res = {i: [h.lower()] for i, h in enumerate(hyps)}
    score, per_segment = Rouge().compute_score(gts, res)
    return {"ROUGE_L": float(score)}, {"ROUGE_L": [float(s) for s in per_segment]}


def test_e2e_score_files_bleu_and_rouge_l(shipped_vectors, monkeypatch):
    monkeypatch.setattr(e2e, "coco_scores_detailed", _coco_without_java)
    folder = shipped_vectors / "e2e"
    scores = score_files("e2e", folder / "hypotheses.txt", folder / "references.txt")
    assert set(scores["segments"]["metrics"]) == {"BLEU", "ROUGE-L"}
    _assert_full_equals_official(scores, ("BLEU", "ROUGE-L"))
    with pytest.raises(MissingSegments, match="METEOR"):
        full_sample_score(scores, "METEOR")


def test_webnlg_score_files_tracks(shipped_vectors, no_meteor, tmp_path):
    folder = shipped_vectors / "webnlg"
    scores = score_files("webnlg", folder / "hypotheses.txt", folder / "testdata_with_lex.xml")
    scores = json.loads(segments.format_scores_json(scores))  # what the scores file holds
    tracks = scores["segments"]["tracks"]
    assert set(tracks) == set(TRACKS) and tracks["all"] == list(range(20))
    assert sorted(tracks["seen"] + tracks["unseen"]) == tracks["all"]
    _assert_full_equals_official(scores, ("BLEU", "TER"), TRACKS)
    assert scores["metrics"]["all"]["METEOR"] == 0.5  # the stand-in: metrics otherwise as scored


def test_webnlg_real_test_set_tracks(shared_vectors, shared_data, no_meteor):
    hyp = shared_vectors / "webnlg_bart_anchor" / "hypotheses.txt"
    scores = score_files("webnlg", hyp, shared_data / "webnlg" / "testdata_with_lex.xml", workers=2)
    _assert_full_equals_official(scores, ("BLEU", "TER"), TRACKS)
    official = json.loads((shared_vectors / "webnlg_bart_anchor" / "official_scores.json").read_text())
    for track, key in zip(TRACKS, ("A_all", "S_seen", "U_unseen"), strict=True):
        bleu = full_sample_score(scores, "BLEU", track)
        assert bleu == pytest.approx(official["headline"][key]["BLEU"], abs=1e-9)  # multi-bleu.perl
    assert scores["segments"]["n"] == 1862


def test_dart_score_files_shipped_vector(shipped_vectors, no_meteor):
    folder = shipped_vectors / "dart"
    scores = score_files("dart", folder / "hypotheses.txt", folder)
    _assert_full_equals_official(scores, ("BLEU", "TER"))


def test_dart_real_test_set_bleu(shared_vectors, shared_data):
    hyps = e2e.read_hypotheses(shared_vectors / "dart_bart_anchor" / "hypotheses.txt")
    refs = dart.load_dart_references(shared_data / "dart" / "official_references")
    entry = segments._sacrebleu_bleu_entry(dart.bleu_metric(), hyps, dart.reference_streams(refs))
    scores = {
        "dataset": "dart",
        "metrics": {"BLEU": dart._bleu(hyps, refs)},  # TER: the WebNLG test set above, DART's shipped vector
        "segments": {"n": len(hyps), "metrics": {"BLEU": entry}},
    }
    _assert_full_equals_official(scores, ("BLEU",))
    official = json.loads((shared_vectors / "dart_bart_anchor" / "official_scores.json").read_text())
    assert full_sample_score(scores, "BLEU") == pytest.approx(official["scores"]["BLEU"], abs=1e-9)  # 48.56
    assert len(hyps) == 5097


def test_dart_entry_without_references():
    refs, good, _ = _synthetic(20, 1)
    refs[3] = []  # its blank reference0 line still counts (length 0)
    _assert_full_equals_official(_dart_scores(good, refs), ("BLEU", "TER"))


def test_xsum_full_sample_is_the_corpus_mean(shipped_vectors, tmp_path):
    folder = shipped_vectors / "xsum"
    scores = json.loads(
        segments.format_scores_json(score_files("xsum", folder / "hypotheses.txt", folder / "references.txt"))
    )
    _assert_full_equals_official(scores, ("ROUGE-1", "ROUGE-2", "ROUGE-L"))
    # the corpus mean is what the report reads; the authors' batch-bootstrap number is recorded beside it
    assert set(scores["metrics"]) >= {"corpus_mean", "batch_bootstrap"}
    expected = json.loads((folder / "scores.json").read_text())["mean_fmeasure_x100"]["rougeL"]
    assert full_sample_score(scores, "ROUGE-L") == pytest.approx(expected, abs=1e-9)


# --- the bootstrap ---


@pytest.fixture(scope="module")
def e2e_pair() -> tuple[dict, dict]:
    refs, good, bad = _synthetic(300, 2)
    return _e2e_scores(good, refs), _e2e_scores(bad, refs)


@pytest.fixture(scope="module")
def dart_pair() -> tuple[dict, dict]:
    refs, good, bad = _synthetic(200, 3)
    return _dart_scores(good, refs), _dart_scores(bad, refs)


def test_self_against_self_is_exactly_zero(e2e_pair, dart_pair):
    for scores, metric in ((e2e_pair[1], "BLEU"), (dart_pair[0], "BLEU"), (dart_pair[1], "TER")):
        interval = paired_bootstrap(scores, scores, metric, resamples=200)
        assert (interval.delta, interval.low, interval.high) == (0.0, 0.0, 0.0)


def test_clearly_better_system_has_an_interval_above_zero(e2e_pair, dart_pair):
    good, bad = e2e_pair
    interval = paired_bootstrap(good, bad, "BLEU", resamples=500, seed=7)
    assert isinstance(interval, PairedInterval)
    assert interval.delta == full_sample_score(good, "BLEU") - full_sample_score(bad, "BLEU")
    assert 0 < interval.low <= interval.delta <= interval.high
    assert (interval.n_items, interval.resamples, interval.seed, interval.confidence) == (300, 500, 7, 0.95)
    reverse = paired_bootstrap(bad, good, "BLEU", resamples=500, seed=7)
    assert (reverse.low, reverse.high) == (-interval.high, -interval.low)
    ter = paired_bootstrap(dart_pair[0], dart_pair[1], "TER", resamples=500)
    assert ter.high < 0  # lower TER is better: the good system's difference is negative


def test_fixed_seed_repeats_and_seeds_differ(dart_pair):
    good, bad = dart_pair
    first = paired_bootstrap(good, bad, "BLEU", resamples=300, seed=1)
    assert paired_bootstrap(good, bad, "BLEU", resamples=300, seed=1) == first
    other = paired_bootstrap(good, bad, "BLEU", resamples=300, seed=2)
    assert (other.low, other.high) != (first.low, first.high)
    assert other.delta == first.delta


def test_wider_confidence_gives_a_wider_interval(e2e_pair):
    narrow = paired_bootstrap(*e2e_pair, "BLEU", resamples=400, confidence=0.5)
    wide = paired_bootstrap(*e2e_pair, "BLEU", resamples=400, confidence=0.99)
    assert wide.low <= narrow.low <= narrow.high <= wide.high


def test_resampled_scores_of_the_full_sample_are_the_official_value(e2e_pair, dart_pair):
    for scores, metric in ((e2e_pair[0], "BLEU"), (dart_pair[0], "BLEU"), (dart_pair[0], "TER")):
        entry = scores["segments"]["metrics"][metric]
        n = scores["segments"]["n"]
        got = segments.resampled_scores(entry, np.arange(n), np.ones((2, n), dtype=np.int64))
        assert got == pytest.approx([full_sample_score(scores, metric)] * 2, rel=1e-12)


def test_mean_over_test_sets(e2e_pair, dart_pair):
    pairs = [(*e2e_pair, "BLEU", None), (*dart_pair, "BLEU", "all")]
    mean = paired_bootstrap_mean(pairs, resamples=300, seed=3)
    single = [paired_bootstrap(a, b, m, track=t, resamples=300).delta for a, b, m, t in pairs]
    assert mean.delta == pytest.approx(sum(single) / 2, abs=1e-12)
    assert 0 < mean.low <= mean.high and mean.n_items == 500 and "2 test sets" in mean.method
    assert paired_bootstrap_mean(pairs, resamples=300, seed=3) == mean
    selves = [(e2e_pair[0], e2e_pair[0], "BLEU", None), (dart_pair[1], dart_pair[1], "TER", None)]
    zero = paired_bootstrap_mean(selves, resamples=100)
    assert (zero.delta, zero.low, zero.high) == (0.0, 0.0, 0.0)


def test_webnlg_tracks_resample_their_own_items(shipped_vectors, no_meteor):
    folder = shipped_vectors / "webnlg"
    scores = score_files("webnlg", folder / "hypotheses.txt", folder / "testdata_with_lex.xml")
    seen = paired_bootstrap(scores, scores, "BLEU", track="seen", resamples=50)
    assert seen.n_items == len(scores["segments"]["tracks"]["seen"]) and (seen.low, seen.high) == (0.0, 0.0)
    with pytest.raises(ValueError, match="per track"):
        full_sample_score(scores, "BLEU")
    with pytest.raises(MissingSegments, match="Artist"):
        full_sample_score(scores, "BLEU", "Artist")


# --- errors ---


def test_old_scores_files_raise_missing_segments(e2e_pair):
    old = {key: value for key, value in e2e_pair[0].items() if key != "segments"}
    with pytest.raises(MissingSegments, match="no per-segment statistics"):
        full_sample_score(old, "BLEU")
    with pytest.raises(MissingSegments):
        paired_bootstrap(old, e2e_pair[1], "BLEU")
    with pytest.raises(MissingSegments, match="recorded: BLEU"):  # ROUGE-L needs the Java coco metrics
        full_sample_score(e2e_pair[0], "ROUGE-L")
    with pytest.raises(MissingSegments, match="whole reference set"):
        full_sample_score(e2e_pair[0], "NIST")
    with pytest.raises(ValueError, match="no metric 'BLEU4'"):
        full_sample_score(e2e_pair[0], "BLEU4")


def test_mismatched_test_sets_are_a_clear_error(e2e_pair, dart_pair):
    refs, good, _ = _synthetic(299, 2)
    shorter = _e2e_scores(good, refs)
    with pytest.raises(ValueError, match=r"same test items: e2e BLEU has n = 300 .* n = 299"):
        paired_bootstrap(e2e_pair[0], shorter, "BLEU")
    with pytest.raises(ValueError, match="one test set"):
        paired_bootstrap(e2e_pair[0], dart_pair[0], "BLEU")
    with pytest.raises(ValueError, match="no tracks"):
        paired_bootstrap(*e2e_pair, "BLEU", track="seen")
    with pytest.raises(ValueError, match="resamples"):
        paired_bootstrap(*e2e_pair, "BLEU", resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap(*e2e_pair, "BLEU", confidence=95)


def test_scores_json_keeps_stats_on_one_line_and_round_trips(e2e_pair):
    text = segments.format_scores_json(e2e_pair[0])
    assert json.loads(text) == e2e_pair[0]
    stats_lines = [line for line in text.splitlines() if '"stats":' in line]
    assert len(stats_lines) == 1 and stats_lines[0].strip().startswith('"stats": [[')


def test_thousand_resamples_of_five_thousand_items_is_fast():
    rng = np.random.default_rng(0)
    n = 5000

    def fake(shift: int) -> dict:
        correct = rng.integers(0, 8, size=(n, 4))
        stats = np.concatenate([np.full((n, 2), 12), correct + shift, np.full((n, 4), 12)], axis=1)
        entry = {
            "statistic": "sacrebleu_bleu",
            "scale": 1,
            "params": {
                "smooth_method": "none",
                "smooth_value": None,
                "max_ngram_order": 4,
                "effective_order": False,
            },
            "stats": stats.tolist(),
        }
        return {"dataset": "dart", "segments": {"n": n, "metrics": {"BLEU": entry}}}

    a, b = fake(1), fake(0)
    start = time.perf_counter()
    interval = paired_bootstrap(a, b, "BLEU", resamples=1000)
    assert time.perf_counter() - start < 5.0  # about 0.5 s on one core
    assert interval.low > 0
