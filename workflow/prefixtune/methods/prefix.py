"""PREFIX: trainable key/value activations in front of every layer of a frozen GPT-2 (official_code.md §2.1).

P' = Embedding(P, d) -> Linear(d, mid) -> tanh -> Linear(mid, 2*L*d), reshaped to per-layer (key, value) pairs in
the order [l0-K, l0-V, l1-K, ...] and fed as past key/values. Because the prefix sits in the cache, GPT-2 places
the real tokens at positions P..P+T-1, as the authors' code did. The frozen LM stays in eval mode (no dropout)
unless ``lm_dropout`` is set.

Switches (settings): ``reparametrize`` (default true; false = the code's ``--init_shallow``, a raw prefix tensor);
``init`` = ``random`` (default: PyTorch defaults as the code, randn for a raw prefix), ``uniform`` (uniform(0, 1)
on P', or on the raw prefix: the paper appendix's wording) or ``word`` (``init_word``; P = its token count; the MLP
is fitted to the word's key/values, a raw prefix is set to them, see word_init.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from prefixtune.methods.base import TuningMethod, checked_prefix_length
from prefixtune.methods.stored import load_trained, save_trained
from prefixtune.methods.word_init import fit_to_target, lm_key_values, word_token_ids

STEM = "prefix"
PREFIX_WEIGHTS = f"{STEM}.safetensors"
PREFIX_CONFIG = f"{STEM}_config.json"
INITS = ("random", "uniform", "word")


class PrefixEncoder(nn.Module):
    """Embedding + two-layer tanh MLP producing the prefix activations of every layer.

    No init call: PyTorch defaults (Embedding N(0, 1), kaiming-uniform Linear), as in the authors' code.
    """

    def __init__(
        self, n_layer: int, n_head: int, n_embd: int, prefix_length: int, mid_dim: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.n_layer, self.n_head, self.n_embd, self.prefix_length = n_layer, n_head, n_embd, prefix_length
        self.mid_dim = mid_dim
        self.register_buffer("index", torch.arange(prefix_length), persistent=False)
        self.wte = nn.Embedding(prefix_length, n_embd)
        self.control_trans = nn.Sequential(
            nn.Linear(n_embd, mid_dim), nn.Tanh(), nn.Linear(mid_dim, n_layer * 2 * n_embd)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self) -> torch.Tensor:
        """Prefix of shape (2L, H, P, head_dim): row 2i is layer i's key, row 2i+1 its value."""
        flat = self.control_trans(self.wte(self.index))  # (P, 2*L*d)
        head_dim = self.n_embd // self.n_head
        kv = flat.view(self.prefix_length, 2 * self.n_layer, self.n_head, head_dim)
        return self.dropout(kv).permute(1, 2, 0, 3)

    def stored_size(self) -> int:
        """Values kept after training: the MLP output, P * L * 2 * d."""
        return self.prefix_length * self.n_layer * 2 * self.n_embd

    def config_dict(self) -> dict[str, int]:
        return {
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "n_embd": self.n_embd,
            "prefix_length": self.prefix_length,
            "mid_dim": self.mid_dim,
        }


