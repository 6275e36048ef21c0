"""The paper's result tables: each reproduced cell (mean ± sd over its runs) beside the published value.

One builder serves every table: an artifact's datasets (and swept values, Table 3's splits) give the columns,
each row names the paper cell it reproduces (method, model, parameter share, setting), and every cell gets a
verdict against the tolerance band of its metric (``report.tolerance`` in the config).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from prefixtune.data.xsum_validation import page_note
from prefixtune.report.cells import (
    METRICS,
    PAPER_DATASET,
    Aggregate,
    aggregate,
    fmt_aggregate,
    load_scores,
)
from prefixtune.report.paper import PaperKey

PAPER_ARTIFACT = {"appendix_dev_xsum": "appendix_dev"}
NOTES = {
    "e2e": "E2E BLEU, METEOR and ROUGE-L are ×100 (official e2e-metrics `-p`)",
    "webnlg": "WebNLG BLEU ×100, METEOR and TER fractions (S/U/A = seen/unseen/all; TER: lower is better)",
    "dart": "DART BLEU ×100, the rest fractions (TER: lower is better)",
    "xsum": "XSUM ROUGE F ×100 (rouge-score with stemming, mean over examples)",
}
SHORT = {"seen": "S", "unseen": "U", "all": "A"}


@dataclass(frozen=True)
class Column:
    dataset: str  # ours: e2e, webnlg, dart, xsum
    metric: str  # the paper's metric name
    decimals: int
    paper_split: str  # the paper CSV's split of the cell
    track: str | None = None  # WebNLG: seen / unseen / all
    x: Any = None  # a swept value (Table 3's split)
    setting: str | None = None  # the paper CSV's setting when the column fixes it (Table 3)

    @property
    def header(self) -> str:
        text = f"{PAPER_DATASET[self.dataset]} {self.metric}"
        text += f" {SHORT[self.track]}" if self.track and self.paper_split != "dev" else ""
        return text + (f" ({self.x})" if self.x is not None else "")


def columns_for(
    datasets: list[str], splits: dict[str, str], xs: list[Any], x_paper: dict[str, dict] | None = None
) -> list[Column]:
    """The columns of a table, in the paper's order (WebNLG test: each metric over seen/unseen/all)."""
    out = []
    for dataset in datasets:
        split = splits[dataset]
        for x in xs:
            paper = (x_paper or {}).get(str(x), {}) if x is not None else {}
            for metric, _path, _scale, decimals in METRICS[dataset]:
                if dataset == "webnlg" and split == "test":
                    out += [
                        Column(dataset, metric, decimals, f"test_{t}", t, x)
                        for t in ("seen", "unseen", "all")
                    ]
                    continue
                paper_split = {"dev": "validation"}.get(split, split) if dataset == "xsum" else split
                track = "all" if dataset == "webnlg" else None
                out.append(
                    Column(
                        dataset,
                        metric,
                        decimals,
                        paper.get("split", paper_split),
                        track,
                        x,
                        paper.get("setting"),
                    )
                )
    return out


def verdict(ours: float | None, paper: float | None, band: float | None) -> str:
    if ours is None or paper is None:
        return ""
    if band is None:
        return "no band"
    return "within" if abs(ours - paper) <= band + 1e-9 else "outside"


MARK = {"within": " ✓", "outside": " ✗", "no band": "", "": ""}


@dataclass(frozen=True)
class TableContext:
    artifact: str
    paper: dict[PaperKey, float]  # the primary version's cells
    other: dict[PaperKey, float]  # the other version's (shown where it differs)
    version: str
    other_version: str
    tolerance: dict[str, dict[str, float]]  # paper dataset -> metric -> band


