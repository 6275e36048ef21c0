"""XSUM extrapolation splits: the raw-format reader, URL topics, both split kinds, errors, the synthetic corpus."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from prefixtune.cli import main
from prefixtune.data.errors import DataError
from prefixtune.data.records import EvalItem, Pair, read_jsonl
from prefixtune.data.synthetic import write_synthetic
from prefixtune.data.xsum import read_official_split
from prefixtune.data.xsum_topics import (
    BOILERPLATE,
    RawArticle,
    build_split,
    make_xsum_split,
    parse_summary,
    read_raw,
    topic_from_url,
)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "xsum_raw"
SPLIT_IDS = FIXTURE / "XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json"
PREPARED_FILES = {"train.jsonl", "dev.jsonl", "test.jsonl", "dev.refs.txt", "test.refs.txt", "prepare.json"}


def tar_of(folder: Path, out: Path) -> Path:
    """The fixture folder packed as the official tarball (members bbc-summary-data/<id>.summary)."""
    with tarfile.open(out, "w:gz") as tar:
        tar.add(folder / "bbc-summary-data", arcname="bbc-summary-data")
    return out


def authors_document(text: str) -> tuple[str, str, str]:
    """An independent restatement of meta_data_xsum.py's parsing: drop blank and boilerplate lines (with their
    newline), cut at [SN], take segments 2 / 6 / 8, and remove the document's newlines."""
    lines = io.StringIO(text, newline=None).readlines()
    kept = "".join(line for line in lines if line not in {b + "\n" for b in BOILERPLATE} and line.strip())
    segments = kept.split("[SN]")
    return segments[2].strip(), segments[6].strip(), segments[8].strip().replace("\n", "").strip()


# --- reader ---


def test_folder_and_tarball_read_the_same(tmp_path):
    from_dir = read_raw(FIXTURE / "bbc-summary-data")
    from_tar = read_raw(tar_of(FIXTURE, tmp_path / "XSUM-EMNLP18-Summary-Data-Original.tar.gz"))
    assert from_dir == from_tar
    assert len(from_dir) == 16
    assert set(from_dir) == {i for ids in read_official_split(SPLIT_IDS).values() for i in ids}


def test_reader_matches_the_authors_parsing_on_every_fixture():
    for path in sorted((FIXTURE / "bbc-summary-data").glob("*.summary")):
        article = read_raw(path.parent, [path.stem])[path.stem]
        text = path.read_bytes().decode("utf-8")
        assert (article.url, article.summary, article.document) == authors_document(text), path.name


def test_document_is_restbody_without_boilerplate_and_newlines():
    article = read_raw(FIXTURE / "bbc-summary-data", ["31000001"])["31000001"]
    assert (
        article.summary
        == "Council tax in Leeds will rise by 4% from April after councillors approved the budget."
    )
    assert article.document == (
        "Councillors voted 52 to 31 in favour of the plan on Wednesday evening."
        "The council said the money would pay for social care."
        "Opposition members said residents could not afford the increase."
    )
    spaced = read_raw(FIXTURE / "bbc-summary-data", ["31000001", "31000003"], line_join="space")
    assert "evening. The council" in spaced["31000001"].document
    assert (
        spaced["31000003"].document
        == "Drivers were told to wait in nearby towns. Police said the roads could reopen on Sunday."
    )
    assert "\r" not in spaced["31000003"].url


def test_boilerplate_word_inside_a_sentence_is_kept():
    text = "[SN]URL[SN]\nhttp://www.bbc.com/news/uk-1\n[SN]TITLE[SN]\nT\n[SN]FIRST-SENTENCE[SN]\nS.\n"
    text += "[SN]RESTBODY[SN]\nEmail\nEmail was down.\nTwitter \n"
    assert parse_summary(text, "x", "1").document == "Email was down.Twitter"


# --- topics ---


