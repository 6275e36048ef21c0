"""reports/claims.md (+ .csv, .json) and the "Claims" section of a table or figure page."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from typing import Any

from prefixtune.claims.engine import UNTESTABLE, cannot_judge
from prefixtune.claims.verdict import Verdict

MARK = {
    "holds": "✅ holds",
    "fails": "❌ fails",
    "inconclusive": "❔ inconclusive",
    UNTESTABLE: "— not testable",
}
VERSION_WORDS = {"arxiv_v1": "arXiv v1", "acl2021": "ACL 2021"}


def fmt(value: float | None, signed: bool = True) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞"
    size, sign = abs(value), "+" if signed else ""
    if size < 0.0005:
        return "0.000"  # no "-0.000"
    if size >= 100:
        return f"{value:,.0f}"
    return f"{value:{sign}.3f}" if size < 1 else f"{value:{sign}.2f}"


def _signed(v: Verdict) -> bool:
    """Differences carry a sign; ratios and measured values do not."""
    return not (v.method.startswith(("measured", "F interval")) or "ratio" in v.unit)


def effect_text(v: Verdict, confidence: float) -> str:
    """``+1.23 [0.40, 2.10] (95 %, t over replicates, n=10)``; several parts: one per part."""
    if v.parts and len(v.parts) > 1:
        return "; ".join(f"{p.label}: {effect_text(p, confidence)}" for p in v.parts)
    if v.effect is None or (isinstance(v.effect, float) and math.isnan(v.effect)):
        return "–"
    s = _signed(v)
    if v.low is None or v.high is None:
        return f"{fmt(v.effect, s)} (no interval)"
    if v.low == v.high:
        return f"{fmt(v.effect, s)} ({v.method})"
    return f"{fmt(v.effect, s)} [{fmt(v.low, s)}, {fmt(v.high, s)}] ({confidence:.0%}, {v.method}, n={v.n})"


def paper_text(v: Verdict) -> str:
    parts = []
    if v.paper_text or v.paper is not None:
        parts.append(v.paper_text or fmt(v.paper, False))
    if v.paper_from_cells is not None:
        parts.append(f"{fmt(v.paper_from_cells)} from the paper's table cells")
    return "; ".join(parts) or "–"


def runs_text(runs: list[str], limit: int = 4) -> str:
    if not runs:
        return "–"
    shown = ", ".join(f"`{r}`" for r in runs[:limit])
    return shown + (f" … (+{len(runs) - limit})" if len(runs) > limit else "")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def claims_markdown(
    claims: list[dict[str, Any]], verdicts: list[Verdict], version: str, confidence: float, banner: str = ""
) -> str:
    by_id = {c["id"]: c for c in claims}
    counts = {k: sum(v.verdict == k for v in verdicts) for k in MARK}
    lines = [banner, ""] if banner else []
    lines += [
        f"# The paper's claims and their verdicts; paper: {VERSION_WORDS.get(version, version)}",
        "",
        f"{len(verdicts)} claims: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n) + ".",
        "",
        f"**holds**: the {confidence:.0%} interval of the reproduced effect lies on the claim's side of its "
        "boundary (and inside the margin, for a size or a comparability); **fails**: it lies wholly on the other "
        "side; **inconclusive**: it straddles the boundary, or runs are missing, or there is no interval. Effects "
        "are advantages (TER: its reduction). Intervals: over replicates (subsamples × seeds, paired; t), or a "
        "paired bootstrap over the test items for single runs.",
    ]
    sections: dict[str, list[tuple[dict, Verdict]]] = {}
    for v in verdicts:
        claim = by_id[v.id]
        sections.setdefault(claim["sections"][0], []).append((claim, v))
    for section, items in sorted(sections.items(), key=lambda kv: _section_order(kv[0])):
        lines += [
            "",
            f"## {section}",
            "",
            "| verdict | claim | effect | paper | runs |",
            "|---|---|---|---|---|",
        ]
        for claim, v in items:
            if v.verdict == UNTESTABLE:
                continue
            only = " (ACL 2021 only)" if claim["versions"] == ["acl2021"] else ""
            text = f"**{claim['id']}**{only}: {claim['text']}" + (
                f" *{claim['note']}*" if claim.get("note") else ""
            )
            verdict = MARK[v.verdict] + (f": {v.reason}" if v.reason else "")
            unit = f" ({v.unit})" if v.unit else ""
            lines.append(
                f"| {_cell(verdict)} | {_cell(text)} | {_cell(effect_text(v, confidence) + unit)} | "
                f"{_cell(paper_text(v))} | {runs_text(v.runs)} |"
            )
        if all(v.verdict == UNTESTABLE for _, v in items):
            lines.pop(-1)
            lines.pop(-1)
            lines.append("(no testable claim; see below)")
    unjudged = [(by_id[v.id], v) for v in verdicts if cannot_judge(v)]
    lines += ["", "## What this configuration cannot judge", ""]
    if not unjudged:
        lines.append("Nothing: every claim has a statement this configuration can test.")
    for claim, v in unjudged:
        why = v.reason if v.verdict == UNTESTABLE else _absence(v)
        lines.append(f"- **{claim['id']}** ({', '.join(claim['sections'])}): {claim['text']} — {why}")
    return "\n".join(lines) + "\n"


def _section_order(section: str) -> tuple:
    """Abstract first, then §1, §2, ..., §7.5, §9 in the paper's order."""
    numbers = [int(n) for n in re.findall(r"\d+", section)]
    return (0 if section.startswith("Abstract") else 1, numbers or [999])


