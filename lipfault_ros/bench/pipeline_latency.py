"""Live-pipeline benchmark.

:func:`run_pipeline_bench` publishes the synthetic sensor stream
(:func:`lipfault_ros.synthetic.synthetic_samples`) from a separate process over DDS into a
pipeline node and reports latency percentiles (arrival of the last input of a tuple to
publication of its outputs), sustained tuples/s, dropped tuples, the share of worker time spent
in the model and the peak RSS. Its ROS side lives in :mod:`lipfault_ros.ros.pipeline_bench`.

:func:`bench_pipeline` is the ``pipeline`` section of ``lipfault bench``: that live run, with the
model forward of the same artifact on the same synthetic tuples timed right before and after it
in the same process (the baseline the overhead ratio divides by), and this process's RSS and
CPU sampled over the run; :func:`bench_pipeline_in_child` runs it in a fresh process, so that
memory other benchmarks left behind does not count as the node's.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lipfault_ros.sync import SyncConfig, assemble
from lipfault_ros.synthetic import synthetic_samples

__all__ = ['bench_pipeline', 'bench_pipeline_in_child', 'run_pipeline_bench']

def run_pipeline_bench(model: Path, duration_s: float, *, device: str = 'auto',
                       image_size: int = 128, half: bool = False, warmup_s: float = 2.0,
                       num_threads: int = 0, inference_thread: bool = False) -> dict[str, Any]:
    """Publish the synthetic stream (30/500/250 Hz, ``image_size`` square images) from a separate
    process into a pipeline node running ``model`` for ``duration_s`` seconds (after
    ``warmup_s``), and return the figures: ``latency_p50_ms``, ``latency_p99_ms``,
    ``latency_max_ms`` (arrival of a tuple's last input to publication), ``tuples_per_s``,
    ``camera_frames``, ``tuples_out``, ``dropped``, ``model_fraction``, ``rss_mb``.

    Needs rclpy (the ROS side is :mod:`lipfault_ros.ros.pipeline_bench`); the caller sets
    ``ROS_DOMAIN_ID``/``ROS_AUTOMATIC_DISCOVERY_RANGE``.
    """
    from lipfault_ros.ros import pipeline_bench as runner
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
        from lipfault_ros.bench.model_latency import rss_mb

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
    forward, infer, bypassed = [], [], 0
    for t in tuples:
        t0 = time.perf_counter()
        r = engine.infer(t)
        infer.append((time.perf_counter() - t0) * 1e3)
        bypassed += bool(r.bypassed)
        tensors = engine.model_inputs(t)
        t0 = time.perf_counter()
        engine.forward_one(tensors)
        forward.append((time.perf_counter() - t0) * 1e3)
    return forward, infer, bypassed


def bench_pipeline(model: Path, quick: bool, duration: float | None, device: str,
              threads: int, inference_thread: bool = False) -> dict[str, Any]:
    from lipfault_ros.bench.model_latency import percentiles
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
