"""`snakemake --profile slurm` on a real single-node SLURM cluster (tests/slurm_cluster.py), with the demo config.

One training run of the demo (E2E PREFIX on the tiny GPT-2, shrunk to seconds) goes through the cluster to its
scores, its training job asking for the fake GPU in each request style (``resources.gpu_request``):

- ``gpus``: the training job is ``scancel``-ed mid-run; the workflow notices, retries, the retry resumes from
  the checkpoint, and the outputs equal a local run's byte for byte; the ``sbatch`` arguments are read back
  (the plugin's log and SLURM's accounting): partition, account, time, memory, CPUs, ``--gpus``.
- ``gres``: the controller (snakemake) is killed mid-run (SIGKILL: a crash) while its training job runs on;
  the rerun the README gives (``--unlock``, the same command) finishes the run, its trainer waiting for the
  orphan's lock on the checkpoint folder, again byte-identical to the local run.

Needs root and Debian's slurm/munge/mariadb packages (``tests/slurm/install.sh``; CI installs them and sets
``PREFIXTUNE_SLURM_TEST=required``, which turns a skip into a failure). About 4-5 minutes on 2 cores.
Deselect with ``pytest -m "not slurm"``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from slurm_cluster import ClusterUnavailable, SlurmCluster, unavailable_reason

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RUN = "e2e-tiny-gpt2-prefix"  # the demo's Table 1 PREFIX run: one training job, one decode, one score
TARGET = f"demo/results/runs/{RUN}/test.scores.json"
CHECKPOINT = f"demo/results/checkpoints/{RUN}/checkpoint.pt"
COMPARED = ("trained/prefix.safetensors", "test.hyp.txt", "test.scores.json")
ACCOUNT, CPU_PARTITION, GPU_PARTITION = "prefixtune", "cpu", "gpu"
TRAIN_RUNTIME, TRAIN_MEM, TRAIN_CPUS = 30, 4000, 1  # the demo's resources.train.tiny-gpt2 (minutes, MB)
# bounds: each is several times what the step takes on 2 busy cores
MID_RUN_S = 240  # submission -> the training job runs and has written a checkpoint
NOTICE_S = 150  # scancel -> the controller submits the retry
FINISH_S = 300  # -> the workflow ends
LOCK_MEETS_S = 20  # a running training job -> its trainer has met the checkpoint folder's lock
COPY_IGNORE = {".git", ".venv", "demo", "results", "reports", "logs", "resources", ".snakemake"}


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("PREFIXTUNE_SLURM_TEST") == "required":
        pytest.fail(f"PREFIXTUNE_SLURM_TEST=required but no SLURM cluster could be started: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def cluster() -> Iterator[SlurmCluster]:
    reason = unavailable_reason()
    if reason:
        _skip_or_fail(reason)
    c = SlurmCluster(account=ACCOUNT, cpu_partition=CPU_PARTITION, gpu_partition=GPU_PARTITION)
    try:
        c.start()
    except ClusterUnavailable as e:
        _skip_or_fail(str(e))
    yield c
    c.stop()


# -- a copy of the repository with the shrunk demo config and the test cluster's profile ---------------------------


def _copy_repo(dest: Path) -> Path:
    """The working tree without outputs, caches and the venv (the installed package is the checkout's)."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        top = Path(directory) == ROOT
        return {
            n
            for n in names
            if n in ("__pycache__", ".pytest_cache", ".ruff_cache") or (top and n in COPY_IGNORE)
        }

    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
    return dest


def _shrink_demo_config(repo: Path, gpu_request: str) -> None:
    """config/demo.yaml in the copy, cut to seconds: a smaller tiny GPT-2 and E2E set; the training run long
    enough (and checkpointing often enough) to be interrupted mid-run; its job asks for one GPU."""
    path = repo / "config" / "demo.yaml"
    config = yaml.safe_load(path.read_text())
    config["datasets"]["e2e"]["synthetic"].update(n_train=60, n_dev=4, n_test=6)
    tiny = config["models"]["tiny-gpt2"]
    tiny["corpus_size"] = 800
    tiny["recipe"].update(vocab_size=800, n_embd=32, pretrain_steps=20)
    config["training"]["hparams"]["prefix"]["e2e"]["epochs"] = 50  # 60 pairs / batch 10: 300 steps, ~10 s
    config["training"]["checkpoint_every"] = 25
    config["decoding"]["max_new_tokens"] = 12
    train = config["resources"]["train"]["tiny-gpt2"]
    assert (train["runtime"], train["mem_mb"], train["cpus_per_task"]) == (
        TRAIN_RUNTIME,
        TRAIN_MEM,
        TRAIN_CPUS,
    )
    train["gpu"] = 1  # the fake GPU: torch sees none and trains on the CPU, as the local run
    config["resources"]["gpu_request"] = gpu_request
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))


