"""Synthetic DART v1.1.1 data: the four kinds of DART triplesets (WikiTableQuestions with ``[TABLECONTEXT]``,
WikiSQL, WebNLG, E2E), each verbalised by two fixed templates per relation.

Written as ``dart-v1.1.1-full-{train,dev}.json`` and the test as ``dart-v1.1.1-full-test.json`` and ``.xml``.
Some dev/test entries repeat an earlier tripleset with other annotations, as in DART (shared decoding keys).
"""

from __future__ import annotations

import random
from pathlib import Path

from prefixtune.data.benchmark import Entry, Lex
from prefixtune.data.dart import write_dart_json, write_dart_xml
from prefixtune.data.linearize import Triple

PEOPLE = ["Jeff Daniels", "Emma Stone", "Idris Elba", "Tilda Swinton"]
SHOWS = ["American Playhouse", "The Newsroom", "Planet Sheen", "Saturday Night Live", "Hawaii Five-O"]
ROLES = ["Host", "Jed Jenkins", "Glonb", "Will McAvoy"]
YEARS = ["1982", "1991", "2012", "2014"]
SCHOOLS = ["Mars Hill College", "Newberry College", "Presbyterian College", "Queens University of Charlotte"]
SCHOOL_VALUES = {
    "NICKNAME": ["Wolves", "Royals", "Blue Hose", "Lions"],
    "LOCATION": ["Mars Hill, North Carolina", "Newberry, South Carolina", "Charlotte, North Carolina"],
    "JOINED": ["1973", "1989", "2007"],
    "ENROLLMENT": ["2386", "1,017", "950"],
}
PLACES = ["Aarhus Airport", "Bakso", "Alan Bean", "Ace Wilder", "Adare Manor"]
WEBNLG_VALUES = {
    "country": ["Denmark", "Indonesia", "United States", "Ireland"],
    "birthPlace": ["Wheeler, Texas", "Stockholm", "Vienna"],
    "leaderName": ["Jacob Bundsgaard", "Joko Widodo"],
    "location": ["Tirstrup", "County Limerick", "Amsterdam"],
}
RESTAURANTS = ["The Vaults", "The Eagle", "Cocum", "Zizzi", "The Punter"]
E2E_VALUES = {
    "eatType": ["pub", "coffee shop", "restaurant"],
    "food": ["French", "Italian", "Japanese", "Fast food"],
    "priceRange": ["cheap", "moderate", "more than £30", "£20-25"],
    "area": ["riverside", "city centre"],
    "near": ["Café Adriatic", "Burger King", "The Bakers"],
}
TEMPLATES: dict[str, tuple[str, str]] = {
    "NICKNAME": ("The nickname of {s} is the {o}.", "{s} is nicknamed the {o}."),
    "LOCATION": ("{s} is located in {o}.", "{s} is in {o}."),
    "JOINED": ("{s} joined in {o}.", "{s} became a member in {o}."),
    "ENROLLMENT": ("{s} has an enrollment of {o}.", "{o} students are enrolled at {s}."),
    "country": ("{s} is from {o}.", "{s} is in {o}."),
    "birthPlace": ("{s} was born in {o}.", "The birthplace of {s} is {o}."),
    "leaderName": ("The leader of {s} is {o}.", "{s} is led by {o}."),
    "location": ("{s} is located in {o}.", "{s} can be found in {o}."),
    "eatType": ("{s} is a {o}.", "{s} is a {o}."),
    "food": ("It serves {o} food.", "{s} offers {o} food."),
    "priceRange": ("Its price range is {o}.", "Prices at {s} are {o}."),
    "area": ("It is in the {o} area.", "{s} is located in the {o}."),
    "near": ("It is near {o}.", "{s} can be found near {o}."),
}
SOURCES = {
    "table": "WikiTableQuestions_lily",
    "sql": "WikiSQL_decl_sents",
    "webnlg": "webnlg",
    "e2e": "e2e",
}
RAW_NAMES = {
    "train": "dart-v1.1.1-full-train.json",
    "dev": "dart-v1.1.1-full-dev.json",
    "test": "dart-v1.1.1-full-test.json",
    "test_xml": "dart-v1.1.1-full-test.xml",
}


def _table(rng: random.Random) -> list[Triple]:
    show = rng.choice(SHOWS)
    triples = [("[TABLECONTEXT]", "[TITLE]", rng.choice(PEOPLE)), ("[TABLECONTEXT]", "TITLE", show)]
    for relation, values in rng.sample([("ROLE", ROLES), ("YEAR", YEARS)], rng.randint(1, 2)):
        triples.append((show, relation, rng.choice(values)))
    rng.shuffle(triples)
    return triples


