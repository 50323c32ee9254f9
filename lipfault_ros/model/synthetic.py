"""Synthetic, structured multimodal tuples for tests, examples and smoke runs.

One hidden phase drives all three modalities, so each can be predicted from the others, like a
robot whose camera, wrist wrench and joints all follow one motion: a coloured blob circles over a
shaded background, the wrench and joints are sinusoids of the same phase plus a little noise.
"""

from __future__ import annotations

import numpy as np

from lipfault_ros.model.config import PANDA_JOINTS
from lipfault_ros.tuples import TupleArrays

__all__ = ['synthetic_arrays', 'trained_tiny_artifact']


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


_TRAINED: dict[tuple, object] = {}


def trained_tiny_artifact(*, seed: int = 0, n_train: int = 400, n_val: int = 160):
    """Train (once per process) a tiny model on synthetic tuples; return its TrainResult.

    The artifact lives in a temporary directory removed at interpreter exit. It serves tests and
    examples that need a working model without a robot or a bag.
    """
    import atexit
    import shutil
    import tempfile
    from pathlib import Path

    from lipfault_ros.model.config import ModelConfig
    from lipfault_ros.training import TrainConfig, fit

    key = (seed, n_train, n_val)
    if key not in _TRAINED:
        root = Path(tempfile.mkdtemp(prefix='lipfault-tiny-'))
        atexit.register(shutil.rmtree, root, True)
        mcfg = ModelConfig.tiny()
        train = synthetic_arrays(n_train, image_size=mcfg.image_size,
                                 window=mcfg.wrench_window, seed=seed + 1)
        val = synthetic_arrays(n_val, image_size=mcfg.image_size, window=mcfg.wrench_window,
                               seed=seed + 2)
        _TRAINED[key] = fit(train, val, TrainConfig.tiny(seed=seed), mcfg,
                            out=root / 'artifact', progress=False)
    return _TRAINED[key]
