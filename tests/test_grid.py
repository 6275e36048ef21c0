"""The paper-scale config expands to the paper's runs and hyperparameters."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from prefixtune.grid import artifact_runs, expand_runs, make_spec, report_manifest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def paper_config():
    return yaml.safe_load((ROOT / "config/config.yaml").read_text())


def test_table1_has_one_run_per_dataset_method_model(paper_config):
    runs = artifact_runs(paper_config, "table1")
    assert len(runs) == len(set(runs)) == 12  # {medium, large} x {FINETUNE, PREFIX} x 3 datasets
    assert set(expand_runs(paper_config)) == set(runs)


@pytest.mark.parametrize(
    ("method", "dataset", "lr", "epochs", "batch", "plen"),
    [
        ("prefix", "e2e", 8e-5, 5, 10, 5),
        ("prefix", "webnlg", 5e-5, 5, 5, 5),
        ("prefix", "dart", 5e-5, 10, 5, 10),
        ("finetune", "e2e", 5e-5, 5, 10, None),
        ("finetune", "webnlg", 1e-5, 10, 6, None),
        ("finetune", "dart", 1e-5, 10, 6, None),
    ],
)
def test_paper_table5_hyperparameters(paper_config, method, dataset, lr, epochs, batch, plen):
    spec = make_spec(paper_config, dataset, "gpt2-medium", method)
    hp = spec["hparams"]
    assert (hp["learning_rate"], hp["epochs"], hp["batch_size"]) == (lr, epochs, batch)
    assert hp["warmup_steps"] == 0 and hp["max_grad_norm"] == 1.0 and hp["seed"] == 101
    assert spec["method_settings"].get("prefix_length") == plen
    if method == "prefix":
        assert spec["method_settings"] == {
            "loss": "sequence_sum",
            "lm_dropout": False,
            "mid_dim": 512,
            "prefix_dropout": 0.0,
            "prefix_length": plen,
        }
    else:
        assert spec["method_settings"] == {"loss": "token_mean", "lm_dropout": True}


def test_large_model_override(paper_config):
    hp = make_spec(paper_config, "webnlg", "gpt2-large", "prefix")["hparams"]
    assert hp["batch_size"] == 2 and hp["gradient_accumulation_steps"] == 3


def test_report_manifest_maps_rows_to_score_files(paper_config):
    manifest = report_manifest(paper_config, "table1", "results/runs/{run}/{split}.scores.json")
    labels = [r["label"] for r in manifest["rows"]]
    assert labels[0] == "FINE-TUNE" and "PREFIX (0.1%)" in labels
    prefix = next(r for r in manifest["rows"] if r["label"] == "PREFIX (0.1%)")
    assert prefix["scores"]["e2e"] == "results/runs/e2e-gpt2-medium-prefix/test.scores.json"
    ft_top2 = next(r for r in manifest["rows"] if r["label"] == "FT-TOP2")
    assert ft_top2["scores"] == {"e2e": None, "webnlg": None, "dart": None}
