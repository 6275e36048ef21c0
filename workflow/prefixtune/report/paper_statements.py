"""What the paper says about a figure, as sentences a reader understands (never the results file's metric keys).

``config/paper_results.csv`` stores each figure statement as one number under a machine key (``BLEU_gap_mean``,
``best_prefix_length``, ``crossover_train_pct``). This module is the one place that turns such a row into the
sentence printed on the figure page and drawn in the figure, plus the x (or gap) the figure marks. A key without
a template is an error naming it, so a new row cannot leak its key into a report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prefixtune.report.paper import PaperKey

METHOD_NAMES = {"FINETUNE": "FINE-TUNE", "PREFIX": "PREFIX"}
SIZES_RE = re.compile(r"sizes\s+([0-9]+(?:/[0-9]+)+)")


@dataclass(frozen=True)
class PaperStatement:
    """One readable statement of the paper about a figure and what the figure can draw for it."""

    text: str  # the sentence, without the leading "paper: "
    kind: str  # "vline": a best/crossover x; "gap": a difference between two series; "note": text only
    value: float  # the x of a vline, the size of a gap
    short: str  # legend text of the drawn mark
    series: tuple[str, ...] = ()  # "gap": (leading method, trailing method), as the paper names them
    metric: str | None = None  # "gap": the metric the gap is measured on


def _method(name: str) -> str:
    """The paper's method name as the reports print it (FINETUNE -> FINE-TUNE)."""
    name = name.strip()
    return METHOD_NAMES.get(name.upper(), name)


def _gap(key: PaperKey, value: float) -> PaperStatement:
    lead, _, trail = key.method.partition(" minus ")
    if not trail:
        raise ValueError(
            f"paper results, {key.artifact}: a gap row needs a method 'A minus B', got {key.method!r}"
        )
    lead, trail = _method(lead), _method(trail)
    sizes = SIZES_RE.search(key.setting)
    over = ""
    if sizes:
        numbers = sizes.group(1).split("/")
        over = f" over training sizes {numbers[0]}–{numbers[-1]}"
    verb = "beats" if value >= 0 else "trails"
    text = f"{lead} {verb} {trail} by {abs(value):g} BLEU on average{over} ({key.dataset})"
    short = f"paper: {trail} + {value:g} BLEU ({lead}'s average lead)"
    return PaperStatement(text, "gap", value, short, (lead, trail), "BLEU")


def _best_length(key: PaperKey, value: float) -> PaperStatement:
    text = f"prefix length {value:g} is best for {key.dataset} (scores rise up to it, then drop slightly)"
    return PaperStatement(text, "vline", value, f"paper: best length {value:g}")


def _crossover(key: PaperKey, value: float) -> PaperStatement:
    lead, _, trail = key.method.partition(" vs ")
    lead = _method(re.sub(r"\s*\(.*?\)", "", lead)) or "PREFIX"
    trail = _method(trail) or "FINE-TUNE"
    text = f"{lead} better than {trail} above {value:g} % of the {key.dataset} training data"
    return PaperStatement(text, "vline", value, f"paper: {lead} ahead above {value:g} %")


TEMPLATES = {
    "BLEU_gap_mean": _gap,
    "best_prefix_length": _best_length,
    "crossover_train_pct": _crossover,
}


def paper_statement(key: PaperKey, value: float) -> PaperStatement:
    """The readable statement of one figure row of the paper results; an unknown metric key is an error."""
    template = TEMPLATES.get(key.metric)
    if template is None:
        raise ValueError(
            f"paper results, {key.artifact} ({key.dataset}): metric {key.metric!r} has no readable statement; "
            f"add a template for it to prefixtune.report.paper_statements (known: {sorted(TEMPLATES)})"
        )
    return template(key, value)
