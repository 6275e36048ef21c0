"""INFIX-P: trainable activations between the source x and the target y (paper Table 4; official_code.md §3.2).

The sequence is [x; INFIX; y]: the frozen LM reads x, then P infix positions whose key/values are trained, then
the separator and y. Two forms (``form``):
- ``code`` (default, the authors' ``get_prompt_p5_infix``): the LM is run on [x; P learned input embeddings] and
  the MLP output (Embedding -> tanh MLP, as PREFIX) is *added* to the key/values of the P infix positions, so
  the infix depends on x;
- ``paper``: the infix key/values are the MLP output alone, the same for every x (the paper's description).
Positions are per example: x at 0..|x|-1, the infix at |x|..|x|+P-1, y from |x|+P. Training batches left-pad the
sources (masked) so that every example sees exactly the positions of batch-1 decoding; the authors' code counted
from the padded source length instead, so training and decoding positions differed there (§3.2).
Decoding feeds x and the infix as the cache and starts the LM at the separator, as the code did.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from prefixtune.methods.base import TuningMethod, checked_prefix_length
from prefixtune.methods.prefix import PrefixEncoder
from prefixtune.methods.stored import load_trained, save_trained

STEM = "infix"
FORMS = ("code", "paper")
IGNORE = -100


class InfixTuning(TuningMethod):
    name = "infix"

    def __init__(
        self, model: PreTrainedModel, settings: dict, tokenizer: PreTrainedTokenizerBase | None = None
    ) -> None:
        super().__init__(model, settings, tokenizer)
        cfg = model.config
        self.form = str(settings.get("form", "code"))
        if self.form not in FORMS:
            raise ValueError(f"method setting form={self.form!r}; expected one of {FORMS}")
        self.infix_length = checked_prefix_length(settings, model)
        self.eos_id = int(tokenizer.eos_token_id if tokenizer is not None else cfg.eos_token_id)
        parts: dict[str, nn.Module] = {
            "offset": PrefixEncoder(
                n_layer=cfg.n_layer,
                n_head=cfg.n_head,
                n_embd=cfg.n_embd,
                prefix_length=self.infix_length,
                mid_dim=int(settings.get("mid_dim", 512)),
                dropout=float(settings.get("prefix_dropout", 0.0)),
            )
        }
        if self.form == "code":
            parts["embeddings"] = nn.Embedding(self.infix_length, cfg.n_embd)
        self.parts = nn.ModuleDict(parts).to(model.device)
        for p in self.model.parameters():
            p.requires_grad_(False)

    # -- the infix ---------------------------------------------------------------------------------------------
    def source_cache(self, src_ids: torch.Tensor, src_mask: torch.Tensor) -> DynamicCache:
        """Key/values of left-padded sources (B, S) followed by the infix: (B, H, S + P, head_dim) per layer."""
        batch, width = src_ids.shape
        lengths = src_mask.sum(dim=1)
        positions = (src_mask.cumsum(dim=1) - 1).clamp(min=0)
        infix_positions = lengths[:, None] + torch.arange(self.infix_length, device=src_ids.device)
        offset = self.parts["offset"]()  # (2L, H, P, head_dim)
        lm = self.model.base_model
        if self.form == "code":
            learned = self.parts["embeddings"].weight.unsqueeze(0).expand(batch, -1, -1)
            embeds = torch.cat([self.model.get_input_embeddings()(src_ids), learned], dim=1)
            ones = src_mask.new_ones(batch, self.infix_length)
            cache = lm(
                inputs_embeds=embeds,
                attention_mask=torch.cat([src_mask, ones], dim=1),
                position_ids=torch.cat([positions, infix_positions], dim=1),
                use_cache=True,
            ).past_key_values
            layers = [
                (
                    _add_at_end(layer.keys, offset[2 * i], width),
                    _add_at_end(layer.values, offset[2 * i + 1], width),
                )
                for i, layer in enumerate(cache.layers)
            ]
        else:
            cache = lm(input_ids=src_ids, attention_mask=src_mask, position_ids=positions, use_cache=True)
            layers = [
                (_append(layer.keys, offset[2 * i]), _append(layer.values, offset[2 * i + 1]))
                for i, layer in enumerate(cache.past_key_values.layers)
            ]
        return DynamicCache(ddp_cache_data=layers)

    def _split(self, input_ids: torch.Tensor) -> list[int]:
        """Index of the first separator in every row: the source is what comes before it."""
        seps = []
        for row, ids in enumerate(input_ids.tolist()):
            if self.eos_id not in ids:
                raise ValueError(f"batch row {row} has no separator token {self.eos_id}")
            seps.append(ids.index(self.eos_id))
        return seps

    def training_logits(
        self, input_ids: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of the target part (separator onwards) of each row, with its labels."""
        seps = self._split(input_ids)
        batch, length = input_ids.shape
        width, tgt_width = max(seps), max(length - s for s in seps)
        src_ids = input_ids.new_zeros(batch, width)
        src_mask = input_ids.new_zeros(batch, width)
        tgt_ids = input_ids.new_zeros(batch, tgt_width)
        tgt_labels = labels.new_full((batch, tgt_width), IGNORE)
        for row, sep in enumerate(seps):
            src_ids[row, width - sep :] = input_ids[row, :sep]
            src_mask[row, width - sep :] = 1
            tgt_ids[row, : length - sep] = input_ids[row, sep:]
            tgt_labels[row, : length - sep] = labels[row, sep:]
        cache = self.source_cache(src_ids, src_mask)
        seen = torch.cat([src_mask, src_mask.new_ones(batch, self.infix_length + tgt_width)], dim=1)
        start = torch.tensor(seps, device=input_ids.device)[:, None] + self.infix_length
        positions = start + torch.arange(tgt_width, device=input_ids.device)
        logits = self.model(
            input_ids=tgt_ids, past_key_values=cache, attention_mask=seen, position_ids=positions
        ).logits
        return logits, tgt_labels

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Target-part logits (see ``training_logits``)."""
        return self.training_logits(input_ids, torch.full_like(input_ids, IGNORE))[0]

    def decoding_inputs(self, prompt_ids: torch.Tensor) -> tuple[torch.Tensor, DynamicCache]:
        """The cache holds x and the infix; the LM starts at the separator (positions continue from |x| + P)."""
        if prompt_ids.shape[0] != 1 or prompt_ids[0, -1].item() != self.eos_id:
            raise ValueError("an INFIX prompt is one source ending in the separator token")
        src = prompt_ids[:, :-1]
        return prompt_ids[:, -1:], self.source_cache(src, torch.ones_like(src))

    # -- bookkeeping -------------------------------------------------------------------------------------------
    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.parts.parameters())

    def train(self) -> None:
        self.parts.train()
        self.model.train(bool(self.settings.get("lm_dropout", False)))

    def eval(self) -> None:
        self.parts.eval()
        self.model.eval()

    def positions_taken(self) -> int:
        return self.infix_length

    def _config(self) -> dict[str, int | str]:
        return {**self.parts["offset"].config_dict(), "form": self.form}

    def save(self, out_dir: Path) -> None:
        save_trained(out_dir, STEM, self.parts.state_dict(), self._config())

    def load(self, trained_dir: Path) -> None:
        self.parts.load_state_dict(load_trained(trained_dir, STEM, self._config(), self.model.device))

    def parameter_counts(self) -> dict[str, int]:
        stored = self.parts["offset"].stored_size()
        if self.form == "code":
            stored += self.parts["embeddings"].weight.numel()  # the LM recomputes the rest from x
        return {
            "trainable": sum(p.numel() for p in self.parts.parameters()),
            "stored": stored,
            "base": self.base_parameter_count(),
        }


def _append(states: torch.Tensor, infix: torch.Tensor) -> torch.Tensor:
    """(B, H, S, hd) states followed by the same (H, P, hd) infix in every row."""
    return torch.cat([states, infix.unsqueeze(0).expand(states.shape[0], -1, -1, -1)], dim=2)


def _add_at_end(states: torch.Tensor, offset: torch.Tensor, width: int) -> torch.Tensor:
    """(B, H, S + P, hd) states with ``offset`` (H, P, hd) added to the P positions after the source."""
    return torch.cat([states[:, :, :width], states[:, :, width:] + offset.unsqueeze(0)], dim=2)
