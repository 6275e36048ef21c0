"""The exact strings of the authors' code (official_code.md §1): linearizations and the GPT-2 text around.

Whitespace matters here: it decides the BPE tokens the model is trained and prompted on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

EOS = "<|endoftext|>"

# E2E challenge slot name -> the field name in the authors' src1_*.txt files (MR order is kept).
E2E_FIELDS = {
    "name": "name",
    "eatType": "Type",
    "food": "food",
    "priceRange": "price",
    "customer rating": "customer rating",
    "area": "area",
    "familyFriendly": "family friendly",
    "near": "near",
}

_MR_SLOT = re.compile(r"\s*([^\[\],]+?)\s*\[([^\]]*)\]\s*(?:,|$)")

Triple = tuple[str, str, str]


def parse_e2e_mr(mr: str) -> list[tuple[str, str]]:
    """``name[The Eagle], eatType[pub]`` -> ``[("name", "The Eagle"), ("eatType", "pub")]``."""
    slots, pos = [], 0
    while pos < len(mr):
        match = _MR_SLOT.match(mr, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"expected 'slot[value], ...' at character {pos} of MR {mr!r}")
        if match.group(1) not in E2E_FIELDS:
            raise ValueError(f"unknown E2E slot {match.group(1)!r} (expected one of {sorted(E2E_FIELDS)})")
        slots.append((match.group(1), match.group(2)))
        pos = match.end()
    if not slots:
        raise ValueError(f"empty MR {mr!r}")
    return slots


def tokenize_e2e_value(value: str) -> str:
    """Split off every non-word character, as in the src1 files: ``£20-25`` -> ``£ 20 - 25``."""
    return " ".join(re.sub(r"([^\w\s])", r" \1 ", value).split())


def linearize_e2e(slots: Iterable[tuple[str, str]]) -> str:
    """src1 source ``name : The Eagle | Type : coffee shop | price : less than £ 20`` from challenge slots."""
    return " | ".join(f"{E2E_FIELDS[slot]} : {tokenize_e2e_value(value)}" for slot, value in slots)


def linearize_e2e_mr(mr: str) -> str:
    """src1 source of a challenge-CSV MR (equal to src1 on all 9,365 official dev and test rows)."""
    return linearize_e2e(parse_e2e_mr(mr))


def linearize_webnlg(triples: Sequence[Triple]) -> str:
    """``" | s : p : o"`` per triple: separator before the first one too; properties keep their case."""
    return "".join(f" | {s} : {p} : {o}" for s, p, o in triples)


def linearize_webnlg_first_entry_bug(triples: Sequence[Triple]) -> str:
    """The authors' decode-time source for the first entry: triples run together, no separators (§7)."""
    return "".join(f"{s} : {p} : {o}" for s, p, o in triples)


def linearize_dart(triples: Sequence[Triple]) -> str:
    """``s : r : o`` joined by `` | `` (no leading separator), relation lower-cased."""
    return " | ".join(f"{s} : {r.lower()} : {o}" for s, r, o in triples)


def gpt2_training_text(source: str, target: str) -> str:
    """``" SRC <|endoftext|> TGT <|endoftext|>"``: the target is used as is (E2E targets end in a space)."""
    return " " + source + " " + EOS + " " + target + " " + EOS


def gpt2_prompt(source: str) -> str:
    """``" SRC <|endoftext|>"``: the same tokens as the source part of the training text."""
    return " " + source + " " + EOS
