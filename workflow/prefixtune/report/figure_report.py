"""A figure artifact: aggregate its runs into points, draw it (figures.py) and write its points and text panel."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefixtune.data.e2e import find_item_by_mr
from prefixtune.report.cells import PAPER_DATASET, aggregate, fmt_aggregate, load_scores, metric_spec
from prefixtune.report.figures import Panel, PaperMark, Point, plot_figure, qualitative_markdown
from prefixtune.report.paper import PaperKey
from prefixtune.report.paper_statements import PaperStatement, paper_statement
from prefixtune.report.selection import selection_markdown
from prefixtune.report.titles import FIGURE_TITLES

PAPER_FIGURE = {"figure6": "figure6_data_efficiency"}  # the paper CSV's artifact name
MARK_DATASET = {"E2E": "e2e", "XSUM": "xsum", "DART": "dart", "table-to-text": "dart"}
SCALE_NOTE = {("e2e", 100): " (×100)", ("xsum", 1): " (F ×100)", ("dart", 1): ""}


def y_label(dataset: str, metric: str) -> str:
    _, scale, _ = metric_spec(dataset, metric)
    if dataset == "dart" and metric == "BLEU":
        return "BLEU (×100)"
    return (
        metric + SCALE_NOTE.get((dataset, int(scale)), "") + (" (lower is better)" if metric == "TER" else "")
    )


def figure_points(manifest: dict) -> tuple[list[Point], list[dict]]:
    """Every (series, dataset, metric, x) of the panels over its replicates, and long-format CSV records (their
    ``text`` is the value as the page prints it)."""
    wanted = {(p["dataset"], m) for p in manifest["panels"] for m in p["metrics"]}
    points, records = [], []
    for row in manifest["rows"]:
        for cell in row["cells"]:
            scores = load_scores([r["scores"] for r in cell["runs"]])
            for dataset, metric in sorted(wanted):
                if dataset != cell["dataset"]:
                    continue
                agg = aggregate(scores, dataset, metric)
                decimals = metric_spec(dataset, metric)[2]
                records.append(
                    {
                        "series": row["label"],
                        "dataset": PAPER_DATASET[dataset],
                        "metric": metric,
                        "x": cell["x"],
                        "mean": "" if agg.mean is None else repr(agg.mean),
                        "sd": repr(agg.sd) if agg.n else "",
                        "n": agg.n,
                        "planned": agg.planned,
                        "values": " ".join(f"{v:.{decimals + 2}f}" for v in agg.values),
                        "runs": " ".join(r["run"] for r in cell["runs"]),
                        "missing_reason": agg.reason or "",
                        "text": fmt_aggregate(agg, decimals) + (f" ({agg.reason})" if agg.reason else ""),
                    }
                )
                if agg.mean is not None:
                    points.append(
                        Point(row["label"], dataset, metric, cell["x"], agg.mean, agg.sd, agg.n, agg.values)
                    )
    return points, records


def figure_statements(
    artifact: str, manifest: dict, paper: dict[PaperKey, float]
) -> list[tuple[str, PaperStatement]]:
    """The paper's statements about the figure's panels as (dataset, readable statement).

    ``paper`` holds both versions (the page's own last); of one statement stated by both versions (Figure 4's
    "table-to-text" in v1 = "DART" in ACL) the page's version wins. A row whose metric has no template is an error.
    """
    name = PAPER_FIGURE.get(artifact, artifact)
    shown = {p["dataset"] for p in manifest["panels"]}
    found: dict[tuple[str, str], tuple[str, PaperStatement]] = {}
    for key, value in paper.items():
        if key.artifact != name:
            continue
        statement = paper_statement(key, value)
        dataset = MARK_DATASET.get(key.dataset)
        if dataset in shown:
            found.pop((dataset, key.metric), None)
            found[(dataset, key.metric)] = (dataset, statement)
    return list(found.values())


def _series_label(manifest: dict, method: str) -> str | None:
    """The figure's row label for a paper method name (FINE-TUNE matches FINETUNE), if the figure has it."""
    want = method.upper().replace("-", "")
    labels = [row["label"] for row in manifest["rows"]]
    return next((label for label in labels if label.upper().replace("-", "") == want), None)


