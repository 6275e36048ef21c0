"""XSUM readers (legacy tarball and files, hub export), prepare, the official split ids, the synthetic set."""

from __future__ import annotations

import io
import json
import random
import sys
import tarfile
import types

import pytest

from prefixtune.data.errors import DataError
from prefixtune.data.prepare import prepare
from prefixtune.data.records import EvalItem, Pair, read_jsonl
from prefixtune.data.synthetic import write_synthetic
from prefixtune.data.synthetic_xsum import (
    sample_articles,
    write_synthetic_xsum,
    xsum_pretraining_pairs,
)
from prefixtune.data.xsum import (
    Article,
    assign_official_split,
    check_official_split,
    export_hub_xsum,
    read_official_split,
    read_xsum,
)


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
    (tmp_path / "val.source").write_text("a document\n \n")
    (tmp_path / "val.target").write_text("one summary\nanother\n")
    with pytest.raises(DataError, match=r"val\.source: line 2: a non-empty document"):
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


def test_hub_export_with_a_mocked_datasets_package(tmp_path, monkeypatch):
    rows = {
        "train": [{"id": "1", "document": "Rain fell.\nRivers rose.", "summary": " Floods hit Wales.\n"}],
        "validation": [{"id": "2", "document": "Oil fell.", "summary": "Oil got cheaper."}],
        "test": [{"id": "3", "document": "Bees  can\ncount.", "summary": "Bees count."}],
    }
    calls = []

    def load_dataset(name, split, revision=None):
        calls.append((name, split, revision))
        return rows[split]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    paths = export_hub_xsum(tmp_path / "hub")
    assert [c[1] for c in calls] == ["train", "validation", "test"] and calls[0][0] == "EdinburghNLP/xsum"
    assert read_xsum(paths["train"], "train") == [
        Article("1", "Rain fell. Rivers rose.", "Floods hit Wales.")
    ]
    prepare("xsum", paths, tmp_path / "prepared", {})
    items = read_jsonl(tmp_path / "prepared/test.jsonl", EvalItem)
    assert items == [EvalItem(id="3", source="Bees can count.", references=["Bees count."], key="3")]


def test_hub_documents_are_whitespace_normalised(tmp_path):
    record = {"id": "9", "document": "One line.\n\nAnother  line. ", "summary": "Two lines. "}
    (tmp_path / "dev.jsonl").write_text(json.dumps(record) + "\n")
    assert read_xsum(tmp_path / "dev.jsonl", "dev") == [Article("9", "One line. Another line.", "Two lines.")]


def test_assign_official_split_sorts_articles_by_id(tmp_path):
    ids = tmp_path / "split.json"
    ids.write_text(json.dumps({"train": ["a", "b"], "validation": ["c"], "test": ["d", "e"]}))
    articles = [Article(i, f"doc {i}", f"sum {i}") for i in ("e", "x", "a", "c")]
    splits, counts = assign_official_split(articles, ids)
    assert {k: [a.id for a in v] for k, v in splits.items()} == {"train": ["a"], "dev": ["c"], "test": ["e"]}
    assert counts == {
        "train_official": 2,
        "dev_official": 1,
        "test_official": 2,
        "train_found": 1,
        "dev_found": 1,
        "test_found": 1,
        "unassigned": 1,
    }
    ids.write_text(json.dumps({"train": ["a"], "test": ["d"]}))
    with pytest.raises(DataError, match=r"split\.json: top level"):
        read_official_split(ids)


def test_official_split_ids(shared_data, tmp_path):
    ids_file = shared_data / "xsum/XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json"
    if not ids_file.is_file():
        pytest.skip(f"{ids_file} is absent (a user's clone)")
    official = json.loads(ids_file.read_text())
    assert {k: len(v) for k, v in official.items()} == {"train": 204045, "validation": 11332, "test": 11334}
    articles = [Article(i, "d", "s") for i in official["test"][:3]] + [Article("not-an-id", "d", "s")]
    assert check_official_split(articles, "test", ids_file) == {"official": 11334, "present": 3, "foreign": 1}
    pool = articles + [Article(official["validation"][0], "d", "s")]
    splits, counts = assign_official_split(pool, ids_file)
    assert [len(splits[k]) for k in ("train", "dev", "test")] == [0, 1, 3]
    assert counts["train_official"] == 204045 and counts["unassigned"] == 1


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


