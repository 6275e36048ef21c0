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
    assert len(runs) == len(set(runs)) == 21  # (5 medium rows + 2 large rows) x 3 datasets
    assert set(runs) <= set(expand_runs(paper_config))


def test_table4_reuses_the_table1_prefix_run_and_adds_six_ablations(paper_config):
    runs = artifact_runs(paper_config, "table4")
    assert runs[0] == "e2e-gpt2-medium-prefix" and runs[0] in artifact_runs(paper_config, "table1")
    specs = [expand_runs(paper_config)[r] for r in runs[1:]]
    assert [(s["method"], s["method_settings"]["prefix_length"]) for s in specs] == [
        ("emb_prefix", 1),
        ("emb_prefix", 10),
        ("emb_prefix", 20),
        ("infix", 1),
        ("infix", 10),
        ("infix", 20),
    ]
    assert all(s["method_settings"]["mid_dim"] == 512 and s["hparams"]["epochs"] == 10 for s in specs)
    manifest = report_manifest(paper_config, "table4", "results/runs/{run}/{split}.scores.json")
    assert manifest["datasets"] == ["e2e"]
    assert [r["setting"] for r in manifest["rows"]][1] == "full-data; prefix_len=1"


@pytest.mark.parametrize(
    ("method", "dataset", "lr", "epochs", "batch", "plen"),
    [
        ("prefix", "e2e", 8e-5, 5, 10, 5),
        ("prefix", "webnlg", 5e-5, 5, 5, 5),
        ("prefix", "dart", 5e-5, 10, 5, 10),
        ("finetune", "e2e", 5e-5, 5, 10, None),
        ("finetune", "webnlg", 1e-5, 10, 6, None),
        ("finetune", "dart", 1e-5, 10, 6, None),
        ("ft_top2", "webnlg", 5e-5, 10, 9, None),
        ("adapter_3pct", "e2e", 5e-5, 5, 5, None),
        ("adapter_0.1pct", "e2e", 8e-5, 10, 5, None),
        ("adapter_0.1pct", "dart", 8e-5, 5, 5, None),
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
    elif method == "finetune":
        assert spec["method_settings"] == {"loss": "token_mean", "lm_dropout": True}
    else:  # the baselines train with the HF Trainer: token-mean loss, LM dropout on
        assert spec["method_settings"]["loss"] == "token_mean" and spec["method_settings"]["lm_dropout"]
    assert spec["method_name"] == method and spec["run_id"] == f"{dataset}-gpt2-medium-{method}"


def test_method_kinds_and_settings(paper_config):
    ft_top = make_spec(paper_config, "e2e", "gpt2-medium", "ft_top2")
    assert ft_top["method"] == "ft_top" and ft_top["method_settings"]["top_layers"] == 2
    assert ft_top["method_settings"]["train_embeddings"] is True  # the code's --top_layers 2
    for name, percent in (("adapter_3pct", 3), ("adapter_0.1pct", 0.1)):
        spec = make_spec(paper_config, "dart", "gpt2-medium", name)
        assert spec["method"] == "adapter" and "kind" not in spec["method_settings"]
        assert spec["method_settings"]["percent"] == percent and spec["method_settings"]["design"] == "lin"
    with pytest.raises(KeyError, match="training.hparams.adapter.e2e is missing"):
        make_spec(paper_config, "e2e", "gpt2-medium", "adapter")


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
    assert ft_top2["scores"]["dart"] == "results/runs/dart-gpt2-medium-ft_top2/test.scores.json"
    assert all(r["ran"] == r["model"] for r in manifest["rows"])  # paper scale: the models the paper ran


def test_rows_without_a_method_show_paper_values_only(paper_config):
    config = {**paper_config, "artifacts": {"table1": {**paper_config["artifacts"]["table1"]}}}
    config["artifacts"]["table1"]["rows"] = [
        {k: v for k, v in row.items() if k != "method"} if row["label"] == "FT-TOP2" else row
        for row in paper_config["artifacts"]["table1"]["rows"]
    ]
    manifest = report_manifest(config, "table1", "results/runs/{run}/{split}.scores.json")
    ft_top2 = next(r for r in manifest["rows"] if r["label"] == "FT-TOP2")
    assert ft_top2["scores"] == {"e2e": None, "webnlg": None, "dart": None}
    assert len(artifact_runs(config, "table1")) == 18
