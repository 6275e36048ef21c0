"""The conda environments (``--software-deployment-method conda``) agree with pyproject.toml's pins."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENVS = ROOT / "envs"
GPU_RULES = {"train", "decode", "gpu_smoke"}


def _pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for requirement in project["dependencies"]:
        name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^;\s]+)", requirement).groups()
        pins[name.lower().replace("_", "-")] = version
    return pins


def _env(name: str) -> tuple[list[str], list[str]]:
    spec = yaml.safe_load((ENVS / name).read_text())
    conda = [d for d in spec["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    return conda, pip


@pytest.mark.parametrize("name", ["cpu.yaml", "gpu.yaml"])
def test_env_pins_equal_pyproject(name):
    conda, pip = _env(name)
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    python = next(d for d in conda if d.startswith("python="))
    assert f">={python.split('=')[1]}" in requires  # python=3.11 under >=3.11,<3.12
    assert "-e .." in pip, "the environment must install this package (with its pins)"
    pins = _pins()
    for line in pip:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line)
        if match:
            name_, version = match.groups()
            assert pins.get(name_.lower()) == version, (
                f"{name}: {line} but pyproject.toml pins {pins.get(name_)}"
            )


def test_scoring_env_has_java_and_cpu_torch():
    conda, pip = _env("cpu.yaml")
    assert any(d.startswith("openjdk=17") for d in conda)
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip


def test_gpu_env_takes_the_cuda_wheel():
    _, pip = _env("gpu.yaml")
    assert not any("whl/cpu" in line for line in pip)


def test_every_rule_names_an_existing_env_gpu_rules_the_gpu_one():
    seen = {}
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        rule = None
        for line in smk.read_text().splitlines():
            if match := re.match(r"\s*rule (\w+):", line):
                rule = match.group(1)
            if match := re.search(r'"\.\./\.\./envs/([\w.-]+)"', line):
                seen[rule] = match.group(1)
    assert seen, "no conda directives found"
    for rule, env in seen.items():
        assert (ENVS / env).is_file(), f"rule {rule}: envs/{env} missing"
        assert env == ("gpu.yaml" if rule in GPU_RULES else "cpu.yaml"), f"rule {rule} uses {env}"
