"""EMB-P, the embedding-only ablation (paper Table 4; official_code.md §3.1, class ``PrefixEmbTuning``).

P trainable virtual-token embeddings are run through the frozen GPT-2 (positions 0..P-1); its key/values of those
positions become the prefix, so only the input layer is free and the upper layers' activations are the LM's own.
``parametrize``: ``mlp`` (default, as the code: Embedding(P, d) -> Linear(d, mid) -> tanh -> Linear(mid, d)) or
``plain`` (the embeddings themselves). The paper does not say which produced its EMB rows. The real tokens sit at
positions P.., as with PREFIX.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from prefixtune.methods.base import TuningMethod, checked_prefix_length
from prefixtune.methods.stored import load_trained, save_trained

STEM = "emb_prefix"
PARAMETRIZATIONS = ("mlp", "plain")


class VirtualTokens(nn.Module):
    """P input embeddings of width d, optionally through the tanh MLP. PyTorch default init, as the code."""

    def __init__(self, prefix_length: int, n_embd: int, parametrize: str, mid_dim: int) -> None:
        super().__init__()
        if parametrize not in PARAMETRIZATIONS:
            raise ValueError(
                f"method setting parametrize={parametrize!r}; expected one of {PARAMETRIZATIONS}"
            )
        self.prefix_length, self.n_embd, self.parametrize, self.mid_dim = (
            prefix_length,
            n_embd,
            parametrize,
            mid_dim,
        )
        self.register_buffer("index", torch.arange(prefix_length), persistent=False)
        self.wte = nn.Embedding(prefix_length, n_embd)
        self.mlp = (
            nn.Sequential(nn.Linear(n_embd, mid_dim), nn.Tanh(), nn.Linear(mid_dim, n_embd))
            if parametrize == "mlp"
            else nn.Identity()
        )

    def forward(self) -> torch.Tensor:
        return self.mlp(self.wte(self.index))  # (P, d)

    def config_dict(self) -> dict[str, int | str]:
        return {
            "prefix_length": self.prefix_length,
            "n_embd": self.n_embd,
            "parametrize": self.parametrize,
            "mid_dim": self.mid_dim if self.parametrize == "mlp" else 0,
        }


def expand_cache(cache: DynamicCache, batch_size: int) -> DynamicCache:
    """A batch-1 cache repeated (as views) to ``batch_size`` rows, keeping the autograd graph."""
    layers = [
        (layer.keys.expand(batch_size, -1, -1, -1), layer.values.expand(batch_size, -1, -1, -1))
        for layer in cache.layers
    ]
    return DynamicCache(ddp_cache_data=layers)


class EmbeddingPrefix(TuningMethod):
    name = "emb_prefix"

    def __init__(
        self, model: PreTrainedModel, settings: dict, tokenizer: PreTrainedTokenizerBase | None = None
    ) -> None:
        super().__init__(model, settings, tokenizer)
        self.tokens = VirtualTokens(
            prefix_length=checked_prefix_length(settings, model),
            n_embd=model.config.n_embd,
            parametrize=str(settings.get("parametrize", "mlp")),
            mid_dim=int(settings.get("mid_dim", 512)),
        ).to(model.device)
        for p in self.model.parameters():
            p.requires_grad_(False)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.tokens.parameters())

    def train(self) -> None:
        self.tokens.train()
        self.model.train(bool(self.settings.get("lm_dropout", False)))

    def eval(self) -> None:
        self.tokens.eval()
        self.model.eval()

    def positions_taken(self) -> int:
        return self.tokens.prefix_length

    def past_key_values(self, batch_size: int) -> DynamicCache:
        embeds = self.tokens().unsqueeze(0)
        cache = self.model.base_model(inputs_embeds=embeds, use_cache=True).past_key_values
        return expand_cache(cache, batch_size)

    def save(self, out_dir: Path) -> None:
        save_trained(out_dir, STEM, self.tokens.state_dict(), self.tokens.config_dict())

    def load(self, trained_dir: Path) -> None:
        self.tokens.load_state_dict(
            load_trained(trained_dir, STEM, self.tokens.config_dict(), self.model.device)
        )

    def parameter_counts(self) -> dict[str, int]:
        return {
            "trainable": sum(p.numel() for p in self.tokens.parameters()),
            "stored": self.tokens.prefix_length * self.tokens.n_embd,
            "base": self.base_parameter_count(),
        }
