"""The offline demo model: a byte-level BPE tokenizer and a tiny GPT-2, briefly pre-trained as a language model.

Saved with ``save_pretrained`` so that the pipeline loads it exactly like ``gpt2-medium`` from the hub. A randomly
initialised tiny LM is degenerate (its argmax is nearly constant), so it is pre-trained on synthetic text first:
that gives a prefix a real LM to steer (implementation_notes.md §2).
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import AddedToken, ByteLevelBPETokenizer
from tqdm import tqdm
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from prefixtune.models.loading import EOS_TOKEN

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TinyRecipe:
    vocab_size: int = 1500
    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 256
    pretrain_steps: int = 600
    batch_size: int = 16
    learning_rate: float = 1e-3
    pretrain_dropout: float = 0.0  # dropout while pre-training; the saved config has GPT-2's 0.1
    seed: int = 0


GPT2_DROPOUT = 0.1  # resid/embd/attn dropout of the released GPT-2 configs (FINETUNE trains with it on)


def train_tokenizer(corpus: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE as GPT-2's, with ``<|endoftext|>`` as bos/eos/unk (not stripped, as in the authors' code)."""
    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(corpus, vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS_TOKEN])
    eos = AddedToken(EOS_TOKEN, lstrip=False, rstrip=False, normalized=False, special=True)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token=eos,
        eos_token=eos,
        unk_token=eos,
        model_max_length=1024,
        clean_up_tokenization_spaces=False,
    )


def build_model(recipe: TinyRecipe, tokenizer: PreTrainedTokenizerFast) -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=recipe.n_positions,
        n_embd=recipe.n_embd,
        n_layer=recipe.n_layer,
        n_head=recipe.n_head,
        resid_pdrop=recipe.pretrain_dropout,
        embd_pdrop=recipe.pretrain_dropout,
        attn_pdrop=recipe.pretrain_dropout,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return GPT2LMHeadModel(config)


def pretrain(
    model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast, texts: list[str], recipe: TinyRecipe
) -> float:
    """Plain LM training on packed blocks of the corpus; returns the final (smoothed) loss."""
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer.encode(text, add_special_tokens=False))
        ids.append(eos)
    block = recipe.n_positions // 2
    n_blocks = len(ids) // block
    if n_blocks < recipe.batch_size:
        raise ValueError(f"pre-training corpus too small: {len(ids)} tokens for blocks of {block}")
    data = torch.tensor(ids[: n_blocks * block]).view(n_blocks, block)
    rng = torch.Generator().manual_seed(recipe.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: 0.5 * (1 + math.cos(math.pi * min(step, recipe.pretrain_steps) / recipe.pretrain_steps)),
    )
    model.train()
    smoothed = float("nan")
    for step in tqdm(range(recipe.pretrain_steps), desc="pretrain tiny LM", mininterval=5):
        batch = data[torch.randint(0, n_blocks, (recipe.batch_size,), generator=rng)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        smoothed = loss.item() if math.isnan(smoothed) else 0.95 * smoothed + 0.05 * loss.item()
        if step % 100 == 0:
            log.info("pretrain step %d loss %.4f", step, smoothed)
    model.eval()
    return smoothed


def build_tiny_model(texts: list[str], out_dir: Path, recipe: TinyRecipe) -> dict[str, float | int]:
    """Train tokenizer + LM on ``texts`` and save both to ``out_dir``; returns a small summary."""
    random.seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    tokenizer = train_tokenizer(texts, recipe.vocab_size)
    model = build_model(recipe, tokenizer)
    final_loss = pretrain(model, tokenizer, texts, recipe)
    # Synthetic text is small and regular: pre-training without dropout converges in fewer steps. The saved
    # model is configured like the released GPT-2, so FINETUNE's "LM dropout on" means what it means there.
    model.config.resid_pdrop = model.config.embd_pdrop = model.config.attn_pdrop = GPT2_DROPOUT
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    model.save_pretrained(out_dir)
    return {
        "vocab_size": len(tokenizer),
        "parameters": sum(p.numel() for p in model.parameters()),
        "pretrain_final_loss": final_loss,
    }
