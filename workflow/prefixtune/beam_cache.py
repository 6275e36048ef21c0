"""A key/value cache for beam search that never reallocates and copies only what beams do not share.

transformers' ``DynamicLayer`` appends a step with ``torch.cat`` (a new tensor holding the whole cache) and
reorders beams with ``index_select`` (another): two full copies and two allocations per layer per step. Here
each layer owns two buffers sized for the whole search; a step is written in place and a reorder gathers the
surviving rows into the other buffer, then the two swap. The prefix and prompt positions are equal in every
beam of an example and beams never leave their example, so a reorder copies only the generated positions
(whole rows only for the examples that move up when finished ones leave the batch). Attention sees the same
numbers, so the outputs are unchanged (tests compare the contents with the dynamic cache's and the outputs with
batch-1 decoding).
"""

from __future__ import annotations

import torch
from transformers import DynamicCache, EncoderDecoderCache
from transformers.cache_utils import DynamicLayer


class PreallocatedBeamLayer(DynamicLayer):
    """One layer's keys and values, ``[rows, heads, length, head_dim]`` views into preallocated buffers."""

    def __init__(
        self,
        keys: torch.Tensor,
        values: torch.Tensor,
        extra_positions: int,
        beams: int = 1,
        plan: list | None = None,
    ) -> None:
        super().__init__()
        self._plan = plan if plan is not None else [None, 0]  # the last reorder's (beam_idx, blocks in place)
        examples, heads, length, dim = keys.shape
        rows = examples * beams
        shape = (rows, heads, length + extra_positions, dim)
        # both buffers hold the prompt part, each example's in its K rows: rows that stay within their example
        # need only the steps copied
        self._buffers = [[keys.new_empty(shape) for _ in range(2)] for _ in range(2)]
        for buffer_keys, buffer_values in self._buffers:
            buffer_keys.view(examples, beams, *shape[1:])[:, :, :, :length] = keys[:, None]
            buffer_values.view(examples, beams, *shape[1:])[:, :, :, :length] = values[:, None]
        self.dtype, self.device = keys.dtype, keys.device
        self.is_initialized = True
        self.length, self.rows, self.capacity = length, rows, shape[2]
        self.beams, self.shared = beams, length if beams > 1 else 0
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

        The first ``shared`` positions (prefix and prompt) are equal in every beam of an example: blocks that keep
        their place (each row takes a beam of its own example) get only the generated positions copied. Blocks
        that move up when an earlier example leaves get whole rows, and their prompt part is brought into the
        other buffer too.
        """
        (keys, values), (spare_keys, spare_values) = self._buffers
        n = len(beam_idx)
        kept = self._blocks_in_place(beam_idx) * self.beams if self.shared else 0
        if kept:
            span = slice(self.shared, self.length)
            index = beam_idx[:kept]
            torch.index_select(keys[: self.rows, :, span], 0, index, out=spare_keys[:kept, :, span])
            torch.index_select(values[: self.rows, :, span], 0, index, out=spare_values[:kept, :, span])
        if kept < n:
            used = slice(0, self.length)
            index = beam_idx[kept:]
            torch.index_select(keys[: self.rows, :, used], 0, index, out=spare_keys[kept:n, :, used])
            torch.index_select(values[: self.rows, :, used], 0, index, out=spare_values[kept:n, :, used])
            if self.shared:  # these rows moved: the other buffer's prompt part follows them
                keys[kept:n, :, : self.shared] = spare_keys[kept:n, :, : self.shared]
                values[kept:n, :, : self.shared] = spare_values[kept:n, :, : self.shared]
        self._buffers.reverse()
        self.rows = n
        self._expose()

    def _blocks_in_place(self, beam_idx: torch.Tensor) -> int:
        """How many leading blocks of ``beams`` rows take their beams from the block they already are (worked
        out once per reorder: every layer gets the same ``beam_idx``)."""
        if self._plan[0] is beam_idx:
            return self._plan[1]
        n = len(beam_idx)
        examples = beam_idx // self.beams
        blocks = examples[:: self.beams]
        if n % self.beams or not bool((examples.view(-1, self.beams) == blocks[:, None]).all()):
            raise ValueError(f"a beam reorder must keep blocks of {self.beams} rows of one example")
        same = (blocks == torch.arange(len(blocks), device=blocks.device)).long()
        self._plan[:] = [beam_idx, int(same.cumprod(0).sum())]
        return self._plan[1]

    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError("expand the cache to the beams before preallocating it")

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.reorder_cache(indices)


def preallocate(cache: DynamicCache, extra_positions: int, beams: int = 1) -> DynamicCache:
    """Swap each of ``cache``'s layers for a :class:`PreallocatedBeamLayer` with room for ``extra_positions``
    more steps; returns the same cache object (the model keeps calling it as before). ``cache`` has one row per
    example; each becomes ``beams`` rows (its beams, which stay in their example)."""
    plan: list = [None, 0]  # shared by the layers
    for i, layer in enumerate(cache.layers):
        cache.layers[i] = PreallocatedBeamLayer(layer.keys, layer.values, extra_positions, beams, plan)
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
