"""Runs an interrupted forced retrain left without run.json: listed, warned about, and rebuilt by one command
(issue 17, item 5)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from prefixtune.cluster.incomplete import incomplete_runs

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run_dir(results: Path, run: str, *names: str) -> Path:
    folder = results / "runs" / run
    folder.mkdir(parents=True)
    for name in names:
        if name == "trained":
            (folder / name).mkdir()
        else:
            (folder / name).write_text("x\n")
    return folder


def test_incomplete_runs_are_those_that_lost_their_training(tmp_path):
    results = tmp_path / "results"
    _run_dir(results, "complete", "run.json", "trained", "test.hyp.txt", "test.scores.json")
    _run_dir(results, "retrain-interrupted", "test.hyp.txt", "test.hyp.json", "test.scores.json")
    _run_dir(results, "weights-lost", "run.json", "dev.hyp.txt", "test.hyp.txt")  # trained/ is not temporary
    _run_dir(results, "finetune", "run.json", "test.hyp.txt")  # full weights: temporary, gone once decoded
    _run_dir(results, "training-only", "run.json")  # nothing made from it yet: Snakemake rebuilds it itself
    _run_dir(results, "not-in-config", "test.hyp.txt")
    runs = ["complete", "retrain-interrupted", "weights-lost", "finetune", "training-only", "fresh"]
    found = incomplete_runs(results, runs, {"finetune"})
    assert {run: [p.name for p in files] for run, files in found.items()} == {
        "retrain-interrupted": ["test.hyp.txt"],
        "weights-lost": ["dev.hyp.txt", "test.hyp.txt"],
    }
    assert incomplete_runs(tmp_path / "none", runs, set()) == {}


def test_workflow_warns_and_the_documented_command_rebuilds(tmp_path):
    """The demo config in a scratch working directory: a run's scores remain, its run.json is gone."""
    (tmp_path / "config").symlink_to(ROOT / "config")
    run = tmp_path / "demo" / "results" / "runs" / "e2e-tiny-gpt2-prefix"
    run.mkdir(parents=True)
    for name in ("test.hyp.txt", "test.hyp.json", "test.scores.json"):
        (run / name).write_text("{}\n")
    target = "demo/results/runs/e2e-tiny-gpt2-prefix/test.scores.json"
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}

    def run_cmd(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    listed = run_cmd(str(BIN / "prefixtune"), "incomplete", "--configfile", "config/demo.yaml")
    assert listed.returncode == 0 and listed.stdout.split() == [
        "demo/results/runs/e2e-tiny-gpt2-prefix/test.hyp.txt"
    ]
    assert "e2e-tiny-gpt2-prefix: its training is gone" in listed.stderr
    snakemake = [
        str(BIN / "snakemake"),
        "-n",
        "-s",
        str(ROOT / "Snakefile"),
        target,
        "--configfile=config/demo.yaml",
    ]
    plain = run_cmd(*snakemake)
    assert plain.returncode == 0, plain.stderr[-2000:]
    out = plain.stdout + plain.stderr
    assert "Nothing to be done" in out  # what a user saw: Snakemake alone does not notice
    assert "Warning: run e2e-tiny-gpt2-prefix: run.json or trained/ is missing" in out  # the workflow does
    forced = run_cmd(*snakemake, "--forcerun", *listed.stdout.split())
    assert forced.returncode == 0, forced.stderr[-2000:]
    jobs = forced.stdout.split("Job stats:")[1]
    for rule in ("train", "decode", "score"):
        assert f"\n{rule} " in jobs, jobs
    assert shutil.which("prefixtune", path=str(BIN))
