"""BART on XSUM: examples, batches, loss and decoding as the authors' seq2seq code did (official_code.md §1.5, §5.2).

- Source ``<s> … </s>`` truncated to ``max_source_tokens`` (512 as the paper and master; the cleaned code's 1,024
  by switch); target ``<s> … </s>`` truncated to ``max_target_tokens`` (60) for training.
- Labels are the target ids; the decoder input is the labels shifted right, starting with ``</s>`` (BART's
  ``decoder_start_token_id``); padding is ignored in the loss, a token mean (label smoothing 0).
- Decoding: ``generate`` with the settings of the run's method kind (:mod:`prefixtune.decoding.settings`). PREFIX:
  beam 6, min length 11, max length 62 (the prefix module's hard-coded values); FINE-TUNE: beam 4, min length 12,
  max length 128 (bart-large's summarization defaults, which the fine-tuning module read); both: no repeated
  trigram, early stopping, length penalty 0.8 (the paper; the cleaned code's 1.0 by switch). The outputs are
  decoded without special tokens, with transformers 3.2's clean-up, and stripped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import PreTrainedTokenizerBase

from prefixtune.data.records import Pair
from prefixtune.decoding.settings import SETTINGS_KEY, method_decoding

IGNORE = -100
DEFAULT_MAX_SOURCE = 512
DEFAULT_MAX_TARGET = 60


@dataclass
class Seq2SeqExample:
    source_ids: list[int]
    target_ids: list[int]


def encode_seq2seq(
    pair: Pair, tokenizer: PreTrainedTokenizerBase, max_source: int, max_target: int
) -> Seq2SeqExample:
    source = tokenizer(pair.source, truncation=True, max_length=max_source)["input_ids"]
    target = tokenizer(pair.target, truncation=True, max_length=max_target)["input_ids"]
    return Seq2SeqExample(source, target)


@dataclass
class Seq2SeqBatch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    decoder_input_ids: torch.Tensor
    labels: torch.Tensor

    def to(self, device: torch.device) -> Seq2SeqBatch:
        return Seq2SeqBatch(
            *(
                t.to(device)
                for t in (self.input_ids, self.attention_mask, self.decoder_input_ids, self.labels)
            )
        )


def collate_seq2seq(batch: list[Seq2SeqExample], pad_id: int, decoder_start_id: int) -> Seq2SeqBatch:
    """Right-padded sources with their mask; labels padded with -100; decoder inputs = labels shifted right."""
    src_width = max(len(e.source_ids) for e in batch)
    tgt_width = max(len(e.target_ids) for e in batch)
    input_ids = torch.full((len(batch), src_width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), src_width), dtype=torch.long)
    labels = torch.full((len(batch), tgt_width), IGNORE, dtype=torch.long)
    decoder_input_ids = torch.full((len(batch), tgt_width), pad_id, dtype=torch.long)
    for row, example in enumerate(batch):
        n, m = len(example.source_ids), len(example.target_ids)
        input_ids[row, :n] = torch.tensor(example.source_ids)
        attention_mask[row, :n] = 1
        labels[row, :m] = torch.tensor(example.target_ids)
        decoder_input_ids[row, :m] = torch.tensor([decoder_start_id, *example.target_ids[:-1]])
    return Seq2SeqBatch(input_ids, attention_mask, decoder_input_ids, labels)


def seq2seq_loss(logits: torch.Tensor, labels: torch.Tensor, mode: str) -> torch.Tensor:
    """``token_mean`` (the authors' seq2seq loss) or ``sequence_sum``; no shift, the decoder inputs are shifted."""
    nll = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        labels.reshape(-1),
        reduction="none",
        ignore_index=IGNORE,
    ).view(labels.shape)
    mask = labels.ne(IGNORE)
    if mode == "token_mean":
        return (nll * mask).sum() / mask.sum().clamp(min=1)
    if mode == "sequence_sum":
        return (nll * mask).sum(dim=1).mean()
    raise ValueError(f"unknown loss mode {mode!r}; expected 'token_mean' or 'sequence_sum'")


def generate_kwargs(
    decoding: dict[str, Any], tokenizer: PreTrainedTokenizerBase, method: str | None = None
) -> dict[str, Any]:
    """Every generate setting passed explicitly: nothing may come silently from a hub model's config.

    ``decoding``: a run's resolved settings (what the decode stage is given), or the config's XSUM entry with
    ``method``, the run's method kind, choosing among its per-method settings."""
    if method is not None:
        decoding = method_decoding(decoding, method)
    elif SETTINGS_KEY in decoding:
        kinds = sorted(decoding[SETTINGS_KEY])
        raise ValueError(f"XSUM decode settings differ by method ({kinds}): name the method kind")
    return {
        "num_beams": int(decoding["num_beams"]),
        "min_length": int(decoding["min_length"]),
        "max_length": int(decoding["max_length"]),
        "no_repeat_ngram_size": int(decoding["no_repeat_ngram_size"]),
        "length_penalty": float(decoding["length_penalty"]),
        "early_stopping": bool(decoding["early_stopping"]),
        "do_sample": False,
        "decoder_start_token_id": tokenizer.eos_token_id,
        "forced_bos_token_id": tokenizer.bos_token_id if decoding.get("forced_bos", False) else None,
        "forced_eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
