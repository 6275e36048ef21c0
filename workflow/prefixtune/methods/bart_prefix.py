"""BART PREFIX: the paper's prefix-tuning of a frozen BART for XSUM, as the authors' code did it.

What is faithful (official_code.md §2.2, §4.2, §5.2):

- Three independent prefixes, each with its own Embedding(P, d) + tanh MLP (mid 800): encoder self-attention
  (``encoder``, the code's ``wte_enc``/``control_trans_enc``), decoder self-attention (``decoder``,
  ``wte``/``control_trans``) and decoder cross-attention (``cross``, ``wte2``/``control_trans2``). The MLP output
  is laid out as in the code: layer i's key is row 2i, its value row 2i+1, ``prefix_dropout`` on the activations.
- The prefix keys/values are put in front of the computed keys/values *inside* every attention layer, as the
  vendored ``modeling_bart.Attention`` did. The prefix is visible to every query (padding masks get visible
  columns, the decoder's causal mask gets P visible columns in front) and it never enters a cache, so BART's
  learned positions are not shifted by P in the encoder or the decoder (trap 4 of official_code.md §8).
- ``generate``: the same attention function runs at every step. A prefix computed for one task (batch 1) is
  broadcast to whatever batch reaches the layer, the source batch B in the encoder and B x beams in the decoder
  (per-example prefixes are repeat-interleaved to the beam batch); cross-attention caches only the encoder's
  keys/values and the prefix is prepended to them once per search (kept while those cached tensors are unchanged),
  for each source once, since its beams attend together over it (``beams_share_source``).
- The LM is frozen but in train mode while training (dropout 0.1 on, as under PyTorch Lightning; setting
  ``lm_dropout``); random init = PyTorch defaults (Embedding N(0, 1)), ``init: uniform`` = uniform(0, 1) on the
  three embeddings (the paper appendix's wording).
- ``init: word`` (``init_word``): the real-word initialisation of the authors' master branch (broken in the
  release; official_code.md §3.4): P = the word's length with ``<s>``/``</s>``, all prefix parameters fitted to the
  frozen BART's keys/values of the word (see bart_word_init.py). ``reparametrize: false`` gives three raw prefix
  tensors (randn, or set exactly to the word's keys/values).

Why not peft: peft's seq2seq prefix-tuning gives the encoder no prefix, drops the cross-attention prefix it
computes, shares one prefix between decoder layers i and i + L/2, and shifts BART's decoder positions by P because
its prefix sits in the decoder cache (implementation_notes.md §4, official_code.md §8 item 5).

Mechanism (implementation_notes.md §7.1): ``prefix_attention_forward`` is registered in transformers'
``AttentionInterface`` under a name of this project, ``sdpa_mask`` is registered for that name in
``AttentionMaskInterface`` (without a mask function transformers would pass no mask at all), and every BART
attention module is tagged with its role and layer index once, at attach time. With no active prefix the function
is exactly transformers' sdpa attention, so an attached method with an empty store reproduces the stock model.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface, PreTrainedModel, PreTrainedTokenizerBase
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from prefixtune.methods.bart_word_init import (
    DECODER_CONTEXTS,
    GRAD_RESETS,
    bart_word_ids,
    bart_word_key_values,
    fit_bart_prefixes,
)
from prefixtune.methods.base import TuningMethod, checked_prefix_length
from prefixtune.methods.prefix import PrefixEncoder, RawPrefix
from prefixtune.methods.stored import load_trained, save_trained

log = logging.getLogger(__name__)

STEM = "bart_prefix"
ATTENTION_NAME = "prefixtune_bart_prefix"
SLOT_ATTRIBUTE = "prefixtune_bart_slot"
MEMO_ATTRIBUTE = "prefixtune_bart_cross_memo"
ROLES = ("encoder", "decoder", "cross")  # encoder self-attention, decoder self-attention, cross-attention
INITS = ("random", "uniform", "word")


class PrefixStore:
    """The prefixes of the forward or ``generate`` call under way: role -> (2L, b, H, P, head_dim), b = 1 or B;
    inside ``generate``, ``examples`` is the number of sources (the beam batch has ``examples`` x beams rows)."""

    def __init__(self) -> None:
        self.active: dict[str, torch.Tensor] = {}
        self.examples: int | None = None

    def beams(self, rows: int) -> int:
        """Rows per source in a batch of ``rows`` (1 outside ``generate`` or where rows are not a multiple)."""
        if self.examples is None or rows <= self.examples or rows % self.examples:
            return 1
        return rows // self.examples

    def key_value(self, role: str, layer: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        kv = self.active.get(role)
        if kv is None or kv.shape[-2] == 0:
            return None
        return kv[2 * layer], kv[2 * layer + 1]


@dataclass(frozen=True)
class PrefixSlot:
    """Tag on one BART attention module: where its prefix comes from."""

    store: PrefixStore
    role: str
    layer: int


def _to_batch(prefix: torch.Tensor, batch: int) -> torch.Tensor:
    """(b, H, P, hd) -> (batch, H, P, hd): broadcast a shared prefix, repeat-interleave per-example ones to beams."""
    rows = prefix.shape[0]
    if rows == batch:
        return prefix
    if rows == 1:
        return prefix.expand(batch, -1, -1, -1)
    if batch % rows:
        raise ValueError(f"prefix for {rows} examples cannot serve a batch of {batch} rows")
    return prefix.repeat_interleave(batch // rows, dim=0)


def mask_with_prefix(
    mask: torch.Tensor | None, causal: bool, q_len: int, kv_len: int, prefix_len: int, device: torch.device
) -> torch.Tensor | None:
    """The layer's mask over [prefix; real keys]: the prefix columns are always visible.

    ``sdpa_mask`` returns None for a plain causal mask (sdpa would then use ``is_causal``, aligned top-left, which
    is wrong once P keys are prepended), so that case is materialised here, aligned bottom-right as the cache is.
    """
    if mask is None:
        if not (causal and q_len > 1):
            return None
        last_visible = torch.arange(q_len, device=device)[:, None] + (kv_len - q_len)
        mask = (torch.arange(kv_len, device=device)[None, :] <= last_visible)[None, None]
    shape = (*mask.shape[:-1], prefix_len)
    if mask.dtype == torch.bool:
        visible = torch.ones(shape, dtype=torch.bool, device=mask.device)
    else:  # an additive float mask (eager style)
        visible = torch.zeros(shape, dtype=mask.dtype, device=mask.device)
    return torch.cat([visible, mask], dim=-1)


def prefix_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' sdpa attention over [prefix; keys] for a tagged module with an active prefix, else plain."""
    slot: PrefixSlot | None = getattr(module, SLOT_ATTRIBUTE, None)
    prefix = slot.store.key_value(slot.role, slot.layer) if slot is not None else None
    if prefix is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    beams = slot.store.beams(query.shape[0]) if slot.role == "cross" and query.shape[2] == 1 else 1
    if beams > 1:
        return _beams_share_source(module, query, key, value, attention_mask, prefix, beams, **kwargs)
    batch = query.shape[0]
    keys, values = _with_prefix(module, slot.role, prefix, key, value, batch)
    mask = mask_with_prefix(
        attention_mask,
        bool(getattr(module, "is_causal", False)),
        query.shape[2],
        key.shape[2],
        prefix[0].shape[2],
        query.device,
    )
    kwargs["is_causal"] = False  # the mask above carries causality
    return sdpa_attention_forward(module, query, keys, values, mask, **kwargs)