def test_legacy_files_round_trip_through_prepare(tmp_path):
    raw = write_synthetic_xsum(tmp_path / "raw", n_train=6, n_val=2, n_test=3, seed=1)
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == [
        f"{s}.{x}" for s in ("test", "train", "val") for x in ("source", "target")
    ]
    prepare("xsum", raw, tmp_path / "from_files", {})
    documents = (tmp_path / "raw/train.source").read_text().splitlines()
    summaries = (tmp_path / "raw/train.target").read_text().splitlines()
    pairs = read_jsonl(tmp_path / "from_files/train.jsonl", Pair)
    assert pairs == [Pair(d, s) for d, s in zip(documents, summaries, strict=True)]
    refs = (tmp_path / "from_files/dev.refs.txt").read_text()
    assert refs == (tmp_path / "raw/val.target").read_text()
    # the same articles as the demo tarball of the same seed
    tarball = write_synthetic("xsum", tmp_path / "tar", seed=1, n_train=6, n_dev=2, n_test=3)
    prepare("xsum", tarball, tmp_path / "from_tar", {})
    for name in ("train.jsonl", "dev.jsonl", "test.jsonl", "test.refs.txt"):
        assert (tmp_path / "from_files" / name).read_bytes() == (tmp_path / "from_tar" / name).read_bytes()


def test_synthetic_xsum_files_are_deterministic(tmp_path):
    first = write_synthetic_xsum(tmp_path / "a", n_train=20, n_val=3, n_test=3, seed=2)
    second = write_synthetic_xsum(tmp_path / "b", n_train=20, n_val=3, n_test=3, seed=2)
    third = write_synthetic_xsum(tmp_path / "c", n_train=20, n_val=3, n_test=3, seed=3)
    assert first["train"].read_bytes() == second["train"].read_bytes() != third["train"].read_bytes()
    articles = read_xsum(first["train"], "train")
    assert len(articles) == 20 and all(len(a.document.split()) <= 120 for a in articles)


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


# --- ACL Table 7: the validation subset and protocol ---


def test_validation_subset_folder_holds_the_first_items_and_their_references(tmp_path):
    from prefixtune.data.valset import write_first_items
    from prefixtune.data.xsum_validation import write_validation_subset

    raw = write_synthetic_xsum(tmp_path / "raw", n_train=6, n_val=7, n_test=3, seed=1)
    prepare("xsum", raw, tmp_path / "prepared", {})
    dev = read_jsonl(tmp_path / "prepared" / "dev.jsonl", EvalItem)
    valset = tmp_path / "dev.first5.jsonl"
    write_first_items(tmp_path / "prepared" / "dev.jsonl", 5, valset)  # rule valset
    record = write_validation_subset(valset, 5, tmp_path / "xsum_validation_first5")
    out = tmp_path / "xsum_validation_first5"
    assert read_jsonl(out / "dev.jsonl", EvalItem) == dev[:5]  # the first five, in file order
    assert (out / "dev.refs.txt").read_text().splitlines() == [item.references[0] for item in dev[:5]]
    assert record["items"] == 5 and record["first_id"] == dev[0].id and record["last_id"] == dev[4].id
    assert json.loads((out / "subset.json").read_text()) == record
    with pytest.raises(
        DataError, match=r"dev\.first5\.jsonl: items: expected 1 to 3 validation items, found 5"
    ):
        write_validation_subset(valset, 3, tmp_path / "bad")


def test_validation_protocol_defaults_to_the_authors_loop_and_names_its_folder():
    from prefixtune.data.xsum_validation import DEFAULT, subset_name, validation_settings

    assert DEFAULT == {"articles": 500, "reference_max_tokens": 60}
    assert validation_settings({}) == DEFAULT
    switched = {"scoring": {"xsum_validation": {"articles": "all", "reference_max_tokens": 100}}}
    assert validation_settings(switched) == {"articles": "all", "reference_max_tokens": 100}
    assert subset_name(500) == "xsum_validation_first500" and subset_name("all") is None
    with pytest.raises(ValueError, match="expected a positive number or 'all'"):
        subset_name(0)
