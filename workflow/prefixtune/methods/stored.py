"""Saving only what a method trained: named tensors (safetensors) and the settings that shape them (JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


def save_trained(out_dir: Path, stem: str, tensors: dict[str, torch.Tensor], config: dict[str, Any]) -> None:
    """Write ``<stem>.safetensors`` and ``<stem>_config.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, out_dir / f"{stem}.safetensors")
    (out_dir / f"{stem}_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def load_trained(
    trained_dir: Path, stem: str, expected: dict[str, Any], device: torch.device | str
) -> dict[str, torch.Tensor]:
    """Tensors saved by ``save_trained``; refuses a folder trained with other settings."""
    config_path = trained_dir / f"{stem}_config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: missing; is {trained_dir} a run of this method?")
    config = json.loads(config_path.read_text())
    if config != json.loads(json.dumps(expected)):
        raise ValueError(f"{config_path}: {config} does not match the run's settings {expected}")
    return load_file(str(trained_dir / f"{stem}.safetensors"), device=str(device))
