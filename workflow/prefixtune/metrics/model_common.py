"""Shared plumbing of the model-based metrics (MoverScore, BERTScore, BLEURT): where a model comes from, which
device runs it, and the one error that means "this metric cannot run here" (scoring goes on without it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

T = TypeVar("T")
# The plain softmax attention the original scorers ran with (2019-2020 transformers); SDPA differs by ~1e-7,
# enough to move FastEMD's 1e-6 quantisation in MoverScore.
ATTENTION = "eager"
_PATH_PREFIXES = ("/", "./", "../", "~")


class MetricModelUnavailable(RuntimeError):
    """A metric's model or tokenizer cannot be loaded (no network, missing path, unconverted checkpoint)."""


def resolve_source(name: str) -> str:
    """A local directory (when it exists) or a hub id.

    A name written as a path (``/``, ``./``, ``../``, ``~``) that does not exist fails at once instead of being
    tried as a hub id (which costs about a minute of retries without a network).
    """
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if name.startswith(_PATH_PREFIXES) or path.exists():
        raise MetricModelUnavailable(f"{name}: no such model directory")
    return name


def load_or_unavailable(what: str, loader: Callable[[], T]) -> T:
    """Run a ``from_pretrained`` call; turn the ways it fails on a machine without the model into
    :class:`MetricModelUnavailable` (``what`` names the model in the message)."""
    try:
        return loader()
    except MetricModelUnavailable:
        raise
    except (
        OSError,
        ValueError,
        ImportError,
    ) as err:  # transformers/huggingface_hub report a missing model so
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MetricModelUnavailable(f"{what}: {first_line}") from err


def load_encoder(
    metric: str, model: str, revision: str | None, device: str | None
) -> tuple[PreTrainedTokenizerBase, PreTrainedModel, torch.device]:
    """Tokenizer and encoder (eager attention, eval mode, on ``device``) from a directory or hub id."""
    from transformers import AutoModel, AutoTokenizer

    source = resolve_source(model)
    tokenizer = load_or_unavailable(
        f"{metric} tokenizer {model}", lambda: AutoTokenizer.from_pretrained(source, revision=revision)
    )
    encoder = load_or_unavailable(
        f"{metric} model {model}",
        lambda: AutoModel.from_pretrained(source, revision=revision, attn_implementation=ATTENTION),
    )
    torch_device = pick_device(device)
    encoder.to(torch_device).eval()
    return tokenizer, encoder, torch_device


def describe(source: str, model: torch.nn.Module) -> str:
    """``source`` with the hub commit it resolved to, when it came from the hub."""
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    return f"{source}@{commit}" if commit and not Path(source).expanduser().is_dir() else source


def pick_device(device: str | None) -> torch.device:
    """``device`` as given; by default CUDA when available (as bert-score does), else the CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
