"""One trainer per run (the checkpoint folder's lock) and the ledger of every attempt (issue 17, items 4 and 6)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from prefixtune.data.records import Pair, write_jsonl
from prefixtune.report.compute import build_compute
from prefixtune.training.attempts import LEDGER_NAME, LOCK_NAME, TrainerBusyError, run_lock
from prefixtune.training.train import TimeBudgetExceeded, train_run
from tiny_models import save_tiny_model

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from prefixtune.training.attempts import run_lock
    with run_lock(Path(sys.argv[1]), wait_s=0):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def _holder(ckpt: Path, seconds: float, env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(ckpt), str(seconds)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_trainer_refuses_naming_the_first(tmp_path):
    ckpt = tmp_path / "ck"
    first = _holder(ckpt, 30, {**os.environ, "SLURM_JOB_ID": "4242"})
    try:
        started = time.monotonic()
        with pytest.raises(TrainerBusyError) as err, run_lock(ckpt, wait_s=1.0, poll_s=0.1):
            pass
        assert time.monotonic() - started >= 1.0  # waited its bounded time first
        message = str(err.value)
        assert "SLURM job 4242" in message and f"pid {first.pid} on " in message and "scancel" in message
    finally:
        first.kill()
        first.wait()
    with run_lock(ckpt, wait_s=0) as owner:  # the holder died: its lock went with it
        assert json.loads((ckpt / LOCK_NAME).read_text())["pid"] == owner["pid"] == os.getpid()


def test_second_trainer_waits_for_the_first_to_finish(tmp_path):
    ckpt = tmp_path / "ck"
    first = _holder(ckpt, 1.0, dict(os.environ))
    started = time.monotonic()
    with run_lock(ckpt, wait_s=30, poll_s=0.1):
        waited = time.monotonic() - started
    assert 0.8 <= waited < 20  # got it once the first let go (after its 1 s), not before
    first.wait()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def _spec() -> dict:
    return {
        "run_id": "toy-prefix",
        "dataset": "e2e",
        "model": "tiny",
        "method": "prefix",
        "method_settings": {"loss": "sequence_sum", "lm_dropout": False, "mid_dim": 16, "prefix_length": 2},
        "hparams": {"learning_rate": 1e-2, "epochs": 2, "batch_size": 3, "seed": 7, "max_grad_norm": 1.0},
    }


@contextmanager
def _real_stderr(capfd) -> Iterator[None]:
    """As under the CLI: stderr is fd 2 (pytest's capture off) and the package logs to it."""
    with capfd.disabled():
        handler = logging.StreamHandler(sys.stderr)
        logger = logging.getLogger("prefixtune")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            yield
        finally:
            logger.removeHandler(handler)


def test_resumed_run_records_every_attempt_and_keeps_each_log(model_dir, tmp_path, monkeypatch, capfd):
    data = tmp_path / "train.jsonl"
    write_jsonl(
        data,
        [Pair(f"name : Place {i} | area : riverside", f"Place {i} is by the river . ") for i in range(10)],
    )
    ckpt, log = tmp_path / "ck", tmp_path / "logs" / "train" / "toy.log"
    log.parent.mkdir(parents=True)
    (log.parent / "toy.attempt3.log").write_text("from an earlier run of this run id\n")
    args = (_spec(), data, model_dir, tmp_path / "trained", tmp_path / "run.json", ckpt)

    # attempt 1: out of time after its 3rd optimizer step (of 8): checkpoint, exit 75
    calls = {"n": 0}

    def clock() -> float:
        calls["n"] += 1
        return 1e9 if calls["n"] > 4 else 0.0

    monkeypatch.setattr("prefixtune.training.train._now", clock)
    with _real_stderr(capfd), pytest.raises(TimeBudgetExceeded):
        train_run(*args, 100.0, log_path=log)
    monkeypatch.undo()
    ledger = json.loads((ckpt / LEDGER_NAME).read_text())["attempts"]
    assert [(a["exit"], a["steps_start"]) for a in ledger] == [("stopped-75", 0)]
    stopped_at = ledger[0]["steps_end"]
    assert 0 < stopped_at < 8

    # attempt 2 dies without a word (SIGKILL): the ledger still says "running"; attempt 3 calls it killed
    ledger.append(
        {**ledger[0], "attempt": 2, "exit": "running", "wall_time_s": 5.0, "steps_start": stopped_at}
    )
    (ckpt / LEDGER_NAME).write_text(json.dumps({"attempts": ledger}))
    with _real_stderr(capfd):
        record = train_run(*args, log_path=log)

    attempts = record["attempts"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert [a["exit"] for a in attempts] == ["stopped-75", "killed", "finished"]
    assert (
        attempts[2]["steps_start"] == stopped_at
        and attempts[2]["steps_end"] == record["training"]["steps"] == 8
    )
    assert all(a["device"] == "cpu" and a["host"] for a in attempts)
    assert record["wall_time_s_total"] == pytest.approx(sum(a["wall_time_s"] for a in attempts), abs=0.02)
    assert record["wall_time_s_total"] >= 5.0 + record["wall_time_s"] - 0.5
    assert json.loads((tmp_path / "run.json").read_text())["attempts"] == attempts
    assert not ckpt.exists()  # the ledger lives on in run.json only
    # each attempt's stderr kept on its own; the stale log of an earlier run of this id is gone
    logs = sorted(p.name for p in log.parent.iterdir())
    assert logs == ["toy.attempt1.log", "toy.attempt3.log"]
    first, third = (log.parent / logs[0]).read_text(), (log.parent / logs[1]).read_text()
    assert "attempt 1" in first and f"checkpoint at step {stopped_at} " in first and "attempt 1" not in third
    assert "attempt 3" in third and "resumed from" in third and "from an earlier run" not in third

    # the compute ledger sums the attempts and counts them
    status = tmp_path / "table1.json"
    status.write_text(
        json.dumps(
            {
                "artifact": "table1",
                "title": "Table 1",
                "jobs": [
                    {"run": "toy", "train": str(tmp_path / "run.json"), "decode": str(tmp_path / "none")}
                ],
            }
        )
    )
    text = build_compute([status], tmp_path / "compute.md")
    row = next(line for line in text.splitlines() if line.startswith("| toy |"))
    assert "| 3 |" in row  # attempts
    total = json.loads((tmp_path / "compute.json").read_text())["runs"][0]
    assert total["train_s"] == record["wall_time_s_total"] and total["attempts"] == 3


def test_cli_refuses_a_second_trainer_with_exit_1(model_dir, tmp_path):
    ckpt = tmp_path / "ck"
    first = _holder(ckpt, 60, {**os.environ, "SLURM_JOB_ID": "777"})
    try:
        data = tmp_path / "train.jsonl"
        write_jsonl(data, [Pair("name : A", "A is here . ")])
        result = subprocess.run(
            [sys.executable, "-c", "from prefixtune.cli import main; main()", "train",
             "--spec", json.dumps(_spec()), "--train", str(data), "--base-model", str(model_dir),
             "--out", str(tmp_path / "t"), "--run-json", str(tmp_path / "run.json"),
             "--checkpoint-dir", str(ckpt), "--lock-wait-s", "0"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        first.kill()
        first.wait()
    assert result.returncode == 1
    assert "being trained by SLURM job 777" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run.json").exists()


ORPHAN = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from prefixtune.training.attempts import run_lock
    ckpt, run_json, out_dir, spec = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), json.loads(sys.argv[4])
    with run_lock(ckpt, wait_s=0):
        print("locked", flush=True)
        time.sleep(1.0)
        out_dir.mkdir()
        (out_dir / "prefix.safetensors").write_bytes(b"orphan's weights")
        run_json.write_text(json.dumps({"spec": spec, "attempts": [{"attempt": 1, "exit": "finished"}]}))
    """
)


def test_a_run_finished_by_an_orphan_while_waiting_is_kept_not_retrained(model_dir, tmp_path):
    """After a controller crash the rerun's trainer waits on the orphan's lock; when the orphan finishes the run
    meanwhile, its outputs and attempts stand (training again would repeat its work and lose its ledger)."""
    data = tmp_path / "train.jsonl"
    write_jsonl(data, [Pair("name : A", "A is here . ")])
    ckpt, run_json, out_dir = tmp_path / "ck", tmp_path / "run.json", tmp_path / "trained"
    orphan = subprocess.Popen(
        [sys.executable, "-c", ORPHAN, str(ckpt), str(run_json), str(out_dir), json.dumps(_spec())],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert orphan.stdout.readline().strip() == "locked"
    record = train_run(_spec(), data, model_dir, out_dir, run_json, ckpt, lock_wait_s=30)
    orphan.wait()
    assert record["attempts"] == [{"attempt": 1, "exit": "finished"}]
    assert (out_dir / "prefix.safetensors").read_bytes() == b"orphan's weights"


def test_an_earlier_runs_record_does_not_stop_training(model_dir, tmp_path):
    """A run.json older than this trainer (an earlier run of the same id) is no reason to skip training."""
    data = tmp_path / "train.jsonl"
    write_jsonl(data, [Pair(f"name : P{i}", f"P{i} is here . ") for i in range(4)])
    run_json, out_dir = tmp_path / "run.json", tmp_path / "trained"
    out_dir.mkdir()
    run_json.write_text(json.dumps({"spec": _spec(), "attempts": []}))
    os.utime(run_json, (time.time() - 60, time.time() - 60))
    record = train_run(_spec(), data, model_dir, out_dir, run_json, tmp_path / "ck")
    assert [a["exit"] for a in record["attempts"]] == ["finished"]
