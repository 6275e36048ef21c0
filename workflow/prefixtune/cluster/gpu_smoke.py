"""``prefixtune gpu-smoke``: the first job on a new cluster. One PREFIX training step of a small GPT-2 built from
config (no download) on the GPU, in fp32 and under bf16 autocast, and what the node offers (device, CUDA, bf16,
TF32). It fails with a clear message where the job sees no GPU, so a wrong partition or GPU request shows up in
minutes instead of after a day in the queue."""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from prefixtune.methods import build_method
from prefixtune.provenance import package_versions, write_json_atomic
from prefixtune.training.optimizer import DEFAULT_RULE, build_optimizer

log = logging.getLogger(__name__)


class NoGpuError(RuntimeError):
    """The job sees no CUDA device."""


def _device(allow_cpu: bool) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if allow_cpu:
        return torch.device("cpu")
    raise NoGpuError(
        "no CUDA device is visible to this job "
        f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}, torch {torch.__version__}, "
        f"built for CUDA {torch.version.cuda}): check the GPU request (`gpu`/`gres`, `slurm_partition`) under "
        "set-resources in slurm/profile.v9+.yaml, and that the environment has the CUDA build of torch"
    )


def _one_step(device: torch.device, bf16: bool, seed: int = 0) -> dict[str, Any]:
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=512, n_positions=128, n_embd=256, n_layer=4, n_head=4)
    model = GPT2LMHeadModel(config).to(device)
    settings = {"loss": "sequence_sum", "lm_dropout": False, "mid_dim": 64, "prefix_length": 5}
    method = build_method("prefix", model, settings)
    params = method.trainable_parameters()
    optimizer = build_optimizer(DEFAULT_RULE, params, lr=1e-3)  # the runs' update rule (multi-tensor on CUDA)
    ids = torch.randint(0, config.vocab_size, (8, 64), device=device)
    before = [p.detach().clone() for p in params]
    started = time.perf_counter()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = method.logits(ids)
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten())
    loss.backward()
    optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    moved = any(not torch.equal(a, p.detach()) for a, p in zip(before, params, strict=True))
    frozen_grads = [n for n, p in model.named_parameters() if p.grad is not None]
    return {
        "loss": float(loss.detach()),
        "finite": math.isfinite(float(loss.detach())),
        "prefix_updated": moved,
        "frozen_weights_with_gradients": frozen_grads,
        "logits_dtype": str(logits.dtype),
        "seconds": round(seconds, 4),
    }


def gpu_smoke(out: Path, allow_cpu: bool = False) -> dict[str, Any]:
    """Run the check and write ``out`` (JSON); raises when a step fails."""
    device = _device(allow_cpu)
    cuda = device.type == "cuda"
    bf16_ok = bool(cuda and torch.cuda.is_bf16_supported())
    record: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "capability": list(torch.cuda.get_device_capability(0)) if cuda else None,
        "memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "bf16_supported": bf16_ok,
        "tf32_matmul_allowed": torch.backends.cuda.matmul.allow_tf32,
        "versions": package_versions(),
        "steps": {"fp32": _one_step(device, bf16=False)},
    }
    if bf16_ok or not cuda:  # CPU autocast supports bf16 too: the code path runs here
        record["steps"]["bf16"] = _one_step(device, bf16=True)
    failed = [
        name
        for name, step in record["steps"].items()
        if not (step["finite"] and step["prefix_updated"] and not step["frozen_weights_with_gradients"])
    ]
    if failed:
        raise RuntimeError(f"gpu smoke test failed in {failed}: {record['steps']}")
    if cuda and not bf16_ok:
        log.warning("%s has no bf16: set training.precision: fp32 for this cluster", record["device"])
    write_json_atomic(out, record)
    log.info("gpu smoke test passed on %s: %s", record["device"], record["steps"])
    return record
