"""Live-pipeline benchmark and the synthetic sensor stream it (and the node tests) publish.

:func:`synthetic_samples` makes a jittered camera/wrench/joints stream, ROS-free: one hidden
phase drives all three modalities (a coloured blob circling in the image, sinusoidal wrench and
joints), so a model trained on it (see :func:`synthetic_tuples`) can tell a corrupted modality
from the others. :func:`run_pipeline_bench` publishes that stream from a separate process over
DDS into a pipeline node and reports latency percentiles (arrival of the last input of a tuple
to publication of its outputs), sustained tuples/s, dropped tuples, the share of worker time
spent in the model and the peak RSS. The ROS side lives in :mod:`lipfault_ros.ros.bench`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lipfault_ros.sync import SyncConfig, assemble
from lipfault_ros.tuples import (ImageSample, JointSample, Sample, TupleArrays, WrenchSample)

__all__ = ['JOINT_NAMES', 'run_pipeline_bench', 'synthetic_samples', 'synthetic_tuples',
           'train_synthetic_model']

#: Joint names the synthetic stream publishes (the arm's seven plus two finger joints).
JOINT_NAMES: tuple[str, ...] = tuple(f'panda_joint{i}' for i in range(1, 8)) + (
    'panda_finger_joint1', 'panda_finger_joint2')
_OMEGA = 2 * np.pi * 0.37  # rad/s of the hidden phase


def _image(t: float, size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = np.stack([0.3 + 0.3 * xx, 0.3 + 0.2 * yy, 0.5 - 0.2 * xx], -1)
    cx, cy = 0.5 + 0.28 * np.cos(_OMEGA * t), 0.5 + 0.28 * np.sin(_OMEGA * t)
    blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 0.08 ** 2))[..., None]
    img = base * (1 - blob) + np.array([0.95, 0.2, 0.1]) * blob
    img += rng.normal(0, 0.02, img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def wrench_at(t: float) -> np.ndarray:
    """The clean synthetic wrench (6,) at time ``t`` (s)."""
    ph = _OMEGA * t
    return np.array([(5.0 + c) * np.sin(ph * (1 + c % 2) + c) + 2.0 * c for c in range(6)])


def joints_at(t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The clean synthetic joint position, velocity and effort (9,) at time ``t`` (s)."""
    ph = _OMEGA * t
    k = np.arange(len(JOINT_NAMES))
    return (0.5 * np.sin(ph + 0.4 * k), 0.5 * _OMEGA * np.cos(ph + 0.4 * k),
            3.0 * np.sin(2 * ph + 0.3 * k) + k)


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
                sample: Sample = ImageSample(stamp, 'sim_camera', _image(t, image_size, rng))
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


def train_synthetic_model(out: Path, *, seconds: float = 6.0, epochs: int = 2,
                          seed: int = 0) -> Path:
    """Train the tiny model preset on ``seconds`` of the synthetic stream into ``out`` (a few
    seconds on one CPU core): a stand-in artifact for tests and smoke runs of the live path.
    Returns ``out``; an existing artifact there is reused."""
    from lipfault_ros.model.config import ModelConfig
    from lipfault_ros.training import TrainConfig, fit

    out = Path(out)
    if (out / 'config.json').is_file():
        return out
    train = synthetic_tuples(seconds, seed=seed)
    val = synthetic_tuples(max(seconds / 2, 2.0), seed=seed + 1, start_ns=500 * 10**9)
    fit(train, val, TrainConfig.tiny(stage1_epochs=epochs, stage2_epochs=epochs, seed=seed),
        ModelConfig.tiny(), out=out, progress=False)
    return out


def run_pipeline_bench(model: Path, duration_s: float, *, device: str = 'auto',
                       image_size: int = 128, half: bool = False, warmup_s: float = 2.0,
                       num_threads: int = 0, inference_thread: bool = False) -> dict[str, Any]:
    """Publish the synthetic stream (30/500/250 Hz, ``image_size`` square images) from a separate
    process into a pipeline node running ``model`` for ``duration_s`` seconds (after
    ``warmup_s``), and return the figures: ``latency_p50_ms``, ``latency_p99_ms``,
    ``latency_max_ms`` (arrival of a tuple's last input to publication), ``tuples_per_s``,
    ``camera_frames``, ``tuples_out``, ``dropped``, ``model_fraction``, ``rss_mb``.

    Needs rclpy (the ROS side is :mod:`lipfault_ros.ros.bench`); the caller sets
    ``ROS_DOMAIN_ID``/``ROS_AUTOMATIC_DISCOVERY_RANGE``.
    """
    runner = importlib.import_module('lipfault_ros.ros.bench')
    return runner.run(Path(model), float(duration_s), device=device, image_size=image_size,
                      half=half, warmup_s=warmup_s, num_threads=num_threads,
                      inference_thread=inference_thread)
