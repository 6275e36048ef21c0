"""Report tables: each reproduced cell sits beside the right published number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prefixtune.report.build import build_report

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "config/paper_results.csv"


def write_scores(path: Path, metrics: dict) -> str:
    path.write_text(json.dumps({"metrics": metrics}))
    return str(path)


def test_table4_rows_meet_their_paper_cells(tmp_path):
    emb = write_scores(
        tmp_path / "emb.json", {"BLEU": 0.5, "NIST": 4.0, "METEOR": 0.3, "ROUGE_L": 0.5, "CIDEr": 1.0}
    )
    manifest = {
        "datasets": ["e2e"],
        "rows": [
            {
                "label": "EMB-1",
                "method": "EMB",
                "model": "gpt2-medium",
                "param_pct": "",
                "ran": "gpt2-medium",
                "setting": "full-data; prefix_len=1",
                "scores": {"e2e": emb},
            },
            {
                "label": "INFIX-20",
                "method": "INFIX",
                "model": "gpt2-medium",
                "param_pct": "",
                "setting": "full-data; prefix_len=20",
                "scores": {"e2e": None},
            },
        ],
    }
    md, csv = tmp_path / "t4.md", tmp_path / "t4.csv"
    build_report("table4", manifest, PAPER, "arxiv_v1", md, csv, demo=False)
    text = md.read_text()
    assert "| EMB-1 | gpt2-medium | 50.0 / 48.1 | 4.00 / 3.33 |" in text  # v1 Table 4 row EMB-1
    assert "| INFIX-20 | gpt2-medium | – / " in text
    assert "WebNLG" not in text and "Table 4" in text.splitlines()[0]


def test_table2_reads_rouge_from_the_xsum_scores(tmp_path):
    xsum = write_scores(
        tmp_path / "x.json", {"corpus_mean": {"rouge1": 40.0, "rouge2": 18.0, "rougeL": 33.0}}
    )
    manifest = {
        "datasets": ["xsum"],
        "rows": [
            {
                "label": "PREFIX (2%)",
                "method": "PREFIX",
                "model": "bart-large",
                "param_pct": "2",
                "scores": {"xsum": xsum},
            }
        ],
    }
    md = tmp_path / "t2.md"
    build_report("table2", manifest, PAPER, "arxiv_v1", md, tmp_path / "t2.csv", demo=True)
    text = md.read_text()
    assert text.startswith("> **DEMO**")
    assert "| PREFIX (2%) | bart-large | 40.00 / 43.80 | 18.00 / 20.93 | 33.00 / 36.05 |" in text


def test_unknown_artifact_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown artifact 'table9'"):
        build_report(
            "table9", {"datasets": [], "rows": []}, PAPER, "arxiv_v1", tmp_path / "a", tmp_path / "b", False
        )
