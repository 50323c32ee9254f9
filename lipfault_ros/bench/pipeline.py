"""Live-pipeline benchmark and the synthetic sensor stream it (and the node tests) publish.

:func:`synthetic_samples` makes a jittered camera/wrench/joints stream, ROS-free: one hidden
phase drives all three modalities (a coloured blob circling in the image, sinusoidal wrench and
joints), so a model trained on it (see :func:`synthetic_tuples`) can tell a corrupted modality
from the others. :func:`run_pipeline_bench` publishes that stream from a separate process over
DDS into a pipeline node and reports latency percentiles (arrival of the last input of a tuple
to publication of its outputs), sustained tuples/s, dropped tuples, the share of worker time
spent in the model and the peak RSS. The ROS side lives in :mod:`lipfault_ros.ros.bench`.

:func:`bench_pipeline` is the ``pipeline`` section of ``lipfault bench``: that live run, with the
model forward of the same artifact on the same synthetic tuples timed right before and after it
in the same process (the baseline the overhead ratio divides by), and this process's RSS and
CPU sampled over the run; :func:`bench_pipeline_in_child` runs it in a fresh process, so that
memory other benchmarks left behind does not count as the node's.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lipfault_ros.sim.cell import JOINT_NAMES  # the arm's seven plus two finger joints, as the sim
from lipfault_ros.sync import SyncConfig, assemble
from lipfault_ros.tuples import (MODALITIES, ImageSample, JointSample, Sample, TupleArrays,
                                 WrenchSample)

__all__ = ['JOINT_NAMES', 'bench_pipeline', 'bench_pipeline_in_child', 'run_pipeline_bench',
           'synthetic_samples', 'synthetic_tuples', 'train_synthetic_model']

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


class _RssSampler:
    """Samples this process's RSS (MiB) every ``interval`` seconds from a daemon thread."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name='rss-sampler', daemon=True)

    def _run(self) -> None:
        from lipfault_ros.bench.model import rss_mb

        t0 = time.monotonic()
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - t0, rss_mb()))
            self._stop.wait(self.interval)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


def _artifact_forward(engine: Any, tuples: Sequence[Any]) -> tuple[list[float], list[float],
                                                                    int]:
    """Model forward (ms: the network call the engine makes for one tuple, on ready tensors)
    and ``Engine.infer`` (ms) on each tuple; bypassed count."""
    # the forward ``infer`` itself uses (compiled once the engine has switched), else eager
    forward_one = getattr(engine, '_forward_one', None)
    if forward_one is None:
        def forward_one(tensors: Any) -> Any:
            return engine._run(*tensors)
    s = engine.image_size
    forward, infer, bypassed = [], [], 0
    for t in tuples:
        t0 = time.perf_counter()
        r = engine.infer(t)
        infer.append((time.perf_counter() - t0) * 1e3)
        bypassed += bool(r.bypassed)
        image = engine._resize(t.image, s, s, engine._cv2.INTER_AREA)
        missing = np.array([[m in t.missing for m in MODALITIES]])
        tensors = engine._prepare(image[None], t.wrench[None], t.joints[None], missing)
        t0 = time.perf_counter()
        forward_one(tensors)
        forward.append((time.perf_counter() - t0) * 1e3)
    return forward, infer, bypassed


def bench_pipeline(model: Path, quick: bool, duration: float | None, device: str,
              threads: int, inference_thread: bool = False) -> dict[str, Any]:
    from lipfault_ros.bench.model import percentiles
    from lipfault_ros.inference import Engine

    duration = float(duration if duration is not None else (15.0 if quick else 120.0))
    warmup = 2.0 if quick else 5.0
    engine = Engine.from_artifact(model, device=device)
    config = SyncConfig(wrench_window=engine.wrench_window, joints_window=engine.joints_window)
    stream = synthetic_samples(4.0 if quick else 10.0, image_size=128, seed=7)
    tuples = [t for t in assemble((s for _, s in stream), config, engine.joint_names)
              if not t.missing]
    for t in tuples[:10]:
        engine.infer(t)
    fwd0, inf0, byp0 = _artifact_forward(engine, tuples)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.monotonic()
    with _RssSampler() as sampler:
        fig = run_pipeline_bench(model, duration, device=device, image_size=128,
                                 warmup_s=warmup, num_threads=threads,
                                 inference_thread=inference_thread)
    wall = time.monotonic() - wall0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    fwd1, inf1, byp1 = _artifact_forward(engine, tuples)
    cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    # RSS over the measured part (after start-up and warm-up): first vs last tenth
    steady = [r for t, r in sampler.samples if t >= wall - duration]
    k = max(1, len(steady) // 10)
    rss_start = float(np.median(steady[:k])) if steady else float('nan')
    rss_end = float(np.median(steady[-k:])) if steady else float('nan')
    forward = percentiles(fwd0 + fwd1)
    out = dict(fig)
    out.update({
        'model': str(model), 'model_image_size': engine.image_size, 'input_image_size': 128,
        'inference_thread': bool(inference_thread),
        'node_cpu_percent': 100.0 * cpu_s / wall if wall else float('nan'),
        'rss_sampled_max_mb': max((r for _, r in sampler.samples), default=float('nan')),
        'rss_start_mb': rss_start, 'rss_end_mb': rss_end,
        'rss_growth_mb': rss_end - rss_start,
        'model_forward_ms': forward,
        'model_forward_before_ms': percentiles(fwd0), 'model_forward_after_ms': percentiles(fwd1),
        'engine_infer_ms': percentiles(inf0 + inf1),
        'baseline_tuples': 2 * len(tuples),
        'bypass_fraction': (byp0 + byp1) / (2 * len(tuples)) if tuples else float('nan'),
        'overhead_ratio': fig['latency_p50_ms'] / forward['p50'] if forward['p50'] else
        float('nan'),
    })
    return out


def bench_pipeline_in_child(model: Path, quick: bool, duration: float | None, device: str,
                    threads: int, tmp: Path, inference_thread: bool = False) -> dict[str, Any]:
    """:func:`bench_pipeline` in a child ``lipfault bench --only pipeline``, so that the memory the
    other benchmarks left in this process does not count as the node's."""
    import subprocess

    out = tmp / 'pipeline.json'
    cmd = [sys.executable, '-m', 'lipfault_ros.cli', 'bench', '--only', 'pipeline', '--model',
           str(model), '--device', device, '--threads', str(threads), '--json', str(out)]
    if quick:
        cmd.append('--quick')
    if inference_thread:
        cmd.append('--inference-thread')
    if duration is not None:
        cmd += ['--duration', str(duration)]
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if not out.is_file():
        raise RuntimeError(f'pipeline benchmark process failed (exit {proc.returncode}): '
                           f'{proc.stderr[-1500:]}')
    doc = json.loads(out.read_text())
    if 'pipeline' not in doc:
        raise RuntimeError(f'pipeline benchmark failed: {doc.get("errors", {}).get("pipeline")}')
    return doc['pipeline']
