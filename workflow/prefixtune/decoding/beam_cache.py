"""A key/value cache for beam search that never reallocates and copies only what beams do not share.

transformers' ``DynamicLayer`` appends a step with ``torch.cat`` (a new tensor holding the whole cache) and
reorders beams with ``index_select`` (another): two full copies and two allocations per layer per step. Here
each layer owns two buffers sized for the whole search; a step is written in place and a reorder gathers the
surviving rows into the other buffer, then the two swap. The prefix and prompt positions are equal in every
beam of an example and beams never leave their example, so a reorder copies only the generated positions
(whole rows only for the examples that move up when finished ones leave the batch). Attention sees the same
numbers, so the outputs are unchanged (tests compare the contents with the dynamic cache's and the outputs with
batch-1 decoding). :class:`SharedPrefixBeamLayer` goes further for :mod:`prefixtune.decoding.beam_attention`: the prefix
and prompt are kept once per example, and only the generated positions live in per-beam buffers.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache, EncoderDecoderCache
from transformers.cache_utils import DynamicLayer


class _BeamBuffers(DynamicLayer):
    """Two pairs of key/value buffers ``[rows, heads, capacity, head_dim]`` sized for the whole search: steps are
    written into the first pair in place, a reorder gathers rows into the second and the pairs swap. ``keys`` and
    ``values`` are views of the ``filled`` positions of the current rows."""

    def _allocate(
        self, like: torch.Tensor, rows: int, capacity: int, filled: int, beams: int, plan: list | None
    ) -> None:
        self._plan = plan if plan is not None else [None, 0]  # the last reorder's (beam_idx, blocks in place)
        shape = (rows, like.shape[1], capacity, like.shape[3])
        self._buffers = [[like.new_empty(shape) for _ in range(2)] for _ in range(2)]
        self.dtype, self.device = like.dtype, like.device
        self.is_initialized = True
        self.rows, self.capacity, self.filled, self.beams = rows, capacity, filled, beams

    def _expose(self) -> None:
        keys, values = self._buffers[0]
        self.keys = keys[: self.rows, :, : self.filled]
        self.values = values[: self.rows, :, : self.filled]

    def update(
        self,
        key_states: torch.Tensor,
        value_states: torch.Tensor,
        *args: object,
        **kwargs: object,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        steps = key_states.shape[-2]
        if self.filled + steps > self.capacity:
            raise ValueError(f"beam cache full: {self.filled} + {steps} positions exceed its {self.capacity}")
        keys, values = self._buffers[0]
        keys[: self.rows, :, self.filled : self.filled + steps] = key_states
        values[: self.rows, :, self.filled : self.filled + steps] = value_states
        self.filled += steps
        self._expose()
        return self.keys, self.values

    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError("expand the cache to the beams before preallocating it")

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.reorder_cache(indices)


class PreallocatedBeamLayer(_BeamBuffers):
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
        examples, heads, length, dim = keys.shape
        self._allocate(keys, examples * beams, length + extra_positions, length, beams, plan)
        # both buffers hold the prompt part, each example's in its K rows: rows that stay within their example
        # need only the steps copied
        for buffer_keys, buffer_values in self._buffers:
            buffer_keys.view(examples, beams, heads, -1, dim)[:, :, :, :length] = keys[:, None]
            buffer_values.view(examples, beams, heads, -1, dim)[:, :, :, :length] = values[:, None]
        self.shared = length if beams > 1 else 0
        self._expose()

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Rows ``beam_idx`` (any number: finished examples' rows are dropped) become rows 0..len-1.

        The first ``shared`` positions (prefix and prompt) are equal in every beam of an example: blocks that keep
        their place (each row takes a beam of its own example) get only the generated positions copied. Blocks
        that move up when an earlier example leaves get whole rows, and their prompt part is brought into the
        other buffer too.
        """
        (keys, values), (spare_keys, spare_values) = self._buffers
        n = len(beam_idx)
        kept = _blocks_in_place(self._plan, beam_idx, self.beams) * self.beams if self.shared else 0
        if kept:
            span = slice(self.shared, self.filled)
            index = beam_idx[:kept]
            torch.index_select(keys[: self.rows, :, span], 0, index, out=spare_keys[:kept, :, span])
            torch.index_select(values[: self.rows, :, span], 0, index, out=spare_values[:kept, :, span])
        if kept < n:
            used = slice(0, self.filled)
            index = beam_idx[kept:]
            torch.index_select(keys[: self.rows, :, used], 0, index, out=spare_keys[kept:n, :, used])
            torch.index_select(values[: self.rows, :, used], 0, index, out=spare_values[kept:n, :, used])
            if self.shared:  # these rows moved: the other buffer's prompt part follows them
                keys[kept:n, :, : self.shared] = spare_keys[kept:n, :, : self.shared]
                values[kept:n, :, : self.shared] = spare_values[kept:n, :, : self.shared]
        self._buffers.reverse()
        self.rows = n
        self._expose()