@pytest.mark.parametrize(
    ("url", "topic"),
    [
        ("http://www.bbc.com/news/uk-politics-35232142", ("news", "uk")),
        ("http://www.bbc.co.uk/news/uk-scotland-glasgow-west-34861711", ("news", "uk")),
        (
            "http://web.archive.org/web/20150722034815/http://www.bbc.co.uk/news/uk-england-33617532",
            ("news", "uk"),
        ),
        (
            "https://web.archive.org/web/20161010/http://www.bbc.com/news/world-europe-37584811",
            ("news", "world"),
        ),
        (
            "http://web.archive.org/web/20160101id_/http://www.bbc.com/news/business-35210593",
            ("news", "business"),
        ),
        ("http://www.bbc.com/news/science-environment-36123456", ("news", "science")),
        ("http://www.bbc.com/news/entertainment-arts-38291414", ("news", "entertainment")),
        (
            "http://web.archive.org/web/20170101/http://www.bbc.com/sport/football/38479427",
            ("sport", "football"),
        ),
        ("http://www.bbc.com/sport/rugby-union/38481234/", ("sport", "rugby-union")),
        ("http://www.bbc.co.uk/sport/football/38479427?ns_source=twitter#comments", ("sport", "football")),
        ("http://web.archive.org/web/20150101/http://www.bbc.co.uk/sport/30612345", ("sport",)),
        ("http://www.bbc.co.uk/sport/0/football/33638424", ("0", "football")),  # kept as the authors had it
        ("http://www.bbc.com/news/35232142", ("news",)),
        ("http://www.bbc.com/news/magazine-35201234", ("news", "magazine")),
        ("http://www.bbc.co.uk/news/business/companies-35201234", ("news", "business", "companies")),
        ("http://www.bbc.co.uk/news/world/asia/china-35201234", ("world", "asia", "china")),  # the last three
    ],
)
def test_topic_from_url(url, topic):
    assert topic_from_url(url) == topic


# --- splits ---


@pytest.fixture(scope="module")
def fixture_records():
    return read_raw(FIXTURE / "bbc-summary-data"), read_official_split(SPLIT_IDS)


def ids(articles) -> list[str]:
    return [a.id for a in articles]


def test_news_sports_split(fixture_records):
    records, official = fixture_records
    split = build_split(records, official, "news_sports", seed=0)
    assert {a.topic[0] for a in split.parts["train"] + split.parts["dev"]} == {"news"}
    assert {a.topic[0] for a in split.parts["test"]} == {"sport"}
    assert ids(split.parts["train"]) == [
        "31000001",
        "31000002",
        "31000003",
        "31000004",
        "31000005",
        "31000006",
    ]
    assert ids(split.parts["dev"]) == ["32000001", "32000002"]  # official validation
    assert sorted(ids(split.parts["test"])) == ["31000007", "31000008"]  # sport/0/football is ('0', ...)
    assert split.skipped_empty == {"train": 1, "validation": 0}  # 31000010 has no body
    assert not set(ids(split.parts["train"])) & set(ids(split.parts["test"]))
    from_test = build_split(records, official, "news_sports", seed=0, test_from="test")
    assert ids(from_test.parts["test"]) == ["33000002"]


def test_within_news_split(fixture_records):
    records, official = fixture_records
    split = build_split(records, official, "within_news", seed=0)
    assert {a.topic for a in split.parts["train"]} == {
        ("news", "uk"),
        ("news", "world"),
        ("news", "business"),
    }
    assert {a.topic for a in split.parts["dev"]} == {("news", "uk")}
    assert {a.topic for a in split.parts["test"]} == {("news", "health"), ("news", "technology")}
    from_test = build_split(records, official, "within_news", seed=0, test_from="test")
    assert ids(from_test.parts["test"]) == ["33000001"]


