"""Shared pieces of the benchmarks: model sizes and a median timer."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from transformers import GPT2Config, GPT2LMHeadModel

SIZES = {
    "tiny": dict(n_layer=2, n_embd=128, n_head=4),
    "small": dict(n_layer=12, n_embd=768, n_head=12),
    "medium": dict(n_layer=24, n_embd=1024, n_head=16),
}


PREFIX_SETTINGS = {"prefix_length": 5, "mid_dim": 512, "loss": "sequence_sum", "lm_dropout": False}
FINETUNE_SETTINGS = {"loss": "token_mean", "lm_dropout": True}


def prefix_method(model: torch.nn.Module, seed: int) -> Any:  # noqa: ANN401
    """PREFIX on ``model`` with parameters far from zero (N(0, 0.2)), so that the prefix changes the outputs."""
    from prefixtune.methods import build_method

    torch.manual_seed(seed)
    method = build_method("prefix", model, PREFIX_SETTINGS)
    with torch.no_grad():
        for p in method.trainable_parameters():
            p.normal_(0, 0.2)
    method.eval()
    return method


def random_prompts(n: int, vocab: int, seed: int = 0) -> list[list[int]]:
    """``n`` prompts of E2E-like lengths (20-40 tokens), random ids from 5 up."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(20, 41, (n,), generator=generator).tolist()
    return [torch.randint(5, vocab, (k,), generator=generator).tolist() for k in lengths]


def prefix_decoders(
    method: Any,  # noqa: ANN401
    prompts: list[list[int]],
    settings: Any,  # noqa: ANN401
    eos: int = 0,
) -> tuple[Callable[[], list[list[int]]], Callable[[int], list[list[int]]]]:
    """The two ways of decoding ``prompts`` behind ``method``'s prefix: one at a time (the authors' loop) and in
    batches of a given size (``beam_search_batch``), each returning the best sequences in prompt order."""
    from prefixtune.decoding.beam_search import beam_search
    from prefixtune.decoding.beam_search_batched import beam_search_batch

    model = method.model

    def batch_one() -> list[list[int]]:
        with torch.no_grad():
            return [
                beam_search(
                    model, torch.tensor([p], device=model.device), eos, settings, method.past_key_values(1)
                ).tolist()
                for p in prompts
            ]

    def batched(size: int) -> list[list[int]]:
        out: list[list[int]] = []
        with torch.no_grad():
            for start in range(0, len(prompts), size):
                chunk = prompts[start : start + size]
                out += beam_search_batch(model, chunk, eos, settings, method.past_key_values(len(chunk)))
        return out

    return batch_one, batched


def training_batch(device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """5 sequences of 64 tokens (E2E's PREFIX batch size), the loss on their second half."""
    torch.manual_seed(0)
    batch = torch.randint(0, 50000, (5, 64), device=device)
    labels = batch.clone()
    labels[:, :32] = -100
    return batch, labels


def random_gpt2(size: str, vocab: int = 50258) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=1024, **SIZES[size]))


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, float]:
    """Median seconds of each function, the functions taking turns in every repeat: a slow spell of a shared
    machine then hits all of them alike instead of whichever happened to run in it."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def training_step(
    method: object, loss_mode: str, batch: torch.Tensor, labels: torch.Tensor
) -> Callable[[], None]:
    """One optimizer step of a tuning method on a fixed batch (AdamW, clipping at 1.0, as the trainer)."""
    from prefixtune.training.train import lm_loss

    method.train()
    params = method.trainable_parameters()
    optimizer = torch.optim.AdamW(params, lr=1e-5)

    def step() -> None:
        loss = lm_loss(method.logits(batch), labels, loss_mode)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step
