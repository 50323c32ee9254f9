"""Synchroniser throughput, offline: messages/s through :func:`~lipfault_ros.sync.assemble`.

The stream is 60 s of jittered 30/500/250 Hz camera/wrench/joints samples, shuffled within the
arrival latencies as a live node sees them. The figure counts every message pushed (not tuples)
per second of wall time, and checks the result is exactly one tuple per camera frame. A bare loop
over the same samples is timed in the same run as the floor.
"""

from __future__ import annotations

import time
from typing import Any

from lipfault_ros.bench.pipeline import JOINT_NAMES, synthetic_samples
from lipfault_ros.sync import SyncConfig, assemble
from lipfault_ros.tuples import Modality

__all__ = ['bench_sync']


def bench_sync(*, duration_s: float = 60.0, repeats: int = 5, seed: int = 0) -> dict[str, Any]:
    """Median messages/s over ``repeats`` passes, tuples per camera frame, and the floor."""
    stream = [s for _, s in synthetic_samples(duration_s, seed=seed, image_size=8)]
    frames = sum(1 for s in stream if s.modality is Modality.CAMERA)
    config = SyncConfig()
    rates, floors, tuples = [], [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = 0
        for s in stream:  # the floor: touching every sample, nothing else
            n += s.stamp_ns > 0
        floors.append(len(stream) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        tuples = sum(1 for _ in assemble(stream, config, JOINT_NAMES))
        rates.append(len(stream) / (time.perf_counter() - t0))
    rates.sort()
    floors.sort()
    return {'messages': len(stream), 'camera_frames': frames, 'tuples': tuples,
            'one_tuple_per_frame': tuples == frames,
            'sync_msgs_per_s': rates[len(rates) // 2], 'floor_msgs_per_s': floors[len(floors) // 2]}
