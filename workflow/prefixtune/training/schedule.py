"""How many optimizer steps a run takes: one rule for the trainer and for the compute forecast (no torch)."""

from __future__ import annotations

import math
from typing import Any


def planned_steps(n_examples: int, hparams: dict[str, Any]) -> tuple[int, int, int]:
    """(steps per epoch, epochs, total steps) of ``n_examples`` pairs; ``max_steps`` overrides ``epochs``, as in
    the HF Trainer the authors used (the last epoch is then cut short)."""
    accum = int(hparams.get("gradient_accumulation_steps", 1))
    per_epoch = max(1, math.ceil(n_examples / int(hparams["batch_size"])) // accum)
    if hparams.get("max_steps"):
        total = int(hparams["max_steps"])
        return per_epoch, math.ceil(total / per_epoch), total
    if "epochs" in hparams:
        return per_epoch, int(hparams["epochs"]), per_epoch * int(hparams["epochs"])
    raise KeyError("hparams: give epochs or max_steps")