def test_within_news_keeps_only_whole_two_part_topics_in_training():
    """The authors' ``topic in [('news', 'uk'), ('news', 'business'), ('news', 'world')]`` compares whole tuples:
    three-part URL topics under news/business or news/world, and the bare ('news',), go to the test side."""
    host = "http://www.bbc.co.uk"
    urls = {
        "1": f"{host}/news/uk-politics-1",
        "2": f"{host}/news/business-2",
        "3": f"{host}/news/world-europe-3",
        "4": f"{host}/news/business/companies-4",  # ('news', 'business', 'companies')
        "5": f"{host}/news/world/europe-5",  # ('news', 'world', 'europe')
        "6": f"{host}/news/uk/scotland-6",  # ('news', 'uk', 'scotland')
        "7": f"{host}/news/7",  # ('news',)
        "8": f"{host}/news/health-8",
        "9": f"{host}/sport/football/9",  # neither side
        "10": f"{host}/news/uk-10",
    }
    records = {i: RawArticle(i, url, f"Summary {i}.", f"Document {i}.") for i, url in urls.items()}
    assert records["4"].topic == ("news", "business", "companies")
    assert records["5"].topic == ("news", "world", "europe")
    official = {"train": [str(i) for i in range(1, 10)], "validation": ["10", "4"], "test": []}
    split = build_split(records, official, "within_news", seed=0)
    assert ids(split.parts["train"]) == ["1", "2", "3"]
    assert ids(split.parts["dev"]) == ["10"]
    assert sorted(ids(split.test_pool)) == ["4", "5", "6", "7", "8"]
    for article in split.test_pool:  # an independent restatement of the authors' test-side rule
        assert article.topic[0] == "news"
        assert article.topic not in [("news", "uk"), ("news", "business"), ("news", "world")]


@pytest.fixture(scope="module")
def synthetic_raw(tmp_path_factory):
    out = tmp_path_factory.mktemp("raw")
    paths = write_synthetic("xsum_raw", out, seed=4, n_train=360, n_dev=40, n_test=40)
    return paths["raw"], paths["split_ids"]


def test_cap_is_a_seeded_numpy_sample(synthetic_raw):
    raw, split_ids = synthetic_raw
    records, official = read_raw(raw), read_official_split(split_ids)
    first = build_split(records, official, "news_sports", seed=7, test_cap=15)
    again = build_split(records, official, "news_sports", seed=7, test_cap=15)
    other = build_split(records, official, "news_sports", seed=8, test_cap=15)
    assert len(first.parts["test"]) == 15 and len(first.test_pool) > 15
    assert ids(first.parts["test"]) == ids(again.parts["test"]) != ids(other.parts["test"])
    np.random.seed(7)  # the authors' unseeded call, seeded
    expected = [first.test_pool[i].id for i in np.random.choice(len(first.test_pool), 15, replace=False)]
    assert ids(first.parts["test"]) == expected
    assert ids(first.parts["train"]) == ids(other.parts["train"])  # only the test sample depends on the seed


def test_written_split_has_the_prepared_layout_and_its_sizes(tmp_path, fixture_records):
    out = tmp_path / "splits" / "news_sports"
    sizes = make_xsum_split(FIXTURE / "bbc-summary-data", SPLIT_IDS, "news_sports", 3, 8000, out)
    assert sizes == {"train": 6, "dev": 2, "test": 2}
    assert {p.name for p in out.iterdir()} == PREPARED_FILES | {"split.json", "ids.json"}
    train, test = read_jsonl(out / "train.jsonl", Pair), read_jsonl(out / "test.jsonl", EvalItem)
    assert len(train) == 6 and train[0].target.startswith("Council tax in Leeds")
    refs = (out / "test.refs.txt").read_text().splitlines()
    assert refs == [item.references[0] for item in test]
    manifest = json.loads((out / "split.json").read_text())
    assert manifest["kind"] == "news_sports" and manifest["seed"] == 3 and manifest["test_cap"] == 8000
    assert manifest["sizes"] == {"train": 6, "dev": 2, "test": 2, "test_pool": 2}
    assert manifest["topics"]["test"] == {"sport/football": 2}
    assert manifest["official_split"] == {"train": "train", "dev": "validation", "test": "train"}
    assert len(manifest["inputs"]["raw"]["sha256"]) == 64 == len(manifest["inputs"]["split_ids"]["sha256"])
    prepared = json.loads((out / "prepare.json").read_text())
    assert prepared["dataset"] == "xsum" and prepared["counts"]["test"]["items"] == 2
    assert json.loads((out / "ids.json").read_text())["test"] == [item.id for item in test]


