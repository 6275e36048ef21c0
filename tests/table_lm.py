"""A GPT-2 whose next-token logits are a fixed table looked up by the last input token, for beam-search tests
that need exact scores (a real cache, masks and positions; only the logits are replaced).

``tie_table`` builds two finished hypotheses with exactly equal transformers-3.2 scores. Every row puts logit 0 on
a sink token (banned by ``bad_words_ids``) and -100 or less elsewhere, so log-softmax gives each allowed token
its logit exactly (exp(-100) vanishes next to 1 in float32): integer log-probabilities, exact sums.
"""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel

EOS, PROMPT, A, C, D, F, SINK, OTHER = range(8)
VOCAB = 16


class TableLM(GPT2LMHeadModel):
    """GPT-2 with ``logits[..., t, :] = table[input_ids[..., t]]``."""

    def __init__(self, config: GPT2Config, table: torch.Tensor) -> None:
        super().__init__(config)
        self.register_buffer("table", table, persistent=False)

    def forward(self, input_ids: torch.Tensor | None = None, **kwargs):  # type: ignore[override]
        out = super().forward(input_ids=input_ids, **kwargs)
        kept = out.logits.shape[1]  # logits_to_keep: only the last positions
        out.logits = self.table[input_ids[:, -kept:]].to(out.logits.dtype)
        return out


def tie_table() -> torch.Tensor:
    """PROMPT -> A (-100) or F (-400); A -> C (-100) or EOS (-200); C -> EOS (-250) or D (-1000); F -> F (-1000).

    With 2 beams, length penalty 1 and the prompt [PROMPT] (3.2 divides by prompt + generated length):
    [PROMPT, A] finishes at step 2 with -300 / 2 = -150, [PROMPT, A, C] at step 3 with -450 / 3 = -150, and then
    the search is done. From the prompt [OTHER, PROMPT] the same paths score -100 and -112.5: no tie.
    """
    table = torch.full((VOCAB, VOCAB), -1.0e4)
    table[:, SINK] = 0.0
    table[PROMPT, A], table[PROMPT, F] = -100.0, -400.0
    table[A, C], table[A, EOS] = -100.0, -200.0
    table[C, EOS], table[C, D] = -250.0, -1000.0
    table[F, F] = -1000.0
    return table


def table_lm(table: torch.Tensor, attention: str = "eager") -> TableLM:
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=VOCAB, n_positions=32, n_embd=8, n_layer=1, n_head=2, eos_token_id=EOS, bos_token_id=EOS
    )
    model = TableLM(config, table).eval()
    model.set_attn_implementation(attention)
    return model
