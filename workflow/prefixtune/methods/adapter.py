"""ADAPTER: bottleneck adapters in a frozen GPT-2 (official_code.md §3.6, implementation_notes.md §g).

Design ``lin`` (the code's default, after Lin et al. 2020): one adapter per block on the block output,
``h + up(relu(down(LayerNorm(h))))``. Design ``houlsby``: two per block, on the attention output and on the MLP
output before each residual add, without LayerNorm. Attached with forward hooks, so the GPT-2 code is unchanged.
The bottleneck is given, or derived from the model so that the adapters are ``percent`` % of the LM's
parameters. Init as GPT-2's ``_init_weights`` (N(0, 0.02), zero bias), as the code did; ``init: zero_up`` starts
from the identity. The LM runs in train mode (dropout on); token-mean loss.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from prefixtune.methods.base import TuningMethod
from prefixtune.methods.stored import load_trained, save_trained

log = logging.getLogger(__name__)

STEM = "adapter"
DESIGNS = ("lin", "houlsby")
INITS = ("gpt2", "zero_up")


class BottleneckAdapter(nn.Module):
    def __init__(self, n_embd: int, bottleneck: int, layer_norm: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(n_embd) if layer_norm else nn.Identity()
        self.down = nn.Linear(n_embd, bottleneck)
        self.up = nn.Linear(bottleneck, n_embd)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(torch.relu(self.down(self.norm(hidden))))


def adapter_parameter_count(n_layer: int, n_embd: int, bottleneck: int, design: str) -> int:
    """lin: L * (2dr + r + 3d) (down, up, LayerNorm); houlsby: 2L * (2dr + r + d)."""
    if design == "lin":
        return n_layer * (2 * n_embd * bottleneck + bottleneck + 3 * n_embd)
    if design == "houlsby":
        return 2 * n_layer * (2 * n_embd * bottleneck + bottleneck + n_embd)
    raise ValueError(f"adapter design {design!r}: expected one of {DESIGNS}")


def bottleneck_for_percent(n_layer: int, n_embd: int, base: int, percent: float, design: str) -> int:
    """The bottleneck whose adapters come closest to ``percent`` % of ``base`` parameters (at least 1)."""
    if percent <= 0:
        raise ValueError(f"adapter percent {percent}: expected > 0")
    target = base * percent / 100
    per_unit = adapter_parameter_count(n_layer, n_embd, 1, design) - adapter_parameter_count(
        n_layer, n_embd, 0, design
    )
    guess = max(1, round((target - adapter_parameter_count(n_layer, n_embd, 0, design)) / per_unit))
    candidates = [r for r in (guess - 1, guess, guess + 1) if r >= 1]
    return min(candidates, key=lambda r: abs(adapter_parameter_count(n_layer, n_embd, r, design) - target))


class AdapterTuning(TuningMethod):
    name = "adapter"

    def __init__(
        self,
        model: PreTrainedModel,
        settings: dict[str, Any],
        tokenizer: PreTrainedTokenizerBase | None = None,
    ) -> None:
        super().__init__(model, settings, tokenizer)
        cfg = model.config
        self.design = str(settings.get("design", "lin"))
        self.init = str(settings.get("init", "gpt2"))
        if self.init not in INITS:
            raise ValueError(f"adapter init {self.init!r}: expected one of {INITS}")
        self.base = self.base_parameter_count()  # before the adapters join the model
        if settings.get("bottleneck"):
            self.bottleneck = int(settings["bottleneck"])
        elif settings.get("percent"):
            self.bottleneck = bottleneck_for_percent(
                cfg.n_layer, cfg.n_embd, self.base, float(settings["percent"]), self.design
            )
        else:
            raise ValueError("adapter settings need 'bottleneck' or 'percent'")
        per_block = 1 if self.design == "lin" else 2
        adapters = nn.ModuleList(
            BottleneckAdapter(cfg.n_embd, self.bottleneck, layer_norm=self.design == "lin")
            for _ in range(per_block * cfg.n_layer)
        ).to(device=model.device, dtype=model.dtype)
        self._init_weights(adapters)
        for p in model.parameters():
            p.requires_grad_(False)
        # A submodule of the model, so .to(), dtype casts and train()/eval() reach the adapters.
        model.add_module("prefixtune_adapters", adapters)
        self.adapters = adapters
        self._hooks = self._attach(model, adapters)
        trained = sum(p.numel() for p in adapters.parameters())
        log.info(
            "adapter %s: bottleneck %d, %d parameters = %.3f %% of the LM's %d",
            self.design,
            self.bottleneck,
            trained,
            100 * trained / self.base,
            self.base,
        )

    def _init_weights(self, adapters: nn.ModuleList) -> None:
        if adapters[0].up.weight.is_meta:
            return
        for adapter in adapters:
            for linear in (adapter.down, adapter.up):
                nn.init.normal_(linear.weight, mean=0.0, std=0.02)
                nn.init.zeros_(linear.bias)
            if self.init == "zero_up":
                nn.init.zeros_(adapter.up.weight)

    def _attach(self, model: PreTrainedModel, adapters: nn.ModuleList) -> list:
        blocks = model.transformer.h
        if self.design == "lin":
            return [
                block.register_forward_hook(lambda _m, _a, out, ad=ad: ad(out))
                for block, ad in zip(blocks, adapters, strict=True)
            ]
        hooks = []
        for i, block in enumerate(blocks):
            attn_adapter, mlp_adapter = adapters[2 * i], adapters[2 * i + 1]
            # GPT2Attention returns (output, weights); the MLP returns its output.
            hooks.append(
                block.attn.register_forward_hook(lambda _m, _a, out, ad=attn_adapter: (ad(out[0]), *out[1:]))
            )
            hooks.append(block.mlp.register_forward_hook(lambda _m, _a, out, ad=mlp_adapter: ad(out)))
        return hooks

    def trainable_parameters(self) -> list[nn.Parameter]:
        params = list(self.adapters.parameters())
        for p in params:
            p.requires_grad_(True)
        return params

    def train(self) -> None:
        self.model.train() if self.settings.get("lm_dropout", True) else self.model.eval()

    def _config(self) -> dict[str, Any]:
        return {"design": self.design, "bottleneck": self.bottleneck, "blocks": len(self.model.transformer.h)}

    def save(self, out_dir: Path) -> None:
        save_trained(out_dir, STEM, dict(self.adapters.state_dict()), self._config())

    def load(self, trained_dir: Path) -> None:
        self.adapters.load_state_dict(load_trained(trained_dir, STEM, self._config(), self.model.device))

    def parameter_counts(self) -> dict[str, int]:
        trained = sum(p.numel() for p in self.adapters.parameters())
        return {
            "trainable": trained,
            "stored": trained,
            "base": self.base,
            "bottleneck": self.bottleneck,
        }
