"""The compute ledger: wall time and GPU-hours of every training and decoding job, per run and per artifact.

Each job records its own wall time and device (``run.json``, ``<split>.hyp.json``); this module only adds them
up. Wall times differ from one run of the pipeline to the next, so they live here (``reports/compute.md``) and
not in the artifacts' reports, which are byte-identical when the pipeline is rerun from scratch on a CPU."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefixtune.provenance import write_json_atomic, write_text_atomic


def artifact_jobs(manifest: dict) -> list[dict[str, str]]:
    """Each run of an artifact once, with the records its training and decoding jobs wrote."""
    jobs: dict[str, dict[str, str]] = {}
    for row in manifest["rows"]:
        for cell in row["cells"]:
            for run in cell["runs"]:
                scores = Path(run["scores"])
                split = scores.name.split(".")[0]
                job = jobs.setdefault(
                    run["run"], {"run": run["run"], "train": str(scores.parent / "run.json")}
                )
                job.setdefault("decode", str(scores.parent / f"{split}.hyp.json"))
    return [jobs[name] for name in sorted(jobs)]


def _record(path: str) -> dict[str, Any] | None:
    file = Path(path)
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None


def job_compute(job: dict[str, str]) -> dict[str, Any]:
    """Wall time, device and GPU-hours of one run's training and decoding (None where not run yet)."""
    train, decode = _record(job["train"]), _record(job["decode"])
    out: dict[str, Any] = {"run": job["run"], "train_s": None, "decode_s": None, "gpu_hours": 0.0}
    for key, record in (("train_s", train), ("decode_s", decode)):
        if record is None:
            continue
        # a resumed run: every attempt's wall time (run.json's ledger), not only the last one's
        seconds = float(record.get("wall_time_s_total", record.get("wall_time_s", 0.0)))
        out[key] = seconds
        if record.get("attempts"):  # each attempt on the device it had
            gpu_seconds = sum(float(a["wall_time_s"]) for a in record["attempts"] if a["device"] != "cpu")
            out["gpu_hours"] += gpu_seconds / 3600
        elif record.get("device", "cpu") != "cpu":
            out["gpu_hours"] += seconds / 3600
    if train is not None:
        out["device"] = train.get("device", "cpu")
        out["attempts"] = len(train.get("attempts") or [None])  # runs from before the ledger: one
        out["steps"] = train.get("training", {}).get("steps")
        out["seconds_per_step"] = train.get("training", {}).get("seconds_per_step")
        # checkpoint selection's evaluations (dev loss, XSUM validation decoding): inside the training wall time
        out["selection_s"] = (train.get("selection") or {}).get("validation_seconds")
    return out


def artifact_gpu_hours(jobs: list[dict[str, str]]) -> float:
    return sum(job_compute(job)["gpu_hours"] for job in jobs)


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds / 3600:.2f} h" if seconds >= 360 else f"{seconds:.0f} s"


def build_compute(status_files: list[Path], out: Path, demo: bool = False) -> str:
    """Write ``compute.md`` (and ``compute.json``): per artifact, then every run once."""
    records = [json.loads(path.read_text(encoding="utf-8")) for path in status_files]
    per_run: dict[str, dict[str, Any]] = {}
    lines = ["> **DEMO** — offline CPU demo run.", ""] if demo else []
    lines += [
        "# Compute ledger",
        "",
        "Wall time of the training and decoding jobs (each job records its own) and GPU-hours (wall time of jobs "
        "that ran on a GPU). An artifact counts every run it uses; the totals count each run once. Training time "
        "includes the evaluations that chose the decoded checkpoint (dev loss; XSUM validation summaries), shown "
        "on their own in the runs table. A run trained in several attempts (resumed after a time limit, a "
        "preemption or a cancelled job) counts every attempt's time.",
        "",
        "| artifact | runs timed | train | decode | GPU-hours |",
        "|---|---|---|---|---|",
    ]
    for rec in records:
        rows = [job_compute(job) for job in rec["jobs"]]
        for row in rows:
            per_run[row["run"]] = row
        timed = [r for r in rows if r["train_s"] is not None]
        train = sum(r["train_s"] for r in timed)
        decode = sum(r["decode_s"] or 0.0 for r in rows)
        gpu = sum(r["gpu_hours"] for r in rows)
        lines.append(
            f"| [{rec['title']}]({rec['artifact']}.md) | {len(timed)} of {len(rows)} | {_fmt(train)} | "
            f"{_fmt(decode)} | {gpu:.2f} |"
        )
    runs = [per_run[name] for name in sorted(per_run)]
    total_train = sum(r["train_s"] or 0.0 for r in runs)
    total_decode = sum(r["decode_s"] or 0.0 for r in runs)
    total_gpu = sum(r["gpu_hours"] for r in runs)
    attempts = sum(r.get("attempts", 0) for r in runs)
    lines += [
        "",
        f"Every run once: {len(runs)} runs, train {_fmt(total_train)} in {attempts} attempt"
        f"{'' if attempts == 1 else 's'}, decode {_fmt(total_decode)}, "
        f"{total_gpu:.2f} GPU-hours.",
        "",
        "## Runs",
        "",
        "| run | device | steps | s/step | attempts | train | of which checkpoint selection | decode | GPU-hours |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        rate = f"{r['seconds_per_step']:.3f}" if r.get("seconds_per_step") else "–"
        lines.append(
            f"| {r['run']} | {r.get('device', '–')} | {r.get('steps') or '–'} | {rate} | {r.get('attempts', '–')} | "
            f"{_fmt(r['train_s'])} | "
            f"{_fmt(r.get('selection_s'))} | "
            f"{_fmt(r['decode_s'])} | {r['gpu_hours']:.3f} |"
        )
    text = "\n".join(lines) + "\n"
    write_json_atomic(out.with_suffix(".json"), {"runs": runs, "gpu_hours": total_gpu})
    write_text_atomic(out, text)
    return text
