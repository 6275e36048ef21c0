"""E2E: the authors' src1 files and the challenge CSV, grouping for evaluation, reference files, bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from prefixtune.data.e2e import e2e_items, find_item_by_mr, read_e2e, read_e2e_csv, read_src1
from prefixtune.data.errors import DataError
from prefixtune.data.linearize import linearize_e2e_mr, parse_e2e_mr, tokenize_e2e_value
from prefixtune.data.prepare import prepare
from prefixtune.data.synthetic import write_synthetic


def squeeze(text):
    return re.sub(r"\s", "", text)


# ----------------------------------------------------------------------------------------------------
# linearization


def test_mr_to_src1_source():
    mr = (
        "name[The Eagle], eatType[coffee shop], food[Japanese], priceRange[less than £20], "
        "customer rating[low], area[riverside], familyFriendly[yes], near[Burger King]"
    )
    assert linearize_e2e_mr(mr) == (
        "name : The Eagle | Type : coffee shop | food : Japanese | price : less than £ 20"
        " | customer rating : low | area : riverside | family friendly : yes | near : Burger King"
    )
    assert parse_e2e_mr("name[Cocum], priceRange[£20-25]") == [("name", "Cocum"), ("priceRange", "£20-25")]


@pytest.mark.parametrize(
    ("value", "tokenized"),
    [("£20-25", "£ 20 - 25"), ("less than £20", "less than £ 20"), ("more than £30", "more than £ 30"),
     ("5 out of 5", "5 out of 5"), ("Café Rouge", "Café Rouge")],
)  # fmt: skip
def test_values_are_tokenized_as_in_src1(value, tokenized):
    assert tokenize_e2e_value(value) == tokenized


@pytest.mark.parametrize("mr", ["name[The Eagle", "name[A], colour[red]", "", "name[A] eatType[pub]"])
def test_bad_mr_is_rejected(mr):
    with pytest.raises(ValueError):
        parse_e2e_mr(mr)


# ----------------------------------------------------------------------------------------------------
# shipped excerpts (always run)


def test_src1_excerpt(data_fixtures):
    pairs = read_src1(data_fixtures / "e2e_src1_test_excerpt.txt")
    assert len(pairs) == 18
    assert pairs[0].source == "name : Blue Spice | Type : coffee shop | area : city centre"
    assert pairs[0].target == "A coffee shop in the city centre area called Blue Spice . "  # not stripped
    items = e2e_items(pairs)
    assert [len(i.references) for i in items] == [2, 2, 7, 7]
    assert [i.id for i in items] == ["1", "2", "3", "4"]
    assert items[0].references == [
        "A coffee shop in the city centre area called Blue Spice .",
        "Blue Spice is a coffee shop in city centre .",
    ]
    assert items[2].source == (
        "name : Blue Spice | Type : pub | food : Chinese | area : city centre | family friendly : no"
        " | near : Rainbow Vegetarian Café"
    )
    assert items[3].source == (
        "name : The Cricketers | Type : restaurant | food : Chinese | price : £ 20 - 25"
        " | customer rating : high | area : city centre | family friendly : no | near : All Bar One"
    )
    assert items[3].references[0] == (
        "There is a restaurant called The Cricketers that provides Chinese food in the price range of"
        " £ 20-£25 it is in the city centre near All Bar One and is n't kids friends ."
    )
    assert all(i.key == i.source for i in items)


def test_csv_excerpt_gives_the_src1_sources(data_fixtures):
    csv_pairs = read_e2e_csv(data_fixtures / "e2e_testset_w_refs_excerpt.csv")
    src1_pairs = read_src1(data_fixtures / "e2e_src1_test_excerpt.txt")
    assert [p.source for p in csv_pairs] == [p.source for p in src1_pairs]
    assert [squeeze(p.target) for p in csv_pairs] == [squeeze(p.target) for p in src1_pairs]
    assert csv_pairs[0].target == "A coffee shop in the city centre area called Blue Spice."  # untokenized


def test_prepare_writes_grouped_references(data_fixtures, tmp_path):
    src1 = data_fixtures / "e2e_src1_test_excerpt.txt"
    prepare("e2e", {"train": src1, "dev": src1, "test": src1}, tmp_path, {"e2e_format": "src1"})
    refs = (tmp_path / "test.refs.txt").read_text(encoding="utf-8")
    assert refs.startswith(
        "A coffee shop in the city centre area called Blue Spice .\n"
        "Blue Spice is a coffee shop in city centre .\n"
        "\n"
        "There is a coffee shop Blue Spice in the riverside area .\n"
    )
    groups = refs.rstrip("\n").split("\n\n")
    assert [len(g.split("\n")) for g in groups] == [2, 2, 7, 7]
    assert (tmp_path / "dev.refs.txt").read_text(encoding="utf-8") == refs
    assert {p.name for p in tmp_path.iterdir()} == {
        "train.jsonl", "dev.jsonl", "test.jsonl", "dev.refs.txt", "test.refs.txt", "prepare.json"
    }  # fmt: skip


def test_prepare_rejects_a_format_mismatch(data_fixtures, tmp_path):
    csv = data_fixtures / "e2e_testset_w_refs_excerpt.csv"
    with pytest.raises(DataError, match=r"e2e_testset_w_refs_excerpt.csv: file name: expected a \.txt file"):
        prepare("e2e", {"train": csv, "dev": csv, "test": csv}, tmp_path, {"e2e_format": "src1"})
    prepare("e2e", {"train": csv, "dev": csv, "test": csv}, tmp_path, {"e2e_format": "csv"})


# ----------------------------------------------------------------------------------------------------
# bad input


def test_lines_without_exactly_one_separator_are_dropped(tmp_path):
    path = tmp_path / "src1_train.txt"
    path.write_text(
        "name : A | area : riverside||A is by the river . \nno separator\n\nname : B||x||y\n", "utf-8"
    )
    assert [p.source for p in read_src1(path)] == ["name : A | area : riverside"]


def test_bad_src1_source_names_file_and_line(tmp_path):
    path = tmp_path / "src1_train.txt"
    path.write_text("name : A||A . \nname : B||B . \ncolour : red||Red . \n", encoding="utf-8")
    with pytest.raises(
        DataError, match=r"src1_train.txt: line 3: expected a source 'field : value \| \.\.\.'"
    ):
        read_src1(path)


def test_file_without_pairs_is_an_error(tmp_path):
    path = tmp_path / "src1_test.txt"
    path.write_text("just text\n", encoding="utf-8")
    with pytest.raises(DataError, match="src1_test.txt: line 1: expected 'SOURCE||TARGET' lines"):
        read_src1(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("MR\nname[A]\n", "line 1: expected the header 'mr,ref'"),
        ('mr,ref\n"name[A]",A.\n"name[B], colour[red]",B.\n', "line 3: unknown E2E slot 'colour'"),
        ('mr,ref\n"name[A]",A.\n"name[B]",B.,extra\n', "line 3: expected 2 columns"),
    ],
)
def test_bad_csv_names_file_and_line(tmp_path, text, message):
    path = tmp_path / "devset.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_e2e_csv(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


# ----------------------------------------------------------------------------------------------------
# real official files


def test_real_src1_counts(shared_data):
    folder = shared_data / "e2e" / "prefixtuning_format"
    test = e2e_items(read_src1(folder / "src1_test.txt"))
    dev = e2e_items(read_src1(folder / "src1_valid.txt"))
    assert len(test) == 630 and sum(len(i.references) for i in test) == 4693
    assert len(dev) == 547 and sum(len(i.references) for i in dev) == 4672
    assert max(len(i.references) for i in test) == 45
    assert sum(len(i.references) == 1 for i in test) == 14
    assert test[0].source == "name : Blue Spice | Type : coffee shop | area : city centre"
    assert all(r == r.strip() for i in test for r in i.references)


@pytest.mark.parametrize(("csv_name", "src1_name"), [("testset_w_refs.csv", "src1_test.txt"),
                                                     ("devset.csv", "src1_valid.txt")])  # fmt: skip
def test_real_csv_maps_exactly_to_src1(shared_data, csv_name, src1_name):
    csv_pairs = read_e2e_csv(shared_data / "e2e" / csv_name)
    src1_pairs = read_src1(shared_data / "e2e" / "prefixtuning_format" / src1_name)
    assert len(csv_pairs) == len(src1_pairs)
    assert [p.source for p in csv_pairs] == [p.source for p in src1_pairs]  # every source string, exactly
    assert [squeeze(p.target) for p in csv_pairs] == [squeeze(p.target) for p in src1_pairs]
    assert all(p.target.endswith(" ") and not p.target.endswith("  ") for p in src1_pairs)


# ----------------------------------------------------------------------------------------------------
# Figure 3's text panel: the paper's source, selected by its complete field set

ROOT = Path(__file__).resolve().parents[1]
PAPER_SOURCE = (
    "name : The Eagle | Type : coffee shop | food : Chinese | price : cheap | customer rating : average"
    " | area : riverside | family friendly : no | near : Burger King"
)


def panel_mr(config_name: str) -> str:
    config = yaml.safe_load((ROOT / "config" / config_name).read_text(encoding="utf-8"))
    return config["artifacts"]["figure3"]["qualitative"]["mr"]


@pytest.mark.parametrize("raw", ["prefixtuning_format/src1_valid.txt", "devset.csv"])
def test_real_dev_set_gives_the_papers_figure3_item(shared_data, raw):
    path = shared_data / "e2e" / raw
    sources = [item.source for item in e2e_items(read_e2e(path))]
    index = find_item_by_mr(sources, panel_mr("config.yaml"), path)
    assert sources[index] == PAPER_SOURCE
    # the four-value filter used before matched another restaurant first (customer rating 5 out of 5)
    partial = next(
        s for s in sources if all(v in s for v in ("The Eagle", "Chinese", "cheap", "Burger King"))
    )
    assert "customer rating : 5 out of 5" in partial and partial != PAPER_SOURCE


def test_figure3_item_selection_needs_exactly_one_complete_match(tmp_path):
    path = tmp_path / "dev.jsonl"
    mr = panel_mr("demo.yaml")
    fewer = PAPER_SOURCE.rsplit(" | ", 1)[0]  # without near[Burger King]
    more = PAPER_SOURCE + " | near : Café Rouge"
    reordered = " | ".join(reversed(PAPER_SOURCE.split(" | ")))
    assert find_item_by_mr([fewer, more, reordered], mr, path) == 2  # the field set, in any order
    with pytest.raises(
        DataError,
        match=rf"^{re.escape(str(path))}: items: expected exactly one item with "
        r"exactly the fields 'name\[The Eagle\], .*near\[Burger King\]'; none of the 2 items has them$",
    ):
        find_item_by_mr([fewer, more], mr, path)
    with pytest.raises(DataError, match=r"dev\.jsonl: items: .*; 2 of the 3 items have them \(items 1, 3\)$"):
        find_item_by_mr([PAPER_SOURCE, fewer, reordered], mr, path)
    with pytest.raises(DataError, match=r"dev\.jsonl: the text panel's MR: unknown E2E slot 'colour'"):
        find_item_by_mr([PAPER_SOURCE], "name[The Eagle], colour[red]", path)


@pytest.mark.parametrize("n_dev", [1, 4, 30])
def test_synthetic_dev_set_holds_the_papers_item_once(tmp_path, n_dev):
    paths = write_synthetic("e2e", tmp_path, seed=1, n_train=40, n_dev=n_dev, n_test=5)
    for split, path in paths.items():
        sources = [item.source for item in e2e_items(read_src1(path))]
        if split == "dev":
            assert len(sources) == n_dev
            assert sources[find_item_by_mr(sources, panel_mr("demo.yaml"), path)] == PAPER_SOURCE
        else:
            assert PAPER_SOURCE not in sources
