"""Every statement kind of the claims engine decides correctly where the truth is known: clearly holds, clearly
fails, straddles; ties and missing runs; replicate t-intervals and single-run bootstrap intervals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prefixtune.claims import evidence
from prefixtune.claims.engine import UNTESTABLE, evaluate_claims
from prefixtune.claims.stats import t_interval, variance_ratio_interval
from prefixtune.claims.verdict import FAILS, HOLDS, INCONCLUSIVE, Interval, greater_than, within

SETTINGS = {"resamples": 200, "seed": 1, "confidence": 0.95}


def e2e_scores(path: Path, bleu: float, rouge: float = 0.5) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "dataset": "e2e",
                "metrics": {"BLEU": bleu / 100, "NIST": 4.0, "METEOR": 0.3, "ROUGE_L": rouge, "CIDEr": 1.0},
            }
        )
    )
    return str(path)


def run_json(path: Path, stored: int, seconds: float = 0.1, device: str = "cpu", examples: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "parameters": {"stored": stored, "trainable": stored, "base": 1000},
                "training": {"seconds_per_step": seconds, "examples": examples},
                "device": device,
            }
        )
    )


def figure(
    tmp_path: Path, series: dict[str, dict], kind: str = "figure", model_ran: str = "gpt2-medium"
) -> dict:
    """A one-dataset (E2E) manifest: series label -> {x: [BLEU per replicate (None = not scored)]}."""
    rows = []
    for label, by_x in series.items():
        cells = []
        for x, values in by_x.items():
            runs = []
            for i, bleu in enumerate(values):
                name = f"{label}-{x}-r{i}".replace(" ", "_")
                scores = tmp_path / name / "test.scores.json"
                if bleu is not None:
                    e2e_scores(scores, bleu)
                    run_json(scores.parent / "run.json", stored=10)
                runs.append({"run": name, "scores": str(scores), "data_seed": i, "seed": 1})
            cells.append({"dataset": "e2e", "x": x, "runs": runs})
        rows.append(
            {
                "label": label,
                "method": label.split()[0],
                "model": "gpt2-medium",
                "ran": model_ran,
                "param_pct": "",
                "setting": "full-data",
                "cells": cells,
            }
        )
    return {"kind": kind, "datasets": ["e2e"], "splits": {"e2e": "test"}, "x_paper": {}, "rows": rows}


def claim(statement: dict, artifact: str = "fig") -> dict:
    return {
        "id": "c",
        "sections": ["§1"],
        "versions": ["arxiv_v1"],
        "text": "t",
        "artifact": artifact,
        "statement": statement,
    }


def judge(manifest: dict, statement: dict, strict: bool = False):
    return evaluate_claims([claim(statement)], {"fig": manifest}, SETTINGS, strict=strict)[0]


def sel(row: str, **extra) -> dict:
    return {"row": row, "dataset": "e2e", "metric": "BLEU", **extra}


# ------------------------------------------------------------------ interval rules


def test_strict_greater_than_rules():
    assert greater_than(Interval(1, 0.5, 1.5, 5, "t"), 0, "d")[0] == HOLDS
    assert greater_than(Interval(-1, -1.5, -0.5, 5, "t"), 0, "d")[0] == FAILS
    assert greater_than(Interval(0.2, -0.5, 0.9, 5, "t"), 0, "d")[0] == INCONCLUSIVE
    verdict, reason = greater_than(Interval(0, 0, 0, 5, "t"), 0, "d")
    assert verdict == FAILS and reason.startswith("tie")  # an exact tie is not "better"
    assert greater_than(Interval(1, None, None, 1, "no interval: x"), 0, "d") == (
        INCONCLUSIVE,
        "no interval: x",
    )


def test_within_rules():
    assert within(Interval(0, -0.3, 0.4, 5, "t"), -1, 1, "d")[0] == HOLDS
    assert within(Interval(-3, -4, -2, 5, "t"), -1, 1, "d")[0] == FAILS
    assert within(Interval(-1, -1.5, 0.2, 5, "t"), -1, 1, "d")[0] == INCONCLUSIVE
    assert within(Interval(5, 4, 6, 5, "t"), -1, None, "d")[0] == HOLDS  # or better


def test_t_interval_matches_scipy_and_needs_two():
    iv = t_interval([1.0, 2.0, 3.0, 4.0], 0.95)
    assert iv.effect == pytest.approx(2.5)
    assert (iv.low, iv.high) == pytest.approx(
        (2.5 - 3.182446 * 1.290994 / 2, 2.5 + 3.182446 * 1.290994 / 2), abs=1e-4
    )
    assert t_interval([1.0], 0.95).low is None


def test_variance_ratio_interval_contains_the_ratio():
    iv = variance_ratio_interval([0, 10, 20, 30], [[1, 2, 3, 4], [2, 3, 4, 5]], 0.95)
    assert iv.low < iv.effect < iv.high and iv.effect > 1


# ------------------------------------------------------------------ kinds on replicated results


def test_difference_holds_fails_straddles(tmp_path):
    m = figure(
        tmp_path,
        {
            "PREFIX": {None: [60, 61, 62, 60.5]},
            "FT": {None: [50, 51, 52, 50.5]},
            "NOISY": {None: [40, 80, 45, 75]},
        },
    )
    assert judge(m, {"kind": "difference", "a": sel("PREFIX"), "b": sel("FT")}).verdict == HOLDS
    v = judge(m, {"kind": "difference", "a": sel("FT"), "b": sel("PREFIX")})
    assert v.verdict == FAILS and v.effect == pytest.approx(-10) and v.n == 4
    assert judge(m, {"kind": "difference", "a": sel("NOISY"), "b": sel("FT")}).verdict == INCONCLUSIVE
    assert (
        judge(m, {"kind": "difference", "direction": "worse", "a": sel("FT"), "b": sel("PREFIX")}).verdict
        == HOLDS
    )
    size = {"value": 10, "margin": 2, "margin_reason": "r"}
    assert judge(m, {"kind": "difference", "a": sel("PREFIX"), "b": sel("FT"), "size": size}).verdict == HOLDS
    size = {"value": 3, "margin": 1, "margin_reason": "r"}
    assert judge(m, {"kind": "difference", "a": sel("PREFIX"), "b": sel("FT"), "size": size}).verdict == FAILS


def test_comparable_and_or_better(tmp_path):
    m = figure(
        tmp_path,
        {
            "A": {None: [50.1, 50.3, 49.9, 50.2]},
            "B": {None: [50, 50.2, 50, 50.1]},
            "C": {None: [55, 56, 55.5, 55.2]},
        },
    )
    base = {"kind": "comparable", "margin": 1.0, "margin_reason": "r"}
    assert judge(m, {**base, "a": sel("A"), "b": sel("B")}).verdict == HOLDS
    assert (
        judge(m, {**base, "a": sel("C"), "b": sel("B")}).verdict == FAILS
    )  # better by far: not "comparable"
    assert judge(m, {**base, "or_better": True, "a": sel("C"), "b": sel("B")}).verdict == HOLDS
    assert judge(m, {**base, "or_better": True, "a": sel("B"), "b": sel("C")}).verdict == FAILS


def test_ordering_with_a_tie_and_missing_runs(tmp_path):
    m = figure(
        tmp_path,
        {
            "P": {None: [60, 61, 62, 63]},
            "Q": {None: [50, 51, 52, 53]},
            "TIE": {None: [60, 61, 62, 63]},
            "GONE": {None: [50, None, 52, 53]},
        },
    )
    ordering = {"kind": "ordering"}
    assert judge(m, {**ordering, "groups": [[sel("P")], [sel("Q")]]}).verdict == HOLDS
    tie = judge(m, {**ordering, "groups": [[sel("P")], [sel("Q"), sel("TIE")]]})
    assert tie.verdict == FAILS and "tie" in tie.reason  # a strict ordering: an exact tie does not hold
    gone = judge(m, {**ordering, "groups": [[sel("P")], [sel("GONE")]]})
    assert gone.verdict == INCONCLUSIVE and "GONE-None-r1" in gone.reason and gone.missing == ["GONE-None-r1"]


def test_trend_peak(tmp_path):
    def sweep(values: dict) -> dict:
        return figure(
            tmp_path / str(abs(hash(str(values)))),
            {"P": {x: [v + d for d in (0, 0.2, -0.2, 0.1)] for x, v in values.items()}},
        )

    st = {"kind": "trend_peak", "series": sel("P"), "peak_at": 10, "max_drop": 1.0, "margin_reason": "r"}
    assert judge(sweep({1: 40, 5: 44, 10: 46, 20: 45.5}), st).verdict == HOLDS
    assert judge(sweep({1: 40, 5: 47, 10: 46, 20: 45.5}), st).verdict == FAILS  # 5 beats the peak
    assert (
        judge(sweep({1: 40, 5: 44, 10: 46, 20: 41}), st).verdict == FAILS
    )  # drops by far more than slightly
    absent = judge(sweep({1: 40, 5: 44}), st)
    assert absent.verdict == INCONCLUSIVE and "not run in this configuration" in absent.reason


def test_gap_trend(tmp_path):
    m = figure(
        tmp_path,
        {
            "P": {50: [60, 61, 59, 60], 500: [65, 66, 64, 65]},
            "F": {50: [50, 51, 49, 50.5], 500: [63, 64, 62, 63.2]},
        },
    )
    st = {"kind": "gap_trend", "a": sel("P"), "b": sel("F"), "x_from": 50, "x_to": 500}
    v = judge(m, st)
    assert v.verdict == HOLDS and v.effect == pytest.approx(9.875 - 1.95)
    assert judge(m, {**st, "x_from": 500, "x_to": 50}).verdict == FAILS
    assert judge(m, {**st, "x_to": 200}).verdict == INCONCLUSIVE  # not in this (demo-scale) configuration


def test_variance(tmp_path):
    m = figure(
        tmp_path,
        {
            "P": {
                "random": [30, 50, 20, 45, 10, 55],
                "elephant": [60, 61, 60.5, 61.2, 60.2, 60.8],
                "table-to-text:": [62, 62.5, 61.8, 62.2, 62.1, 62.6],
            }
        },
    )
    st = {"kind": "variance", "a": sel("P", x="random"), "b": sel("P", x="all")}
    v = judge(m, st)
    assert v.verdict == HOLDS, v.reason
    flipped = figure(
        tmp_path / "f",
        {"P": {"random": [70, 70.2, 70.1, 70.3, 70.2, 70.1], "elephant": [30, 50, 20, 45, 10, 55]}},
    )
    assert judge(flipped, st).verdict == FAILS
    alone = judge(figure(tmp_path / "a", {"P": {"random": [30, 50, 20]}}), st)  # nothing to compare with
    assert alone.verdict == INCONCLUSIVE and "not in this configuration" in alone.reason


def test_crossover(tmp_path):
    m = figure(
        tmp_path,
        {
            "P": {10: [60, 60.2, 59.8, 60.1], 40: [66, 66.5, 65.8, 66.2]},
            "F": {10: [60.3, 60.4, 60.0, 60.2], 40: [64, 64.2, 63.9, 64.1]},
        },
    )
    st = {
        "kind": "crossover",
        "a": sel("P"),
        "b": sel("F"),
        "better_above": 20,
        "comparable_at": [10],
        "margin": 1.0,
        "margin_reason": "r",
    }
    assert judge(m, st).verdict == HOLDS
    assert judge(m, {**st, "a": sel("F"), "b": sel("P")}).verdict == FAILS
    partial = judge(m, {**st, "comparable_at": [5]})
    assert partial.verdict == INCONCLUSIVE and "runs not in this configuration" in partial.reason


def test_ratio_exact_counts_cpu_timing_and_stand_ins(tmp_path):
    m = figure(tmp_path, {"FT": {None: [50]}, "P": {None: [60]}})
    run_json(Path(m["rows"][0]["cells"][0]["runs"][0]["scores"]).parent / "run.json", 1000, 0.30)
    run_json(Path(m["rows"][1]["cells"][0]["runs"][0]["scores"]).parent / "run.json", 1, 0.21)
    st = {
        "kind": "ratio",
        "numerator": {"quantity": "stored_parameters", "runs": sel("FT")},
        "denominator": {"quantity": "stored_parameters", "runs": sel("P")},
        "expected": 1000,
        "factor": 2,
        "margin_reason": "r",
    }
    v = judge(m, st)
    assert v.verdict == HOLDS and v.effect == 1000
    assert judge(m, {**st, "expected": 10}).verdict == FAILS
    speed = {
        **st,
        "numerator": {"quantity": "seconds_per_step", "runs": sel("P")},
        "denominator": {"quantity": "seconds_per_step", "runs": sel("FT")},
        "expected": 0.7,
        "factor": 1.15,
    }
    v = judge(m, {**speed, "gpu_only": True})
    assert v.verdict == INCONCLUSIVE and "CPU" in v.reason
    stand_in = figure(tmp_path / "tiny", {"FT": {None: [50]}, "P": {None: [60]}}, model_ran="tiny-gpt2")
    v = judge(stand_in, {**st, "paper_model_only": True})
    assert v.verdict == INCONCLUSIVE and "stand-in" in v.reason


def test_rows_absent_from_a_demo_config_are_inconclusive_and_errors_at_paper_scale(tmp_path):
    m = figure(tmp_path, {"P": {None: [60, 61]}})
    st = {"kind": "difference", "a": sel("P"), "b": sel("LARGE")}
    v = judge(m, st)
    assert v.verdict == INCONCLUSIVE and "not in this configuration" in v.reason
    with pytest.raises(ValueError, match="claim 'c', key statement.b: no row of fig matches"):
        judge(m, st, strict=True)


def test_untestable_claims_keep_their_reason():
    c = {
        "id": "u",
        "sections": ["§1"],
        "versions": ["arxiv_v1"],
        "text": "t",
        "artifact": "fig",
        "untestable": "qualitative",
    }
    v = evaluate_claims([c], {}, SETTINGS)[0]
    assert (v.verdict, v.reason) == (UNTESTABLE, "qualitative")


# ------------------------------------------------------------------ single runs: the paired bootstrap


class FakeBootstrap:
    """Stands in for H1's prefixtune.claims.bootstrap where a test needs a known interval."""

    class MissingSegments(ValueError):
        pass

    calls: list = []

    @staticmethod
    def paired_bootstrap(a, b, metric, *, track=None, resamples, seed, confidence):
        FakeBootstrap.calls.append((metric, track, resamples, seed, confidence))
        from types import SimpleNamespace

        delta = a["metrics"]["BLEU"] * 100 - b["metrics"]["BLEU"] * 100
        return SimpleNamespace(delta=delta, low=delta - 1, high=delta + 1, n_items=24, resamples=resamples)