def paper_marks(artifact: str, manifest: dict, paper: dict[PaperKey, float]) -> list[PaperMark]:
    """What the paper states about the figure: its sentences (the caption), the x it names (a dashed line), its
    average gap (the reference series shifted by it) and its axis ranges (shaded bands)."""
    marks = []
    for dataset, statement in figure_statements(artifact, manifest, paper):
        if statement.kind == "vline":
            marks.append(PaperMark(dataset, None, "vline", statement.value, statement.short))
        elif statement.kind == "gap" and (reference := _series_label(manifest, statement.series[1])):
            gap = (reference, statement.value)
            marks.append(PaperMark(dataset, statement.metric, "gap", gap, statement.short))
        marks.append(PaperMark(dataset, None, "note", statement.text, ""))
    for panel in manifest["panels"]:
        for metric, (low, high) in (panel.get("paper_ranges") or {}).items():
            label = f"paper's {metric} axis range"  # named: a twin-axis panel has two
            marks.append(PaperMark(panel["dataset"], metric, "yrange", (low, high), label))
    return marks


def qualitative_rows(manifest: dict) -> tuple[str, list[tuple[str, Any, str]]] | None:
    """Figure 3's left panel: each series' output for the one E2E item whose complete field set is the
    configured MR (the paper's "The Eagle | coffee shop | Chinese | cheap | ..."); none or several is an error."""
    spec = manifest.get("qualitative")
    if not spec:
        return None
    items = [
        json.loads(line) for line in Path(spec["items"]).read_text(encoding="utf-8").splitlines() if line
    ]
    index = find_item_by_mr([it["source"] for it in items], spec["mr"], spec["items"])
    rows = []
    for row in manifest["rows"]:
        for cell in row["cells"]:
            if cell["dataset"] != spec["dataset"] or not cell["runs"]:
                continue
            hyp = Path(cell["runs"][0]["scores"].replace(".scores.json", ".hyp.txt"))
            lines = hyp.read_text(encoding="utf-8").split("\n") if hyp.is_file() else []
            rows.append(
                (row["label"], cell["x"], lines[index] if index < len(lines) else "(not decoded yet)")
            )
    return items[index]["source"], rows


def _span(value: object) -> str:
    """``50–60`` for a (low, high) pair."""
    low, high = value  # type: ignore[misc]
    return f"{float(low):g}–{float(high):g}"


def build_figure(
    artifact: str,
    manifest: dict,
    paper: dict[PaperKey, float],
    heading: str,
    out: Path,
    demo: bool,
    claims: Sequence[tuple[str, str]] = (),
) -> tuple[str, list[dict]]:
    """Draw ``out``.png/.pdf; return the page's markdown (image, points, paper statements, text panel).

    ``claims``: (verdict, readable statement) pairs drawn as a strip under the figure's panels.
    """
    points, records = figure_points(manifest)
    panels = [
        Panel(
            p["dataset"],
            tuple(p["metrics"]),
            manifest.get("x_label", ""),
            tuple(y_label(p["dataset"], m) for m in p["metrics"]),
            title=f"{PAPER_DATASET[p['dataset']]} · {' & '.join(p['metrics'])}",
        )
        for p in manifest["panels"]
    ]
    marks = paper_marks(artifact, manifest, paper)
    png, pdf = out.with_suffix(".png"), out.with_suffix(".pdf")
    plot_figure(FIGURE_TITLES[artifact], panels, points, marks, png, pdf, demo, claims=claims)
    lines = [heading, "", f"![{artifact}]({out.name}.png)", "", "| series | dataset | metric | x | value |"]
    lines.append("|---|---|---|---|---|")
    for rec in records:
        lines.append(
            f"| {rec['series']} | {rec['dataset']} | {rec['metric']} | {rec['x']} | {rec.pop('text')} |"
        )
    lines += [
        "",
        "Each value: mean ± sd over the replicate runs (data subsamples × training seeds), n of planned.",
    ]
    notes = list(dict.fromkeys(f"- paper: {m.value}" for m in marks if m.kind == "note"))
    ranges = [
        f"- the paper's {PAPER_DATASET[m.dataset]} {m.metric} axis spans {_span(m.value)} (shaded in the figure)"
        for m in marks
        if m.kind == "yrange"
    ]
    if notes or ranges:
        lines += ["", "What the paper states (its figure values are not published as numbers):", ""]
        lines += notes + ranges
    if checkpoints := selection_markdown(manifest):
        lines += ["", checkpoints]
    panel = qualitative_rows(manifest)
    if panel:
        source, rows = panel
        lines += ["", "## Generated texts (the paper's left panel)", "", qualitative_markdown(source, rows)]
    return "\n".join(lines) + "\n", records
