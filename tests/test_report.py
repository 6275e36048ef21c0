"""Reports: each reproduced cell (mean ± sd over its runs) sits beside the right published number, with a verdict;
figures draw their points; the index lists every artifact's status."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from prefixtune.data.errors import DataError
from prefixtune.report.build import build_report
from prefixtune.report.compute import build_compute
from prefixtune.report.index import build_index

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "config/paper_results.csv"
E2E_BANDS = {"E2E": {"BLEU": 1.0, "NIST": 0.1, "METEOR": 0.5, "ROUGE-L": 0.5, "CIDEr": 0.08}}


def write_scores(path: Path, metrics: dict, **extra: object) -> str:
    path.write_text(json.dumps({"metrics": metrics, **extra}))
    return str(path)


def row(label, method, scores_by_dataset, model="gpt2-medium", param_pct="", setting="full-data", x=None):
    return {
        "label": label,
        "method": method,
        "model": model,
        "ran": model,
        "param_pct": param_pct,
        "setting": setting,
        "cells": [
            {
                "dataset": d,
                "x": x,
                "runs": [{"run": f"{label}-{i}", "scores": p} for i, p in enumerate(paths)],
            }
            for d, paths in scores_by_dataset.items()
        ],
    }


def manifest(datasets, rows, split="test", **extra):
    return {
        "kind": "table",
        "datasets": datasets,
        "splits": {d: split for d in datasets},
        "rows": rows,
        **extra,
    }


def e2e(path: Path, bleu: float) -> str:
    return write_scores(path, {"BLEU": bleu, "NIST": 4.0, "METEOR": 0.3, "ROUGE_L": 0.5, "CIDEr": 1.0})


def test_table4_rows_meet_their_paper_cells_with_verdicts(tmp_path):
    emb = e2e(tmp_path / "emb.json", 0.485)
    rows = [
        row("EMB-1", "EMB", {"e2e": [emb]}, setting="full-data; prefix_len=1"),
        row(
            "INFIX-20", "INFIX", {"e2e": [str(tmp_path / "not-yet.json")]}, setting="full-data; prefix_len=20"
        ),
    ]
    status = build_report(
        "table4", manifest(["e2e"], rows), PAPER, "arxiv_v1", tmp_path, False, E2E_BANDS, "ab" * 32
    )
    text = (tmp_path / "table4.md").read_text()
    assert "| EMB-1 | gpt2-medium | 48.5 / 48.1 ✓ | 4.00 / 3.33 ✗ |" in text  # v1 Table 4 row EMB-1
    assert "| INFIX-20 | gpt2-medium | – / " in text
    assert "| EMB-1 | gpt2-medium | E2E BLEU | 48.5 | 1/1 | 48.1 |  | +0.4 | ±1 | within |" in text
    assert "WebNLG" not in text and "Table 4" in text.splitlines()[0]
    assert status["status"] == "partial" and (status["runs_scored"], status["runs_planned"]) == (1, 2)
    assert json.loads((tmp_path / "table4.json").read_text())["config_hash"] == "ab" * 32


def test_replicates_give_mean_sd_and_n_and_the_acl_value_where_it_differs(tmp_path):
    paths = [e2e(tmp_path / f"p{i}.json", b) for i, b in enumerate((0.70, 0.72))]
    rows = [
        row("PREFIX (0.1%)", "PREFIX", {"e2e": paths + [str(tmp_path / "missing.json")]}, param_pct="0.1")
    ]
    build_report("table1", manifest(["e2e"], rows), PAPER, "arxiv_v1", tmp_path, False, E2E_BANDS)
    text = (tmp_path / "table1.md").read_text()
    # mean 71.0 ± 1.4 over 2 of 3 runs; paper v1 69.7, ACL 70.3 (the cells that changed between versions)
    cell = "| E2E BLEU | 71.0 ± 1.4 (n=2 of 3) | 2/3 | 69.7 | 70.3 | +1.3 | ±1 | outside |"
    assert f"| PREFIX (0.1%) | gpt2-medium {cell}" in text
    csv_lines = (tmp_path / "table1.csv").read_text().splitlines()
    assert csv_lines[0].startswith(
        "row,model,ran,dataset,split,x,metric,reproduced,sd,n,planned,paper,paper_acl2021"
    )


def test_a_cell_in_one_paper_version_only_is_shown_and_marked(tmp_path):
    rows = [row("PREFIX (0.1%)", "PREFIX", {"e2e": [e2e(tmp_path / "d.json", 0.75)]}, param_pct="0.1")]
    build_report(
        "appendix_dev", manifest(["e2e"], rows, split="dev"), PAPER, "arxiv_v1", tmp_path, False, E2E_BANDS
    )
    text = (tmp_path / "appendix_dev.md").read_text()
    assert "| PREFIX (0.1%) | gpt2-medium | 75.0 / 74.8† ✓ |" in text  # ACL Table 9 (dev) has no v1 version
    assert "† = the paper's value in acl2021" in text


@pytest.mark.parametrize(
    ("protocol", "used"),
    [
        ({"articles": 500, "reference_max_tokens": 60}, "the first 500 validation articles, each scored against "
         "its reference cut at 60 tokens (the protocol of the authors' validation loop during training)"),
        ({"articles": "all", "reference_max_tokens": 100}, "every validation article, each scored against its "
         "reference cut at 100 tokens (the authors' test-time protocol applied to the validation set)"),
    ],
)  # fmt: skip
def test_table7_page_says_which_validation_protocol_scored_it(tmp_path, protocol, used):
    import yaml

    from prefixtune.grid import report_manifest

    config = yaml.safe_load((ROOT / "config/config.yaml").read_text(encoding="utf-8"))
    assert config["scoring"]["xsum_validation"] == {"articles": 500, "reference_max_tokens": 60}
    config["scoring"]["xsum_validation"] = protocol
    fig = report_manifest(config, "appendix_dev_xsum", str(tmp_path / "{run}.{split}.json"))
    assert fig["xsum_validation"] == protocol
    assert "xsum_validation" not in report_manifest(config, "table2", "{run}.{split}.json")  # test split
    build_report("appendix_dev_xsum", fig, PAPER, "acl2021", tmp_path, False)
    text = (tmp_path / "appendix_dev_xsum.md").read_text()
    note = next(line for line in text.splitlines() if line.startswith("XSUM validation scores:"))
    assert used in note
    assert "Which protocol produced the paper's validation table is not known" in note
    assert not any(
        key in note for key in ("xsum_validation", "reference_max_tokens", "articles:", "scoring.")
    )


def test_table2_reads_rouge_and_table3_reads_its_split_columns(tmp_path):
    xsum = write_scores(
        tmp_path / "x.json", {"corpus_mean": {"rouge1": 40.0, "rouge2": 18.0, "rougeL": 33.0}}
    )
    rows = [row("PREFIX (2%)", "PREFIX", {"xsum": [xsum]}, model="bart-large", param_pct="2")]
    build_report("table2", manifest(["xsum"], rows), PAPER, "arxiv_v1", tmp_path, True)
    text = (tmp_path / "table2.md").read_text()
    assert text.startswith("> **DEMO**")
    assert "| PREFIX (2%) | bart-large | 40.00 / 43.80 | 18.00 / 20.93 | 33.00 / 36.05 |" in text
    sports = write_scores(
        tmp_path / "s.json", {"corpus_mean": {"rouge1": 39.0, "rouge2": 16.0, "rougeL": 31.0}}
    )
    x_paper = {
        "news_sports": {"split": "test_sports", "setting": "extrapolation news-to-sports"},
        "within_news": {"split": "test_other-news", "setting": "extrapolation within-news"},
    }
    ft = row(
        "FINE-TUNE", "FINETUNE", {"xsum": [sports]}, model="bart-large", param_pct="100", x="news_sports"
    )
    ft["cells"].append({"dataset": "xsum", "x": "within_news", "runs": []})
    build_report("table3", manifest(["xsum"], [ft], x_paper=x_paper), PAPER, "arxiv_v1", tmp_path, False)
    text = (tmp_path / "table3.md").read_text()
    assert "XSUM ROUGE-1 (news_sports)" in text and "XSUM ROUGE-L (within_news)" in text
    assert "| FINE-TUNE | bart-large | 39.00 / 38.15 | 16.00 / 15.51 | 31.00 / 30.26 | – / 39.20 |" in text


def test_a_metric_that_could_not_run_says_why(tmp_path):
    dart = write_scores(
        tmp_path / "d.json",
        {"BLEU": 46.0, "METEOR": 0.39, "TER": 0.46},
        unavailable={"BLEURT": "no checkpoint"},
    )
    rows = [row("PREFIX (0.1%)", "PREFIX", {"dart": [dart]}, param_pct="0.1")]
    build_report("table1", manifest(["dart"], rows), PAPER, "arxiv_v1", tmp_path, False)
    text = (tmp_path / "table1.md").read_text()
    assert "| DART BLEURT | – (no checkpoint) |" in text


def test_figure_report_draws_points_and_quotes_the_texts(tmp_path):
    items = tmp_path / "dev.jsonl"
    sources = (
        "name : Aromi",
        "name : The Eagle | food : Chinese | near : Burger King",
        "name : The Eagle | food : Chinese",
    )
    items.write_text("".join(json.dumps({"source": s}) + "\n" for s in sources))
    cells = []
    for size, bleus in ((50, (0.4, 0.5)), (100, (0.6, 0.62))):
        runs = []
        for i, bleu in enumerate(bleus):
            scores = tmp_path / f"r{size}-{i}.dev.scores.json"
            e2e(scores, bleu)
            scores.with_name(scores.name.replace(".scores.json", ".hyp.txt")).write_text(
                f"Aromi text\nThe Eagle near Burger King\nThe Eagle at {size} | with a pipe\n"
            )
            runs.append({"run": f"r{size}-{i}", "scores": str(scores)})
        cells.append({"dataset": "e2e", "x": size, "runs": runs})
    fig = {
        "kind": "figure",
        "datasets": ["e2e"],
        "splits": {"e2e": "dev"},
        "x_label": "training examples",
        "panels": [{"dataset": "e2e", "metrics": ["BLEU"], "paper_ranges": {"BLEU": [50, 60]}}],
        "qualitative": {"dataset": "e2e", "mr": "name[The Eagle], food[Chinese]", "items": str(items)},
        "rows": [{**row("PREFIX", "PREFIX", {}), "cells": cells}],
    }
    status = build_report("figure3", fig, PAPER, "arxiv_v1", tmp_path, True)
    assert (tmp_path / "figure3.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "figure3.pdf").read_bytes()[:4] == b"%PDF"
    text = (tmp_path / "figure3.md").read_text()
    assert "| PREFIX | E2E | BLEU | 50 | 45.0 ± 7.1 (n=2) |" in text
    assert "The Eagle at 100 \\| with a pipe" in text  # the first replicate's output for exactly these fields
    assert "name : The Eagle \\| food : Chinese" in text and "Burger King" not in text
    # the paper's stated average gap, as a sentence (never the results file's metric key)
    assert "- paper: PREFIX beats FINE-TUNE by 2.9 BLEU on average over training sizes 50–500 (E2E)\n" in text
    assert "BLEU_gap_mean" not in text
    assert status["status"] == "complete" and status["kind"] == "figure"
    # an items file without the configured item (or with it twice) stops the page, naming the file
    items.write_text(json.dumps({"source": "name : The Eagle"}) + "\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(items))}: items: expected exactly one item"):
        build_report("figure3", fig, PAPER, "arxiv_v1", tmp_path, True)


def test_figure6_marks_the_acl_crossover_even_against_v1(tmp_path):
    scores = e2e(tmp_path / "p.json", 0.66)
    fig = {
        "kind": "figure",
        "datasets": ["e2e"],
        "splits": {"e2e": "test"},
        "x_label": "% of the E2E training set",
        "panels": [{"dataset": "e2e", "metrics": ["BLEU"]}],
        "qualitative": None,
        "rows": [
            {
                **row("PREFIX", "PREFIX", {}),
                "cells": [{"dataset": "e2e", "x": 20, "runs": [{"run": "r", "scores": scores}]}],
            }
        ],
    }
    build_report("figure6", fig, PAPER, "arxiv_v1", tmp_path, False)
    text = (tmp_path / "figure6.md").read_text()
    assert "- paper: PREFIX better than FINE-TUNE above 20 % of the E2E training data\n" in text
    assert "crossover_train_pct" not in text


def test_index_lists_every_artifact_with_status_and_gpu_hours(tmp_path):
    run_dir = tmp_path / "runs" / "e2e-gpt2-medium-prefix"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(
        json.dumps(
            {
                "wall_time_s": 7200.0,
                "device": "NVIDIA H100",
                "training": {"steps": 1000, "seconds_per_step": 7.0},
            }
        )
    )
    (run_dir / "test.hyp.json").write_text(json.dumps({"wall_time_s": 36.0, "device": "NVIDIA H100"}))
    jobs = [
        {
            "run": "e2e-gpt2-medium-prefix",
            "train": str(run_dir / "run.json"),
            "decode": str(run_dir / "test.hyp.json"),
        }
    ]
    for name, status, scored in (("table1", "complete", 21), ("figure3", "partial", 40)):
        record = {
            "artifact": name,
            "title": name.title(),
            "kind": "table",
            "status": status,
            "runs_scored": scored,
            "runs_planned": 21 if name == "table1" else 160,
            "git_commit": "abc123",
            "config_hash": "f" * 64,
            "jobs": jobs
            if name == "table1"
            else [{"run": "x", "train": "/none/run.json", "decode": "/none/t.json"}],
        }
        (tmp_path / f"{name}.json").write_text(json.dumps(record))
    status = [tmp_path / "table1.json", tmp_path / "figure3.json"]
    text = build_index(status, tmp_path / "index.md")
    assert "| [Table1](table1.md) | complete | 21 of 21 | 2.01 | `abc123` | `ffffffffffff` |" in text
    assert "| [Figure3](figure3.md) | partial | 40 of 160 | 0.00 | `abc123` | `ffffffffffff` |" in text
    assert (tmp_path / "index.md").read_text() == text

    ledger = build_compute(status, tmp_path / "compute.md")
    assert "| [Table1](table1.md) | 1 of 1 | 2.00 h | 36 s | 2.01 |" in ledger
    assert "| [Figure3](figure3.md) | 0 of 1 | 0 s | 0 s | 0.00 |" in ledger
    assert "| e2e-gpt2-medium-prefix | NVIDIA H100 | 1000 | 7.000 | 1 | 2.00 h | – | 36 s | 2.010 |" in ledger
    assert "| x | – | – | – | – | – | – | – | 0.000 |" in ledger
    assert "Every run once: 2 runs, train 2.00 h in 1 attempt, decode 36 s, 2.01 GPU-hours." in ledger


def test_unknown_artifact_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown artifact 'table9'"):
        build_report("table9", manifest([], []), PAPER, "arxiv_v1", tmp_path, False)
