"""PREFIX vs FINETUNE training-step time on the same model and batch (ratio < 1: prefix is cheaper)."""

from __future__ import annotations

import argparse

import torch

from common import median_seconds, random_gpt2, training_step
from prefixtune.methods import build_method


def step_fn(method_name: str, size: str, batch: torch.Tensor, labels: torch.Tensor):
    settings = {"prefix_length": 5, "mid_dim": 512, "loss": "sequence_sum", "lm_dropout": False}
    if method_name == "finetune":
        settings = {"loss": "token_mean", "lm_dropout": True}
    method = build_method(method_name, random_gpt2(size), settings)
    return training_step(method, settings["loss"], batch, labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="tiny", choices=["tiny", "small", "medium"])
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    batch = torch.randint(0, 50000, (args.batch, args.length))
    labels = batch.clone()
    labels[:, : args.length // 2] = -100
    base = median_seconds(step_fn("finetune", args.size, batch, labels), args.repeats)
    cand = median_seconds(step_fn("prefix", args.size, batch, labels), args.repeats)
    print(f"size={args.size} batch={args.batch}x{args.length}")
    print(
        f"finetune step (baseline): {base:.4f} s   prefix step: {cand:.4f} s   ratio prefix/finetune: {cand / base:.2f}"
    )


if __name__ == "__main__":
    main()
