"""Batched beam search with exactly the semantics of :func:`prefixtune.decoding.beam_search.beam_search`
(transformers 3.2), for many prompts at once, each behind the same trained prefix (or a prefix of its own:
mixed-prefix batches).

Prompts are left-padded; the attention mask hides the padding and every example's tokens get the positions they
have at batch 1 (the first real token at P, the prefix length), so each example sees the numbers it would see
alone. The bookkeeping (EOS candidates, finished hypotheses, stopping) runs per example as at batch 1, in
tensors for the examples with nothing to decide this step. Finished examples leave the batch a few at a time
(their rows are dropped from the cache, which is preallocated for the whole search:
:mod:`prefixtune.decoding.beam_cache`).
With eager attention an example's prefix and prompt are kept once for its beams and read once per step for all
of them (:mod:`prefixtune.decoding.beam_attention`). Every example has the same budget of ``max_new_tokens`` steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from transformers import DynamicCache, PreTrainedModel

from prefixtune.decoding.beam_attention import SHARED_PREFIX
from prefixtune.decoding.beam_cache import preallocate, reorder_beams
from prefixtune.decoding.beam_search import BadWords, BeamSettings, _Hypotheses


def _left_pad(
    prompts: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, ...]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((len(prompts), width), dtype=torch.long, device=device)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt, device=device)
        mask[row, width - len(prompt) :] = 1
    return ids, mask


@torch.no_grad()
def beam_search_batch(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    eos_token_id: int,
    settings: BeamSettings,
    past: DynamicCache | None = None,
    pad_token_id: int | None = None,
    prefix_lengths: Sequence[int] | None = None,
) -> list[list[int]]:
    """Best sequence (prompt + generated, without the final EOS) per prompt, as :func:`beam_search` gives it.

    ``past``: a cache with one row per prompt (its prefix), or None. ``prefix_lengths``: each row's own prefix
    length where they differ (a mixed-prefix cache from :func:`mixed_prefix_cache`, left-padded to the longest);
    default: every row uses the cache's whole length. ``pad_token_id`` fills the left padding (any id: it is
    masked); default ``eos_token_id``.
    """
    device = model.device
    beams, batch = settings.num_beams, len(prompts)
    pad = eos_token_id if pad_token_id is None else pad_token_id
    ids, mask = _left_pad(prompts, pad, device)
    lengths = [len(p) for p in prompts]
    starts = [ids.shape[1] - n for n in lengths]  # where each example's real tokens begin in its rows
    width = past.get_seq_length() if past is not None else 0
    if past is not None and past.layers[0].keys.shape[0] != batch:
        raise ValueError(f"the prefix cache has {past.layers[0].keys.shape[0]} rows for {batch} prompts")
    own = torch.tensor(list(prefix_lengths) if prefix_lengths is not None else [width] * batch, device=device)
    if len(own) != batch or bool((own > width).any()):
        raise ValueError(f"prefix_lengths {own.tolist()}: one per prompt, each at most the cache's {width}")
    prefix_mask = (torch.arange(width, device=device)[None, :] >= (width - own)[:, None]).long()
    full_mask = torch.cat([prefix_mask, mask], dim=1)
    positions = own[:, None] + (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(  # only the last position's logits are needed
        input_ids=ids,
        past_key_values=past,
        attention_mask=full_mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
    )
    # eager attention reads each example's prefix and prompt once for its beams (prefixtune.decoding.beam_attention)
    shared = model.config._attn_implementation == "eager" and not model.config.reorder_and_upcast_attn
    cache = preallocate(out.past_key_values, settings.max_new_tokens, beams, shared_prefix=shared)
    logits = out.logits[:, -1, :].repeat_interleave(beams, dim=0)
    sequences = ids.repeat_interleave(beams, dim=0)  # left-padded history per beam
    step_mask = _StepMask(model, full_mask.repeat_interleave(beams, dim=0))
    beam_scores = torch.zeros(batch, beams, device=device)
    beam_scores[:, 1:] = -1e9
    beam_scores = beam_scores.view(-1)
    hyps = [_Hypotheses(settings, n) for n in lengths]
    # the example each block of K rows serves; None once it has finished: its rows keep running (on a padding
    # token, ignored) until a quarter of the rows are such, then the finished blocks leave in one compaction
    blocks: list[int | None] = list(range(batch))
    next_position = (torch.tensor(lengths, device=device) + own).repeat_interleave(beams)
    bad_words = BadWords(settings.bad_words_ids, device)
    first_rows = torch.arange(0, batch * beams, beams, device=device)[:, None]  # each block's first row
    with _attention(model, SHARED_PREFIX if shared else None):
        for step in range(settings.max_new_tokens):
            scores = F.log_softmax(logits.float(), dim=-1)
            vocab = scores.shape[-1]
            if min(lengths) + step < settings.min_length:  # min_length counts the prompt, as at batch 1
                for j, b in enumerate(blocks):
                    if b is not None and lengths[b] + step < settings.min_length:
                        scores[j * beams : (j + 1) * beams, eos_token_id] = -float("inf")
            bad_words.ban(scores, sequences)
            totals = (scores + beam_scores[:, None]).view(len(blocks), beams * vocab)
            top_scores, top_flat = torch.topk(totals, 2 * beams, dim=1)
            beam_scores, tokens, rows = _select(
                top_scores,
                top_flat,
                first_rows,
                vocab,
                eos_token_id,
                pad,
                settings,
                blocks,
                hyps,
                sequences,
                starts,
                step,
            )
            live = [j for j, b in enumerate(blocks) if b is not None]
            if not live:
                break
            in_place = len(blocks)  # every block takes its beams from its own rows
            if 4 * (len(blocks) - len(live)) >= len(blocks):  # compaction: the finished blocks' rows leave
                keep = torch.tensor([j * beams + i for j in live for i in range(beams)], device=device)
                beam_scores, tokens, rows = beam_scores[keep], tokens[keep], rows[keep]
                blocks = [blocks[j] for j in live]
                in_place = next((i for i, j in enumerate(live) if i != j), len(live))
                first_rows = first_rows[: len(blocks)]
            sequences = torch.cat([sequences[rows], tokens[:, None]], dim=-1)
            next_position = next_position[rows]
            step_mask.reorder_and_extend(rows)
            reorder_beams(cache, rows, in_place)
            if step + 1 < settings.max_new_tokens:
                logits = model(
                    input_ids=tokens[:, None],
                    past_key_values=cache,
                    attention_mask=step_mask.for_model(),
                    position_ids=(next_position + step)[:, None],
                    use_cache=True,
                    **({"shared_prefix": cache} if shared else {}),
                ).logits[:, -1, :]
    for j, b in enumerate(blocks):
        if b is not None:  # out of steps before it was done: its live beams are hypotheses too
            for beam_id in range(beams):
                row = j * beams + beam_id
                hyps[b].add(sequences[row, starts[b] :], beam_scores[row].item())
    return [h.best().tolist() for h in hyps]


@contextmanager
def _attention(model: PreTrainedModel, name: str | None) -> Iterator[None]:
    """The model's attention set to ``name`` inside (None: unchanged), its own again after."""
    previous = model.config._attn_implementation
    if name is not None:
        model.set_attn_implementation(name)
    try:
        yield
    finally:
        if name is not None:
            model.set_attn_implementation(previous)


