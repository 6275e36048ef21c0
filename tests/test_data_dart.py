"""DART v1.1.1: JSON and XML, lower-cased relations, decoding keys, and the official reference files."""

from __future__ import annotations

import pytest

from prefixtune.data.dart import dart_items, dart_pairs, dart_reference_line, read_dart
from prefixtune.data.errors import DataError
from prefixtune.data.linearize import linearize_dart
from prefixtune.data.prepare import prepare


def lines(path):
    """Lines of a reference file, CRLF or LF."""
    return path.read_text(encoding="utf-8").replace("\r\n", "\n").split("\n")[:-1]


def test_linearization_lowercases_relations_only():
    triples = [("[TABLECONTEXT]", "[TITLE]", "Jeff Daniels"), ("Aromi", "priceRange", "less than £20")]
    assert (
        linearize_dart(triples)
        == "[TABLECONTEXT] : [title] : Jeff Daniels | Aromi : pricerange : less than £20"
    )


def test_reference_line():
    assert dart_reference_line("In 1982, Jed Jenkins was played by Jeff Daniels.") == (
        "in 1982 , jed jenkins was played by jeff daniels ."
    )
    assert dart_reference_line("Hawaii Five-O  costs £20") == "hawaii five - o costs £ 20"
    assert dart_reference_line("") == ""


# ----------------------------------------------------------------------------------------------------
# shipped excerpts (always run)


def test_json_excerpt(data_fixtures):
    entries = read_dart(data_fixtures / "dart_dev_excerpt.json")
    pairs = dart_pairs(entries)
    assert len(entries) == 8 and len(pairs) == 11
    items = dart_items(entries)
    assert [i.source for i in items] == [
        "Mars Hill College : joined : 1973 | Mars Hill College : location : Mars Hill, North Carolina",
        "Newberry College : nickname : Wolves",
        "Atlanta : official_population : 5,457,831 | [TABLECONTEXT] : metropolitan_area : Atlanta"
        " | 5,457,831 : year : 2012 | [TABLECONTEXT] : [title] : List of metropolitan areas by population"
        " | Atlanta : country : United States",
        "Orlien : longitude : -101.796936 | Orlien : latitude : 47.985154",
        "Georgia 6 : candidates : Carl Vinson (D) Unopposed | Georgia 6 : incumbent : Carl Vinson",
        "Georgia 6 : candidates : Carl Vinson (D) Unopposed | Georgia 6 : incumbent : Carl Vinson",
        "Acharya Institute of Technology : city : Bangalore | Acharya Institute of Technology : motto :"
        ' "Nurturing Excellence" | Acharya Institute of Technology : country : "India"',
        "Aromi : eattype : coffee shop | Aromi : food : English | Aromi : pricerange : less than £20"
        " | Aromi : customer rating : high | Aromi : area : riverside | Aromi : familyfriendly : yes",
    ]
    assert items[4].key == items[5].key and len({i.key for i in items}) == 7
    assert items[0].key == (
        '["Mars Hill College : joined : 1973 | Mars Hill College : location : Mars Hill, North Carolina",'
        ' ["joined", "location"]]'
    )
    assert (
        pairs[3].target == "orlien has the longitude - 101.796936 and a latitude of 47.985154 "
    )  # not stripped
    assert items[0].meta == {"annotation_sources": ["WikiSQL_decl_sents"]}


def test_xml_excerpt_and_reference_files(data_fixtures, tmp_path):
    xml = data_fixtures / "dart_test_excerpt.xml"
    items = dart_items(read_dart(xml))
    assert [i.id for i in items] == ["Id1", "Id116", "Id245", "Id503", "Id5319"]  # file order; ids have gaps
    assert items[0].source == (
        "Hawaii Five-O : notes : Episode: The Flight of the Jewels | [TABLECONTEXT] : [title] : Jeff Daniels"
        " | [TABLECONTEXT] : title : Hawaii Five-O"
    )
    assert items[1].references == ["reserved (previously G721) has 1 channel and 8000 Hz clock rate", ""]
    assert items[2].source == " piece of my heart  : directed_by : mark tinker"  # the file's own spaces
    assert items[3].source == 'Ab Klink : birth_place : "Stellendam, Netherlands"'
    assert items[4].source.startswith(
        "The Cricketers : eattype : restaurant | The Cricketers : food : Chinese"
    )
    dev = data_fixtures / "dart_dev_excerpt.json"
    prepare("dart", {"train": dev, "dev": dev, "test": xml}, tmp_path, {})
    for k in range(3):
        expected = lines(data_fixtures / f"dart_test_excerpt.reference{k}.lex")
        assert lines(tmp_path / "test.refs" / f"reference{k}.lex") == expected
    assert len(lines(tmp_path / "dev.refs" / "reference0.lex")) == 8


# ----------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[", "line 1: expected JSON"),
        ("{}", "line 1: expected a non-empty JSON list of DART entries"),
        ('[{"tripleset": [["a", "b", "c"]], "annotations": []},'
         ' {"tripleset": [["a", "b"]], "annotations": []}]',
         "entry 2: expected {tripleset: [[subject, relation, object], ...]"),
        ('[{"tripleset": [["a", "b", "c"]]}]', "entry 1: expected {tripleset"),
        ('[{"tripleset": [], "annotations": []}]', "entry 1: expected a non-empty tripleset"),
    ],
)  # fmt: skip
def test_bad_json_names_file_and_entry(tmp_path, text, message):
    path = tmp_path / "dart-v1.1.1-full-dev.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_dart(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_unknown_suffix_is_rejected(tmp_path):
    path = tmp_path / "dart.tsv"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match=r"dart.tsv: file name: expected a DART \.json or \.xml file"):
        read_dart(path)


# ----------------------------------------------------------------------------------------------------
# real official files


def test_real_dev_json(shared_data):
    entries = read_dart(shared_data / "dart" / "dart-v1.1.1-full-dev.json")
    items = dart_items(entries)
    assert len(items) == 2768 and len(dart_pairs(entries)) == 6980
    assert len({i.key for i in items}) == 2721
    assert (
        items[0].source
        == "Mars Hill College : joined : 1973 | Mars Hill College : location : Mars Hill, North Carolina"
    )


def test_real_test_xml_reproduces_the_official_references(shared_data, tmp_path):
    folder = shared_data / "dart"
    items = dart_items(read_dart(folder / "dart-v1.1.1-full-test.xml"))
    assert len(items) == 5097 and sum(len(i.references) for i in items) == 12552
    dev = folder / "dart-v1.1.1-full-dev.json"
    prepare("dart", {"train": dev, "dev": dev, "test": folder / "dart-v1.1.1-full-test.xml"}, tmp_path, {})
    for k in range(3):
        official = lines(folder / "official_references" / f"all-delex-reference{k}.lex")
        ours = lines(tmp_path / "test.refs" / f"reference{k}.lex")
        assert len(ours) == len(official) == 5097
        assert ours == official
