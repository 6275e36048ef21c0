"""Which parameters a run writes: the final ones, or the best seen by an evaluation during training.

The authors' selection (official_code.md §4.1-§4.3):

- ``best_dev_loss`` (GPT-2): their trainers evaluated the dev loss every ``eval_steps`` optimizer steps (50 in the
  low-data runs, on the run's 30 % dev subset, eval batch 32; 5,000 with the full dev set otherwise) and, when the
  output folder named ``lowdata`` (or ``earlystop``), saved the parameters whenever the loss fell below the best so
  far (strictly). The low-data runs wrote no final model: the best dev-loss parameters are what they decoded.
- ``best_val_rouge`` (BART, XSUM): their Lightning module validated after every epoch by generating summaries for
  the first 500 validation articles (``n_val``) and scoring ROUGE, and saved the prefix after every epoch; the test
  checkpoint was chosen by hand, presumably the best validation ROUGE-2 (the metric their checkpoint callback
  monitored, ``val_rouge2``, mode max).
- ``final``: the parameters after the last step (the authors' full-data GPT-2 default).

Evaluations happen after optimizer steps (an epoch is the trainer's planned ``steps_per_epoch``), before that step's
checkpoint, and the best parameters and score are part of the checkpoint: a resumed run selects exactly what an
uninterrupted one does. Evaluations leave the training random streams untouched, so a run with selection trains
the same parameters as one without.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from prefixtune.data.records import EvalItem, Pair, read_jsonl

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from prefixtune.methods.base import TuningMethod

log = logging.getLogger(__name__)
RULES = ("final", "best_dev_loss", "best_val_rouge")
BOOTSTRAP_SEED = 0  # the scorer's seed (metrics/rouge.py); the authors' validation bootstrap was unseeded


def dev_pairs(path: Path) -> list[Pair]:
    """The (source, reference) pairs of a dev file: every reference of every item, as the lines of the authors'
    ``src1_valid`` / low-data ``_valid`` files. The prepared references are stripped (E2E src1 targets end in a
    space the training targets keep): a dev text can be one token shorter than the authors' line, the same at
    every evaluation, so the ranking of the evaluated steps is hardly affected."""
    items = read_jsonl(path, EvalItem)
    pairs = [Pair(item.source, ref) for item in items for ref in item.references]
    if not pairs:
        raise ValueError(f"{path}: no dev items with references to evaluate the dev loss on")
    return pairs


@contextmanager
def _evaluating(method: TuningMethod) -> Iterator[None]:
    """Eval mode (no dropout) without touching the training random streams; train mode again afterwards."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        method.eval()
        try:
            yield
        finally:
            method.train()


def dev_loss(
    method: TuningMethod,
    batch_loss: Callable[[list[Any]], torch.Tensor],
    examples: list[Any],
    batch_size: int,
    autocast: Callable[[], Any],
) -> float:
    """The authors' eval loss: the training loss of each dev batch (the run's own ``loss`` mode: their prefix
    model's forward computed the training objective, the sequence sum for PREFIX, and the HF Trainer's GPT-2 the
    token mean), weighted by the batch's size and averaged (transformers 3.2 ``prediction_loop`` repeats each batch's
    ``loss.mean()`` batch-size times, then takes the mean). Batches of ``batch_size`` in file order, eval mode."""
    total = 0.0
    with _evaluating(method), autocast():
        for start in range(0, len(examples), batch_size):
            batch = examples[start : start + batch_size]
            total += float(batch_loss(batch)) * len(batch)
    return total / len(examples)


def validation_rouge(
    method: TuningMethod,
    tokenizer: PreTrainedTokenizerBase,
    items: list[EvalItem],
    decoding: dict[str, Any],
    max_source: int,
    device: torch.device,
    settings: dict[str, Any],
) -> float:
    """The authors' XSUM validation score: summaries generated with the run's own decoding settings (the decode
    stage's ``summarize``, fp32), references = the first reference cut to ``reference_max_tokens`` ids and decoded
    back (their ``val_max_target_length`` 60), ROUGE per validation batch of ``score_batch_size`` as a bootstrap
    mid F, averaged over the batches (their ``calculate_rouge`` per batch, then the mean)."""
    from prefixtune.decoding.decode import summarize
    from prefixtune.metrics.rouge import batch_bootstrap, per_example, truncate_references

    with _evaluating(method):
        hyps = summarize(method, tokenizer, [item.source for item in items], decoding, max_source, device)
    refs = truncate_references(
        [item.references[0] for item in items], tokenizer, int(settings["reference_max_tokens"])
    )
    scores = per_example(hyps, refs)
    return batch_bootstrap(scores, int(settings["score_batch_size"]), BOOTSTRAP_SEED)[settings["metric"]]


