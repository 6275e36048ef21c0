"""XSUM readers (legacy tarball and files, hub export), prepare, the official split ids, the synthetic set."""

from __future__ import annotations

import io
import json
import random
import tarfile

import pytest

from prefixtune.data.errors import DataError
from prefixtune.data.prepare import prepare
from prefixtune.data.records import EvalItem, Pair, read_jsonl
from prefixtune.data.synthetic import write_synthetic
from prefixtune.data.synthetic_xsum import sample_articles, xsum_pretraining_pairs
from prefixtune.data.xsum import Article, check_official_split, read_xsum


def write_tarball(path, members: dict[str, str]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_legacy_files_and_tarball_read_the_same(tmp_path):
    (tmp_path / "test.source").write_text("Rain fell in Wales on Monday .\nOil prices fell .\n")
    (tmp_path / "test.target").write_text("It rained in Wales.\nOil got cheaper.\n")
    write_tarball(
        tmp_path / "xsum.tar.gz",
        {
            "xsum/test.source": (tmp_path / "test.source").read_text(),
            "xsum/test.target": (tmp_path / "test.target").read_text(),
        },
    )
    from_files = read_xsum(tmp_path / "test.source", "test")
    assert from_files == read_xsum(tmp_path / "xsum.tar.gz", "test")
    assert from_files[1] == Article("2", "Oil prices fell .", "Oil got cheaper.")


def test_line_count_mismatch_and_empty_lines_name_file_and_line(tmp_path):
    (tmp_path / "val.source").write_text("a document\nanother\n")
    (tmp_path / "val.target").write_text("one summary\n")
    with pytest.raises(DataError, match=r"val\.source.*2 documents but .*val\.target has 1"):
        read_xsum(tmp_path / "val.source", "dev")
    (tmp_path / "val.target").write_text("one summary\n\n")
    with pytest.raises(DataError, match=r"val\.target.*line 2.*non-empty summary"):
        read_xsum(tmp_path / "val.source", "dev")
    (tmp_path / "x.source").write_text("doc\n")
    with pytest.raises(DataError, match=r"x\.target"):
        read_xsum(tmp_path / "x.source", "dev")


def test_tarball_without_the_split_and_a_broken_archive_are_errors(tmp_path):
    write_tarball(tmp_path / "xsum.tar.gz", {"xsum/train.source": "d\n", "xsum/train.target": "s\n"})
    with pytest.raises(DataError, match="member val.source"):
        read_xsum(tmp_path / "xsum.tar.gz", "dev")
    (tmp_path / "cut.tar.gz").write_bytes((tmp_path / "xsum.tar.gz").read_bytes()[:20])
    with pytest.raises(DataError, match="readable .tar.gz"):
        read_xsum(tmp_path / "cut.tar.gz", "train")


def test_hub_export_lines_are_checked(tmp_path):
    good = {"id": "40453444", "document": "A long article .", "summary": "A summary."}
    (tmp_path / "test.jsonl").write_text(
        json.dumps(good) + "\n" + json.dumps({"id": "1", "document": "x"}) + "\n"
    )
    with pytest.raises(DataError, match=r"test\.jsonl.*line 2.*string fields"):
        read_xsum(tmp_path / "test.jsonl", "test")
    (tmp_path / "test.jsonl").write_text(json.dumps(good) + "\n")
    assert read_xsum(tmp_path / "test.jsonl", "test")[0].id == "40453444"
    with pytest.raises(DataError, match="an xsum .tar.gz"):
        read_xsum(tmp_path / "test.csv", "test")


def test_official_split_ids(shared_data, tmp_path):
    ids_file = shared_data / "xsum/XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json"
    if not ids_file.is_file():
        pytest.skip(f"{ids_file} is absent (a user's clone)")
    official = json.loads(ids_file.read_text())
    assert {k: len(v) for k, v in official.items()} == {"train": 204045, "validation": 11332, "test": 11334}
    articles = [Article(i, "d", "s") for i in official["test"][:3]] + [Article("not-an-id", "d", "s")]
    assert check_official_split(articles, "test", ids_file) == {"official": 11334, "present": 3, "foreign": 1}


def test_prepare_writes_pairs_items_and_one_reference_per_line(tmp_path):
    raw = write_synthetic("xsum", tmp_path / "raw", seed=1, n_train=6, n_dev=2, n_test=3)
    out = tmp_path / "prepared"
    prepare("xsum", raw, out, {})
    pairs = read_jsonl(out / "train.jsonl", Pair)
    items = read_jsonl(out / "test.jsonl", EvalItem)
    assert len(pairs) == 6 and len(items) == 3 and [i.id for i in items] == ["1", "2", "3"]
    assert (out / "test.refs.txt").read_text().splitlines() == [i.references[0] for i in items]
    manifest = json.loads((out / "prepare.json").read_text())
    assert manifest["counts"]["dev"]["items"] == 2


def test_synthetic_xsum_is_deterministic_and_not_in_the_pretraining_targets(tmp_path):
    first = write_synthetic("xsum", tmp_path / "a", seed=5, n_train=30, n_dev=5, n_test=5)
    second = write_synthetic("xsum", tmp_path / "b", seed=5, n_train=30, n_dev=5, n_test=5)
    assert first["train"].read_bytes() == second["train"].read_bytes()
    summaries = {s for _, s in sample_articles(random.Random("xsum:5"), 40)}
    pretraining_outputs = {target for _, target in xsum_pretraining_pairs(0, 300)}
    assert not summaries & pretraining_outputs  # no demo summary is a pre-training output
    from prefixtune.data.synthetic_xsum import DEMO_POOL

    names = [n for key in ("TEAMS", "PLAYERS", "PEOPLE", "COMPANIES") for n in DEMO_POOL[key]]
    texts = " ".join(a + " " + b for a, b in xsum_pretraining_pairs(0, 300))
    assert not [n for n in names if n in texts]  # pre-training is about other entities
    assert all(len(doc.split()) <= 120 for doc, _ in sample_articles(random.Random(0), 200))
