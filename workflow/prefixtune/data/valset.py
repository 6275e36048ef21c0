"""A validation subset: the first ``n`` items of a prepared dev file, as the authors' ``n_val`` read it.

Their XSUM module (``Seq2SeqDataset(n_obs=n_val)``, official_code.md §4.2) validated on the first 500 lines of
the validation files every epoch. ``results/valsets/<dataset>/<full|split>/dev.first<n>.jsonl`` holds that subset
(the demo's is smaller) for checkpoint selection and for anything else that scores the authors' validation set.
"""

from __future__ import annotations

from pathlib import Path

from prefixtune.data.records import EvalItem, read_jsonl, write_jsonl


def write_first_items(items_path: Path, n: int, out: Path) -> int:
    """Write the first ``n`` items of ``items_path`` (all of them if it has fewer); returns the count written."""
    if n < 1:
        raise ValueError(f"validation subset size {n}: expected at least 1")
    items = read_jsonl(items_path, EvalItem)
    if not items:
        raise ValueError(f"{items_path}: no items to take a validation subset from")
    write_jsonl(out, items[:n])
    return min(n, len(items))
