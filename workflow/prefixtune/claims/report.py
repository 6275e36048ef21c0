"""The two entry points: every claim (``prefixtune claims`` -> reports/claims.{md,csv,json}) and one page's
claims (the table and figure report rule)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefixtune.claims.engine import PaperNumbers, evaluate_claims
from prefixtune.claims.render import claims_markdown, page_section, records, strip_pairs, to_csv, to_json
from prefixtune.claims.spec import check_claims, load_claims, selectors
from prefixtune.claims.verdict import INCONCLUSIVE, Verdict
from prefixtune.provenance import write_text_atomic


def write_claims_report(
    claims_file: Path,
    manifests: dict[str, dict],
    paper_csv: Path,
    version: str,
    settings: dict[str, Any],
    out_md: Path,
    demo: bool = False,
    banner: str = "",
) -> list[Verdict]:
    """Write ``out_md`` and the .csv / .json beside it; selectors are checked strictly at paper scale."""
    claims = load_claims(claims_file)
    check_claims(claims, manifests, strict=not demo, source=str(claims_file))
    verdicts = evaluate_claims(claims, manifests, settings, PaperNumbers(paper_csv, version), strict=not demo)
    csv_text = to_csv(records(claims, verdicts))
    if demo:
        csv_text = (
            "# DEMO: offline demo numbers (tiny model, synthetic data), not comparable to the paper\n"
            + csv_text
        )
    write_text_atomic(out_md.with_suffix(".csv"), csv_text)
    write_text_atomic(out_md.with_suffix(".json"), to_json(claims, verdicts, settings, version))
    write_text_atomic(out_md, claims_markdown(claims, verdicts, version, settings["confidence"], banner))
    return verdicts


def page_claims(
    claims_file: Path,
    artifact: str,
    manifest: dict,
    paper_csv: Path,
    version: str,
    settings: dict[str, Any],
    demo: bool = False,
) -> tuple[str, list[dict[str, Any]], list[tuple[str, str]]]:
    """(markdown section, status records, figure strip pairs) of the claims listed under one artifact, judged
    from that artifact's own runs; a claim that also rests on another artifact is judged in claims.md only."""
    claims = [c for c in load_claims(claims_file) if c["artifact"] == artifact]
    if not claims:
        return "", [], []
    manifests = {artifact: manifest}
    own = [
        c
        for c in claims
        if all(s.get("artifact", artifact) == artifact for _, s in selectors(c.get("statement", {})))
    ]
    check_claims(own, manifests, strict=not demo, source=str(claims_file))
    verdicts = {
        v.id: v
        for v in evaluate_claims(own, manifests, settings, PaperNumbers(paper_csv, version), strict=not demo)
    }
    ordered = [
        verdicts.get(c["id"])
        or Verdict(id=c["id"], verdict=INCONCLUSIVE, reason="rests on another page's runs: see claims.md")
        for c in claims
    ]
    status = [
        {
            "id": v.id,
            "verdict": v.verdict,
            "reason": v.reason,
            "effect": v.effect,
            "low": v.low,
            "high": v.high,
            "n": v.n,
            "method": v.method,
        }
        for v in ordered
    ]
    return page_section(claims, ordered, settings["confidence"]), status, strip_pairs(claims, ordered)
