"""Tuning methods by name."""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from prefixtune.methods.adapter import AdapterTuning
from prefixtune.methods.base import TuningMethod
from prefixtune.methods.emb_prefix import EmbeddingPrefix
from prefixtune.methods.finetune import FineTune
from prefixtune.methods.ft_top import FineTuneTop
from prefixtune.methods.infix import InfixTuning
from prefixtune.methods.prefix import PrefixTuning

METHODS: dict[str, type[TuningMethod]] = {
    "finetune": FineTune,
    "ft_top": FineTuneTop,
    "adapter": AdapterTuning,
    "prefix": PrefixTuning,
    "emb_prefix": EmbeddingPrefix,
    "infix": InfixTuning,
}


def build_method(
    kind: str,
    model: PreTrainedModel,
    settings: dict[str, Any],
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> TuningMethod:
    """``kind``: one of ``METHODS`` (a config method entry's ``kind``); ``tokenizer`` for word initialisation."""
    if kind not in METHODS:
        raise ValueError(f"unknown method kind {kind!r}; expected one of {sorted(METHODS)}")
    return METHODS[kind](model, settings, tokenizer)
