"""Training: the authors' example layout and losses, and a killed job resuming to the same result."""

from __future__ import annotations

import json
import signal

import pytest
import torch

from prefixtune.data.records import Pair, write_jsonl
from prefixtune.training.train import IGNORE, TimeBudgetExceeded, encode_pair, lm_loss, train_run
from tiny_models import load_tiny, save_tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny"))


def test_labels_cover_target_and_final_eos_only(model_dir):
    tokenizer, _ = load_tiny(model_dir)
    example = encode_pair(Pair("name : The Eagle", "The Eagle is here . "), tokenizer)
    eos = tokenizer.eos_token_id
    sep = example.input_ids.index(eos)
    assert example.labels[: sep + 1] == [IGNORE] * (sep + 1)
    assert example.labels[sep + 1 :] == example.input_ids[sep + 1 :]
    assert example.input_ids[-1] == eos and example.input_ids.count(eos) == 2
    # the authors' text: " SRC <|endoftext|> TGT <|endoftext|>", target keeps its trailing space
    assert (
        tokenizer.decode(example.input_ids)
        == " name : The Eagle <|endoftext|> The Eagle is here .  <|endoftext|>"
    )


def test_loss_modes():
    logits = torch.zeros(2, 4, 3)  # uniform: every token costs log 3
    labels = torch.tensor([[IGNORE, 1, 2, 0], [IGNORE, 1, IGNORE, IGNORE]])
    log3 = torch.log(torch.tensor(3.0))
    assert torch.isclose(lm_loss(logits, labels, "token_mean"), log3)
    # sequence 1 has 3 target tokens, sequence 2 one: (3 + 1) / 2 * log 3
    assert torch.isclose(lm_loss(logits, labels, "sequence_sum"), 2 * log3)
    with pytest.raises(ValueError, match="unknown loss mode"):
        lm_loss(logits, labels, "mean")


def spec(method: str) -> dict:
    settings = {"loss": "sequence_sum", "lm_dropout": False, "mid_dim": 16, "prefix_length": 2}
    if method == "finetune":
        settings = {"loss": "token_mean", "lm_dropout": True}
    return {
        "run_id": f"toy-{method}",
        "dataset": "e2e",
        "model": "tiny",
        "method": method,
        "method_settings": settings,
        "hparams": {"learning_rate": 1e-2, "epochs": 2, "batch_size": 3, "seed": 7, "max_grad_norm": 1.0},
    }


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    pairs = [Pair(f"name : Place {i} | area : riverside", f"Place {i} is by the river . ") for i in range(10)]
    write_jsonl(path, pairs)
    return path


@pytest.mark.parametrize("method", ["prefix", "finetune"])
def test_killed_job_resumes_to_the_same_result(method, model_dir, train_file, tmp_path, monkeypatch):
    straight = train_run(
        spec(method), train_file, model_dir, tmp_path / "a", tmp_path / "a.json", tmp_path / "ck_a"
    )

    # second run: out of time after the 3rd optimizer step (of 8), checkpoint, then resume
    calls = {"n": 0}

    def clock():  # the start, then one reading per optimizer step
        calls["n"] += 1
        return 1e9 if calls["n"] > 4 else 0.0

    monkeypatch.setattr("prefixtune.training.train._now", clock)
    with pytest.raises(TimeBudgetExceeded):
        train_run(
            spec(method), train_file, model_dir, tmp_path / "b", tmp_path / "b.json", tmp_path / "ck_b", 100.0
        )
    assert (tmp_path / "ck_b" / "checkpoint.pt").exists() and not (tmp_path / "b").exists()
    monkeypatch.undo()
    resumed = train_run(
        spec(method), train_file, model_dir, tmp_path / "b", tmp_path / "b.json", tmp_path / "ck_b"
    )

    assert resumed["training"]["resumed_from_checkpoint"] and not (tmp_path / "ck_b").exists()
    assert resumed["training"]["steps"] == straight["training"]["steps"] == 8
    assert resumed["training"]["optimizer"] == "adamw_transformers_3_2"  # the default rule resumes alike
    assert resumed["training"]["loss_every_50_steps"] == straight["training"]["loss_every_50_steps"]
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    for name in files:
        if name.endswith(".safetensors"):
            from safetensors.torch import load_file

            a, b = load_file(tmp_path / "a" / name), load_file(tmp_path / "b" / name)
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_run_json_records_provenance(model_dir, train_file, tmp_path):
    record = train_run(
        spec("prefix"), train_file, model_dir, tmp_path / "t", tmp_path / "run.json", tmp_path / "ck"
    )
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved == json.loads(json.dumps(record))
    assert saved["spec"]["method_settings"]["loss"] == "sequence_sum"
    assert saved["seeds"] == {"training": 7}
    assert set(saved["versions"]) >= {"torch", "transformers", "python"}
    assert saved["git_commit"] and saved["wall_time_s"] >= 0
    assert saved["parameters"]["stored"] == 2 * 2 * 2 * 32
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["prefix.safetensors", "prefix_config.json"]


