"""E2E metrics against the official e2e-metrics numbers (shared/metric_vectors) and unit behaviour."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import sacrebleu

from prefixtune.metrics.coco import coco_scores_detailed
from prefixtune.metrics.e2e import (
    E2E_METRICS,
    read_e2e_references,
    read_hypotheses,
    score_e2e,
    score_e2e_files,
)
from prefixtune.metrics.mteval import bleu_nist_py, bleu_perl, nist_perl, tokenize_13a, tokenize_pymteval
from prefixtune.metrics.score import score_files

# metric -> key in official_scores.json "full_precision"
OFFICIAL_KEY = {
    "BLEU": "BLEU_py_mteval",
    "NIST": "NIST_py_mteval",
    "BLEU_perl": "BLEU_perl_mteval",
    "NIST_perl": "NIST_perl_mteval",
    "METEOR": "METEOR",
    "ROUGE_L": "ROUGE_L",
    "CIDEr": "CIDEr",
}
MTEVAL = ("BLEU", "NIST", "BLEU_perl", "NIST_perl")
COCO = ("METEOR", "ROUGE_L", "CIDEr")
VECTORS = [
    ("shipped", "e2e"),
    ("shared", "e2e"),
    ("shared", "e2e_example_anchor"),
    ("shared", "e2e_test_loo_anchor"),
]
_CACHE: dict[tuple[str, bytes, bytes], object] = {}


def _vector(request: pytest.FixtureRequest, source: str, name: str) -> Path:
    root = request.getfixturevalue("shared_vectors" if source == "shared" else "shipped_vectors")
    return root / name


def _cached(kind: str, hyp: Path, refs: Path, compute):  # identical shipped/shared inputs are scored once
    key = (kind, hyp.read_bytes(), refs.read_bytes())
    if key not in _CACHE:
        _CACHE[key] = compute()
    return _CACHE[key]


def _coco(hyp: Path, refs: Path) -> tuple[dict[str, float], dict[str, list[float]]]:
    return _cached(
        "coco", hyp, refs, lambda: coco_scores_detailed(read_hypotheses(hyp), read_e2e_references(refs))
    )


def _official(folder: Path) -> dict:
    return json.loads((folder / "official_scores.json").read_text(encoding="utf-8"))


def assert_official(metric: str, ours: float, official: float) -> None:
    """abs 1e-9 everywhere; Perl NIST rel 1e-12 (its last digits depend on Perl's hash order)."""
    if metric == "NIST_perl":
        assert ours == pytest.approx(official, rel=1e-12, abs=0), metric
    else:
        assert ours == pytest.approx(official, abs=1e-9, rel=0), metric


@pytest.mark.parametrize(("source", "name"), VECTORS)
def test_bleu_nist_both_variants_match_official(request, source, name):
    folder = _vector(request, source, name)
    hyp, refs = folder / "hypotheses.txt", folder / "references.txt"
    scores = _cached("mteval", hyp, refs, lambda: score_e2e_files(hyp, refs, java=False))
    official = _official(folder)["full_precision"]
    assert set(scores) == set(MTEVAL)
    for metric in MTEVAL:
        assert_official(metric, scores[metric], official[OFFICIAL_KEY[metric]])


@pytest.mark.java
@pytest.mark.parametrize(("source", "name"), VECTORS)
def test_all_metrics_match_official(request, source, name):
    folder = _vector(request, source, name)
    hyp, refs = folder / "hypotheses.txt", folder / "references.txt"
    mteval = _cached("mteval", hyp, refs, lambda: score_e2e_files(hyp, refs, java=False))
    corpus, _ = _coco(hyp, refs)
    scores = {**mteval, **corpus}  # score_e2e_files itself (with Java) runs in test_score_files_e2e
    official = _official(folder)["full_precision"]
    assert set(scores) == set(E2E_METRICS)
    for metric in E2E_METRICS:
        assert_official(metric, scores[metric], official[OFFICIAL_KEY[metric]])


@pytest.mark.java
@pytest.mark.parametrize("source", ["shipped", "shared"])
def test_segment_level_coco_scores_match_official(request, source):
    folder = _vector(request, source, "e2e")
    hyp, refs = folder / "hypotheses.txt", folder / "references.txt"
    corpus, segments = _coco(hyp, refs)
    official = _official(folder)
    for metric in COCO:
        assert corpus[metric] == pytest.approx(official["full_precision"][metric], abs=1e-9)
    for row in official["segment_level_coco"]:
        for metric in COCO:
            assert segments[metric][row["index"]] == pytest.approx(row[metric], abs=1e-9), (
                row["index"],
                metric,
            )


@pytest.mark.parametrize("source", ["shipped", "shared"])
def test_csv_references_group_like_the_text_file(request, source):
    folder = _vector(request, source, "e2e")
    by_text = read_e2e_references(folder / "references.txt")
    assert read_e2e_references(folder / "references.csv") == by_text
    assert len(by_text) == 30 and sum(map(len, by_text)) == 79
    hyps = read_hypotheses(folder / "hypotheses.txt")
    assert len(hyps) == 30 and hyps[1] == ""  # the deliberate empty output


@pytest.mark.parametrize(("source", "name"), VECTORS)
def test_bleu_perl_equals_sacrebleu_13a_lowercase_on_the_vectors(request, source, name):
    folder = _vector(request, source, name)
    hyps = read_hypotheses(folder / "hypotheses.txt")
    refs = read_e2e_references(folder / "references.txt")
    width = max(map(len, refs))
    streams = [[g[k] if k < len(g) else None for g in refs] for k in range(width)]
    literal = sacrebleu.BLEU(tokenize="13a", lowercase=True, smooth_method="exp").corpus_score(hyps, streams)
    assert bleu_perl(hyps, refs) == pytest.approx(literal.score / 100, abs=1e-14)


def test_bleu_perl_lowercases_ascii_only_like_the_perl_script():
    # mteval's tr/[A-Z]/[a-z]/ leaves É upper-case; sacrebleu's lowercase=True would not
    assert bleu_perl(["Cafe ROUGE is nice"], [["cafe rouge is nice"]]) == pytest.approx(1.0, abs=1e-12)
    assert bleu_perl(["CAFÉ ROUGE is nice"], [["café rouge is nice"]]) < 0.6


def test_mteval_13a_tokenizer():
    assert tokenize_13a("It doesn't cost £20-25.") == "it doesn't cost £20 - 25 ."
    assert (
        tokenize_13a("Price 1,000.50 in 2020-21, rated 5-star.")
        == "price 1,000.50 in 2020 - 21 , rated 5 - star ."
    )
    assert (
        tokenize_13a('CAFÉ (near) the river/bridge; "ok"?') == 'cafÉ ( near ) the river / bridge ; " ok " ?'
    )
    assert tokenize_13a("a &amp; b &quot;c&quot; <skipped>") == 'a & b " c "'
    assert tokenize_13a("Family-friendly", lowercase=False) == "Family-friendly"
    assert tokenize_pymteval("It's OK.") == ["It's", "OK", "."]
    assert tokenize_pymteval("") == [""]  # "".split(" "): an empty output is one empty token


def test_identical_output_scores_bleu_one():
    refs = [
        [
            "The Eagle is a cheap coffee shop near Burger King.",
            "Near Burger King, The Eagle sells cheap coffee.",
        ],
        ["Zizzi is a family-friendly pub in the city centre.", "In the centre, Zizzi is a pub for families."],
        ["Cotto serves Italian food for £20-25 and is rated 5 out of 5."],
    ]
    hyps = [group[0] for group in refs]
    bleu, nist = bleu_nist_py(hyps, refs)
    assert bleu == pytest.approx(1.0, abs=1e-12)
    assert bleu_perl(hyps, refs) == pytest.approx(1.0, abs=1e-12)
    assert nist > 0 and nist_perl(hyps, refs) > 0
    # upper-casing does not matter to either variant (case-insensitive matching)
    assert bleu_nist_py([h.upper() for h in hyps], refs)[0] == pytest.approx(1.0, abs=1e-12)


def test_empty_output_is_scored_not_rejected():
    hyps = ["", "The Eagle is a cheap coffee shop near Burger King in the riverside area."]
    refs = [["Zizzi is a pub."], ["The Eagle is a cheap coffee shop near Burger King in the riverside area."]]
    bleu, nist = bleu_nist_py(hyps, refs)
    assert 0 < bleu < 1 and math.isfinite(nist)
    assert 0 < bleu_perl(hyps, refs) < 1 and math.isfinite(nist_perl(hyps, refs))
    assert bleu_perl([""], [["a b"]]) == 0.0 and nist_perl([""], [["a b"]]) == 0.0
    scores = score_e2e(hyps, refs, java=False)
    assert set(scores) == set(MTEVAL)


def test_count_mismatch_names_both_files(tmp_path):
    hyp = tmp_path / "outputs.txt"
    refs = tmp_path / "gold.txt"
    hyp.write_text("one\ntwo\n", encoding="utf-8")
    refs.write_text("a\nb\n\nc\n\nd\n", encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"outputs\.txt has 2 outputs but .*gold\.txt has 3 reference groups"
    ):
        score_e2e_files(hyp, refs, java=False)
    with pytest.raises(ValueError, match="2 hypotheses but 1 reference groups"):
        score_e2e(["a", "b"], [["a"]], java=False)


def test_reference_file_layouts(tmp_path):
    single = tmp_path / "single.txt"
    single.write_text("first ref\nsecond ref\n", encoding="utf-8")
    assert read_e2e_references(single) == [["first ref"], ["second ref"]]  # no blank line: one ref per line
    grouped = tmp_path / "grouped.txt"
    grouped.write_text(" a1 \r\na2\n\nb1\n\n\n", encoding="utf-8")  # CRLF, edge spaces, trailing blanks
    assert read_e2e_references(grouped) == [["a1", "a2"], ["b1"]]
    broken = tmp_path / "broken.txt"
    broken.write_text("a1\n\n\nb1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="two empty lines"):
        read_e2e_references(broken)
    tsv = tmp_path / "refs.tsv"
    tsv.write_text(
        "mr\tref\nname[A]\tA one.\nname[A]\tA two.\nname[B]\tB.\nname[A]\tA again.\n", encoding="utf-8"
    )
    assert read_e2e_references(tsv) == [["A one.", "A two."], ["B."], ["A again."]]


@pytest.mark.java
def test_score_files_e2e(shipped_vectors):
    folder = shipped_vectors / "e2e"
    result = score_files("e2e", folder / "hypotheses.txt", folder / "references.txt")
    assert result["dataset"] == "e2e" and result["n_hypotheses"] == 30
    assert "fractions" in result["scales"] and "measure_scores.py" in result["tools"]["protocol"]
    official = _official(folder)["full_precision"]
    for metric in E2E_METRICS:
        assert_official(metric, result["metrics"][metric], official[OFFICIAL_KEY[metric]])


def test_score_files_rejects_unknown_dataset(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'cnndm'"):
        score_files("cnndm", tmp_path / "h.txt", tmp_path / "r.txt")
