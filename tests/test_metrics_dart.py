"""DART scoring against the official run_eval_on_dart.sh numbers; XML references vs the official files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from prefixtune.cli import main as cli_main
from prefixtune.metrics.dart import (
    dart_reference_columns,
    dart_reference_text,
    load_dart_references,
    preprocess_dart_hypothesis,
    score_dart,
)
from prefixtune.metrics.e2e import read_hypotheses
from prefixtune.metrics.meteor_jar import write_meteor_files

_CACHE: dict[tuple[bytes, tuple[tuple[str, ...], ...], bool], dict[str, float]] = {}


def _vector(request: pytest.FixtureRequest, source: str) -> Path:
    root = request.getfixturevalue("shared_vectors" if source == "shared" else "shipped_vectors")
    return root / "dart"


def _score(hyp: Path, refs: list[list[str]], ter: bool = True) -> dict[str, float]:
    key = (hyp.read_bytes(), tuple(map(tuple, refs)), ter)
    if key not in _CACHE:
        _CACHE[key] = score_dart(read_hypotheses(hyp), refs, ter=ter, workers=os.cpu_count() or 1)
    return _CACHE[key]


def _official(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))["scores"]


def _raw_lines(path: Path) -> list[str]:
    """Lines of an official .lex file without their CRLF/LF ends."""
    lines = path.read_bytes().decode("utf-8").split("\n")
    assert lines[-1] == ""
    return [line.removesuffix("\r") for line in lines[:-1]]


@pytest.mark.java
@pytest.mark.parametrize("source", ["shipped", "shared"])
def test_shared_set_matches_official(request, source):
    folder = _vector(request, source)
    scores = _score(folder / "hypotheses.txt", load_dart_references(folder))
    official = _official(folder / "official_scores.json")
    assert scores["BLEU"] == pytest.approx(official["BLEU"], abs=1e-9)
    assert scores["METEOR"] == pytest.approx(official["METEOR"], abs=1e-9)
    assert scores["TER"] == pytest.approx(official["TER"], abs=5e-3)


@pytest.mark.java
def test_bart_anchor_official_test_set_bleu_meteor(shared_vectors, shared_data):
    refs = load_dart_references(shared_data / "dart" / "official_references")
    scores = _score(shared_vectors / "dart_bart_anchor" / "hypotheses.txt", refs, ter=True)
    official = _official(shared_vectors / "dart_bart_anchor" / "official_scores.json")
    assert scores["BLEU"] == pytest.approx(official["BLEU"], abs=1e-9)  # leaderboard 48.56
    assert scores["METEOR"] == pytest.approx(official["METEOR"], abs=1e-9)  # leaderboard 0.39


@pytest.mark.java
def test_bart_anchor_official_test_set_ter(shared_vectors, shared_data):
    refs = load_dart_references(shared_data / "dart" / "official_references")
    scores = _score(shared_vectors / "dart_bart_anchor" / "hypotheses.txt", refs, ter=True)
    official = _official(shared_vectors / "dart_bart_anchor" / "official_scores.json")
    assert scores["TER"] == pytest.approx(official["TER"], abs=5e-3)  # leaderboard 0.45


def test_references_from_the_test_xml_equal_the_official_files(shared_data):
    folder = shared_data / "dart"
    columns = dart_reference_columns(folder / "dart-v1.1.1-full-test.xml")
    for k in range(3):
        official = _raw_lines(folder / "official_references" / f"all-delex-reference{k}.lex")
        assert len(official) == 5097
        assert columns[k] == official, k
    from_xml = load_dart_references(folder / "dart-v1.1.1-full-test.xml")
    assert from_xml == load_dart_references(folder / "official_references")
    assert sum(map(len, from_xml)) == sum(1 for c in columns for line in c if line)


def test_references_from_the_xml_excerpt_equal_the_official_lines(data_fixtures):
    # shipped excerpt: 5 real test entries incl. an empty <lex/> (tests/fixtures/data/ATTRIBUTION.md)
    columns = dart_reference_columns(data_fixtures / "dart_test_excerpt.xml")
    for k in range(3):
        assert columns[k] == _raw_lines(data_fixtures / f"dart_test_excerpt.reference{k}.lex"), k


@pytest.mark.parametrize("source", ["shipped", "shared"])
def test_preprocessing_matches_the_records(request, source):
    records = json.loads((_vector(request, source) / "records.json").read_text(encoding="utf-8"))
    hyps = read_hypotheses(_vector(request, source) / "hypotheses.txt")
    for rec in records:
        assert [dart_reference_text(r) for r in rec["references_raw"]] == rec["references_scored"]
        assert hyps[rec["index"]] == rec["hypothesis_scored"]
        expected_same = not rec["hypothesis_left_unpreprocessed"]
        assert (
            preprocess_dart_hypothesis(rec["hypothesis_raw"]) == rec["hypothesis_scored"]
        ) == expected_same


def test_preprocess_dart_hypothesis():
    assert (
        preprocess_dart_hypothesis("Usain Bolt's time was 9.63 seconds.")
        == "usain bolt ' s time was 9 . 63 seconds ."
    )
    assert (
        preprocess_dart_hypothesis("  The Waterman (£20-25)  serves\tsushi ")
        == "the waterman ( £ 20 - 25 ) serves sushi"
    )
    assert preprocess_dart_hypothesis("Coyoacán, México") == "coyoacán , méxico"  # no unidecode
    assert preprocess_dart_hypothesis("") == ""


@pytest.mark.parametrize("source", ["shipped", "shared"])
def test_meteor_reference_file_is_the_prepare_files_one(request, source, tmp_path):
    folder = _vector(request, source)
    refs = load_dart_references(folder)
    hyp_file, ref_file = write_meteor_files(read_hypotheses(folder / "hypotheses.txt"), refs, 8, tmp_path)
    official = folder / "official_intermediate" / "all-notdelex-refs-meteor.txt"
    assert ref_file.read_bytes() == official.read_bytes()
    assert hyp_file.read_bytes() == (folder / "hypotheses.txt").read_bytes()


def test_reference_loading_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="reference0.lex"):
        load_dart_references(tmp_path)
    for k, text in enumerate(["a\r\nb\r\n", "c\r\n\r\n", "d\r\n"]):
        (tmp_path / f"reference{k}.lex").write_bytes(text.encode())
    with pytest.raises(ValueError, match="different numbers of lines"):
        load_dart_references(tmp_path)
    (tmp_path / "reference2.lex").write_bytes(b"\r\ne\r\n")
    assert load_dart_references(tmp_path) == [["a", "c"], ["b", "e"]]


def test_count_mismatch():
    with pytest.raises(ValueError, match="2 hypotheses but 1 reference groups"):
        score_dart(["a", "b"], [["a"]])


@pytest.mark.java
def test_cli_score_writes_json(shipped_vectors, tmp_path, capsys):
    folder = shipped_vectors / "dart"
    out = tmp_path / "scores" / "dart.json"
    argv = [
        "score",
        "--dataset",
        "dart",
        "--hyp",
        str(folder / "hypotheses.txt"),
        "--refs",
        str(folder),
        "--out",
        str(out),
    ]
    cli_main(argv)
    result = json.loads(out.read_text(encoding="utf-8"))
    shown = json.loads(capsys.readouterr().out)  # the log shows the segment statistics as a summary
    assert shown["segments"] == {"n": 25, "metrics": {"BLEU": "sacrebleu_bleu", "TER": "ter"}}
    assert {**shown, "segments": result["segments"]} == result
    assert result["dataset"] == "dart" and result["n_hypotheses"] == 25
    assert set(result) == {"dataset", "n_hypotheses", "metrics", "scales", "tools", "segments"}
    assert len(result["segments"]["metrics"]["BLEU"]["stats"]) == 25
    assert "BLEU 0-100" in result["scales"] and "Meteor-1.5.jar" in result["tools"]["jars"]
    official = _official(folder / "official_scores.json")
    assert result["metrics"]["BLEU"] == pytest.approx(official["BLEU"], abs=1e-9)
    assert result["metrics"]["METEOR"] == pytest.approx(official["METEOR"], abs=1e-9)
    assert result["metrics"]["TER"] == pytest.approx(official["TER"], abs=5e-3)
