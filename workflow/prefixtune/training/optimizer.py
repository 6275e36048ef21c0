"""The optimizer of a run: transformers 3.2's AdamW (the authors' every run) or torch's AdamW.

The authors trained with ``transformers.optimization.AdamW`` of their vendored transformers 3.2.0 (their prefix
trainer, the HF Trainer for the baselines, and the Lightning BART module all build it with ``correct_bias`` left at
``True``). Its update differs from ``torch.optim.AdamW`` in two places:

- epsilon is added to ``sqrt(v)`` *before* bias correction, and the correction is folded into the step size::

      m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g²
      p -= lr · sqrt(1 - b2^t) / (1 - b1^t) · m / (sqrt(v) + eps)

  torch divides by ``sqrt(v / (1 - b2^t)) + eps``: in the first steps ``sqrt(v)`` of a parameter with tiny gradients
  is ``~|g|·sqrt(1 - b2^t)``, so the 3.2 rule's effective epsilon is about ``1/sqrt(1 - b2^t)`` (≈ 32 at t = 1)
  times larger and its updates of such parameters are much smaller;
- weight decay is applied *after* the Adam step, on the updated parameter: ``p -= lr · wd · p`` (torch decays first).

With ``eps = 0`` and no weight decay the two rules are the same update (up to rounding).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

TRANSFORMERS_3_2 = "adamw_transformers_3_2"
TORCH = "adamw_torch"
RULES = (TRANSFORMERS_3_2, TORCH)
DEFAULT_RULE = TRANSFORMERS_3_2  # what produced the published numbers


class AdamWTransformers32(torch.optim.Optimizer):
    """AdamW as transformers 3.2.0 computed it (bias correction in the step size, epsilon before it, decay after).

    ``foreach`` (default: on CUDA) updates each group's tensors with fused multi-tensor kernels; ``False`` updates
    them one at a time. On the CPU both give identical bits."""

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        foreach: bool | None = None,
    ):
        if lr < 0:
            raise ValueError(f"learning rate {lr}: expected >= 0")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"betas {betas}: each expected in [0, 1)")
        if eps < 0:
            raise ValueError(f"eps {eps}: expected >= 0")
        if weight_decay < 0:
            raise ValueError(f"weight_decay {weight_decay}: expected >= 0")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "foreach": foreach}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            # tensors that take the same scalars (their step count) and can share multi-tensor kernels
            buckets: dict[tuple[torch.device, torch.dtype, int], list[torch.Tensor]] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("AdamWTransformers32 does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = 0  # a Python int, as 3.2 kept it
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                buckets.setdefault((p.device, p.dtype, state["step"]), []).append(p)
            foreach = group["foreach"]
            for (device, _, step), params in buckets.items():
                use_foreach = device.type == "cuda" if foreach is None else foreach
                (self._update_foreach if use_foreach else self._update_each)(group, params, step)
        return loss

    def _scalars(self, group: dict[str, Any], step: int) -> tuple[float, float, float, float, float]:
        beta1, beta2 = group["betas"]
        # Python floats (double precision), as 3.2 computed the step size
        step_size = group["lr"] * math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
        return beta1, beta2, group["eps"], step_size, group["lr"] * group["weight_decay"]

    def _update_each(self, group: dict[str, Any], params: list[torch.Tensor], step: int) -> None:
        beta1, beta2, eps, step_size, decay = self._scalars(group, step)
        for p in params:
            grad, state = p.grad, self.state[p]
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.mul_(beta1).add_(grad, alpha=1.0 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
            denom = exp_avg_sq.sqrt().add_(eps)
            p.addcdiv_(exp_avg, denom, value=-step_size)
            if decay > 0:
                p.add_(p, alpha=-decay)  # after the Adam step, on the updated value

    def _update_foreach(self, group: dict[str, Any], params: list[torch.Tensor], step: int) -> None:
        beta1, beta2, eps, step_size, decay = self._scalars(group, step)
        grads = [p.grad for p in params]
        exp_avgs = [self.state[p]["exp_avg"] for p in params]
        exp_avg_sqs = [self.state[p]["exp_avg_sq"] for p in params]
        torch._foreach_mul_(exp_avgs, beta1)
        torch._foreach_add_(exp_avgs, grads, alpha=1.0 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1.0 - beta2)
        denoms = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_add_(denoms, eps)
        torch._foreach_addcdiv_(params, exp_avgs, denoms, value=-step_size)
        if decay > 0:
            torch._foreach_add_(params, params, alpha=-decay)


def build_optimizer(
    rule: str,
    params: Iterable[torch.Tensor],
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """The optimizer of ``rule`` (``hparams.optimizer``): ``adamw_transformers_3_2`` or ``adamw_torch``."""
    if rule == TRANSFORMERS_3_2:
        return AdamWTransformers32(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    if rule == TORCH:
        return torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    raise ValueError(f"hparams.optimizer {rule!r}: expected one of {', '.join(RULES)}")
