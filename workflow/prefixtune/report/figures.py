"""The paper's figures (3-6 and the appendix variants) drawn from already aggregated points.

Pure plotting: callers pass :class:`Point` (one aggregated x-value of one series on one metric), :class:`Panel`
(one subplot) and :class:`PaperMark` (what the paper states about a panel); nothing here reads runs or files.

Output is reproducible byte for byte: the Agg canvas, Matplotlib's default style plus fixed rcParams, fixed figure
sizes and DPI, deterministic replicate jitter, and no timestamps or version strings in the PNG/PDF metadata. Files
are written atomically (temp file in the same folder, then rename).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib import rc_context, style
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import NullFormatter, ScalarFormatter

from prefixtune.provenance import write_bytes_atomic

DEMO_TEXT = "DEMO — tiny models, synthetic data"
NO_RUNS_TEXT = "no runs yet"
DATASET_NAMES = {"e2e": "E2E", "xsum": "XSUM", "dart": "DART", "webnlg": "WebNLG"}
SERIES_COLORS = {  # fixed colours for the paper's methods, so every figure agrees
    "PREFIX": "#1f77b4",
    "FINE-TUNE": "#ff7f0e",
    "FT-FULL": "#ff7f0e",
    "FINETUNE": "#ff7f0e",
    "ADAPTER": "#2ca02c",
    "FT-TOP2": "#9467bd",
}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
PALETTE += ("#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")
METRIC_LINESTYLES = ("-", "--")
METRIC_MARKERS = ("o", "s")
VLINE_STYLES = ("--", ":", "-.")
BAND_COLORS = ("0.55", "#d4a017")  # paper y-range band per metric axis (primary, twin)
MARK_KINDS = ("vline", "yrange", "note")
PANEL_W, PANEL_H, TITLE_H = 4.4, 4.6, 0.7  # inches; the figure size depends only on the panel count
DPI = 150
PLOT_SHARE = 0.78  # of each panel's height; the rest holds its legend
RC = {
    "svg.hashsalt": "prefixtune",
    "pdf.fonttype": 42,
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "legend.fontsize": 7.5,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
}
PNG_METADATA: dict[str, str | None] = {"Software": None}
PDF_METADATA: dict[str, str | None] = {"CreationDate": None, "Producer": None, "Creator": None}


@dataclass(frozen=True)
class Point:
    """One aggregated x-value of one series on one metric."""

    series: str  # e.g. "PREFIX", "FINE-TUNE", or for figure 5 the init condition
    dataset: str  # "e2e", "xsum", "dart"
    metric: str  # paper metric name, e.g. "BLEU", "ROUGE-2", "TER"
    x: float | str  # training size, prefix length, data percent; or a category (figure 5: "random", ...)
    mean: float
    sd: float  # sample sd over replicates (0.0 when n == 1)
    n: int
    values: tuple[float, ...] = ()  # the replicate values (plotted as faint dots)


@dataclass(frozen=True)
class Panel:
    """One subplot: a dataset and one metric, or two metrics on twin y-axes."""

    dataset: str
    metrics: tuple[str, ...]
    x_label: str  # e.g. "training examples", "prefix length", "% of E2E training data"
    y_labels: tuple[str, ...] = ()  # one per metric with its scale, e.g. "BLEU (×100)"; default: metric
    x_scale: str = "linear"  # or "log"; categorical x when the points' x are strings
    title: str = ""  # default: "E2E · BLEU"
    categories: tuple[str, ...] = ()  # categorical x order; unlisted categories follow by first appearance


@dataclass(frozen=True)
class PaperMark:
    """What the paper states about a panel: a best/crossover x, its y tick range, or a note.

    ``value`` must be on the same scale as the plotted points (convert the paper's 0.50-0.60 BLEU to 50-60 when
    the points are ×100).
    """

    dataset: str
    metric: str | None  # None = applies to the panel
    kind: str  # "vline" | "yrange" | "note"
    value: float | tuple[float, float] | str
    label: str


@dataclass
class _PanelAxes:
    """The axes of one panel (one per metric) and the legend entries collected while drawing."""

    axes: list[Axes]
    handles: list[object] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def add(self, handle: object, label: str) -> None:
        self.handles.append(handle)
        self.labels.append(label)


# --- validation and grouping -------------------------------------------------------------------------------


def _check_panel(panel: Panel) -> None:
    """Reject panels the drawing code cannot honour."""
    if len(panel.metrics) not in (1, 2):
        raise ValueError(f"panel {panel.dataset}: 1 or 2 metrics expected, got {panel.metrics}")
    if panel.y_labels and len(panel.y_labels) != len(panel.metrics):
        raise ValueError(f"panel {panel.dataset}: {len(panel.metrics)} metrics but y_labels {panel.y_labels}")
    if panel.x_scale not in ("linear", "log"):
        raise ValueError(f"panel {panel.dataset}: x_scale must be 'linear' or 'log', got {panel.x_scale!r}")


def _check_mark(mark: PaperMark) -> None:
    """Reject marks whose value does not fit their kind."""
    if mark.kind not in MARK_KINDS:
        raise ValueError(f"paper mark {mark.label!r}: kind must be one of {MARK_KINDS}, got {mark.kind!r}")
    if mark.kind == "yrange" and not (isinstance(mark.value, tuple) and len(mark.value) == 2):
        raise ValueError(f"paper mark {mark.label!r}: a yrange value is a (low, high) pair")
    if mark.kind == "vline" and isinstance(mark.value, tuple):
        raise ValueError(f"paper mark {mark.label!r}: a vline value is one x (a number or a category)")


def _panel_points(panel: Panel, points: Sequence[Point]) -> list[Point]:
    """The points drawn in a panel; duplicates of one (series, metric, x) are an aggregation error."""
    mine = [p for p in points if p.dataset == panel.dataset and p.metric in panel.metrics]
    seen: set[tuple[str, str, float | str]] = set()
    for p in mine:
        key = (p.series, p.metric, p.x)
        if key in seen:
            raise ValueError(
                f"panel {panel.dataset}: two points for series {p.series!r} {p.metric} x={p.x!r}"
            )
        seen.add(key)
    return mine


def _is_categorical(panel: Panel, points: Sequence[Point]) -> bool:
    """True when every x is a string; mixing strings and numbers in one panel is an error."""
    kinds = {isinstance(p.x, str) for p in points}
    if len(kinds) > 1:
        raise ValueError(f"panel {panel.dataset}: x values mix categories and numbers")
    categorical = kinds == {True}
    if not categorical and panel.x_scale == "log" and any(float(p.x) <= 0 for p in points):
        raise ValueError(f"panel {panel.dataset}: a log x axis needs positive x values")
    return categorical


def _unique(items: Sequence[str]) -> list[str]:
    """Items in order of first appearance, without repeats."""
    return list(dict.fromkeys(items))


def _series_colors(points: Sequence[Point]) -> dict[str, str]:
    """A stable colour per series: the paper's methods fixed, others from the palette by first appearance."""
    colors: dict[str, str] = {}
    free = [c for c in PALETTE if c not in SERIES_COLORS.values()] + list(PALETTE)
    for name in _unique([p.series for p in points]):
        colors[name] = SERIES_COLORS.get(name.upper()) or free[len(colors) % len(free)]
    return colors


