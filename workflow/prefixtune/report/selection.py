"""Which checkpoint each run of a figure decoded (the runs' ``run.json`` ``selection``), as readable page text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefixtune.report.cells import PAPER_DATASET

RULE_TEXT = {
    "final": "final model",
    "best_dev_loss": "lowest dev loss, every {every_steps} steps",
    "best_val_rouge": "best validation {metric} on {dev_examples} articles, after {epochs_text}",
}
METRIC_TEXT = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L"}


def _run_record(scores_path: str) -> dict[str, Any] | None:
    path = Path(scores_path).parent / "run.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


class _Fields(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def rule_text(selection: dict[str, Any]) -> str:
    rule = selection.get("rule", "final")
    every = selection.get("every_epochs", 1)
    fields = _Fields(
        selection,
        metric=METRIC_TEXT.get(selection.get("metric", ""), selection.get("metric", "")),
        epochs_text="every epoch" if every == 1 else f"every {every} epochs",
    )
    return RULE_TEXT.get(rule, rule).format_map(fields)


def chosen_text(record: dict[str, Any]) -> str:
    """``step 150 of 200 (dev loss 12.34)``, ``epoch 4 of 20 (ROUGE-2 17.20)`` or ``step 200 (final)``."""
    selection = record.get("selection") or {"rule": "final"}
    steps = record.get("training", {}).get("steps")
    if selection.get("rule", "final") == "final":
        return f"step {steps} (final)"
    score = selection.get("chosen_score")
    value = (
        "–" if score is None else f"{score:.4f}" if selection["rule"] == "best_dev_loss" else f"{score:.2f}"
    )
    if selection["rule"] == "best_val_rouge":
        epochs = record.get("training", {}).get("epochs")
        metric = METRIC_TEXT.get(selection.get("metric", ""), "")
        return f"epoch {selection.get('chosen_epoch', 0):g} of {epochs} ({metric} {value})"
    return f"step {selection.get('chosen_step')} of {steps} (dev loss {value})"


def selection_markdown(manifest: dict) -> str:
    """One row per figure point: how its runs' checkpoints were chosen and, per run, the chosen one."""
    rows = []
    for row in manifest["rows"]:
        for cell in row["cells"]:
            records = [_run_record(run["scores"]) for run in cell["runs"]]
            done = [r for r in records if r is not None]
            if not cell["runs"]:
                continue
            rules = sorted({rule_text(r.get("selection") or {}) for r in done}) or ["–"]
            chosen = "; ".join(chosen_text(r) for r in done) or "not trained yet"
            missing = len(records) - len(done)
            if done and missing:
                chosen += f"; {missing} not trained yet"
            rows.append(
                f"| {row['label']} | {PAPER_DATASET[cell['dataset']]} | {cell['x']} | {', '.join(rules)} | {chosen} |"
            )
    if not rows:
        return ""
    head = [
        "## Which checkpoint was decoded",
        "",
        "Per point: how the decoded parameters were chosen during training and, per run, the chosen one.",
        "",
        "| series | dataset | x | chosen by | chosen checkpoint per run |",
        "|---|---|---|---|---|",
    ]
    return "\n".join(head + rows)
