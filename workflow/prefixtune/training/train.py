"""Train one run: a tuning method on one dataset's training pairs, resumable from checkpoints.

Optimisation follows the authors' code (official_code.md §4.1): transformers 3.2's AdamW (0.9, 0.999, eps 1e-8,
no weight decay; ``training/optimizer.py``; torch's AdamW by the switch ``optimizer``), linear decay to 0 over all
steps with no warmup, gradient clipping at 1.0, seeded shuffling. The loss is the
per-sequence sum of token NLL averaged over the batch for PREFIX (their ``objective_mode=1``) and the token mean for
the other methods; both are config switches (``loss``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import PreTrainedTokenizerBase

from prefixtune.data.linearize import gpt2_training_text
from prefixtune.data.records import Pair, read_jsonl
from prefixtune.methods import build_method
from prefixtune.methods.base import TuningMethod
from prefixtune.models.loading import is_seq2seq, load_causal_lm, load_seq2seq_lm, load_tokenizer, pick_device
from prefixtune.provenance import git_commit, package_versions, sha256_file, write_json_atomic
from prefixtune.training.attempts import (
    DEFAULT_LOCK_WAIT_S,
    AttemptLedger,
    attempt_log_path,
    run_lock,
    tee_stderr,
)
from prefixtune.training.optimizer import DEFAULT_RULE, build_optimizer
from prefixtune.training.schedule import planned_steps
from prefixtune.training.selection import Selection, make_selection
from prefixtune.training.seq2seq import (
    DEFAULT_MAX_SOURCE,
    DEFAULT_MAX_TARGET,
    Seq2SeqExample,
    collate_seq2seq,
    encode_seq2seq,
    seq2seq_loss,
)

log = logging.getLogger(__name__)
IGNORE = -100
CHECKPOINT = "checkpoint.pt"


class TimeBudgetExceeded(RuntimeError):
    """Raised after checkpointing when the job's time budget is nearly spent (or SLURM sent SIGTERM before
    preempting or killing the job); a retry resumes."""


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite: training stops at that step instead of writing a broken model."""


class CheckpointMismatchError(ValueError):
    """A checkpoint in the run's checkpoint folder was written by a run with other settings or data."""


def run_fingerprint(spec: dict[str, Any], train_sha256: str, base_model_dir: Path) -> str:
    """What a checkpoint must match to be resumed: the run's settings, its training data and base model."""
    config = base_model_dir / "config.json"
    payload = {
        "spec": spec,
        # the update rule even where the spec leaves it to the default: a checkpoint of the other rule is refused
        "optimizer": str(spec["hparams"].get("optimizer", DEFAULT_RULE)),
        "train_sha256": train_sha256,
        "base_model_config_sha256": sha256_file(config) if config.is_file() else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]


def encode_pair(pair: Pair, tokenizer: PreTrainedTokenizerBase, prepend: str = "") -> Example:
    """Tokens of the authors' training text; labels hide everything up to and including the first EOS."""
    text = gpt2_training_text(pair.source, pair.target)
    if prepend:
        text = " " + prepend + text
    ids = tokenizer.encode(text, add_special_tokens=False)
    eos = tokenizer.eos_token_id
    if eos not in ids:
        raise ValueError(f"training text has no {tokenizer.eos_token!r} separator: {text!r}")
    sep = ids.index(eos)
    labels = [IGNORE] * (sep + 1) + ids[sep + 1 :]
    return Example(ids, labels)


def check_lengths(examples: list[Example], max_tokens: int, path: Path) -> None:
    """Refuse texts longer than the LM's positions (minus the prefix) instead of failing deep inside torch."""
    for line, example in enumerate(examples, start=1):
        if len(example.input_ids) > max_tokens:
            raise ValueError(
                f"{path}:{line}: the training text is {len(example.input_ids)} tokens; the model takes at most "
                f"{max_tokens} (its n_positions minus the prefix length)"
            )


