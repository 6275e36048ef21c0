"""The SLURM profile and what the SLURM executor plugin makes of it, without a cluster (issue 17, items 1-3, 7, 8).

The plugin's own code builds the ``sbatch`` arguments and reads the job states here (snakemake-executor-plugin-slurm
and its jobstep, as installed); the jobs' resources come from Snakemake's dry run of the paper config through the
profile. The real cluster is tests/ (SLURM integration test)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROFILE = ROOT / "slurm" / "profile.v9+.yaml"
GPU_RULES = {"train", "train_full_weights", "decode", "gpu_smoke"}
# one job of every GPU rule (gpt2-medium: 1 GPU, 4 / 2 CPUs)
TARGETS = [
    "gpu_smoke",
    "results/runs/e2e-gpt2-medium-prefix/test.hyp.txt",  # decode <- train
    "results/runs/e2e-gpt2-medium-finetune/run.json",  # train_full_weights
]


# -- item 1: "CANCELLED by <uid>" ---------------------------------------------------------------------------------


class _Rate:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


def _fake_executor(status_command: str) -> SimpleNamespace:
    """The attributes the plugin's ``check_active_jobs`` reads and writes, with callbacks that record."""
    calls: dict[str, list] = {"success": [], "error": []}
    settings = SimpleNamespace(
        init_seconds_before_status_checks=10, status_attempts=1, keep_successful_logs=True, requeue=False
    )
    fake = SimpleNamespace(
        workflow=SimpleNamespace(executor_settings=settings),
        logger=SimpleNamespace(debug=print, info=print, warning=print, error=print),
        run_uuid="0f0e",
        status_rate_limiter=_Rate(),
        get_status_command=lambda: status_command,
        _status_query_calls=0,
        _status_query_failures=0,
        _status_query_total_seconds=0.0,
        _status_query_min_seconds=None,
        _status_query_max_seconds=0.0,
        _status_query_cycle_rows=[],
        _preemption_warning=False,
        _failed_nodes=set(),
        next_seconds_between_status_checks=10,
        report_job_success=lambda job: calls["success"].append(job.external_jobid),
        report_job_error=lambda job, msg=None, **kw: calls["error"].append((job.external_jobid, msg)),
        calls=calls,
    )
    return fake


def _check(fake: SimpleNamespace, jobids: list[str]) -> list[str]:
    from snakemake_executor_plugin_slurm import Executor

    jobs = [SimpleNamespace(external_jobid=j, aux={}) for j in jobids]

    async def run() -> list[str]:
        return [j.external_jobid async for j in Executor.check_active_jobs(fake, jobs)]

    return asyncio.run(run())


@pytest.fixture
def fake_sacct(tmp_path, monkeypatch):
    """``sacct`` as SLURM 22.05 answers after ``scancel`` by root: the state ``CANCELLED by 0``."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    sacct = bindir / "sacct"
    sacct.write_text(
        "#!/bin/sh\n"
        'case "$*" in *--format=Reason*) echo None ;; '
        "*) printf '101|CANCELLED by 0\\n102|COMPLETED\\n103|RUNNING\\n104|TIMEOUT\\n' ;; esac\n"
    )
    sacct.chmod(sacct.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return sacct


def test_a_job_cancelled_by_a_user_fails_instead_of_hanging(fake_sacct, monkeypatch):
    import snakemake_executor_plugin_slurm as plugin

    from prefixtune.cluster import slurm_status

    original = plugin.query_job_status
    monkeypatch.setattr(plugin, "query_job_status", original)  # restored after the test
    # the plugin as released: the cancelled job stays "running" for ever
    fake = _fake_executor("sacct")
    assert _check(fake, ["101", "102", "103", "104"]) == ["101", "103"]
    assert fake.calls["success"] == ["102"] and [j for j, _ in fake.calls["error"]] == ["104"]

    assert slurm_status.install() and slurm_status.install()  # idempotent
    assert plugin.query_job_status is not original
    fake = _fake_executor("sacct")
    assert _check(fake, ["101", "102", "103", "104"]) == ["103"]
    assert [j for j, _ in fake.calls["error"]] == ["101", "104"]
    assert "SLURM status is: 'CANCELLED'" in fake.calls["error"][0][1]


def test_bare_state():
    from prefixtune.cluster.slurm_status import bare_state

    assert bare_state("CANCELLED by 0") == "CANCELLED" == bare_state("CANCELLED by 12345")
    for state in ("CANCELLED", "RUNNING", "COMPLETED", "OUT_OF_MEMORY", "cancelled by 0", "CANCELLED by x"):
        assert bare_state(state) == state


def test_workflow_installs_the_fix_when_it_is_parsed():
    text = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    assert "slurm_status.install()" in text


# -- items 2 and 3: every GPU rule in the template, the GPU request in both styles -------------------------------


def _uncommented_template(profile_text: str) -> dict:
    """The profile with its commented ``set-resources:`` template switched on."""
    lines = profile_text.splitlines()
    start = lines.index("# set-resources:")
    block = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        block.append(line[2:])
    profile = yaml.safe_load(profile_text)
    profile.update(yaml.safe_load("\n".join(block)))
    return profile


def _dry_run_resources(profile_dir: Path, configfile: Path) -> dict[str, dict[str, object]]:
    """rule -> resources of its first job in Snakemake's dry run through ``profile_dir``."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    result = subprocess.run(
        [str(BIN / "snakemake"), "-n", *TARGETS, "--profile", str(profile_dir), "--configfile", str(configfile)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    jobs: dict[str, dict[str, object]] = {}
    rule = None
    for line in result.stdout.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):", line):
            rule = m[1]
        elif (m := re.match(r"^\s+resources: (.*)$", line)) and rule and rule not in jobs:
            items = (item.split("=", 1) for item in m[1].split(", "))
            jobs[rule] = {k: int(v) if v.isdigit() else v for k, v in items}
    return jobs