def test_too_long_text_is_refused_with_its_line(model_dir, tmp_path):
    path = tmp_path / "train.jsonl"
    long_target = " ".join(f"word{i}" for i in range(200))  # beyond the tiny model's 128 positions
    write_jsonl(path, [Pair("name : A", "A is here . "), Pair("name : B", long_target)])
    with pytest.raises(ValueError, match=r"train\.jsonl:2: the training text is \d+ tokens; .* at most 126"):
        train_run(spec("prefix"), path, model_dir, tmp_path / "t", tmp_path / "run.json", tmp_path / "ck")
    assert not (tmp_path / "t").exists() and not (tmp_path / "run.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "signum"),
    [("prefix", signal.SIGKILL), ("finetune", signal.SIGKILL), ("prefix", signal.SIGTERM)],
    ids=["prefix-kill9", "finetune-kill9", "prefix-sigterm"],
)
def test_kill_9_midway_then_rerun_gives_bit_identical_parameters(method, signum, model_dir, tmp_path):
    """The real CLI as the train rule calls it: SIGKILL (no chance to save) after a periodic checkpoint, or SIGTERM
    (SLURM's preemption notice: checkpoint after the step, exit 75), then the same command again resumes from the
    checkpoint and ends with exactly the uninterrupted run's parameters."""
    import os
    import subprocess
    import sys
    import time

    from safetensors.torch import load_file

    data = tmp_path / "train.jsonl"
    write_jsonl(
        data,
        [Pair(f"name : Place {i} | area : riverside", f"Place {i} is by the river . ") for i in range(12)],
    )
    run_spec = spec(method)
    run_spec["hparams"].update(batch_size=2, epochs=40)  # 240 steps
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(run_spec))
    cli = [sys.executable, "-c", "from prefixtune.cli import main; main()"]

    def command(name: str) -> list[str]:
        return [
            *cli, "train", "--spec", str(spec_file), "--train", str(data), "--base-model", str(model_dir),
            "--out", str(tmp_path / name / "trained"), "--run-json", str(tmp_path / name / "run.json"),
            "--checkpoint-dir", str(tmp_path / name / "ck"), "--checkpoint-every", "20",
        ]  # fmt: skip

    subprocess.run(command("straight"), check=True, capture_output=True)
    checkpoint = tmp_path / "killed" / "ck" / "checkpoint.pt"
    proc = subprocess.Popen(command("killed"), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signum)
    expected = -signal.SIGKILL if signum == signal.SIGKILL else 75  # 75: checkpointed, retry to resume
    assert proc.wait() == expected, "training finished before it could be stopped"
    assert not (tmp_path / "killed" / "trained").exists() and not (tmp_path / "killed" / "run.json").exists()
    step = torch.load(checkpoint, weights_only=False)["step"]
    assert 0 < step < 240

    subprocess.run(command("killed"), check=True, capture_output=True)
    record = json.loads((tmp_path / "killed" / "run.json").read_text())
    assert record["training"]["resumed_from_checkpoint"] and record["training"]["steps"] == 240
    straight = json.loads((tmp_path / "straight" / "run.json").read_text())
    assert record["training"]["loss_every_50_steps"] == straight["training"]["loss_every_50_steps"]
    names = sorted(p.name for p in (tmp_path / "straight" / "trained").glob("*.safetensors"))
    assert names
    for name in names:
        a = load_file(tmp_path / "straight" / "trained" / name)
        b = load_file(tmp_path / "killed" / "trained" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert not checkpoint.parent.exists()  # removed once the run is complete


def test_length_grouped_batches_waste_little_padding_and_follow_the_seed():
    from prefixtune.training.train import epoch_batches, padding_share

    rng = torch.Generator().manual_seed(0)
    lengths = (torch.randint(10, 80, (2000,), generator=rng)).tolist()  # E2E-like spread of token lengths
    plain = epoch_batches(2000, 10, 101, 0)
    grouped = epoch_batches(2000, 10, 101, 0, lengths)
    assert sorted(i for b in grouped for i in b) == list(range(2000))  # every example once per epoch
    assert padding_share(plain, lengths) > 0.25 and padding_share(grouped, lengths) < 0.10
    assert grouped == epoch_batches(2000, 10, 101, 0, lengths)  # a resumed job sees the same order
    assert grouped != epoch_batches(2000, 10, 101, 1, lengths) != epoch_batches(2000, 10, 7, 0, lengths)
    assert epoch_batches(2000, 10, 101, 0) == plain  # off: the authors' random batches, unchanged


def test_precision_is_fp32_on_cpu_and_recorded(model_dir, train_file, tmp_path):
    from prefixtune.training.train import resolve_precision

    assert resolve_precision({"precision": "bf16"}, torch.device("cpu")) == "fp32"
    with pytest.raises(ValueError, match="hparams.precision 'fp8': expected fp32, bf16 or fp16"):
        resolve_precision({"precision": "fp8"}, torch.device("cpu"))
    run = spec("prefix")
    run["hparams"].update(precision="bf16", length_grouped=True)
    record = train_run(run, train_file, model_dir, tmp_path / "t", tmp_path / "run.json", tmp_path / "ck")
    assert record["precision"] == {"arithmetic": "fp32", "tf32": False}
    assert record["training"]["seconds_per_step"] > 0
