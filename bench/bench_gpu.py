"""The issue's GPU measurements, run by ``make bench`` when a GPU is visible (``--gpu-device`` picks another
device, e.g. ``cpu`` with ``--gpu-size tiny`` to check this code where there is no GPU):

- batched beam search against batch 1 with GPT-2 medium and a PREFIX (target ≥ 20×), fp32, eager attention
  (the decoding default); random weights never emit EOS, so every prompt runs all ``max_new_tokens``;
- the training step of PREFIX against FINETUNE, and PREFIX under TF32 and bf16 autocast against fp32.

Every timing synchronizes the device before the clock stops. Outputs of batched and batch-1 decoding are compared
prompt by prompt: GPU kernels may pick other algorithms for other batch shapes, so equality is reported, not
assumed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from common import (
    FINETUNE_SETTINGS,
    PREFIX_SETTINGS,
    median_seconds,
    prefix_decoders,
    prefix_method,
    random_gpt2,
    random_prompts,
    training_batch,
    training_step,
)
from prefixtune.decoding.beam_search import BeamSettings
from prefixtune.methods import build_method
from prefixtune.training.train import autocast_context, resolve_precision


def _synced(fn: Callable[[], object], device: torch.device) -> Callable[[], object]:
    def run() -> object:
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return out

    return run


def bench_gpu_decoding(
    device: torch.device, size: str, n_prompts: int, batches: tuple[int, ...], repeats: int
) -> list[dict[str, Any]]:
    model = random_gpt2(size).to(device).eval()
    model.set_attn_implementation("eager")
    method = prefix_method(model, 1)
    settings = BeamSettings(num_beams=5, max_new_tokens=40, min_length=0)
    prompts = sorted(random_prompts(n_prompts, model.config.vocab_size), key=len)
    batch_one, batched = prefix_decoders(method, prompts, settings)

    expected = batch_one()
    base = median_seconds(_synced(batch_one, device), repeats, warmup=1)
    rows = []
    for batch in batches:
        same = sum(a == b for a, b in zip(batched(batch), expected, strict=True))
        cand = median_seconds(_synced(lambda batch=batch: batched(batch), device), repeats, warmup=1)
        rows.append(
            {
                "name": f"GPT-2 {size} PREFIX beam search, {n_prompts} prompts ({_where(device)}, fp32)",
                "baseline": f"batch 1: {base:.3f} s",
                "candidate": f"batches of {batch}: {cand:.3f} s",
                "ratio": base / cand,
                "target": "≥ 20× on a GPU (GPT-2 medium)",
                "note": f"outputs identical to batch 1: {same} of {len(expected)}",
            }
        )
    return rows


def _where(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type.upper()


@contextmanager
def _precision(arithmetic: str, device: torch.device) -> Iterator[None]:
    """fp32, tf32 (TF32 matmuls) or bf16 (autocast), applied as the trainer applies them."""
    previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    hparams = {"precision": "fp32" if arithmetic == "tf32" else arithmetic, "tf32": arithmetic == "tf32"}
    try:
        with autocast_context(resolve_precision(hparams, device), device.type):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous


def bench_gpu_training(device: torch.device, size: str, repeats: int) -> list[dict[str, Any]]:
    """Batch 5 × 64 tokens (E2E's PREFIX batch size), AdamW steps as the trainer takes them."""
    batch, labels = training_batch(device)

    def step_of(kind: str, arithmetic: str) -> Callable[[], object]:
        settings = PREFIX_SETTINGS if kind == "prefix" else FINETUNE_SETTINGS
        method = build_method(
            kind, random_gpt2(size).to(device), settings
        )  # its parameters on the model's device
        step = training_step(method, str(settings["loss"]), batch, labels)

        def run() -> None:
            with _precision(arithmetic, device):
                step()

        return _synced(run, device)

    seconds = {
        (kind, arithmetic): median_seconds(step_of(kind, arithmetic), repeats)
        for kind, arithmetic in (
            ("finetune", "fp32"),
            ("prefix", "fp32"),
            ("prefix", "tf32"),
            ("prefix", "bf16"),
        )
    }
    where = f"GPT-2 {size} config, batch 5 × 64 tokens ({_where(device)})"
    fp32 = seconds["prefix", "fp32"]
    return [
        {
            "name": f"training step, {where}",
            "baseline": f"FINETUNE fp32: {seconds['finetune', 'fp32']:.3f} s",
            "candidate": f"PREFIX fp32: {fp32:.3f} s",
            "ratio": seconds["finetune", "fp32"] / fp32,
            "target": "> 1× (the paper: prefix-tuning about 30 % faster)",
        },
        *(
            {
                "name": f"PREFIX training step, {where}",
                "baseline": f"fp32: {fp32:.3f} s",
                "candidate": f"{label}: {seconds['prefix', arithmetic]:.3f} s",
                "ratio": fp32 / seconds["prefix", arithmetic],
                "target": "faster than fp32 (`training.defaults.precision` / `tf32`)",
                "note": "" if device.type == "cuda" else "not a GPU: fp32 whatever is asked, as the trainer",
            }
            for arithmetic, label in (("tf32", "TF32 matmuls"), ("bf16", "bf16 autocast"))
        ),
    ]
