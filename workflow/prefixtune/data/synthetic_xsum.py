"""Synthetic XSUM-like news for the offline demo, written as the legacy ``xsum.tar.gz`` the real reader opens.

Each article (4 sentences, sport / politics / business / science) has a one-sentence summary that restates its
key event in other words, as XSUM's summaries do, so it is learnable from the article but not a copy of a
sentence. ``xsum_pretraining_pairs`` pre-trains the tiny BART on articles about *other* entities (their own
teams, people, places, companies and animals): article -> summary, article -> lead sentence, and denoising. So
the frozen BART knows the news register and how to summarise, as bart-large does from its pre-training, yet no
pre-training output is a demo target.
``write_synthetic_xsum`` writes the same demo articles as extracted ``{train,val,test}.{source,target}`` files.
``write_xsum_raw`` writes another corpus in the raw EdinburghNLP layout with topical URLs, for the XSUM
extrapolation splits (``prefixtune.data.xsum_topics``).
Deterministic from the seed.
"""

from __future__ import annotations

import io
import json
import random
import re
import tarfile
from collections.abc import Callable
from pathlib import Path

from prefixtune.provenance import write_bytes_atomic

TEAMS = [
    "Cardiff City",
    "Hull",
    "Leeds United",
    "Aberdeen",
    "Swansea",
    "Norwich",
    "Brentford",
    "Dundee",
    "Exeter",
    "Wrexham",
    "Bristol Rovers",
    "Motherwell",
]
PLAYERS = [
    "Sam Evans",
    "Callum Reid",
    "Jordan Hale",
    "Liam Doyle",
    "Ryan Moss",
    "Owen Blake",
    "Tom Parry",
    "Kieran Shaw",
]
COMPETITIONS = ["FA Cup", "Championship", "League Cup", "Scottish Premiership", "League One"]
PEOPLE = [
    "Anna Price",
    "David Lowe",
    "Helen Marsh",
    "Peter Quinn",
    "Sarah Boyd",
    "Mark Fenton",
    "Ruth Ellis",
    "James Hart",
]
ROLES = ["First Minister", "mayor", "council leader", "health secretary", "transport minister"]
PLACES = ["Wales", "Glasgow", "Belfast", "Manchester", "Cornwall", "Leeds", "Dundee", "Bristol"]
POLICIES = [
    ("build 5,000 new homes", "new homes"),
    ("cut bus fares", "cheaper bus fares"),
    ("close two hospitals", "hospital closures"),
    ("plant a million trees", "tree planting"),
    ("ban cars from the city centre", "a city centre car ban"),
]
COMPANIES = ["Tesco", "Rolls-Royce", "Barclays", "Greggs", "BT", "Vodafone", "Burberry", "Aviva"]
SECTORS = ["retail", "engineering", "banking", "telecoms", "insurance", "fashion"]
ANIMALS = [
    ("bees", "recognise human faces"),
    ("crows", "solve simple puzzles"),
    ("dolphins", "call each other by name"),
    ("sheep", "remember forty faces"),
    ("octopuses", "open jars"),
    ("pigeons", "read words"),
]
CITIES = ["Oxford", "Edinburgh", "Cardiff", "Exeter", "York", "Bristol", "Aberdeen"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
DEMO_POOL = {
    "TEAMS": TEAMS,
    "PLAYERS": PLAYERS,
    "PEOPLE": PEOPLE,
    "PLACES": PLACES,
    "COMPANIES": COMPANIES,
    "CITIES": CITIES,
    "ANIMALS": ANIMALS,
}
# Pre-training entities: disjoint from the demo's, so a pre-training summary can never be a demo target.
PRETRAINING_POOL = {
    "TEAMS": ["Luton", "Reading", "Stoke", "Kilmarnock", "Oldham", "Barnsley", "Hibernian", "Newport County"],
    "PLAYERS": ["Dan Walsh", "Adam Kerr", "Ben Foley", "Ciaran Lyle", "Josh Patel", "Matt Rowe"],
    "PEOPLE": ["Laura Finch", "Simon Tate", "Grace Owen", "Neil Burke", "Emma Lund", "Paul Keane"],
    "PLACES": ["Derby", "Inverness", "Swindon", "Newry", "Norfolk", "Perth"],
    "COMPANIES": ["Unilever", "Sainsbury's", "Lloyds", "Next", "Centrica", "Ocado"],
    "CITIES": ["Durham", "Bath", "Stirling", "Lancaster", "Leicester"],
    "ANIMALS": [
        ("rats", "feel regret"),
        ("goats", "read human moods"),
        ("wasps", "recognise faces"),
        ("ravens", "plan ahead"),
    ],
}
Article = tuple[str, str]  # (document, summary)


def _sport(rng: random.Random, pool: dict) -> Article:
    team, rival = rng.sample(pool["TEAMS"], 2)
    player, comp, day = rng.choice(pool["PLAYERS"]), rng.choice(COMPETITIONS), rng.choice(DAYS)
    goals, against, fans = rng.randint(2, 4), rng.randint(0, 1), rng.randint(8, 40) * 1000
    sentences = [
        f"{team} beat {rival} {goals}-{against} in the {comp} on {day}.",
        f"{player} scored twice for the home side in front of {fans:,} fans.",
        f"The result leaves {rival} {rng.randint(2, 12)} points behind the leaders.",
        f"The manager of {team} said he was proud of his players.",
    ]
    summary = f"{player} scored twice as {team} won against {rival} in the {comp}."
    return _arrange(rng, sentences), summary


def _politics(rng: random.Random, pool: dict) -> Article:
    person, rival = rng.sample(pool["PEOPLE"], 2)
    role, place = rng.choice(ROLES), rng.choice(pool["PLACES"])
    policy, short = rng.choice(POLICIES)
    cost = rng.randint(2, 90)
    sentences = [
        f"{person}, the {role} of {place}, has announced plans to {policy}.",
        f"The proposal would cost about {cost} million pounds over {rng.randint(2, 6)} years.",
        f"{rival} said the plan was {rng.choice(['reckless', 'too late', 'welcome but vague'])}.",
        f"A vote on the plan is expected in {rng.choice(['March', 'June', 'October'])}.",
    ]
    summary = f"Plans for {short} in {place} would cost {cost} million pounds, the {role} has said."
    return _arrange(rng, sentences), summary


def _business(rng: random.Random, pool: dict) -> Article:
    company, sector, city = rng.choice(pool["COMPANIES"]), rng.choice(SECTORS), rng.choice(pool["CITIES"])
    fall, jobs = rng.randint(3, 19), rng.randint(2, 30) * 100
    result = rng.choice(["weak", "disappointing", "lower than expected"])
    sentences = [
        f"Shares in {company} fell {fall}% on {rng.choice(DAYS)} after the firm reported {result} profits.",
        f"The {sector} company, which employs staff in {city}, said sales had slowed.",
        f"Its chief executive warned that {jobs:,} jobs could go.",
        "Analysts said the figures were worse than they had feared.",
    ]
    summary = f"Shares in {company} have dropped {fall}% after the {sector} firm's {result} results."
    return _arrange(rng, sentences), summary


def _science(rng: random.Random, pool: dict) -> Article:
    (animal, ability), city = rng.choice(pool["ANIMALS"]), rng.choice(pool["CITIES"])
    scientist, count = rng.choice(pool["PEOPLE"]), rng.randint(20, 300)
    sentences = [
        f"Researchers at the University of {city} have found that {animal} can {ability}.",
        f"The team studied {count} {animal} over {rng.randint(2, 5)} years.",
        f"Dr {scientist} said the finding surprised the team.",
        "The study is published in a scientific journal.",
    ]
    summary = f"{animal.capitalize()} are able to {ability}, a study by scientists in {city} suggests."
    return _arrange(rng, sentences), summary


DOMAINS: list[Callable[[random.Random, dict], Article]] = [_sport, _politics, _business, _science]


def _health(rng: random.Random, pool: dict) -> Article:
    city, person, weeks = rng.choice(pool["CITIES"]), rng.choice(pool["PEOPLE"]), rng.randint(6, 40)
    ward, patients = rng.choice(["cancer", "maternity", "children's", "stroke"]), rng.randint(2, 9) * 1000
    sentences = [
        f"Patients in {city} are waiting up to {weeks} weeks for treatment on the {ward} ward.",
        f"About {patients:,} people are on the waiting list, figures show.",
        f"{person}, who runs a patients' group, said the wait was causing distress.",
        "The health board said it was recruiting more staff.",
    ]
    summary = f"Waits for {ward} treatment in {city} have reached {weeks} weeks, figures show."
    return _arrange(rng, sentences), summary


def _technology(rng: random.Random, pool: dict) -> Article:
    company, users = rng.choice(pool["COMPANIES"]), rng.randint(2, 60) * 10000
    flaw = rng.choice(["exposed passwords", "let strangers read messages", "leaked home addresses"])
    sentences = [
        f"A bug in the {company} app {flaw}, security researchers have found.",
        f"About {users:,} customers used the affected version.",
        f"{company} said it had fixed the flaw within {rng.randint(2, 48)} hours.",
        "Experts advised users to update the app.",
    ]
    summary = f"A flaw in the {company} app {flaw} of {users:,} customers, researchers say."
    return _arrange(rng, sentences), summary


def _arrange(rng: random.Random, sentences: list[str]) -> str:
    """The lead stays first; the rest is shuffled so position alone does not give the summary away."""
    rest = sentences[1:]
    rng.shuffle(rest)
    return " ".join([sentences[0], *rest])


def sample_articles(rng: random.Random, n: int, pool: dict | None = None) -> list[Article]:
    return [rng.choice(DOMAINS)(rng, pool or DEMO_POOL) for _ in range(n)]


def _legacy_files(rng: random.Random, n_train: int, n_val: int, n_test: int) -> dict[str, bytes]:
    """``{train,val,test}.{source,target}`` -> contents, one article / summary per line, sampled in that order."""
    files = {}
    for name, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        articles = sample_articles(rng, n)
        for suffix, texts in (("source", [a[0] for a in articles]), ("target", [a[1] for a in articles])):
            files[f"{name}.{suffix}"] = "".join(t + "\n" for t in texts).encode("utf-8")
    return files


def write_xsum(out_dir: Path, rng: random.Random, n_train: int, n_dev: int, n_test: int) -> dict[str, Path]:
    """``xsum.tar.gz`` with ``xsum/{train,val,test}.{source,target}``; every split maps to the tarball."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data in _legacy_files(rng, n_train, n_dev, n_test).items():
            info = tarfile.TarInfo(f"xsum/{name}")
            info.size, info.mtime = len(data), 0  # mtime 0: the same bytes on every run
            tar.addfile(info, io.BytesIO(data))
    path = Path(out_dir) / "xsum.tar.gz"
    write_bytes_atomic(path, _deterministic_gzip(buffer.getvalue()))
    return {"train": path, "dev": path, "test": path}


def write_synthetic_xsum(out_dir: Path, n_train: int, n_val: int, n_test: int, seed: int) -> dict[str, Path]:
    """The extracted legacy layout ``{train,val,test}.{source,target}``; split -> its ``.source`` file.

    The same articles as ``write_synthetic("xsum", out_dir, seed, ...)`` puts in ``xsum.tar.gz``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in _legacy_files(random.Random(f"xsum:{seed}"), n_train, n_val, n_test).items():
        write_bytes_atomic(out_dir / name, data)
    return {"train": out_dir / "train.source", "dev": out_dir / "val.source", "test": out_dir / "test.source"}


# The raw EdinburghNLP layout for the extrapolation splits: (URL path, article generator, share of the corpus).
# Within-news trains on uk / world / business and tests on the rest; news-to-sports tests on sport. The
# sport/0/football URLs are the old BBC form the authors' URL rule files under topic ('0', 'football').
RAW_TOPICS: list[tuple[str, Callable[[random.Random, dict], Article], int]] = [
    ("news/uk-politics-{id}", _politics, 3),
    ("news/uk-scotland-glasgow-west-{id}", _politics, 2),
    ("news/world-europe-{id}", _politics, 2),
    ("news/business-{id}", _business, 3),
    ("news/health-{id}", _health, 2),
    ("news/technology-{id}", _technology, 2),
    ("news/science-environment-{id}", _science, 2),
    ("sport/football/{id}", _sport, 3),
    ("sport/cricket/{id}", _sport, 1),
    ("sport/rugby-union/{id}", _sport, 1),
    ("sport/0/football/{id}", _sport, 1),
]
RAW_TARBALL = "XSUM-EMNLP18-Summary-Data-Original.tar.gz"
RAW_SPLIT_IDS = "XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json"
SHARE_LINES = ["Share this with", "Email", "Facebook", "Twitter", "Copy this link"]


def _raw_summary_file(rng: random.Random, article_id: str, path: str, make: Callable) -> str:
    """One ``<id>.summary`` file: a wayback URL, a title, the summary (FIRST-SENTENCE), one sentence a line."""
    document, summary = make(rng, DEMO_POOL)
    host = rng.choice(["www.bbc.co.uk", "www.bbc.com"])
    stamp = f"2016{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}120000"
    url = f"http://web.archive.org/web/{stamp}/http://{host}/{path}"
    body = re.split(r"(?<=\.) (?=[A-Z])", document)
    if rng.random() < 0.3:  # the social-share lines some real files carry (the reader drops them)
        body[1:1] = SHARE_LINES
    title = " ".join(summary.split()[:6]).rstrip(",.")
    sections = [("URL", url.format(id=article_id)), ("TITLE", title), ("FIRST-SENTENCE", summary)]
    text = "".join(f"[SN]{name}[SN]\n{value}\n\n" for name, value in sections)
    return text + "[SN]RESTBODY[SN]\n" + "".join(line + "\n" for line in body)


def write_xsum_raw(
    out_dir: Path, rng: random.Random, n_train: int, n_dev: int, n_test: int
) -> dict[str, Path]:
    """The raw EdinburghNLP layout: ``XSUM-EMNLP18-Summary-Data-Original.tar.gz`` (``bbc-summary-data/<id>
    .summary``) and the split-ids JSON (``train`` / ``validation`` / ``test``), for ``n_train + n_dev + n_test``
    articles whose URLs carry the topics of ``RAW_TOPICS`` in its shares (each official split in the same
    proportions). Returns ``raw`` and ``split_ids`` -> path."""
    cycle = [(path, make) for path, make, share in RAW_TOPICS for _ in range(share)]
    ids = [str(i) for i in rng.sample(range(10_000_000, 40_000_000), n_train + n_dev + n_test)]
    files, split_ids, start = {}, {}, 0
    for name, n in (("train", n_train), ("validation", n_dev), ("test", n_test)):
        topics = [cycle[i % len(cycle)] for i in range(n)]
        rng.shuffle(topics)
        split_ids[name] = ids[start : start + n]
        for article_id, (path, make) in zip(split_ids[name], topics):
            files[f"bbc-summary-data/{article_id}.summary"] = _raw_summary_file(rng, article_id, path, make)
        start += n
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, text in sorted(files.items()):
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    out_dir = Path(out_dir)
    paths = {"raw": out_dir / RAW_TARBALL, "split_ids": out_dir / RAW_SPLIT_IDS}
    write_bytes_atomic(paths["raw"], _deterministic_gzip(buffer.getvalue()))
    write_bytes_atomic(paths["split_ids"], (json.dumps(split_ids, indent=1) + "\n").encode("utf-8"))
    return paths


def _deterministic_gzip(data: bytes) -> bytes:
    """Zero the gzip header's timestamp (bytes 4-7) so identical content gives identical files."""
    return data[:4] + b"\0\0\0\0" + data[8:]


def xsum_pretraining_pairs(seed: int, n: int) -> list[tuple[str, str]]:
    """Pre-training pairs about other entities: article -> summary, article -> lead, word-dropped -> intact."""
    rng = random.Random(f"xsum-pretrain:{seed}")
    pairs = []
    for document, summary in sample_articles(rng, n, PRETRAINING_POOL):
        task = rng.randrange(3)
        if task == 0:
            pairs.append((document, summary))
        elif task == 1:
            pairs.append((document, document.split(". ")[0].rstrip(".") + "."))
        else:
            kept = [w for w in document.split() if rng.random() > 0.15]
            pairs.append((" ".join(kept), document))
    return pairs
