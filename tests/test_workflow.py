"""The Snakemake workflow plans the paper-scale jobs (locally and through the SLURM profile) and lints clean."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def snakemake(*args: str, cwd: Path = ROOT, timeout: int = 300) -> str:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    result = subprocess.run(
        [str(BIN / "snakemake"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.mark.parametrize("profile", [[], ["--profile", "slurm"]], ids=["local", "slurm"])
def test_paper_scale_dry_run_plans_table1(profile):
    out = snakemake("-n", "-p", "reports/table1.md", *profile)
    counts = job_counts(out)
    # 7 rows x 3 datasets; FINETUNE and FT-TOP2 (full weights, temporary) are train_full_weights jobs
    assert counts["train"] + counts["train_full_weights"] == 21 and counts["train_full_weights"] == 9
    assert counts["decode"] == 21 and counts["score"] == 21
    assert counts["download"] == 9 and counts["base_model"] == 2 and counts["prepare"] == 3
    assert "openai-community/gpt2-medium" in out and "openai-community/gpt2-large" in out
    assert "https://raw.githubusercontent.com/XiangLi1999/PrefixTuning/" in out
    assert '"learning_rate": 8e-05' in out  # E2E PREFIX, paper Table 5
    if profile:
        assert "gpu=1" in out


def test_gpu_smoke_target_plans_one_gpu_job():
    out = snakemake("-n", "-p", "gpu_smoke", "--profile", "slurm")
    assert job_counts(out) == {"gpu_smoke": 1, "total": 1}
    assert "gpu=1" in out and "prefixtune gpu-smoke --out results/smoke/gpu.json" in out


def test_demo_dry_run_builds_everything_offline():
    counts = job_counts(snakemake("-n", "--forceall", "--configfile", "config/demo.yaml"))
    # Table 1 (15) + Table 2 (2) + Table 3 (4) + Table 4 (2 new) + Figure 3 (8) + Figure 4 (2 new)
    # + Figure 5 (5 new) + Figure 6 (4) + the methods check (1); the dev tables and appendix figures train nothing
    assert counts["train"] + counts["train_full_weights"] == 43 and counts["train_full_weights"] == 15
    assert counts["base_model"] == 2 and "download" not in counts
    assert counts["subsample"] == 7 and counts["xsum_split"] == 2
    assert counts["report_table"] == 7 and counts["report_figure"] == 6 and counts["index"] == 1
    assert counts["compute"] == 1


def test_paper_scale_dry_run_plans_every_artifact():
    out = snakemake("-n", "--quiet", "rules")
    counts = job_counts(out)
    assert counts["train"] + counts["train_full_weights"] == 294
    assert counts["subsample"] == 45 and counts["xsum_split"] == 2
    assert counts["report_table"] == 6 and counts["report_figure"] == 6 and counts["index"] == 1


def test_bad_config_is_rejected_at_start_up(tmp_path):
    import yaml

    config = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    config["decoding"]["num_beams"] = 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    result = subprocess.run(
        [str(BIN / "snakemake"), "-n", "--configfile", str(bad)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "num_beams" in result.stdout + result.stderr


@pytest.mark.parametrize("config", ["config/config.yaml", "config/demo.yaml"])
def test_snakemake_lint(config):
    out = snakemake("--lint", "--configfile", config)
    assert "Congratulations" in out or "no issues" in out.lower(), out[-2000:]


def _shrunk_demo_config(tmp_path: Path) -> Path:
    """config/demo.yaml with every size cut to seconds, every path under ``tmp_path``, and each kind of artifact
    kept with fewer rows (every rule and code path still runs)."""
    import yaml

    config = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    config["paths"] = {k: str(tmp_path / k) for k in ("resources", "results", "reports", "logs")}
    config["paper"]["results_csv"] = str(ROOT / config["paper"]["results_csv"])
    config["report"]["claims"]["file"] = str(ROOT / config["report"]["claims"]["file"])
    for dataset in config["datasets"].values():
        dataset["synthetic"].update(n_train=60, n_dev=4, n_test=6)
    config["datasets"]["xsum"]["extrapolation"]["synthetic"].update(n_train=90, n_dev=8, n_test=16)
    config["datasets"]["xsum"]["extrapolation"]["test_cap"] = 5
    tiny = config["models"]["tiny-gpt2"]
    tiny["corpus_size"] = 800
    tiny["recipe"].update(vocab_size=800, n_embd=32, pretrain_steps=20)
    bart = config["models"]["tiny-bart"]
    bart["corpus_size"] = 200
    bart["recipe"].update(vocab_size=600, d_model=32, ffn_dim=64, pretrain_steps=20)
    for per_dataset in config["training"]["hparams"].values():
        for hparams in per_dataset.values():
            hparams["epochs"] = 1
    config["decoding"]["max_new_tokens"] = 12
    config["training"]["selection"]["low_data"]["eval_every"] = 1  # the low-data runs take 2 steps here
    for generate in config["decoding_by_dataset"]["xsum"]["by_method"].values():
        generate.update(min_length=3, max_length=16)
    for method in config["methods"].values():
        if method.get("init") == "word":
            method["init_steps"] = 20
    # one row per code path: CI runs every rule and report kind without the demo's replicates and extra rows
    arts = config["artifacts"]
    keep = {
        "table1": ["PREFIX (0.1%)"],
        "table2": ["PREFIX (2%)"],
        "table3": ["PREFIX"],
        "appendix_dev": ["PREFIX (0.1%)"],
    }
    for name, labels in keep.items():
        arts[name]["rows"] = [r for r in arts[name]["rows"] if r["label"] in labels]
    arts["table3"]["rows"][0]["vary"] = {"split": ["news_sports"]}
    arts["table4"]["rows"] = [
        r for r in arts["table4"]["rows"] if r["label"] in ("PREFIX", "EMB-1", "INFIX-1")
    ]
    for name in ("figure3", "figure3_appendix"):
        arts[name]["rows"] = [
            r for r in arts[name]["rows"] if r["datasets"] == ["e2e"] or r["label"] == "PREFIX"
        ]
        for row in arts[name]["rows"]:
            # XSUM: one whole epoch (20 articles / batch 5), so its validation-ROUGE selection runs once
            steps = 4 if "xsum" in row["datasets"] else 2
            row.update(
                vary={"size": [20]}, data_seeds=[101], hparams_by_x={20: {"max_steps": steps, "epochs": 1}}
            )
        arts[name]["qualitative"] = dict(arts["figure3"]["qualitative"])  # in every synthetic dev set
    for name in ("figure5", "figure5_appendix"):
        arts[name]["rows"][0].update(vary={"init_word": ["random"]}, data={"size": 20}, data_seeds=[101])
    arts["figure4"]["rows"] = [dict(arts["figure4"]["rows"][1], vary={"prefix_length": [2, 10]})]
    arts["figure4"]["panels"] = [p for p in arts["figure4"]["panels"] if p["dataset"] == "dart"]
    arts["figure6"]["rows"] = [dict(arts["figure6"]["rows"][0], vary={"percent": [50]})]
    path = tmp_path / "ci.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def check_demo_outputs(tmp_path: Path) -> None:
    """What a finished (shrunk) demo must have written: every artifact with numbers, splits, subsets, logs."""
    reports = tmp_path / "reports"
    table = (reports / "table1.md").read_text(encoding="utf-8")
    assert table.startswith("> **DEMO**")
    compact = table.split("## Every cell")[0]  # the paper-shaped table; every cell in detail follows it
    rows = [line for line in compact.splitlines() if line.startswith("| PREFIX")]
    assert len(rows) == 1
    for row in rows:  # every E2E/WebNLG/DART BLEU, METEOR and TER cell holds a number beside the paper's
        cells = row.split(" | ")[2:19]
        assert all(re.fullmatch(r"-?\d+\.\d+ / \d+\.\d+( [✓✗])?", c) for c in cells), row
    for artifact, labels in {
        "table2": ["PREFIX (2%)"],
        "table3": ["PREFIX"],
        "table4": ["PREFIX", "EMB-1", "INFIX-1"],
        "appendix_dev": ["PREFIX (0.1%)"],
        "appendix_dev_xsum": ["PREFIX (2%)"],
        "methods": ["PREFIX = LM activations of 'table-to-text:'"],
    }.items():
        lines = (
            (reports / f"{artifact}.md").read_text(encoding="utf-8").split("## Every cell")[0].splitlines()
        )
        for label in labels:  # every method kind ran: each row has a number in its first cell
            row = next(line for line in lines if line.startswith(f"| {label} |"))
            assert re.fullmatch(r"-?\d+\.\d+ / (\d+\.\d+†?|–)( [✓✗])?", row.split(" | ")[2]), row
    for figure in ("figure3", "figure3_appendix", "figure4", "figure5", "figure5_appendix", "figure6"):
        assert (reports / f"{figure}.png").read_bytes()[:4] == b"\x89PNG"
        assert (reports / f"{figure}.pdf").read_bytes()[:4] == b"%PDF"
        page = (reports / f"{figure}.md").read_text(encoding="utf-8")
        assert " (n=" in page or re.search(r"\| -?\d+\.\d+ \|", page), page[:2000]
    assert "Generated texts" in (reports / "figure3.md").read_text(encoding="utf-8")
    index = (reports / "index.md").read_text(encoding="utf-8")
    assert index.count("| complete |") == 13, index  # every artifact, every planned run scored
    split = json.loads((tmp_path / "results/splits/xsum/news_sports/split.json").read_text())
    assert split["kind"] == "news_sports" and split["sizes"]["test"] == 5
    subset = json.loads((tmp_path / "results/subsets/e2e/n20-d101/subset.json").read_text())
    assert (
        subset["counts"]["train"] == 20 and subset["counts"]["dev"] == 4
    )  # int(0.3 n), capped by the dev set
    # low-data runs decode their best dev-loss step; low-data XSUM PREFIX starts from "summarize"
    low_e2e = json.loads((tmp_path / "results/runs/e2e-tiny-gpt2-prefix_word-n20-d101/run.json").read_text())
    assert low_e2e["selection"]["rule"] == "best_dev_loss" and low_e2e["selection"]["chosen_step"] in (1, 2)
    low_xsum = json.loads(
        (tmp_path / "results/runs/xsum-tiny-bart-prefix_xsum_lowdata-n20-d101/run.json").read_text()
    )
    assert low_xsum["initialization"]["word"] == "summarize"
    assert low_xsum["selection"]["rule"] == "best_val_rouge" and low_xsum["selection"]["chosen_step"] == 4
    assert low_xsum["training"]["optimizer"] == "adamw_transformers_3_2"
    bart_run = tmp_path / "results/runs/xsum-tiny-bart-prefix_xsum_2pct/trained"
    assert (bart_run / "bart_prefix.safetensors").is_file()
    check_claims(reports)
    csv_text = (reports / "table1.csv").read_text(encoding="utf-8")
    assert csv_text.startswith("# DEMO")
    for rule in ("base_model", "train", "decode", "score", "prepare", "report", "subsample"):
        assert any((tmp_path / "logs" / rule).rglob("*.log")), f"no log for rule {rule}"
    run = tmp_path / "results/runs/e2e-tiny-gpt2-prefix"
    saved = sorted(p.name for p in (run / "trained").iterdir() if p.name != ".snakemake_timestamp")
    assert saved == ["prefix.safetensors", "prefix_config.json"]
    assert not (tmp_path / "results/checkpoints/e2e-tiny-gpt2-prefix").exists()
    kinds = {}
    for record in (tmp_path / "results/runs").glob("*/run.json"):
        kind = json.loads(record.read_text())["spec"]["method"]
        kinds[kind] = kinds.get(kind, 0) + 1
        # full weights are temporary (deleted once decoded); trained prefixes and adapters stay
        assert (record.parent / "trained").exists() == (kind not in ("finetune", "ft_top")), record.parent
    assert kinds.get("finetune") and kinds.get("prefix"), kinds


def check_claims(reports: Path) -> None:
    """Every claim of the claims file has a verdict or a reason; the demo's pages say which it cannot judge."""
    import yaml

    claims = yaml.safe_load((ROOT / "config/claims.yaml").read_text(encoding="utf-8"))["claims"]
    page = (reports / "claims.md").read_text(encoding="utf-8")
    assert page.startswith("> **DEMO**")
    records = json.loads((reports / "claims.json").read_text(encoding="utf-8"))
    rows = records["claims"] if isinstance(records, dict) else records
    verdicts = {r["id"]: r["verdict"] for r in rows}
    assert set(verdicts) == {c["id"] for c in claims}
    assert set(verdicts.values()) <= {"holds", "fails", "inconclusive", "untestable"}
    for claim in claims:
        assert f"**{claim['id']}**" in page, claim["id"]
    # some claim is judged on the demo's runs with a bootstrap interval over the test items
    judged = [r for r in rows if any(x.get("low") is not None for x in [r, *r.get("parts", [])])]
    assert judged, rows
    assert "Claims" in (reports / "figure3.md").read_text(encoding="utf-8")
    assert "claims.md" in (reports / "index.md").read_text(encoding="utf-8")


