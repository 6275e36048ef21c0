"""A tiny GPT-2 and tokenizer built in seconds for method tests (random weights unless pre-trained)."""

from __future__ import annotations

from pathlib import Path

import torch

from prefixtune.models.loading import load_causal_lm, load_tokenizer
from prefixtune.models.tiny import TinyRecipe, build_model, pretrain, train_tokenizer

CORPUS = [
    "name : The Eagle | Type : coffee shop | food : French <|endoftext|> The Eagle is a French coffee shop .",
    "The Mill serves cheap Italian food near the river and is family friendly .",
    "Aarhus Airport serves the city of Aarhus , Denmark .",
    "There is a pub called Blue Spice in the city centre with a high customer rating .",
] * 20


def save_tiny_model(out: Path, seed: int = 0) -> Path:
    """Tokenizer + random tiny GPT-2 saved with save_pretrained (the pipeline's loading path)."""
    torch.manual_seed(seed)
    recipe = TinyRecipe(vocab_size=400, n_layer=2, n_embd=32, n_head=4, n_positions=128, seed=seed)
    tokenizer = train_tokenizer(CORPUS, recipe.vocab_size)
    model = build_model(recipe, tokenizer)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out)
    model.save_pretrained(out)
    return out


def load_tiny(model_dir: Path):
    tokenizer = load_tokenizer(model_dir)
    return tokenizer, load_causal_lm(model_dir, tokenizer)


def save_pretrained_tiny_model(out: Path, steps: int = 150, seed: int = 0) -> Path:
    """As ``save_tiny_model`` but briefly pre-trained on ``CORPUS``: a random tiny LM is degenerate (its argmax is
    nearly constant), so generation and learning tests need one that has seen text (implementation_notes.md §2)."""
    torch.manual_seed(seed)
    recipe = TinyRecipe(
        vocab_size=400,
        n_layer=2,
        n_embd=32,
        n_head=4,
        n_positions=128,
        pretrain_steps=steps,
        batch_size=8,
        learning_rate=3e-3,
        seed=seed,
    )
    tokenizer = train_tokenizer(CORPUS, recipe.vocab_size)
    model = build_model(recipe, tokenizer)
    pretrain(model, tokenizer, CORPUS, recipe)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out)
    model.save_pretrained(out)
    return out
