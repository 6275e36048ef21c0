"""Cluster helpers: the GPU smoke test and the compute forecast."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import yaml

from prefixtune.cluster.forecast import forecast_table, train_examples
from prefixtune.cluster.gpu_smoke import NoGpuError, gpu_smoke
from prefixtune.grid import expand_runs
from prefixtune.training.schedule import planned_steps

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a job that sees no GPU")
def test_gpu_smoke_names_the_fix_when_the_job_sees_no_gpu(tmp_path):
    with pytest.raises(NoGpuError, match=r"no CUDA device is visible to this job .*set-resources"):
        gpu_smoke(tmp_path / "gpu.json")
    assert not (tmp_path / "gpu.json").exists()


def test_gpu_smoke_steps_run_and_are_recorded(tmp_path):
    record = gpu_smoke(tmp_path / "gpu.json", allow_cpu=True)
    assert json.loads((tmp_path / "gpu.json").read_text()) == json.loads(json.dumps(record))
    for precision in ("fp32", "bf16"):
        step = record["steps"][precision]
        assert step["finite"] and step["prefix_updated"] and step["frozen_weights_with_gradients"] == []


@pytest.fixture(scope="module")
def paper_config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_steps_follow_the_trainer(paper_config, tmp_path):
    specs = expand_runs(paper_config)
    prefix = specs["e2e-gpt2-medium-prefix"]
    assert train_examples(paper_config, prefix, tmp_path) == 42061
    assert planned_steps(42061, prefix["hparams"])[2] == 4207 * 5  # ceil(42061 / 10) steps x 5 epochs
    assert planned_steps(13, {"batch_size": 2, "gradient_accumulation_steps": 3, "epochs": 2})[2] == 4
    assert planned_steps(50, {"batch_size": 5, "max_steps": 100, "epochs": 9})[2] == 100


def test_forecast_prefers_measured_rates_and_says_which(paper_config, tmp_path):
    config = copy.deepcopy(paper_config)
    config["artifacts"] = {"table1": config["artifacts"]["table1"]}
    text = forecast_table(config, tmp_path, ["table1"])
    assert "| table1 | 21 |" in text and "assumed (config forecast.seconds_per_example)" in text
    # a finished GPU run's rate replaces the assumption for its model and method
    run = tmp_path / "runs" / "e2e-gpt2-medium-prefix"
    run.mkdir(parents=True)
    spec = expand_runs(config)["e2e-gpt2-medium-prefix"]
    record = {"spec": spec, "device": "NVIDIA H100", "training": {"seconds_per_step": 0.5}}
    (run / "run.json").write_text(json.dumps(record))
    text = forecast_table(config, tmp_path, ["table1"])
    assert "gpt2-medium prefix: measured (1 runs): 0.0500 s/example" in text
    del config["forecast"]
    text = forecast_table(config, tmp_path, ["table1"])
    assert "| table1 | 21 | 0 | ? |" in text  # no training-set sizes and no rates: unknown, not zero
    with pytest.raises(KeyError, match="unknown artifact 'table9'"):
        forecast_table(config, tmp_path, ["table9"])
