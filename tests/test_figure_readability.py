"""Figures a person can read: paper statements as sentences, one legend, titles and captions inside the image,
the paper's numbers drawn as marks, and the claims strip (prefixtune.report.figures / figure_report)."""

from __future__ import annotations

import csv
import re
import statistics
from dataclasses import replace
from pathlib import Path

import pytest
from matplotlib.axes import Axes
from matplotlib.text import Text

from prefixtune.report.figure_report import build_figure as build_page
from prefixtune.report.figure_report import paper_marks
from prefixtune.report.figures import (
    PAPER_COLOR,
    VERDICT_COLORS,
    Panel,
    PaperMark,
    Point,
    build_figure,
    figure_style,
)
from prefixtune.report.paper import VERSIONS, PaperKey, load_paper_results
from prefixtune.report.paper_statements import paper_statement

ROOT = Path(__file__).resolve().parents[1]
PAPER_CSV = ROOT / "config/paper_results.csv"
LONG_TITLE = (
    "Figure 5 — initialization: random vs real words (E2E, 100 examples), a title long enough to need two lines "
    "even on the widest figure of the report"
)


def both_versions() -> dict[PaperKey, float]:
    """Both paper versions, as the report passes them to a figure page."""
    return {**load_paper_results(PAPER_CSV, "acl2021"), **load_paper_results(PAPER_CSV, "arxiv_v1")}


def figure_metric_keys() -> set[str]:
    """The metric keys of every figure row of the paper results (the raw keys no reader may see)."""
    with open(PAPER_CSV, newline="", encoding="utf-8") as handle:
        return {row["metric"] for row in csv.DictReader(handle) if row["artifact"].startswith("figure")}


def point(series: str, dataset: str, metric: str, x: float | str, base: float, n: int = 2) -> Point:
    values = tuple(base + 0.5 * i for i in range(n))
    sd = statistics.stdev(values) if n > 1 else 0.0
    return Point(series, dataset, metric, x, statistics.fmean(values), sd, n, values)


def manifest(panels: list[dict], rows: list[tuple[str, str, list]]) -> dict:
    """A figure manifest whose runs have no scores yet (no points: the page still states the paper)."""
    return {
        "kind": "figure",
        "x_label": "x",
        "panels": panels,
        "qualitative": None,
        "rows": [
            {
                "label": label,
                "cells": [
                    {
                        "dataset": dataset,
                        "x": x,
                        "runs": [{"run": "r", "scores": "not-run-yet/r.scores.json"}],
                    }
                    for x in xs
                ],
            }
            for label, dataset, xs in rows
        ],
    }


FIG3 = manifest(
    [{"dataset": "xsum", "metrics": ["ROUGE-1"]}, {"dataset": "e2e", "metrics": ["BLEU"]}],
    [("PREFIX", "e2e", [50, 100]), ("FINE-TUNE", "e2e", [50, 100])],
)
FIG4 = manifest(
    [{"dataset": "xsum", "metrics": ["ROUGE-2", "ROUGE-L"]}, {"dataset": "dart", "metrics": ["BLEU", "TER"]}],
    [("PREFIX", "xsum", [1, 10]), ("PREFIX", "dart", [5, 10])],
)
FIG6 = manifest(
    [{"dataset": "e2e", "metrics": ["BLEU"]}, {"dataset": "e2e", "metrics": ["ROUGE-L"]}],
    [("PREFIX", "e2e", [20, 60]), ("FINE-TUNE", "e2e", [20, 60])],
)


