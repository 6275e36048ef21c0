"""XSUM validation scores (ACL Table 7): which validation articles are scored, and where their references are cut.

Two protocols of the authors' code (official_code.md §1.5, §4.2, §6.4), and which one produced ACL Table 7 is not
known:
- their validation loop (``finetune.py``: ``--n_val 500``, ``--val_max_target_length 60`` from ``train_bart.py``):
  the first 500 articles of the validation files (``Seq2SeqDataset`` keeps ``src_lens[:n_obs]``, file order), each
  scored against its target cut at 60 BPE tokens and decoded back. This is the default: it is what their code
  computed on the validation set during training;
- their test scoring applied to the validation set: every article (11,332), targets cut at 100 tokens.
The subset (rule valset's first ``n`` dev items) is written again as a prepared-data folder (``dev.jsonl``,
``dev.refs.txt``, ``subset.json``) so decoding and scoring read it as they read a whole dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefixtune.data.errors import DataError
from prefixtune.data.records import EvalItem, read_jsonl, write_jsonl
from prefixtune.data.xsum import write_refs
from prefixtune.provenance import sha256_file, write_json_atomic

# the authors' validation loop; {"articles": "all", "reference_max_tokens": 100} is their test-time protocol
DEFAULT: dict[str, Any] = {"articles": 500, "reference_max_tokens": 60}
TEST_PROTOCOL: dict[str, Any] = {"articles": "all", "reference_max_tokens": 100}


def validation_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The XSUM validation protocol of a config (``scoring.xsum_validation``), the authors' loop by default."""
    return {**DEFAULT, **(config.get("scoring") or {}).get("xsum_validation", {})}


def subset_name(articles: int | str) -> str | None:
    """The prepared-data folder of the first ``articles`` validation articles; None for all of them."""
    if articles == "all":
        return None
    if not isinstance(articles, int) or articles < 1:
        raise ValueError(f"XSUM validation articles: expected a positive number or 'all', got {articles!r}")
    return f"xsum_validation_first{articles}"


def write_validation_subset(valset: Path, n: int, out_dir: Path) -> dict[str, Any]:
    """``out_dir``/dev.jsonl and dev.refs.txt from ``valset``, the first ``n`` validation items (rule valset:
    all of them when the split has fewer, as ``n_val`` did), and ``subset.json`` saying how they were chosen."""
    valset = Path(valset)
    if not valset.is_file():
        raise DataError(valset, "file", "the first validation items (rule valset)")
    items = read_jsonl(valset, EvalItem)
    if not 1 <= len(items) <= n:
        raise DataError(valset, "items", f"expected 1 to {n} validation items, found {len(items)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(out_dir / "dev.jsonl", items)
    write_refs(out_dir / "dev.refs.txt", items)
    record = {
        "chosen": f"the first {n} items of the validation split in file order (the authors' n_val)",
        "requested": n,
        "items": len(items),
        "source": str(valset),
        "source_sha256": sha256_file(valset),
        "first_id": items[0].id,
        "last_id": items[-1].id,
    }
    write_json_atomic(out_dir / "subset.json", record)
    return record


def page_note(settings: dict[str, Any]) -> str:
    """What a reader of the validation table is told: the protocol used, and that the paper's is not known."""
    articles, cut = settings["articles"], settings["reference_max_tokens"]
    used = "every validation article" if articles == "all" else f"the first {articles} validation articles"
    authors = settings == DEFAULT
    which = (
        "the protocol of the authors' validation loop during training"
        if authors
        else "the authors' test-time protocol applied to the validation set"
        if settings == TEST_PROTOCOL
        else "neither of the authors' two protocols"
    )
    return (
        f"XSUM validation scores: {used}, each scored against its reference cut at {cut} tokens ({which}). "
        "Which protocol produced the paper's validation table is not known: the authors' validation loop "
        "scored the first 500 articles against references cut at 60 tokens, their test scoring used every "
        "article with references cut at 100 tokens; the pipeline can run either."
    )
