"""Checkpoints: atomic writes, loads that execute no code (``weights_only=True``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from lipfault_ros.errors import LipfaultError

__all__ = ['CHECKPOINT_FILE', 'load_checkpoint', 'save_checkpoint']

CHECKPOINT_FILE = 'last.pt'


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Atomic: write a temp file beside ``path`` and rename it over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp-{os.getpid()}')
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f'no checkpoint at {path} to resume from')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # a corrupt file: name it
        raise LipfaultError(f'checkpoint {path} cannot be loaded: {exc}') from exc
