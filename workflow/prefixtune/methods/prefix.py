"""PREFIX: trainable key/value activations in front of every layer of a frozen GPT-2 (official_code.md §2.1).

P' = Embedding(P, d) -> Linear(d, mid) -> tanh -> Linear(mid, 2*L*d), reshaped to per-layer (key, value) pairs in
the order [l0-K, l0-V, l1-K, ...] and fed as past key/values. Because the prefix sits in the cache, GPT-2 places
the real tokens at positions P..P+T-1, as the authors' code did. The frozen LM stays in eval mode (no dropout)
unless ``lm_dropout`` is set.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import DynamicCache, PreTrainedModel

from prefixtune.methods.base import TuningMethod
from prefixtune.methods.stored import load_trained, save_trained

STEM = "prefix"
PREFIX_WEIGHTS = f"{STEM}.safetensors"
PREFIX_CONFIG = f"{STEM}_config.json"


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

    def __init__(self, model: PreTrainedModel, settings: dict) -> None:
        super().__init__(model, settings)
        cfg = model.config
        self.encoder = PrefixEncoder(
            n_layer=cfg.n_layer,
            n_head=cfg.n_head,
            n_embd=cfg.n_embd,
            prefix_length=int(settings["prefix_length"]),
            mid_dim=int(settings.get("mid_dim", 512)),
            dropout=float(settings.get("prefix_dropout", 0.0)),
        ).to(model.device)
        for p in self.model.parameters():
            p.requires_grad_(False)

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
