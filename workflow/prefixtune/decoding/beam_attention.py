"""Eager attention for batched beam search that reads each example's prefix and prompt once for all its beams.

The K beams of an example share its prefix and prompt keys and values (beams differ only in what they
generated). Eager attention over a per-beam cache reads that shared part K times per step; here it is kept once
per example (:class:`prefixtune.decoding.beam_cache.SharedPrefixBeamLayer`) and multiplied by the example's K queries at
once, while each beam's own generated positions are read as before. The numbers are eager attention's
(``matmul, scale, mask, softmax, matmul``: transformers 3.2's algorithm); only the last sum is taken in two parts
(shared positions, then generated ones), so results can differ from a single sum in the last bit, like any change
of batch shape. Batched outputs are tested equal to batch-1 decoding.

Registered with transformers as :data:`SHARED_PREFIX`; without the ``shared_prefix`` argument (the prompt's own
forward pass) it is plain eager attention.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.models.gpt2.modeling_gpt2 import eager_attention_forward

SHARED_PREFIX = "prefixtune_shared_prefix"


def shared_prefix_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    shared_prefix: Any = None,  # noqa: ANN401 (a cache of SharedPrefixBeamLayer)
    **kwargs: Any,  # noqa: ANN401
) -> tuple[torch.Tensor, None]:
    """``query`` ``[rows, heads, 1, dim]``, one step per beam; ``key``/``value`` each beam's generated
    positions; ``shared_prefix.layers[i]`` holds the examples' shared positions ``[examples, heads, S, dim]``;
    ``attention_mask`` is the additive ``[rows, 1, 1, S + generated]`` mask. Returns ``[rows, 1, heads, dim]``."""
    if shared_prefix is None:
        return eager_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    if query.shape[2] != 1:
        raise ValueError(f"shared-prefix attention takes one step per beam, got {query.shape[2]} positions")
    if attention_mask is None or attention_mask.dim() != 4 or not attention_mask.is_floating_point():
        raise ValueError("shared-prefix attention needs the additive [rows, 1, 1, positions] step mask")
    layer = shared_prefix.layers[module.layer_idx]
    shared_keys, shared_values = layer.shared_keys, layer.shared_values
    examples, heads, width, dim = shared_keys.shape
    rows, generated = query.shape[0], key.shape[2]
    beams = rows // examples
    if scaling is None:
        scaling = dim**-0.5
    by_example = query.reshape(examples, beams, heads, dim).transpose(1, 2)  # [E, H, K, dim]
    shared_scores = torch.matmul(by_example, shared_keys.transpose(-1, -2))  # [E, H, K, S]
    own_scores = torch.matmul(query, key.transpose(-1, -2))  # [rows, H, 1, generated]
    own_scores = own_scores.view(examples, beams, heads, generated).transpose(1, 2)
    weights = torch.cat([shared_scores, own_scores], dim=-1) * scaling
    weights = weights + attention_mask.reshape(examples, beams, 1, -1).transpose(1, 2)
    weights = nn.functional.softmax(weights, dim=-1).type(value.dtype)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    out = torch.matmul(weights[..., :width], shared_values)  # [E, H, K, dim]
    own_weights = weights[..., width:].transpose(1, 2).reshape(rows, heads, 1, generated)
    own = torch.matmul(own_weights, value).view(examples, beams, heads, dim).transpose(1, 2)
    out = out + own
    return out.transpose(1, 2).reshape(rows, 1, heads, dim), None


AttentionInterface.register(SHARED_PREFIX, shared_prefix_attention)