def collate(batch: list[Example], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right padding with ``[PAD]``; padded labels are ignored."""
    width = max(len(e.input_ids) for e in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    for row, example in enumerate(batch):
        input_ids[row, : len(example.input_ids)] = torch.tensor(example.input_ids)
        labels[row, : len(example.labels)] = torch.tensor(example.labels)
    return input_ids, labels


def lm_loss(logits: torch.Tensor, labels: torch.Tensor, mode: str) -> torch.Tensor:
    """``token_mean``: mean NLL over all target tokens of the batch (HF default).
    ``sequence_sum``: NLL summed per sequence, then averaged over the batch (authors' prefix objective)."""
    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    nll = F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1), reduction="none"
    ).view(shift_labels.shape)
    mask = shift_labels.ne(IGNORE)
    if mode == "token_mean":
        return (nll * mask).sum() / mask.sum().clamp(min=1)
    if mode == "sequence_sum":
        return (nll * mask).sum(dim=1).mean()
    raise ValueError(f"unknown loss mode {mode!r}; expected 'token_mean' or 'sequence_sum'")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


GROUP_BATCHES = 50  # length grouping sorts within windows of this many batches (as HF's LengthGroupedSampler)


def epoch_batches(
    n: int, batch_size: int, seed: int, epoch: int, lengths: list[int] | None = None
) -> list[list[int]]:
    """The shuffled batches of one epoch, a pure function of (seed, epoch) so a resumed job sees the same order.

    With ``lengths`` (``hparams.length_grouped``): the same shuffle, cut into windows of ``GROUP_BATCHES`` batches,
    each sorted by length (longest first) and cut into batches, whose order is then shuffled with the same seed:
    batches of similar lengths waste little padding, and the order is still fixed by the seed."""
    generator = torch.Generator().manual_seed(seed * 1000 + epoch)
    order = torch.randperm(n, generator=generator).tolist()
    if lengths is None:
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    window = batch_size * GROUP_BATCHES
    batches = []
    for start in range(0, n, window):
        chunk = sorted(order[start : start + window], key=lambda i: -lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


def padding_share(batches: list[list[int]], lengths: list[int]) -> float:
    """Share of the tokens in padded batches that are padding."""
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    real = sum(lengths[i] for b in batches for i in b)
    return 1 - real / padded if padded else 0.0


def linear_schedule(warmup: int, total: int) -> Any:  # noqa: ANN401
    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


class Trainer:
    """Owns the optimisation state of one run and its checkpoint."""

    def __init__(
        self,
        method: TuningMethod,
        examples: list[Any],
        hparams: dict,
        batch_loss: Callable[[list[Any]], torch.Tensor],
        ckpt_dir: Path,
    ):
        self.method, self.examples, self.hparams, self.batch_loss = method, examples, hparams, batch_loss
        self.ckpt_dir = ckpt_dir
        self.params = method.trainable_parameters()
        self.batch_size = int(hparams["batch_size"])
        self.grad_accum = int(hparams.get("gradient_accumulation_steps", 1))
        self.steps_per_epoch, self.epochs, self.total_steps = planned_steps(len(examples), hparams)
        self.optimizer_rule = str(hparams.get("optimizer", DEFAULT_RULE))
        self.optimizer = build_optimizer(
            self.optimizer_rule,
            self.params,
            lr=float(hparams["learning_rate"]),
            betas=(0.9, 0.999),
            eps=float(hparams.get("adam_epsilon", 1e-8)),
            weight_decay=float(hparams.get("weight_decay", 0.0)),
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, linear_schedule(int(hparams.get("warmup_steps", 0)), self.total_steps)
        )
        device = self.params[0].device if self.params else torch.device("cpu")
        self.precision = resolve_precision(hparams, device)
        # fp16 needs loss scaling (as apex O1 did); bf16 and fp32 do not
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")
        self.device_type = device.type
        self.lengths = [example_length(e) for e in examples] if hparams.get("length_grouped") else None
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.losses: list[float] = []
        self.fingerprint = ""  # set by train_run; stored in and checked against checkpoints
        self.selection: Selection | None = None  # set by train_run: best dev loss / validation ROUGE, or none
        self.stop_requested = False  # SIGTERM: checkpoint at the next step and exit for a retry
        self.on_checkpoint: Callable[[int], None] | None = None  # the attempt ledger's progress

    # -- checkpoints -------------------------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "params": [p.detach().cpu() for p in self.params],
            "optimizer": self.optimizer.state_dict(),
            "optimizer_rule": self.optimizer_rule,
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "losses": self.losses,
            "fingerprint": self.fingerprint,
            # the best parameters and score so far: a resumed run selects what an uninterrupted one does
            "selection": self.selection.state_dict() if self.selection else None,
            "rng": {
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
        }
        tmp = self.ckpt_dir / (CHECKPOINT + ".tmp")
        torch.save(state, tmp)
        tmp.replace(self.ckpt_dir / CHECKPOINT)
        log.info("checkpoint at step %d (epoch %d, batch %d)", self.step, self.epoch, self.batch_in_epoch)
        if self.on_checkpoint:
            self.on_checkpoint(self.step)

    def maybe_resume(self) -> bool:
        path = self.ckpt_dir / CHECKPOINT
        if not path.exists():
            return False
        state = torch.load(path, weights_only=False)
        if state.get("optimizer_rule", self.optimizer_rule) != self.optimizer_rule:
            raise CheckpointMismatchError(
                f"{path}: this checkpoint was trained with the optimizer {state['optimizer_rule']}, this run uses "
                f"{self.optimizer_rule}; delete the folder to start this run afresh"
            )
        if state.get("fingerprint") != self.fingerprint:
            raise CheckpointMismatchError(
                f"{path}: this checkpoint was written by a run with other settings, training data or base model "
                f"(fingerprint {str(state.get('fingerprint'))[:12]}, this run {self.fingerprint[:12]}); "
                "delete the folder to start this run afresh"
            )
        if len(state["params"]) != len(self.params):
            raise ValueError(
                f"{path}: checkpoint has {len(state['params'])} tensors, the run {len(self.params)}"
            )
        with torch.no_grad():
            for p, saved in zip(self.params, state["params"], strict=True):
                p.copy_(saved.to(p.device))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.losses = state["losses"]
        if self.selection and state.get("selection"):
            self.selection.load_state_dict(state["selection"])
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        log.info("resumed from %s at step %d", path, self.step)
        return True

    def _autocast(self) -> torch.autocast:
        return autocast_context(self.precision, self.device_type)

    # -- loop --------------------------------------------------------------------------------------------------
    def _batches(self) -> Iterator[tuple[int, list[int]]]:
        while self.epoch < self.epochs and self.step < self.total_steps:
            batches = epoch_batches(
                len(self.examples), self.batch_size, int(self.hparams["seed"]), self.epoch, self.lengths
            )
            while self.batch_in_epoch < len(batches):
                yield len(batches), batches[self.batch_in_epoch]
                self.batch_in_epoch += 1
            self.epoch += 1
            self.batch_in_epoch = 0

    def run(self, deadline: float, checkpoint_every: int) -> None:
        self.method.train()
        max_norm = float(self.hparams.get("max_grad_norm", 1.0))
        progress = tqdm(total=self.total_steps, initial=self.step, desc="train", mininterval=10)
        accumulated = 0
        for n_batches, indices in self._batches():
            with self._autocast():
                loss = self.batch_loss([self.examples[i] for i in indices])
            if not math.isfinite(value := loss.item()):  # before backward: no NaN reaches the weights
                raise NonFiniteLossError(
                    f"loss is {value} at optimizer step {self.step + 1}/{self.total_steps} (epoch {self.epoch + 1},"
                    f" batch {self.batch_in_epoch + 1}); lower the learning rate or check the data. No trained "
                    "model was written; the last periodic checkpoint (if any) is kept"
                )
            self.scaler.scale(loss / self.grad_accum).backward()
            accumulated += 1
            last_of_short_epoch = n_batches <= self.grad_accum and self.batch_in_epoch + 1 == n_batches
            if accumulated % self.grad_accum and not last_of_short_epoch:
                continue
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, max_norm)
            self.scaler.step(self.optimizer)  # skipped (fp16 only) when the scaled gradients overflowed
            self.scaler.update()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            accumulated = 0
            self.step += 1
            self.losses.append(round(value, 5))
            progress.update(1)
            if self.step % 50 == 0:
                log.info(
                    "step %d/%d loss %.4f lr %.3g",
                    self.step,
                    self.total_steps,
                    value,
                    self.scheduler.get_last_lr()[0],
                )
            # evaluate before this step's checkpoint, which keeps the best so far
            if self.selection and self.selection.due(self.step):
                self.selection.observe(self.step, self.params)
            out_of_time = _now() > deadline or self.stop_requested
            if (checkpoint_every and self.step % checkpoint_every == 0) or out_of_time:
                self.batch_in_epoch += 1  # this batch is done
                self.save_checkpoint()
                self.batch_in_epoch -= 1
                if out_of_time:
                    why = "SIGTERM received" if self.stop_requested else "time budget spent"
                    raise TimeBudgetExceeded(f"{why} at step {self.step}/{self.total_steps}")
            if self.step >= self.total_steps:
                break
        progress.close()


