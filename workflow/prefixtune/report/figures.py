"""The paper's figures (3-6 and the appendix variants) drawn from already aggregated points.

Pure plotting: callers pass :class:`Point` (one aggregated x-value of one series on one metric), :class:`Panel`
(one subplot) and :class:`PaperMark` (what the paper states about a panel); nothing here reads runs or files.

Layout, for a reader: the title is wrapped to the figure's width; one legend for the whole figure (per panel only
when the panels show different series, e.g. twin metric axes); under the panels a caption with the paper's
statements, each once, and an optional strip of claim verdicts. Every text is measured before the figure size is
fixed, so nothing is cut at the image edge.

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
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
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
MARK_KINDS = ("vline", "yrange", "note", "gap")
PAPER_COLOR = "0.15"  # the paper's marks: dark grey, dashed or hollow, never a series colour
VERDICT_COLORS = {"holds": "#1a7f37", "fails": "#c62828", "inconclusive": "#8a6100"}
# inches: the figure size follows from the panel count and the measured lines of title, caption and claims
PANEL_W, PANEL_H, PANEL_LEGEND_H, MIN_W = 4.4, 3.8, 0.9, 6.4
TITLE_SIZE, CAPTION_SIZE, LINE_SPACING = 11.0, 8.5, 1.45  # points; line height = size × spacing
PAD_X, PAD_BOTTOM, GAP = 0.15, 0.1, 0.08
DPI = 150
PLOT_SHARE = 0.78  # of a panel's height when it has its own legend below it
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
    """What the paper states about a panel: a best/crossover x, its y tick range, a gap, or a note.

    ``value`` must be on the same scale as the plotted points (convert the paper's 0.50-0.60 BLEU to 50-60 when
    the points are ×100). ``vline``: one x; ``yrange``: (low, high); ``gap``: (reference series, gap), drawn as
    the reference series shifted by the gap (where the other series sits if the paper's average gap holds);
    ``note``: a sentence, printed once in the figure's caption (``label`` may be empty).
    """

    dataset: str
    metric: str | None  # None = applies to the panel
    kind: str  # "vline" | "yrange" | "note" | "gap"
    value: float | tuple[float, float] | tuple[str, float] | str
    label: str


@dataclass
class _Entry:
    """One legend entry: its handle, its name and the replicate counts behind it (none for paper marks)."""

    handle: object
    name: str
    ns: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.name} ({_n_text(self.ns)})" if self.ns else self.name


@dataclass
class _PanelAxes:
    """The axes of one panel (one per metric) and the legend entries collected while drawing."""

    axes: list[Axes]
    entries: list[_Entry] = field(default_factory=list)
    x_notes: list[str] = field(default_factory=list)  # appended to the x label (paper x values off the axis)

    def add(self, handle: object, name: str, ns: Sequence[int] = ()) -> None:
        self.entries.append(_Entry(handle, name, tuple(ns)))


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
    if mark.kind == "gap" and not (
        isinstance(mark.value, tuple) and len(mark.value) == 2 and isinstance(mark.value[0], str)
    ):
        raise ValueError(f"paper mark {mark.label!r}: a gap value is a (reference series, gap) pair")
    if mark.kind == "gap" and mark.metric is None:
        raise ValueError(f"paper mark {mark.label!r}: a gap needs the metric it is measured on")


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
            pax.add(line, _series_name(name, metric, panel), [p.n for p in own])
    _numeric_ticks(pax.axes[0], panel, sorted(set(xs)))


def _series_name(name: str, metric: str, panel: Panel) -> str:
    """Legend name of one series: the series, and the metric on twin-axis panels (the count is added later)."""
    return f"{name} · {metric}" if len(panel.metrics) > 1 else name


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
        pax.add(handle, _series_name(track[0], panel.metrics[track[1]], panel), [p.n for p in own])
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


def _draw_vline(
    pax: _PanelAxes, mark: PaperMark, index: int, cats: list[str] | None, xs: Sequence[float]
) -> None:
    """A paper x (best length, crossover) as a labelled vertical line; on categorical axes, a category name.

    An x outside the plotted x values (the demo's short sweeps) is not allowed to stretch the axis and squash the
    data: the x label points towards it instead ("paper: 200 →"), where it cannot cover data or the title.
    """
    x = _vline_x(mark.value, cats)
    linestyle = VLINE_STYLES[index % len(VLINE_STYLES)]
    if x is None:
        pax.add(Line2D([], [], linestyle="none"), f"{_paper_label(mark.label)} (not on this axis)")
        return
    if cats is None and xs and not min(xs) <= x <= max(xs):
        right = x > max(xs)
        pax.x_notes.append(f"paper: {x:g} →" if right else f"← paper: {x:g}")
        handle = Line2D([], [], color=PAPER_COLOR, linestyle=linestyle, linewidth=1)
        pax.add(handle, f"{_paper_label(mark.label)} (beyond the plotted range)")
        return
    line = pax.axes[0].axvline(x, color=PAPER_COLOR, linestyle=linestyle, linewidth=1)
    pax.add(line, _paper_label(mark.label))


def _draw_gap(
    pax: _PanelAxes, panel: Panel, pts: Sequence[Point], mark: PaperMark, categorical: bool
) -> None:
    """The paper's average gap: the reference series shifted by it, dotted with hollow markers."""
    reference, gap = mark.value  # type: ignore[misc]
    m_index = panel.metrics.index(mark.metric) if mark.metric in panel.metrics else 0
    own = [p for p in pts if p.series == reference and p.metric == panel.metrics[m_index]]
    label = _paper_label(mark.label)
    if not own or categorical:
        pax.add(Line2D([], [], linestyle="none"), f"{label} (no {reference} points to compare)")
        return
    own.sort(key=lambda p: float(p.x))
    xs = [float(p.x) for p in own]
    ys = [p.mean + float(gap) for p in own]
    (line,) = pax.axes[m_index].plot(
        xs, ys, color=PAPER_COLOR, linestyle=":", marker="o", markersize=6, markerfacecolor="none", zorder=4
    )
    pax.add(line, label)


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
    xs = [] if cats is not None else [float(p.x) for p in pts]
    for mark in _marks_for(panel, marks):
        if mark.kind == "vline":
            _draw_vline(pax, mark, vlines, cats, xs)
            vlines += 1
        elif mark.kind == "yrange":
            _draw_yrange(pax, panel, pts, mark)
        elif mark.kind == "gap":
            _draw_gap(pax, panel, pts, mark, cats is not None)
        # notes are the figure's caption, written once under the panels (see _caption_notes)


def _note_text(mark: PaperMark) -> str:
    """The caption line of a note mark, prefixed ``paper:``."""
    text = f"{mark.label}: {mark.value}" if mark.label and mark.label != "paper" else str(mark.value)
    return _paper_label(text)


def _caption_notes(marks: Sequence[PaperMark]) -> list[str]:
    """The paper's statements for the caption: every note once, in the order given."""
    return _unique([_note_text(m) for m in marks if m.kind == "note"])


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
    left = [note for note in pax.x_notes if note.startswith("←")]
    right = [note for note in pax.x_notes if note not in left]
    ax.set_xlabel("   ".join([*left, panel.x_label + scale_note, *right]))
    y_labels = panel.y_labels or panel.metrics
    for index, (axis, label) in enumerate(zip(pax.axes, y_labels)):
        axis.set_ylabel(label, color=PALETTE[3 + index] if index and single_series else "black")
    ax.grid(True, color="0.9", linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)


def _draw_panel(
    ax: Axes,
    panel: Panel,
    points: Sequence[Point],
    marks: Sequence[PaperMark],
    colors: dict[str, str],
) -> _PanelAxes:
    """One subplot: axes (twin when two metrics), series, paper marks and labels; returns its legend entries."""
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
    if not pts and not pax.entries:
        for axis in pax.axes:
            axis.set_xticks([])
            axis.set_yticks([])
    _label_axes(pax, panel, len({p.series for p in pts}) == 1)
    return pax


def _shared_legend(panels: Sequence[Panel], points: Sequence[Point]) -> bool:
    """One legend for the whole figure, unless twin-axis panels show different (series, metric) lines.

    Series colours are fixed across the figure, so single-metric panels always share one legend.
    """
    if all(len(panel.metrics) == 1 for panel in panels):
        return True
    names = {
        frozenset(_series_name(p.series, p.metric, panel) for p in _panel_points(panel, points))
        for panel in panels
    }
    names.discard(frozenset())
    return len(names) <= 1


def _merge_entries(paxes: Sequence[_PanelAxes]) -> list[_Entry]:
    """The panels' entries once each (replicate counts pooled), the series first, then the paper's marks."""
    merged: dict[str, _Entry] = {}
    for pax in paxes:
        for entry in pax.entries:
            seen = merged.get(entry.name)
            merged[entry.name] = entry if seen is None else _Entry(seen.handle, seen.name, seen.ns + entry.ns)
    entries = list(merged.values())
    paper = [e for e in entries if e.name.lower().startswith("paper")]
    return [e for e in entries if e not in paper] + paper


class _Measure:
    """Text widths in pixels at the figure's DPI (a scratch Agg renderer), for wrapping and sizing."""

    def __init__(self) -> None:
        self.renderer: RendererBase = FigureCanvasAgg(Figure(dpi=DPI)).get_renderer()

    def width(self, text: str, size: float) -> float:
        prop = FontProperties(family=RC["font.family"], size=size)
        return float(self.renderer.get_text_width_height_descent(text, prop, ismath=False)[0])

    def wrap(self, text: str, width_px: float, size: float, indent: str = "") -> list[str]:
        """Greedy word wrap to ``width_px``; continuation lines start with ``indent``."""
        lines: list[str] = []
        current = ""
        for word in text.split():
            trial = f"{current} {word}" if current else (indent + word if lines else word)
            if current and self.width(trial, size) > width_px:
                lines.append(current)
                current = indent + word
            else:
                current = trial
        return [*lines, current] if current else lines or [""]


def _legend_layout(labels: Sequence[str], width_in: float, measure: _Measure) -> tuple[int, float]:
    """(columns, height in inches) of a legend of these labels that fits ``width_in``."""
    if not labels:
        return 1, 0.0
    size = float(RC["legend.fontsize"])
    em = size * DPI / 72
    item = max(measure.width(label, size) for label in labels) + em * (2.0 + 0.8 + 2.0)
    ncols = max(1, min(len(labels), int(width_in * DPI // item), 4))
    rows = math.ceil(len(labels) / ncols)
    return ncols, size * (1.8 * rows + 1.4) / 72


def _check_claims(claims: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(verdict, statement) pairs with a known verdict; anything else is an error naming it."""
    checked = []
    for verdict, statement in claims:
        if str(verdict).lower() not in VERDICT_COLORS:
            raise ValueError(
                f"claim {statement!r}: verdict must be one of {sorted(VERDICT_COLORS)}, got {verdict!r}"
            )
        checked.append((str(verdict).lower(), " ".join(str(statement).split())))
    return checked


@dataclass
class _Bottom:
    """What goes under the panels: the figure legend, the paper's statements, the claims; and its height."""

    legend: list[_Entry]
    legend_cols: int
    legend_h: float
    caption: list[str]
    claims: list[tuple[str, list[str]]]

    @property
    def line_h(self) -> float:
        return CAPTION_SIZE * LINE_SPACING / 72

    @property
    def height(self) -> float:
        claim_lines = sum(len(lines) for _, lines in self.claims) + (1 if self.claims else 0)
        return (
            PAD_BOTTOM
            + (self.legend_h + GAP if self.legend else 0.0)
            + (len(self.caption) * self.line_h + GAP if self.caption else 0.0)
            + claim_lines * self.line_h
        )


def _bottom(
    legend: list[_Entry], marks: Sequence[PaperMark], claims: list[tuple[str, str]], width: float, m: _Measure
) -> _Bottom:
    """Wrap the caption and claims to the figure width and size the figure legend."""
    wrap_px = (width - 2 * PAD_X) * DPI
    cols, legend_h = _legend_layout([e.label for e in legend], width - 2 * PAD_X, m)
    caption = [line for note in _caption_notes(marks) for line in m.wrap(note, wrap_px, CAPTION_SIZE, "    ")]
    wrapped = [(v, m.wrap(f"{v.upper()} — {text}", wrap_px, CAPTION_SIZE, "    ")) for v, text in claims]
    return _Bottom(legend, cols, legend_h, caption, wrapped)


def _draw_bottom(fig: Figure, bottom: _Bottom, width: float, height: float) -> None:
    """Legend, caption and claims strip, top to bottom under the panels, left-aligned inside the margins."""
    y = bottom.height
    if bottom.legend:
        fig.legend(
            [e.handle for e in bottom.legend],
            [e.label for e in bottom.legend],
            loc="upper center",
            bbox_to_anchor=(0.5, y / height),
            ncols=bottom.legend_cols,
            frameon=False,
        )
        y -= bottom.legend_h + GAP
    lines = [("0.1", line) for line in bottom.caption]
    if bottom.claims:
        lines.append(("0.35", "Claims of the paper tested on these runs:"))
        lines += [(VERDICT_COLORS[verdict], line) for verdict, wrapped in bottom.claims for line in wrapped]
    for index, (color, line) in enumerate(lines):
        if index == len(bottom.caption) and bottom.caption:
            y -= GAP
        fig.text(
            PAD_X / width,
            y / height,
            line,
            ha="left",
            va="top",
            fontsize=CAPTION_SIZE,
            color=color,
            parse_math=False,
        )
        y -= bottom.line_h


def _add_demo(fig: Figure, width: float) -> None:
    """A diagonal translucent watermark across the whole figure (the subtitle is in the suptitle)."""
    size = min(26.0, 3.2 * width)  # stays inside narrow figures
    fig.text(
        0.5, 0.5, DEMO_TEXT, ha="center", va="center", rotation=25, fontsize=size, color="#d62728", alpha=0.12
    )


def build_figure(
    title: str,
    panels: Sequence[Panel],
    points: Sequence[Point],
    marks: Sequence[PaperMark],
    demo: bool = False,
    claims: Sequence[tuple[str, str]] = (),
) -> Figure:
    """The figure, drawn on an Agg canvas; call inside :func:`figure_style` when saving it yourself.

    ``claims``: (verdict, one-line statement) pairs, verdict holds/fails/inconclusive, drawn under the panels.
    """
    for mark in marks:
        _check_mark(mark)
    checked_claims = _check_claims(claims)
    measure = _Measure()
    count = max(len(panels), 1)
    rows, cols = _grid(count)
    width = max(cols * PANEL_W, MIN_W)
    title_lines = measure.wrap(title, (width - 2 * PAD_X) * DPI, TITLE_SIZE)
    title_h = (len(title_lines) + int(demo)) * TITLE_SIZE * 1.4 / 72 + 0.15
    shared = _shared_legend(panels, points)
    fig = Figure(figsize=(width, title_h + rows * PANEL_H), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(
        "\n".join([*title_lines, *([DEMO_TEXT] if demo else [])]), color="black", fontsize=TITLE_SIZE
    )
    if shared:
        grid = fig.add_gridspec(rows, cols)
    else:
        grid = fig.add_gridspec(2 * rows, cols, height_ratios=[PLOT_SHARE, 1.0 - PLOT_SHARE] * rows)
    colors = _series_colors(points)
    drawn: list[tuple[_PanelAxes, Axes | None]] = []
    for index in range(rows * cols):
        row, col = divmod(index, cols)
        ax = fig.add_subplot(grid[row, col] if shared else grid[2 * row, col])
        legend_ax = None if shared else fig.add_subplot(grid[2 * row + 1, col])
        if legend_ax is not None:
            legend_ax.set_axis_off()
        if index < len(panels):
            drawn.append((_draw_panel(ax, panels[index], points, marks, colors), legend_ax))
        else:
            ax.set_axis_off()
        if not panels:
            ax.text(0.5, 0.5, NO_RUNS_TEXT, transform=ax.transAxes, ha="center", va="center")
    panel_h = PANEL_H
    if not shared:
        layouts = [_legend_layout([e.label for e in pax.entries], width / cols, measure) for pax, _ in drawn]
        panel_h = PANEL_H + max([h for _, h in layouts] + [0.0])
        for (pax, legend_ax), (ncols, _) in zip(drawn, layouts):
            if legend_ax is not None and pax.entries:
                labels = [e.label for e in pax.entries]
                legend_ax.legend(
                    [e.handle for e in pax.entries], labels, loc="upper center", ncols=ncols, frameon=False
                )
        plot_share = PANEL_H / panel_h
        grid.set_height_ratios([plot_share, 1.0 - plot_share] * rows)
    legend = _merge_entries([pax for pax, _ in drawn]) if shared else []
    bottom = _bottom(legend, marks, checked_claims, width, measure)
    height = title_h + rows * panel_h + bottom.height
    fig.set_size_inches(width, height)
    fig.get_layout_engine().set(rect=(0.0, bottom.height / height, 1.0, 1.0 - bottom.height / height))
    _draw_bottom(fig, bottom, width, height)
    if demo:
        _add_demo(fig, width)
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
    claims: Sequence[tuple[str, str]] = (),
) -> None:
    """Draw the figure and write it atomically as PNG and PDF (identical bytes for identical inputs).

    ``claims``: (verdict, readable statement) pairs of the claims this figure carries, drawn as a strip under the
    panels, one line each (wrapped), coloured by verdict (holds, fails, inconclusive).
    """
    with figure_style():
        fig = build_figure(title, panels, points, marks, demo=demo, claims=claims)
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
