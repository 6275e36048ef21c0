"""Write a report artifact from a manifest of rows and score files."""

from __future__ import annotations

from pathlib import Path

from prefixtune.provenance import write_text_atomic
from prefixtune.report.paper import load_paper_results
from prefixtune.report.tables import TITLES, Row, build_table, records_to_csv

DEMO_BANNER = (
    "> **DEMO** — offline demo run: tiny GPT-2/BART models pre-trained on synthetic text, trained and scored on "
    "synthetic data in the official formats. The numbers prove the pipeline connects; they are not comparable to "
    "the paper's."
)


def build_report(
    artifact: str, manifest: dict, paper_csv: Path, version: str, out_md: Path, out_csv: Path, demo: bool
) -> None:
    """``manifest = {"datasets": [...], "rows": [{"label", "method", "model", "ran", "param_pct", "setting",
    "scores": {dataset: path|null}}]}``."""
    if artifact not in TITLES:
        raise ValueError(f"unknown artifact {artifact!r}; expected one of {sorted(TITLES)}")
    paper = load_paper_results(paper_csv, version)
    rows = [
        Row(
            r["label"],
            r["method"],
            r["model"],
            r.get("ran", r["model"]),
            str(r.get("param_pct", "")),
            {k: Path(v) if v else None for k, v in r["scores"].items()},
            r.get("setting", "full-data"),
        )
        for r in manifest["rows"]
    ]
    title = f"# {TITLES[artifact]}; paper numbers: {version}"
    heading = f"{DEMO_BANNER}\n\n{title}" if demo else title
    markdown, records = build_table(artifact, manifest["datasets"], rows, paper, heading)
    csv_text = records_to_csv(records)
    if demo:  # pandas: read_csv(path, comment="#")
        csv_text = f"# DEMO: offline demo numbers (tiny model, synthetic data), not comparable to the paper\n{csv_text}"
    write_text_atomic(out_csv, csv_text)
    write_text_atomic(out_md, markdown)