def _select(
    top_scores: torch.Tensor,
    top_flat: torch.Tensor,
    first_rows: torch.Tensor,
    vocab: int,
    eos_token_id: int,
    pad: int,
    settings: BeamSettings,
    blocks: list[int | None],
    hyps: list[_Hypotheses],
    sequences: torch.Tensor,
    starts: list[int],
    step: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of transformers 3.2's selection for every block: (scores, tokens, source rows) of the next beams.

    Most blocks have no EOS among their first K candidates and fewer than K finished hypotheses: their next
    beams are those K candidates, taken as tensors. The others go through the per-candidate rule as at batch 1
    (an EOS ranked below K adds a hypothesis, the first K others continue, then the stopping test); an example
    that is done marks its block finished (None) and its rows continue on ``pad`` (never read).
    """
    beams = settings.num_beams
    device = top_scores.device
    tokens = top_flat % vocab
    next_scores = top_scores[:, :beams].clone()
    next_tokens = tokens[:, :beams].clone()
    next_rows = first_rows + top_flat[:, :beams] // vocab
    eos_early = (tokens[:, :beams] == eos_token_id).any(dim=1).tolist()
    slow = [
        j
        for j, b in enumerate(blocks)
        if b is None or eos_early[j] or len(hyps[b].items) >= beams  # (is_done is False below K hypotheses)
    ]
    if not slow:
        return next_scores.view(-1), next_tokens.view(-1), next_rows.view(-1)
    picked: list[list[tuple[float, int, int]]] = []  # per slow block: K (score, token, source row)
    slow_scores, slow_flat = top_scores[slow].tolist(), top_flat[slow].tolist()
    for j, row_scores, row_flat in zip(slow, slow_scores, slow_flat, strict=True):
        b = blocks[j]
        resting = [(0.0, pad, j * beams + i) for i in range(beams)]  # a finished block's rows, fed padding
        if b is None:  # finished earlier, waiting for compaction
            picked.append(resting)
            continue
        chosen: list[tuple[float, int, int]] = []
        for rank, (score, flat) in enumerate(zip(row_scores, row_flat, strict=True)):
            beam_id, token_id = divmod(flat, vocab)
            row = j * beams + beam_id
            if token_id == eos_token_id:
                if rank < beams:
                    hyps[b].add(sequences[row, starts[b] :], score)  # a view: sequences is never written
            else:
                chosen.append((score, token_id, row))
            if len(chosen) == beams:
                break
        if hyps[b].is_done(max(row_scores), hyps[b].prompt_len + step):
            blocks[j] = None
            chosen = resting
        picked.append(chosen)
    where = torch.tensor(slow, device=device)
    next_scores[where] = torch.tensor(
        [[c[0] for c in p] for p in picked], dtype=next_scores.dtype, device=device
    )
    next_tokens[where] = torch.tensor([[c[1] for c in p] for p in picked], device=device)
    next_rows[where] = torch.tensor([[c[2] for c in p] for p in picked], device=device)
    return next_scores.view(-1), next_tokens.view(-1), next_rows.view(-1)


class _StepMask:
    """The attention mask of the one-token steps: a 2D 0/1 mask, and for eager attention the 4D additive mask
    transformers would build from it (0 where visible, the dtype's minimum elsewhere), kept up to date
    instead of rebuilt at every step. sdpa gets the 2D mask and builds its own, as before."""

    def __init__(self, model: PreTrainedModel, mask: torch.Tensor) -> None:
        self.mask = mask
        self.additive: torch.Tensor | None = None
        if model.config._attn_implementation in ("eager", SHARED_PREFIX):
            minimum = torch.finfo(model.dtype).min
            self.additive = torch.zeros(mask.shape, dtype=model.dtype, device=mask.device)
            self.additive.masked_fill_(mask == 0, minimum)

    def reorder_and_extend(self, rows: torch.Tensor) -> None:
        """Rows ``rows`` become the rows, each with one more visible position (the token fed next)."""
        self.mask = torch.cat([self.mask[rows], self.mask.new_ones(len(rows), 1)], dim=1)
        if self.additive is not None:
            self.additive = torch.cat([self.additive[rows], self.additive.new_zeros(len(rows), 1)], dim=1)

    def for_model(self) -> torch.Tensor:
        return self.mask if self.additive is None else self.additive[:, None, None, :]


def mixed_prefix_cache(caches: Sequence[DynamicCache]) -> tuple[DynamicCache, list[int]]:
    """One cache for a mixed-prefix batch (the paper's §8.2): row i holds ``caches[i]`` (each of batch 1, e.g. a
    task's prefix), left-padded with zeros to the longest; returns it and each row's own prefix length."""
    lengths = [c.get_seq_length() for c in caches]
    width = max(lengths)
    layers = []
    for layer in range(len(caches[0].layers)):
        keys, values = [], []
        for cache, n in zip(caches, lengths, strict=True):
            k, v = cache.layers[layer].keys, cache.layers[layer].values
            keys.append(F.pad(k, (0, 0, width - n, 0)))
            values.append(F.pad(v, (0, 0, width - n, 0)))
        layers.append((torch.cat(keys), torch.cat(values)))
    return DynamicCache(ddp_cache_data=layers), lengths
