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
    with pytest.raises(KeyError, match="config: methods.adapter is missing"):  # a kind is not a method name
        make_spec(paper_config, "e2e", "gpt2-medium", "adapter")


def test_large_model_override(paper_config):
    hp = make_spec(paper_config, "webnlg", "gpt2-large", "prefix")["hparams"]
    assert hp["batch_size"] == 2 and hp["gradient_accumulation_steps"] == 3


def _cell_scores(row: dict, dataset: str) -> list[str]:
    return [r["scores"] for c in row["cells"] if c["dataset"] == dataset for r in c["runs"]]


def test_report_manifest_maps_rows_to_score_files(paper_config):
    manifest = report_manifest(paper_config, "table1", "results/runs/{run}/{split}.scores.json")
    labels = [r["label"] for r in manifest["rows"]]
    assert labels[0] == "FINE-TUNE" and "PREFIX (0.1%)" in labels
    prefix = next(r for r in manifest["rows"] if r["label"] == "PREFIX (0.1%)")
    assert _cell_scores(prefix, "e2e") == ["results/runs/e2e-gpt2-medium-prefix/test.scores.json"]
    ft_top2 = next(r for r in manifest["rows"] if r["label"] == "FT-TOP2")
    assert _cell_scores(ft_top2, "dart") == ["results/runs/dart-gpt2-medium-ft_top2/test.scores.json"]
    assert all(r["ran"] == r["model"] for r in manifest["rows"])  # paper scale: the models the paper ran


def test_rows_without_a_method_show_paper_values_only(paper_config):
    config = {**paper_config, "artifacts": {"table1": {**paper_config["artifacts"]["table1"]}}}
    config["artifacts"]["table1"]["rows"] = [
        {k: v for k, v in row.items() if k != "method"} if row["label"] == "FT-TOP2" else row
        for row in paper_config["artifacts"]["table1"]["rows"]
    ]
    manifest = report_manifest(config, "table1", "results/runs/{run}/{split}.scores.json")
    ft_top2 = next(r for r in manifest["rows"] if r["label"] == "FT-TOP2")
    assert [c["runs"] for c in ft_top2["cells"]] == [[], [], []]
    assert len(artifact_runs(config, "table1")) == 18


def test_the_paper_grid_plans_every_artifact_and_trains_shared_runs_once(paper_config):
    counts = {a: len(artifact_runs(paper_config, a)) for a in paper_config["artifacts"]}
    assert counts == {
        "table1": 21,
        "table2": 2,
        "table3": 4,
        "table4": 7,  # 6 + the Table 1 PREFIX row
        "figure3": 160,  # 2 tasks x 4 sizes x 5 subsamples x 2 seeds x 2 methods
        "figure3_appendix": 160,  # the same runs
        "figure4": 13,  # XSUM 8 + DART 5 lengths
        "figure5": 90,  # 9 conditions x 5 x 2
        "figure5_appendix": 90,
        "figure6": 10,
        "appendix_dev": 21,  # the Table 1 runs on dev
        "appendix_dev_xsum": 2,
    }
    runs = expand_runs(paper_config)
    # shared: Table 2's length-100 run and Table 1's DART length-10 run in Figure 4; "table-to-text:" at n = 100
    # in Figures 3 and 5; the dev tables train nothing
    assert len(runs) == 21 + 2 + 4 + 6 + 160 + (13 - 2) + (90 - 10) + 10 == 294 >= 213
    figure4 = artifact_runs(paper_config, "figure4")
    assert "xsum-bart-large-prefix_xsum_2pct" in figure4 and "dart-gpt2-medium-prefix" in figure4
    assert "xsum-bart-large-prefix_xsum_2pct-len200" in figure4
    assert runs["xsum-bart-large-prefix_xsum_2pct-len200"]["method_settings"]["prefix_length"] == 200
    assert set(artifact_runs(paper_config, "appendix_dev")) == set(artifact_runs(paper_config, "table1"))


