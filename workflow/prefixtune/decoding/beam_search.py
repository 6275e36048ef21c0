"""Beam search with the semantics of transformers 3.2, which produced the paper's table-to-text outputs.

transformers 5 normalises a finished hypothesis by the number of *generated* tokens; 3.2 divided its summed
log-probability by the length of prompt + generated tokens (``length_basis="prompt_plus_generated"``). Finished
hypotheses exclude the EOS token, a candidate EOS ranked below ``num_beams`` is skipped, and the search stops once
the best running beam cannot beat the worst kept hypothesis (early_stopping=False); of finished hypotheses with
exactly equal scores the one finished last is returned. One source at a time (batch 1),
as the authors decoded; the prefix cache is expanded to the beams.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import DynamicCache, PreTrainedModel


@dataclass
class BeamSettings:
    num_beams: int = 5
    max_new_tokens: int = 100
    min_length: int = 0  # counted with the prompt, as in transformers 3.2
    length_penalty: float = 1.0
    length_basis: str = "prompt_plus_generated"  # or "generated" (transformers 5)
    early_stopping: bool = False
    bad_words_ids: list[list[int]] = field(default_factory=list)


class _Hypotheses:
    """The ``num_beams`` best finished hypotheses (transformers 3.2 ``BeamHypotheses``)."""

    def __init__(self, settings: BeamSettings, prompt_len: int) -> None:
        self.settings, self.prompt_len = settings, prompt_len
        self.items: list[tuple[float, torch.Tensor]] = []
        self.worst = 1e9

    def _norm_len(self, length: int) -> int:
        return (
            length
            if self.settings.length_basis == "prompt_plus_generated"
            else max(1, length - self.prompt_len)
        )

    def add(self, tokens: torch.Tensor, sum_logprobs: float) -> None:
        score = sum_logprobs / self._norm_len(len(tokens)) ** self.settings.length_penalty
        if len(self.items) < self.settings.num_beams or score > self.worst:
            self.items.append((score, tokens))
            if len(self.items) > self.settings.num_beams:
                ranked = sorted((s, i) for i, (s, _) in enumerate(self.items))
                del self.items[ranked[0][1]]
                self.worst = ranked[1][0]
            else:
                self.worst = min(score, self.worst)

    def is_done(self, best_sum_logprobs: float, cur_len: int) -> bool:
        if len(self.items) < self.settings.num_beams:
            return False
        if self.settings.early_stopping:
            return True
        return self.worst >= best_sum_logprobs / self._norm_len(cur_len) ** self.settings.length_penalty

    def best(self) -> torch.Tensor:
        """The best hypothesis; among exactly equal scores the one kept last, as 3.2 returned it (a stable sort
        by score, then the end of the list). ``add`` keeps the insertion order and, when full, evicts the
        lowest score added first: the kept list is 3.2's, item for item."""
        return sorted(self.items, key=lambda item: item[0])[-1][1]


class BadWords:
    """transformers 3.2 ``calc_banned_bad_words_ids``: a one-token bad word is banned everywhere, a longer one
    where the history ends with all but its last token. The ids are made tensors once, not at every step."""

    def __init__(self, bad_words_ids: list[list[int]], device: torch.device) -> None:
        singles = [bad[0] for bad in bad_words_ids if len(bad) == 1]
        self.singles = torch.tensor(singles, dtype=torch.long, device=device) if singles else None
        self.longer = [
            (torch.tensor(bad[:-1], device=device), bad[-1]) for bad in bad_words_ids if len(bad) > 1
        ]

    def ban(self, scores: torch.Tensor, input_ids: torch.Tensor) -> None:
        if self.singles is not None:
            scores.index_fill_(1, self.singles, -float("inf"))
        for start, last in self.longer:
            if len(start) > input_ids.shape[1]:  # a history shorter than the start never ends with it
                continue
            ends_with_start = (input_ids[:, input_ids.shape[1] - len(start) :] == start).all(dim=1)
            scores[ends_with_start, last] = -float("inf")


@torch.no_grad()
def beam_search(
    model: PreTrainedModel,
    prompt_ids: torch.Tensor,
    eos_token_id: int,
    settings: BeamSettings,
    past: DynamicCache | None = None,
) -> torch.Tensor:
    """Best sequence (prompt + generated, without the final EOS) for one prompt of shape (1, T)."""
    beams = settings.num_beams
    prompt_len = prompt_ids.shape[1]
    max_length = prompt_len + settings.max_new_tokens
    out = model(input_ids=prompt_ids, past_key_values=past, use_cache=True)
    cache = out.past_key_values
    cache.batch_repeat_interleave(beams)
    logits = out.logits[:, -1, :].repeat(beams, 1)
    input_ids = prompt_ids.repeat(beams, 1)
    beam_scores = torch.zeros(beams, device=prompt_ids.device)
    beam_scores[1:] = -1e9
    hyps = _Hypotheses(settings, prompt_len)
    bad_words = BadWords(settings.bad_words_ids, prompt_ids.device)
    cur_len = prompt_len
    done = False
    while cur_len < max_length:
        scores = F.log_softmax(logits.float(), dim=-1)
        if cur_len < settings.min_length:
            scores[:, eos_token_id] = -float("inf")
        bad_words.ban(scores, input_ids)
        vocab = scores.shape[-1]
        next_scores, next_tokens = torch.topk((scores + beam_scores[:, None]).view(-1), 2 * beams)
        chosen: list[tuple[float, int, int]] = []
        for rank, (score, flat) in enumerate(zip(next_scores.tolist(), next_tokens.tolist(), strict=True)):
            beam_id, token_id = divmod(flat, vocab)
            if token_id == eos_token_id:
                if rank < beams:
                    hyps.add(input_ids[beam_id].clone(), score)
            else:
                chosen.append((score, token_id, beam_id))
            if len(chosen) == beams:
                break
        done = hyps.is_done(next_scores.max().item(), cur_len)
        if done:
            break
        beam_scores = torch.tensor([c[0] for c in chosen], device=input_ids.device)
        tokens = torch.tensor([c[1] for c in chosen], device=input_ids.device)
        beam_idx = torch.tensor([c[2] for c in chosen], device=input_ids.device)
        input_ids = torch.cat([input_ids[beam_idx], tokens[:, None]], dim=-1)
        cur_len += 1
        cache.reorder_cache(beam_idx)
        if cur_len < max_length:
            logits = model(input_ids=tokens[:, None], past_key_values=cache, use_cache=True).logits[:, -1, :]
    if not done:
        for beam_id in range(beams):
            hyps.add(input_ids[beam_id], beam_scores[beam_id].item())
    return hyps.best()
