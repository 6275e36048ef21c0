"""reports/index.md: every artifact with its status, the commit and config hash that produced it, its GPU-hours
(wall times: reports/compute.md)."""

from __future__ import annotations

import json
from pathlib import Path

from prefixtune.provenance import write_text_atomic
from prefixtune.report.compute import artifact_gpu_hours


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
        "| artifact | status | runs scored | GPU-hours | commit | config hash |",
        "|---|---|---|---|---|---|",
    ]
    for rec in records:
        link = f"[{rec['title']}]({rec['artifact']}.md)"
        lines.append(
            f"| {link} | {rec['status']} | {rec['runs_scored']} of {rec['runs_planned']} | "
            f"{artifact_gpu_hours(rec['jobs']):.2f} | `{rec['git_commit']}` | `{rec['config_hash'][:12]}` |"
        )
    lines += [
        "",
        "Does each claim of the paper hold? Every claim with its verdict, effect and interval: "
        "[claims.md](claims.md).",
        "",
        "GPU-hours: wall time of the artifact's training and decoding jobs that ran on a GPU, counting every run "
        "it uses (a run shared by several artifacts is trained once but appears in each). Wall times per artifact "
        "and per run: [compute.md](compute.md).",
        "",
        "Status: complete = every planned run scored; partial = some; missing = none yet; paper values only = "
        "no run configured (e.g. a row quoted from another paper).",
    ]
    text = "\n".join(lines) + "\n"
    write_text_atomic(out, text)
    return text
