"""Synthetic, structured sensor data for tests, benchmarks, examples and smoke runs (ROS-free).

One hidden phase drives all three modalities, so each can be predicted from the others, like a
robot whose camera, wrist wrench and joints all follow one motion: a coloured blob circles over a
shaded background, the wrench and joints are sinusoids of the same phase plus a little noise.
Two forms of the same signals: :func:`synthetic_arrays` gives stacked tuples directly (for
training and model tests); :func:`synthetic_samples` gives the timed message stream a robot would
publish (for the synchroniser, the node and the benchmarks), and :func:`synthetic_tuples` that
stream synchronised.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lipfault_ros.model.config import PANDA_JOINTS
from lipfault_ros.sim.cell import JOINT_NAMES
from lipfault_ros.sync import SyncConfig, assemble
from lipfault_ros.tuples import ImageSample, JointSample, Sample, TupleArrays, WrenchSample

__all__ = ['JOINT_NAMES', 'joints_at', 'synthetic_arrays', 'synthetic_samples',
           'synthetic_tuples', 'wrench_at']

#: rad/s of the hidden phase: slow enough that consecutive tuples are close
_OMEGA = 2 * np.pi * 0.37
_BLOB_COLOUR = np.array([0.95, 0.2, 0.1])


def wrench_at(t: np.ndarray | float) -> np.ndarray:
    """The clean wrench at time(s) ``t`` (s): shape ``t.shape + (6,)``."""
    phase = _OMEGA * np.asarray(t, np.float64)
    return np.stack([(5.0 + c) * np.sin(phase * (1 + c % 2) + c) + 2.0 * c for c in range(6)],
                    axis=-1)


def joints_at(t: np.ndarray | float, n_joints: int = len(JOINT_NAMES)
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The clean joint position, velocity and effort at time(s) ``t`` (s), each
    ``t.shape + (n_joints,)``."""
    phase = _OMEGA * np.asarray(t, np.float64)
    pos = np.stack([0.5 * np.sin(phase + 0.4 * k) for k in range(n_joints)], -1)
    vel = np.stack([0.5 * _OMEGA * np.cos(phase + 0.4 * k) for k in range(n_joints)], -1)
    eff = np.stack([3.0 * np.sin(2 * phase + 0.3 * k) + k for k in range(n_joints)], -1)
    return pos, vel, eff


def _clean_images(t: np.ndarray, size: int) -> np.ndarray:
    """(N, size, size, 3) float images in [0, 1] before noise: the blob where the phase puts it."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = np.stack([0.3 + 0.3 * xx, 0.3 + 0.2 * yy, 0.5 - 0.2 * xx], -1)
    cx = 0.5 + 0.28 * np.cos(_OMEGA * t)
    cy = 0.5 + 0.28 * np.sin(_OMEGA * t)
    d2 = (xx[None] - cx[:, None, None]) ** 2 + (yy[None] - cy[:, None, None]) ** 2
    blob = np.exp(-d2 / (2 * 0.08 ** 2))[..., None]
    return base[None] * (1 - blob) + _BLOB_COLOUR * blob


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return (np.clip(images, 0, 1) * 255).round().astype(np.uint8)


def synthetic_arrays(n: int, *, image_size: int = 32, window: int = 16,
                     joint_names: tuple[str, ...] = PANDA_JOINTS, seed: int = 0,
                     rate_hz: float = 10.0, sample_hz: float = 100.0,
                     noise: float = 0.02) -> TupleArrays:
    """``n`` tuples, one every 1/rate_hz s; windows hold ``window`` samples at ``sample_hz``.

    Stamps are int nanoseconds from 0. Wrench is in N/Nm-like units (not normalised).
    """
    rng = np.random.default_rng(seed)
    j = len(joint_names)
    t = np.arange(n) / rate_hz + rng.uniform(0, 100)
    stamps = (np.arange(n) * (1e9 / rate_hz)).astype(np.int64)
    tau = t[:, None] - (window - 1 - np.arange(window))[None, :] / sample_hz  # (N, T)
    wrench = wrench_at(tau)
    wrench += rng.normal(0, noise * 5, wrench.shape)
    joints = np.stack(joints_at(tau, j), -1)
    joints += rng.normal(0, noise, joints.shape) * np.array([0.5, 0.5, 3.0])
    images = _clean_images(t, image_size)
    images += rng.normal(0, noise, images.shape)
    missing = np.zeros((n, 3), bool)
    return TupleArrays(stamps, _to_uint8(images), wrench.astype(np.float32),
                       joints.astype(np.float32), tuple(joint_names), missing)


def synthetic_samples(duration_s: float, *, start_ns: int = 1_000_000_000, seed: int = 0,
                      image_size: int = 32, rates: Sequence[float] = (30.0, 500.0, 250.0),
                      jitter_s: float = 2e-4, latency_s: Sequence[float] = (0.004, 0.0005, 0.001)
                      ) -> list[tuple[int, Sample]]:
    """``(arrival offset ns, sample)`` pairs in arrival order for ``duration_s`` seconds.

    Header stamps are ``start_ns`` + nominal time + Gaussian jitter (int ns); arrivals add a
    per-stream latency. Phase time is absolute (``start_ns`` in s), so separate calls continue
    the same motion.
    """
    rng = np.random.default_rng(seed)
    events: list[tuple[int, int, Sample]] = []
    for kind, (rate, lat) in enumerate(zip(rates, latency_s)):
        n = int(duration_s * rate)
        rel = np.arange(n) / rate + rng.normal(0, jitter_s, n)
        rel = np.maximum.accumulate(np.maximum(rel, 0.0))
        for r in rel:
            stamp = start_ns + int(round(r * 1e9))
            t = stamp / 1e9
            if kind == 0:
                image = _clean_images(np.array([t]), image_size)[0]
                image += rng.normal(0, 0.02, image.shape)
                sample: Sample = ImageSample(stamp, 'sim_camera', _to_uint8(image))
            elif kind == 1:
                sample = WrenchSample(stamp, 'panda_hand', wrench_at(t) + rng.normal(0, 0.1, 6))
            else:
                p, v, e = joints_at(t)
                noise = rng.normal(0, 0.01, (3, len(JOINT_NAMES)))
                sample = JointSample(stamp, 'panda_link0', JOINT_NAMES, p + noise[0],
                                     v + noise[1], e + 3 * noise[2])
            events.append((int(round((r + lat) * 1e9)), kind, sample))
    events.sort(key=lambda e: (e[0], e[1]))
    return [(a, s) for a, _, s in events]


def synthetic_tuples(duration_s: float, *, seed: int = 0, image_size: int = 32,
                     wrench_window: int = 16, joints_window: int = 16,
                     joint_names: Sequence[str] = JOINT_NAMES[:7],
                     start_ns: int = 1_000_000_000) -> TupleArrays:
    """The synthetic stream synchronised into stacked tuples (for training small models)."""
    config = SyncConfig(wrench_window=wrench_window, joints_window=joints_window)
    stream = synthetic_samples(duration_s, start_ns=start_ns, seed=seed, image_size=image_size)
    tuples = list(assemble((s for _, s in stream), config, joint_names))
    return TupleArrays.from_tuples(tuples)
