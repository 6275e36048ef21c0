"""Runs whose training is gone while the files made from it remain.

A forced retrain (``--forcerun``) deletes a run's ``run.json`` and ``trained/`` when its job starts. If the
controller dies before the job finishes, the run's decodes and scores are still there, and Snakemake, which only
rebuilds a missing file that something out of date needs, answers "Nothing to be done". ``prefixtune
incomplete`` lists such runs (and the workflow warns about them when it starts); forcing their decoded files
rebuilds them, training first:

    snakemake --profile slurm <targets> --forcerun $(prefixtune incomplete)
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

# what a run's training writes; every other file in results/runs/<run>/ is made from it
TRAINING_OUTPUTS = ("run.json", "trained", "trained.tmp")


def incomplete_runs(
    results: Path, runs: Collection[str], temporary_trained: set[str]
) -> dict[str, list[Path]]:
    """run -> its decoded files (``*.hyp.txt``, what ``--forcerun`` needs), for every run of the config (``runs``;
    folders of runs no longer in it are left alone) whose ``run.json`` is missing, or its ``trained/`` where that
    is not a temporary output (``temporary_trained``: full-weight runs whose weights go once decoded)."""
    runs_dir = results / "runs"
    found: dict[str, list[Path]] = {}
    if not runs_dir.is_dir():
        return found
    for run_dir in sorted(p for p in runs_dir.iterdir() if p.is_dir() and p.name in runs):
        made_from_training = sorted(p for p in run_dir.iterdir() if p.name not in TRAINING_OUTPUTS)
        if not made_from_training:
            continue
        lost = not (run_dir / "run.json").is_file()
        lost |= run_dir.name not in temporary_trained and not (run_dir / "trained").is_dir()
        if lost:
            hyps = [p for p in made_from_training if p.name.endswith(".hyp.txt")]
            found[run_dir.name] = hyps or made_from_training
    return found


def temporary_trained_runs(config: dict, runs: dict[str, dict]) -> set[str]:
    """The runs whose ``trained/`` is a temporary output (FINETUNE, FT-TOP unless training.keep_full_weights)."""
    if config["training"].get("keep_full_weights", False):
        return set()
    return {name for name, spec in runs.items() if spec["method"] in ("finetune", "ft_top")}