def _table_text(triples: list[Triple], variant: int) -> str:
    facts = {r: o for _, r, o in triples}
    person, show = facts["[TITLE]"], facts["TITLE"]
    role = f" as {facts['ROLE']}" if "ROLE" in facts else ""
    year = facts.get("YEAR")
    if variant == 0:
        return f"{person} played in {show}{role}" + (f" in {year}." if year else ".")
    if variant == 1:
        return (f"In {year}, " if year else "") + f"{show} featured {person}{role}."
    return f"{person} appeared in {show}{role}" + (f" in {year}." if year else ".")


def _star(
    rng: random.Random, subjects: list[str], values: dict[str, list[str]], first: str | None
) -> list[Triple]:
    subject = rng.choice(subjects)
    relations = rng.sample([r for r in values if r != first], rng.randint(1, 2))
    return [(subject, r, rng.choice(values[r])) for r in ([first] if first else []) + relations]


def _star_text(triples: list[Triple], variant: int) -> str:
    """Variant 0: first template of each relation, 1: second, 2: alternating."""
    return " ".join(
        TEMPLATES[r][variant if variant < 2 else j % 2].format(s=s, o=o)
        for j, (s, r, o) in enumerate(triples)
    )


def sample_entry(rng: random.Random) -> tuple[str, list[Triple]]:
    """(kind, triples) for one of the four DART kinds."""
    kind = rng.choice(list(SOURCES))
    if kind == "table":
        return kind, _table(rng)
    if kind == "sql":
        return kind, _star(rng, SCHOOLS, SCHOOL_VALUES, None)
    if kind == "webnlg":
        return kind, _star(rng, PLACES, WEBNLG_VALUES, None)
    return kind, _star(rng, RESTAURANTS, E2E_VALUES, "eatType")


def verbalise(kind: str, triples: list[Triple], variant: int) -> str:
    """Reference variant 0-2 (identical variants are dropped by the caller)."""
    return _table_text(triples, variant) if kind == "table" else _star_text(triples, variant)


def _entries(
    rng: random.Random,
    n: int | None,
    n_ann: int | None,
    refs: tuple[int, int],
    used: set[tuple[Triple, ...]],
    repeat: float,
) -> list[Entry]:
    """Entries until ``n`` entries or ``n_ann`` annotations; with probability ``repeat`` an old tripleset."""
    entries: list[Entry] = []
    n_done = attempts = 0
    drawn: list[tuple[str, list[Triple]]] = []
    while (n is None or len(entries) < n) and (n_ann is None or n_done < n_ann):
        attempts += 1
        if attempts > 100_000:
            raise ValueError(f"cannot draw enough distinct synthetic DART triplesets ({len(entries)} found)")
        if drawn and rng.random() < repeat:
            kind, triples = rng.choice(drawn)
        else:
            kind, triples = sample_entry(rng)
            if tuple(triples) in used:
                continue
            used.add(tuple(triples))
            drawn.append((kind, triples))
        variants = list(dict.fromkeys(verbalise(kind, triples, v) for v in range(3)))
        texts = rng.sample(variants, min(len(variants), rng.randint(*refs)))
        if n_ann is not None:
            texts = texts[: n_ann - n_done]
        n_done += len(texts)
        lexes = [Lex(text, SOURCES[kind], f"Id{k}") for k, text in enumerate(texts, start=1)]
        extra = {"subtree_was_extended": rng.random() < 0.5} if rng.random() < 0.5 else {}
        entries.append(Entry(f"Id{len(entries) + 1}", "MISC", len(triples), triples, lexes, extra=extra))
    return entries


def write_dart(out_dir: Path, rng: random.Random, n_train: int, n_dev: int, n_test: int) -> dict[str, Path]:
    """n_train training annotations; n_dev / n_test entries with 2-3 annotations, ~10 % repeated."""
    used: set[tuple[Triple, ...]] = set()
    test = _entries(rng, n_test, None, (2, 3), used, repeat=0.1)
    dev = _entries(rng, n_dev, None, (2, 3), used, repeat=0.1)
    train = _entries(rng, None, n_train, (1, 3), used, repeat=0.0)
    write_dart_json(out_dir / RAW_NAMES["train"], train)
    write_dart_json(out_dir / RAW_NAMES["dev"], dev)
    write_dart_json(out_dir / RAW_NAMES["test"], test)
    write_dart_xml(out_dir / RAW_NAMES["test_xml"], test)
    return {split: out_dir / RAW_NAMES[split] for split in ("train", "dev", "test")}