def _n_text(ns: Sequence[int]) -> str:
    """``n = 10`` or ``n = 2–10`` for the replicate counts of one series."""
    low, high = min(ns), max(ns)
    return f"n = {low}" if low == high else f"n = {low}–{high}"


def _paper_label(label: str) -> str:
    """Legend text of a paper mark, always prefixed ``paper:``."""
    return label if label.lower().startswith("paper") else f"paper: {label}"


# --- drawing ------------------------------------------------------------------------------------------------


def _offsets(count: int, width: float) -> np.ndarray:
    """``count`` evenly spread offsets in [-width/2, width/2] (deterministic jitter)."""
    if count <= 1:
        return np.zeros(max(count, 0))
    return np.linspace(-width / 2, width / 2, count)


def _dot_xs(x: float, count: int, panel: Panel, span: float, dodge: float) -> np.ndarray:
    """x positions of the replicate dots around a numeric x, shifted by the series' dodge."""
    if panel.x_scale == "log":
        return x * np.power(10.0, dodge * 0.02 + _offsets(count, 0.02))
    return x + span * (dodge * 0.012 + _offsets(count, 0.012))


def _draw_dots(ax: Axes, xs: np.ndarray, values: Sequence[float], color: str) -> None:
    """Faint replicate dots; non-finite values are skipped."""
    ys = np.asarray(values, dtype=float)
    keep = np.isfinite(ys)
    if keep.any():
        ax.scatter(xs[keep], ys[keep], s=9, color=color, alpha=0.35, linewidths=0, zorder=2)


