"""Resolve a claim's selectors to the cells of the artifacts' manifests (``prefixtune.grid.report_manifest``) and
turn cells into effects with intervals, from the scores files and the run records beside them (no model is
loaded).

Uncertainty of a comparison (``pair_interval``):
- replicated cells (data subsample x training seed): the runs of both sides are paired by (data_seed, seed), one
  effect per replicate, a t-interval over the replicates (n = replicates);
- one run per cell: the paired bootstrap over the test items (``prefixtune.claims.bootstrap``; several pairs:
  their mean, each test set resampled on its own);
- neither (a scores file without per-item statistics, mixed replicate counts): no interval, so inconclusive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefixtune.claims.spec import ClaimsError
from prefixtune.claims.stats import t_interval
from prefixtune.claims.verdict import Interval
from prefixtune.report.cells import LOWER_IS_BETTER, METRICS, PAPER_DATASET, read_metric, unavailable_reason

AXES = ("dataset", "metric", "track", "x")


class NotInConfiguration(Exception):
    """The configuration does not run these cells (a demo with fewer rows, sizes or lengths)."""


@dataclass(frozen=True)
class Cell:
    artifact: str
    row: dict[str, Any]  # the manifest row (label, method, model, ran, param_pct, setting)
    dataset: str
    metric: str | None
    track: str | None
    x: Any  # noqa: ANN401
    runs: tuple[dict[str, Any], ...]  # {run, scores, data_seed, seed}
    absent: str = ""  # why the configuration has no runs here ("" = it has)

    @property
    def key(self) -> tuple:
        return (self.dataset, self.metric, self.track, _norm(self.x))

    def label(self, axes: tuple[str, ...] = AXES) -> str:
        parts = {
            "dataset": PAPER_DATASET.get(self.dataset, self.dataset),
            "metric": self.metric,
            "track": {"unseen": "unseen categories", "seen": "seen categories"}.get(self.track or "", ""),
            "x": "" if self.x is None else SPLIT_WORDS.get(str(self.x), f"at {self.x}"),
        }
        return " ".join(str(parts[a]) for a in axes if parts.get(a))

    @property
    def name(self) -> str:
        return f"{self.row['label']} ({self.row['model']})"


# Table 3's extrapolation splits in the paper's words
SPLIT_WORDS = {"news_sports": "on news to sports", "within_news": "within news"}


def _norm(x: Any) -> str:  # noqa: ANN401
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    return "" if x is None else str(x)


def _as_list(value: Any) -> list:  # noqa: ANN401
    return value if isinstance(value, list) else [value]


class Resolver:
    """Selectors -> cells of a configuration's manifests (artifact -> manifest)."""

    def __init__(
        self, manifests: dict[str, dict], strict: bool, claim: dict[str, Any], source: str = "claims"
    ):
        self.manifests = manifests
        self.strict = strict  # paper scale: a row or x the configuration lacks is an error
        self.claim = claim
        self.source = source

    def _error(self, key: str, message: str) -> ClaimsError:
        return ClaimsError(f"{self.source}: claim {self.claim['id']!r}, key {key}: {message}")

    def expand(self, sel: dict[str, Any], key: str) -> list[Cell]:
        """The cells a selector names, in the order dataset x metric x x (x: the row's values for ``all``)."""
        artifact = sel.get("artifact", self.claim["artifact"])
        manifest = self.manifests.get(artifact)
        if manifest is None:
            raise self._error(f"{key}.artifact", f"no artifact {artifact!r} in the configuration")
        datasets = _as_list(sel.get("dataset", manifest["datasets"]))
        for d in datasets:
            if d not in manifest["datasets"]:
                raise self._error(
                    f"{key}.dataset", f"{artifact} has no dataset {d!r} ({manifest['datasets']})"
                )
        metrics = _as_list(sel.get("metric")) if "metric" in sel else [None]
        for d in datasets:
            for m in metrics:
                if m is not None and m not in [spec[0] for spec in METRICS[d]]:
                    raise self._error(
                        f"{key}.metric",
                        f"no metric {m!r} for {d} (expected one of {[s[0] for s in METRICS[d]]})",
                    )
        rows = [
            r
            for r in manifest["rows"]
            if all(
                sel.get(k) is None or r[field_] == sel[k]
                for k, field_ in (
                    ("row", "label"),
                    ("method", "method"),
                    ("model", "model"),
                    ("param_pct", "param_pct"),
                )
            )
            and any(c["dataset"] in datasets for c in r["cells"])
        ]
        wanted = {k: sel[k] for k in ("row", "method", "param_pct", "model") if k in sel}
        if not rows:
            if self.strict:
                raise self._error(key, f"no row of {artifact} matches {wanted}")
            return [
                self._absent(artifact, sel, d, m, "runs not in this configuration")
                for d in datasets
                for m in metrics
            ]
        if len(rows) > 1:
            raise self._error(key, f"{len(rows)} rows of {artifact} match {wanted}; name the row or model")
        row = rows[0]
        info = {k: row[k] for k in ("label", "method", "model", "ran", "param_pct", "setting")}
        cells = []
        for d in datasets:
            row_cells = [c for c in row["cells"] if c["dataset"] == d]
            xs_row = [c["x"] for c in row_cells]
            xs = xs_row if sel.get("x", "all") == "all" else _as_list(sel["x"])  # no x: every swept value
            track = sel.get("track", "all" if d == "webnlg" else None)
            for m in metrics:
                for x in xs:
                    found = [c for c in row_cells if _norm(c["x"]) == _norm(x)]
                    if not found:
                        if self.strict:
                            raise self._error(
                                f"{key}.x", f"row {row['label']!r} of {artifact} has no x {x!r}"
                            )
                        cells.append(
                            Cell(artifact, info, d, m, track, x, (), "runs not in this configuration")
                        )
                        continue
                    runs = tuple(found[0]["runs"])
                    absent = "" if runs else "not run in this configuration (the paper's row is quoted)"
                    cells.append(Cell(artifact, info, d, m, track, found[0]["x"], runs, absent))
        return cells

    def _absent(self, artifact: str, sel: dict, dataset: str, metric: str | None, why: str) -> Cell:
        info = {
            "label": sel.get("row") or sel.get("method", "?"),
            "method": sel.get("method", ""),
            "model": sel.get("model", ""),
            "ran": "",
            "param_pct": sel.get("param_pct", ""),
            "setting": "",
        }
        x = sel.get("x") if not isinstance(sel.get("x"), list) else None
        track = sel.get("track", "all" if dataset == "webnlg" else None)
        return Cell(artifact, info, dataset, metric, track, None if x == "all" else x, (), why)


