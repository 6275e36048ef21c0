"""Tuning methods by name."""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedModel

from prefixtune.methods.base import TuningMethod
from prefixtune.methods.finetune import FineTune
from prefixtune.methods.prefix import PrefixTuning

METHODS: dict[str, type[TuningMethod]] = {"finetune": FineTune, "prefix": PrefixTuning}


def build_method(name: str, model: PreTrainedModel, settings: dict[str, Any]) -> TuningMethod:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; expected one of {sorted(METHODS)}")
    return METHODS[name](model, settings)
