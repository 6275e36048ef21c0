"""Synthetic demo data: each dataset's real raw format, read back by the real readers, deterministic."""

from __future__ import annotations

import re

import pytest

from prefixtune.data import synthetic_dart, synthetic_e2e, synthetic_webnlg
from prefixtune.data.dart import dart_items, read_dart
from prefixtune.data.e2e import read_e2e_csv, read_src1
from prefixtune.data.linearize import E2E_FIELDS
from prefixtune.data.prepare import prepare
from prefixtune.data.records import EvalItem, Pair, read_jsonl
from prefixtune.data.synthetic import synthetic_lm_corpus, write_synthetic
from prefixtune.data.webnlg import UNSEEN_CATEGORIES, read_webnlg

SIZES = {"n_train": 120, "n_dev": 12, "n_test": 20}
NAMES = {
    "e2e": ("src1_train.txt", "src1_valid.txt", "src1_test.txt"),
    "webnlg": ("train.xml", "dev.xml", "testdata_with_lex.xml"),
    "dart": ("dart-v1.1.1-full-train.json", "dart-v1.1.1-full-dev.json", "dart-v1.1.1-full-test.json"),
}


@pytest.fixture(scope="module", params=["e2e", "webnlg", "dart"])
def prepared(request, tmp_path_factory):
    dataset = request.param
    root = tmp_path_factory.mktemp(dataset)
    raw = write_synthetic(dataset, root / "raw", seed=5, **SIZES)
    prepare(dataset, raw, root / "prepared", {})
    return dataset, raw, root / "prepared"


def test_files_are_named_as_the_real_ones(prepared):
    dataset, raw, _ = prepared
    assert tuple(raw[s].name for s in ("train", "dev", "test")) == NAMES[dataset]


def test_round_trip_through_the_real_readers(prepared):
    dataset, _, out = prepared
    train = read_jsonl(out / "train.jsonl", Pair)
    dev, test = read_jsonl(out / "dev.jsonl", EvalItem), read_jsonl(out / "test.jsonl", EvalItem)
    assert len(train) == SIZES["n_train"]
    assert len(dev) == SIZES["n_dev"] and len(test) == SIZES["n_test"]
    assert all(2 <= len(i.references) <= 3 for i in test)
    assert all(p.source and p.target for p in train)
    refs = {"e2e": "test.refs.txt", "webnlg": "test.refs.xml", "dart": "test.refs/reference0.lex"}[dataset]
    assert (out / refs).is_file()


def test_deterministic_from_the_seed(tmp_path):
    for dataset in NAMES:
        a = write_synthetic(dataset, tmp_path / "a" / dataset, seed=3, **SIZES)
        b = write_synthetic(dataset, tmp_path / "b" / dataset, seed=3, **SIZES)
        c = write_synthetic(dataset, tmp_path / "c" / dataset, seed=4, **SIZES)
        assert all(a[s].read_bytes() == b[s].read_bytes() for s in a)
        assert a["train"].read_bytes() != c["train"].read_bytes()


def test_e2e_src1_and_csv_hold_the_same_rows(tmp_path):
    write_synthetic("e2e", tmp_path, seed=1, **SIZES)
    for split in ("train", "dev", "test"):
        src1 = read_src1(tmp_path / synthetic_e2e.RAW_NAMES["src1"][split])
        csv = read_e2e_csv(tmp_path / synthetic_e2e.RAW_NAMES["csv"][split])
        assert [p.source for p in src1] == [p.source for p in csv]
        assert [re.sub(r"\s", "", p.target) for p in src1] == [re.sub(r"\s", "", p.target) for p in csv]
        assert all(p.target.endswith(" . ") for p in src1)  # tokenized, trailing space, as the real files
    test = {p.source for p in read_src1(tmp_path / "src1_test.txt")}
    train = {p.source for p in read_src1(tmp_path / "src1_train.txt")}
    assert not test & train  # test MRs are new combinations of known values


def test_e2e_targets_verbalise_every_field(tmp_path):
    write_synthetic("e2e", tmp_path, seed=1, **SIZES)
    for pair in read_e2e_csv(tmp_path / "trainset.csv"):
        fields = dict(part.split(" : ", 1) for part in pair.source.split(" | "))
        assert set(fields) <= set(E2E_FIELDS.values())
        for field, value in fields.items():
            if field == "family friendly":
                assert ("not family friendly" in pair.target) == (value == "no")
            else:
                assert value.replace("£ ", "£").replace(" - ", "-") in pair.target, (field, pair)


def test_webnlg_test_mixes_seen_and_unseen_and_json_equals_xml(tmp_path):
    write_synthetic("webnlg", tmp_path, seed=2, **SIZES)
    test = read_webnlg(tmp_path / "testdata_with_lex.xml")
    assert [e.eid for e in test] == [f"Id{n}" for n in range(1, SIZES["n_test"] + 1)]
    unseen = [e for e in test if e.category in UNSEEN_CATEGORIES]
    assert 0 < len(unseen) < len(test)
    train = read_webnlg(tmp_path / "train.xml")
    assert not {e.category for e in train} & UNSEEN_CATEGORIES
    assert any(lex.comment == "toFix" for e in train for lex in e.lexes)  # filtered out by webnlg_pairs
    for split in ("train", "dev", "test"):
        xml = read_webnlg(tmp_path / synthetic_webnlg.RAW_NAMES["xml"][split])
        assert read_webnlg(tmp_path / synthetic_webnlg.RAW_NAMES["json"][split]) == xml
    for entry in test:
        assert entry.size == len(entry.triples)
        for lex in entry.lexes:
            for _, _, obj in entry.triples:
                assert synthetic_webnlg.surface(obj) in lex.text


def test_dart_test_json_equals_xml_and_repeats_triplesets(tmp_path):
    write_synthetic("dart", tmp_path, seed=3, n_train=120, n_dev=12, n_test=60)
    from_json = dart_items(read_dart(tmp_path / synthetic_dart.RAW_NAMES["test"]))
    from_xml = dart_items(read_dart(tmp_path / synthetic_dart.RAW_NAMES["test_xml"]))
    assert from_json == from_xml
    assert len({i.key for i in from_json}) < len(from_json)  # some entries share a decoding key
    assert any("[TABLECONTEXT] : [title] : " in i.source for i in from_json)


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_lm_corpus_is_deterministic_and_not_the_targets(tmp_path):
    corpus = synthetic_lm_corpus(0, 2000)
    assert (
        len(corpus) == 2000
        and corpus == synthetic_lm_corpus(0, 2000)
        and corpus != synthetic_lm_corpus(1, 2000)
    )
    targets = set()
    for dataset in NAMES:
        raw = write_synthetic(dataset, tmp_path / dataset, seed=1, **SIZES)
        prepare(dataset, raw, tmp_path / f"{dataset}-prepared", {})
        prepared = tmp_path / f"{dataset}-prepared"
        targets |= {_squeeze(p.target) for p in read_jsonl(prepared / "train.jsonl", Pair)}
        for split in ("dev", "test"):
            items = read_jsonl(prepared / f"{split}.jsonl", EvalItem)
            targets |= {_squeeze(r) for item in items for r in item.references}
    assert len(targets) > 50
    assert not targets & {_squeeze(text) for text in corpus}  # not even up to tokenization


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        write_synthetic("cnndm", tmp_path, 0, 10, 2, 2)
    with pytest.raises(ValueError, match="sizes must be positive"):
        write_synthetic("e2e", tmp_path, 0, 10, 0, 2)
