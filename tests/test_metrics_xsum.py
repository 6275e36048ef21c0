"""XSUM ROUGE against the numbers rouge-score itself printed for the shared vectors (metric_vectors/xsum)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from prefixtune.metrics.rouge import read_lines, score_xsum, score_xsum_files
from prefixtune.metrics.score import score_files


@pytest.fixture(scope="module")
def xsum_vectors(shipped_vectors):
    """The shipped copy of ../shared/metric_vectors/xsum (fixtures/metric_vectors/README.md)."""
    return shipped_vectors / "xsum"


def test_shipped_copy_is_the_shared_one(shared_vectors, xsum_vectors):
    for name in ("hypotheses.txt", "references.txt", "scores.json"):
        assert (xsum_vectors / name).read_bytes() == (shared_vectors / "xsum" / name).read_bytes()


def test_per_example_and_mean_match_the_official_vectors(xsum_vectors):
    expected = json.loads((xsum_vectors / "scores.json").read_text())
    hyps, refs = read_lines(xsum_vectors / "hypotheses.txt"), read_lines(xsum_vectors / "references.txt")
    assert hyps[3] == ""  # the empty output is scored, not dropped
    result = score_xsum(hyps, refs)
    for metric in ("rouge1", "rouge2", "rougeL"):
        assert result["corpus_mean"][metric] == pytest.approx(
            expected["mean_fmeasure_x100"][metric], abs=1e-9
        )
    from prefixtune.metrics.rouge import per_example

    for got, want in zip(per_example(hyps, refs), expected["per_example"], strict=True):
        for metric in ("rouge1", "rouge2", "rougeL"):
            assert got[metric].fmeasure == pytest.approx(want[metric]["fmeasure"], abs=1e-12)


def test_batch_bootstrap_is_seeded_and_near_the_mean(xsum_vectors):
    hyps, refs = read_lines(xsum_vectors / "hypotheses.txt"), read_lines(xsum_vectors / "references.txt")
    first, again = score_xsum(hyps, refs, seed=3), score_xsum(hyps, refs, seed=3)
    assert first == again
    assert score_xsum(hyps, refs, seed=4)["batch_bootstrap"] != first["batch_bootstrap"]
    # 24 lines = 3 full batches of 8: each batch's bootstrap mid is its mean up to resampling noise
    whole = score_xsum(hyps * 2, refs * 2)
    for metric, mean in whole["corpus_mean"].items():
        assert abs(whole["batch_bootstrap"][metric] - mean) < 1.5


def test_batch_bootstrap_leaves_numpy_random_state_alone(xsum_vectors):
    hyps, refs = read_lines(xsum_vectors / "hypotheses.txt"), read_lines(xsum_vectors / "references.txt")
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    score_xsum(hyps, refs)
    assert np.random.random() == expected
    with pytest.raises(ValueError, match="batch_size must be positive"):
        score_xsum(hyps, refs, batch_size=0)


def test_batches_average_per_batch_medians():
    """Each batch holds equal scores, so its bootstrap mid is that score whatever the resampling; the result is
    the plain mean of the batch values, the short last batch counting as much as a full one.

    By hand (rouge-score, F-measure): "the cat" against "the cat sat on": unigrams P 2/2, R 2/4 -> F 2/3;
    bigrams P 1/1, R 1/3 -> F 1/2; LCS 2 -> F 2/3. An empty output scores 0; an exact match (case is folded)
    scores 1. Batches of 2: [2/3, 2/3], [0, 0], [1] -> ROUGE-1 = (2/3 + 0 + 1) / 3 = 5/9; ROUGE-2 =
    (1/2 + 0 + 1) / 3 = 1/2. The corpus mean differs: ROUGE-1 (2/3 + 2/3 + 1) / 5 = 7/15, ROUGE-2 2/5.
    """
    refs = ["the cat sat on", "the cat sat on", "a dog barked", "a dog barked", "rain fell in Wales"]
    hyps = ["the cat", "the cat", "", "", "rain fell in wales"]
    result = score_xsum(hyps, refs, batch_size=2, seed=11)
    expected_batches = {"rouge1": 100 * 5 / 9, "rouge2": 100 * 1 / 2, "rougeL": 100 * 5 / 9}
    expected_corpus = {"rouge1": 100 * 7 / 15, "rouge2": 100 * 2 / 5, "rougeL": 100 * 7 / 15}
    assert result["batch_bootstrap"] == pytest.approx(expected_batches, abs=1e-9)
    assert result["corpus_mean"] == pytest.approx(expected_corpus, abs=1e-9)
    # one batch of all five: a single bootstrap mid near the corpus mean, no longer the mean of batch values
    whole = score_xsum(hyps, refs, batch_size=5, seed=11)["batch_bootstrap"]["rouge1"]
    assert whole != pytest.approx(expected_batches["rouge1"], abs=1.0)


def test_line_count_mismatch_names_both_files(tmp_path):
    (tmp_path / "h.txt").write_text("one\ntwo\n")
    (tmp_path / "r.txt").write_text("one\n")
    with pytest.raises(ValueError, match=r"h\.txt has 2 lines but .*r\.txt has 1"):
        score_xsum_files(tmp_path / "h.txt", tmp_path / "r.txt")


def test_score_cli_writes_xsum_json(tmp_path):
    (tmp_path / "h.txt").write_text("Wales beat France.\n\n")
    (tmp_path / "r.txt").write_text("Wales beat France in Cardiff.\nOil prices fell.\n")
    out = tmp_path / "s.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "prefixtune.cli",
            "score",
            "--dataset",
            "xsum",
            "--hyp",
            str(tmp_path / "h.txt"),
            "--refs",
            str(tmp_path / "r.txt"),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    saved = json.loads(out.read_text())
    assert saved["n_hypotheses"] == 2 and saved["tools"]["rouge-score"] == "0.1.2"
    assert (
        saved["metrics"]["corpus_mean"]
        == score_files("xsum", tmp_path / "h.txt", tmp_path / "r.txt")["metrics"]["corpus_mean"]
    )
