"""Synthetic E2E data: restaurant MRs over the challenge's slots and values, verbalised by fixed templates.

Written as the authors' ``src1_{train,valid,test}.txt`` (tokenized, trailing space) and as the challenge CSVs
(``trainset.csv``, ``devset.csv``, ``testset_w_refs.csv``); both forms hold the same rows.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from prefixtune.data.e2e import write_e2e_csv, write_src1
from prefixtune.data.linearize import E2E_FIELDS, linearize_e2e_mr
from prefixtune.data.records import Pair

NAMES = [
    "The Eagle",
    "Blue Spice",
    "The Mill",
    "Cocum",
    "Zizzi",
    "The Phoenix",
    "Green Man",
    "Aromi",
    "The Punter",
    "Strada",
    "The Vaults",
    "Loch Fyne",
]
NEAR = [
    "Burger King",
    "Café Rouge",
    "The Bakers",
    "Crowne Plaza Hotel",
    "All Bar One",
    "Yippee Noodle Bar",
    "Raja Indian Cuisine",
    "Avalon",
]
VALUES = {
    "eatType": ["coffee shop", "pub", "restaurant"],
    "food": ["French", "Italian", "Chinese", "Japanese", "English", "Indian", "Fast food"],
    "priceRange": ["cheap", "moderate", "high", "less than £20", "£20-25", "more than £30"],
    "customer rating": ["low", "average", "high", "1 out of 5", "3 out of 5", "5 out of 5"],
    "area": ["riverside", "city centre"],
    "familyFriendly": ["yes", "no"],
    "near": NEAR,
}
SLOT_ORDER = list(E2E_FIELDS)  # the challenge MR order
# Figure 3's text panel quotes the paper's source (config artifacts.figure3.qualitative): every dev set holds it
# once, as its first MR, so the demo draws the panel; no other split holds it.
PAPER_PANEL_MR = {
    "name": "The Eagle",
    "eatType": "coffee shop",
    "food": "Chinese",
    "priceRange": "cheap",
    "customer rating": "average",
    "area": "riverside",
    "familyFriendly": "no",
    "near": "Burger King",
}
RAW_NAMES = {
    "src1": {"train": "src1_train.txt", "dev": "src1_valid.txt", "test": "src1_test.txt"},
    "csv": {"train": "trainset.csv", "dev": "devset.csv", "test": "testset_w_refs.csv"},
}


def sample_mr(rng: random.Random) -> dict[str, str]:
    """name plus 2-5 other slots (eatType usually present)."""
    optional = [s for s in SLOT_ORDER if s not in ("name", "eatType")]
    chosen = set(rng.sample(optional, rng.randint(1, 4)))
    if rng.random() < 0.8:
        chosen.add("eatType")
    mr = {"name": rng.choice(NAMES)}
    for slot in SLOT_ORDER[1:]:
        if slot in chosen:
            mr[slot] = rng.choice(VALUES[slot])
    return mr


def mr_string(mr: dict[str, str]) -> str:
    return ", ".join(f"{slot}[{value}]" for slot, value in mr.items())


def verbalise(mr: dict[str, str], variant: int) -> str:
    """Untokenized reference; ``variant`` (0-2) picks among a few fixed phrasings."""
    name, kind, food = mr["name"], mr.get("eatType"), mr.get("food")
    if kind and food:
        opener = [
            f"{name} is a {food} {kind}",
            f"{name} is a {kind} serving {food} food",
            f"There is a {food} {kind} called {name}",
        ][variant]
    elif kind:
        opener = [f"{name} is a {kind}", f"{name} is a {kind}", f"There is a {kind} called {name}"][variant]
    else:
        opener = f"{name} is a place"
        if food:
            opener += [f" serving {food} food", f" with {food} food", f" serving {food} food"][variant]
    if "area" in mr:
        opener += f" in the {mr['area']} area"
    if "near" in mr:
        opener += f" near {mr['near']}"
    sentences = [opener + "."]
    price = f"The price range is {mr['priceRange']}." if "priceRange" in mr else ""
    rating = ""
    if "customer rating" in mr:
        rating = [
            f"Its customer rating is {mr['customer rating']}.",
            f"It has a customer rating of {mr['customer rating']}.",
        ][variant % 2]
    clauses = [price, rating] if variant != 1 else [rating, price]
    sentences += [c for c in clauses if c]
    if "familyFriendly" in mr:
        sentences.append(
            "It is family friendly." if mr["familyFriendly"] == "yes" else "It is not family friendly."
        )
    return " ".join(sentences)


def tokenize(text: str) -> str:
    """src1-style target: punctuation split off by spaces, with the files' trailing space."""
    return " ".join(re.sub(r"([^\w\s])", r" \1 ", text).split()) + " "


def _rows(
    rng: random.Random, n_mrs: int | None, n_rows: int | None, refs: tuple[int, int], used: set[str]
) -> list[tuple[str, str]]:
    """(MR, reference) rows: new distinct MRs with ``refs`` references each, until n_mrs MRs / n_rows rows."""
    rows: list[tuple[str, str]] = []
    mrs = attempts = 0
    while (n_mrs is None or mrs < n_mrs) and (n_rows is None or len(rows) < n_rows):
        attempts += 1
        if attempts > 100_000:
            raise ValueError(f"cannot draw enough distinct synthetic E2E MRs ({mrs} found)")
        mr = sample_mr(rng)
        text = mr_string(mr)
        if text in used:
            continue
        used.add(text)
        mrs += 1
        for variant in rng.sample(range(3), rng.randint(*refs)):
            rows.append((text, verbalise(mr, variant)))
    return rows[:n_rows] if n_rows is not None else rows


def write_e2e(out_dir: Path, rng: random.Random, n_train: int, n_dev: int, n_test: int) -> dict[str, Path]:
    """n_train training rows; n_dev / n_test distinct MRs with 2-3 references each. The dev set's first MR is
    ``PAPER_PANEL_MR`` (Figure 3's text panel), which no other row has."""
    paper = mr_string(PAPER_PANEL_MR)
    used: set[str] = {paper}
    paper_rows = [(paper, verbalise(PAPER_PANEL_MR, v)) for v in rng.sample(range(3), rng.randint(2, 3))]
    splits = {
        "test": _rows(rng, n_test, None, (2, 3), used),
        "dev": paper_rows + _rows(rng, n_dev - 1, None, (2, 3), used),
        "train": _rows(rng, None, n_train, (1, 3), used),
    }
    for split, rows in splits.items():
        write_e2e_csv(out_dir / RAW_NAMES["csv"][split], rows)
        write_src1(
            out_dir / RAW_NAMES["src1"][split], [Pair(linearize_e2e_mr(m), tokenize(r)) for m, r in rows]
        )
    return {split: out_dir / RAW_NAMES["src1"][split] for split in ("train", "dev", "test")}