def _line_style(series_color: str, index: int, single_series: bool) -> tuple[str, str, str]:
    """(colour, linestyle, marker) of one series on the metric at ``index`` of its panel."""
    color = PALETTE[3 + index] if single_series and index > 0 else series_color
    return color, METRIC_LINESTYLES[index], METRIC_MARKERS[index]


def _draw_numeric_series(
    ax: Axes, panel: Panel, pts: list[Point], style: tuple[str, str, str], dodge: float, span: float
) -> Line2D:
    """One series on one metric: mean line with markers, ±sd band (n ≥ 2), replicate dots."""
    color, linestyle, marker = style
    pts = sorted(pts, key=lambda p: float(p.x))
    xs = np.array([float(p.x) for p in pts])
    means = np.array([p.mean for p in pts], dtype=float)
    sds = np.array([p.sd for p in pts], dtype=float)
    (line,) = ax.plot(xs, means, color=color, linestyle=linestyle, marker=marker, markersize=4.5, zorder=3)
    replicated = np.array([p.n >= 2 for p in pts])
    if len(pts) >= 2 and replicated.all():
        ax.fill_between(xs, means - sds, means + sds, color=color, alpha=0.15, linewidth=0, zorder=1)
    elif replicated.any():
        ax.errorbar(
            xs[replicated], means[replicated], yerr=sds[replicated], fmt="none", ecolor=color, capsize=3
        )
    for p in pts:
        _draw_dots(ax, _dot_xs(float(p.x), len(p.values), panel, span, dodge), p.values, color)
    return line


def _draw_numeric(pax: _PanelAxes, panel: Panel, pts: list[Point], colors: dict[str, str]) -> None:
    """Every series of a numeric-x panel, one line per (series, metric)."""
    series = _unique([p.series for p in pts])
    xs = [float(p.x) for p in pts]
    span = (max(xs) - min(xs)) or 1.0
    dodges = _offsets(len(series), len(series) - 1.0)
    for s_index, name in enumerate(series):
        for m_index, metric in enumerate(panel.metrics):
            own = [p for p in pts if p.series == name and p.metric == metric]
            if not own:
                continue
            style = _line_style(colors[name], m_index, len(series) == 1)
            line = _draw_numeric_series(pax.axes[m_index], panel, own, style, dodges[s_index], span)
            pax.add(line, _series_label(name, metric, panel, own))
    _numeric_ticks(pax.axes[0], panel, sorted(set(xs)))


def _series_label(name: str, metric: str, panel: Panel, own: Sequence[Point]) -> str:
    """Legend text of one series: its name, the metric on twin-axis panels, and its replicate count."""
    what = f"{name} · {metric}" if len(panel.metrics) > 1 else name
    return f"{what} ({_n_text([p.n for p in own])})"


def _numeric_ticks(ax: Axes, panel: Panel, xs: list[float]) -> None:
    """On a log axis, tick exactly the plotted x values (50, 100, 200, 500) in plain numbers."""
    if panel.x_scale != "log" or not xs or len(xs) > 10:
        return
    ax.set_xticks(xs)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def _categories(panel: Panel, pts: Sequence[Point]) -> list[str]:
    """Categorical x order: the panel's list first, then any others by first appearance."""
    return _unique([*panel.categories, *[str(p.x) for p in pts]])


