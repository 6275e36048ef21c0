"""A run's decode settings: one flat dict, what the decode stage is given, reads and records in ``<split>.hyp.json``.

XSUM's entry holds ``generate`` settings per tuning method kind (``by_method``): the authors decoded PREFIX and
FINE-TUNE with different settings (official_code.md §5.2). The prefix module hard-coded beam 6, min 11, max 62;
the fine-tuning module (``SummarizationModule``) read beam 4, min 12, max 128 from bart-large's config and its
``task_specific_params["summarization"]``. Imported by Snakemake (no torch here).
"""

from __future__ import annotations

from typing import Any

SETTINGS_KEY = "by_method"
METHOD_KEY = "method"  # in a resolved dict: the method kind whose settings it holds


def method_decoding(decoding: dict[str, Any], method: str) -> dict[str, Any]:
    """The settings of one method kind: the shared ones plus its ``by_method`` entry, with ``method`` naming it.

    A dict without ``by_method`` (GPT-2's ``decoding``, or one already resolved) comes back unchanged; one resolved
    for another method is refused, so that a run never decodes with the settings of another method."""
    if SETTINGS_KEY not in decoding:
        resolved_for = decoding.get(METHOD_KEY)
        if resolved_for is not None and resolved_for != method:
            raise ValueError(
                f"decode settings are those of method {resolved_for!r}, not of the run's {method!r}"
            )
        return dict(decoding)
    by_method = decoding[SETTINGS_KEY]
    if method not in by_method:
        raise ValueError(
            f"decoding_by_dataset: `{SETTINGS_KEY}` has no settings for method kind {method!r} "
            f"(it has {sorted(by_method)})"
        )
    shared = {key: value for key, value in decoding.items() if key != SETTINGS_KEY}
    return {**shared, **by_method[method], METHOD_KEY: method}