def texts(fig) -> list[Text]:
    """Every visible, non-empty text artist of a drawn figure."""
    fig.canvas.draw()
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def assert_inside(fig, artists) -> None:
    """Each artist (a text, a legend, or an axes with its tick labels, labels and title) lies inside the image."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    for artist in artists:
        if isinstance(artist, Axes):
            extent = artist.get_tightbbox(renderer)
            label = f"panel {artist.get_title()!r}"
        else:
            extent = artist.get_window_extent(renderer)
            label = artist.get_text() if isinstance(artist, Text) else type(artist).__name__
        assert extent.x0 >= box.x0 - 0.5 and extent.x1 <= box.x1 + 0.5, (
            f"{label!r} cut at the left/right edge"
        )
        assert extent.y0 >= box.y0 - 0.5 and extent.y1 <= box.y1 + 0.5, (
            f"{label!r} cut at the top/bottom edge"
        )


# --- paper statements as sentences --------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_every_figure_row_of_the_paper_reads_as_a_sentence(version: str) -> None:
    rows = {
        k: v for k, v in load_paper_results(PAPER_CSV, version).items() if k.artifact.startswith("figure")
    }
    assert rows
    for key, value in rows.items():
        statement = paper_statement(key, value)
        assert key.metric not in statement.text and "_" not in statement.text and "_" not in statement.short
        assert f"{value:g}" in statement.text


def test_the_statements_say_what_the_paper_says() -> None:
    sizes = "low-data sizes 50/100/200/500 (5 subsamples x 2 seeds each)"
    key = PaperKey("figure3", "E2E", "test", "PREFIX minus FINETUNE", "", "", sizes, "BLEU_gap_mean")
    gap = paper_statement(key, 2.9)
    assert gap.text == "PREFIX beats FINE-TUNE by 2.9 BLEU on average over training sizes 50–500 (E2E)"
    assert (gap.kind, gap.series, gap.metric) == ("gap", ("PREFIX", "FINE-TUNE"), "BLEU")
    best_key = PaperKey("figure4", "XSUM", "test", "PREFIX", "", "", "", "best_prefix_length")
    best = paper_statement(best_key, 200)
    assert best.text.startswith("prefix length 200 is best for XSUM") and best.kind == "vline"
    cross = replace(
        best_key, artifact="figure6_data_efficiency", dataset="E2E", method="PREFIX (random init) vs FINETUNE"
    )
    assert (
        paper_statement(replace(cross, metric="crossover_train_pct"), 20).text
        == "PREFIX better than FINE-TUNE above 20 % of the E2E training data"
    )


def test_an_unknown_paper_key_is_an_error_naming_it() -> None:
    key = PaperKey("figure4", "XSUM", "test", "PREFIX", "", "", "", "peak_rouge_slope")
    with pytest.raises(ValueError, match="'peak_rouge_slope' has no readable statement"):
        paper_statement(key, 1.0)
    with pytest.raises(ValueError, match="peak_rouge_slope"):  # the page stops too
        paper_marks("figure4", FIG4, {key: 1.0})


@pytest.mark.parametrize(
    ("artifact", "spec"), [("figure3", FIG3), ("figure4", FIG4), ("figure6", FIG6)], ids=["3", "4", "6"]
)
def test_no_raw_key_on_the_page_or_in_the_image(tmp_path: Path, artifact: str, spec: dict) -> None:
    page, _ = build_page(artifact, spec, both_versions(), "# page", tmp_path / artifact, demo=True)
    assert "paper: " in page
    marks = paper_marks(artifact, spec, both_versions())
    panels = [Panel(p["dataset"], tuple(p["metrics"]), "x") for p in spec["panels"]]
    with figure_style():
        fig = build_figure("t", panels, [], marks, demo=True)
    drawn = " | ".join(t.get_text() for t in texts(fig))
    for key in figure_metric_keys():
        assert key not in page and key not in drawn
    assert not re.search(r"\b[a-z]+_[a-z_]+\b", drawn), drawn  # no snake_case key of any kind
    notes = [f"paper: {m.value}" for m in marks if m.kind == "note"]
    assert notes and all(
        note in drawn and f"- {note}\n" in page for note in notes
    )  # same text, page and image
    assert all(drawn.count(note) == 1 for note in notes)  # stated once, not per panel


def test_a_statement_made_by_both_versions_is_stated_once() -> None:
    notes = [m.value for m in paper_marks("figure4", FIG4, both_versions()) if m.kind == "note"]
    assert len(notes) == 2 and sum("is best for" in str(n) and " 10 " in str(n) for n in notes) == 1


# --- layout: one legend, everything inside the image --------------------------------------------------------


def lowdata(sizes=(50, 100, 200, 500)) -> tuple[list[Panel], list[Point]]:
    panels = [Panel(ds, (m,), "training examples") for ds, m in (("xsum", "ROUGE-1"), ("e2e", "BLEU"))]
    panels += [
        Panel("xsum", ("ROUGE-2",), "training examples"),
        Panel("e2e", ("ROUGE-L",), "training examples"),
    ]
    points = [
        point(series, p.dataset, p.metrics[0], size, 30 + gap + size / 100)
        for series, gap in (("PREFIX", 3.0), ("FINE-TUNE", 0.0))
        for p in panels
        for size in sizes
    ]
    return panels, points


def test_panels_with_the_same_series_share_one_legend() -> None:
    panels, points = lowdata()
    with figure_style():
        fig = build_figure("t", panels, points, [])
    assert len(fig.legends) == 1 and not [ax for ax in fig.axes if ax.get_legend()]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["PREFIX (n = 2)", "FINE-TUNE (n = 2)"]  # each series once, not once per panel


def test_twin_axis_panels_with_different_metrics_keep_their_own_legends() -> None:
    panels = [
        Panel("xsum", ("ROUGE-2", "ROUGE-L"), "prefix length"),
        Panel("dart", ("BLEU", "TER"), "prefix length"),
    ]
    points = [point("PREFIX", "xsum", m, x, 20) for m in ("ROUGE-2", "ROUGE-L") for x in (1, 10)]
    points += [point("PREFIX", "dart", m, x, 40) for m in ("BLEU", "TER") for x in (5, 10)]
    with figure_style():
        fig = build_figure("t", panels, points, [])
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    assert not fig.legends and len(legends) == 2
    for legend in legends:  # no entry repeated inside a legend
        labels = [t.get_text() for t in legend.get_texts()]
        assert len(labels) == len(set(labels))


@pytest.mark.parametrize("count", [1, 2, 4, 6])
def test_a_long_title_and_everything_else_fit_inside_the_image(count: int) -> None:
    panels, points = lowdata()
    panels = (panels * 2)[:count]
    panels = [Panel(f"d{i}", p.metrics, p.x_label) for i, p in enumerate(panels)]
    points = [
        Point(p.series, f"d{i}", p.metric, p.x, p.mean, p.sd, p.n, p.values)
        for i in range(count)
        for p in points
    ]
    claims = [("holds", "a claim " * 40), ("fails", "short")]
    marks = [PaperMark("d0", None, "note", "a statement " * 30, "")]
    with figure_style():
        fig = build_figure(LONG_TITLE, panels, points, marks, demo=True, claims=claims)
    title = fig._suptitle
    assert title is not None and "\n" in title.get_text()  # wrapped, not cut
    panel_axes = [ax for ax in fig.axes if ax.axison]
    assert_inside(fig, [title, *fig.texts, *fig.legends, *panel_axes])


def test_caption_claims_and_legend_do_not_overlap() -> None:
    panels, points = lowdata()
    marks = [PaperMark("e2e", None, "note", "PREFIX beats FINE-TUNE by 2.9 BLEU on average", "")]
    claims = [("holds", "PREFIX beats FINE-TUNE"), ("inconclusive", "comparable at 10 % " * 12)]
    with figure_style():
        fig = build_figure("t", panels, points, marks, claims=claims)
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    below = [t for t in fig.texts if t.get_text().strip()]
    boxes = [t.get_window_extent(renderer) for t in below] + [fig.legends[0].get_window_extent(renderer)]
    boxes += [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible() and ax.axison]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            overlap_h = min(a.x1, b.x1) - max(a.x0, b.x0)
            overlap_v = min(a.y1, b.y1) - max(a.y0, b.y0)
            assert overlap_h <= 0 or overlap_v <= 0.5, (a, b)


# --- the paper's numbers as marks ---------------------------------------------------------------------------


def test_the_paper_gap_is_drawn_beside_the_reproduced_lines() -> None:
    panels, points = lowdata()
    marks = paper_marks("figure3", FIG3, both_versions())
    gap = next(m for m in marks if m.kind == "gap")
    assert gap.value == ("FINE-TUNE", 2.9) and gap.metric == "BLEU" and "_" not in gap.label
    with figure_style():
        fig = build_figure("t", panels, points, marks)
    bleu = next(ax for ax in fig.axes if ax.get_title() == "E2E · BLEU")
    paper_lines = [line for line in bleu.get_lines() if line.get_color() == PAPER_COLOR]
    assert len(paper_lines) == 1 and paper_lines[0].get_markerfacecolor() == "none"  # hollow: the paper's
    ft = sorted((p for p in points if p.series == "FINE-TUNE" and p.metric == "BLEU"), key=lambda p: p.x)
    assert list(paper_lines[0].get_ydata()) == pytest.approx([p.mean + 2.9 for p in ft])
    assert any(t.get_text().startswith("paper: FINE-TUNE + 2.9 BLEU") for t in fig.legends[0].get_texts())


def test_a_paper_x_in_range_is_a_dashed_line_and_out_of_range_does_not_squash_the_data() -> None:
    marks = paper_marks("figure4", FIG4, both_versions())
    assert {(m.dataset, m.value) for m in marks if m.kind == "vline"} == {("xsum", 200.0), ("dart", 10.0)}
    panels = [Panel("xsum", ("ROUGE-2",), "prefix length"), Panel("dart", ("BLEU",), "prefix length")]
    points = [point("PREFIX", "xsum", "ROUGE-2", x, 20) for x in (1, 10)]
    points += [point("PREFIX", "dart", "BLEU", x, 40) for x in (5, 10, 20)]
    with figure_style():
        fig = build_figure("t", panels, points, marks)
    xsum, dart = (next(ax for ax in fig.axes if ax.get_title().startswith(n)) for n in ("XSUM", "DART"))
    assert any(list(line.get_xdata()) == [10.0, 10.0] for line in dart.get_lines())
    assert xsum.get_xlim()[1] < 50  # 200 did not stretch the axis
    assert "paper: 200 →" in xsum.get_xlabel()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "paper: best length 200 (beyond the plotted range)" in labels and "paper: best length 10" in labels


# --- claims strip -------------------------------------------------------------------------------------------


def test_the_claims_strip_is_drawn_coloured_and_inside() -> None:
    panels, points = lowdata()
    claims = [
        ("holds", "PREFIX beats FINE-TUNE by 2.9 BLEU on average over sizes 50–500"),
        ("FAILS", "prefix length 200 is best for XSUM " + "and more words " * 20),
        ("inconclusive", "random init has lower mean and higher variance than real words"),
    ]
    with figure_style():
        fig = build_figure("t", panels, points, [], claims=claims)
    lines = [t for t in fig.texts if t.get_text().strip() and t is not fig._suptitle]
    starts = {v: next(t for t in lines if t.get_text().startswith(f"{v.upper()} — ")) for v in VERDICT_COLORS}
    for verdict, text in starts.items():
        assert text.get_color() == VERDICT_COLORS[verdict]
    wrapped = [t for t in lines if t.get_color() == VERDICT_COLORS["fails"]]
    assert len(wrapped) > 1  # the long claim wraps instead of running off the image
    assert_inside(fig, lines)
    top_of_strip = max(t.get_window_extent().y1 for t in lines)
    assert top_of_strip <= min(ax.get_tightbbox().y0 for ax in fig.axes if ax.axison)  # under the panels


def test_a_figure_without_claims_has_no_strip_and_bad_verdicts_are_rejected() -> None:
    panels, points = lowdata()
    with figure_style():
        fig = build_figure("t", panels, points, [])
        assert not [t for t in fig.texts if "Claims" in t.get_text()]
        with pytest.raises(ValueError, match="verdict must be one of"):
            build_figure("t", panels, points, [], claims=[("maybe", "x")])


def test_the_page_passes_claims_to_the_image(tmp_path: Path) -> None:
    claims = [("holds", "PREFIX better than FINE-TUNE above 20 % of the data")]
    build_page("figure6", FIG6, both_versions(), "# p", tmp_path / "figure6", demo=False, claims=claims)
    assert (tmp_path / "figure6.png").read_bytes()[:4] == b"\x89PNG"