def test_rewrite_replaces_and_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    from prefixtune.data import xsum_topics

    out = tmp_path / "within_news"
    make_xsum_split(FIXTURE / "bbc-summary-data", SPLIT_IDS, "within_news", 0, 8000, out)
    (out / "stale.txt").write_text("old")
    make_xsum_split(FIXTURE / "bbc-summary-data", SPLIT_IDS, "within_news", 0, 1, out)
    assert (
        not (out / "stale.txt").exists()
        and json.loads((out / "split.json").read_text())["sizes"]["test"] == 1
    )

    def fail(path, data):
        raise OSError("disk full")

    monkeypatch.setattr(xsum_topics, "write_json_atomic", fail)
    with pytest.raises(OSError):
        make_xsum_split(FIXTURE / "bbc-summary-data", SPLIT_IDS, "within_news", 0, 8000, tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["within_news"]


# --- errors ---


def test_missing_section_names_the_file(tmp_path):
    bad = tmp_path / "1.summary"
    bad.write_text(
        "[SN]URL[SN]\nhttp://www.bbc.com/news/uk-1\n\n[SN]TITLE[SN]\nT\n\n[SN]FIRST-SENTENCE[SN]\nS.\n"
    )
    with pytest.raises(DataError, match=r"1\.summary: section \[SN\]RESTBODY\[SN\]: expected the sections"):
        read_raw(tmp_path, ["1"])


def test_id_without_article_is_reported(tmp_path):
    with pytest.raises(DataError, match=r"99999999\.summary: file: the article 99999999"):
        read_raw(FIXTURE / "bbc-summary-data", ["31000001", "99999999"])
    tarball = tar_of(FIXTURE, tmp_path / "raw.tar.gz")
    with pytest.raises(
        DataError, match=r"raw\.tar\.gz: article 99999999: bbc-summary-data/99999999\.summary"
    ):
        read_raw(tarball, ["31000001", "99999999"])
    records, official = read_raw(FIXTURE / "bbc-summary-data"), read_official_split(SPLIT_IDS)
    official["validation"].append("99999999")
    with pytest.raises(ValueError, match="'99999999' of the official 'validation' split has no article"):
        build_split(records, official, "news_sports", 0)


def test_empty_split_is_an_error(tmp_path):
    split_ids = tmp_path / "split.json"
    official = read_official_split(SPLIT_IDS)
    split_ids.write_text(json.dumps({**official, "validation": ["32000003"]}))  # only a sport article
    with pytest.raises(DataError, match=r"split\.json: splits: within_news: the dev split is empty"):
        make_xsum_split(FIXTURE / "bbc-summary-data", split_ids, "within_news", 0, 8000, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_settings_are_rejected(fixture_records):
    records, official = fixture_records
    for kwargs in ({"kind": "sports"}, {"test_cap": 0}, {"test_from": "validation"}, {"seed": -1}):
        with pytest.raises(ValueError):
            build_split(records, official, **{"kind": "news_sports", "seed": 0, **kwargs})


# --- synthetic raw corpus ---


def test_synthetic_raw_corpus_round_trips_through_the_cli(tmp_path, synthetic_raw):
    raw, split_ids = synthetic_raw
    with tarfile.open(raw) as tar:
        names = tar.getnames()
    assert all(n.startswith("bbc-summary-data/") and n.endswith(".summary") for n in names)
    official = read_official_split(split_ids)
    assert [len(official[k]) for k in ("train", "validation", "test")] == [360, 40, 40]
    records = read_raw(raw)
    assert len(records) == 440 and all(
        a.url.startswith("http://web.archive.org/web/") for a in records.values()
    )
    assert all(a.url.endswith(a.id) for a in records.values())
    for kind in ("news_sports", "within_news"):
        out = tmp_path / kind
        main(["xsum-split", "--raw", str(raw), "--split-ids", str(split_ids), "--kind", kind]
             + ["--seed", "0", "--test-cap", "40", "--out-dir", str(out)])  # fmt: skip
        sizes = json.loads((out / "split.json").read_text())["sizes"]
        assert sizes["train"] >= 60 and sizes["test"] == 40 and sizes["dev"] >= 15, (kind, sizes)


def test_synthetic_raw_corpus_is_deterministic(tmp_path):
    a = write_synthetic("xsum_raw", tmp_path / "a", seed=1, n_train=30, n_dev=5, n_test=5)
    b = write_synthetic("xsum_raw", tmp_path / "b", seed=1, n_train=30, n_dev=5, n_test=5)
    assert all(a[k].read_bytes() == b[k].read_bytes() for k in ("raw", "split_ids"))
