"""FINETUNE: every weight of the LM trains, with its dropout on (official_code.md §3.7).

In low-data runs the authors' code prepended the prefix's init word to every source as text (§1.4): setting
``prepend_word`` does that in training and decoding.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from prefixtune.methods.base import TuningMethod


class FineTune(TuningMethod):
    name = "finetune"

    def trainable_parameters(self) -> list[nn.Parameter]:
        params = list(self.model.parameters())
        for p in params:
            p.requires_grad_(True)
        return params

    def train(self) -> None:
        if self.settings.get("lm_dropout", True):
            self.model.train()
        else:
            self.model.eval()

    def text_prepended(self) -> str:
        return str(self.settings.get("prepend_word") or "")

    def save(self, out_dir: Path) -> None:
        self.model.save_pretrained(out_dir)

    def parameter_counts(self) -> dict[str, int]:
        base = self.base_parameter_count()
        return {"trainable": base, "stored": base, "base": base}
