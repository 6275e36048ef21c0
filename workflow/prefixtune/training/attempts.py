"""One trainer per run, and a ledger of every attempt at training it.

A run's checkpoint folder (``results/checkpoints/<run>``) outlives its failed and preempted jobs, so it holds:

- ``trainer.lock``: an exclusive ``flock`` held for the trainer's life. A second trainer of the same run (an
  orphan SLURM job left by a crashed Snakemake controller, or a retry started while SLURM is still stopping the
  cancelled job) waits a bounded time for it and then refuses, naming the holder's host, pid and SLURM job id,
  which the holder writes into the file. On NFS, Linux maps ``flock`` onto NFS byte-range locks (NFSv4 or
  ``lockd``), so the lock also holds between nodes.
- ``attempts.json``: one entry per attempt (start and end time, wall seconds, optimizer steps done, device, host,
  SLURM job id, how it ended: ``finished``, ``stopped-75`` (time budget or SIGTERM: checkpointed, exit 75),
  ``failed: <error>``, or ``killed`` for an attempt that ended without a word (SIGKILL, a cancelled job past
  SLURM's KillWait, a node failure): its end is its last checkpoint, the last time it was seen). The finished
  run copies the ledger into ``run.json`` with the summed wall time, and the folder goes.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefixtune.provenance import write_json_atomic

LOCK_NAME = "trainer.lock"
LEDGER_NAME = "attempts.json"
# longer than SLURM's default KillWait (30 s): a retry may start while the cancelled job is still checkpointing
DEFAULT_LOCK_WAIT_S = 120.0


class TrainerBusyError(RuntimeError):
    """Another trainer holds the run's checkpoint folder."""


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def _whoami() -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "since": _iso(time.time()),
    }


def _describe(owner: dict[str, Any] | None) -> str:
    if not owner:
        return "another trainer (it has not written its name yet)"
    job = owner.get("slurm_job_id")
    where = f"pid {owner.get('pid')} on {owner.get('host')}"
    return f"SLURM job {job} ({where})" if job else where


@contextmanager
def run_lock(ckpt_dir: Path, wait_s: float = DEFAULT_LOCK_WAIT_S, poll_s: float = 1.0) -> Iterator[dict]:
    """Hold ``ckpt_dir/trainer.lock`` exclusively; wait up to ``wait_s`` for another holder, then refuse."""
    path = ckpt_dir / LOCK_NAME
    deadline = time.monotonic() + wait_s
    while True:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            if time.monotonic() >= deadline:
                try:
                    owner = json.loads(path.read_text(encoding="utf-8") or "null")
                except (OSError, ValueError):
                    owner = None
                raise TrainerBusyError(
                    f"{ckpt_dir}: this run is being trained by {_describe(owner)} since "
                    f"{(owner or {}).get('since', '?')} (waited {wait_s:.0f} s). Two trainers must not share one "
                    "checkpoint: wait for that job or cancel it (scancel <id>), then rerun."
                ) from None
            time.sleep(poll_s)
            continue
        # the holder may have finished and removed the folder between our open and our lock: start again
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    owner = _whoami()
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner).encode(), 0)
        yield owner
    finally:
        os.close(fd)  # releases the lock


class AttemptLedger:
    """``attempts.json`` of a run's checkpoint folder: every attempt at training the run."""

    def __init__(self, ckpt_dir: Path, device: str):
        self.path = ckpt_dir / LEDGER_NAME
        self.attempts: list[dict[str, Any]] = []
        if self.path.is_file():
            self.attempts = json.loads(self.path.read_text(encoding="utf-8"))["attempts"]
        for entry in self.attempts:  # an attempt that never said how it ended was killed
            if entry["exit"] == "running":
                entry["exit"] = "killed"
        owner = _whoami()
        self._started = time.time()
        self.current: dict[str, Any] = {
            "attempt": len(self.attempts) + 1,
            "host": owner["host"],
            "slurm_job_id": owner["slurm_job_id"],
            "device": device,
            "started": _iso(self._started),
            "ended": _iso(self._started),
            "wall_time_s": 0.0,
            "steps_start": None,
            "steps_end": None,
            "exit": "running",
        }
        self.attempts.append(self.current)
        self._save()

    @property
    def number(self) -> int:
        return int(self.current["attempt"])

    def progress(self, step: int) -> None:
        """The attempt reached ``step`` (at its start, then at each checkpoint): what a killed attempt leaves."""
        if self.current["steps_start"] is None:
            self.current["steps_start"] = step
        self.current["steps_end"] = step
        self._stamp()
        self._save()

    def end(self, reason: str, step: int | None = None) -> None:
        if step is not None:
            self.progress(step)
        self.current["exit"] = reason
        self._stamp()
        self._save()

    def summary(self) -> dict[str, Any]:
        """What ``run.json`` records: every attempt and their summed wall time."""
        return {
            "attempts": self.attempts,
            "wall_time_s_total": round(sum(float(a["wall_time_s"]) for a in self.attempts), 2),
        }

    def _stamp(self) -> None:
        now = time.time()
        self.current["ended"] = _iso(now)
        self.current["wall_time_s"] = round(now - self._started, 2)

    def _save(self) -> None:
        if self.path.parent.is_dir():  # gone once the run is complete
            write_json_atomic(self.path, {"attempts": self.attempts})


def attempt_log_path(log: Path, attempt: int) -> Path:
    """``logs/train/<run>.log`` -> ``logs/train/<run>.attempt<N>.log``."""
    return log.with_name(f"{log.stem}.attempt{attempt}{log.suffix}")


@contextmanager
def tee_stderr(copy: Path) -> Iterator[None]:
    """Copy everything this process writes to stderr (fd 2: logging, tqdm, tracebacks, C libraries) into
    ``copy`` as well. Snakemake deletes a job's log before each attempt; the copies stay."""
    copy.parent.mkdir(parents=True, exist_ok=True)
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    sink = open(copy, "wb", buffering=0)  # noqa: SIM115 - closed below

    def pump() -> None:
        while chunk := os.read(read_end, 65536):
            os.write(saved, chunk)
            sink.write(chunk)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        import sys

        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the pump sees EOF
        thread.join(timeout=10)
        os.close(read_end)
        os.close(saved)
        sink.close()
