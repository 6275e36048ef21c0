"""The paper's figures from aggregated points (prefixtune.report.figures): files, marks, empty data, tables."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from prefixtune.report.figures import (
    DEMO_TEXT,
    NO_RUNS_TEXT,
    Panel,
    PaperMark,
    Point,
    build_figure,
    figure_style,
    plot_figure,
    qualitative_markdown,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SIZES = (50, 100, 200, 500)
INIT_WORDS = ("random", "active", "elephant", "summarize", "table-to-text:", "banana")
EAGLE = (
    "name : The Eagle | Type : coffee shop | food : Chinese | price : cheap | customer rating : average | "
    "area : riverside | family friendly : no | near : Burger King"
)


def point(series: str, dataset: str, metric: str, x: float | str, base: float, n: int = 3) -> Point:
    """An aggregated point over ``n`` made-up replicates around ``base``."""
    values = tuple(base + 0.4 * i for i in range(n))
    sd = statistics.stdev(values) if n > 1 else 0.0
    return Point(series, dataset, metric, x, statistics.fmean(values), sd, n, values)


def figure3() -> tuple[list[Panel], list[Point], list[PaperMark]]:
    """2 datasets × 2 metrics, training sizes on a log axis, PREFIX vs FINE-TUNE."""
    metrics = {"xsum": ("ROUGE-1", "ROUGE-2"), "e2e": ("BLEU", "ROUGE-L")}
    panels = [
        Panel(ds, (m,), "training examples", (f"{m} (×100)",), x_scale="log")
        for ds, ms in metrics.items()
        for m in ms
    ]
    points = [
        point(series, ds, m, size, 30 + gap + size / 100)
        for series, gap in (("PREFIX", 2.0), ("FINE-TUNE", 0.0))
        for ds, ms in metrics.items()
        for m in ms
        for size in SIZES
    ]
    marks = [PaperMark("e2e", "BLEU", "yrange", (30.0, 40.0), "BLEU axis 0.50–0.60 (×100 here)")]
    return panels, points, marks


def figure4() -> tuple[list[Panel], list[Point], list[PaperMark]]:
    """Two twin-axis panels (ROUGE-2 & ROUGE-L, BLEU & TER) over prefix length, plus an empty panel."""
    panels = [
        Panel("xsum", ("ROUGE-2", "ROUGE-L"), "prefix length", ("ROUGE-2 (×100)", "ROUGE-L (×100)")),
        Panel("dart", ("BLEU", "TER"), "prefix length", ("BLEU (×100)", "TER (fraction, lower is better)")),
        Panel("webnlg", ("BLEU",), "prefix length"),
    ]
    points = [
        point("PREFIX", "xsum", m, x, b)
        for x in (1, 10, 100, 200, 300)
        for m, b in (("ROUGE-2", 20), ("ROUGE-L", 35))
    ]
    points += [
        point("PREFIX", "dart", m, x, b, n=1)
        for x in (1, 5, 10, 40)
        for m, b in (("BLEU", 45), ("TER", 0.47))
    ]
    marks = [
        PaperMark("xsum", None, "vline", 200, "best length 200"),
        PaperMark("dart", None, "vline", 10, "paper: best length 10"),
        PaperMark("dart", "TER", "yrange", (0.46, 0.48), "TER axis 0.460–0.480"),
    ]
    return panels, points, marks


def figure5() -> tuple[list[Panel], list[Point], list[PaperMark]]:
    """Categorical x: one point per initialization condition."""
    panels = [Panel("e2e", ("BLEU",), "prefix initialization", ("BLEU (×100)",), categories=INIT_WORDS)]
    points = [point(word, "e2e", "BLEU", word, 50 + i, n=2) for i, word in enumerate(INIT_WORDS)]
    marks = [
        PaperMark("e2e", "BLEU", "yrange", (45.0, 60.0), "BLEU axis 0.45–0.60"),
        PaperMark("e2e", None, "note", "real words beat random", "finding"),
    ]
    return panels, points, marks


def legend_texts(fig) -> list[str]:
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    return [t.get_text() for legend in legends for t in legend.get_texts()]


def build(spec, demo: bool = False):
    panels, points, marks = spec()
    with figure_style():
        return build_figure("title", panels, points, marks, demo=demo)


@pytest.mark.parametrize("spec", [figure3, figure5], ids=["fig3", "fig5-categorical"])
def test_png_and_pdf_are_written_and_valid(tmp_path: Path, spec) -> None:
    panels, points, marks = spec()
    png, pdf = tmp_path / "out" / "fig.png", tmp_path / "out" / "fig.pdf"
    plot_figure("Figure", panels, points, marks, png, pdf, demo=True)
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert pdf.read_bytes().startswith(b"%PDF-") and pdf.read_bytes().rstrip().endswith(b"%%EOF")
    assert b"CreationDate" not in pdf.read_bytes()
    assert sorted(p.name for p in png.parent.iterdir()) == ["fig.pdf", "fig.png"]  # no temp files left


def test_two_calls_give_identical_valid_bytes(tmp_path: Path) -> None:
    panels, points, marks = figure4()  # twin axes, bands, dots, marks and an empty panel: the figure-4 case
    outs = []
    for run in ("a", "b"):
        png, pdf = tmp_path / f"{run}.png", tmp_path / f"{run}.pdf"
        plot_figure("Figure 4", panels, points, marks, png, pdf, demo=True)
        outs.append((png.read_bytes(), pdf.read_bytes()))
    assert outs[0][0].startswith(PNG_MAGIC) and outs[0][1].startswith(b"%PDF-")
    assert outs[0] == outs[1]


def test_twin_axes_carry_both_metric_labels() -> None:
    fig = build(figure4)
    y_labels = {ax.get_ylabel() for ax in fig.axes}
    assert {"ROUGE-2 (×100)", "ROUGE-L (×100)", "BLEU (×100)", "TER (fraction, lower is better)"} <= y_labels
    assert "PREFIX · TER (n = 1)" in legend_texts(fig)


def test_paper_marks_are_drawn_and_labelled() -> None:
    fig = build(figure4)
    texts = legend_texts(fig)
    assert "paper: best length 200" in texts and "paper: best length 10" in texts  # no doubled "paper:"
    assert "paper: TER axis 0.460–0.480" in texts
    xsum_ax = next(ax for ax in fig.axes if ax.get_title().startswith("XSUM"))
    assert any(list(line.get_xdata()) == [200.0, 200.0] for line in xsum_ax.get_lines())


def test_yrange_far_from_data_is_noted_not_drawn() -> None:
    panels, points, _ = figure3()
    marks = [PaperMark("e2e", "BLEU", "yrange", (0.50, 0.60), "BLEU axis 0.50–0.60")]
    with figure_style():
        fig = build_figure("t", panels, points, marks)
    assert "paper: BLEU axis 0.50–0.60 (off this scale)" in legend_texts(fig)
    bleu_ax = next(ax for ax in fig.axes if ax.get_title() == "E2E · BLEU")
    assert bleu_ax.get_ylim()[0] > 1.0  # the band did not stretch the axis down to the paper's fraction scale


def test_replicates_give_a_band_and_single_runs_do_not() -> None:
    fig = build(figure4)
    by_title = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    xsum, dart = by_title["XSUM · ROUGE-2 & ROUGE-L"], by_title["DART · BLEU & TER"]
    bands = [c for ax in fig.axes for c in ax.collections if type(c).__name__ == "FillBetweenPolyCollection"]
    assert bands and all(c.axes.bbox.bounds == xsum.bbox.bounds for c in bands)  # only the n = 3 panel
    assert not any(type(c).__name__ == "FillBetweenPolyCollection" for c in dart.collections)
    assert "PREFIX · ROUGE-2 (n = 3)" in legend_texts(fig)


def test_empty_panel_says_no_runs_yet() -> None:
    fig = build(figure4)
    webnlg = next(ax for ax in fig.axes if ax.get_title() == "WebNLG · BLEU")
    assert [t.get_text() for t in webnlg.texts] == [NO_RUNS_TEXT]


def test_no_points_at_all_still_plots(tmp_path: Path) -> None:
    panels, _, marks = figure3()
    plot_figure("empty", panels[2:3], [], marks, tmp_path / "f.png", tmp_path / "f.pdf")
    assert (tmp_path / "f.png").read_bytes().startswith(PNG_MAGIC)


def test_categorical_axis_keeps_the_given_order() -> None:
    fig = build(figure5)
    ax = next(ax for ax in fig.axes if ax.get_title() == "E2E · BLEU")
    assert [t.get_text() for t in ax.get_xticklabels()] == list(INIT_WORDS)
    assert "random (n = 2)" in legend_texts(fig)
    caption = [t.get_text() for t in fig.texts]  # a note is the figure's caption, not a legend entry
    assert "paper: finding: real words beat random" in caption
    assert "paper: finding: real words beat random" not in legend_texts(fig)


def test_demo_subtitle_only_in_demo() -> None:
    assert DEMO_TEXT in build(figure5, demo=True)._suptitle.get_text()
    assert DEMO_TEXT not in build(figure5)._suptitle.get_text()


def test_bad_inputs_are_rejected() -> None:
    panels, points, _ = figure3()
    with figure_style(), pytest.raises(ValueError, match="mix categories"):
        build_figure("t", panels[:1], [*points, point("PREFIX", "xsum", "ROUGE-1", "fifty", 1.0)], [])
    with figure_style(), pytest.raises(ValueError, match="kind"):
        build_figure("t", panels, points, [PaperMark("e2e", None, "arrow", 1.0, "x")])
    with figure_style(), pytest.raises(ValueError, match="two points"):
        build_figure("t", panels[:1], [*points, points[0]], [])


def test_qualitative_markdown_escapes_pipes() -> None:
    rows = [
        ("PREFIX", 50, "The Eagle is a cheap coffee shop | near Burger King."),
        ("FINE-TUNE", 100, "a\nb"),
    ]
    md = qualitative_markdown(EAGLE, rows)
    lines = md.splitlines()
    assert lines[0].startswith("**Source:** name : The Eagle \\| Type : coffee shop \\|")
    assert "| PREFIX | 50 | The Eagle is a cheap coffee shop \\| near Burger King. |" in lines
    assert "| FINE-TUNE | 100 | a b |" in lines
    for line in lines[2:]:
        assert line.replace("\\|", "").count("|") == 4  # every table row keeps exactly three cells
    assert "no runs yet" in qualitative_markdown(EAGLE, [])