def _draw_categorical(pax: _PanelAxes, panel: Panel, pts: list[Point], colors: dict[str, str]) -> None:
    """Points with ±sd error bars (n ≥ 2) and jittered replicate dots, dodged per category."""
    cats = _categories(panel, pts)
    series = _unique([p.series for p in pts])
    tracks = [(s, m) for s in series for m in range(len(panel.metrics))]
    drawn: dict[tuple[str, int], list[Point]] = {}
    for c_index, cat in enumerate(cats):
        here = [t for t in tracks if _track_point(pts, panel, t, cat) is not None]
        slot = 0.7 / max(len(here), 1)
        for t_index, track in enumerate(here):
            p = _track_point(pts, panel, track, cat)
            assert p is not None
            x = c_index + (t_index - (len(here) - 1) / 2) * slot
            style = _line_style(colors[track[0]], track[1], len(series) == 1)
            _draw_category_point(pax.axes[track[1]], p, x, slot, style)
            drawn.setdefault(track, []).append(p)
    for track, own in drawn.items():
        color, _, marker = _line_style(colors[track[0]], track[1], len(series) == 1)
        handle = Line2D([], [], color=color, marker=marker, linestyle="none")
        pax.add(handle, _series_label(track[0], panel.metrics[track[1]], panel, own))
    pax.axes[0].set_xticks(range(len(cats)), cats, rotation=30, ha="right")
    pax.axes[0].set_xlim(-0.6, len(cats) - 0.4)


def _track_point(pts: Sequence[Point], panel: Panel, track: tuple[str, int], cat: str) -> Point | None:
    """The point of one (series, metric index) at one category, if any."""
    metric = panel.metrics[track[1]]
    return next((p for p in pts if p.series == track[0] and p.metric == metric and str(p.x) == cat), None)


def _draw_category_point(ax: Axes, p: Point, x: float, slot: float, style: tuple[str, str, str]) -> None:
    """One category's mean marker, its sd error bar when n ≥ 2, and its replicate dots."""
    color, _, marker = style
    yerr = [p.sd] if p.n >= 2 else None
    ax.errorbar([x], [p.mean], yerr=yerr, fmt=marker, color=color, markersize=5, capsize=3, zorder=3)
    _draw_dots(ax, x + _offsets(len(p.values), slot * 0.6), p.values, color)


# --- paper marks --------------------------------------------------------------------------------------------


def _marks_for(panel: Panel, marks: Sequence[PaperMark]) -> list[PaperMark]:
    """The marks that apply to a panel: same dataset, and no metric or one of the panel's metrics."""
    return [
        m for m in marks if m.dataset == panel.dataset and (m.metric is None or m.metric in panel.metrics)
    ]


def _metric_range(panel: Panel, pts: Sequence[Point], metric: str) -> tuple[float, float] | None:
    """Lowest and highest y drawn for a metric (means ± sd and replicates), or None without data."""
    ys: list[float] = []
    for p in pts:
        if p.metric == metric:
            ys += [p.mean - p.sd, p.mean + p.sd, *p.values]
    finite = [y for y in ys if math.isfinite(y)]
    return (min(finite), max(finite)) if finite else None


def _vline_x(value: object, cats: list[str] | None) -> float | None:
    """Where a vline value sits on the x axis: a number, or a category's index; None when it is not there."""
    if cats is not None:
        return float(cats.index(str(value))) if str(value) in cats else None
    if isinstance(value, str):
        return None
    return float(value)  # type: ignore[arg-type]


def _draw_vline(pax: _PanelAxes, mark: PaperMark, index: int, cats: list[str] | None) -> None:
    """A paper x (best length, crossover) as a labelled vertical line; on categorical axes, a category name."""
    x = _vline_x(mark.value, cats)
    if x is None:
        pax.add(Line2D([], [], linestyle="none"), f"{_paper_label(mark.label)} (not on this axis)")
        return
    line = pax.axes[0].axvline(x, color="0.2", linestyle=VLINE_STYLES[index % len(VLINE_STYLES)], linewidth=1)
    pax.add(line, _paper_label(mark.label))