@dataclass
class Selection:
    """Evaluate every ``every_steps`` optimizer steps; keep a CPU copy of the best parameters (ties: the earlier)."""

    rule: str
    every_steps: int
    steps_per_epoch: int
    evaluate: Callable[[], float]
    higher_is_better: bool
    settings: dict[str, Any]
    inputs: dict[str, Any]
    best_score: float | None = None
    best_step: int | None = None
    best_params: list[torch.Tensor] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def due(self, step: int) -> bool:
        return step % self.every_steps == 0

    def observe(self, step: int, params: list[torch.Tensor]) -> None:
        started = time.monotonic()
        score = float(self.evaluate())
        self.seconds += time.monotonic() - started
        self.history.append({"step": step, "epoch": round(step / self.steps_per_epoch, 3), "score": score})
        if self.best_score is None or (
            score > self.best_score if self.higher_is_better else score < self.best_score
        ):
            self.best_score, self.best_step = score, step
            self.best_params = [p.detach().to("cpu", copy=True) for p in params]
        log.info("selection at step %d: %s %.5f (best %.5f, step %s)", step, self.metric, score,
                 self.best_score, self.best_step)  # fmt: skip

    @property
    def metric(self) -> str:
        return "dev loss" if self.rule == "best_dev_loss" else f"validation {self.settings['metric']}"

    def apply_best(self, params: list[torch.Tensor]) -> None:
        """Write the selected parameters into the model's (what the run then saves and decodes)."""
        if self.best_params is None:
            raise RuntimeError("checkpoint selection: no evaluation ran, so there is nothing to select")
        with torch.no_grad():
            for p, best in zip(params, self.best_params, strict=True):
                p.copy_(best.to(p.device))

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_score": self.best_score,
            "best_step": self.best_step,
            "best_params": self.best_params,
            "history": self.history,
            "seconds": self.seconds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_score, self.best_step = state["best_score"], state["best_step"]
        self.best_params, self.history, self.seconds = (
            state["best_params"],
            state["history"],
            state["seconds"],
        )

    def record(self) -> dict[str, Any]:
        """What ``run.json`` keeps: the rule and its settings, the chosen step and score, every evaluation."""
        return {
            **self.settings,
            "every_steps": self.every_steps,
            **self.inputs,
            "chosen_step": self.best_step,
            "chosen_epoch": None
            if self.best_step is None
            else round(self.best_step / self.steps_per_epoch, 3),
            "chosen_score": self.best_score,
            "score_name": self.metric,
            "evaluations": self.history,
            "validation_seconds": round(self.seconds, 2),  # part of the training job's wall time
        }


def every_steps(settings: dict[str, Any], steps_per_epoch: int, total_steps: int) -> int:
    """Optimizer steps between evaluations; a rule that would never evaluate is a config error."""
    rule = settings["rule"]
    if rule == "best_dev_loss":
        every, key = int(settings["eval_every"]), "eval_every"
    elif rule == "best_val_rouge":
        every, key = int(settings["every_epochs"]) * steps_per_epoch, "every_epochs"
    else:
        raise ValueError(f"training.selection rule {rule!r}: expected one of {', '.join(RULES)}")
    if every < 1 or every > total_steps:
        raise ValueError(
            f"training.selection {key} {settings[key]}: the run has {total_steps} optimizer steps "
            f"({steps_per_epoch} per epoch), so no evaluation would run; lower it or use rule final"
        )
    return every


def make_selection(
    settings: dict[str, Any] | None,
    *,
    method: TuningMethod,
    steps_per_epoch: int,
    total_steps: int,
    dev_path: Path | None,
    batch_loss: Callable[[list[Any]], torch.Tensor],
    encode: Callable[[list[Pair]], list[Any]],
    autocast: Callable[[], Any],
    tokenizer: PreTrainedTokenizerBase,
    decoding: dict[str, Any] | None,
    max_source: int,
    device: torch.device,
) -> Selection | None:
    """The run's selection (``spec.selection``; none or ``final``: no evaluation, the final parameters)."""
    from prefixtune.provenance import sha256_file

    if not settings or settings["rule"] == "final":
        return None
    every = every_steps(settings, steps_per_epoch, total_steps)
    if dev_path is None:
        raise ValueError(f"training.selection rule {settings['rule']}: the run needs a dev file (--dev)")
    inputs: dict[str, Any] = {"dev": str(dev_path), "dev_sha256": sha256_file(dev_path)}
    if settings["rule"] == "best_dev_loss":
        examples = encode(dev_pairs(dev_path))
        batch = int(settings["eval_batch_size"])
        inputs["dev_examples"] = len(examples)
        evaluate: Callable[[], float] = lambda: dev_loss(method, batch_loss, examples, batch, autocast)  # noqa: E731
        higher = False
    else:
        if decoding is None:
            raise ValueError(
                "training.selection rule best_val_rouge: the run needs its decoding settings (--decoding)"
            )
        items = read_jsonl(dev_path, EvalItem)[: int(settings["val_items"])]
        if not items:
            raise ValueError(f"{dev_path}: no validation items")
        inputs.update(dev_examples=len(items), decoding=decoding)
        evaluate = lambda: validation_rouge(method, tokenizer, items, decoding, max_source, device, settings)  # noqa: E731
        higher = True
    return Selection(settings["rule"], every, steps_per_epoch, evaluate, higher, dict(settings), inputs)
