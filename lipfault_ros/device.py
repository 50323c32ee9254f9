"""Which torch device a setting names: one rule for training, inference and the benchmarks."""

from __future__ import annotations

import torch

from lipfault_ros.errors import ConfigError

__all__ = ['resolve_device']


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' -> cuda when available, else cpu; anything else is passed to torch.device."""
    if str(device) == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f'invalid device {device!r}: {exc}') from exc
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise ConfigError(f'device {device!r} requested but CUDA is not available')
    return dev
