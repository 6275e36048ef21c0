"""Tuning methods by name."""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from prefixtune.methods.adapter import AdapterTuning
from prefixtune.methods.bart_prefix import BartPrefixTuning
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

# The paper ran FINETUNE and PREFIX on BART (XSUM); ``prefix`` there means the three-prefix BART method.
SEQ2SEQ_METHODS: dict[str, type[TuningMethod]] = {"finetune": FineTune, "prefix": BartPrefixTuning}


def build_method(
    kind: str,
    model: PreTrainedModel,
    settings: dict[str, Any],
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> TuningMethod:
    """``kind``: one of ``METHODS`` (a config method entry's ``kind``); ``tokenizer`` for word initialisation."""
    if kind not in METHODS:
        raise ValueError(f"unknown method kind {kind!r}; expected one of {sorted(METHODS)}")
    if getattr(model.config, "is_encoder_decoder", False):
        if kind not in SEQ2SEQ_METHODS:
            raise ValueError(
                f"method kind {kind!r} is for GPT-2; on an encoder-decoder (BART) use one of {sorted(SEQ2SEQ_METHODS)}"
            )
        return SEQ2SEQ_METHODS[kind](model, settings, tokenizer)
    return METHODS[kind](model, settings, tokenizer)
