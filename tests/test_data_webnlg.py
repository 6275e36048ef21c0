"""WebNLG 2017: challenge XML and the authors' JSON, good-only pairs, Id-ordered items, the entry-#1 bug."""

from __future__ import annotations

import pytest

from prefixtune.data.errors import DataError
from prefixtune.data.linearize import linearize_webnlg, linearize_webnlg_first_entry_bug
from prefixtune.data.prepare import prepare
from prefixtune.data.webnlg import read_webnlg, webnlg_items, webnlg_pairs

TRIPLES = [("103_Colmore_Row", "location", "Birmingham"), ("103_Colmore_Row", "floorCount", "23")]


def test_linearization_and_the_first_entry_bug():
    assert (
        linearize_webnlg(TRIPLES)
        == " | 103_Colmore_Row : location : Birmingham | 103_Colmore_Row : floorCount : 23"
    )
    assert linearize_webnlg_first_entry_bug(TRIPLES) == (
        "103_Colmore_Row : location : Birmingham103_Colmore_Row : floorCount : 23"
    )


# ----------------------------------------------------------------------------------------------------
# shipped excerpts (always run)


def test_xml_excerpt(data_fixtures):
    entries = read_webnlg(data_fixtures / "webnlg_testdata_with_lex_excerpt.xml")
    assert [e.eid for e in entries] == ["Id1", "Id2", "Id12", "Id147", "Id594", "Id1126"]
    items = webnlg_items(entries, first_entry_bug=False)
    assert [i.source for i in items] == [
        " | Abilene_Regional_Airport : cityServed : Abilene,_Texas",
        ' | Adolfo_Suárez_Madrid–Barajas_Airport : location : "Madrid, Paracuellos de Jarama,'
        ' San Sebastián de los Reyes and Alcobendas"',
        " | Amsterdam_Airport_Schiphol : runwayName : \"06/24 'Kaagbaan'\"",
        " | April_O'Neil : creator : Kevin_Eastman",
        " | 103_Colmore_Row : location : Birmingham | 103_Colmore_Row : completionDate : 1976"
        ' | 103_Colmore_Row : buildingStartDate : "1973" | 103_Colmore_Row : floorCount : 23',
        " | Aaron_Bertram : activeYearsStartYear : 1998",
    ]
    assert [(i.meta["category"], i.meta["size"], i.meta["seen"]) for i in items] == [
        ("Airport", 1, True), ("Airport", 1, True), ("Airport", 1, True), ("ComicsCharacter", 1, True),
        ("Building", 4, True), ("Artist", 1, False),
    ]  # fmt: skip
    assert [len(i.references) for i in items] == [2, 3, 3, 2, 1, 1]
    assert items[0].references == [
        "Abilene, Texas is served by the Abilene regional airport.",
        "Abilene Regional Airport serves the city of Abilene in Texas.",
    ]
    bugged = webnlg_items(entries, first_entry_bug=True)
    assert bugged[0].source == "Abilene_Regional_Airport : cityServed : Abilene,_Texas"
    assert bugged[0].meta["first_entry_bug"] and bugged[0].key != items[0].key
    assert [i.source for i in bugged[1:]] == [i.source for i in items[1:]]


def test_json_excerpt(data_fixtures):
    entries = read_webnlg(data_fixtures / "webnlg_dev_excerpt.json")
    assert [e.eid for e in entries] == ["Id1", "Id2", "Id3", "Id4", "Id5"]
    pairs = webnlg_pairs(entries)
    assert len(pairs) == 9  # 11 lexicalisations, 2 'toFix' dropped
    assert pairs[0].source == " | Aarhus : leaderName : Jacob_Bundsgaard"
    assert pairs[0].target == "The leader of Aarhus is Jacob Bundsgaard."
    items = webnlg_items(entries)
    assert items[2].source == ' | Adolfo_Suárez_Madrid–Barajas_Airport : runwayName : "14L/32R"'
    assert items[4].source == (
        " | Abilene_Regional_Airport : cityServed : Abilene,_Texas"
        " | Abilene,_Texas : isPartOf : Taylor_County,_Texas | Abilene,_Texas : country : United_States"
    )
    # dev entry 69 (here 4) has only 'toFix' lexicalisations: its item keeps them, never reference-less
    assert items[3].references == [
        "One of the ethnic groups in Japan in the Brazilians.",
        "The Brazilians in Japan are an ethnic group found in Japan.",
    ]