def pair_cells(a: list[Cell], b: list[Cell]) -> list[tuple[Cell, Cell]]:
    """Pair two expansions: by (dataset, metric, track, x) when both have the keys, else by position."""
    b_by_key = {c.key: c for c in b}
    if len(b_by_key) == len(b) and all(c.key in b_by_key for c in a):
        return [(c, b_by_key[c.key]) for c in a]
    if len(a) != len(b):
        raise ClaimsError(f"the two sides expand to {len(a)} and {len(b)} cells; they pair by position")
    return list(zip(a, b, strict=True))


@dataclass
class Store:
    """Scores files and run records, read once."""

    cache: dict[str, Any] = field(default_factory=dict)

    def json(self, path: str | Path) -> dict | None:
        key = str(path)
        if key not in self.cache:
            file = Path(path)
            self.cache[key] = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None
        return self.cache[key]

    def run_record(self, run: dict[str, Any]) -> dict | None:
        return self.json(Path(run["scores"]).parent / "run.json")

    def decode_record(self, run: dict[str, Any]) -> dict | None:
        scores = Path(run["scores"])
        return self.json(scores.parent / f"{scores.name.split('.')[0]}.hyp.json")


@dataclass
class CellValues:
    values: dict[tuple, float]  # (data_seed, seed) -> value
    scores: dict[tuple, dict]
    missing: list[str]  # runs without a scores file
    unavailable: str = ""  # why a finished run has no value for the metric


def cell_values(cell: Cell, store: Store) -> CellValues:
    out = CellValues({}, {}, [])
    for run in cell.runs:
        scores = store.json(run["scores"])
        if scores is None:
            out.missing.append(run["run"])
            continue
        value = read_metric(scores, cell.dataset, cell.metric, cell.track)  # type: ignore[arg-type]
        if value is None:
            out.unavailable = unavailable_reason(scores, cell.metric or "") or f"{cell.metric} not computed"
            continue
        key = (run.get("data_seed"), run.get("seed"))
        out.values[key] = value
        out.scores[key] = scores
    return out


@dataclass
class Comparison:
    """The effect of a weighted sum of pairwise advantages, with its interval and the runs behind it."""

    interval: Interval
    runs: list[str]
    missing: list[str]
    absent: str = ""  # why the configuration cannot judge it


def advantage_pairs(pairs: list[tuple[Cell, Cell, float]]) -> list[tuple[Cell, Cell, float]]:
    """Each (a, b, weight) as (better-is-larger first, other, |weight|): a - b for most metrics, b - a for TER
    (lower is better), and swapped again for a negative weight."""
    out = []
    for a, b, w in pairs:
        if a.metric in LOWER_IS_BETTER:
            a, b = b, a
        if w < 0:
            a, b = b, a
        out.append((a, b, abs(w)))
    return out


