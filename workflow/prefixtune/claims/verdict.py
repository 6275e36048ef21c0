"""A claim's verdict and the interval arithmetic every statement kind shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HOLDS, FAILS, INCONCLUSIVE = "holds", "fails", "inconclusive"
ORDER = {HOLDS: 0, FAILS: 1, INCONCLUSIVE: 2}


@dataclass(frozen=True)
class Interval:
    """An effect with its interval; ``low``/``high`` None = no interval (``method`` says why)."""

    effect: float
    low: float | None
    high: float | None
    n: int  # replicates (t) or test items (bootstrap); 0 = none
    method: str  # "t over replicates", "paired bootstrap", "exact", "no interval: ..."

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    def flipped(self) -> Interval:
        """The same interval for the opposite difference (b - a)."""
        if not self.has_interval:
            return Interval(-self.effect, None, None, self.n, self.method)
        return Interval(-self.effect, -self.high, -self.low, self.n, self.method)  # type: ignore[operator]

    def scaled(self, factor: float) -> Interval:
        if not self.has_interval:
            return Interval(self.effect * factor, None, None, self.n, self.method)
        low, high = sorted((self.low * factor, self.high * factor))  # type: ignore[operator]
        return Interval(self.effect * factor, low, high, self.n, self.method)


@dataclass
class Verdict:
    """One claim's (or one part's) outcome."""

    id: str
    verdict: str
    reason: str = ""
    effect: float | None = None
    low: float | None = None
    high: float | None = None
    n: int = 0
    method: str = ""
    unit: str = ""  # what the effect measures, in words
    paper: float | None = None
    paper_text: str = ""
    paper_from_cells: float | None = None
    runs: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    parts: list[Verdict] = field(default_factory=list)
    label: str = ""  # a part's name (dataset, metric, x)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "parts"}
        out["parts"] = [p.to_dict() for p in self.parts]
        return out


def part(
    label: str, interval: Interval, verdict: str, reason: str, runs: list[str], unit: str = ""
) -> Verdict:
    return Verdict(
        id="",
        verdict=verdict,
        reason=reason,
        effect=interval.effect,
        low=interval.low,
        high=interval.high,
        n=interval.n,
        method=interval.method,
        unit=unit,
        runs=runs,
        label=label,
    )


def greater_than(interval: Interval, bound: float, what: str) -> tuple[str, str]:
    """A strict "effect > bound": holds when the whole interval is above it; fails when the whole interval is at
    or below it (an exact tie, [bound, bound], contradicts a strict claim); inconclusive when it straddles."""
    if not interval.has_interval:
        return INCONCLUSIVE, interval.method
    if interval.low > bound:  # type: ignore[operator]
        return HOLDS, ""
    if interval.high <= bound:  # type: ignore[operator]
        tie = interval.low == interval.high == bound
        return FAILS, ("tie: " if tie else "") + f"{what} is not above {bound:g}"
    return INCONCLUSIVE, f"the interval straddles {bound:g}"


def within(interval: Interval, low: float | None, high: float | None, what: str) -> tuple[str, str]:
    """``low <= effect <= high`` (either bound may be open): holds when the interval lies inside, fails when it
    lies wholly outside, inconclusive otherwise (equivalence test at the interval's confidence)."""
    if not interval.has_interval:
        return INCONCLUSIVE, interval.method
    lo, hi = interval.low, interval.high
    below = low is not None and hi < low  # type: ignore[operator]
    above = high is not None and lo > high  # type: ignore[operator]
    if below or above:
        side = f"below {low:.3g}" if below else f"above {high:.3g}"
        return FAILS, f"{what} is {side}"
    inside = (low is None or lo >= low) and (high is None or hi <= high)  # type: ignore[operator]
    if inside:
        return HOLDS, ""
    bounds = (
        "the margin" if low is not None and high is not None else f"{low if low is not None else high:.3g}"
    )
    return INCONCLUSIVE, f"the interval crosses {bounds}"


def combine(parts: list[Verdict]) -> tuple[str, str]:
    """All parts hold -> holds; any fails -> fails; otherwise inconclusive (an intersection-union test: every
    part at the stated confidence gives the conjunction that confidence, without a multiplicity correction)."""
    if not parts:
        return INCONCLUSIVE, "nothing to compare"
    for verdict in (FAILS, INCONCLUSIVE):
        hit = [p for p in parts if p.verdict == verdict]
        if hit:
            return verdict, _reasons(hit)
    return HOLDS, ""


def _reasons(parts: list[Verdict]) -> str:
    """``E2E, DART: reason; WebNLG: other reason`` (each reason once)."""
    by_reason: dict[str, list[str]] = {}
    for p in parts:
        by_reason.setdefault(p.reason, []).append(p.label)
    if len(by_reason) == 1 and len(parts) > 1:
        return next(iter(by_reason))
    return "; ".join(
        (", ".join(x for x in labels if x) + ": " if any(labels) else "") + reason
        for reason, labels in by_reason.items()
    )
