"""Evaluate claims: statement -> verdict (kinds.py), with the paper's number (the CSV row a claim names, or the
same comparison computed from the paper's own table cells)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from prefixtune.claims.evidence import Cell, Resolver, Store, advantage_pairs, pair_cells
from prefixtune.claims.kinds import evaluate_statement
from prefixtune.claims.verdict import INCONCLUSIVE, Verdict
from prefixtune.report.cells import PAPER_DATASET
from prefixtune.report.paper import VERSIONS, PaperKey, load_paper_results

UNTESTABLE = "untestable"
PAPER_ARTIFACT = {"appendix_dev_xsum": "appendix_dev"}
# why a configuration cannot judge a claim (the closing list of claims.md)
CANNOT_JUDGE = (
    "not in this configuration",
    "not run in this configuration",
    "stand-in",
    "on a CPU",
    "not recorded",
)


def settings_from(report_claims: dict[str, Any] | None) -> dict[str, Any]:
    """report.claims from the config, with the defaults."""
    got = dict(report_claims or {})
    return {
        "resamples": int(got.get("resamples", 1000)),
        "seed": int(got.get("seed", 12345)),
        "confidence": float(got.get("confidence", 0.95)),
    }


class PaperNumbers:
    """The paper CSV of one version (the other version as a fallback, marked)."""

    def __init__(self, path: Path | str, version: str):
        self.version = version
        other = next(v for v in VERSIONS if v != version)
        self.cells = {**load_paper_results(Path(path), other), **load_paper_results(Path(path), version)}
        self.rows: list[dict[str, str]] = []
        with open(path, newline="", encoding="utf-8") as handle:
            self.rows = list(csv.DictReader(handle))

    def text_value(self, spec: dict[str, str]) -> float | None:
        for version in (self.version, *[v for v in VERSIONS if v != self.version]):
            for row in self.rows:
                if (
                    row["version"] == version
                    and row["artifact"] == spec["artifact"]
                    and row["metric"] == spec["metric"]
                    and ("dataset" not in spec or row["dataset"] == spec["dataset"])
                ):
                    try:
                        return float(row["value"])
                    except ValueError:
                        return None
        return None

    def cell(self, cell: Cell, manifest: dict) -> float | None:
        """The paper's published value of a reproduced cell (tables only)."""
        if cell.metric is None or manifest.get("kind", "table") != "table":
            return None
        split = manifest["splits"][cell.dataset]
        paper_split, setting = split, cell.row.get("setting") or "full-data"
        if cell.dataset == "webnlg" and split == "test":
            paper_split = f"test_{cell.track or 'all'}"
        elif cell.dataset == "xsum":
            paper_split = {"dev": "validation"}.get(split, split)
        if cell.x is not None:
            x_paper = (manifest.get("x_paper") or {}).get(str(cell.x), {})
            paper_split, setting = x_paper.get("split", paper_split), x_paper.get("setting", setting)
        key = PaperKey(
            PAPER_ARTIFACT.get(cell.artifact, cell.artifact),
            PAPER_DATASET[cell.dataset],
            paper_split,
            cell.row["method"],
            cell.row["model"],
            cell.row["param_pct"],
            setting,
            cell.metric,
        )
        return self.cells.get(key)


def paper_effect(claim: dict, resolver: Resolver, paper: PaperNumbers) -> float | None:
    """A difference / comparable claim's effect computed from the paper's own table cells (their mean)."""
    st = claim.get("statement", {})
    if st.get("kind") not in ("difference", "comparable") or st.get("each"):
        return None
    try:
        pairs = pair_cells(resolver.expand(st["a"], "statement.a"), resolver.expand(st["b"], "statement.b"))
    except ValueError:
        return None
    if len({a.metric for a, _ in pairs}) > 1:
        return None  # one number only for one metric
    values = []
    for a, b, _ in advantage_pairs([(a, b, 1.0) for a, b in pairs]):
        va = paper.cell(a, resolver.manifests[a.artifact])
        vb = paper.cell(b, resolver.manifests[b.artifact])
        if va is None or vb is None:
            return None
        values.append(va - vb)
    if not values:
        return None
    effect = sum(values) / len(values)
    return -effect if st.get("direction") == "worse" else effect


def evaluate_claims(
    claims: list[dict[str, Any]],
    manifests: dict[str, dict],
    settings: dict[str, Any],
    paper: PaperNumbers | None = None,
    strict: bool = False,
    store: Store | None = None,
) -> list[Verdict]:
    """One verdict per claim, in file order; untestable claims get verdict "untestable" and their reason."""
    store = store or Store()
    out = []
    for claim in claims:
        if "statement" not in claim:
            verdict = Verdict(id=claim["id"], verdict=UNTESTABLE, reason=claim["untestable"])
        else:
            resolver = Resolver(manifests, strict=strict, claim=claim)
            verdict = evaluate_statement(claim, resolver, store, settings)
            if paper is not None:
                verdict.paper_from_cells = paper_effect(claim, resolver, paper)
        spec = claim.get("paper") or {}
        verdict.paper = spec.get("value")
        if verdict.paper is None and "csv" in spec and paper is not None:
            verdict.paper = paper.text_value(spec["csv"])
        verdict.paper_text = spec.get("text", "")
        if verdict.effect is not None and math.isnan(verdict.effect):
            verdict.effect = None
        out.append(verdict)
    return out


def cannot_judge(verdict: Verdict) -> bool:
    """An inconclusive verdict that says the configuration (not the evidence) is what is missing."""
    if verdict.verdict == UNTESTABLE:
        return True
    if verdict.verdict != INCONCLUSIVE:
        return False
    reasons = [verdict.reason] + [p.reason for p in verdict.parts]
    return any(any(flag in (r or "") for flag in CANNOT_JUDGE) for r in reasons)
