"""Synthetic, structured multimodal tuples for tests, examples and smoke runs.

One hidden phase drives all three modalities, so each can be predicted from the others, like a
robot whose camera, wrist wrench and joints all follow one motion: a coloured blob circles over a
shaded background, the wrench and joints are sinusoids of the same phase plus a little noise.
"""

from __future__ import annotations

import numpy as np

from lipfault_ros.model.config import PANDA_JOINTS
from lipfault_ros.tuples import TupleArrays

__all__ = ['synthetic_arrays']


def synthetic_arrays(n: int, *, image_size: int = 32, window: int = 16,
                     joint_names: tuple[str, ...] = PANDA_JOINTS, seed: int = 0,
                     rate_hz: float = 10.0, sample_hz: float = 100.0,
                     noise: float = 0.02) -> TupleArrays:
    """``n`` tuples, one every 1/rate_hz s; windows hold ``window`` samples at ``sample_hz``.

    Stamps are int nanoseconds from 0. Wrench is in N/Nm-like units (not normalised).
    """
    rng = np.random.default_rng(seed)
    j = len(joint_names)
    omega = 2 * np.pi * 0.37  # rad/s, slow enough that consecutive tuples are close
    t = np.arange(n) / rate_hz + rng.uniform(0, 100)
    stamps = (np.arange(n) * (1e9 / rate_hz)).astype(np.int64)
    tau = t[:, None] - (window - 1 - np.arange(window))[None, :] / sample_hz  # (N, T)
    phase = omega * tau
    wrench = np.stack([(5.0 + c) * np.sin(phase * (1 + c % 2) + c) + 2.0 * c for c in range(6)],
                      axis=-1)
    wrench += rng.normal(0, noise * 5, wrench.shape)
    pos = np.stack([0.5 * np.sin(phase + 0.4 * k) for k in range(j)], -1)
    vel = np.stack([0.5 * omega * np.cos(phase + 0.4 * k) for k in range(j)], -1)
    eff = np.stack([3.0 * np.sin(2 * phase + 0.3 * k) + k for k in range(j)], -1)
    joints = np.stack([pos, vel, eff], -1)
    joints += rng.normal(0, noise, joints.shape) * np.array([0.5, 0.5, 3.0])
    s = image_size
    yy, xx = np.mgrid[0:s, 0:s] / s
    base = np.stack([0.3 + 0.3 * xx, 0.3 + 0.2 * yy, 0.5 - 0.2 * xx], -1)
    cx = 0.5 + 0.28 * np.cos(omega * t)
    cy = 0.5 + 0.28 * np.sin(omega * t)
    d2 = (xx[None] - cx[:, None, None]) ** 2 + (yy[None] - cy[:, None, None]) ** 2
    blob = np.exp(-d2 / (2 * 0.08 ** 2))[..., None]
    colour = np.array([0.95, 0.2, 0.1])
    images = base[None] * (1 - blob) + colour * blob
    images += rng.normal(0, noise, images.shape)
    images = (np.clip(images, 0, 1) * 255).round().astype(np.uint8)
    missing = np.zeros((n, 3), bool)
    return TupleArrays(stamps, images, wrench.astype(np.float32), joints.astype(np.float32),
                       tuple(joint_names), missing)
