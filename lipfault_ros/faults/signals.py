"""Force/torque and joint-state faults on one (T, C) history window: :func:`corrupt_window`, and
the channel, gain and scale draws it shares with the stream injector
(:class:`~lipfault_ros.faults.streams.StreamFault`)."""

from __future__ import annotations

import math

import numpy as np

from lipfault_ros.errors import InputError
from lipfault_ros.faults.registry import SignalFault, check_fault, check_severity
from lipfault_ros.tuples import Modality

__all__ = ['corrupt_window', 'random_channels', 'random_gain', 'scale_vector']


def random_channels(rng: np.random.Generator, c: int) -> np.ndarray:
    """A random non-empty subset of channel indices."""
    return np.sort(rng.choice(c, int(rng.integers(1, c + 1)), replace=False))


def random_gain(rng: np.random.Generator, s: float) -> float:
    up = 1.0 + 0.3 + 1.2 * s
    return up if rng.random() < 0.5 else 1.0 / up


def scale_vector(scale: np.ndarray | float, c: int) -> np.ndarray:
    sc = np.asarray(scale, np.float64)
    if sc.ndim == 0:
        return np.full(c, float(sc))
    if sc.shape != (c,):
        raise InputError(f'scale has shape {sc.shape}, expected ({c},) or a scalar')
    return sc


def corrupt_window(window: np.ndarray, kind: str, severity: float, rng: np.random.Generator, *,
                   onset: int = 0, scale: np.ndarray | float = 1.0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt a (T, C) signal window from sample ``onset`` on.

    Returns ``(corrupted, mask)``: the corrupted copy (same dtype and shape) and a (T,) bool mask
    of the samples the fault touched (from ``onset`` on for lasting faults; only the hit samples
    for ``spike`` and ``dropout``). ``scale`` is the per-channel signal scale, shape (C,) or a
    scalar (1.0 for normalised data); offsets, noise and spikes are multiples of it.
    """
    kind = SignalFault(check_fault(Modality.WRENCH, kind))
    s = check_severity(severity)
    window = np.asarray(window)
    if window.ndim != 2 or window.shape[0] == 0 or window.shape[1] == 0:
        raise InputError(f'corrupt_window expects a non-empty (T, C) array, got {window.shape}')
    t_len, c = window.shape
    onset = int(onset)
    if not 0 <= onset < t_len:
        raise InputError(f'onset {onset} outside the window of {t_len} samples')
    sc = scale_vector(scale, c)
    x = window.astype(np.float64)
    seg = slice(onset, t_len)
    n = t_len - onset
    mask = np.zeros(t_len, bool)
    mask[seg] = True

    if kind is SignalFault.NOISE:
        x[seg] += rng.normal(0.0, 1.0, (n, c)) * (1.5 * s) * sc
    elif kind is SignalFault.BIAS:
        ch = random_channels(rng, c)
        x[seg, ch] += rng.choice([-1.0, 1.0], ch.size) * (0.5 + 2.5 * s) * sc[ch]
    elif kind is SignalFault.DRIFT:
        ch = random_channels(rng, c)
        ramp = np.arange(1, n + 1) / n * (1.0 + 3.0 * s)
        x[seg, ch] += ramp[:, None] * rng.choice([-1.0, 1.0], ch.size) * sc[ch]
    elif kind is SignalFault.SPIKE:
        k = max(1, int(round((0.05 + 0.15 * s) * n)))
        pos = onset + rng.choice(n, k, replace=False)
        ch = rng.integers(0, c, k)
        x[pos, ch] += rng.choice([-1.0, 1.0], k) * (3.0 + 7.0 * s) * sc[ch]
        mask[:] = False
        mask[pos] = True
    elif kind is SignalFault.GAIN:
        ch = random_channels(rng, c)
        x[seg, ch] *= random_gain(rng, s)
    elif kind is SignalFault.STUCK:
        ch = np.sort(rng.choice(c, max(1, math.ceil(s * c)), replace=False))
        held = x[max(onset - 1, 0), ch].copy()
        x[seg, ch] = held
    elif kind is SignalFault.SATURATION:
        lo, hi = x[seg].min(axis=0), x[seg].max(axis=0)
        cut = (0.1 + 0.35 * s) * (hi - lo)
        x[seg] = np.clip(x[seg], lo + cut, hi - cut)
    elif kind is SignalFault.DROPOUT:
        drop = rng.random(n) < 0.3 + 0.7 * s
        if not drop.any():
            drop[int(rng.integers(0, n))] = True
        pos = onset + np.flatnonzero(drop)
        x[pos] = 0.0
        mask[:] = False
        mask[pos] = True
    elif kind is SignalFault.SIGN_FLIP:
        ch = random_channels(rng, c)
        x[seg, ch] *= -1.0
    else:  # CUTOUT
        length = max(1, int(round((0.2 + 0.8 * s) * n)))
        x[onset:onset + length] = 0.0
        mask[:] = False
        mask[onset:onset + length] = True
    return x.astype(window.dtype, copy=False), mask
