"""Batched beam search with exactly the semantics of :func:`prefixtune.beam_search.beam_search` (transformers 3.2),
for many prompts at once, each behind the same trained prefix (or a prefix of its own: mixed-prefix batches).

Prompts are left-padded; the attention mask hides the padding and every example's tokens get the positions they
have at batch 1 (the first real token at P, the prefix length), so each example sees the numbers it would see
alone. The bookkeeping (EOS candidates, finished hypotheses, stopping) runs per example as at batch 1; finished
examples leave the batch (their rows are dropped from the cache, which is preallocated for the whole search:
:mod:`prefixtune.beam_cache`). Every example has the same budget of ``max_new_tokens`` steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers import DynamicCache, PreTrainedModel

from prefixtune.beam_cache import preallocate
from prefixtune.beam_search import BeamSettings, _ban, _Hypotheses


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
    out = model(
        input_ids=ids, past_key_values=past, attention_mask=full_mask, position_ids=positions, use_cache=True
    )
    cache = out.past_key_values
    cache.batch_repeat_interleave(beams)
    preallocate(cache, settings.max_new_tokens, beams)
    logits = out.logits[:, -1, :].repeat_interleave(beams, dim=0)
    sequences = ids.repeat_interleave(beams, dim=0)  # left-padded history per beam
    full_mask = full_mask.repeat_interleave(beams, dim=0)
    beam_scores = torch.zeros(batch, beams, device=device)
    beam_scores[:, 1:] = -1e9
    beam_scores = beam_scores.view(-1)
    hyps = [_Hypotheses(settings, n) for n in lengths]
    done = [False] * batch
    active = list(range(batch))  # examples still searching, in row-block order (K rows each)
    next_position = (torch.tensor(lengths, device=device) + own).repeat_interleave(beams)
    for step in range(settings.max_new_tokens):
        scores = F.log_softmax(logits.float(), dim=-1)
        vocab = scores.shape[-1]
        for j, b in enumerate(active):  # min_length counts the prompt, as at batch 1
            if lengths[b] + step < settings.min_length:
                scores[j * beams : (j + 1) * beams, eos_token_id] = -float("inf")
        if settings.bad_words_ids:
            _ban(scores, sequences, settings.bad_words_ids)
        totals = (scores + beam_scores[:, None]).view(len(active), beams * vocab)
        top_scores, top_tokens = torch.topk(totals, 2 * beams, dim=1)
        still: list[int] = []
        new_scores: list[float] = []
        new_tokens: list[int] = []
        new_rows: list[int] = []
        for j, (b, row_scores, row_tokens) in enumerate(
            zip(active, top_scores.tolist(), top_tokens.tolist(), strict=True)
        ):
            chosen: list[tuple[float, int, int]] = []
            for rank, (score, flat) in enumerate(zip(row_scores, row_tokens, strict=True)):
                beam_id, token_id = divmod(flat, vocab)
                row = j * beams + beam_id
                if token_id == eos_token_id:
                    if rank < beams:
                        hyps[b].add(sequences[row, starts[b] :].clone(), score)
                else:
                    chosen.append((score, token_id, row))
                if len(chosen) == beams:
                    break
            done[b] = hyps[b].is_done(max(row_scores), lengths[b] + step)
            if done[b]:  # finished examples leave the batch: the rest run on fewer rows
                continue
            still.append(b)
            new_scores += [c[0] for c in chosen]
            new_tokens += [c[1] for c in chosen]
            new_rows += [c[2] for c in chosen]
        if not still:
            break
        active = still
        beam_scores = torch.tensor(new_scores, device=device)
        tokens = torch.tensor(new_tokens, device=device)
        rows = torch.tensor(new_rows, device=device)
        sequences = torch.cat([sequences[rows], tokens[:, None]], dim=-1)
        ones = torch.ones(len(rows), 1, dtype=torch.long, device=device)
        full_mask = torch.cat([full_mask[rows], ones], dim=1)
        next_position = next_position[rows]
        cache.reorder_cache(rows)
        if step + 1 < settings.max_new_tokens:
            logits = model(
                input_ids=tokens[:, None],
                past_key_values=cache,
                attention_mask=full_mask,
                position_ids=(next_position + step)[:, None],
                use_cache=True,
            ).logits[:, -1, :]
    for j, b in enumerate(active):
        if not done[b]:
            for beam_id in range(beams):
                row = j * beams + beam_id
                hyps[b].add(sequences[row, starts[b] :], beam_scores[row].item())
    return [h.best().tolist() for h in hyps]


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
