"""Expand the config's artifacts into run specs with stable, readable ids (used by workflow/rules/common.smk).

An artifact is a list of rows (a table's rows, a figure's series). A row names a method on a model and may
- fix a data variant: ``data: {size: 100}`` (low-data subsample), ``{percent: 20}`` (a share of the training
  set) or ``{split: news_sports}`` (an extrapolation split);
- sweep one axis, ``vary: {size | percent | prefix_length | init_word: [...]}`` (a figure's x axis);
- replicate over ``data_seeds`` (subsamples) and ``seeds`` (training seeds);
- override hyperparameters (``hparams``, and ``hparams_by_x`` per swept value) and method settings.

A run shared by several artifacts is trained once: its id depends only on what it trains, and each part of the
id beyond ``{dataset}-{model}-{method}`` names a setting that differs from the method's default.
"""

from __future__ import annotations

import re
from typing import Any

from prefixtune.data.xsum_validation import validation_settings


def run_id(dataset: str, model: str, method: str, tags: tuple[str, ...] = ()) -> str:
    return "-".join((dataset, model, method, *tags))


def slug(text: str) -> str:
    """A word as a run-id part: ``table-to-text:`` -> ``table-to-text``."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not cleaned:
        raise ValueError(f"config: init word {text!r} has no letters or digits to name its runs by")
    return cleaned


def data_tag(data: dict[str, Any]) -> str:
    """The directory/id name of a data variant: ``n100-d8``, ``pct20-d1``, ``news_sports``; ``""`` = full data."""
    if "size" in data:
        return f"n{data['size']}-d{data['data_seed']}"
    if "percent" in data:
        return f"pct{data['percent']:g}-d{data['data_seed']}"
    if "split" in data:
        return str(data["split"])
    return ""


def _base_hparams(config: dict[str, Any], dataset: str, model: str, method: str) -> dict[str, Any]:
    training = config["training"]
    try:
        table = training["hparams"][method][dataset]
    except KeyError as err:
        raise KeyError(f"config: training.hparams.{method}.{dataset} is missing") from err
    override = training.get("model_overrides", {}).get(model, {}).get(dataset, {})
    return {**training["defaults"], **table, **override}


def selection_settings(
    config: dict[str, Any], dataset: str, kind: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Which parameters a run writes (``training.selection``, training/selection.py), by run group: ``xsum`` (BART
    runs), ``low_data`` (a ``size`` subsample) or ``full_data`` (the rest, shares of the training set included:
    the authors' data-efficiency runs kept their final model). Only the settings the rule uses are kept."""
    group = "xsum" if dataset == "xsum" else "low_data" if "size" in data else "full_data"
    chosen = dict((config["training"].get("selection") or {}).get(group) or {"rule": "final"})
    if chosen["rule"] == "final":
        return {"rule": "final", "group": group}
    if isinstance(chosen.get("score_batch_size"), dict):  # per method kind (the authors' two XSUM modules)
        by_kind = chosen["score_batch_size"]
        if kind not in by_kind and "default" not in by_kind:
            raise KeyError(f"config: training.selection.{group}.score_batch_size has no entry for {kind!r}")
        chosen["score_batch_size"] = by_kind.get(kind, by_kind.get("default"))
    return {**chosen, "group": group}


