"""One evaluator per statement kind (config/claims.yaml ``statement.kind``). Each returns the claim's verdict
with one part per tested comparison; parts combine as ``verdict.combine`` says (all hold -> holds, any fails ->
fails, else inconclusive). Effects are advantages: A - B, or B - A for TER (lower is better)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from prefixtune.claims.evidence import (
    AXES,
    QUANTITY_WORDS,
    Cell,
    Comparison,
    Resolver,
    Store,
    _norm,
    cell_values,
    pair_cells,
    pair_interval,
    run_quantity,
)
from prefixtune.claims.stats import t_interval, variance_ratio_interval
from prefixtune.claims.verdict import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    Interval,
    Verdict,
    combine,
    greater_than,
    part,
    within,
)
from prefixtune.report.cells import LOWER_IS_BETTER


class Context:
    def __init__(self, claim: dict[str, Any], resolver: Resolver, store: Store, settings: dict[str, Any]):
        self.claim, self.resolver, self.store, self.settings = claim, resolver, store, settings
        self.statement: dict[str, Any] = claim["statement"]

    def expand(self, sel: dict, key: str) -> list[Cell]:
        return self.resolver.expand(sel, key)

    def compare(self, pairs: list[tuple[Cell, Cell, float]]) -> Comparison:
        return pair_interval(pairs, self.store, self.settings)


def _unit(a: Cell, b: Cell) -> str:
    metric = a.metric or ""
    better = " reduction" if metric in LOWER_IS_BETTER else ""
    return f"{metric}{better}, {a.name} vs {b.name}"


def _judge(comp: Comparison, test: Callable[[Interval], tuple[str, str]]) -> tuple[str, str]:
    if comp.absent:
        return INCONCLUSIVE, comp.absent
    verdict, reason = test(comp.interval)
    if comp.missing and verdict != FAILS:
        return INCONCLUSIVE, "missing runs: " + ", ".join(comp.missing)
    return verdict, reason


def _groups(pairs: list[tuple[Cell, Cell]], each: list[str]) -> dict[tuple, list[tuple[Cell, Cell]]]:
    out: dict[tuple, list[tuple[Cell, Cell]]] = {}
    for a, b in pairs:
        key = tuple(_norm(getattr(a, axis)) for axis in each)
        out.setdefault(key, []).append((a, b))
    return out


def _finish(claim: dict, parts: list[Verdict]) -> Verdict:
    verdict, reason = combine(parts)
    out = Verdict(id=claim["id"], verdict=verdict, reason=reason, parts=parts)
    out.runs = list(dict.fromkeys(r for p in parts for r in p.runs))
    out.missing = list(dict.fromkeys(m for p in parts for m in p.missing))
    if len(parts) == 1:
        only = parts[0]
        out.effect, out.low, out.high, out.n, out.method, out.unit = (
            only.effect,
            only.low,
            only.high,
            only.n,
            only.method,
            only.unit,
        )
    return out


def _part(label: str, comp: Comparison, test: Callable[[Interval], tuple[str, str]], unit: str) -> Verdict:
    verdict, reason = _judge(comp, test)
    p = part(label, comp.interval, verdict, reason, comp.runs, unit)
    p.missing = comp.missing
    return p


def _mean_test(
    ctx: Context,
    a: list[Cell],
    b: list[Cell],
    each: list[str],
    label_axes: tuple[str, ...],
    test: Callable[[Interval], tuple[str, str]],
    flip: bool = False,
    prefix: str = "",
) -> list[Verdict]:
    parts = []
    for _key, group in _groups(pair_cells(a, b), each).items():
        comp = ctx.compare([(x, y, 1 / len(group)) for x, y in group])
        if flip:
            comp.interval = comp.interval.flipped()
        first = group[0][0]
        where = first.label(tuple(e for e in label_axes if e in each))
        label = f"{prefix}: {where}" if prefix and where else prefix or where
        parts.append(_part(label, comp, test, _unit(*group[0])))
    return parts


def difference(ctx: Context) -> Verdict:
    st = ctx.statement
    a, b = ctx.expand(st["a"], "statement.a"), ctx.expand(st["b"], "statement.b")
    size = st.get("size")
    if size:
        low, high = size["value"] - size["margin"], size["value"] + size["margin"]
        test = lambda i: within(i, low, high, "the effect")  # noqa: E731
    else:
        test = lambda i: greater_than(i, 0.0, "the difference")  # noqa: E731
    parts = _mean_test(ctx, a, b, st.get("each", []), AXES, test, flip=st.get("direction") == "worse")
    return _finish(ctx.claim, parts)


def comparable(ctx: Context) -> Verdict:
    st = ctx.statement
    a, b = ctx.expand(st["a"], "statement.a"), ctx.expand(st["b"], "statement.b")
    m = st["margin"]
    high = None if st.get("or_better") else m
    parts = _mean_test(ctx, a, b, st.get("each", []), AXES, lambda i: within(i, -m, high, "the difference"))
    return _finish(ctx.claim, parts)


def ordering(ctx: Context) -> Verdict:
    st = ctx.statement
    groups = [
        [ctx.expand(sel, f"statement.groups.{g}.{i}") for i, sel in enumerate(group)]
        for g, group in enumerate(st["groups"])
    ]
    parts = []
    for upper, lower in zip(groups, groups[1:], strict=False):
        for a in upper:
            for b in lower:
                prefix = f"{_side(a)} > {_side(b)}"
                parts += _mean_test(
                    ctx,
                    a,
                    b,
                    st.get("each", []),
                    AXES,
                    lambda i: greater_than(i, 0.0, "the difference"),
                    prefix=prefix,
                )
    return _finish(ctx.claim, parts)


def _side(cells: list[Cell]) -> str:
    """A member of an ordering in words: its row, and its swept value when all its cells share one."""
    xs = {_norm(c.x) for c in cells}
    x = next(iter(xs)) if len(xs) == 1 else ""
    return cells[0].row["label"] + (f" ({x})" if x else "")


def _x_number(x: Any) -> float:  # noqa: ANN401
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def trend_peak(ctx: Context) -> Verdict:
    st = ctx.statement
    cells = ctx.expand({**st["series"], "x": "all"}, "statement.series")
    each = [e for e in st.get("each", []) if e != "x"]
    peak_at, max_drop = _x_number(st["peak_at"]), st["max_drop"]
    parts = []
    for _key, group in _groups([(c, c) for c in cells], each).items():
        series = sorted((c for c, _ in group), key=lambda c: _x_number(c.x))
        peak = next((c for c in series if _x_number(c.x) == peak_at), None)
        where = series[0].label(tuple(each)) if series else ""
        if peak is None or peak.absent:
            parts.append(
                Verdict(
                    id="",
                    verdict=INCONCLUSIVE,
                    label=where,
                    reason=f"length {st['peak_at']} is not run in this configuration",
                )
            )
            continue
        for other in series:
            if other is peak:
                continue
            comp = ctx.compare([(peak, other, 1.0)])
            label = f"{where}: {st['peak_at']} vs {other.x}".strip(": ")
            if _x_number(other.x) < peak_at:
                test = lambda i: greater_than(i, 0.0, "the rise")  # noqa: E731
            else:

                def test(i: Interval) -> tuple[str, str]:
                    both = [greater_than(i, 0.0, "the drop"), within(i, None, max_drop, "the drop")]
                    return _combine_tests(both)

            parts.append(
                _part(label, comp, test, f"{peak.metric}, length {st['peak_at']} minus the other length")
            )
    return _finish(ctx.claim, parts)


def _combine_tests(results: list[tuple[str, str]]) -> tuple[str, str]:
    for verdict in (FAILS, INCONCLUSIVE):
        hit = [reason for v, reason in results if v == verdict]
        if hit:
            return verdict, "; ".join(hit)
    return HOLDS, ""


def gap_trend(ctx: Context) -> Verdict:
    st = ctx.statement
    a = ctx.expand({**st["a"], "x": [st["x_from"], st["x_to"]]}, "statement.a")
    b = ctx.expand({**st["b"], "x": [st["x_from"], st["x_to"]]}, "statement.b")
    each = [e for e in st.get("each", []) if e != "x"]
    parts = []
    for _key, group in _groups(pair_cells(a, b), each).items():
        by_x = {_norm(x.x): (x, y) for x, y in group}
        start, end = by_x.get(_norm(st["x_from"])), by_x.get(_norm(st["x_to"]))
        label = group[0][0].label(tuple(each))
        if start is None or end is None:
            parts.append(
                Verdict(id="", verdict=INCONCLUSIVE, label=label, reason="runs not in this configuration")
            )
            continue
        comp = ctx.compare([(*start, 1.0), (*end, -1.0)])
        unit = f"gap at {st['x_from']} minus gap at {st['x_to']} ({start[0].metric})"
        parts.append(_part(label, comp, lambda i: greater_than(i, 0.0, "the narrowing"), unit))
    return _finish(ctx.claim, parts)


def variance(ctx: Context) -> Verdict:
    """a has a lower mean (t over replicates paired by subsample and seed, b's cells averaged) and a higher
    variance (F interval of var(a) over b's pooled within-cell variance) than b."""
    st = ctx.statement
    a_cells, b_cells = ctx.expand(st["a"], "statement.a"), ctx.expand(st["b"], "statement.b")
    b_cells = [c for c in b_cells if c.key not in {a.key for a in a_cells}]  # b: x all = every other setting
    cells = a_cells + b_cells
    runs = [r["run"] for c in cells for r in c.runs]
    absent = next((c.absent for c in cells if c.absent), "")
    if not b_cells:
        absent = "runs not in this configuration (no setting to compare with)"
    if absent:
        return _finish(ctx.claim, [Verdict(id="", verdict=INCONCLUSIVE, reason=absent, runs=runs)])
    if len(a_cells) != 1:
        raise ValueError(f"claim {ctx.claim['id']!r}: statement.a must name one cell (got {len(a_cells)})")
    va = cell_values(a_cells[0], ctx.store)
    vbs = [cell_values(c, ctx.store) for c in b_cells]
    missing = va.missing + [m for v in vbs for m in v.missing]
    sign = -1.0 if a_cells[0].metric in LOWER_IS_BETTER else 1.0
    common = set(va.values).intersection(*(set(v.values) for v in vbs))
    per = [sign * (sum(v.values[k] for v in vbs) / len(vbs) - va.values[k]) for k in sorted(common, key=str)]
    confidence = ctx.settings.get("confidence", 0.95)
    mean_iv = (
        t_interval(per, confidence) if per else Interval(math.nan, None, None, 0, "no interval: no runs")
    )
    mean_comp = Comparison(mean_iv, runs, missing)
    var_iv = variance_ratio_interval(
        list(va.values.values()), [list(v.values.values()) for v in vbs], confidence
    )
    var_comp = Comparison(var_iv, runs, missing)
    unit_mean = (
        f"{a_cells[0].metric}, {b_cells[0].row['label']} ({len(b_cells)} settings) minus {a_cells[0].x}"
    )
    parts = [
        _part("lower mean", mean_comp, lambda i: greater_than(i, 0.0, "the mean difference"), unit_mean),
        _part(
            "higher variance",
            var_comp,
            lambda i: greater_than(i, 1.0, "the variance ratio"),
            f"variance ratio {a_cells[0].x} / the others",
        ),
    ]
    return _finish(ctx.claim, parts)


def crossover(ctx: Context) -> Verdict:
    st = ctx.statement
    a = ctx.expand({**st["a"], "x": "all"}, "statement.a")
    b = ctx.expand({**st["b"], "x": "all"}, "statement.b")
    each = [e for e in st.get("each", []) if e != "x"]
    m, above = st["margin"], st["better_above"]
    comparable_at = {_norm(x) for x in st["comparable_at"]}
    parts = []
    for _key, group in _groups(pair_cells(a, b), each).items():
        where = group[0][0].label(tuple(each))
        seen = set()
        for x, y in group:
            seen.add(_norm(x.x))
            if _x_number(x.x) > above:
                test = lambda i: greater_than(i, 0.0, "the difference")  # noqa: E731
            elif _norm(x.x) in comparable_at:
                test = lambda i: within(i, -m, m, "the difference")  # noqa: E731
            else:
                continue
            parts.append(_part(f"{where} at {x.x}".strip(), ctx.compare([(x, y, 1.0)]), test, _unit(x, y)))
        for x in sorted(comparable_at - seen):
            parts.append(
                Verdict(
                    id="",
                    verdict=INCONCLUSIVE,
                    label=f"{where} at {x}".strip(),
                    reason="runs not in this configuration",
                )
            )
    return _finish(ctx.claim, parts)


def ratio(ctx: Context) -> Verdict:
    st = ctx.statement

    def measure(side: str) -> tuple[float | None, list[str], list[str], str]:
        sels = st[side]["runs"] if isinstance(st[side]["runs"], list) else [st[side]["runs"]]
        values, runs, missing = [], [], []
        for i, sel in enumerate(sels):
            for cell in ctx.expand(sel, f"statement.{side}.runs.{i}"):
                if cell.absent:
                    return None, runs, missing, cell.absent
                if st.get("paper_model_only") and cell.row["ran"] != cell.row["model"]:
                    return (
                        None,
                        runs,
                        missing,
                        (
                            f"measured in a stand-in configuration ({cell.row['ran']} for {cell.row['model']}, the "
                            "configuration's own data): the counts do not carry over"
                        ),
                    )
                got, r, miss, problem = run_quantity(cell, ctx.store, st[side]["quantity"])
                runs += r
                missing += miss
                if problem == "cpu":
                    if st.get("gpu_only"):
                        return None, runs, missing, "measured on a CPU; the paper's claim is about GPUs"
                elif problem:
                    return None, runs, missing, problem
                values += got
        return (sum(values) / len(values) if values else None), runs, missing, ""

    num, runs, missing, problem = measure("numerator")
    den, den_runs, den_missing, den_problem = (
        (1.0, [], [], "") if "denominator" not in st else measure("denominator")
    )
    runs, missing, problem = runs + den_runs, missing + den_missing, problem or den_problem
    low, high = st["expected"] / st["factor"], st["expected"] * st["factor"]
    words = QUANTITY_WORDS[st["numerator"]["quantity"]]
    if problem or num is None or den is None or den == 0:
        reason = problem or ("missing runs: " + ", ".join(missing) if missing else "nothing measured")
        p = Verdict(id="", verdict=INCONCLUSIVE, reason=reason, runs=runs, missing=missing, unit=words)
        return _finish(ctx.claim, [p])
    value = num / den
    iv = Interval(value, value, value, len(runs), "measured (no sampling interval)")
    verdict, reason = within(iv, low, high, "the ratio" if "denominator" in st else "the value")
    if missing and verdict != FAILS:
        verdict, reason = INCONCLUSIVE, "missing runs: " + ", ".join(missing)
    unit = words + (" ratio" if "denominator" in st else "")
    p = part("", iv, verdict, reason, runs, unit)
    p.missing = missing
    return _finish(ctx.claim, [p])


KINDS: dict[str, Callable[[Context], Verdict]] = {
    "difference": difference,
    "comparable": comparable,
    "ordering": ordering,
    "trend_peak": trend_peak,
    "gap_trend": gap_trend,
    "variance": variance,
    "crossover": crossover,
    "ratio": ratio,
}


def evaluate_statement(
    claim: dict[str, Any], resolver: Resolver, store: Store, settings: dict[str, Any]
) -> Verdict:
    ctx = Context(claim, resolver, store, settings)
    return KINDS[claim["statement"]["kind"]](ctx)