def pair_interval(
    pairs: list[tuple[Cell, Cell, float]], store: Store, settings: dict[str, Any]
) -> Comparison:
    """Effect = sum of weight x advantage(a over b); see the module docstring for the interval."""
    absent = next((c.absent for a, b, _ in pairs for c in (a, b) if c.absent), "")
    runs = [r["run"] for a, b, _ in pairs for c in (a, b) for r in c.runs]
    if absent:
        return Comparison(Interval(float("nan"), None, None, 0, "no interval: " + absent), runs, [], absent)
    canon = advantage_pairs(pairs)
    loaded = [(cell_values(a, store), cell_values(b, store), w) for a, b, w in canon]
    missing = [m for va, vb, _ in loaded for m in va.missing + vb.missing]
    unavailable = next((v.unavailable for va, vb, _ in loaded for v in (va, vb) if v.unavailable), "")
    if unavailable and not all(va.values and vb.values for va, vb, _ in loaded):
        return Comparison(Interval(float("nan"), None, None, 0, f"no interval: {unavailable}"), runs, missing)
    if any(not va.values or not vb.values for va, vb, _ in loaded):
        return Comparison(Interval(float("nan"), None, None, 0, "no interval: runs missing"), runs, missing)
    effect = sum(w * (_mean(va.values) - _mean(vb.values)) for va, vb, w in loaded)
    common = set.intersection(*(set(va.values) & set(vb.values) for va, vb, _ in loaded))
    confidence = settings.get("confidence", 0.95)
    if len(common) >= 2:
        per = [
            sum(w * (va.values[k] - vb.values[k]) for va, vb, w in loaded) for k in sorted(common, key=str)
        ]
        return Comparison(t_interval(per, confidence), runs, missing)
    if all(len(va.values) == 1 and len(vb.values) == 1 for va, vb, _ in loaded):
        return Comparison(_bootstrap(canon, loaded, effect, settings), runs, missing)
    return Comparison(
        Interval(effect, None, None, len(common), "no interval: the sides have different replicates"),
        runs,
        missing,
    )


def _mean(values: dict) -> float:
    return sum(values.values()) / len(values)


def _bootstrap(canon: list, loaded: list, effect: float, settings: dict[str, Any]) -> Interval:
    try:
        from prefixtune.claims import bootstrap
    except ImportError:
        return Interval(effect, None, None, 0, "no interval: the paired bootstrap is not available")
    weights = {w for _, _, w in canon}
    if len(weights) != 1:
        return Interval(effect, None, None, 0, "no interval: unequal weights")
    weight = weights.pop()
    options = {
        "resamples": int(settings.get("resamples", 1000)),
        "seed": int(settings.get("seed", 12345)),
        "confidence": float(settings.get("confidence", 0.95)),
    }
    items = [
        (next(iter(va.scores.values())), next(iter(vb.scores.values())), a.metric, a.track)
        for (a, _b, _w), (va, vb, _) in zip(canon, loaded, strict=True)
    ]
    try:
        if len(items) == 1:
            a_scores, b_scores, metric, track = items[0]
            result = bootstrap.paired_bootstrap(a_scores, b_scores, metric, track=track, **options)
        else:
            result = bootstrap.paired_bootstrap_mean(items, **options)
    except bootstrap.MissingSegments:  # its message names the file's metric; the reader needs only why
        return Interval(effect, None, None, 0, "no interval: the scores files hold no per-item statistics")
    except ValueError as err:  # a scores file the bootstrap cannot read
        return Interval(effect, None, None, 0, f"no interval: {err}")
    scale = weight * (len(items) if len(items) > 1 else 1)
    low, high = sorted((result.low * scale, result.high * scale))
    return Interval(effect, low, high, result.n_items, f"paired bootstrap, {result.resamples} resamples")


def run_quantity(cell: Cell, store: Store, quantity: str) -> tuple[list[float], list[str], list[str], str]:
    """(values, runs, missing, problem) of a measured quantity over a cell's runs."""
    values, runs, missing = [], [], []
    for run in cell.runs:
        runs.append(run["run"])
        record = store.run_record(run)
        if record is None:
            missing.append(run["run"])
            continue
        if quantity == "decode_seconds_per_item":
            decode = store.decode_record(run)
            if decode is None:
                missing.append(run["run"] + " (decoding)")
                continue
            if decode.get("device", "cpu") == "cpu":
                return values, runs, missing, "cpu"
            values.append(float(decode["wall_time_s"]) / max(1, int(decode.get("n_items") or 1)))
            continue
        value = _record_value(record, quantity)
        if value is None:
            return values, runs, missing, f"{QUANTITY_WORDS[quantity]} not recorded in the run record"
        if quantity in ("seconds_per_step", "peak_memory") and record.get("device", "cpu") == "cpu":
            return values, runs, missing, "cpu"
        values.append(value)
    return values, runs, missing, ""


QUANTITY_WORDS = {
    "stored_parameters": "stored parameters",
    "trainable_parameters": "trainable parameters",
    "base_parameters": "the base model's parameters",
    "seconds_per_step": "training seconds per step",
    "train_examples": "training examples",
    "peak_memory": "peak GPU memory",
    "decode_seconds_per_item": "decoding seconds per item",
}


def _record_value(record: dict[str, Any], quantity: str) -> float | None:
    params = record.get("parameters") or {}
    training = record.get("training") or {}
    value = {
        "stored_parameters": params.get("stored"),
        "trainable_parameters": params.get("trainable"),
        "base_parameters": params.get("base"),
        "seconds_per_step": training.get("seconds_per_step"),
        "train_examples": training.get("examples"),
        "peak_memory": training.get("peak_memory_bytes", record.get("peak_memory_bytes")),
    }[quantity]
    return None if value is None else float(value)