def _draw_yrange(pax: _PanelAxes, panel: Panel, pts: Sequence[Point], mark: PaperMark) -> None:
    """The paper's y tick range as a light band, or a legend note when it lies off this figure's data."""
    m_index = panel.metrics.index(mark.metric) if mark.metric in panel.metrics else 0
    low, high = sorted(float(v) for v in mark.value)  # type: ignore[union-attr]
    color = BAND_COLORS[m_index]
    data = _metric_range(panel, pts, panel.metrics[m_index])
    if data is None or (low <= data[1] and high >= data[0]):
        band = pax.axes[m_index].axhspan(low, high, color=color, alpha=0.13, linewidth=0, zorder=0)
        pax.add(band, _paper_label(mark.label))
    else:
        proxy = Patch(facecolor=color, alpha=0.13, edgecolor=color, linestyle=":")
        pax.add(proxy, f"{_paper_label(mark.label)} (off this scale)")


def _draw_marks(
    pax: _PanelAxes, panel: Panel, pts: Sequence[Point], marks: Sequence[PaperMark], cats: list[str] | None
) -> None:
    """Every paper mark of a panel, each with a legend entry."""
    vlines = 0
    for mark in _marks_for(panel, marks):
        if mark.kind == "vline":
            _draw_vline(pax, mark, vlines, cats)
            vlines += 1
        elif mark.kind == "yrange":
            _draw_yrange(pax, panel, pts, mark)
        else:
            text = f"{mark.label}: {mark.value}" if mark.label else str(mark.value)
            pax.add(Line2D([], [], linestyle="none"), _paper_label(text))


# --- figure assembly ----------------------------------------------------------------------------------------


def _grid(count: int) -> tuple[int, int]:
    """(rows, cols): one row up to 3 panels, 2 × 2 for 4, then rows of 3."""
    cols = count if count <= 3 else (2 if count == 4 else 3)
    return math.ceil(count / cols), cols


def _default_title(panel: Panel) -> str:
    """``E2E · BLEU`` or ``XSUM · ROUGE-2 & ROUGE-L``."""
    return f"{DATASET_NAMES.get(panel.dataset, panel.dataset.upper())} · {' & '.join(panel.metrics)}"


def _label_axes(pax: _PanelAxes, panel: Panel, single_series: bool) -> None:
    """Title, x label (with the scale when log) and one y label per metric axis (coloured like its line)."""
    ax = pax.axes[0]
    ax.set_title(panel.title or _default_title(panel))
    scale_note = "" if panel.x_scale != "log" or "log" in panel.x_label else " (log scale)"
    ax.set_xlabel(panel.x_label + scale_note)
    y_labels = panel.y_labels or panel.metrics
    for index, (axis, label) in enumerate(zip(pax.axes, y_labels)):
        axis.set_ylabel(label, color=PALETTE[3 + index] if index and single_series else "black")
    ax.grid(True, color="0.9", linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)


def _draw_panel(
    ax: Axes,
    legend_ax: Axes,
    panel: Panel,
    points: Sequence[Point],
    marks: Sequence[PaperMark],
    colors: dict[str, str],
) -> None:
    """One subplot: axes (twin when two metrics), series, paper marks, labels, and its legend below it."""
    _check_panel(panel)
    pax = _PanelAxes([ax, ax.twinx()] if len(panel.metrics) == 2 else [ax])
    if panel.x_scale == "log":
        ax.set_xscale("log")
    pts = _panel_points(panel, points)
    cats: list[str] | None = None
    if not pts:
        ax.text(
            0.5, 0.5, NO_RUNS_TEXT, transform=ax.transAxes, ha="center", va="center", color="0.4", fontsize=11
        )
        cats = list(panel.categories) or None
    elif _is_categorical(panel, pts):
        cats = _categories(panel, pts)
        _draw_categorical(pax, panel, pts, colors)
    else:
        _draw_numeric(pax, panel, pts, colors)
    _draw_marks(pax, panel, pts, marks, cats)
    if not pts and not pax.handles:
        for axis in pax.axes:
            axis.set_xticks([])
            axis.set_yticks([])
    _label_axes(pax, panel, len({p.series for p in pts}) == 1)
    legend_ax.set_axis_off()
    if pax.handles:
        legend_ax.legend(pax.handles, pax.labels, loc="upper center", ncols=2, frameon=False)