def example_length(example: Any) -> int:  # noqa: ANN401
    """Tokens a training example occupies in its padded batch (the longer side for seq2seq)."""
    if isinstance(example, Example):
        return len(example.input_ids)
    return len(example.source_ids) + len(example.target_ids)


def autocast_context(precision: str, device_type: str) -> torch.autocast:
    """Autocast for a resolved precision: bf16 or fp16 autocast, or none (fp32)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device_type, dtype=dtype or torch.float32, enabled=dtype is not None)


def resolve_precision(hparams: dict[str, Any], device: torch.device) -> str:
    """``hparams.precision`` on a GPU (fp32, bf16, fp16); always fp32 on the CPU. TF32 only when asked for."""
    wanted = str(hparams.get("precision", "fp32"))
    if wanted not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"hparams.precision {wanted!r}: expected fp32, bf16 or fp16")
    if device.type != "cuda":
        return "fp32"
    if wanted == "bf16" and not torch.cuda.is_bf16_supported():
        raise ValueError(
            f"hparams.precision bf16: {torch.cuda.get_device_name(0)} has no bf16; use fp16 or fp32"
        )
    allow_tf32 = bool(hparams.get("tf32", False))
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32
    return wanted


def causal_batch_loss(
    method: TuningMethod, pad_id: int, mode: str, device: torch.device
) -> Callable[[list[Example]], torch.Tensor]:
    def loss(batch: list[Example]) -> torch.Tensor:
        input_ids, labels = collate(batch, pad_id)
        logits, labels = method.training_logits(input_ids.to(device), labels.to(device))
        return lm_loss(logits, labels, mode)

    return loss


def seq2seq_batch_loss(
    method: TuningMethod, tokenizer: PreTrainedTokenizerBase, mode: str, device: torch.device
) -> Callable[[list[Seq2SeqExample]], torch.Tensor]:
    start = int(method.model.config.decoder_start_token_id)

    def loss(batch: list[Seq2SeqExample]) -> torch.Tensor:
        b = collate_seq2seq(batch, tokenizer.pad_token_id, start).to(device)
        logits = method.seq2seq_logits(b.input_ids, b.attention_mask, b.decoder_input_ids)
        return seq2seq_loss(logits, b.labels, mode)

    return loss


@contextmanager
def _stop_on_sigterm(trainer: Trainer) -> Iterator[None]:
    """SLURM sends SIGTERM before preempting a job or at its time limit: finish the step, checkpoint, exit."""

    def request_stop(signum: int, frame: object) -> None:
        log.warning("SIGTERM: checkpointing after this step")
        trainer.stop_requested = True

    try:
        previous = signal.signal(signal.SIGTERM, request_stop)
    except ValueError:  # not the main thread (e.g. called from a worker): no handler
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _now() -> float:
    """Monotonic clock for the time budget (a seam for tests)."""
    return time.monotonic()


def train_run(
    spec: dict[str, Any],
    train_path: Path,
    base_model_dir: Path,
    out_dir: Path,
    run_json: Path,
    checkpoint_dir: Path,
    time_budget_s: float | None = None,
    checkpoint_every: int = 0,
    dev_path: Path | None = None,
    decoding: dict[str, Any] | None = None,
    lock_wait_s: float = DEFAULT_LOCK_WAIT_S,
    log_path: Path | None = None,
) -> dict[str, Any]:
    """Train ``spec`` and write ``out_dir`` (trained weights only) and ``run_json``; returns the run record.

    ``spec.selection`` picks the parameters written (``training/selection.py``): the final ones, or the best dev
    loss / validation ROUGE on ``dev_path`` (XSUM: generated with ``decoding``, the run's decode settings).
    The trainer holds the checkpoint folder's lock and records this attempt in its ledger
    (``training/attempts.py``); with ``log_path`` (the job's log) this attempt's stderr is also kept in
    ``<log>.attempt<N>.log``."""
    started = time.time()
    with run_lock(checkpoint_dir, lock_wait_s):
        finished = _finished_while_waiting(spec, run_json, out_dir, started)
        if finished is not None:
            return finished
        device = pick_device()
        ledger = AttemptLedger(
            checkpoint_dir, torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
        )
        if log_path is not None and ledger.number == 1:  # a fresh run: earlier runs' attempt logs go
            for stale in log_path.parent.glob(f"{log_path.stem}.attempt*{log_path.suffix}"):
                stale.unlink()
        tee = tee_stderr(attempt_log_path(log_path, ledger.number)) if log_path is not None else nullcontext()
        with tee:
            log.info(
                "run %s, attempt %d: host %s, SLURM job %s, device %s",
                spec["run_id"],
                ledger.number,
                ledger.current["host"],
                ledger.current["slurm_job_id"] or "-",
                ledger.current["device"],
            )
            try:
                return _train_attempt(
                    spec,
                    train_path,
                    base_model_dir,
                    out_dir,
                    run_json,
                    checkpoint_dir,
                    time_budget_s,
                    checkpoint_every,
                    dev_path,
                    decoding,
                    ledger,
                )
            except TimeBudgetExceeded:
                ledger.end("stopped-75")
                raise
            except BaseException as err:
                ledger.end(f"failed: {type(err).__name__}")
                raise


def _finished_while_waiting(
    spec: dict[str, Any], run_json: Path, out_dir: Path, started: float
) -> dict[str, Any] | None:
    """The record of this run when another trainer (a crashed controller's orphan job, which held the lock we
    waited on) finished it after this process started: its outputs and its attempts stand, training again would
    only repeat its work. None when this process must train."""
    if not (run_json.is_file() and out_dir.is_dir()) or run_json.stat().st_mtime < started:
        return None
    record = json.loads(run_json.read_text(encoding="utf-8"))
    if record.get("spec") != json.loads(json.dumps(spec)):
        return None
    log.info(
        "run %s: finished by another trainer while this one waited for the lock; keeping its outputs",
        spec["run_id"],
    )
    return record


def _train_attempt(
    spec: dict[str, Any],
    train_path: Path,
    base_model_dir: Path,
    out_dir: Path,
    run_json: Path,
    checkpoint_dir: Path,
    time_budget_s: float | None,
    checkpoint_every: int,
    dev_path: Path | None,
    decoding: dict[str, Any] | None,
    ledger: AttemptLedger,
) -> dict[str, Any]:
    started = time.time()
    deadline = _now() + (time_budget_s if time_budget_s else float("inf"))
    hparams = spec["hparams"]
    seed = int(hparams["seed"])
    device = pick_device()
    seed_everything(seed)
    seq2seq = is_seq2seq(base_model_dir)
    tokenizer = load_tokenizer(base_model_dir)
    model = (load_seq2seq_lm if seq2seq else load_causal_lm)(base_model_dir, tokenizer, device)
    method = build_method(spec["method"], model, spec["method_settings"], tokenizer)
    pairs = read_jsonl(train_path, Pair)
    if not pairs:
        raise ValueError(f"{train_path}: no training pairs")
    loss_mode = spec["method_settings"]["loss"]
    examples: list[Any]
    if seq2seq:
        max_source = int(hparams.get("max_source_tokens", DEFAULT_MAX_SOURCE))
        max_target = int(hparams.get("max_target_tokens", DEFAULT_MAX_TARGET))
        examples = [encode_seq2seq(p, tokenizer, max_source, max_target) for p in pairs]
        batch_loss = seq2seq_batch_loss(method, tokenizer, loss_mode, device)
    else:
        examples = [encode_pair(p, tokenizer, method.text_prepended()) for p in pairs]
        check_lengths(examples, method.max_tokens(), train_path)
        batch_loss = causal_batch_loss(method, tokenizer.pad_token_id, loss_mode, device)
    method.initialize_for_training()
    trainer = Trainer(method, examples, hparams, batch_loss, checkpoint_dir)

    def encode_dev(dev: list[Pair]) -> list[Any]:
        if seq2seq:
            return [encode_seq2seq(p, tokenizer, max_source, max_target) for p in dev]
        encoded = [encode_pair(p, tokenizer, method.text_prepended()) for p in dev]
        check_lengths(encoded, method.max_tokens(), dev_path or train_path)
        return encoded

    trainer.selection = make_selection(
        spec.get("selection"),
        method=method,
        steps_per_epoch=trainer.steps_per_epoch,
        total_steps=trainer.total_steps,
        dev_path=dev_path,
        batch_loss=batch_loss,
        encode=encode_dev,
        autocast=trainer._autocast,
        tokenizer=tokenizer,
        decoding=decoding,
        max_source=int(hparams.get("max_source_tokens", DEFAULT_MAX_SOURCE)),
        device=device,
    )
    train_sha256 = sha256_file(train_path)
    # the dev file's hash and the validation decode settings are part of what a checkpoint must match
    selection_inputs = trainer.selection.inputs if trainer.selection else None
    fingerprinted = {**spec, "selection_inputs": selection_inputs} if selection_inputs else spec
    trainer.fingerprint = run_fingerprint(fingerprinted, train_sha256, base_model_dir)
    resumed = trainer.maybe_resume()
    ledger.progress(trainer.step)
    trainer.on_checkpoint = ledger.progress
    log.info(
        "run %s: %d pairs, %d steps, device %s", spec["run_id"], len(examples), trainer.total_steps, device
    )
    first_step, loop_started = trainer.step, time.monotonic()
    selection_seconds = trainer.selection.seconds if trainer.selection else 0.0
    with _stop_on_sigterm(trainer):
        trainer.run(deadline, checkpoint_every)
    # the step rate leaves out this job's evaluations (the forecast adds them by their own estimate)
    loop_seconds = time.monotonic() - loop_started
    if trainer.selection:
        loop_seconds -= trainer.selection.seconds - selection_seconds
        trainer.selection.apply_best(trainer.params)  # the selected parameters are what is saved and decoded
    steps_here = trainer.step - first_step

    tmp_dir = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    method.save(tmp_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp_dir.replace(out_dir)
    ledger.end("finished", trainer.step)
    record = {
        "run_id": spec["run_id"],
        "spec": spec,
        "parameters": method.parameter_counts(),
        "prefix_positions": method.positions_taken(),  # P (a word-initialised prefix: the word's tokens)
        "initialization": method.init_summary(),  # init from a word: the word, P and the fit's MSE
        "training": {
            "examples": len(examples),
            "steps": trainer.step,
            "steps_per_epoch": trainer.steps_per_epoch,
            "epochs": trainer.epochs,
            "final_loss": trainer.losses[-1] if trainer.losses else None,
            "loss_every_50_steps": trainer.losses[::50],
            "resumed_from_checkpoint": resumed,
            "optimizer": trainer.optimizer_rule,  # the update rule that ran (also in spec.hparams)
            # the step rate of this job (steps since start or resume): what compute forecasts scale from
            "seconds_per_step": round(loop_seconds / steps_here, 5) if steps_here else None,
        },
        # which parameters were written: the final ones, or the chosen step with its score and every evaluation
        "selection": trainer.selection.record()
        if trainer.selection
        else {"rule": "final", "chosen_step": trainer.step},
        "seeds": {"training": seed},
        "inputs": {
            "train": str(train_path),
            "train_sha256": train_sha256,
            "base_model": str(base_model_dir),
        },
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
        "precision": {
            "arithmetic": trainer.precision,
            "tf32": bool(device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32),
        },
        "versions": package_versions(),
        "git_commit": git_commit(),
        "wall_time_s": round(time.time() - started, 2),  # this attempt's
        # every attempt (time, steps, device, how it ended) and their summed wall time: the run's compute
        **ledger.summary(),
    }
    write_json_atomic(run_json, record)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return record
