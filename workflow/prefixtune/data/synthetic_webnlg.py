"""Synthetic WebNLG 2017 data: DBpedia-style triples about a few entities per category, two templates each.

Train and dev use seen categories only; test mixes seen and unseen categories (the paper's S/U/A columns).
Written as challenge XML (``train.xml``, ``dev.xml``, ``testdata_with_lex.xml``) and in the authors' JSON form
(``train.json``, ``dev.json``, ``test.json``); a few train entries carry an extra ``toFix`` lexicalisation.
"""

from __future__ import annotations

import random
from pathlib import Path

from prefixtune.data.benchmark import Entry, Lex
from prefixtune.data.linearize import Triple
from prefixtune.data.webnlg import write_webnlg_json, write_webnlg_xml

CATEGORIES: dict[str, tuple[list[str], list[str]]] = {  # category -> (subjects, properties)
    "Airport": (
        ["Aarhus_Airport", "Abilene_Regional_Airport", "Alderney_Airport", "Amsterdam_Airport_Schiphol"],
        ["cityServed", "country", "runwayLength", "elevationAboveTheSeaLevel", "operatingOrganisation"],
    ),
    "City": (
        ["Aarhus", "Abilene,_Texas", "Amsterdam", "Atlantic_City,_New_Jersey"],
        ["country", "leaderName", "populationTotal", "isPartOf"],
    ),
    "Food": (
        ["Bakso", "Ajoblanco", "Arem-arem", "Bacon_Explosion", "Baked_Alaska"],
        ["country", "mainIngredients", "course", "region"],
    ),
    "University": (
        ["Aarhus_University", "Acharya_Institute_of_Technology", "Accademia_di_Architettura_di_Mendrisio"],
        ["city", "country", "numberOfStudents", "established"],
    ),
    "Building": (
        ["Adare_Manor", "Asser_Levy_Public_Baths", "103_Colmore_Row"],
        ["location", "architect", "completionDate", "floorCount"],
    ),
    # unseen in training
    "Athlete": (["Aaron_Boogaard", "Adam_Maher", "Akeem_Ayers"], ["birthPlace", "club", "country"]),
    "Artist": (["Ace_Wilder", "Alison_O'Donnell", "Anders_Osborne"], ["birthPlace", "genre", "recordLabel"]),
    "Politician": (
        ["Adolf_Schärf", "Abdulsalami_Abubakar", "Alfons_Gorbach"],
        ["birthPlace", "party", "office"],
    ),
}
SEEN = ["Airport", "City", "Food", "University", "Building"]
UNSEEN = ["Athlete", "Artist", "Politician"]

OBJECTS: dict[str, list[str]] = {
    "cityServed": ["Aarhus", "Abilene,_Texas", "Amsterdam", "Atlantic_City,_New_Jersey"],
    "country": ["Denmark", "United_States", "Netherlands", "Spain", "Indonesia", "Italy"],
    "runwayLength": ['"2702.0"', '"1533.0"', '"3800.0"', '"877.0"'],
    "elevationAboveTheSeaLevel": ["25.0", "546", "-3.3", "75"],
    "operatingOrganisation": ["Aarhus_Lufthavn_A/S", "Schiphol_Group", "City_of_Abilene"],
    "leaderName": ["Jacob_Bundsgaard", "Femke_Halsema", "Norm_Archibald", "Frank_Gilliam"],
    "populationTotal": ["264716", "117063", "821752", "39558"],
    "isPartOf": ["Texas", "New_Jersey", "North_Holland", "Central_Denmark_Region"],
    "mainIngredients": ['"noodles, beef, tofu"', '"bread, almonds, garlic"', '"rice, banana leaf"'],
    "course": ["Dessert", "Main_course", "Entree"],
    "region": ["Andalusia", "Java", "Lombardy"],
    "city": ["Aarhus", "Amsterdam", "Bangalore", "Mendrisio"],
    "numberOfStudents": ["16000", "700", "38000"],
    "established": ["1928", "2000", "1996"],
    "location": ["Ireland", "New_York_City", "Amsterdam", "Lisbon"],
    "architect": ["Augustus_Pugin", "Arthur_Brown", "Philip_Hardwick"],
    "completionDate": ["1862", "1908", "1935"],
    "floorCount": ["4", "12", "27"],
    "birthPlace": ["Stockholm", "Detroit", "Kaduna", "Vienna", "Lagos"],
    "club": ["Wichita_Thunder", "AZ_Alkmaar", "FC_Twente"],
    "genre": ["Pop_music", "Folk_music", "Rhythm_and_blues"],
    "recordLabel": ["EMI", "Warner_Music_Group", "Decca_Records"],
    "party": ["Austrian_People's_Party", "Labour_Party", "Democratic_Party"],
    "office": ["President_of_Austria", "Governor_of_Lagos"],
}