def test_low_data_runs_follow_the_acl_appendix(paper_config):
    runs = expand_runs(paper_config)
    prefix = runs["e2e-gpt2-medium-prefix_word-n500-d22-s9"]
    assert prefix["data"] == {"size": 500, "data_seed": 22}
    assert prefix["hparams"]["max_steps"] == 400 and prefix["hparams"]["learning_rate"] == 5e-5
    settings = prefix["method_settings"]
    assert settings["init_word"] == "table-to-text:" and "prefix_length" not in settings
    ft = runs["e2e-gpt2-medium-finetune_word-n50-d101-s200"]
    assert ft["hparams"]["max_steps"] == 100 and ft["method_settings"]["prepend_word"] == "table-to-text:"
    xsum_ft = runs["xsum-bart-large-finetune_xsum_lowdata-n200-d7-s200"]
    assert (xsum_ft["hparams"]["epochs"], xsum_ft["hparams"]["batch_size"]) == (3, 2)
    assert xsum_ft["hparams"]["gradient_accumulation_steps"] == 3
    xsum_prefix = runs["xsum-bart-large-prefix_xsum_lowdata-n50-d8-s9"]
    assert xsum_prefix["hparams"]["epochs"] == 30 and xsum_prefix["hparams"]["warmup_steps"] == 100
    xsum_init = xsum_prefix["method_settings"]  # the master branch's BART word init
    assert (xsum_init["init"], xsum_init["init_word"]) == ("word", "summarize")
    assert "prefix_length" not in xsum_init  # P = the word's tokens
    assert (xsum_init["init_steps"], xsum_init["init_lr"]) == (200, 3e-5)
    assert xsum_ft["hparams"]["warmup_steps"] == 0  # the code's FINE-TUNE commands (the paper text: 100)
    manifest = report_manifest(paper_config, "figure3", "r/{run}/{split}.scores.json")
    e2e_prefix = manifest["rows"][0]
    assert [c["x"] for c in e2e_prefix["cells"]] == [50, 100, 200, 500]
    assert all(len(c["runs"]) == 10 for c in e2e_prefix["cells"])
    assert manifest["splits"] == {"xsum": "test", "e2e": "dev"}  # the code decoded low-data E2E on dev
    assert e2e_prefix["cells"][0]["runs"][0]["scores"].endswith("/dev.scores.json")


def test_initialisation_conditions_and_extrapolation_splits(paper_config):
    runs = expand_runs(paper_config)
    random = runs["e2e-gpt2-medium-prefix_word-n100-d8-len5-init-random-s200"]
    assert random["method_settings"]["init"] == "random" and random["method_settings"]["prefix_length"] == 5
    assert "init_word" not in random["method_settings"]
    elephant = runs["e2e-gpt2-medium-prefix_word-n100-d8-w-elephant-s200"]
    assert (
        elephant["method_settings"]["init_word"] == "elephant"
        and "prefix_length" not in elephant["method_settings"]
    )
    sports = runs["xsum-bart-large-prefix_xsum_2pct-news_sports-len40"]
    assert sports["data"] == {"split": "news_sports"}
    assert (sports["hparams"]["epochs"], sports["hparams"]["batch_size"]) == (15, 36)
    news = runs["xsum-bart-large-prefix_xsum_2pct-within_news-len80"]
    assert news["hparams"]["epochs"] == 30 and news["method_settings"]["prefix_length"] == 80
    assert runs["xsum-bart-large-finetune_xsum-within_news"]["hparams"]["learning_rate"] == 3e-5


def test_one_run_id_with_two_settings_is_an_error(paper_config):
    config = {**paper_config, "artifacts": dict(paper_config["artifacts"])}
    row = dict(paper_config["artifacts"]["table1"]["rows"][0], hparams={"learning_rate": 1e-3})
    config["artifacts"]["clash"] = {"split": "test", "datasets": ["e2e"], "rows": [row]}
    with pytest.raises(ValueError, match="'clash' row 'FINE-TUNE' defines run 'e2e-gpt2-medium-finetune'"):
        expand_runs(config)


def test_make_spec_names_only_what_differs_from_the_default(paper_config):
    base = make_spec(paper_config, "dart", "gpt2-medium", "prefix", hparams={"prefix_length": 10})
    assert base["run_id"] == "dart-gpt2-medium-prefix"
    spec = make_spec(
        paper_config,
        "e2e",
        "gpt2-medium",
        "prefix",
        data={"percent": 20, "data_seed": 3},
        hparams={"seed": 5},
    )
    assert spec["run_id"] == "e2e-gpt2-medium-prefix-pct20-d3-s5"
    with pytest.raises(ValueError, match="no letters or digits"):
        make_spec(paper_config, "e2e", "gpt2-medium", "prefix_word", settings={"init_word": "::"})