def _add_demo(fig: Figure) -> None:
    """A diagonal translucent watermark across the whole figure (the subtitle is in the suptitle)."""
    fig.text(
        0.5, 0.5, DEMO_TEXT, ha="center", va="center", rotation=25, fontsize=26, color="#d62728", alpha=0.12
    )


def build_figure(
    title: str,
    panels: Sequence[Panel],
    points: Sequence[Point],
    marks: Sequence[PaperMark],
    demo: bool = False,
) -> Figure:
    """The figure, drawn on an Agg canvas; call inside :func:`figure_style` when saving it yourself."""
    for mark in marks:
        _check_mark(mark)
    count = max(len(panels), 1)
    rows, cols = _grid(count)
    fig = Figure(figsize=(cols * PANEL_W, rows * PANEL_H + TITLE_H), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(f"{title}\n{DEMO_TEXT}" if demo else title, color="black")
    if demo:
        _add_demo(fig)
    grid = fig.add_gridspec(2 * rows, cols, height_ratios=[PLOT_SHARE, 1.0 - PLOT_SHARE] * rows)
    colors = _series_colors(points)
    for index in range(rows * cols):
        row, col = divmod(index, cols)
        ax, legend_ax = fig.add_subplot(grid[2 * row, col]), fig.add_subplot(grid[2 * row + 1, col])
        if index < len(panels):
            _draw_panel(ax, legend_ax, panels[index], points, marks, colors)
        else:
            ax.set_axis_off()
            legend_ax.set_axis_off()
        if not panels:
            ax.text(0.5, 0.5, NO_RUNS_TEXT, transform=ax.transAxes, ha="center", va="center")
    return fig


@contextmanager
def figure_style() -> Iterator[None]:
    """Matplotlib's default style plus fixed rcParams, whatever the user's matplotlibrc says."""
    with style.context("default"), rc_context(RC):
        yield


def figure_bytes(fig: Figure, fmt: str) -> bytes:
    """The figure encoded as ``png`` or ``pdf`` with reproducible metadata (no dates, no versions)."""
    metadata = {"png": PNG_METADATA, "pdf": PDF_METADATA}.get(fmt)
    if metadata is None:
        raise ValueError(f"figure format must be 'png' or 'pdf', got {fmt!r}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata)
    return buffer.getvalue()


def plot_figure(
    title: str,
    panels: list[Panel],
    points: list[Point],
    marks: list[PaperMark],
    out_png: Path,
    out_pdf: Path,
    demo: bool = False,
) -> None:
    """Draw the figure and write it atomically as PNG and PDF (identical bytes for identical inputs)."""
    with figure_style():
        fig = build_figure(title, panels, points, marks, demo=demo)
        png, pdf = figure_bytes(fig, "png"), figure_bytes(fig, "pdf")
    write_bytes_atomic(Path(out_png), png)
    write_bytes_atomic(Path(out_pdf), pdf)


# --- Figure 3, left panel -----------------------------------------------------------------------------------


def _md_cell(text: object) -> str:
    """Markdown-safe table cell: backslashes and pipes escaped, line breaks flattened."""
    flat = " ".join(str(text).split())
    return flat.replace("\\", "\\\\").replace("|", "\\|")


def qualitative_markdown(source: str, rows: list[tuple[str, int | str, str]]) -> str:
    """Figure 3's left panel as markdown: the source table, then each (method, training size, generated text)."""
    lines = [
        f"**Source:** {_md_cell(source)}",
        "",
        "| method | training size | generated text |",
        "|---|---:|---|",
    ]
    lines += [f"| {_md_cell(method)} | {_md_cell(size)} | {_md_cell(text)} |" for method, size, text in rows]
    if not rows:
        lines.append("| _no runs yet_ | | |")
    return "\n".join(lines) + "\n"