def report_bytes(reports: Path) -> dict[str, bytes]:
    """Every report file but the compute ledger, whose wall times differ from run to run by nature."""
    return {
        p.name: p.read_bytes()
        for p in sorted(reports.iterdir())
        if p.is_file() and p.name not in ("compute.md", "compute.json")
    }


@pytest.mark.slow
def test_whole_dag_runs_offline_rebuilds_lost_outputs_and_is_deterministic(tmp_path):
    """The real rules, CLI and code end to end on a shrunk demo config: synthetic raw files -> every artifact."""
    config = _shrunk_demo_config(tmp_path)
    common = ["-s", str(ROOT / "Snakefile"), "--configfile", str(config), "--cores", "2"]
    snakemake(*common, cwd=tmp_path, timeout=1200)
    check_demo_outputs(tmp_path)
    run = tmp_path / "results/runs/e2e-tiny-gpt2-prefix"
    reports = tmp_path / "reports"
    first = report_bytes(reports)
    assert {
        "table1.md",
        "table1.csv",
        "table1.json",
        "figure3.png",
        "figure3.pdf",
        "index.md",
    } <= first.keys()

    # Lost outputs are rebuilt, and nothing upstream of them runs again.
    for lost in (run / "test.hyp.txt", run / "test.scores.json", reports / "table1.md"):
        lost.unlink()
    out = snakemake(*common, cwd=tmp_path, timeout=900)
    counts = job_counts(out)
    # the PREFIX run is shared by Tables 1 and 4 (and appendix_dev uses its dev outputs): both test-split reports
    # and the index are rebuilt, nothing is retrained
    assert counts == {
        "decode": 1,
        "score": 1,
        "report_table": 2,
        "index": 1,
        "compute": 1,
        "claims": 1,
        "all": 1,
        "total": 8,
    }, counts
    assert report_bytes(reports) == first, "a rebuilt report differs from the first build"

    # Determinism: everything again from scratch gives byte-identical reports (tables, figures, index).
    for generated in ("resources", "results", "reports", "logs", ".snakemake"):
        shutil.rmtree(tmp_path / generated)
    snakemake(*common, cwd=tmp_path, timeout=1200)
    again = report_bytes(reports)
    assert again.keys() == first.keys()
    assert [name for name in first if again[name] != first[name]] == []
