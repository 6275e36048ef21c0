"""The Snakemake workflow plans the paper-scale jobs (locally and through the SLURM profile) and lints clean."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def snakemake(*args: str) -> str:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    result = subprocess.run(
        [str(BIN / "snakemake"), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.mark.parametrize("profile", [[], ["--profile", "slurm"]], ids=["local", "slurm"])
def test_paper_scale_dry_run_plans_table1(profile):
    out = snakemake("-n", "-p", "reports/table1.md", *profile)
    counts = job_counts(out)
    assert counts["train"] == 12 and counts["decode"] == 12 and counts["score"] == 12
    assert counts["download"] == 9 and counts["base_model"] == 2 and counts["prepare"] == 3
    assert "openai-community/gpt2-medium" in out and "openai-community/gpt2-large" in out
    assert "https://raw.githubusercontent.com/XiangLi1999/PrefixTuning/" in out
    assert '"learning_rate": 8e-05' in out  # E2E PREFIX, paper Table 5
    if profile:
        assert "gpu=1" in out


def test_demo_dry_run_builds_everything_offline():
    counts = job_counts(snakemake("-n", "--configfile", "config/demo.yaml"))
    assert counts["train"] == 6 and counts["base_model"] == 1 and "download" not in counts


def test_bad_config_is_rejected_at_start_up(tmp_path):
    import yaml

    config = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    config["decoding"]["num_beams"] = 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    result = subprocess.run(
        [str(BIN / "snakemake"), "-n", "--configfile", str(bad)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "num_beams" in result.stdout + result.stderr


@pytest.mark.parametrize("config", ["config/config.yaml", "config/demo.yaml"])
def test_snakemake_lint(config):
    out = snakemake("--lint", "--configfile", config)
    assert "Congratulations" in out or "no issues" in out.lower(), out[-2000:]
