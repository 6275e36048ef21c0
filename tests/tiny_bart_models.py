"""A tiny pre-trained BART and its tokenizer for method tests, built once per test session (seconds on CPU)."""

from __future__ import annotations

import atexit
import contextlib
import functools
import random
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from prefixtune.models.tiny_bart import TinyBartRecipe, build_tiny_bart

NAMES = ["The Eagle", "The Mill", "Blue Spice", "Aromi", "Zizzi", "The Punter", "Cotto", "Alimentum"]
FOODS = ["French", "Italian", "Chinese", "English", "Indian", "Japanese"]
AREAS = ["city centre", "riverside"]

# Small and fast; max_position_embeddings as the demo's (512-token sources must fit).
TEST_RECIPE = TinyBartRecipe(
    vocab_size=400,
    d_model=64,
    attention_heads=4,
    ffn_dim=128,
    pretrain_steps=100,
    batch_size=8,
    learning_rate=2e-3,
    max_position_embeddings=512,
)

# PREFIX's XSUM decoding with short lengths for the tiny model (every setting explicit, as a run records it)
TINY_XSUM_DECODING = {
    "num_beams": 6,
    "min_length": 3,
    "max_length": 20,
    "no_repeat_ngram_size": 3,
    "length_penalty": 0.8,
    "early_stopping": True,
    "forced_bos": False,
    "batch_size": 2,
}


def pretraining_pairs(n: int = 200, seed: int = 0) -> list[tuple[str, str]]:
    """Table-to-text pairs ("X serves Y food ...") and copy pairs; the prefix tests use another template."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        name, food, area = rng.choice(NAMES), rng.choice(FOODS), rng.choice(AREAS)
        pairs.append(
            (f"name : {name} | food : {food} | area : {area}", f"{name} serves {food} food in the {area} .")
        )
        pairs.append((f"{name} is in the {area} .", f"{name} is in the {area} ."))
    return pairs


def save_tiny_bart(out: Path, recipe: TinyBartRecipe = TEST_RECIPE) -> Path:
    build_tiny_bart(out, pretraining_pairs(), recipe)
    return out


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads, and two threads next to another busy process on two
    cores ran 50x slower here (171 s instead of 3 s for the pre-training)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@functools.cache
def tiny_bart_dir() -> Path:
    """The test BART, built on first use and shared by every test of the session."""
    root = Path(tempfile.mkdtemp(prefix="prefixtune-tiny-bart-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    with one_thread():
        return save_tiny_bart(root / "tiny-bart")


def load_tiny_bart(model_dir: Path) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """Tokenizer and model loaded as the pipeline loads facebook/bart-large; the model in eval mode."""
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSeq2SeqLM.from_pretrained(str(model_dir), dtype=torch.float32)
    return tokenizer, model.eval()
