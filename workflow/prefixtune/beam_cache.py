"""A key/value cache for beam search that never reallocates and copies only what beams do not share.

transformers' ``DynamicLayer`` appends a step with ``torch.cat`` (a new tensor holding the whole cache) and
reorders beams with ``index_select`` (another): two full copies and two allocations per layer per step. Here
each layer owns two buffers sized for the whole search; a step is written in place and a reorder gathers the
surviving rows into the other buffer, then the two swap. The prefix and prompt positions are equal in every
beam of an example and beams never leave their example, so a reorder copies only the generated positions
(whole rows only when finished examples leave the batch). Attention sees the same numbers, so the outputs are
unchanged (tests compare the contents with the dynamic cache's and the outputs with batch-1 decoding).
"""

from __future__ import annotations

import torch
from transformers import DynamicCache, EncoderDecoderCache
from transformers.cache_utils import DynamicLayer


class PreallocatedBeamLayer(DynamicLayer):
    """One layer's keys and values, ``[rows, heads, length, head_dim]`` views into preallocated buffers."""

    def __init__(
        self, keys: torch.Tensor, values: torch.Tensor, extra_positions: int, beams: int = 1
    ) -> None:
        super().__init__()
        rows, heads, length, dim = keys.shape
        shape = (rows, heads, length + extra_positions, dim)
        # both buffers hold the prompt part: rows that stay within their example need only the steps copied
        self._buffers = [[keys.new_empty(shape) for _ in range(2)] for _ in range(2)]
        for buffer_keys, buffer_values in self._buffers:
            buffer_keys[:, :, :length] = keys
            buffer_values[:, :, :length] = values
        self.dtype, self.device = keys.dtype, keys.device
        self.is_initialized = True
        self.length, self.rows, self.capacity = length, rows, shape[2]
        self.beams, self.shared = beams, length if beams > 1 else 0
        self._example_of_row = torch.arange(rows, device=keys.device) // beams
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

        The first ``shared`` positions (prefix and prompt) are equal in every beam of an example: while each row
        takes its new contents from a beam of its own example, only the generated positions are copied. When
        examples leave, whole rows are gathered and the prompt part is brought into both buffers again.
        """
        (keys, values), (spare_keys, spare_values) = self._buffers
        n = len(beam_idx)
        within = (
            self.shared > 0
            and n == self.rows
            and torch.equal(beam_idx // self.beams, self._example_of_row[:n])
        )
        if within:
            span = slice(self.shared, self.length)
            torch.index_select(keys[:n, :, span], 0, beam_idx, out=spare_keys[:n, :, span])
            torch.index_select(values[:n, :, span], 0, beam_idx, out=spare_values[:n, :, span])
        else:
            if self.shared:
                examples = beam_idx // self.beams
                if n % self.beams or not bool(
                    (examples.view(-1, self.beams) == examples[:: self.beams, None]).all()
                ):
                    raise ValueError(f"a beam reorder must keep blocks of {self.beams} rows of one example")
            torch.index_select(keys[: self.rows], 0, beam_idx, out=spare_keys[:n])
            torch.index_select(values[: self.rows], 0, beam_idx, out=spare_values[:n])
            if self.shared:  # the rows moved: the other buffer's prompt part follows them
                keys[:n, :, : self.shared] = spare_keys[:n, :, : self.shared]
                values[:n, :, : self.shared] = spare_values[:n, :, : self.shared]
        self._buffers.reverse()
        self.rows = n
        self._expose()

    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError("expand the cache to the beams before preallocating it")

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.reorder_cache(indices)


def preallocate(cache: DynamicCache, extra_positions: int, beams: int = 1) -> DynamicCache:
    """Swap each of ``cache``'s layers for a :class:`PreallocatedBeamLayer` with room for ``extra_positions``
    more steps; returns the same cache object (the model keeps calling it as before). ``beams`` > 1: the cache
    holds ``beams`` equal rows per example (expanded to the beams), whose beams stay in their example."""
    for i, layer in enumerate(cache.layers):
        cache.layers[i] = PreallocatedBeamLayer(layer.keys, layer.values, extra_positions, beams)
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