def _point_profile_at_cluster(repo: Path) -> None:
    """The shipped profile with its CHANGE_ME placeholders filled in for the test cluster, the training rule on
    the GPU partition (the commented template), and status checks every few seconds instead of every 10+."""
    profile = next(p for p in sorted((repo / "slurm").glob("*.yaml")))
    settings = yaml.safe_load(profile.read_text())
    settings["default-resources"].update(slurm_partition=CPU_PARTITION, slurm_account=ACCOUNT)
    settings["set-resources"] = {"train": {"slurm_partition": GPU_PARTITION}}
    settings["slurm-init-seconds-before-status-checks"] = 2
    settings["latency-wait"] = 5  # one local file system
    profile.write_text(yaml.safe_dump(settings, sort_keys=False))


def _profile_args(repo: Path) -> list[str]:
    if (repo / "slurm" / "demo").is_dir():  # README: the demo through SLURM
        return ["--profile", "slurm", "--profile", "slurm/demo"]
    return ["--profile", "slurm", "--configfile=config/demo.yaml"]


def _outputs(repo: Path, names: tuple[str, ...] = COMPARED) -> dict[str, bytes]:
    run = repo / "demo" / "results" / "runs" / RUN
    return {name: (run / name).read_bytes() for name in names}


class LocalRun:
    """The same run with the same config, locally on one core, in the background (the cluster's jobs use the
    other core): the bytes the cluster runs must reproduce."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        _shrink_demo_config(repo, "gpus")
        env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
        cmd = [str(BIN / "snakemake"), TARGET, "--configfile=config/demo.yaml", "--cores", "1"]
        self.log = repo / "local.log"
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(cmd, cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.result: dict[str, bytes] | None = None

    def outputs(self) -> dict[str, bytes]:
        if self.result is None:
            rc = self.process.wait(timeout=FINISH_S)
            assert rc == 0, f"the local run failed:\n{self.log.read_text()[-4000:]}"
            self.result = _outputs(self.repo)
        return self.result

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory, cluster: SlurmCluster) -> Iterator[LocalRun]:
    run = LocalRun(_copy_repo(tmp_path_factory.mktemp("local") / "repo"))
    yield run
    run.stop()


# -- one workflow through the cluster ------------------------------------------------------------------------------


class Workflow:
    """`snakemake --profile slurm` in a copy of the repository, with what a failure needs to be understood."""

    def __init__(self, cluster: SlurmCluster, repo: Path, gpu_request: str) -> None:
        self.cluster, self.repo = cluster, repo
        _shrink_demo_config(repo, gpu_request)
        _point_profile_at_cluster(repo)
        self.env = {**cluster.env, "PATH": f"{BIN}:{cluster.env['PATH']}"}
        self.controller: subprocess.Popen | None = None
        self.logs: list[Path] = []

    def start(self, target: str = TARGET) -> subprocess.Popen:
        log = self.repo / f"controller{len(self.logs) + 1}.log"
        self.logs.append(log)
        command = [str(BIN / "snakemake"), target, *_profile_args(self.repo), "--verbose"]
        with open(log, "w") as out:
            self.controller = subprocess.Popen(
                command,
                cwd=self.repo,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: signals to it reach nothing else
            )
        return self.controller

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Another snakemake command in the copy (e.g. ``--unlock``), its output kept with the logs."""
        result = subprocess.run(
            [str(BIN / "snakemake"), *args],
            cwd=self.repo,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        log = self.repo / f"command{len(self.logs) + 1}.log"
        log.write_text(f"$ snakemake {shlex.join(args)}\n{result.stdout}{result.stderr}")
        self.logs.append(log)
        return result

    def wait(self, timeout: float, what: str) -> int:
        assert self.controller is not None
        try:
            return self.controller.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop_controller()
            self.fail(f"the controller was still running {timeout:.0f} s {what}; stopped")

    def stop_controller(self) -> None:
        """End the controller this test started (SIGTERM, then SIGKILL: Ctrl-C alone did not stop a hung one)."""
        if self.controller and self.controller.poll() is None:
            self.controller.terminate()
            try:
                self.controller.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.controller.kill()
                self.controller.wait(timeout=15)

    def train_jobs(self) -> list[dict[str, str]]:
        return [j for j in self.cluster.jobs() if j["comment"].startswith("rule_train")]

    def until(self, done: Callable[[], object], timeout: float, what: str) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = done()
            if value:
                return value
            if self.controller and self.controller.poll() is not None:
                self.fail(f"the controller ended (exit {self.controller.returncode}) before {what}")
            time.sleep(0.5)
        self.fail(f"not within {timeout:.0f} s: {what}")

    def running_training_job(self) -> str | None:
        """The id of the training job once it runs and has checkpointed at least once (mid-run)."""
        running = [j["id"] for j in self.train_jobs() if j["state"] == "RUNNING"]
        return running[0] if running and (self.repo / CHECKPOINT).is_file() else None

    def sbatch_calls(self) -> list[list[str]]:
        """Every ``sbatch`` command line the plugin ran (its --verbose log), as arguments."""
        calls = []
        for log in self.logs:
            for line in log.read_text(errors="replace").splitlines():
                m = re.search(r"sbatch call: (sbatch .*)", line)
                if m:
                    calls.append(shlex.split(m.group(1).split(" --wrap=")[0]))
        return calls

    def job_ids(self) -> set[str]:
        """The SLURM jobs this workflow's controllers submitted (the cluster serves every test of the module)."""
        ids = set()
        for log in self.logs:
            ids.update(re.findall(r"submitted with SLURM jobid (\d+)", log.read_text(errors="replace")))
        return ids

    def accounting(self) -> list[dict[str, str]]:
        """SLURM's records of this workflow's jobs, in submission order."""
        fields = (
            "JobID",
            "Comment",
            "State",
            "Partition",
            "Account",
            "Timelimit",
            "ReqMem",
            "ReqCPUS",
            "ReqTRES",
            "Start",
            "End",
        )
        ids = self.job_ids()
        return [r for r in self.cluster.sacct(*fields) if r["JobID"] in ids]

    def diagnostics(self) -> str:
        parts = []
        for log in self.logs:
            text = log.read_text(errors="replace").splitlines() if log.exists() else []
            parts.append(f"--- {log.name} (last 60 lines) ---\n" + "\n".join(text[-60:]))
        for log in sorted((self.repo / "demo" / "logs").rglob("*.log")):
            if "slurm" in log.parts or log.parent.name in ("train", RUN):
                parts.append(
                    f"--- {log.relative_to(self.repo)} ---\n" + "\n".join(log.read_text().splitlines()[-30:])
                )
        try:
            rows = self.accounting()
            parts.append("--- sacct ---\n" + "\n".join(json.dumps(r) for r in rows))
        except Exception as e:  # noqa: BLE001
            parts.append(f"--- sacct failed: {e}")
        parts.append(self.cluster.log_tails(15))
        return "\n".join(parts)

    def fail(self, message: str) -> None:
        pytest.fail(f"{message}\n{self.diagnostics()}", pytrace=False)

    def check(self, condition: object, message: str) -> None:
        if not condition:
            self.fail(message)


def _when(sacct_time: str) -> datetime:
    """sacct's local time as an aware datetime (the attempts ledger writes UTC with its offset)."""
    return datetime.fromisoformat(sacct_time).astimezone()


def _wildcards_run(comment: str) -> bool:
    return RUN in comment


def _check_training_submissions(wf: Workflow, style: str, attempts: list[int]) -> None:
    """The training jobs' sbatch arguments (``attempts``: each submission's attempt number, which scales its
    time limit), as the plugin ran them and as SLURM recorded them."""
    calls = [c for c in wf.sbatch_calls() if any(a.startswith("rule_train") for a in c)]
    wf.check(len(calls) == len(attempts), f"expected {len(attempts)} training submissions, found {calls}")
    for attempt, call in zip(attempts, calls):
        text = " ".join(call)
        wf.check(f"-p {GPU_PARTITION}" in text and f"-A {ACCOUNT}" in text, f"partition/account: {text}")
        wf.check(
            f"-t {TRAIN_RUNTIME * attempt}" in text,
            f"attempt {attempt}: time {TRAIN_RUNTIME * attempt}: {text}",
        )
        wf.check(
            f"--mem {TRAIN_MEM}" in text and f"--cpus-per-task={TRAIN_CPUS}" in text, f"memory/CPUs: {text}"
        )
        if style == "gpus":
            wf.check(
                "--gpus=1" in call and not any(a.startswith("--gres") for a in call), f"--gpus only: {text}"
            )
        else:
            wf.check(
                "--gres=gpu:1" in call and not any(a.startswith("--gpus") for a in call),
                f"--gres only: {text}",
            )
    others = [c for c in wf.sbatch_calls() if not any(a.startswith("rule_train") for a in c)]
    wf.check(others, "decode and score went through SLURM too")
    for call in others:  # the CPU jobs: the default partition, no GPU
        text = " ".join(call)
        gpu_args = [a for a in call if a.startswith(("--gpus", "--gres"))]
        wf.check(f"-p {CPU_PARTITION}" in text and not gpu_args, f"a CPU job: {text}")
    # what SLURM itself recorded for the training jobs
    train = [
        r for r in wf.accounting() if r["Comment"].startswith("rule_train") and _wildcards_run(r["Comment"])
    ]
    wf.check(len(train) == len(attempts), f"sacct shows {len(train)} training jobs")
    for attempt, row in zip(attempts, train):
        hours, minutes = divmod(TRAIN_RUNTIME * attempt, 60)
        wf.check(
            row["Partition"] == GPU_PARTITION
            and row["Account"] == ACCOUNT
            and row["Timelimit"] == f"{hours:02d}:{minutes:02d}:00"
            and row["ReqMem"] == f"{TRAIN_MEM}M"
            and row["ReqCPUS"] == str(TRAIN_CPUS)
            and "gres/gpu=1" in row["ReqTRES"],
            f"sacct, training attempt {attempt}: {row}",
        )


def _check_same_bytes(wf: Workflow, local: dict[str, bytes], compared: tuple[str, ...] = COMPARED) -> None:
    got = _outputs(wf.repo, compared)
    differ = [name for name in compared if got[name] != local[name]]
    wf.check(not differ, f"differ from the local run: {differ}")


def test_cancelled_training_job_is_retried_and_resumes_to_the_local_bytes(cluster, local_run, tmp_path):
    """scancel mid-run -> the plugin reports the failure, Snakemake resubmits (attempt 2: twice the time), the
    trainer resumes from its checkpoint, and everything equals the local run; --gpus style."""
    wf = Workflow(cluster, _copy_repo(tmp_path / "repo"), "gpus")
    wf.start()
    job = wf.until(wf.running_training_job, MID_RUN_S, "the training job ran and checkpointed")
    cluster.run("scancel", str(job))
    wf.until(
        lambda: any(j["id"] != job for j in wf.train_jobs()),
        NOTICE_S,
        f"the controller resubmitted the training job it was told was cancelled (job {job}); a controller "
        "that waits for ever here is the 'CANCELLED by <uid>' hang (issue 17, item 1)",
    )
    wf.check(wf.wait(FINISH_S, "after the retry was submitted") == 0, "the workflow failed after the retry")
    # SLURM records the cancelled one as "CANCELLED by 0"
    states = [r["State"] for r in wf.accounting() if r["Comment"].startswith("rule_train")]
    wf.check(
        states[0].startswith("CANCELLED") and states[-1] == "COMPLETED", f"training job states: {states}"
    )
    record = json.loads((wf.repo / "demo" / "results" / "runs" / RUN / "run.json").read_text())
    wf.check(record["training"]["resumed_from_checkpoint"], "the retry did not resume from the checkpoint")
    ledger = record.get("attempts", [])  # every attempt of the run (README, Compute)
    wf.check(
        len(ledger) == 2
        and ledger[0]["exit"] == "stopped-75"
        and ledger[1]["steps_start"] == ledger[0]["steps_end"] > 0,
        f"attempts: {ledger}",
    )
    _check_training_submissions(wf, "gpus", attempts=[1, 2])
    _check_same_bytes(wf, local_run.outputs())


def test_a_crashed_controller_is_rerun_as_the_readme_says_to_the_local_bytes(cluster, local_run, tmp_path):
    """The controller is SIGKILLed while its training job runs on (an orphan); `snakemake --unlock` and the same
    command again (README, "After a controller crash") finish the run, byte-identical to the local run; --gres
    style. The orphan is suspended until the rerun's trainer runs, so that the two meet: the second must wait
    for the first's lock on the run's checkpoint folder, never training beside it. The target is the decoded
    text (the scoring job is the first test's)."""
    wf = Workflow(cluster, _copy_repo(tmp_path / "repo"), "gres")
    target = TARGET.replace("test.scores.json", "test.hyp.txt")
    controller = wf.start(target)
    orphan = wf.until(wf.running_training_job, MID_RUN_S, "the training job ran and checkpointed")
    os.kill(controller.pid, signal.SIGKILL)  # a crash: no cleanup, the lock stays, the job runs on
    controller.wait(timeout=30)
    wf.check(orphan in [j["id"] for j in wf.train_jobs()], "the training job did not outlive its controller")
    # the orphan keeps its lock; it goes on once the rerun's trainer waits for that lock
    cluster.run("scontrol", "suspend", orphan)
    unlock = wf.run(target, *_profile_args(wf.repo), "--unlock")
    wf.check(unlock.returncode == 0, f"--unlock failed: {unlock.stdout[-2000:]}{unlock.stderr[-2000:]}")
    wf.start(target)
    second = wf.until(
        lambda: next(
            (j["id"] for j in wf.train_jobs() if j["id"] != orphan and j["state"] == "RUNNING"), None
        ),
        MID_RUN_S,
        "the rerun's training job runs beside the orphan",
    )
    time.sleep(LOCK_MEETS_S)  # its trainer starts (python, torch) and finds the folder locked
    resumed = datetime.now(UTC).replace(microsecond=0)
    cluster.run("scontrol", "resume", orphan)
    wf.check(wf.wait(FINISH_S, "after the rerun started") == 0, "the rerun failed")
    jobs = {r["JobID"]: r for r in wf.accounting()}
    record = json.loads((wf.repo / "demo" / "results" / "runs" / RUN / "run.json").read_text())
    last = record["attempts"][-1]
    log = (wf.repo / "demo" / "logs" / "train" / f"{RUN}.log").read_text(encoding="utf-8")
    # the second job ran while the orphan was suspended, but its trainer waited for the orphan's lock, which the
    # orphan held until it had written its outputs; the orphan's finished run (and its attempts) then stood
    wf.check(
        jobs[orphan]["State"] == "COMPLETED"
        and jobs[second]["State"] == "COMPLETED"
        and last["slurm_job_id"] == orphan
        and last["exit"] == "finished"
        and _when(jobs[second]["End"]) >= resumed
        and "finished by another trainer while this one waited for the lock" in log,
        f"the rerun's trainer (job {second}) did not wait for the orphan's (job {orphan}) lock and keep its run: "
        f"resumed at {resumed}; {jobs[orphan]}, {jobs[second]}, attempts {record['attempts']}; log: {log[-1500:]}",
    )
    _check_training_submissions(wf, "gres", attempts=[1, 1])  # a new controller: attempt 1 again
    _check_same_bytes(wf, local_run.outputs(), ("trained/prefix.safetensors", "test.hyp.txt"))
