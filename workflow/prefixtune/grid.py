"""Expand the config's artifacts into run specs with stable, readable ids (used by workflow/rules/common.smk).

A run shared by several artifacts is trained once: its id depends only on what it trains.
"""

from __future__ import annotations

from typing import Any


def run_id(dataset: str, model: str, method: str) -> str:
    return f"{dataset}-{model}-{method}"


def make_spec(config: dict[str, Any], dataset: str, model: str, method: str) -> dict[str, Any]:
    """Resolved settings of one training run: defaults < paper table < per-model override.

    ``method`` names an entry of ``config.methods`` (e.g. ``adapter_3pct``); its ``kind`` (default: the name)
    picks the implementation, the rest are its settings.
    """
    training = config["training"]
    try:
        table = training["hparams"][method][dataset]
    except KeyError as err:
        raise KeyError(f"config: training.hparams.{method}.{dataset} is missing") from err
    override = training.get("model_overrides", {}).get(model, {}).get(dataset, {})
    hparams = {**training["defaults"], **table, **override}
    if method not in config["methods"]:
        raise KeyError(f"config: methods.{method} is missing")
    settings = dict(config["methods"][method])
    kind = settings.pop("kind", method)
    if "prefix_length" in hparams:
        settings["prefix_length"] = hparams.pop("prefix_length")
    return {
        "run_id": run_id(dataset, model, method),
        "dataset": dataset,
        "model": model,
        "method": kind,
        "method_name": method,
        "method_settings": settings,
        "hparams": hparams,
    }


def expand_runs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every run any artifact needs, by id."""
    runs: dict[str, dict[str, Any]] = {}
    for artifact in config["artifacts"].values():
        for row in artifact["rows"]:
            if not row.get("method"):
                continue
            if row["model"] not in config["models"]:
                raise KeyError(f"config: artifact row {row['label']!r} uses unknown model {row['model']!r}")
            for dataset in artifact["datasets"]:
                spec = make_spec(config, dataset, row["model"], row["method"])
                runs[spec["run_id"]] = spec
    return runs


def artifact_runs(config: dict[str, Any], artifact: str) -> list[str]:
    rows = config["artifacts"][artifact]["rows"]
    datasets = config["artifacts"][artifact]["datasets"]
    return [run_id(d, r["model"], r["method"]) for r in rows if r.get("method") for d in datasets]


def report_manifest(config: dict[str, Any], artifact: str, scores_path: str) -> dict[str, Any]:
    """Rows of an artifact with the score file of each dataset (``scores_path`` has ``{run}`` and ``{split}``)."""
    spec = config["artifacts"][artifact]
    rows = []
    for row in spec["rows"]:
        model_cfg = config["models"].get(row["model"], {})
        scores = {
            d: scores_path.format(run=run_id(d, row["model"], row["method"]), split=spec["split"])
            if row.get("method")
            else None
            for d in spec["datasets"]
        }
        rows.append(
            {
                "label": row["label"],
                "method": row["paper_method"],
                "model": model_cfg.get("paper_model", row["model"]),
                "ran": row["model"],
                "param_pct": row.get("param_pct", ""),
                "setting": row.get("setting", "full-data"),
                "scores": scores,
            }
        )
    return {"datasets": spec["datasets"], "rows": rows}