def test_single_runs_use_the_paired_bootstrap_with_the_configured_settings(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "prefixtune.claims.bootstrap", FakeBootstrap)
    monkeypatch.setattr("prefixtune.claims.bootstrap", FakeBootstrap, raising=False)
    import prefixtune.claims as package

    monkeypatch.setattr(package, "bootstrap", FakeBootstrap, raising=False)
    m = figure(tmp_path, {"P": {None: [60]}, "F": {None: [55]}, "G": {None: [59.5]}})
    v = judge(m, {"kind": "difference", "a": sel("P"), "b": sel("F")})
    assert v.verdict == HOLDS and (v.low, v.high, v.n) == pytest.approx((4, 6, 24))
    assert "paired bootstrap" in v.method and FakeBootstrap.calls[-1] == ("BLEU", None, 200, 1, 0.95)
    assert judge(m, {"kind": "difference", "a": sel("P"), "b": sel("G")}).verdict == INCONCLUSIVE


def test_scores_without_segments_give_no_interval(tmp_path):
    m = figure(tmp_path, {"P": {None: [60]}, "F": {None: [55]}})
    v = judge(m, {"kind": "difference", "a": sel("P"), "b": sel("F")})
    assert v.verdict == INCONCLUSIVE and v.reason.startswith("no interval") and v.effect == pytest.approx(5)


def test_ter_is_an_advantage_when_lower(tmp_path):
    cell = evidence.Cell("a", {"label": "x", "model": "m"}, "webnlg", "TER", "all", None, ())
    other = evidence.Cell("a", {"label": "y", "model": "m"}, "webnlg", "TER", "all", None, ())
    ((first, second, weight),) = evidence.advantage_pairs([(cell, other, 1.0)])
    assert (first, second, weight) == (other, cell, 1.0)
