"""A key/value cache for beam search that never reallocates.

transformers' ``DynamicLayer`` appends a step with ``torch.cat`` (a new tensor holding the whole cache) and
reorders beams with ``index_select`` (another): two full copies and two allocations per layer per step. Here
each layer owns two buffers sized for the whole search; a step is written in place and a reorder gathers the
surviving rows into the other buffer, then the two swap. The values seen by attention are the same tensors'
contents, so the outputs are unchanged (tests compare them with the dynamic cache's).
"""

from __future__ import annotations

import torch
from transformers import DynamicCache, EncoderDecoderCache
from transformers.cache_utils import DynamicLayer


class PreallocatedBeamLayer(DynamicLayer):
    """One layer's keys and values, ``[rows, heads, length, head_dim]`` views into preallocated buffers."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, extra_positions: int) -> None:
        super().__init__()
        rows, heads, length, dim = keys.shape
        shape = (rows, heads, length + extra_positions, dim)
        self._buffers = [
            [torch.empty(shape, dtype=keys.dtype, device=keys.device) for _ in range(2)] for _ in range(2)
        ]
        self._buffers[0][0][:, :, :length] = keys
        self._buffers[0][1][:, :, :length] = values
        self.dtype, self.device = keys.dtype, keys.device
        self.is_initialized = True
        self.length, self.rows, self.capacity = length, rows, shape[2]
        self._expose()

    def _expose(self) -> None:
        keys, values = self._buffers[0]
        self.keys = keys[: self.rows, :, : self.length]
        self.values = values[: self.rows, :, : self.length]

    def update(
        self,
        key_states: torch.Tensor,
        value_states: torch.Tensor,
        *args: object,
        **kwargs: object,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        steps = key_states.shape[-2]
        if self.length + steps > self.capacity:
            raise ValueError(f"beam cache full: {self.length} + {steps} positions exceed its {self.capacity}")
        keys, values = self._buffers[0]
        keys[: self.rows, :, self.length : self.length + steps] = key_states
        values[: self.rows, :, self.length : self.length + steps] = value_states
        self.length += steps
        self._expose()
        return self.keys, self.values

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Rows ``beam_idx`` (any number: finished examples' rows are dropped) become rows 0..len-1.

        Whole rows are gathered, unused positions included: one contiguous copy is cheaper than a strided one.
        """
        (keys, values), (spare_keys, spare_values) = self._buffers
        n = len(beam_idx)
        torch.index_select(keys[: self.rows], 0, beam_idx, out=spare_keys[:n])
        torch.index_select(values[: self.rows], 0, beam_idx, out=spare_values[:n])
        self._buffers.reverse()
        self.rows = n
        self._expose()

    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError("expand the cache to the beams before preallocating it")

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.reorder_cache(indices)


def preallocate(cache: DynamicCache, extra_positions: int) -> DynamicCache:
    """Swap each of ``cache``'s layers for a :class:`PreallocatedBeamLayer` with room for ``extra_positions``
    more steps; returns the same cache object (the model keeps calling it as before)."""
    for i, layer in enumerate(cache.layers):
        cache.layers[i] = PreallocatedBeamLayer(layer.keys, layer.values, extra_positions)
    return cache


class BeamSharedCrossAttentionCache(EncoderDecoderCache):
    """An encoder-decoder cache for ``generate``'s beam search that does not reorder the cross-attention part.

    ``generate`` repeats each example's encoder output to its beams and a beam's successors stay within the
    same example, so every reorder of the cross-attention keys and values copies rows onto equal rows: a full
    copy of the source's keys and values per layer per step, skipped here.
    """

    def __init__(self) -> None:
        super().__init__(DynamicCache(), DynamicCache())

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self.self_attention_cache.reorder_cache(beam_idx)
