"""``prefixtune plan --forecast``: the training GPU-hours an artifact will cost, before anything is submitted.

Each run's optimizer steps follow from its hyperparameters and its training-set size (the prepared data where it
exists, else ``forecast.train_examples``); its cost from a rate in seconds per training example. Rates measured
by the pipeline come first (each ``run.json`` records ``seconds_per_step``; divided by the batch it is per
example, for the same model and method on a GPU); where none was measured, the config's
``forecast.seconds_per_example`` (the paper's stated rates, on its GPUs) stands in, and the table says which.
"""

from __future__ import annotations

import functools
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from prefixtune.data.subsample import DEV_SHARE, subset_sizes
from prefixtune.grid import artifact_runs, expand_runs
from prefixtune.training.schedule import planned_steps


@functools.cache  # one count per prepared file, not one per run
def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def train_examples(config: dict[str, Any], spec: dict[str, Any], results: Path) -> int | None:
    """Training pairs of a run: its subset's size, a share of the full set, a split's train size, or the set."""
    data, dataset = spec["data"], spec["dataset"]
    if "size" in data:
        return int(data["size"])
    if "split" in data:
        record = results / "splits" / dataset / data["split"] / "split.json"
        if record.is_file():
            return int(json.loads(record.read_text())["sizes"]["train"])
        return config.get("forecast", {}).get("split_train_examples", {}).get(data["split"])
    prepared = results / "data" / dataset / "train.jsonl"
    full = (
        _count_lines(prepared)
        if prepared.is_file()
        else config.get("forecast", {}).get("train_examples", {}).get(dataset)
    )
    if full is None:
        return None
    if "percent" in data:
        return subset_sizes("percent", float(data["percent"]), int(full), 1, prepared)[0]
    return int(full)


