"""Synchroniser throughput, offline: messages/s through :func:`~lipfault_ros.sync.assemble`.

The stream is ``duration_s`` seconds of jittered 30/500/250 Hz camera/wrench/joints samples in
arrival order (header stamps jittered, per-stream arrival latencies), as a live node or a bag
reader delivers them. The figure counts every message pushed (not tuples) per second, and checks
the result is exactly one tuple per camera frame. Each pass is timed on the wall clock and on the
process CPU clock: the wall rate is what this machine gave at its current load, the CPU rate is
what the synchroniser costs (the two agree on an idle machine). A bare loop over the same samples
is timed in every pass as the floor.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from lipfault_ros.synthetic import JOINT_NAMES, synthetic_samples
from lipfault_ros.sync import SyncConfig, assemble
from lipfault_ros.tuples import Modality

__all__ = ['bench_sync']


def bench_sync(*, duration_s: float = 60.0, repeats: int = 5, seed: int = 0,
               config: SyncConfig | None = None) -> dict[str, Any]:
    """Median messages/s (wall and CPU) over ``repeats`` passes, tuples per camera frame, the
    floor, and the spread of the wall rate (min/max)."""
    stream = [s for _, s in synthetic_samples(duration_s, seed=seed, image_size=8)]
    frames = sum(1 for s in stream if s.modality is Modality.CAMERA)
    config = config or SyncConfig()
    rates, cpu_rates, floors, tuples = [], [], [], 0
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        n = 0
        for s in stream:  # the floor: touching every sample, nothing else
            n += s.stamp_ns > 0
        floors.append(len(stream) / (time.perf_counter() - t0))
        c0, t0 = time.process_time(), time.perf_counter()
        tuples = sum(1 for _ in assemble(stream, config, JOINT_NAMES))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rates.append(len(stream) / wall)
        cpu_rates.append(len(stream) / cpu if cpu > 0 else float('nan'))
    return {'duration_s': duration_s, 'messages': len(stream), 'camera_frames': frames,
            'tuples': tuples, 'one_tuple_per_frame': tuples == frames, 'repeats': len(rates),
            'sync_msgs_per_s': float(np.median(rates)),
            'sync_msgs_per_cpu_s': float(np.nanmedian(cpu_rates)),
            'sync_msgs_per_s_min': float(min(rates)), 'sync_msgs_per_s_max': float(max(rates)),
            'floor_msgs_per_s': float(np.median(floors))}
