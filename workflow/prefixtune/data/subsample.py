"""Low-data subsamples of a prepared dataset (paper §6.3, ACL §7.5).

The authors' sampler (``lowdata_gen.py``, official_code.md §4): ``np.random.seed(seed)``; train =
``choice(N, n, replace=False)``; dev = ``int(0.3 n)`` drawn from the validation set with the same random stream.
We sample training *pairs* (one source with one target) and dev *items* (one source with all its references), and
write the indices so every subset can be traced back to the prepared files. A share of the training set
(``percent``) is drawn the same way, with the same share of the dev items.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

DEV_SHARE = 0.3  # the paper: dev = 30 % of the training size


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: prepared data file not found (run the prepare rule first)")
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path}: no records")
    return lines


def draw(n_train: int, n_dev: int, size: int, dev_size: int, seed: int) -> tuple[list[int], list[int]]:
    """Train and dev indices as the authors drew them: one legacy NumPy stream seeded with the data seed."""
    stream = np.random.RandomState(seed)
    train = stream.choice(n_train, size, replace=False)
    dev = stream.choice(n_dev, dev_size, replace=False)
    return [int(i) for i in train], [int(i) for i in dev]


def subset_sizes(kind: str, value: float, n_train: int, n_dev: int, source: Path) -> tuple[int, int]:
    """(train size, dev size) of a ``size`` or ``percent`` subset; errors name the prepared file."""
    if kind == "size":
        size = int(value)
        dev_size = int(DEV_SHARE * size)
    elif kind == "percent":
        if not 0 < value <= 100:
            raise ValueError(f"subset percent {value}: expected a share in (0, 100]")
        size = round(n_train * value / 100)
        dev_size = round(n_dev * value / 100)
    else:
        raise ValueError(f"subset kind {kind!r}: expected 'size' or 'percent'")
    if not 0 < size <= n_train:
        raise ValueError(
            f"{source}: a subset of {size} training pairs needs 1..{n_train} (the file has {n_train})"
        )
    return size, min(max(dev_size, 1), n_dev)


def write_subset(prepared: Path, kind: str, value: float, seed: int, out_dir: Path) -> dict[str, Any]:
    """Write ``train.jsonl``, ``dev.jsonl`` and ``subset.json`` of one subset; the directory appears whole or not."""
    train_lines = _read_lines(prepared / "train.jsonl")
    dev_lines = _read_lines(prepared / "dev.jsonl")
    size, dev_size = subset_sizes(kind, value, len(train_lines), len(dev_lines), prepared / "train.jsonl")
    train_idx, dev_idx = draw(len(train_lines), len(dev_lines), size, dev_size, seed)
    record = {
        "kind": kind,
        kind: value,
        "data_seed": seed,
        "sampler": "numpy RandomState(seed): choice(train, n, replace=False), then choice(dev, int(0.3 n))",
        "counts": {
            "train": size,
            "dev": dev_size,
            "train_available": len(train_lines),
            "dev_available": len(dev_lines),
        },
        "sources": {
            name: hashlib.sha256((prepared / name).read_bytes()).hexdigest()
            for name in ("train.jsonl", "dev.jsonl")
        },
        "train_indices": train_idx,
        "dev_indices": dev_idx,
    }
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        (tmp / "train.jsonl").write_text("".join(train_lines[i] + "\n" for i in train_idx), encoding="utf-8")
        (tmp / "dev.jsonl").write_text("".join(dev_lines[i] + "\n" for i in dev_idx), encoding="utf-8")
        (tmp / "subset.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return record
