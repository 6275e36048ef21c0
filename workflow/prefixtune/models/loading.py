"""Load a base model and its tokenizer from a local directory, the same way for hub and tiny models.

GPT-2: the authors' code adds a ``[PAD]`` token for every tuning mode and resizes the embeddings
(official_code.md §1.4); we do the same so that batches are right-padded with a token the model never predicts
into real positions. BART (XSUM) has its own ``<pad>`` and is loaded as is.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

PAD_TOKEN = "[PAD]"
EOS_TOKEN = "<|endoftext|>"


def pick_device() -> torch.device:
    """The GPU where one is visible, else the CPU (training and decoding)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def is_seq2seq(model_dir: str | Path) -> bool:
    """Whether ``model_dir`` holds an encoder-decoder (BART) rather than a causal LM (GPT-2)."""
    config = Path(model_dir) / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{config}: missing; is {model_dir} a saved model?")
    return bool(json.loads(config.read_text(encoding="utf-8")).get("is_encoder_decoder", False))


def load_tokenizer(model_dir: str | Path) -> PreTrainedTokenizerBase:
    """Tokenizer of ``model_dir``; a GPT-2 one gets the authors' extra ``[PAD]`` token."""
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if is_seq2seq(model_dir):
        if tokenizer.pad_token is None:
            raise ValueError(f"{model_dir}: a seq2seq tokenizer needs a pad token")
        return tokenizer
    if tokenizer.eos_token != EOS_TOKEN:
        raise ValueError(f"{model_dir}: expected eos token {EOS_TOKEN!r}, found {tokenizer.eos_token!r}")
    if tokenizer.pad_token != PAD_TOKEN:
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    return tokenizer


def load_causal_lm(
    model_dir: str | Path, tokenizer: PreTrainedTokenizerBase, device: str | torch.device = "cpu"
) -> PreTrainedModel:
    """GPT-2 style causal LM, resized for ``[PAD]``.

    The new embedding row is drawn from the model's own init (N(0, 0.02) for GPT-2) as in transformers 3.2,
    not from the mean of the old rows (the transformers 5 default).
    """
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    old_rows = model.get_input_embeddings().num_embeddings
    if old_rows < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        _fill_new_rows(model, old_rows)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(device)


def load_seq2seq_lm(
    model_dir: str | Path, tokenizer: PreTrainedTokenizerBase, device: str | torch.device = "cpu"
) -> PreTrainedModel:
    """BART-style encoder-decoder in float32 (the paper's XSUM runs used fp16 O1 on GPU; set by the trainer)."""
    model = AutoModelForSeq2SeqLM.from_pretrained(str(model_dir), dtype=torch.float32)
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        raise ValueError(f"{model_dir}: the tokenizer has {len(tokenizer)} tokens, the model fewer")
    return model.to(device)


PAD_ROW_SEED = 0


def _fill_new_rows(model: PreTrainedModel, old_rows: int) -> None:
    """N(0, initializer_range) from a fixed generator: a frozen LM gets the same ``[PAD]`` row in the training
    and the decoding process (the global RNG would differ between them), and every run gets the same one."""
    weight = model.get_input_embeddings().weight
    generator = torch.Generator().manual_seed(PAD_ROW_SEED)
    std = float(getattr(model.config, "initializer_range", 0.02))
    new = torch.randn(weight.shape[0] - old_rows, weight.shape[1], generator=generator) * std
    with torch.no_grad():
        weight[old_rows:] = new.to(weight.dtype)


def model_geometry(model: PreTrainedModel) -> tuple[int, int, int]:
    """(layers, heads, hidden size) of a GPT-2 style config."""
    cfg = model.config
    return cfg.n_layer, cfg.n_head, cfg.n_embd