def _sbatch_and_srun(resources: dict[str, object], threads: int) -> tuple[str, str]:
    """The plugin's own sbatch line (and the jobstep's srun GPU option) for a job with these resources."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string
    from snakemake_executor_plugin_slurm_jobstep import get_gpu_setting

    class Resources(dict):
        __getattr__ = dict.__getitem__

    job = SimpleNamespace(resources=Resources(resources), threads=threads)
    params = {
        "run_uuid": "uuid",
        "slurm_logfile": "logs/slurm/x/%j.log",
        "comment_str": "rule_x",
        "account": f"-A {resources['slurm_account']}",
        "partition": f"-p {resources['slurm_partition']}",
        "workdir": "/work",
    }
    settings = SimpleNamespace(requeue=False, no_requeue=False, qos=None, reservation=None)
    call = get_submit_command(job, params, settings=settings) + set_gres_string(job)
    return call, get_gpu_setting(job)


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    """The shipped profile with its GPU template switched on (partition ``gpu``), and the paper config in
    either GPU request style."""
    root = tmp_path_factory.mktemp("profiles")
    profile_dir = root / "slurm"
    profile_dir.mkdir()
    (profile_dir / "profile.v9+.yaml").write_text(yaml.safe_dump(_uncommented_template(PROFILE.read_text())))
    configs = {}
    for style in ("gpus", "gres"):
        config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
        assert config["resources"]["gpu_request"] == "gpus"  # the default, in the shipped config
        config["resources"]["gpu_request"] = style
        configs[style] = root / f"config-{style}.yaml"
        configs[style].write_text(yaml.safe_dump(config))
    return profile_dir, configs


def test_gpu_template_covers_every_rule_that_asks_for_a_gpu(profiles):
    profile_dir, configs = profiles
    template = _uncommented_template(PROFILE.read_text())["set-resources"]
    jobs = _dry_run_resources(profile_dir, configs["gpus"])
    gpu_rules = {rule for rule, res in jobs.items() if res.get("gpu") or "gpu" in str(res.get("gres", ""))}
    assert gpu_rules == GPU_RULES  # every rule with a GPU in config resources is planned here
    assert set(template) >= gpu_rules
    for rule in gpu_rules:
        assert jobs[rule]["slurm_partition"] == "gpu", rule
    # the rule files: no other rule asks for a GPU
    rules_text = "\n".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    assert set(re.findall(r'gpu_request\(run_resources\("(\w+)"', rules_text)) == {"train", "decode"}


@pytest.mark.parametrize("style", ["gpus", "gres"])
def test_gpu_request_style_reaches_sbatch(profiles, style):
    profile_dir, configs = profiles
    jobs = _dry_run_resources(profile_dir, configs[style])
    expected_cpus = {"train": 4, "train_full_weights": 4, "decode": 2, "gpu_smoke": 2}
    for rule in GPU_RULES:
        call, srun_gpus = _sbatch_and_srun(jobs[rule], threads=expected_cpus[rule])
        assert (
            "-p gpu" in call and "-A CHANGE_ME" in call and f"--cpus-per-task={expected_cpus[rule]}" in call
        )
        assert re.search(r" -t \d+", call) and re.search(r" --mem \d+", call)
        if style == "gpus":
            assert "--gpus=1" in call and "--gres" not in call and srun_gpus == "--gpus=1", (rule, call)
        else:  # a cluster that rejects --gpus sees none, in sbatch or in the job step's srun
            assert "--gres=gpu:1" in call and "--gpus" not in call and srun_gpus == "", (rule, call)
    # a GPU model: --gpus=<model>:N, or a typed GRES under set-resources in the gres style
    call, _ = _sbatch_and_srun({**jobs["train"], "gpu_model": "a100"} if style == "gpus" else
                               {**jobs["train"], "gres": "gpu:a100:1"}, threads=4)  # fmt: skip
    assert (
        ("--gpus=a100:1" in call)
        if style == "gpus"
        else ("--gres=gpu:a100:1" in call and "--gpus" not in call)
    )


def test_demo_config_asks_for_no_gpu_in_either_style(tmp_path):
    """The demo's GPU count is 0: no --gpus and no empty --gres in either style."""
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    assert config["resources"]["gpu_request"] == "gpus"
    for style in ("gpus", "gres"):
        resources = {"slurm_partition": "p", "slurm_account": "a", "runtime": 30, "mem_mb": 4000}
        resources.update({"gpu": 0} if style == "gpus" else {"gres": ""})
        call, srun_gpus = _sbatch_and_srun(resources, threads=1)
        assert "--gpus" not in call and "--gres" not in call and srun_gpus == "" and "--ntasks=1" in call