def _beams_share_source(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    prefix: tuple[torch.Tensor, torch.Tensor],
    beams: int,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Cross-attention of one beam-search step with each source's keys and values read once for its beams.

    ``generate`` repeats every source's encoder output to its beams (``repeat_interleave``: rows ``b * beams`` to
    ``b * beams + beams - 1``) and a beam's successors stay with their source, so the beams of a source attend
    over equal keys and values. Here the source's first row is joined to the prefix once per search and its
    beams' queries are taken together, ``[sources, heads, beams, dim]``, as one sdpa call: the same attention,
    summed by a kernel of another shape (last-bit differences at most; batched outputs are tested equal to
    batch-1 ones, which take this path too)."""
    rows, heads, _, dim = query.shape
    sources = rows // beams
    keys, values = _with_prefix(module, "cross", prefix, key, value, sources, beams)
    mask = None if attention_mask is None else attention_mask[::beams]
    mask = mask_with_prefix(mask, False, 1, key.shape[2], prefix[0].shape[2], query.device)
    by_source = query.view(sources, beams, heads, dim).transpose(1, 2)
    kwargs["is_causal"] = False
    out, _ = sdpa_attention_forward(module, by_source, keys, values, mask, **kwargs)  # [sources, beams, H, d]
    return out.reshape(rows, 1, heads, dim), None


def _with_prefix(
    module: nn.Module,
    role: str,
    prefix: tuple[torch.Tensor, torch.Tensor],
    key: torch.Tensor,
    value: torch.Tensor,
    batch: int,
    stride: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """[prefix; keys] and [prefix; values], for ``batch`` rows: every ``stride``-th row of ``key``/``value``.

    In ``generate``'s steps cross-attention gets the same cached encoder keys and values every time
    (:class:`prefixtune.decoding.beam_cache.BeamSharedCrossAttentionCache` never reorders them), so their
    concatenation is
    kept on the module while those tensors live and are unchanged, instead of being copied again at every step
    (the same numbers)."""
    memo = getattr(module, MEMO_ATTRIBUTE, None) if role == "cross" else None
    if memo is not None and memo.serves(prefix, key, value, (batch, stride)):
        return memo.keys, memo.values
    key_rows, value_rows = (key, value) if stride == 1 else (key[::stride], value[::stride])
    keys = torch.cat([_to_batch(prefix[0], batch).to(key.dtype), key_rows], dim=2)
    values = torch.cat([_to_batch(prefix[1], batch).to(value.dtype), value_rows], dim=2)
    if role == "cross" and not torch.is_grad_enabled():
        memo = _CrossMemo(module, prefix, key, value, (batch, stride), keys, values)
        setattr(module, MEMO_ATTRIBUTE, memo)
    return keys, values


class _CrossMemo:
    """A cross-attention layer's [prefix; encoder] keys and values, valid for the very tensors they came from and
    the same ``layout`` (rows of the result, stride over the cached rows)."""

    def __init__(
        self,
        module: nn.Module,
        prefix: tuple[torch.Tensor, torch.Tensor],
        key: torch.Tensor,
        value: torch.Tensor,
        layout: tuple[int, int],
        keys: torch.Tensor,
        values: torch.Tensor,
    ) -> None:
        self._sources = (weakref.ref(key), weakref.ref(value))
        self._stamp = self._stamp_of(prefix, key, value, layout)
        self.keys, self.values = keys, values
        weakref.finalize(key, _forget, module, self)  # freed with the cache, not held until the next call

    @staticmethod
    def _stamp_of(
        prefix: tuple[torch.Tensor, torch.Tensor],
        key: torch.Tensor,
        value: torch.Tensor,
        layout: tuple[int, int],
    ) -> tuple:
        return (
            key._version,
            value._version,
            layout,
            *((t.data_ptr(), tuple(t.shape), t.stride(), t._version) for t in prefix),
        )

    def serves(
        self,
        prefix: tuple[torch.Tensor, torch.Tensor],
        key: torch.Tensor,
        value: torch.Tensor,
        layout: tuple[int, int],
    ) -> bool:
        return (
            self._sources[0]() is key
            and self._sources[1]() is value
            and self._stamp == self._stamp_of(prefix, key, value, layout)
        )


def _forget(module: nn.Module, memo: _CrossMemo) -> None:
    if getattr(module, MEMO_ATTRIBUTE, None) is memo:
        delattr(module, MEMO_ATTRIBUTE)


AttentionInterface.register(ATTENTION_NAME, prefix_attention_forward)
AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)


def attention_modules(model: PreTrainedModel) -> Iterator[tuple[str, int, nn.Module]]:
    """(role, layer, module) for every attention module of a BART seq2seq model."""
    bart = getattr(model, "model", model)  # BartForConditionalGeneration wraps a BartModel
    for i, layer in enumerate(bart.encoder.layers):
        yield "encoder", i, layer.self_attn
    for i, layer in enumerate(bart.decoder.layers):
        yield "decoder", i, layer.self_attn
        yield "cross", i, layer.encoder_attn


def role_geometry(model: PreTrainedModel, role: str) -> tuple[int, int, int]:
    """(layers, heads, d_model) of the attention stack a role's prefix feeds."""
    cfg = model.config
    if role == "encoder":
        return cfg.encoder_layers, cfg.encoder_attention_heads, cfg.d_model
    return cfg.decoder_layers, cfg.decoder_attention_heads, cfg.d_model


