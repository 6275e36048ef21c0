"""WebNLG 2017 challenge scoring against the official scripts' numbers and intermediate files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from prefixtune.metrics import meteor_jar
from prefixtune.metrics.e2e import read_hypotheses
from prefixtune.metrics.meteor_jar import (
    JavaNotFoundError,
    aggregate_stats,
    meteor_file_score,
    write_meteor_files,
)
from prefixtune.metrics.webnlg import (
    N_REFS,
    preprocess_hypothesis,
    preprocess_reference,
    read_webnlg_entries,
    score_webnlg,
    webnlg_tracks,
)

OFFICIAL_TRACK = {"all": "all-cat", "seen": "old-cat", "unseen": "new-cat"}
HEADLINE = {"all": "A_all", "seen": "S_seen", "unseen": "U_unseen"}
_CACHE: dict[tuple[bytes, bytes, bool], dict] = {}


def _vector(request: pytest.FixtureRequest, source: str) -> Path:
    root = request.getfixturevalue("shared_vectors" if source == "shared" else "shipped_vectors")
    return root / "webnlg"


def _score(hyp: Path, xml: Path, ter: bool = True) -> dict:
    key = (hyp.read_bytes(), xml.read_bytes(), ter)
    if key not in _CACHE:
        workers = os.cpu_count() or 1
        _CACHE[key] = score_webnlg(read_hypotheses(hyp), xml, all_tracks=True, ter=ter, workers=workers)
    return _CACHE[key]


def _official(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


@pytest.mark.java
@pytest.mark.parametrize("source", ["shipped", "shared"])
def test_shared_set_all_25_tracks_match_official(request, source):
    folder = _vector(request, source)
    scores = _score(folder / "hypotheses.txt", folder / "testdata_with_lex.xml")
    official = _official(folder / "official_scores.json")
    assert len(scores) == 25
    for track, ours in scores.items():
        ref = official["all_tracks"][OFFICIAL_TRACK.get(track, track)]
        assert ours is not None
        if ref["BLEU_official_2dp"] is None:
            # every hypothesis of the track is empty: multi-bleu.perl dies ("Illegal division by zero")
            assert ours["BLEU"] == 0.0, track
        else:
            assert ours["BLEU"] == pytest.approx(ref["BLEU_full_precision"], abs=1e-9), track
        assert ours["METEOR"] == pytest.approx(ref["METEOR"], abs=1e-9), track
        # sacrebleu's TER may differ from tercom by one edit on a segment (its beam search differs)
        assert abs(ours["TER"] - ref["TER"]) * ref["TER_avg_ref_len_sum"] <= 1.0 + 1e-9, track
    for track, key in HEADLINE.items():
        assert scores[track]["BLEU"] == pytest.approx(official["headline"][key]["BLEU"], abs=1e-9)
        assert scores[track]["METEOR"] == pytest.approx(official["headline"][key]["METEOR"], abs=1e-9)
        assert scores[track]["TER"] == pytest.approx(official["headline"][key]["TER"], abs=5e-3)


@pytest.mark.java
def test_bart_anchor_real_test_set_bleu_meteor(shared_vectors, shared_data):
    scores = _score(
        shared_vectors / "webnlg_bart_anchor" / "hypotheses.txt",
        shared_data / "webnlg" / "testdata_with_lex.xml",
        ter=True,
    )
    official = _official(shared_vectors / "webnlg_bart_anchor" / "official_scores.json")
    for track, key in HEADLINE.items():
        assert scores[track]["BLEU"] == pytest.approx(official["headline"][key]["BLEU"], abs=1e-9)
        assert scores[track]["METEOR"] == pytest.approx(official["headline"][key]["METEOR"], abs=1e-9)
    for track, ours in scores.items():  # also the 15 categories and 7 sizes
        ref = official["all_tracks"][OFFICIAL_TRACK.get(track, track)]
        assert ours["BLEU"] == pytest.approx(ref["BLEU_full_precision"], abs=1e-9), track
        assert ours["METEOR"] == pytest.approx(ref["METEOR"], abs=1e-9), track


@pytest.mark.java
def test_bart_anchor_real_test_set_ter(shared_vectors, shared_data):
    scores = _score(
        shared_vectors / "webnlg_bart_anchor" / "hypotheses.txt",
        shared_data / "webnlg" / "testdata_with_lex.xml",
        ter=True,
    )
    official = _official(shared_vectors / "webnlg_bart_anchor" / "official_scores.json")
    for track, ours in scores.items():
        assert ours["TER"] == pytest.approx(
            official["all_tracks"][OFFICIAL_TRACK.get(track, track)]["TER"], abs=5e-3
        )


@pytest.mark.parametrize("source", ["shipped", "shared"])
def test_preprocessing_reproduces_the_official_intermediate_files(request, source, tmp_path):
    folder = _vector(request, source)
    inter = folder / "official_intermediate"
    entries = read_webnlg_entries(folder / "testdata_with_lex.xml")
    hyps = [preprocess_hypothesis(h) for h in read_hypotheses(folder / "hypotheses.txt")]
    refs = [[preprocess_reference(lex) for lex in e.lexes[:N_REFS]] for e in entries]
    for track, idx in webnlg_tracks(entries).items():
        name = OFFICIAL_TRACK[track]
        assert [hyps[i] for i in idx] == _lines(inter / f"team_{name}.txt"), track
        for k in range(N_REFS):
            column = [refs[i][k] if k < len(refs[i]) else "" for i in idx]
            assert column == _lines(inter / f"gold-{name}-reference{k}.lex"), (track, k)
        _, meteor_refs = write_meteor_files([hyps[i] for i in idx], [refs[i] for i in idx], N_REFS, tmp_path)
        assert meteor_refs.read_bytes() == (inter / f"gold-{name}-reference-3ref.meteor").read_bytes(), track


def test_reference_and_hypothesis_preprocessing_differ_in_order():
    # references: \W split on the original text, then unidecode; hypotheses: unidecode first
    assert preprocess_reference("It is 25°C in Zürich.") == "it is 25 deg c in zurich ."
    assert preprocess_hypothesis("  It is 25°C in Zürich. ") == "it is 25degc in zurich ."
    assert preprocess_hypothesis("Alan_Bean's mission (Apollo 12)") == "alan_bean ' s mission ( apollo 12 )"


def _xml(path: Path, eids: list[str]) -> Path:
    body = "".join(
        f'<entry category="Airport" eid="{eid}" size="1"><lex comment="good" lid="Id1">A is B.</lex></entry>'
        for eid in eids
    )
    path.write_text(f"<benchmark><entries>{body}</entries></benchmark>", encoding="utf-8")
    return path


def test_hypothesis_count_must_equal_entries(tmp_path):
    xml = _xml(tmp_path / "gold.xml", ["Id1", "Id2"])
    with pytest.raises(ValueError, match=r"outputs\.txt has 1 lines but .*gold\.xml has 2 entries"):
        score_webnlg(["a is b ."], xml, source="outputs.txt")


def test_entries_are_natsorted_and_must_be_id1_to_idn(tmp_path):
    xml = _xml(tmp_path / "gold.xml", ["Id10", "Id2", "Id1", "Id3", "Id4", "Id5", "Id6", "Id7", "Id8", "Id9"])
    assert [e.eid for e in read_webnlg_entries(xml)] == [f"Id{i}" for i in range(1, 11)]
    gap = _xml(tmp_path / "gap.xml", ["Id1", "Id3"])
    with pytest.raises(ValueError, match="Id1..Id2"):
        score_webnlg(["a", "b"], gap)


def test_meteor_stats_aggregation_skips_chunks_of_perfect_segments():
    zeros = " ".join(["0.0"] * 12)
    perfect = f"3.0 3.0 1.0 1.0 2.0 2.0 1.0 1.0 {zeros} 1.0 3.0 3.0"
    partial = f"4.0 5.0 1.0 2.0 2.0 2.0 0.0 1.0 {zeros} 2.0 2.0 3.0"
    total = aggregate_stats([perfect, partial]).split()
    assert [float(v) for v in total[:4]] == [7.0, 8.0, 2.0, 3.0]
    assert float(total[-3]) == 2.0  # only the imperfect segment's chunks count
    assert [float(v) for v in total[-2:]] == [5.0, 6.0]


def test_missing_java_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(meteor_jar.shutil, "which", lambda name: None)
    with pytest.raises(JavaNotFoundError, match="Java runtime"):
        meteor_jar.meteor_score(["a"], [["a"]], 1)


@pytest.mark.java
def test_jar_file_mode_on_the_official_input_files(shipped_vectors):
    inter = shipped_vectors / "webnlg" / "official_intermediate"
    official = _official(shipped_vectors / "webnlg" / "official_scores.json")
    score = meteor_file_score(inter / "team_all-cat.txt", inter / "gold-all-cat-reference-3ref.meteor", 3)
    assert score == pytest.approx(official["headline"]["A_all"]["METEOR"], abs=1e-9)


def test_ter_shortcut_for_outputs_equal_to_a_reference_matches_sacrebleu():
    import sacrebleu

    from prefixtune.metrics.ter import _chunk_stats

    pairs = [
        ("the cat sat", ["The cat sat", "a cat sat down"]),  # equal after TER's lower-casing: 0 edits
        ("the cat sat ", ["a dog", "the cat  sat"]),  # equal after its whitespace split
        ("the cat", ["the cat sat", "cat the"]),  # no match: the real search
        ("", ["", "x"]),
    ]
    ter = sacrebleu.TER()
    expected = []
    for hyp, refs in pairs:
        score = ter.sentence_score(hyp, refs)
        expected.append((float(score.num_edits), float(score.ref_length)))
    assert _chunk_stats(pairs) == expected
