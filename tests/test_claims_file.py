"""The claims file: schema errors name the file, the claim and the key; config/claims.yaml validates and its
selectors resolve against both configs; ``prefixtune claims`` end to end on constructed scores and run records."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from prefixtune.claims.spec import ClaimsError, check_claims, load_claims, validate_claims
from prefixtune.cli import main
from prefixtune.grid import report_manifest

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = ROOT / "config" / "claims.yaml"


def manifests(config_path: Path) -> dict:
    config = yaml.safe_load(config_path.read_text())
    return {a: report_manifest(config, a, "r/{run}/{split}.scores.json") for a in config["artifacts"]}


@pytest.mark.parametrize("config, strict", [("config.yaml", True), ("demo.yaml", False)])
def test_the_claims_file_validates_against_both_configs(config, strict):
    claims = load_claims(CLAIMS)
    check_claims(claims, manifests(ROOT / "config" / config), strict=strict, source=str(CLAIMS))
    ids = [c["id"] for c in claims]
    shared = ROOT.parent / "shared" / "paper" / "claims.md"
    if shared.is_file():  # every claim of the list is there, by id or split into sub-ids
        listed = [
            line.split("|")[1].strip()
            for line in shared.read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| id")
        ]
        for cid in listed:
            assert any(i == cid or i.startswith(cid + "-") for i in ids), cid
    for c in claims:
        st = c.get("statement", {})
        assert "untestable" in c or st, c["id"]


def test_the_paper_config_names_rows_it_runs():
    claims = load_claims(CLAIMS)
    broken = copy.deepcopy(claims)
    target = next(c for c in broken if c["id"] == "t2t-beats-light")
    target["statement"]["groups"][1][0]["row"] = "ADAPTER (7%)"
    with pytest.raises(
        ClaimsError, match=r"claim 't2t-beats-light', key statement.groups.1.0: no row of table1"
    ):
        check_claims(broken, manifests(ROOT / "config" / "config.yaml"), strict=True, source="claims.yaml")


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda c: c["statement"].pop("margin"),
            r"claim 'x', key statement: 'margin' is a required property",
        ),
        (lambda c: c["statement"].update(margin=-1), r"claim 'x', key statement.margin: -1 is less than"),
        (lambda c: c.update(versions=["v3"]), r"claim 'x', key versions.0: 'v3' is not one of"),
        (
            lambda c: c["statement"]["a"].update(colour="red"),
            r"claim 'x', key statement.a: Additional properties",
        ),
        (lambda c: c.update(untestable="why"), r"claim 'x', key \(top level\)"),
    ],
)
def test_schema_errors_name_the_file_claim_and_key(edit, message):
    claim = {
        "id": "x",
        "sections": ["§1"],
        "versions": ["arxiv_v1"],
        "text": "t",
        "artifact": "table1",
        "statement": {
            "kind": "comparable",
            "a": {"row": "A"},
            "b": {"row": "B"},
            "margin": 1.0,
            "margin_reason": "r",
        },
    }
    edit(claim)
    with pytest.raises(ClaimsError, match="^claims.yaml: " + message):
        validate_claims({"claims": [claim]}, "claims.yaml")


def test_duplicate_ids_are_an_error():
    claim = {
        "id": "x",
        "sections": ["§1"],
        "versions": ["arxiv_v1"],
        "text": "t",
        "artifact": "a",
        "untestable": "why",
    }
    with pytest.raises(ClaimsError, match="claim 'x': the id is used twice"):
        validate_claims({"claims": [claim, dict(claim)]}, "f.yaml")


def test_cli_writes_claims_md_csv_json(tmp_path):
    def scores(name: str, bleus: list[float]) -> list[dict]:
        runs = []
        for i, bleu in enumerate(bleus):
            folder = tmp_path / f"{name}{i}"
            folder.mkdir()
            (folder / "test.scores.json").write_text(json.dumps({"metrics": {"BLEU": bleu / 100}}))
            (folder / "run.json").write_text(json.dumps({"parameters": {"stored": 10}, "device": "cpu"}))
            runs.append(
                {"run": f"{name}{i}", "scores": str(folder / "test.scores.json"), "data_seed": i, "seed": 1}
            )
        return runs

    def row(label, runs, x=50):
        return {
            "label": label,
            "method": label,
            "model": "gpt2-medium",
            "ran": "tiny-gpt2",
            "param_pct": "",
            "setting": "full-data",
            "cells": [{"dataset": "e2e", "x": x, "runs": runs}],
        }

    manifest = {
        "kind": "figure",
        "datasets": ["e2e"],
        "splits": {"e2e": "test"},
        "x_paper": {},
        "rows": [row("PREFIX", scores("p", [60, 61.5, 62])), row("FINE-TUNE", scores("f", [50, 51, 52]))],
    }
    claims = {
        "claims": [
            {
                "id": "beats",
                "sections": ["§6.3"],
                "versions": ["arxiv_v1", "acl2021"],
                "text": "PREFIX beats FT",
                "artifact": "figure3",
                "paper": {"csv": {"artifact": "figure3", "metric": "BLEU_gap_mean"}},
                "statement": {
                    "kind": "difference",
                    "a": {"row": "PREFIX", "dataset": "e2e", "metric": "BLEU"},
                    "b": {"row": "FINE-TUNE", "dataset": "e2e", "metric": "BLEU"},
                },
            },
            {
                "id": "big",
                "sections": ["§6.1"],
                "versions": ["acl2021"],
                "text": "large rows",
                "artifact": "figure3",
                "statement": {
                    "kind": "difference",
                    "a": {"row": "PREFIX", "model": "gpt2-large", "dataset": "e2e", "metric": "BLEU"},
                    "b": {"row": "FINE-TUNE", "dataset": "e2e", "metric": "BLEU"},
                },
            },
            {
                "id": "faithful",
                "sections": ["§6.3"],
                "versions": ["arxiv_v1"],
                "text": "qualitative",
                "artifact": "figure3",
                "untestable": "eight texts, no measure",
            },
        ]
    }
    claims_file = tmp_path / "claims.yaml"
    claims_file.write_text(yaml.safe_dump(claims))
    out = tmp_path / "reports" / "claims.md"
    main(
        [
            "claims",
            "--claims",
            str(claims_file),
            "--manifests",
            json.dumps({"figure3": manifest}),
            "--paper",
            str(ROOT / "config" / "paper_results.csv"),
            "--out",
            str(out),
            "--demo",
            "--settings",
            json.dumps({"resamples": 50}),
        ]
    )
    text = out.read_text()
    assert text.startswith("> **DEMO**")
    assert "| ✅ holds | **beats**: PREFIX beats FT |" in text
    assert "+10.17 [" in text and "n=3" in text and "| 2.90 |" in text  # effect, interval, n, paper number
    assert "**big** (ACL 2021 only)" in text
    closing = text.split("## What this configuration cannot judge")[1]
    assert "**big**" in closing and "runs not in this configuration" in closing
    assert "**faithful**" in closing and "eight texts, no measure" in closing
    records = json.loads(out.with_suffix(".json").read_text())
    assert [c["verdict"] for c in records["claims"]] == ["holds", "inconclusive", "untestable"]
    assert sorted(records["claims"][0]["runs"]) == ["f0", "f1", "f2", "p0", "p1", "p2"]
    csv_text = out.with_suffix(".csv").read_text()
    assert csv_text.startswith("# DEMO") and "beats" in csv_text


def test_a_table_page_lists_its_claims_and_records_them(tmp_path):
    from prefixtune.report.build import build_report

    def e2e(name: str, bleu: float) -> str:
        path = tmp_path / name / "test.scores.json"
        path.parent.mkdir()
        path.write_text(
            json.dumps(
                {
                    "dataset": "e2e",
                    "metrics": {"BLEU": bleu, "NIST": 4.0, "METEOR": 0.3, "ROUGE_L": 0.5, "CIDEr": 1.0},
                }
            )
        )
        return str(path)

    def row(label, path):
        return {
            "label": label,
            "method": label.split()[0],
            "model": "gpt2-medium",
            "ran": "gpt2-medium",
            "param_pct": "",
            "setting": "full-data",
            "cells": [{"dataset": "e2e", "x": None, "runs": [{"run": label, "scores": path}]}],
        }

    manifest = {
        "kind": "table",
        "datasets": ["e2e"],
        "splits": {"e2e": "test"},
        "rows": [row("PREFIX", e2e("p", 0.7)), row("EMB-1", e2e("e", 0.5))],
    }
    claims_file = tmp_path / "claims.yaml"
    claims_file.write_text(
        yaml.safe_dump(
            {
                "claims": [
                    {
                        "id": "emb",
                        "sections": ["§7.2"],
                        "versions": ["arxiv_v1"],
                        "text": "EMB is worse than PREFIX",
                        "artifact": "table4",
                        "statement": {
                            "kind": "ordering",
                            "groups": [
                                [{"row": "PREFIX", "dataset": "e2e", "metric": "BLEU"}],
                                [{"row": "EMB-1", "dataset": "e2e", "metric": "BLEU"}],
                            ],
                        },
                    },
                    {
                        "id": "other",
                        "sections": ["§1"],
                        "versions": ["arxiv_v1"],
                        "text": "elsewhere",
                        "artifact": "table1",
                        "untestable": "n/a",
                    },
                ]
            }
        )
    )
    status = build_report(
        "table4",
        manifest,
        ROOT / "config/paper_results.csv",
        "arxiv_v1",
        tmp_path,
        demo=True,
        claims_file=claims_file,
        claims_settings={"resamples": 20},
    )
    page = (tmp_path / "table4.md").read_text()
    section = page.split("## Claims")[1]
    assert "EMB is worse than PREFIX" in section and "+20.00" in section and "elsewhere" not in section
    assert "emb" not in section.split("|")[2]  # the reader sees the statement, not ids or config keys
    assert status["claims"][0]["id"] == "emb" and status["claims"][0]["effect"] == pytest.approx(20)
    assert json.loads((tmp_path / "table4.json").read_text())["claims"][0]["verdict"] == "inconclusive"