def test_prepare_copies_test_xml_and_writes_dev_xml_from_json(data_fixtures, tmp_path):
    xml = data_fixtures / "webnlg_testdata_with_lex_excerpt.xml"
    dev = data_fixtures / "webnlg_dev_excerpt.json"
    prepare("webnlg", {"train": dev, "dev": dev, "test": xml}, tmp_path, {"webnlg_first_entry_bug": True})
    assert (tmp_path / "test.refs.xml").read_bytes() == xml.read_bytes()
    assert read_webnlg(tmp_path / "dev.refs.xml") == read_webnlg(dev)  # all lexicalisations, comments kept
    assert '<lex comment="toFix" lid="Id1">' in (tmp_path / "dev.refs.xml").read_text(encoding="utf-8")


def test_xml_is_read_in_id_order(tmp_path):
    path = tmp_path / "test.xml"
    entry = '<entry category="{c}" eid="Id{n}" size="1"><modifiedtripleset><mtriple>S{n} | p | o</mtriple>' \
            '</modifiedtripleset><lex comment="good" lid="Id1">t{n}</lex></entry>'  # fmt: skip
    path.write_text(
        "<benchmark><entries>"
        + "".join(entry.format(c="City", n=n) for n in (10, 2, 1))
        + "</entries></benchmark>",
        encoding="utf-8",
    )
    items = webnlg_items(read_webnlg(path), first_entry_bug=True)
    assert [i.id for i in items] == ["Id1", "Id2", "Id10"]
    assert items[0].source == "S1 : p : o"  # the bug hits the first entry in Id order


# ----------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<benchmark><entries><entry", "line 1: expected well-formed XML"),
        ("<root/>", "line 1: expected a <benchmark> root element"),
        ('<benchmark><entries><entry category="City" eid="Id1" size="1"><modifiedtripleset><mtriple>a | b'
         '</mtriple></modifiedtripleset></entry></entries></benchmark>',
         "entry 1 (eid='Id1'): expected 'subject | property | object'"),
        ('<benchmark><entries><entry category="City" eid="1" size="1"/></entries></benchmark>',
         "entry 1 (eid='1'): expected attributes eid='Id<n>'"),
    ],
)  # fmt: skip
def test_bad_xml_names_file_and_entry(tmp_path, text, message):
    path = tmp_path / "dev.xml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_webnlg(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"entries": [', "line 1: expected JSON"),
        ('{"data": []}', "line 1: expected a JSON object with a non-empty list 'entries'"),
        ('{"entries": [{"2": {}}]}', 'entry 1: expected an object {"1": {...}}'),
        ('{"entries": [{"1": {"category": "City", "size": "1", "modifiedtripleset": []}}]}',
         "entry 1: expected category, size, modifiedtripleset"),
    ],
)  # fmt: skip
def test_bad_json_names_file_and_entry(tmp_path, text, message):
    path = tmp_path / "dev.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_webnlg(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


# ----------------------------------------------------------------------------------------------------
# real official files


def test_real_test_xml(shared_data):
    entries = read_webnlg(shared_data / "webnlg" / "testdata_with_lex.xml")
    assert [e.eid for e in entries] == [f"Id{n}" for n in range(1, 1863)]
    items = webnlg_items(entries, first_entry_bug=True)
    assert len(items) == 1862
    assert sum(i.meta["seen"] for i in items) == 971 and sum(not i.meta["seen"] for i in items) == 891
    assert sum(len(i.references) for i in items) == 4928
    assert len({i.key for i in items}) == 1862
    assert [i.meta["first_entry_bug"] for i in items].count(True) == 1
    assert items[0].source == "Abilene_Regional_Airport : cityServed : Abilene,_Texas"
    assert items[-1].id == "Id1862"
    assert {i.meta["category"] for i in items if not i.meta["seen"]} == {
        "Artist", "Athlete", "CelestialBody", "MeanOfTransportation", "Politician"
    }  # fmt: skip


def test_real_dev_json(shared_data):
    entries = read_webnlg(shared_data / "webnlg" / "dev.json")
    assert len(entries) == 872 and sum(len(e.lexes) for e in entries) == 2268
    assert len(webnlg_pairs(entries)) == 2258
    items = webnlg_items(entries)
    assert len(items) == 872 and len({i.key for i in items}) == 871  # one repeated tripleset in dev
    assert items[0].source == " | Aarhus : leaderName : Jacob_Bundsgaard"