def _absence(v: Verdict) -> str:
    reasons = [p.reason for p in v.parts if p.reason] or [v.reason]
    return "; ".join(dict.fromkeys(reasons))


def records(claims: list[dict[str, Any]], verdicts: list[Verdict]) -> list[dict[str, Any]]:
    by_id = {c["id"]: c for c in claims}
    out = []
    for v in verdicts:
        claim = by_id[v.id]
        out.append(
            {
                "id": v.id,
                "sections": " ".join(claim["sections"]),
                "versions": " ".join(claim["versions"]),
                "artifact": claim["artifact"],
                "verdict": v.verdict,
                "reason": v.reason,
                "claim": claim["text"],
                "effect": "" if v.effect is None else repr(v.effect),
                "low": "" if v.low is None else repr(v.low),
                "high": "" if v.high is None else repr(v.high),
                "n": v.n,
                "method": v.method,
                "unit": v.unit,
                "parts": " ; ".join(
                    f"{p.label}: {p.verdict} {fmt(p.effect)} [{fmt(p.low)}, {fmt(p.high)}]" for p in v.parts
                )
                if len(v.parts) > 1
                else "",
                "paper": "" if v.paper is None else repr(v.paper),
                "paper_from_cells": "" if v.paper_from_cells is None else repr(v.paper_from_cells),
                "runs": " ".join(v.runs),
                "missing": " ".join(v.missing),
            }
        )
    return out


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["id"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _clean(value: Any) -> Any:  # noqa: ANN401
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def to_json(
    claims: list[dict[str, Any]], verdicts: list[Verdict], settings: dict[str, Any], version: str
) -> str:
    by_id = {c["id"]: c for c in claims}
    payload = {
        "paper_version": version,
        "settings": settings,
        "claims": [{**_clean(v.to_dict()), "claim": by_id[v.id]} for v in verdicts],
    }
    return json.dumps(payload, indent=2, sort_keys=False) + "\n"


def page_section(claims: list[dict[str, Any]], verdicts: list[Verdict], confidence: float) -> str:
    """The "Claims" section of a table or figure page (empty when the page has none)."""
    if not verdicts:
        return ""
    by_id = {c["id"]: c for c in claims}
    lines = ["", "## Claims", "", "| verdict | claim | effect | paper |", "|---|---|---|---|"]
    for v in verdicts:
        claim = by_id[v.id]
        verdict = MARK[v.verdict] + (f": {v.reason}" if v.reason else "")
        effect = (
            "–"
            if v.verdict == UNTESTABLE
            else effect_text(v, confidence) + (f" ({v.unit})" if v.unit else "")
        )
        lines.append(
            f"| {_cell(verdict)} | {_cell(claim['text'])} | {_cell(effect)} | {_cell(paper_text(v))} |"
        )
    lines += ["", "All claims and how they are judged: [claims.md](claims.md)."]
    return "\n".join(lines) + "\n"


def strip_pairs(claims: list[dict[str, Any]], verdicts: list[Verdict]) -> list[tuple[str, str]]:
    """(verdict, one-line statement) pairs for a figure's claims strip."""
    by_id = {c["id"]: c for c in claims}
    return [(v.verdict, by_id[v.id]["text"]) for v in verdicts if v.verdict != UNTESTABLE]