# -- items 7 and 8: version floor, profile settings, the demo profile ---------------------------------------------


def _args(*argv: str) -> object:
    from snakemake.cli import parse_args

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return parse_args(list(argv))[1]
    finally:
        os.chdir(cwd)


def test_profile_is_read_and_its_settings_apply():
    from snakemake.cli import get_profile_dir

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        assert get_profile_dir("slurm")[1].name == "profile.v9+.yaml"
    finally:
        os.chdir(cwd)
    args = _args("--profile", "slurm", "reports/table1.md")
    assert list(args.targets) == ["reports/table1.md"] and args.executor == "slurm"
    assert (
        args.slurm_init_seconds_before_status_checks == 10
    )  # the controller exits <= 10 s after the last job
    assert str(args.slurm_logdir) == "logs/slurm" and args.retries == 2 and args.configfile == []


def test_demo_profile_keeps_targets_config_and_slurm_logs_in_demo():
    args = _args("--profile", "slurm", "--profile", "slurm/demo", "demo/reports/table1.md")
    assert list(args.targets) == ["demo/reports/table1.md"]
    assert [str(p) for p in args.configfile] == ["config/demo.yaml"]
    assert str(args.slurm_logdir).startswith("demo/")
    assert args.slurm_init_seconds_before_status_checks == 10 and args.executor == "slurm"
    # the form that swallows a target, and the working forms the README shows
    assert not _args("--configfile", "config/demo.yaml", "demo/x").targets  # swallowed as a second config
    assert list(_args("demo/x", "--configfile", "config/demo.yaml").targets) == ["demo/x"]
    assert list(_args("--configfile=config/demo.yaml", "demo/x").targets) == ["demo/x"]


def test_min_version_is_the_first_release_that_reads_the_profile():
    """snakemake PR #4087 (first released in 9.19.0) taught the profile search ``profile[.vN+].yaml``; 9.0-9.18
    match only ``config[.vN+].yaml``."""
    snakefile = (ROOT / "Snakefile").read_text()
    assert re.search(r'^min_version\("9\.19"\)$', snakefile, re.M)
    import snakemake

    major, minor = (int(x) for x in snakemake.__version__.split(".")[:2])
    assert (major, minor) >= (9, 19)


def test_gpu_smoke_is_not_retried():
    text = (ROOT / "workflow" / "rules" / "smoke.smk").read_text()
    assert re.search(r"rule gpu_smoke:(?:\n    .*)*\n    retries: 0\n", text)
    assert shutil.which("snakemake", path=str(BIN))