class BartPrefixTuning(TuningMethod):
    name = "bart_prefix"

    def __init__(
        self,
        model: PreTrainedModel,
        settings: dict[str, Any],
        tokenizer: PreTrainedTokenizerBase | None = None,
    ) -> None:
        super().__init__(model, settings, tokenizer)
        self.init = str(settings.get("init", "random"))
        if self.init not in INITS:
            raise ValueError(f"bart_prefix setting init={self.init!r}; expected one of {INITS}")
        self.word_ids = bart_word_ids(tokenizer, settings.get("init_word", "")) if self.init == "word" else []
        self.decoder_context = str(settings.get("init_decoder_context", "per_token"))
        self.grad_reset = str(settings.get("init_grad_reset", "decoder_mlp"))
        if self.decoder_context not in DECODER_CONTEXTS:
            raise ValueError(
                f"bart_prefix setting init_decoder_context={self.decoder_context!r}; expected one of "
                f"{DECODER_CONTEXTS}"
            )
        if self.grad_reset not in GRAD_RESETS:
            raise ValueError(
                f"bart_prefix setting init_grad_reset={self.grad_reset!r}; expected one of {GRAD_RESETS}"
            )
        prefix_length = self._prefix_length(settings)
        mid_dim = int(settings.get("mid_dim", 800))
        dropout = float(settings.get("prefix_dropout", 0.0))
        self.reparametrize = bool(settings.get("reparametrize", True))
        self.prefixes = nn.ModuleDict()
        for role in ROLES:
            n_layer, n_head, d_model = role_geometry(model, role)
            self.prefixes[role] = (
                PrefixEncoder(n_layer, n_head, d_model, prefix_length, mid_dim, dropout)
                if self.reparametrize
                else RawPrefix(n_layer, n_head, d_model, prefix_length, dropout)
            )
        if self.init == "uniform":
            with torch.no_grad():
                for encoder in self.prefixes.values():
                    start = encoder.wte.weight if isinstance(encoder, PrefixEncoder) else encoder.prefix
                    if not start.is_meta:
                        start.uniform_(0.0, 1.0)
        self.init_losses: list[float] = []
        self.init_final_mse: float | None = None
        self.prefixes.to(model.device)
        for p in model.parameters():
            p.requires_grad_(False)
        self.store = PrefixStore()
        self.previous_attention = self._attach()

    def _prefix_length(self, settings: dict[str, Any]) -> int:
        """P from the config, or the init word's length with <s> and </s> (the code ignored ``--preseqlen``)."""
        if self.init != "word":
            return checked_prefix_length(settings, self.model)
        given = settings.get("prefix_length")
        if given is not None and int(given) != len(self.word_ids):
            raise ValueError(
                f"method settings: prefix_length {given} but init_word {settings['init_word']!r} is "
                f"{len(self.word_ids)} tokens with <s> and </s>; a word-initialised prefix has the word's length"
            )
        return checked_prefix_length(settings, self.model, given=len(self.word_ids))

    def initialize_for_training(self) -> None:
        """``init: word``: raw prefixes set to the word's keys/values, or every prefix parameter fitted to them."""
        if self.init != "word":
            return
        targets = bart_word_key_values(self.model, self.word_ids, self.decoder_context)
        if not self.reparametrize:
            with torch.no_grad():
                for role, target in targets.items():
                    self.prefixes[role].prefix.copy_(target)
            self.init_final_mse = 0.0
            return
        was_training = self.prefixes.training
        self.prefixes.eval()  # no prefix dropout while fitting (the code's prefix dropout was 0)
        self.init_losses = fit_bart_prefixes(
            self.prefixes,
            targets,
            int(self.settings.get("init_steps", 200)),
            float(self.settings.get("init_lr", 3e-5)),
            self.grad_reset,
        )
        with torch.no_grad():
            self.init_final_mse = float(
                sum(torch.nn.functional.mse_loss(self.prefixes[r](), t) for r, t in targets.items())
            )
        self.prefixes.train(was_training)

    def init_summary(self) -> dict[str, Any] | None:
        """What the word initialisation did, for ``run.json`` (None without one)."""
        if self.init != "word":
            return None
        return {
            "word": self.settings.get("init_word"),
            "token_ids": self.word_ids,
            "prefix_length": len(self.word_ids),
            "fitted": self.reparametrize,
            "steps": len(self.init_losses),
            "first_mse_sum": self.init_losses[0] if self.init_losses else None,
            "final_mse_sum": self.init_final_mse,
        }

    def _attach(self) -> str:
        previous = self.model.config._attn_implementation
        if previous != "sdpa":
            log.warning(
                "bart_prefix: the model used %r attention; the prefix runs on sdpa attention", previous
            )
        for role, layer, module in attention_modules(self.model):
            setattr(module, SLOT_ATTRIBUTE, PrefixSlot(self.store, role, layer))
        self.model.set_attn_implementation(ATTENTION_NAME)
        return previous

    def detach(self) -> None:
        """Give the model back as it was: untagged modules and its previous attention implementation."""
        for _, _, module in attention_modules(self.model):
            if hasattr(module, SLOT_ATTRIBUTE):
                delattr(module, SLOT_ATTRIBUTE)
        self.model.set_attn_implementation(self.previous_attention)

    def compute_prefixes(self) -> dict[str, torch.Tensor]:
        """role -> (2L, 1, H, P, head_dim), one prefix shared by every example of a batch."""
        return {role: encoder().unsqueeze(1) for role, encoder in self.prefixes.items()}

    @contextmanager
    def injected(self, prefixes: dict[str, torch.Tensor]) -> Iterator[None]:
        """Make ``prefixes`` (any subset of the roles) reach the attention layers for the calls inside."""
        unknown = set(prefixes) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown prefix roles {sorted(unknown)}; expected some of {ROLES}")
        self.store.active = dict(prefixes)
        try:
            yield
        finally:
            self.store.active = {}

    def seq2seq_logits(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        decoder_input_ids: torch.Tensor,
        decoder_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits for every decoder position, with the prefixes computed (with grad) for this call."""
        with self.injected(self.compute_prefixes()):
            return self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                decoder_input_ids=decoder_input_ids,
                decoder_attention_mask=decoder_attention_mask,
                use_cache=False,
            ).logits

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        beams_share_source: bool = True,
        **generate_kwargs: Any,
    ) -> Any:
        """``model.generate`` with the prefixes; call ``eval()`` first (prefix dropout, LM dropout).

        ``beams_share_source``: cross-attention reads each source's keys and values once for all its beams
        (:func:`_beams_share_source`); ``False`` gives every beam row its own copy, as transformers does."""
        with self.injected(self.compute_prefixes()):
            self.store.examples = input_ids.shape[0] if beams_share_source else None
            try:
                return self.model.generate(
                    input_ids=input_ids, attention_mask=attention_mask, **generate_kwargs
                )
            finally:
                self.store.examples = None

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("bart_prefix is a seq2seq method: use seq2seq_logits")

    def max_tokens(self) -> int:
        """Source tokens that fit BART's positions; the prefix takes none."""
        return int(self.model.config.max_position_embeddings)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.prefixes.parameters())

    def train(self) -> None:
        self.prefixes.train()
        self.model.train(bool(self.settings.get("lm_dropout", True)))

    def eval(self) -> None:
        self.prefixes.eval()
        self.model.eval()

    def _config(self) -> dict[str, dict[str, int]]:
        return {role: encoder.config_dict() for role, encoder in self.prefixes.items()}

    def save(self, out_dir: Path) -> None:
        save_trained(out_dir, STEM, dict(self.prefixes.state_dict()), self._config())

    def load(self, trained_dir: Path) -> None:
        self.prefixes.load_state_dict(load_trained(trained_dir, STEM, self._config(), self.model.device))

    def parameter_counts(self) -> dict[str, int]:
        return {
            "trainable": sum(p.numel() for p in self.prefixes.parameters()),
            "stored": sum(encoder.stored_size() for encoder in self.prefixes.values()),
            "base": self.base_parameter_count(),
        }
