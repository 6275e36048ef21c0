"""Write one report artifact (a table, or a figure with its points) and its status record for reports/index.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefixtune.provenance import git_commit, write_json_atomic, write_text_atomic
from prefixtune.report.compute import artifact_jobs
from prefixtune.report.figure_report import build_figure
from prefixtune.report.paper import VERSIONS, load_paper_results
from prefixtune.report.tables import TableContext, build_table, records_to_csv
from prefixtune.report.titles import ALL_TITLES

DEMO_BANNER = (
    "> **DEMO** — offline demo run: tiny GPT-2/BART models pre-trained on synthetic text, trained and scored on "
    "synthetic data in the official formats. The numbers prove the pipeline connects; they are not comparable to "
    "the paper's, and the verdicts mean nothing here."
)


def status_record(artifact: str, manifest: dict, config_hash: str) -> dict[str, Any]:
    runs = {r["run"]: r["scores"] for row in manifest["rows"] for c in row["cells"] for r in c["runs"]}
    scored = sum(Path(p).is_file() for p in runs.values())
    status = "complete" if runs and scored == len(runs) else "partial" if scored else "missing"
    if not runs:
        status = "paper values only"
    return {
        "artifact": artifact,
        "title": ALL_TITLES[artifact],
        "kind": manifest.get("kind", "table"),
        "status": status,
        "runs_scored": scored,
        "runs_planned": len(runs),
        "git_commit": git_commit(),
        "config_hash": config_hash,
        "jobs": artifact_jobs(manifest),  # where its runs' compute records are (reports/compute.md)
    }


def build_report(
    artifact: str,
    manifest: dict,
    paper_csv: Path,
    version: str,
    out_dir: Path,
    demo: bool,
    tolerance: dict[str, dict[str, float]] | None = None,
    config_hash: str = "",
    claims_file: Path | None = None,
    claims_settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``<artifact>.md``, ``.csv``, ``.json`` (status) and, for a figure, ``.png`` and ``.pdf`` in out_dir.

    ``manifest``: see :func:`prefixtune.grid.report_manifest`. ``claims_file``: the page lists the claims filed
    under this artifact with their verdicts (judged from its own runs; ``claims_settings``: report.claims).
    """
    if artifact not in ALL_TITLES:
        raise ValueError(f"unknown artifact {artifact!r}; expected one of {sorted(ALL_TITLES)}")
    other_version = next(v for v in VERSIONS if v != version)
    paper = load_paper_results(paper_csv, version)
    other = load_paper_results(paper_csv, other_version)
    title = f"# {ALL_TITLES[artifact]}; paper numbers: {version}"
    heading = f"{DEMO_BANNER}\n\n{title}" if demo else title
    out = out_dir / artifact
    claims_md, claims_status, strip = "", [], []
    if claims_file is not None:
        from prefixtune.claims.engine import settings_from
        from prefixtune.claims.report import page_claims

        settings = settings_from(claims_settings)
        claims_md, claims_status, strip = page_claims(
            claims_file, artifact, manifest, paper_csv, version, settings, demo
        )
    if manifest.get("kind", "table") == "figure":
        # a figure statement published in one version only (Figure 6: ACL) is still the paper's
        markdown, records = build_figure(
            artifact, manifest, {**other, **paper}, heading, out, demo, claims=strip
        )
    else:
        ctx = TableContext(artifact, paper, other, version, other_version, tolerance or {})
        markdown, records = build_table(manifest, ctx, heading)
    markdown += claims_md
    status = status_record(artifact, manifest, config_hash)
    if claims_file is not None:
        status["claims"] = claims_status
    markdown += (
        f"\nStatus: {status['status']} ({status['runs_scored']} of {status['runs_planned']} runs scored); "
        f"commit {status['git_commit']}; config hash {config_hash[:12] or '–'}.\n"
    )
    csv_text = records_to_csv(records)
    if demo:  # pandas: read_csv(path, comment="#")
        csv_text = f"# DEMO: offline demo numbers (tiny model, synthetic data), not comparable to the paper\n{csv_text}"
    write_text_atomic(out.with_suffix(".csv"), csv_text)
    write_json_atomic(out.with_suffix(".json"), status)
    write_text_atomic(out.with_suffix(".md"), markdown)
    return status
