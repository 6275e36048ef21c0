"""Low-data subsamples: the authors' sampler, traceable indices, whole-or-nothing output, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from prefixtune.cli import main
from prefixtune.data.subsample import draw, write_subset


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    root = tmp_path / "e2e"
    root.mkdir()
    (root / "train.jsonl").write_text(
        "".join(json.dumps({"source": f"s{i}", "target": f"t{i}"}) + "\n" for i in range(40))
    )
    (root / "dev.jsonl").write_text(
        "".join(json.dumps({"source": f"d{i}", "references": [f"r{i}"]}) + "\n" for i in range(20))
    )
    return root


def test_draw_is_the_authors_numpy_stream():
    np.random.seed(22)  # lowdata_gen.py: np.random.seed(seed); choice(N, n, replace=False); then the dev draw
    train = np.random.choice(40, 10, replace=False)
    dev = np.random.choice(20, 3, replace=False)
    assert draw(40, 20, 10, 3, 22) == (train.tolist(), dev.tolist())


def test_size_subset_writes_pairs_dev_and_indices(prepared, tmp_path):
    out = tmp_path / "subsets/e2e/n10-d22"
    record = write_subset(prepared, "size", 10, 22, out)
    train = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    dev = (out / "dev.jsonl").read_text().splitlines()
    assert len(train) == 10 and len(dev) == 3  # dev = int(0.3 n)
    assert [t["source"] for t in train] == [f"s{i}" for i in record["train_indices"]]
    assert json.loads((out / "subset.json").read_text())["counts"]["train"] == 10
    assert (
        write_subset(prepared, "size", 10, 22, tmp_path / "again")["train_indices"] == record["train_indices"]
    )
    assert (
        write_subset(prepared, "size", 10, 8, tmp_path / "other")["train_indices"] != record["train_indices"]
    )
    assert sorted(p.name for p in out.parent.iterdir()) == ["n10-d22"]  # no temporary folder left behind


def test_percent_subset_takes_a_share_of_train_and_dev(prepared, tmp_path):
    record = write_subset(prepared, "percent", 25, 1, tmp_path / "pct25-d1")
    assert record["counts"]["train"] == 10 and record["counts"]["dev"] == 5


def test_a_subset_larger_than_the_data_is_an_error_naming_the_file(prepared, tmp_path):
    with pytest.raises(ValueError, match=r"train.jsonl: a subset of 50 training pairs needs 1..40"):
        write_subset(prepared, "size", 50, 1, tmp_path / "n50-d1")
    assert not (tmp_path / "n50-d1").exists()


def test_missing_prepared_data_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepared data file not found"):
        write_subset(tmp_path, "size", 5, 1, tmp_path / "out")


def test_cli(prepared, tmp_path):
    main(
        [
            "subsample",
            "--prepared",
            str(prepared),
            "--size",
            "5",
            "--data-seed",
            "3",
            "--out-dir",
            str(tmp_path / "o"),
        ]
    )
    assert len((tmp_path / "o/train.jsonl").read_text().splitlines()) == 5