TEMPLATES: dict[str, tuple[str, str]] = {
    "cityServed": ("{s} serves the city of {o}.", "{o} is served by {s}."),
    "country": ("{s} is in {o}.", "{s} is located in {o}."),
    "runwayLength": ("The runway length of {s} is {o}.", "{s} has a runway length of {o}."),
    "elevationAboveTheSeaLevel": (
        "{s} is {o} metres above sea level.",
        "{s} has an elevation of {o} metres.",
    ),
    "operatingOrganisation": ("{s} is operated by {o}.", "The operator of {s} is {o}."),
    "leaderName": ("The leader of {s} is {o}.", "{o} is the leader of {s}."),
    "populationTotal": ("{s} has a population of {o}.", "The population of {s} is {o}."),
    "isPartOf": ("{s} is part of {o}.", "{s} is a part of {o}."),
    "mainIngredients": ("The main ingredients of {s} are {o}.", "{s} is made with {o}."),
    "course": ("{s} is served as a {o}.", "{s} is a {o}."),
    "region": ("{s} comes from the region of {o}.", "{s} is a dish from {o}."),
    "city": ("{s} is in the city of {o}.", "{s} is located in {o}."),
    "numberOfStudents": ("{s} has {o} students.", "There are {o} students at {s}."),
    "established": ("{s} was established in {o}.", "{s} was founded in {o}."),
    "location": ("{s} is located in {o}.", "{s} is in {o}."),
    "architect": ("{s} was designed by {o}.", "The architect of {s} is {o}."),
    "completionDate": ("{s} was completed in {o}.", "The construction of {s} ended in {o}."),
    "floorCount": ("{s} has {o} floors.", "There are {o} floors in {s}."),
    "birthPlace": ("{s} was born in {o}.", "The birthplace of {s} is {o}."),
    "club": ("{s} plays for {o}.", "{s} is a player of {o}."),
    "genre": ("{s} performs {o}.", "The genre of {s} is {o}."),
    "recordLabel": ("{s} is signed to {o}.", "The record label of {s} is {o}."),
    "party": ("{s} is a member of the {o}.", "{s} belongs to the {o}."),
    "office": ("{s} served as {o}.", "{s} held the office of {o}."),
}
RAW_NAMES = {
    "xml": {"train": "train.xml", "dev": "dev.xml", "test": "testdata_with_lex.xml"},
    "json": {"train": "train.json", "dev": "dev.json", "test": "test.json"},
}


def surface(entity: str) -> str:
    """How a text mentions a DBpedia form: ``Abilene,_Texas`` -> ``Abilene, Texas``; quotes dropped."""
    return entity.replace("_", " ").strip('"')


def sample_triples(rng: random.Random, category: str) -> list[Triple]:
    """1-3 triples about one subject; an airport's served city may get a second-hop ``country`` triple."""
    subjects, properties = CATEGORIES[category]
    subject = rng.choice(subjects)
    triples = [(subject, p, rng.choice(OBJECTS[p])) for p in rng.sample(properties, rng.randint(1, 3))]
    served = [o for _, p, o in triples if p == "cityServed"]
    if served and len(triples) < 3 and rng.random() < 0.5:
        triples.append((served[0], "country", rng.choice(OBJECTS["country"])))
    return triples


def verbalise(triples: list[Triple], variant: int) -> str:
    """One sentence per triple in triple order: variant 0 uses the first template of each property, variant 1
    the second, variant 2 alternates them."""
    return " ".join(
        TEMPLATES[p][variant if variant < 2 else j % 2].format(s=surface(s), o=surface(o))
        for j, (s, p, o) in enumerate(triples)
    )


def _entries(
    rng: random.Random,
    categories: list[str],
    n: int | None,
    n_lex: int | None,
    refs: tuple[int, int],
    used: set[tuple[Triple, ...]],
    to_fix: float = 0.0,
) -> list[Entry]:
    """Distinct triplesets until ``n`` entries or ``n_lex`` good lexicalisations; ids Id1.. in order."""
    entries: list[Entry] = []
    n_good = attempts = 0
    while (n is None or len(entries) < n) and (n_lex is None or n_good < n_lex):
        attempts += 1
        if attempts > 100_000:
            raise ValueError(
                f"cannot draw enough distinct synthetic WebNLG triplesets ({len(entries)} found)"
            )
        category = categories[len(entries) % len(categories)] if n is not None else rng.choice(categories)
        triples = sample_triples(rng, category)
        if tuple(triples) in used:
            continue
        used.add(tuple(triples))
        variants = list(dict.fromkeys(verbalise(triples, v) for v in range(3)))
        texts = rng.sample(variants, min(len(variants), rng.randint(*refs)))
        if n_lex is not None:
            texts = texts[: n_lex - n_good]
        n_good += len(texts)
        lexes = [Lex(text, "good") for text in texts]
        if rng.random() < to_fix:
            lexes.insert(rng.randint(0, len(lexes)), Lex(f"{surface(triples[0][0])} to fix.", "toFix"))
        for k, lex in enumerate(lexes, start=1):
            lex.lid = f"Id{k}"
        eid = f"Id{len(entries) + 1}"
        entries.append(Entry(eid, category, len(triples), triples, lexes, [list(triples)]))
    return entries


def write_webnlg(out_dir: Path, rng: random.Random, n_train: int, n_dev: int, n_test: int) -> dict[str, Path]:
    """n_train good training lexicalisations; n_dev seen entries; n_test entries, alternately seen/unseen."""
    used: set[tuple[Triple, ...]] = set()
    test_categories = [c for pair in zip(SEEN, UNSEEN * 2) for c in pair]
    splits = {
        "test": _entries(rng, test_categories, n_test, None, (2, 3), used),
        "dev": _entries(rng, SEEN, n_dev, None, (1, 3), used),
        "train": _entries(rng, SEEN, None, n_train, (1, 3), used, to_fix=0.05),
    }
    for split, entries in splits.items():
        write_webnlg_xml(out_dir / RAW_NAMES["xml"][split], entries)
        write_webnlg_json(out_dir / RAW_NAMES["json"][split], entries)
    return {split: out_dir / RAW_NAMES["xml"][split] for split in ("train", "dev", "test")}
