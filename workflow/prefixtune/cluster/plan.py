"""``prefixtune plan``: the training runs of every artifact of a config, and how many each adds (shared runs once)."""

from __future__ import annotations

from pathlib import Path

import yaml

from prefixtune.grid import artifact_runs, expand_runs


def plan_table(config: dict) -> str:
    """A Markdown table: artifact, its runs, the runs it adds to the artifacts above it; then the total."""
    seen: set[str] = set()
    lines = ["| artifact | runs | new runs |", "|---|---|---|"]
    for name in config["artifacts"]:
        runs = artifact_runs(config, name)
        new = [r for r in runs if r not in seen]
        seen.update(runs)
        lines.append(f"| {name} | {len(runs)} | {len(new)} |")
    total = len(expand_runs(config))
    lines.append(f"| **all** | | **{total}** |")
    return "\n".join(lines) + "\n"


def load_config(path: Path) -> dict:
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(config, dict) or "artifacts" not in config:
        raise ValueError(f"{path}: expected a prefixtune config with an `artifacts` block")
    return config
