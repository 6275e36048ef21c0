"""BART PREFIX parameter counts on ``facebook/bart-large``, from its config alone (meta device, no download).

The architecture values are those of the hub config of ``facebook/bart-large`` (vocabulary 50,265). The shared token
embedding, tied to the LM head, counts once; ``final_logits_bias`` is a buffer, not a parameter. The base model has
406,291,456 parameters (paper.md), and the P = 100 prefix stores 3 * 100 * 12 * 2 * 1024 = 7,372,800 values (~1.8 %).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import BartConfig, BartForConditionalGeneration

from prefixtune.methods.bart_prefix import BartPrefixTuning


def bart_large_config() -> BartConfig:
    """The architecture of ``facebook/bart-large`` (its hub config.json)."""
    return BartConfig(
        vocab_size=50265,
        max_position_embeddings=1024,
        d_model=1024,
        encoder_layers=12,
        decoder_layers=12,
        encoder_attention_heads=16,
        decoder_attention_heads=16,
        encoder_ffn_dim=4096,
        decoder_ffn_dim=4096,
        activation_function="gelu",
        dropout=0.1,
        attention_dropout=0.1,
        activation_dropout=0.1,
        init_std=0.02,
        scale_embedding=False,
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=2,
    )


def bart_prefix_parameter_counts(prefix_length: int, mid_dim: int) -> dict[str, Any]:
    """``trainable`` (three Embedding + MLP), ``stored`` (3 * P * L * 2 * d), ``base`` and ``percent``."""
    settings = {"prefix_length": prefix_length, "mid_dim": mid_dim}
    with torch.device("meta"):  # the prefix MLPs too (62M parameters for P = 100)
        model = BartForConditionalGeneration(bart_large_config())
        counts = BartPrefixTuning(model, settings).parameter_counts()
    return {
        "model": "bart-large",
        "method": "bart_prefix",
        "settings": settings,
        **counts,
        "percent": 100 * counts["stored"] / counts["base"],
    }
