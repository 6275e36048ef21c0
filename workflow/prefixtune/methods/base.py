"""What every tuning method provides to the trainer and the decoder."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase


def checked_prefix_length(settings: dict[str, Any], model: PreTrainedModel, given: Any = None) -> int:
    """``prefix_length`` from the method settings (or ``given``), refused unless 1 <= P < the model's context."""
    raw = settings.get("prefix_length") if given is None else given
    if raw is None:
        raise KeyError("method settings: prefix_length is missing (an integer >= 1)")
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).strip().isdigit():
        raise ValueError(f"method settings: prefix_length {raw!r}: expected a positive integer")
    length = int(raw)
    context = int(
        getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", 0)
    )
    if length < 1:
        raise ValueError(f"method settings: prefix_length {length}: expected at least 1")
    if context and length >= context:
        raise ValueError(
            f"method settings: prefix_length {length} is beyond the model's context of {context} positions "
            "(the prefix must leave room for the input and the output)"
        )
    return length


class TuningMethod(ABC):
    """A way of adapting a frozen or trainable LM: which weights train, what is saved, what is prepended."""

    name: str

    def __init__(
        self,
        model: PreTrainedModel,
        settings: dict[str, Any],
        tokenizer: PreTrainedTokenizerBase | None = None,
    ) -> None:
        self.model = model
        self.settings = settings
        self.tokenizer = tokenizer  # only methods initialised from real words need it

    @abstractmethod
    def trainable_parameters(self) -> list[nn.Parameter]: ...

    @abstractmethod
    def train(self) -> None:
        """Put every module in the mode the authors' code trained it in (dropout on or off)."""

    def eval(self) -> None:
        self.model.eval()

    def positions_taken(self) -> int:
        """Positions used before the real tokens (the prefix length), out of the LM's ``n_positions``."""
        return 0

    def max_tokens(self) -> int:
        """How many real tokens (prompt and output) fit in the LM's position embeddings."""
        return int(self.model.config.n_positions) - self.positions_taken()

    def past_key_values(self, batch_size: int) -> DynamicCache | None:
        """Key/values placed before the real tokens (the prefix), or None."""
        return None

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Next-token logits for every position; no attention mask, as in the authors' code (right padding)."""
        past = self.past_key_values(input_ids.shape[0])
        return self.model(input_ids=input_ids, past_key_values=past, use_cache=past is not None).logits

    def training_logits(
        self, input_ids: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the labels aligned with them, for one right-padded training batch."""
        return self.logits(input_ids), labels

    def decoding_inputs(self, prompt_ids: torch.Tensor) -> tuple[torch.Tensor, DynamicCache | None]:
        """What the decoder feeds the LM for one prompt ``" SRC <|endoftext|>"`` (1, T): tokens and a cache."""
        return prompt_ids, self.past_key_values(1)

    def batched_decoding(self) -> bool:
        """Whether many prompts can be decoded at once behind ``past_key_values(B)`` (a method that builds its own
        decoding inputs per prompt, as INFIX does, decodes one prompt at a time)."""
        return type(self).decoding_inputs is TuningMethod.decoding_inputs

    def text_prepended(self) -> str:
        """Words put in front of every source as text (low-data FINETUNE gets the init word), or ''."""
        return ""

    def seq2seq_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, decoder_input_ids: torch.Tensor
    ) -> torch.Tensor:
        """Decoder logits of an encoder-decoder (BART) for one batch."""
        return self.model(
            input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids
        ).logits

    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        beams_share_source: bool = True,
        **kwargs: Any,
    ) -> torch.Tensor:
        """transformers' ``generate`` on an encoder-decoder, with whatever the method adds. The stock attention
        gives every beam row its own copy of the source; ``beams_share_source`` is for methods whose attention
        can share it (BART PREFIX)."""
        return self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    def initialize_for_training(self) -> None:  # noqa: B027 (optional hook, a no-op by default)
        """Anything done once before the first step (e.g. fitting the prefix to real words' activations)."""

    def init_summary(self) -> dict[str, Any] | None:
        """What ``initialize_for_training`` did (word, fit losses), recorded in ``run.json``; None if nothing."""
        return None

    @abstractmethod
    def save(self, out_dir: Path) -> None:
        """Write only what was trained."""

    @abstractmethod
    def parameter_counts(self) -> dict[str, int]:
        """``trainable`` (during training), ``stored`` (kept after training) and ``base`` (the LM)."""

    def base_parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())
