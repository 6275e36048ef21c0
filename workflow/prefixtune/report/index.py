"""reports/index.md: every artifact with its status, the commit and config hash that produced it, its compute."""

from __future__ import annotations

import json
from pathlib import Path

from prefixtune.provenance import write_text_atomic


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 360 else f"{seconds:.0f} s"


def build_index(status_files: list[Path], out: Path, demo: bool = False) -> str:
    records = [json.loads(path.read_text(encoding="utf-8")) for path in status_files]
    lines = []
    if demo:
        lines += [
            "> **DEMO** — offline demo run (tiny models, synthetic data); not comparable to the paper.",
            "",
        ]
    lines += [
        "# Reproduced artifacts",
        "",
        "| artifact | status | runs scored | train | decode | GPU-hours | commit | config hash |",
        "|---|---|---|---|---|---|---|---|",
    ]
    totals = {"train_s": 0.0, "decode_s": 0.0, "gpu_hours": 0.0}
    for rec in records:
        compute = rec["compute"]
        for key in totals:
            totals[key] += compute[key]
        link = f"[{rec['title']}]({rec['artifact']}.md)"
        lines.append(
            f"| {link} | {rec['status']} | {rec['runs_scored']} of {rec['runs_planned']} | "
            f"{_hours(compute['train_s'])} | {_hours(compute['decode_s'])} | {compute['gpu_hours']:.2f} | "
            f"`{rec['git_commit']}` | `{rec['config_hash'][:12]}` |"
        )
    lines += [
        "",
        f"Compute per artifact counts every run it uses, so a run shared by several artifacts (trained once) "
        f"appears in each; summed over artifacts: train {_hours(totals['train_s'])}, decode "
        f"{_hours(totals['decode_s'])}, {totals['gpu_hours']:.2f} GPU-hours.",
        "",
        "Status: complete = every planned run scored; partial = some; missing = none yet; paper values only = "
        "no run configured (e.g. a row quoted from another paper).",
    ]
    text = "\n".join(lines) + "\n"
    write_text_atomic(out, text)
    return text