class SharedPrefixBeamLayer(_BeamBuffers):
    """One layer's keys and values for :mod:`prefixtune.decoding.beam_attention`: the prefix and prompt positions
    once per example (``shared_keys``/``shared_values`` ``[examples, heads, S, dim]``, the prompt pass's own
    tensors, never copied for the beams), and each beam's generated positions (``keys``/``values``, views into
    preallocated buffers, reordered as in :class:`PreallocatedBeamLayer`)."""

    def __init__(
        self,
        keys: torch.Tensor,
        values: torch.Tensor,
        extra_positions: int,
        beams: int,
        plan: list | None = None,
    ) -> None:
        super().__init__()
        self.shared_keys, self.shared_values = keys, values
        self.width = keys.shape[2]
        self._allocate(keys, keys.shape[0] * beams, extra_positions, 0, beams, plan)
        self._expose()

    def get_seq_length(self) -> int:
        return self.width + self.filled

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.width + self.filled + query_length, 0

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Rows ``beam_idx`` become the rows; examples whose blocks leave drop their shared part too."""
        (keys, values), (spare_keys, spare_values) = self._buffers
        n = len(beam_idx)
        in_place = _blocks_in_place(self._plan, beam_idx, self.beams)
        used = slice(0, self.filled)
        torch.index_select(keys[: self.rows, :, used], 0, beam_idx, out=spare_keys[:n, :, used])
        torch.index_select(values[: self.rows, :, used], 0, beam_idx, out=spare_values[:n, :, used])
        examples = n // self.beams
        if in_place < examples:  # some examples moved up: gather the shared parts of those that stay
            which = beam_idx[:: self.beams] // self.beams
            self.shared_keys = self.shared_keys.index_select(0, which)
            self.shared_values = self.shared_values.index_select(0, which)
        elif examples < self.shared_keys.shape[0]:  # only the last examples left
            self.shared_keys, self.shared_values = self.shared_keys[:examples], self.shared_values[:examples]
        self._buffers.reverse()
        self.rows = n
        self._expose()


def _blocks_in_place(plan: list, beam_idx: torch.Tensor, beams: int) -> int:
    """How many leading blocks of ``beams`` rows take their beams from the block they already are: from ``plan``
    when the caller said (:func:`reorder_beams`), else worked out once per reorder (every layer gets the same
    ``beam_idx``), checking that each block keeps to one example."""
    if plan[0] is beam_idx:
        return plan[1]
    n = len(beam_idx)
    examples = beam_idx // beams
    blocks = examples[::beams]
    if n % beams or not bool((examples.view(-1, beams) == blocks[:, None]).all()):
        raise ValueError(f"a beam reorder must keep blocks of {beams} rows of one example")
    same = (blocks == torch.arange(len(blocks), device=blocks.device)).long()
    plan[:] = [beam_idx, int(same.cumprod(0).sum())]
    return plan[1]


def reorder_beams(cache: DynamicCache, beam_idx: torch.Tensor, blocks_in_place: int) -> None:
    """``cache.reorder_cache(beam_idx)`` for a caller that knows how many leading blocks keep their place (the
    batched search does: it decides which examples leave), so the layers skip working it out from ``beam_idx``."""
    plan = cache.layers[0]._plan
    plan[:] = [beam_idx, blocks_in_place]
    cache.reorder_cache(beam_idx)


def preallocate(
    cache: DynamicCache, extra_positions: int, beams: int = 1, shared_prefix: bool = False
) -> DynamicCache:
    """Swap each of ``cache``'s layers for a :class:`PreallocatedBeamLayer` (or, with ``shared_prefix``, a
    :class:`SharedPrefixBeamLayer`) with room for ``extra_positions`` more steps; returns the same cache object
    (the model keeps calling it as before). ``cache`` has one row per example; each becomes ``beams`` rows (its
    beams, which stay in their example)."""
    plan: list = [None, 0]  # shared by the layers
    kind = SharedPrefixBeamLayer if shared_prefix else PreallocatedBeamLayer
    for i, layer in enumerate(cache.layers):
        cache.layers[i] = kind(layer.keys, layer.values, extra_positions, beams, plan)
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
