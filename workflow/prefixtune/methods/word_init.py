"""Initialising a prefix from real words (official_code.md §3.3-§3.4, implementation_notes.md §3e).

The targets are the frozen LM's own key/values for the word's tokens at positions 0..P-1, stacked in the prefix
layout (2L, H, P, head_dim). Without reparametrization they are copied (the code's ``--init_shallow_word``, exact:
the prefix then acts as if the words were prepended). With the MLP, the code's low-data trick fits the MLP (not
the embedding) to them by MSE with Adam for 500 steps at lr 1e-4 (``lowdata_init_train3``): close, not exact.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)


def word_token_ids(tokenizer: PreTrainedTokenizerBase | None, word: str) -> list[int]:
    """The word's BPE ids with a leading space (the authors' ``add_prefix_space=True``): the prefix length."""
    if tokenizer is None:
        raise ValueError(f"init word {word!r}: initialising from a word needs the tokenizer")
    if not word.strip():
        raise ValueError("init_word is empty; give a word or phrase such as 'table-to-text:'")
    return tokenizer.encode(" " + word, add_special_tokens=False)


def stack_cache(cache: DynamicCache) -> torch.Tensor:
    """A batch-1 cache as one (2L, H, P, head_dim) tensor ordered [l0-K, l0-V, l1-K, ...]."""
    rows = []
    for layer in cache.layers:
        rows.extend([layer.keys[0], layer.values[0]])
    return torch.stack(rows)


@torch.no_grad()
def lm_key_values(model: PreTrainedModel, token_ids: list[int]) -> torch.Tensor:
    """The frozen LM's key/values for ``token_ids`` at positions 0..P-1, in eval mode (no dropout)."""
    was_training = model.training
    model.eval()
    ids = torch.tensor([token_ids], device=model.device)
    cache = model(input_ids=ids, use_cache=True).past_key_values
    model.train(was_training)
    return stack_cache(cache)


def fit_to_target(
    produce: nn.Module, params: list[nn.Parameter], target: torch.Tensor, steps: int, lr: float
) -> list[float]:
    """Regress ``produce()`` onto ``target`` by MSE with Adam (the code's 500 steps at lr 1e-4); the losses."""
    optimizer = torch.optim.Adam(params, lr=lr)
    losses = []
    for _ in tqdm(range(steps), desc="fit prefix to word", mininterval=10):
        loss = F.mse_loss(produce(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    if losses:
        log.info("word init: MSE %.4f -> %.4f after %d Adam steps (lr %g)", losses[0], losses[-1], steps, lr)
    return losses