def _dev_counts(config: dict[str, Any], spec: dict[str, Any], results: Path) -> tuple[int | None, float]:
    """(dev items, references per item) a run's checkpoint selection evaluates on, before or after preparation."""
    data, dataset = spec["data"], spec["dataset"]
    folder = results / ("splits" if "split" in data else "data") / dataset / data.get("split", "")
    prepared = folder / "dev.jsonl"
    forecast = config.get("forecast", {})
    if prepared.is_file():
        items = [
            json.loads(line) for line in prepared.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
        full, refs = len(items), sum(len(i["references"]) for i in items) / max(1, len(items))
    else:
        full, refs = (
            forecast.get("dev_items", {}).get(dataset),
            forecast.get("dev_references_per_item", {}).get(dataset, 1.0),
        )
    if "size" in data:
        return int(DEV_SHARE * int(data["size"])), refs
    if "percent" in data and full is not None:
        return max(1, round(full * float(data["percent"]) / 100)), refs
    return full, refs


def selection_hours(
    config: dict[str, Any], spec: dict[str, Any], results: Path, examples: int, rate: float | None
) -> float | None:
    """GPU-hours of a run's checkpoint-selection evaluations, an estimate (0 for the final model): a dev-loss pass
    costs a third of a training example per dev pair (forward only); an XSUM validation pass
    ``forecast.seconds_per_validation_item`` per article (generation and ROUGE)."""
    selection = spec.get("selection") or {"rule": "final"}
    if selection["rule"] == "final":
        return 0.0
    per_epoch, _, total = planned_steps(examples, spec["hparams"])
    items, refs = _dev_counts(config, spec, results)
    if items is None:
        return None
    if selection["rule"] == "best_dev_loss":
        passes = total // int(selection["eval_every"])
        return None if rate is None else passes * items * refs * rate / 3 / 3600
    passes = total // (int(selection["every_epochs"]) * per_epoch)
    per_item = config.get("forecast", {}).get("seconds_per_validation_item", {}).get(spec["model"])
    return None if per_item is None else passes * min(items, int(selection["val_items"])) * per_item / 3600


def examples_per_step(hparams: dict[str, Any]) -> int:
    return int(hparams["batch_size"]) * int(hparams.get("gradient_accumulation_steps", 1))


def measured_rates(results: Path) -> dict[tuple[str, str], list[float]]:
    """Seconds per training example measured on a GPU, per (model, method kind), from the runs' ``run.json``."""
    rates: dict[tuple[str, str], list[float]] = defaultdict(list)
    for path in sorted((results / "runs").glob("*/run.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        per_step = record.get("training", {}).get("seconds_per_step")
        spec = record.get("spec", {})
        if not per_step or record.get("device", "cpu") == "cpu" or "hparams" not in spec:
            continue
        rates[(spec["model"], spec["method"])].append(per_step / examples_per_step(spec["hparams"]))
    return rates


def _assumed_rate(config: dict[str, Any], model: str, kind: str) -> float | None:
    table = config.get("forecast", {}).get("seconds_per_example", {}).get(model, {})
    return table.get(kind, table.get("default"))


def forecast_table(config: dict[str, Any], results: Path, artifacts: list[str] | None = None) -> str:
    """Markdown: per artifact, its runs, their optimizer steps and forecast training GPU-hours; then the
    whole plan with each run once, and the rates used."""
    specs = expand_runs(config)
    measured = measured_rates(results)
    used: dict[tuple[str, str], str] = {}

    @functools.cache  # a run shared by several artifacts is costed once
    def run_hours(run: str) -> tuple[int | None, float | None]:
        spec = specs[run]
        examples = train_examples(config, spec, results)
        if examples is None:
            return None, None
        steps, hours = _train_hours(run, spec, examples)
        selection = selection_hours(config, spec, results, examples, rates.get(run))
        selected[run] = selection
        return steps, None if hours is None or selection is None else hours + selection

    rates: dict[str, float] = {}
    selected: dict[str, float | None] = {}

    def _train_hours(run: str, spec: dict[str, Any], examples: int) -> tuple[int, float | None]:
        steps = planned_steps(examples, spec["hparams"])[2]
        key = (spec["model"], spec["method"])
        if measured.get(key):
            rate = statistics.median(measured[key])
            used[key] = f"measured ({len(measured[key])} runs): {rate:.4f} s/example"
        elif (rate := _assumed_rate(config, *key)) is not None:
            used[key] = f"assumed (config forecast.seconds_per_example): {rate:.4f} s/example"
        else:
            used[key] = "no rate: run one job of this kind or set forecast.seconds_per_example"
            return steps, None
        rates[run] = rate
        return steps, steps * examples_per_step(spec["hparams"]) * rate / 3600

    def fmt(hours: float | None) -> str:
        return "?" if hours is None else f"{hours:.1f}"

    names = artifacts or list(config["artifacts"])
    lines = [
        "| artifact | runs | optimizer steps | training GPU-hours | of which checkpoint selection (estimate) |",
        "|---|---|---|---|---|",
    ]
    every: set[str] = set()
    for name in names:
        if name not in config["artifacts"]:
            raise KeyError(f"unknown artifact {name!r}; expected one of {', '.join(config['artifacts'])}")
        runs = artifact_runs(config, name)
        every.update(runs)
        costs = [run_hours(r) for r in runs]
        steps = sum(s or 0 for s, _ in costs)
        hours = None if any(h is None for _, h in costs) else sum(h for _, h in costs)
        chosen = [selected.get(r) for r in runs]
        select = None if any(h is None for h in chosen) else sum(h for h in chosen if h is not None)
        lines.append(f"| {name} | {len(runs)} | {steps:,} | {fmt(hours)} | {fmt(select)} |")
    costs = [run_hours(r) for r in sorted(every)]
    total = None if any(h is None for _, h in costs) else sum(h for _, h in costs)
    chosen = [selected.get(r) for r in sorted(every)]
    select = None if any(h is None for h in chosen) else sum(h for h in chosen if h is not None)
    lines.append(
        f"| **each run once** | **{len(every)}** | {sum(s or 0 for s, _ in costs):,} | **{fmt(total)}** | "
        f"{fmt(select)} |"
    )
    lines += ["", "Rates (seconds per training example, per model and method):", ""]
    lines += [f"- {model} {kind}: {text}" for (model, kind), text in sorted(used.items())]
    lines += [
        "",
        "Training jobs, with the evaluations that choose the decoded checkpoint (dev loss; XSUM validation "
        "summaries, `forecast.seconds_per_validation_item` per article) estimated from config. Decoding adds "
        "about 1.2 s per table-to-text source unbatched on the paper's GPUs (the paper's rate) "
        "and XSUM 2.6 s per batch of 10. A `?` is a run whose training-set size or rate is unknown.",
    ]
    return "\n".join(lines) + "\n"
