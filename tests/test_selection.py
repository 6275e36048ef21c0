"""Checkpoint selection: best dev loss (GPT-2), best validation ROUGE-2 per epoch (XSUM), or the final model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from prefixtune.data.records import EvalItem, Pair, write_jsonl
from prefixtune.training import selection as sel
from prefixtune.training.train import TimeBudgetExceeded, train_run
from tiny_bart_models import TINY_XSUM_DECODING
from tiny_models import save_tiny_model

LOW_DATA = {"rule": "best_dev_loss", "eval_every": 2, "eval_batch_size": 4, "group": "low_data"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("data")
    pairs = [Pair(f"name : Place {i} | area : riverside", f"Place {i} is by the river . ") for i in range(10)]
    write_jsonl(root / "train.jsonl", pairs)
    items = [
        EvalItem(
            str(i), f"name : Spot {i} | area : city centre", [f"Spot {i} is central .", "It is central ."], ""
        )
        for i in range(3)
    ]
    write_jsonl(root / "dev.jsonl", items)
    return root / "train.jsonl", root / "dev.jsonl"


def spec(selection: dict | None) -> dict:
    out = {
        "run_id": "toy-prefix",
        "dataset": "e2e",
        "model": "tiny",
        "method": "prefix",
        "method_settings": {"loss": "sequence_sum", "lm_dropout": False, "mid_dim": 16, "prefix_length": 2},
        "hparams": {"learning_rate": 1e-2, "max_steps": 8, "batch_size": 3, "seed": 7, "max_grad_norm": 1.0},
    }
    if selection is not None:
        out["selection"] = selection
    return out


def saved(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "prefix.safetensors")


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def scripted(
    monkeypatch: pytest.MonkeyPatch, scores: dict[int, float], snapshots: dict | None = None
) -> None:
    """Each evaluation returns the score given for its step (and the parameters at that step are kept aside)."""
    original = sel.Selection.observe

    def observe(self: sel.Selection, step: int, params: list[torch.Tensor]) -> None:
        if snapshots is not None:
            snapshots[step] = [p.detach().clone() for p in params]
        self.evaluate = lambda: scores[step]
        original(self, step, params)

    monkeypatch.setattr(sel.Selection, "observe", observe)


def test_dev_loss_is_the_batch_size_weighted_mean_of_batch_losses():
    class Method:
        training = True

        def eval(self) -> None:
            self.training = False

        def train(self) -> None:
            self.training = True

    method = Method()
    seen_modes = []

    def batch_loss(batch: list[float]) -> torch.Tensor:
        seen_modes.append(method.training)
        return torch.tensor(sum(batch) / len(batch))

    values = [float(v) for v in range(10)]  # batches of 4: [0..3], [4..7], [8, 9]
    loss = sel.dev_loss(method, batch_loss, values, 4, lambda: torch.autocast("cpu", enabled=False))
    # each batch's mean repeated batch-size times, averaged: the plain mean here (not the mean of batch means 5.17)
    assert loss == pytest.approx(4.5) and seen_modes == [False] * 3 and method.training


def test_dev_pairs_take_every_reference(data):
    pairs = sel.dev_pairs(data[1])
    assert len(pairs) == 6 and pairs[1] == Pair("name : Spot 0 | area : city centre", "It is central .")


def test_the_best_dev_loss_step_is_written(model_dir, data, tmp_path, monkeypatch):
    snapshots: dict[int, list[torch.Tensor]] = {}
    scripted(monkeypatch, {2: 3.0, 4: 1.0, 6: 2.0, 8: 1.0}, snapshots)  # a tie at 8: the earlier step stays
    record = train_run(
        spec(LOW_DATA),
        data[0],
        model_dir,
        tmp_path / "t",
        tmp_path / "run.json",
        tmp_path / "ck",
        dev_path=data[1],
    )
    chosen = record["selection"]
    assert (chosen["chosen_step"], chosen["chosen_score"], chosen["score_name"]) == (4, 1.0, "dev loss")
    assert [e["step"] for e in chosen["evaluations"]] == [2, 4, 6, 8] and chosen["dev_examples"] == 6
    assert chosen["eval_every"] == 2 and chosen["eval_batch_size"] == 4
    written = list(saved(tmp_path / "t").values())
    best = snapshots[4]
    assert sorted(t.numel() for t in written) == sorted(t.numel() for t in best)
    assert all(any(torch.equal(w, b) for b in best) for w in written)
    assert not any(
        torch.equal(w, f) for w, f in zip(written, snapshots[8], strict=False) if w.shape == f.shape
    )


def test_final_switch_writes_the_final_parameters_and_selection_does_not_change_training(
    model_dir, data, tmp_path, monkeypatch
):
    plain = train_run(spec(None), data[0], model_dir, tmp_path / "a", tmp_path / "a.json", tmp_path / "ca")
    final = train_run(
        spec({"rule": "final", "group": "low_data"}), data[0], model_dir, tmp_path / "b", tmp_path / "b.json",
        tmp_path / "cb", dev_path=data[1],
    )  # fmt: skip
    assert plain["selection"] == {"rule": "final", "chosen_step": 8} == final["selection"]
    assert same(saved(tmp_path / "a"), saved(tmp_path / "b"))
    # with real dev-loss evaluations in between, the trajectory is unchanged: when the last step is the best,
    # the written parameters are exactly the final ones
    scripted(monkeypatch, {2: 4.0, 4: 3.0, 6: 2.0, 8: 1.0})
    best = train_run(
        spec(LOW_DATA),
        data[0],
        model_dir,
        tmp_path / "c",
        tmp_path / "c.json",
        tmp_path / "cc",
        dev_path=data[1],
    )
    assert best["selection"]["chosen_step"] == 8 and same(saved(tmp_path / "a"), saved(tmp_path / "c"))
    assert best["training"]["loss_every_50_steps"] == plain["training"]["loss_every_50_steps"]


def test_a_real_dev_loss_run_records_every_evaluation(model_dir, data, tmp_path):
    record = train_run(
        spec(LOW_DATA),
        data[0],
        model_dir,
        tmp_path / "t",
        tmp_path / "run.json",
        tmp_path / "ck",
        dev_path=data[1],
    )
    evaluations = record["selection"]["evaluations"]
    assert [e["step"] for e in evaluations] == [2, 4, 6, 8]
    assert record["selection"]["chosen_score"] == min(e["score"] for e in evaluations) > 0
    assert json.loads((tmp_path / "run.json").read_text())["selection"]["dev_sha256"]


def test_killed_run_resumes_and_selects_the_same_checkpoint(model_dir, data, tmp_path, monkeypatch):
    scores = {2: 3.0, 4: 1.0, 6: 2.0, 8: 1.5}  # the best (step 4) comes before the kill (after step 5)
    scripted(monkeypatch, scores)
    straight = train_run(
        spec(LOW_DATA),
        data[0],
        model_dir,
        tmp_path / "a",
        tmp_path / "a.json",
        tmp_path / "ck_a",
        dev_path=data[1],
    )
    calls = {"n": 0}

    def clock() -> float:  # the start, then one reading per optimizer step: out of time after step 5
        calls["n"] += 1
        return 1e9 if calls["n"] > 5 else 0.0

    with monkeypatch.context() as patch:
        patch.setattr("prefixtune.training.train._now", clock)
        with pytest.raises(TimeBudgetExceeded):
            train_run(
                spec(LOW_DATA), data[0], model_dir, tmp_path / "b", tmp_path / "b.json", tmp_path / "ck_b", 100.0,
                dev_path=data[1],
            )  # fmt: skip
    state = torch.load(tmp_path / "ck_b" / "checkpoint.pt", weights_only=False)
    assert state["step"] == 5 and state["selection"]["best_step"] == 4
    resumed = train_run(
        spec(LOW_DATA),
        data[0],
        model_dir,
        tmp_path / "b",
        tmp_path / "b.json",
        tmp_path / "ck_b",
        dev_path=data[1],
    )
    assert resumed["training"]["resumed_from_checkpoint"]
    keys = ("chosen_step", "chosen_score", "evaluations")
    assert [resumed["selection"][k] for k in keys] == [straight["selection"][k] for k in keys]
    assert resumed["selection"]["chosen_step"] == 4
    assert same(saved(tmp_path / "a"), saved(tmp_path / "b"))  # bit-identical selected parameters


def test_an_interval_beyond_the_run_is_a_config_error(model_dir, data, tmp_path):
    with pytest.raises(ValueError, match="training.selection eval_every 50: the run has 8 optimizer steps"):
        train_run(
            spec({**LOW_DATA, "eval_every": 50}), data[0], model_dir, tmp_path / "t", tmp_path / "r.json",
            tmp_path / "ck", dev_path=data[1],
        )  # fmt: skip
    assert not (tmp_path / "t").exists()


def test_run_groups_in_the_grid():
    from prefixtune.grid import selection_settings

    config = {
        "training": {
            "selection": {
                "full_data": {"rule": "final", "eval_every": 5000, "eval_batch_size": 32},
                "low_data": {"rule": "best_dev_loss", "eval_every": 50, "eval_batch_size": 32},
                "xsum": {"rule": "best_val_rouge", "every_epochs": 1, "val_items": 500, "metric": "rouge2",
                         "reference_max_tokens": 60, "score_batch_size": {"prefix": 10, "finetune": 32}},
            }
        }
    }  # fmt: skip
    assert selection_settings(config, "e2e", "prefix", {}) == {"rule": "final", "group": "full_data"}
    assert selection_settings(config, "e2e", "prefix", {"percent": 20, "data_seed": 1})["rule"] == "final"
    low = selection_settings(config, "e2e", "finetune", {"size": 50, "data_seed": 8})
    assert low == {"rule": "best_dev_loss", "eval_every": 50, "eval_batch_size": 32, "group": "low_data"}
    assert selection_settings(config, "xsum", "prefix", {"size": 50})["score_batch_size"] == 10
    assert selection_settings(config, "xsum", "finetune", {})["score_batch_size"] == 32
    assert selection_settings({"training": {}}, "xsum", "prefix", {}) == {"rule": "final", "group": "xsum"}


def test_valset_is_the_first_items(tmp_path):
    from prefixtune.data.records import read_jsonl
    from prefixtune.data.valset import write_first_items

    items = [EvalItem(str(i), f"article {i}", [f"summary {i}"], str(i)) for i in range(5)]
    write_jsonl(tmp_path / "dev.jsonl", items)
    assert write_first_items(tmp_path / "dev.jsonl", 3, tmp_path / "first3.jsonl") == 3
    assert read_jsonl(tmp_path / "first3.jsonl", EvalItem) == items[:3]
    assert write_first_items(tmp_path / "dev.jsonl", 500, tmp_path / "all.jsonl") == 5


# -- XSUM: validation after every epoch, ROUGE-2 ------------------------------------------------------------------

XSUM_DECODING = TINY_XSUM_DECODING
XSUM_SELECTION = {
    "rule": "best_val_rouge", "every_epochs": 1, "val_items": 3, "metric": "rouge2", "reference_max_tokens": 60,
    "score_batch_size": 2, "group": "xsum",
}  # fmt: skip
ARTICLES = [
    ("The Mill offers Thai dishes by the river and is cheap .", "The Mill offers cheap Thai dishes."),
    ("Aromi , in the city centre , offers French dishes .", "Aromi offers French dishes."),
    ("Blue Spice offers Indian dishes near The Eagle .", "Blue Spice offers Indian dishes."),
    ("Zizzi serves Italian food in the riverside area .", "Zizzi serves Italian food."),
]


def xsum_spec(selection: dict) -> dict:
    return {
        "run_id": "xsum-tiny-prefix",
        "method": "prefix",
        "method_settings": {"loss": "token_mean", "lm_dropout": True, "mid_dim": 32, "prefix_length": 4},
        "hparams": {"learning_rate": 5e-3, "epochs": 3, "batch_size": 4, "seed": 1, "max_source_tokens": 64,
                    "max_target_tokens": 16},
        "selection": selection,
    }  # fmt: skip


@pytest.fixture
def xsum_files(tmp_path) -> tuple[Path, Path]:
    write_jsonl(tmp_path / "train.jsonl", [Pair(s, t) for s, t in ARTICLES] * 2)  # 2 steps per epoch
    items = [EvalItem(str(i), s, [t], str(i)) for i, (s, t) in enumerate(ARTICLES)]
    write_jsonl(tmp_path / "val.jsonl", items)
    return tmp_path / "train.jsonl", tmp_path / "val.jsonl"


def test_xsum_keeps_the_epoch_with_the_best_validation_rouge2(tmp_path, xsum_files, monkeypatch):
    from tiny_bart_models import one_thread, tiny_bart_dir

    snapshots: dict[int, list[torch.Tensor]] = {}
    scripted(monkeypatch, {2: 10.0, 4: 30.0, 6: 20.0}, snapshots)  # after epochs 1, 2, 3
    with one_thread():
        record = train_run(
            xsum_spec(XSUM_SELECTION), xsum_files[0], tiny_bart_dir(), tmp_path / "t", tmp_path / "run.json",
            tmp_path / "ck", dev_path=xsum_files[1], decoding=XSUM_DECODING,
        )  # fmt: skip
    chosen = record["selection"]
    assert (chosen["chosen_epoch"], chosen["chosen_step"], chosen["chosen_score"]) == (2.0, 4, 30.0)
    assert chosen["score_name"] == "validation rouge2" and chosen["decoding"] == XSUM_DECODING
    assert chosen["dev_examples"] == 3  # val_items caps the file
    written = load_file(tmp_path / "t" / "bart_prefix.safetensors")
    assert all(any(torch.equal(w, b) for b in snapshots[4]) for w in written.values())


def test_xsum_validation_end_to_end_equals_decoding_and_scoring_the_chosen_prefix(tmp_path, xsum_files):
    """The real validation: summaries from the decode stage's code, ROUGE-2 from the scorer's; decoding the written
    prefix again and scoring it the same way gives the recorded score of the chosen epoch."""
    from prefixtune.data.records import read_jsonl
    from prefixtune.decoding.decode import decode_split
    from prefixtune.metrics.rouge import batch_bootstrap, per_example, truncate_references
    from prefixtune.models.loading import load_tokenizer
    from tiny_bart_models import one_thread, tiny_bart_dir

    base = tiny_bart_dir()
    run = xsum_spec(XSUM_SELECTION)
    with one_thread():
        record = train_run(
            run, xsum_files[0], base, tmp_path / "t", tmp_path / "run.json", tmp_path / "ck",
            dev_path=xsum_files[1], decoding=XSUM_DECODING,
        )  # fmt: skip
        chosen = record["selection"]
        assert [e["epoch"] for e in chosen["evaluations"]] == [1.0, 2.0, 3.0]
        assert all(0 <= e["score"] <= 100 for e in chosen["evaluations"]) and chosen["validation_seconds"] > 0
        items = read_jsonl(xsum_files[1], sel.EvalItem)[:3]
        write_jsonl(tmp_path / "val3.jsonl", items)
        decode_split(
            run, tmp_path / "val3.jsonl", base, tmp_path / "t", tmp_path / "val.hyp.txt", XSUM_DECODING
        )
    hyps = (tmp_path / "val.hyp.txt").read_text().splitlines()
    refs = truncate_references([i.references[0] for i in items], load_tokenizer(base), 60)
    again = batch_bootstrap(per_example(hyps, refs), 2, sel.BOOTSTRAP_SEED)["rouge2"]
    assert again == pytest.approx(chosen["chosen_score"], abs=1e-9)


def test_figure_pages_say_which_checkpoint_was_decoded(tmp_path):
    from prefixtune.report.selection import selection_markdown

    def run(name: str, record: dict) -> dict:
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(json.dumps(record))
        return {"run": name, "scores": str(tmp_path / name / "dev.scores.json")}

    low = {"rule": "best_dev_loss", "every_steps": 50, "chosen_step": 150, "chosen_score": 12.3456}
    xsum = {"rule": "best_val_rouge", "every_epochs": 1, "metric": "rouge2", "dev_examples": 15,
            "chosen_step": 40, "chosen_epoch": 4.0, "chosen_score": 17.204}  # fmt: skip
    manifest = {
        "rows": [
            {"label": "PREFIX", "cells": [
                {"dataset": "e2e", "x": 50, "runs": [
                    run("a", {"selection": low, "training": {"steps": 200, "epochs": 40}}),
                    {"run": "b", "scores": str(tmp_path / "b" / "dev.scores.json")},
                ]},
                {"dataset": "xsum", "x": 50, "runs": [
                    run("c", {"selection": xsum, "training": {"steps": 300, "epochs": 30}})]},
            ]},
            {"label": "FINE-TUNE", "cells": [
                {"dataset": "e2e", "x": 10, "runs": [
                    run("d", {"selection": {"rule": "final", "chosen_step": 99}, "training": {"steps": 99}})]},
            ]},
        ]
    }  # fmt: skip
    text = selection_markdown(manifest)
    assert (
        "| PREFIX | E2E | 50 | lowest dev loss, every 50 steps | step 150 of 200 (dev loss 12.3456); 1 not"
        in text
    )
    assert (
        "best validation ROUGE-2 on 15 articles, after every epoch | epoch 4 of 30 (ROUGE-2 17.20) |" in text
    )
    assert "| FINE-TUNE | E2E | 10 | final model | step 99 (final) |" in text
    assert "rule" not in text and "best_dev_loss" not in text  # readable text, no config keys
