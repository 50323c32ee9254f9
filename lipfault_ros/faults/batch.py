"""Faults on a model-ready torch batch of one modality, one kind per sample, through the same
per-frame and per-window faults as everything else."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from lipfault_ros.errors import InputError
from lipfault_ros.faults.images import corrupt_image
from lipfault_ros.faults.signals import corrupt_window
from lipfault_ros.tuples import Modality

if TYPE_CHECKING:  # torch is only needed by corrupt_batch; `lipfault faults` stays light
    import torch

__all__ = ['corrupt_batch']


def corrupt_batch(modality: Modality | str, x: torch.Tensor, kinds: Sequence[str],
                  severity: float | torch.Tensor | Sequence[float],
                  generator: np.random.Generator, *,
                  onsets: Sequence[int] | None = None) -> torch.Tensor:
    """Return a corrupted copy of a model-ready batch, sample ``i`` with fault ``kinds[i]``.

    Layouts: camera (B, 3, H, W) float in [0, 1]; wrench (B, 6, T) and joints (B, C, T)
    normalised (scale 1). An empty kind (or ``'none'``) leaves that sample clean. ``severity`` is
    one float or one per sample. Signal faults start at ``onsets[i]`` (default: random in the
    first three quarters of the window, so the fault is present at the window's end, the tuple
    stamp). ``frozen_frame`` repeats the previous sample of the batch (a stale frame).
    """
    import torch

    modality = Modality(modality)
    if x.ndim not in (3, 4) or x.shape[0] != len(kinds):
        raise InputError(f'corrupt_batch: batch of shape {tuple(x.shape)} with {len(kinds)} kinds')
    b = x.shape[0]
    sev = np.broadcast_to(np.asarray(
        severity.detach().cpu().numpy() if isinstance(severity, torch.Tensor) else severity,
        np.float64), (b,))
    out = x.detach().clone()
    if modality is Modality.CAMERA:
        if x.ndim != 4 or x.shape[1] != 3:
            raise InputError(f'camera batch must be (B, 3, H, W), got {tuple(x.shape)}')
        frames = None
        for i, kind in enumerate(kinds):
            if not kind or kind == 'none':
                continue
            if frames is None:
                frames = (x.detach().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255.0
                          ).round().astype(np.uint8)
            prev = frames[(i - 1) % b] if b > 1 else None
            img = corrupt_image(frames[i], kind, float(sev[i]), generator, previous=prev)
            out[i] = torch.from_numpy(img.astype(np.float32) / 255.0).permute(2, 0, 1).to(out)
        return out
    if x.ndim != 3:
        raise InputError(f'{modality.value} batch must be (B, C, T), got {tuple(x.shape)}')
    t_len = x.shape[2]
    data = None
    for i, kind in enumerate(kinds):
        if not kind or kind == 'none':
            continue
        if data is None:
            data = x.detach().cpu().numpy()
        onset = int(onsets[i]) if onsets is not None else \
            int(generator.integers(0, max(1, (3 * t_len) // 4)))
        window, _ = corrupt_window(data[i].T, kind, float(sev[i]), generator, onset=onset)
        out[i] = torch.from_numpy(np.ascontiguousarray(window.T)).to(out)
    return out