class RawPrefix(nn.Module):
    """The prefix activations as one trainable tensor (2L, H, P, head_dim), without reparametrization."""

    def __init__(
        self, n_layer: int, n_head: int, n_embd: int, prefix_length: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.n_layer, self.n_head, self.n_embd, self.prefix_length = n_layer, n_head, n_embd, prefix_length
        head_dim = n_embd // n_head
        self.prefix = nn.Parameter(torch.randn(2 * n_layer, n_head, prefix_length, head_dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self) -> torch.Tensor:
        return self.dropout(self.prefix)

    def stored_size(self) -> int:
        return self.prefix.numel()

    def config_dict(self) -> dict[str, int | bool]:
        return {
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "n_embd": self.n_embd,
            "prefix_length": self.prefix_length,
            "reparametrize": False,
        }


def cache_from_prefix(kv: torch.Tensor, batch_size: int) -> DynamicCache:
    """Wrap a (2L, H, P, head_dim) prefix as a DynamicCache expanded to ``batch_size`` rows."""
    layers = []
    for i in range(kv.shape[0] // 2):
        key = kv[2 * i].unsqueeze(0).expand(batch_size, -1, -1, -1)
        value = kv[2 * i + 1].unsqueeze(0).expand(batch_size, -1, -1, -1)
        layers.append((key, value))
    return DynamicCache(ddp_cache_data=layers)


class PrefixTuning(TuningMethod):
    name = "prefix"

    def __init__(
        self, model: PreTrainedModel, settings: dict, tokenizer: PreTrainedTokenizerBase | None = None
    ) -> None:
        super().__init__(model, settings, tokenizer)
        cfg = model.config
        self.init = str(settings.get("init", "random"))
        if self.init not in INITS:
            raise ValueError(f"method setting init={self.init!r}; expected one of {INITS}")
        self.word_ids = (
            word_token_ids(tokenizer, settings.get("init_word", "")) if self.init == "word" else []
        )
        shape = {
            "n_layer": cfg.n_layer,
            "n_head": cfg.n_head,
            "n_embd": cfg.n_embd,
            "prefix_length": self._prefix_length(settings),
            "dropout": float(settings.get("prefix_dropout", 0.0)),
        }
        self.encoder: PrefixEncoder | RawPrefix
        if settings.get("reparametrize", True):
            self.encoder = PrefixEncoder(**shape, mid_dim=int(settings.get("mid_dim", 512)))
        else:
            self.encoder = RawPrefix(**shape)
        if self.init == "uniform":
            with torch.no_grad():
                start = (
                    self.encoder.wte.weight
                    if isinstance(self.encoder, PrefixEncoder)
                    else self.encoder.prefix
                )
                start.uniform_(0.0, 1.0)
        self.encoder.to(model.device)
        for p in self.model.parameters():
            p.requires_grad_(False)

    def _prefix_length(self, settings: dict) -> int:
        """P from the config, or the init word's token count (the code ignored ``--preseqlen`` then)."""
        if self.init != "word":
            return checked_prefix_length(settings, self.model)
        given = settings.get("prefix_length")
        if given is not None and int(given) != len(self.word_ids):
            raise ValueError(
                f"method settings: prefix_length {given} but init_word {settings['init_word']!r} has "
                f"{len(self.word_ids)} tokens; the prefix length of a word-initialised prefix is its token count"
            )
        return len(self.word_ids)

    def initialize_for_training(self) -> None:
        if self.init != "word":
            return
        target = lm_key_values(self.model, self.word_ids)
        if isinstance(self.encoder, RawPrefix):
            with torch.no_grad():
                self.encoder.prefix.copy_(target)
            return
        steps = int(self.settings.get("init_steps", 500))
        lr = float(self.settings.get("init_lr", 1e-4))
        was_training = self.encoder.training
        self.encoder.eval()  # no prefix dropout while fitting
        self.init_losses = fit_to_target(
            self.encoder, list(self.encoder.control_trans.parameters()), target, steps, lr
        )
        self.encoder.train(was_training)

    def init_summary(self) -> dict | None:
        """What the word initialisation did, for ``run.json`` (None without one)."""
        if self.init != "word":
            return None
        losses = getattr(self, "init_losses", [])
        return {
            "word": self.settings.get("init_word"),
            "token_ids": self.word_ids,
            "prefix_length": len(self.word_ids),
            "fitted": bool(losses),
            "steps": len(losses),
            "first_mse": losses[0] if losses else None,
            "last_step_mse": losses[-1] if losses else None,
        }

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def train(self) -> None:
        self.encoder.train()
        if self.settings.get("lm_dropout", False):
            self.model.train()
        else:
            self.model.eval()

    def eval(self) -> None:
        self.encoder.eval()
        self.model.eval()

    def positions_taken(self) -> int:
        return self.encoder.prefix_length

    def past_key_values(self, batch_size: int) -> DynamicCache:
        return cache_from_prefix(self.encoder(), batch_size)

    def save(self, out_dir: Path) -> None:
        save_trained(out_dir, STEM, self.encoder.state_dict(), self.encoder.config_dict())

    def load(self, trained_dir: Path) -> None:
        self.encoder.load_state_dict(
            load_trained(trained_dir, STEM, self.encoder.config_dict(), self.model.device)
        )

    def parameter_counts(self) -> dict[str, int]:
        return {
            "trainable": sum(p.numel() for p in self.encoder.parameters()),
            "stored": self.encoder.stored_size(),
            "base": self.base_parameter_count(),
        }
