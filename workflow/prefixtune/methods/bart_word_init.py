"""Initialising the three BART prefixes from a real word, as the authors' master branch did (official_code.md §3.4,
``seq2seq/prefixTuning.py`` ``lowdata_init_train3``).

- **Word ids.** The code tokenized the word with ``tokenizer([word], add_prefix_space=True)``, special tokens
  included: ``<s> BPE(" word") </s>``. P is that length (3 for "summarize" on bart-large); ``--preseqlen`` is
  ignored.
- **Targets**, with the frozen BART in eval mode (``from_pretrained`` leaves it so; no dropout), the word fed as
  both source and target:

  - ``encoder``: the encoder self-attention keys/values of the source ``<s> w </s>`` at positions 0..P-1;
  - ``cross``: every decoder layer's cross-attention keys/values, i.e. its ``k_proj``/``v_proj`` of the *encoder
    output* of that source (not of any decoder state);
  - ``decoder``: the decoder self-attention keys/values of the decoder input, the target shifted right with its
    last token wrapped to the front (transformers 3.2 ``shift_tokens_right``): ``</s> <s> BPE(" word")``.
    The code looped ``i = 0..P-1`` calling BART with ``decoder_input_ids[:, :i+1]`` and ``use_cache=True``;
    transformers 3.2 then kept only the *last* token (at position i) and had no cache to attend to, so each
    decoder token was run alone at its position, its self-attention over itself only (``per_token``, the
    default). ``causal`` runs the decoder input as one sequence (the word truly in front).
- **Fit**: Adam (lr 3e-5, 200 steps) on *all* prefix parameters (the three embeddings and MLPs), loss = the sum of
  the three roles' MSEs. The code reset only the decoder MLP's gradients after each step (``control_trans``), so
  the other five modules' gradients accumulated over the steps (``grad_reset: decoder_mlp``, the default);
  ``all`` resets every gradient.

A raw prefix (no MLP) is set to the targets exactly; it then acts as the word placed in front in all three
attentions (proven in tests/test_bart_word_init.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from prefixtune.methods.word_init import word_token_ids

log = logging.getLogger(__name__)

DECODER_CONTEXTS = ("per_token", "causal")
GRAD_RESETS = ("decoder_mlp", "all")


def bart_word_ids(tokenizer: PreTrainedTokenizerBase | None, word: str) -> list[int]:
    """``<s> BPE(" word") </s>``: what the authors' ``tokenizer([word], add_prefix_space=True)`` gave; P = its
    length."""
    pieces = word_token_ids(tokenizer, word)
    assert tokenizer is not None  # word_token_ids refused None
    if tokenizer.bos_token_id is None or tokenizer.eos_token_id is None:
        raise ValueError(f"init word {word!r}: the BART tokenizer has no <s> or </s> token")
    return [tokenizer.bos_token_id, *pieces, tokenizer.eos_token_id]


def _bart(model: PreTrainedModel) -> nn.Module:
    return getattr(model, "model", model)  # BartForConditionalGeneration wraps a BartModel


def _heads(states: torch.Tensor, n_head: int) -> torch.Tensor:
    """(1, T, d) -> (H, T, head_dim)."""
    _, length, d_model = states.shape
    return states[0].view(length, n_head, d_model // n_head).transpose(0, 1)


@contextmanager
def _captured(modules: list[nn.Module]) -> Iterator[list[list[torch.Tensor]]]:
    """The outputs of ``modules`` (one list per module, one entry per call) while inside."""
    outputs: list[list[torch.Tensor]] = [[] for _ in modules]
    handles = [
        module.register_forward_hook(lambda _m, _i, out, box=box: box.append(out.detach()))
        for module, box in zip(modules, outputs, strict=True)
    ]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def positions_at(embed_positions: nn.Embedding, positions: list[int]) -> Iterator[None]:
    """Make a BART learned positional embedding return the rows of ``positions`` (plus BART's offset 2) for the
    calls inside, whatever the input length: transformers' BART takes no position ids."""
    offset = int(getattr(embed_positions, "offset", 2))
    index = torch.tensor(positions, device=embed_positions.weight.device) + offset

    def replace(module: nn.Module, _inputs: tuple, _output: torch.Tensor) -> torch.Tensor:
        return module.weight[index].unsqueeze(0)

    handle = embed_positions.register_forward_hook(replace)
    try:
        yield
    finally:
        handle.remove()


def _stack(keys: list[torch.Tensor], values: list[torch.Tensor], n_head: int) -> torch.Tensor:
    """Per-layer (1, T, d) keys and values -> (2L, H, T, head_dim) ordered [l0-K, l0-V, l1-K, ...]."""
    rows = []
    for key, value in zip(keys, values, strict=True):
        rows.extend([_heads(key, n_head), _heads(value, n_head)])
    return torch.stack(rows)


@torch.no_grad()
def bart_word_key_values(
    model: PreTrainedModel, word_ids: list[int], decoder_context: str = "per_token"
) -> dict[str, torch.Tensor]:
    """role -> (2L, H, P, head_dim): the frozen BART's keys/values of the word fed as source and target."""
    if decoder_context not in DECODER_CONTEXTS:
        raise ValueError(f"init_decoder_context {decoder_context!r}; expected one of {DECODER_CONTEXTS}")
    bart, cfg = _bart(model), model.config
    was_training = model.training
    model.eval()
    try:
        source = torch.tensor([word_ids], device=model.device)
        decoder_input = torch.tensor([[word_ids[-1], *word_ids[:-1]]], device=model.device)  # 3.2's shift
        enc_attn = [layer.self_attn for layer in bart.encoder.layers]
        with _captured([a.k_proj for a in enc_attn] + [a.v_proj for a in enc_attn]) as out:
            encoded = bart.encoder(input_ids=source).last_hidden_state
        n = len(enc_attn)
        targets = {
            "encoder": _stack([o[0] for o in out[:n]], [o[0] for o in out[n:]], cfg.encoder_attention_heads)
        }
        cross = [layer.encoder_attn for layer in bart.decoder.layers]
        targets["cross"] = _stack(
            [a.k_proj(encoded) for a in cross],
            [a.v_proj(encoded) for a in cross],
            cfg.decoder_attention_heads,
        )
        dec_attn = [layer.self_attn for layer in bart.decoder.layers]
        m = len(dec_attn)
        with _captured([a.k_proj for a in dec_attn] + [a.v_proj for a in dec_attn]) as out:
            if decoder_context == "causal":
                bart.decoder(input_ids=decoder_input, encoder_hidden_states=encoded, use_cache=False)
            else:  # each token alone at its own position, as transformers 3.2's use_cache did
                for i in range(decoder_input.shape[1]):
                    with positions_at(bart.decoder.embed_positions, [i]):
                        bart.decoder(
                            input_ids=decoder_input[:, i : i + 1],
                            encoder_hidden_states=encoded,
                            use_cache=False,
                        )
        keys = [torch.cat(calls, dim=1) for calls in out[:m]]
        values = [torch.cat(calls, dim=1) for calls in out[m:]]
        targets["decoder"] = _stack(keys, values, cfg.decoder_attention_heads)
    finally:
        model.train(was_training)
    return targets


def fit_bart_prefixes(
    prefixes: nn.ModuleDict,
    targets: dict[str, torch.Tensor],
    steps: int,
    lr: float,
    grad_reset: str = "decoder_mlp",
) -> list[float]:
    """Fit every parameter of the three prefix encoders to ``targets`` (sum of the roles' MSEs, Adam); the losses.

    ``grad_reset``: ``decoder_mlp`` resets only the decoder prefix's MLP gradients after each step, as the code
    (``self.control_trans.zero_grad()``), so the others accumulate; ``all`` resets every gradient. Gradients are
    cleared at the end either way (the authors' leftovers are not carried into training)."""
    if grad_reset not in GRAD_RESETS:
        raise ValueError(f"init_grad_reset {grad_reset!r}; expected one of {GRAD_RESETS}")
    params = list(prefixes.parameters())
    optimizer = torch.optim.Adam(params, lr=lr)
    reset = prefixes["decoder"].control_trans if grad_reset == "decoder_mlp" else prefixes
    losses: list[float] = []
    for _ in tqdm(range(steps), desc="fit BART prefixes to word", mininterval=10):
        loss = sum(F.mse_loss(prefixes[role](), target) for role, target in targets.items())
        assert isinstance(loss, torch.Tensor)
        loss.backward()
        optimizer.step()
        reset.zero_grad(set_to_none=False)
        losses.append(loss.item())
    for p in params:
        p.grad = None
    if losses:
        log.info(
            "BART word init: MSE sum %.4f -> %.4f after %d Adam steps (lr %g)",
            losses[0],
            losses[-1],
            steps,
            lr,
        )
    return losses
