"""Records and JSON lines (round trip, atomic writes, errors naming file and line); the GPT-2 strings."""

from __future__ import annotations

import pytest

from prefixtune.data.errors import DataError, read_utf8
from prefixtune.data.linearize import gpt2_prompt, gpt2_training_text
from prefixtune.data.records import EvalItem, Pair, make_key, read_jsonl, write_jsonl


def test_round_trip_keeps_whitespace_and_unicode(tmp_path):
    pairs = [Pair("name : Café Rouge | price : £ 20 - 25", "It is cheap . "), Pair("a\u2028b", "line\nbreak")]
    items = [
        EvalItem(
            "Id1", " | s : p : o", ["ref one", "réf two"], make_key(" | s : p : o", ["p"]), {"seen": True}
        )
    ]
    write_jsonl(tmp_path / "p.jsonl", pairs)
    write_jsonl(tmp_path / "i.jsonl", items)
    assert read_jsonl(tmp_path / "p.jsonl", Pair) == pairs
    assert read_jsonl(tmp_path / "i.jsonl", EvalItem) == items
    assert "£" in (tmp_path / "p.jsonl").read_text(encoding="utf-8")  # not ASCII-escaped
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i.jsonl", "p.jsonl"]  # no temp files left


def test_failed_write_leaves_no_partial_file(tmp_path):
    def records():
        yield Pair("a", "b")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_jsonl(tmp_path / "train.jsonl", records())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 2: expected one JSON object per line"),
        ('{"source": "a"}', "line 2: Pair is missing field(s) ['target']"),
        ('{"source": "a", "target": "b", "extra": 1}', "line 2: Pair has unknown field(s) ['extra']"),
        ('{"source": "a", "target": 3}', "line 2: field 'target' should be str"),
        ("[1, 2]", "line 2: expected a JSON object for Pair"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "train.jsonl"
    path.write_text('{"source": "a", "target": "b"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_jsonl(path, Pair)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_eval_item_references_must_be_strings(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text(
        '{"id": "1", "source": "s", "references": [1], "key": "s", "meta": {}}\n', encoding="utf-8"
    )
    with pytest.raises(DataError, match="line 1: field 'references' should be a list of strings"):
        read_jsonl(path, EvalItem)


def test_non_utf8_file_names_the_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"fine\nalso fine\nbad \xff byte\n")
    with pytest.raises(DataError, match=r"bad.txt: line 3: expected UTF-8 text"):
        read_utf8(path)


def test_gpt2_strings_match_the_authors_whitespace():
    # official_code.md §1.4 / §5.1: " SRC <|endoftext|> TGT <|endoftext|>", prompt " SRC <|endoftext|>"
    src = "name : Blue Spice | Type : coffee shop | area : city centre"
    tgt = "A coffee shop in the city centre area called Blue Spice . "  # src1 targets end in a space
    assert gpt2_training_text(src, tgt) == (
        " name : Blue Spice | Type : coffee shop | area : city centre <|endoftext|>"
        " A coffee shop in the city centre area called Blue Spice .  <|endoftext|>"
    )
    assert gpt2_prompt(src) == " name : Blue Spice | Type : coffee shop | area : city centre <|endoftext|>"
    assert gpt2_training_text(src, tgt).startswith(gpt2_prompt(src) + " ")
    # WebNLG sources start with " | ": two spaces before the first separator
    assert (
        gpt2_prompt(" | Aarhus : leaderName : Jacob_Bundsgaard")
        == "  | Aarhus : leaderName : Jacob_Bundsgaard <|endoftext|>"
    )


def test_key_is_source_plus_relations():
    assert make_key("a : b : c", ["b"]) == '["a : b : c", ["b"]]'
    assert make_key("x", ["r1", "r2"]) != make_key("x", ["r1"])