def make_spec(
    config: dict[str, Any],
    dataset: str,
    model: str,
    method: str,
    *,
    data: dict[str, Any] | None = None,
    hparams: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Resolved settings of one training run: defaults < paper table < per-model override < the row's overrides.

    ``method`` names an entry of ``config.methods`` (e.g. ``adapter_3pct``); its ``kind`` (default: the name)
    picks the implementation, the rest are its settings.
    """
    if method not in config["methods"]:
        raise KeyError(f"config: methods.{method} is missing")
    base = _base_hparams(config, dataset, model, method)
    default_settings = dict(config["methods"][method])
    kind = default_settings.pop("kind", method)
    if "prefix_length" in base:
        default_settings["prefix_length"] = base["prefix_length"]
    resolved = {**base, **(hparams or {})}
    method_settings = dict(default_settings)
    if "prefix_length" in resolved:
        method_settings["prefix_length"] = resolved.pop("prefix_length")
    method_settings.update(settings or {})
    method_settings = {k: v for k, v in method_settings.items() if v is not None}
    data = dict(data or {})
    tags = [t for t in (data_tag(data),) if t]
    if method_settings.get("prefix_length") != default_settings.get("prefix_length"):
        tags.append(f"len{method_settings['prefix_length']}")
    init = (
        method_settings.get("init", "random"),
        method_settings.get("init_word"),
    )  # random: the methods' default
    if init != (default_settings.get("init", "random"), default_settings.get("init_word")):
        tags.append(f"w-{slug(init[1])}" if init[0] == "word" else f"init-{init[0]}")
    if resolved["seed"] != config["training"]["defaults"]["seed"]:
        tags.append(f"s{resolved['seed']}")
    return {
        "run_id": run_id(dataset, model, method, tuple(tags)),
        "dataset": dataset,
        "model": model,
        "method": kind,
        "method_name": method,
        "method_settings": method_settings,
        "hparams": resolved,
        "data": data,
        "selection": selection_settings(config, dataset, kind, data),
    }


def _axis_overrides(axis: str, value: Any) -> tuple[dict, dict, dict]:  # noqa: ANN401
    """(data, hparams, settings) overrides of one swept value."""
    if axis in ("size", "percent", "split"):
        return {axis: value}, {}, {}
    if axis == "prefix_length":
        return {}, {"prefix_length": int(value)}, {}
    if value in ("random", "uniform"):
        return {}, {}, {"init": value, "init_word": None}
    return {}, {}, {"init": "word", "init_word": str(value), "prefix_length": None}


def row_datasets(artifact: dict[str, Any], row: dict[str, Any]) -> list[str]:
    return list(row.get("datasets") or artifact["datasets"])


def row_cells(config: dict[str, Any], artifact: dict[str, Any], row: dict[str, Any]) -> list[dict[str, Any]]:
    """The cells of one row: per dataset and swept value, the replicate run specs (data seed x training seed)."""
    if not row.get("method"):
        return [{"dataset": d, "x": None, "runs": []} for d in row_datasets(artifact, row)]
    for key, known in (("model", config["models"]), ("method", config["methods"])):
        if row[key] not in known:
            raise KeyError(
                f"config: artifact row {row['label']!r} uses unknown {key} {row[key]!r}; "
                f"expected one of the config's {key}s: {', '.join(sorted(known))}"
            )
    unknown = [d for d in row_datasets(artifact, row) if d not in config["datasets"]]
    if unknown:
        raise KeyError(
            f"config: artifact row {row['label']!r} uses unknown dataset {unknown[0]!r}; "
            f"expected one of the config's datasets: {', '.join(sorted(config['datasets']))}"
        )
    (axis, values), *extra = (row.get("vary") or {None: [None]}).items()
    if extra:
        raise ValueError(f"config: artifact row {row['label']!r} varies more than one axis")
    fixed = dict(row.get("data") or {})
    subsampled = "size" in fixed or "percent" in fixed or axis in ("size", "percent")
    data_seeds = (row.get("data_seeds") or [1]) if subsampled else [None]
    seeds = row.get("seeds") or [None]
    by_x = {str(k): v for k, v in (row.get("hparams_by_x") or {}).items()}
    cells = []
    for dataset in row_datasets(artifact, row):
        for x in values:
            data_x, hp_x, set_x = _axis_overrides(axis, x) if axis else ({}, {}, {})
            runs = []
            for data_seed in data_seeds:
                data = {**fixed, **data_x}
                if data_seed is not None:
                    data["data_seed"] = data_seed
                for seed in seeds:
                    hparams = {**(row.get("hparams") or {}), **by_x.get(str(x), {}), **hp_x}
                    if seed is not None:
                        hparams["seed"] = seed
                    settings = {**(row.get("settings") or {}), **set_x}
                    runs.append(
                        make_spec(
                            config,
                            dataset,
                            row["model"],
                            row["method"],
                            data=data,
                            hparams=hparams,
                            settings=settings,
                        )
                    )
            cells.append({"dataset": dataset, "x": x, "runs": runs})
    return cells


def expand_runs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every run any artifact needs, by id; the same id must always mean the same settings."""
    runs: dict[str, dict[str, Any]] = {}
    for name, artifact in config["artifacts"].items():
        for row in artifact["rows"]:
            for cell in row_cells(config, artifact, row):
                for spec in cell["runs"]:
                    known = runs.setdefault(spec["run_id"], spec)
                    if known != spec:
                        raise ValueError(
                            f"config: artifact {name!r} row {row['label']!r} defines run {spec['run_id']!r} with "
                            "settings that differ from another artifact's run of the same id"
                        )
    return runs


def artifact_runs(config: dict[str, Any], artifact: str) -> list[str]:
    """The run ids of one artifact, in row order, each once."""
    spec = config["artifacts"][artifact]
    ids = [s["run_id"] for row in spec["rows"] for cell in row_cells(config, spec, row) for s in cell["runs"]]
    return list(dict.fromkeys(ids))


def artifact_split(artifact: dict[str, Any], dataset: str) -> str:
    """The split an artifact scores on a dataset (``split``, or its ``split_by_dataset`` entry)."""
    return (artifact.get("split_by_dataset") or {}).get(dataset, artifact["split"])


def report_manifest(config: dict[str, Any], artifact: str, scores_path: str) -> dict[str, Any]:
    """Rows of an artifact with, per cell, the score file of each replicate run.

    ``scores_path`` has ``{run}`` and ``{split}``.
    """
    spec = config["artifacts"][artifact]
    rows = []
    for row in spec["rows"]:
        model_cfg = config["models"].get(row["model"], {})
        cells = [
            {
                "dataset": cell["dataset"],
                "x": cell["x"],
                "runs": [
                    {
                        "run": run["run_id"],
                        "scores": scores_path.format(
                            run=run["run_id"], split=artifact_split(spec, cell["dataset"])
                        ),
                        "data_seed": run["data"].get("data_seed"),
                        "seed": run["hparams"]["seed"],
                    }
                    for run in cell["runs"]
                ],
            }
            for cell in row_cells(config, spec, row)
        ]
        rows.append(
            {
                "label": row["label"],
                "method": row["paper_method"],
                "model": model_cfg.get("paper_model", row["model"]),
                "ran": row["model"],
                "param_pct": row.get("param_pct", ""),
                "setting": row.get("setting", "full-data"),
                "cells": cells,
            }
        )
    manifest = {
        "kind": spec.get("kind", "table"),
        "datasets": spec["datasets"],
        "splits": {d: artifact_split(spec, d) for d in spec["datasets"]},
        "x_paper": spec.get("x_paper", {}),
        "x_label": spec.get("x_label", ""),
        "panels": spec.get("panels", []),
        "qualitative": spec.get("qualitative"),
        "rows": rows,
    }
    if "xsum" in spec["datasets"] and artifact_split(spec, "xsum") == "dev":
        manifest["xsum_validation"] = validation_settings(config)  # the page says which protocol scored it
    return manifest
