"""FT-TOP: fine-tune only the top blocks and the final LayerNorm of GPT-2 (official_code.md §3.5).

The authors' ``--top_layers 2`` also unfreezes the token embeddings (tied to the LM head, 51M values for GPT-2
medium); ``train_embeddings`` keeps that default because it is what the code ran. The paper's text ("top 2
layers") reads like ``train_embeddings: false`` (the code's ``top_layers=22``). LM dropout on, token-mean loss.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from prefixtune.methods.base import TuningMethod
from prefixtune.methods.stored import load_trained, save_trained

STEM = "ft_top"


class FineTuneTop(TuningMethod):
    name = "ft_top"

    def __init__(
        self, model: PreTrainedModel, settings: dict, tokenizer: PreTrainedTokenizerBase | None = None
    ) -> None:
        super().__init__(model, settings, tokenizer)
        n_layer = int(model.config.n_layer)
        self.top_layers = int(settings.get("top_layers", 2))
        if not 1 <= self.top_layers <= n_layer:
            raise ValueError(f"method setting top_layers={self.top_layers}: expected 1..{n_layer}")
        self.train_embeddings = bool(settings.get("train_embeddings", True))
        prefixes = [f"transformer.h.{i}." for i in range(n_layer - self.top_layers, n_layer)]
        prefixes.append("transformer.ln_f.")
        if self.train_embeddings:
            prefixes.append("transformer.wte.")
        # named_parameters() lists a tied weight once (wte, not lm_head), so nothing is counted twice.
        self.names = [n for n, _ in model.named_parameters() if n.startswith(tuple(prefixes))]
        for name, param in model.named_parameters():
            param.requires_grad_(name in self.names)

    def trainable_parameters(self) -> list[nn.Parameter]:
        params = dict(self.model.named_parameters())
        return [params[n] for n in self.names]

    def train(self) -> None:
        self.model.train() if self.settings.get("lm_dropout", True) else self.model.eval()

    def _config(self) -> dict:
        return {"top_layers": self.top_layers, "train_embeddings": self.train_embeddings, "names": self.names}

    def save(self, out_dir: Path) -> None:
        params = dict(self.model.named_parameters())
        save_trained(out_dir, STEM, {n: params[n] for n in self.names}, self._config())

    def load(self, trained_dir: Path) -> None:
        tensors = load_trained(trained_dir, STEM, self._config(), self.model.device)
        params = dict(self.model.named_parameters())
        for name in self.names:
            params[name].data.copy_(tensors[name])

    def parameter_counts(self) -> dict[str, int]:
        trained = sum(p.numel() for p in self.trainable_parameters())
        return {"trainable": trained, "stored": trained, "base": self.base_parameter_count()}
