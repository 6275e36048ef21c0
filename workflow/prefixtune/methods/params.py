"""``prefixtune params``: a method's parameter counts on a paper model, from its config alone (meta device).

No weights are downloaded: the architectures below are those of the hub configs (``openai-community/gpt2-medium``
and ``gpt2-large``, vocabulary 50,257 without the authors' extra ``[PAD]`` row; ``facebook/bart-large`` in
params_bart.py), and the model is built on the meta device, so even GPT-2 large costs no memory. Tied weights
(token embeddings = LM head) count once.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import BartForConditionalGeneration, GPT2Config, GPT2LMHeadModel

from prefixtune.methods import METHODS, build_method
from prefixtune.methods.params_bart import bart_large_config

PAPER_MODELS: dict[str, dict[str, int]] = {
    "gpt2-medium": {"n_layer": 24, "n_head": 16, "n_embd": 1024, "vocab_size": 50257, "n_positions": 1024},
    "gpt2-large": {"n_layer": 36, "n_head": 20, "n_embd": 1280, "vocab_size": 50257, "n_positions": 1024},
}


MODELS = (*PAPER_MODELS, "bart-large")


def method_parameters(model_name: str, kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    """``trainable``, ``stored`` (kept per task after training), ``base`` and ``percent`` = 100 * stored / base."""
    if model_name not in MODELS:
        raise ValueError(f"unknown model {model_name!r}; expected one of {sorted(MODELS)}")
    if kind not in METHODS:
        raise ValueError(f"unknown method {kind!r}; expected one of {sorted(METHODS)}")
    if model_name == "bart-large":
        with torch.device("meta"):  # the three prefix MLPs too (about 62M values for P = 100)
            model = BartForConditionalGeneration(bart_large_config())
            counts = build_method(kind, model, settings).parameter_counts()
    else:
        with torch.device("meta"):
            model = GPT2LMHeadModel(GPT2Config(**PAPER_MODELS[model_name]))
        counts = build_method(kind, model, settings).parameter_counts()
    return {
        "model": model_name,
        "method": kind,
        "settings": settings,
        **counts,
        "percent": 100 * counts["stored"] / counts["base"],
    }