def build_table(manifest: dict, ctx: TableContext, heading: str) -> tuple[str, list[dict]]:
    """Markdown (a compact ``ours / paper`` table, then every cell in detail) and long-format CSV records."""
    xs = list(dict.fromkeys(c["x"] for row in manifest["rows"] for c in row["cells"])) or [None]
    columns = columns_for(manifest["datasets"], manifest["splits"], xs, manifest.get("x_paper"))
    paper_artifact = PAPER_ARTIFACT.get(ctx.artifact, ctx.artifact)
    header = ["", "model"] + [c.header for c in columns]
    lines = [heading, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    details = [
        "| row | model | column | reproduced | n | paper | " + f"{ctx.other_version} | Δ | band | verdict |",
        "|" + "---|" * 10,
    ]
    records: list[dict] = []
    only_other_seen = False
    for row in manifest["rows"]:
        cells = {(c["dataset"], c["x"]): c for c in row["cells"]}
        loaded = {key: load_scores([r["scores"] for r in c["runs"]]) for key, c in cells.items()}
        model = row["model"] if row["ran"] == row["model"] else f"{row['ran']} (for {row['model']})"
        line = [row["label"], model]
        for col in columns:
            scores = loaded.get((col.dataset, col.x), [])
            agg = aggregate(scores, col.dataset, col.metric, col.track) if scores else Aggregate((), 0)
            key = PaperKey(
                paper_artifact,
                PAPER_DATASET[col.dataset],
                col.paper_split,
                row["method"],
                row["model"],
                row["param_pct"],
                col.setting or row["setting"],
                col.metric,
            )
            ref, other = ctx.paper.get(key), ctx.other.get(key)
            only_other = ref is None and other is not None  # e.g. ACL Table 9: in one version only
            if only_other:
                ref = other
            band = ctx.tolerance.get(PAPER_DATASET[col.dataset], {}).get(col.metric)
            result = verdict(agg.mean, ref, band)
            ours = "–" if agg.mean is None else f"{agg.mean:.{col.decimals}f}"
            line.append(f"{ours} / {_fmt(ref, col.decimals)}{'†' if only_other else ''}{MARK[result]}")
            only_other_seen = only_other_seen or only_other
            delta = None if agg.mean is None or ref is None else agg.mean - ref
            details.append(
                f"| {row['label']} | {model} | {col.header} | {fmt_aggregate(agg, col.decimals)}"
                + (f" ({agg.reason})" if agg.reason else "")
                + f" | {agg.n}/{agg.planned} | {_fmt(ref, col.decimals)}"
                + f" | {_fmt(other, col.decimals) if other is not None and other != ref else ''}"
                + f" | {_fmt(delta, col.decimals, signed=True)} | {'' if band is None else f'±{band:g}'}"
                + f" | {result} |"
            )
            records.append(
                {
                    "row": row["label"],
                    "model": row["model"],
                    "ran": row["ran"],
                    "dataset": PAPER_DATASET[col.dataset],
                    "split": col.paper_split,
                    "x": "" if col.x is None else col.x,
                    "metric": col.metric,
                    "reproduced": "" if agg.mean is None else repr(agg.mean),
                    "sd": repr(agg.sd) if agg.n else "",
                    "n": agg.n,
                    "planned": agg.planned,
                    "paper": "" if ref is None else repr(ref),
                    f"paper_{ctx.other_version}": "" if other is None else repr(other),
                    "delta": "" if delta is None else repr(delta),
                    "band": "" if band is None else repr(band),
                    "verdict": result,
                    "missing_reason": agg.reason or "",
                }
            )
        lines.append("| " + " | ".join(line) + " |")
    notes = "; ".join(NOTES[d] for d in manifest["datasets"])
    validation = manifest.get("xsum_validation")
    lines += [
        "",
        f"Each cell: reproduced (mean over its runs) / paper ({ctx.version}); ✓ within, ✗ outside the tolerance "
        f"band (the spread independent reruns saw, `report.tolerance` in the config); `–` = not run or not "
        f"computed. {notes}."
        + (
            f" † = the paper's value in {ctx.other_version} (the cell is not in {ctx.version})."
            if only_other_seen
            else ""
        ),
        *(["", page_note(validation)] if validation else []),
        "",
        "## Every cell",
        "",
        *details,
    ]
    return "\n".join(lines) + "\n", records


def _fmt(value: float | None, decimals: int, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def records_to_csv(records: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(records[0]) if records else ["row"])
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()
