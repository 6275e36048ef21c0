"""Synthetic demo data written in each dataset's real raw format, so that the real readers read it.

Small closed vocabularies and a few fixed templates per field or relation make the task learnable by a tiny
GPT-2 in minutes on a CPU; targets verbalise every field; references vary a little (2-3 per source).
Everything is deterministic from the seed. ``synthetic_lm_corpus`` gives other texts about the same entities
(not the training targets) plus records with their values, to pre-train the tiny LM and its tokenizer.
"""

from __future__ import annotations

import random
from pathlib import Path

from prefixtune.data import synthetic_dart, synthetic_e2e, synthetic_webnlg, synthetic_xsum
from prefixtune.data.linearize import (
    gpt2_prompt,
    linearize_dart,
    linearize_e2e,
    linearize_webnlg,
    tokenize_e2e_value,
)

WRITERS = {
    "e2e": synthetic_e2e.write_e2e,
    "webnlg": synthetic_webnlg.write_webnlg,
    "dart": synthetic_dart.write_dart,
    "xsum": synthetic_xsum.write_xsum,
    "xsum_raw": synthetic_xsum.write_xsum_raw,  # the raw EdinburghNLP layout, for the extrapolation splits
}


def write_synthetic(
    dataset: str, out_dir: Path, seed: int, n_train: int, n_dev: int, n_test: int
) -> dict[str, Path]:
    """Write the raw files of ``dataset`` into ``out_dir``; returns split -> the primary raw file.

    ``n_train`` counts training pairs (lines / good lexicalisations / annotations); ``n_dev`` and ``n_test``
    count evaluation items (distinct MRs / entries). Primary files: E2E ``src1_{train,valid,test}.txt`` (also
    the challenge CSVs), WebNLG ``train.xml``, ``dev.xml``, ``testdata_with_lex.xml`` (also
    ``{train,dev,test}.json``), DART ``dart-v1.1.1-full-{train,dev,test}.json`` (also the test ``.xml``), XSUM
    ``xsum.tar.gz`` (all three splits, the legacy layout); ``xsum_raw``: the raw tarball and split-ids JSON
    (``n_*`` count the official splits' articles).
    """
    if dataset not in WRITERS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(WRITERS)}")
    if min(n_train, n_dev, n_test) < 1:
        raise ValueError(f"sizes must be positive, got n_train={n_train}, n_dev={n_dev}, n_test={n_test}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return WRITERS[dataset](out_dir, random.Random(f"{dataset}:{seed}"), n_train, n_dev, n_test)


def _restaurant_text(rng: random.Random) -> str:
    e = synthetic_e2e
    name, near, food = rng.choice(e.NAMES), rng.choice(e.NEAR), rng.choice(e.VALUES["food"])
    kind, area, price = (
        rng.choice(e.VALUES["eatType"]),
        rng.choice(e.VALUES["area"]),
        rng.choice(e.VALUES["priceRange"]),
    )
    return rng.choice([
        f"Yesterday we had dinner at {name} , close to {near} . {name} was busy .",
        f"My friends like the {food} dishes at {name} . They go to {name} every week .",
        f"A new {kind} opened in the {area} last week . The {kind} is called {name} .",
        f"Most meals at {name} cost {price} . We paid {price} at {name} too .",
        f"If you walk past {near} you will see {name} on the left .",
        f"The {kind} by the {area} was busy on Saturday .",
        f"Families often stop at {name} after visiting {near} .",
    ])  # fmt: skip


def _encyclopedia_text(rng: random.Random) -> str:
    w = synthetic_webnlg
    category = rng.choice(list(w.CATEGORIES))
    subject = w.surface(rng.choice(w.CATEGORIES[category][0]))
    prop = rng.choice(w.CATEGORIES[category][1])
    value = w.surface(rng.choice(w.OBJECTS[prop]))
    country = w.surface(rng.choice(w.OBJECTS["country"]))
    return rng.choice([
        f"{subject} is often mentioned in articles about {country}.",
        f"Many visitors have written about {subject}. {subject} is well known.",
        f"The article on {subject} lists {value} among its facts.",
        f"{value} is a well known name in {country}.",
        f"Records about {subject} were updated this year.",
        f"Historians in {country} have studied {subject} for decades. They say {subject} matters.",
    ])  # fmt: skip


def _table_text(rng: random.Random) -> str:
    d = synthetic_dart
    person, show, school = rng.choice(d.PEOPLE), rng.choice(d.SHOWS), rng.choice(d.SCHOOLS)
    return rng.choice([
        f"{person} gave an interview about {show} in {rng.choice(d.YEARS)}. {person} liked {show}.",
        f"Critics praised the character {rng.choice(d.ROLES)} in {show}.",
        f"Students at {school} cheer for the {rng.choice(d.SCHOOL_VALUES['NICKNAME'])}.",
        f"{school} is a small college with a long history.",
        f"The table lists {person} and {rng.choice(d.PEOPLE)} as guests.",
        f"{rng.choice(d.RESTAURANTS)} and {rng.choice(d.PLACES)} appear in the same list.",
    ])  # fmt: skip


# Entities of the domain prose: never used by the demo datasets, so no prose text is a training or test target.
PROSE_NAMES = [
    "The Golden Curry",
    "The Wrestlers",
    "Fitzbillies",
    "The Cricketers",
    "Clowns",
    "Bibimbap House",
]
PROSE_SUBJECTS = ["Alpena County Regional Airport", "Bedford Aerodrome", "Ajoblanco", "Arrabbiata sauce"]
PROSE_PEOPLE = ["Alan Shepard", "Buzz Aldrin", "Ella Fitzgerald", "Aaron Turner"]


def _domain_prose(rng: random.Random) -> str:
    """A description in a dataset's own style, of a random record that is not shown, about other entities.

    GPT-2 has read many such descriptions on the web; the tiny LM has to learn the domain's phrasing somewhere,
    so that prefix-tuning (which only steers what the frozen LM can already do) learns to condition on the
    record. Measured on the demo (E2E test BLEU of PREFIX): 22 without these texts, 52-54 with them.
    """
    kind = rng.randrange(3)
    if kind == 0:
        mr = synthetic_e2e.sample_mr(rng)
        mr["name"] = rng.choice(PROSE_NAMES)
        return synthetic_e2e.verbalise(mr, rng.randrange(3))
    if kind == 1:
        category = rng.choice(list(synthetic_webnlg.CATEGORIES))
        triples = synthetic_webnlg.sample_triples(rng, category)
        subject, other = triples[0][0], rng.choice(PROSE_SUBJECTS).replace(" ", "_")
        triples = [(other if s == subject else s, p, o) for s, p, o in triples]
        return synthetic_webnlg.verbalise(triples, rng.randrange(3))
    entry_kind, triples = synthetic_dart.sample_entry(rng)
    if entry_kind == "table":
        triples = [(s, p, rng.choice(PROSE_PEOPLE) if p == "[TITLE]" else o) for s, p, o in triples]
    else:
        subject, other = triples[0][0], rng.choice(PROSE_SUBJECTS)
        triples = [(other if s == subject else s, p, o) for s, p, o in triples]
    return synthetic_dart.verbalise(entry_kind, triples, rng.randrange(3))


def _record_text(rng: random.Random) -> str:
    """A record in one of the three linearized forms, ``<|endoftext|>``, then its values listed.

    Like the tables and lists in GPT-2's web text, this teaches the tiny LM to copy values out of a record
    across the separator (prefix-tuning can only steer skills the frozen LM already has). The values are a
    plain list, never the task's sentences. Measured on the demo sizes (FT / PREFIX BLEU, E2E, before the domain
    prose was added): 67 / 11 without these texts, 87 / 15 with them.
    """
    kind = rng.randrange(3)
    if kind == 0:
        slots = [("name", rng.choice(synthetic_e2e.NAMES))]
        slots += [(s, rng.choice(v)) for s, v in synthetic_e2e.VALUES.items() if rng.random() < 0.5]
        values = " , ".join(tokenize_e2e_value(v) for _, v in slots)
        return gpt2_prompt(linearize_e2e(slots)) + " " + values + " ."
    if kind == 1:
        category = rng.choice(list(synthetic_webnlg.CATEGORIES))
        triples = synthetic_webnlg.sample_triples(rng, category)
        values = [
            synthetic_webnlg.surface(x) for x in dict.fromkeys(x for s, _, o in triples for x in (s, o))
        ]
        return gpt2_prompt(linearize_webnlg(triples)) + " " + " ; ".join(values) + "."
    triples = synthetic_dart.sample_entry(rng)[1]
    values = list(dict.fromkeys(x for s, _, o in triples for x in (s, o) if x != "[TABLECONTEXT]"))
    return gpt2_prompt(linearize_dart(triples)) + " " + " ; ".join(values) + "."


def synthetic_lm_corpus(seed: int, n: int) -> list[str]:
    """``n`` texts in the three domains, per 8: 3 short texts (not the task templates), 2 descriptions in the
    datasets' style about other entities, 3 records followed by their values. Never a training or test target."""
    rng = random.Random(f"lm-corpus:{seed}")
    makers = [_restaurant_text, _encyclopedia_text, _table_text, _domain_prose, _domain_prose]
    makers += [_record_text] * 3
    return [makers[i % len(makers)](rng) for i in range(n)]
