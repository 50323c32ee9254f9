"""The offline data path, measured: bag -> training tuples, training throughput, and memory.

- :func:`bench_bag_to_tuples`: tuples/s (and messages/s) building training tuples from a bag
  (read, deserialise, decode, reorder by header stamp, synchronise, resize, write the ``.npy``
  cache), next to a bare ``rosbags`` read + deserialise of the same messages timed in the same
  run; the ratio says what decoding and synchronising cost on top of reading.
- :func:`bench_training`: tuples/s of each training stage on this machine (CPU unless told).
- :func:`bench_streaming_memory`: peak resident memory of a child process that builds the tuples
  of a bag larger than the memory budget it is allowed; streaming means the peak stays under the
  budget whatever the bag size.

Figures are printed by ``lipfault bench`` and never asserted in tests (timings vary).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lipfault_ros.tuples import MODALITIES

__all__ = ['bench_bag_to_tuples', 'bench_streaming_memory', 'bench_training',
           'write_synthetic_bag']


def write_synthetic_bag(path: str | Path, duration_s: float, *, image_size: int = 128,
                        storage: str = 'mcap', seed: int = 0,
                        rates: tuple[float, float, float] = (30.0, 500.0, 250.0)) -> Path:
    """A bag of the synthetic camera/wrench/joints streams (written in 2 s chunks, so even a
    bag of gigabytes is written in bounded memory). Refuses an existing ``path``."""
    from lipfault_ros.bags.writer import SensorBagWriter
    from lipfault_ros.synthetic import synthetic_samples

    path = Path(path)
    start = 1_000_000_000
    chunk = 2.0
    with SensorBagWriter(path, storage=storage) as writer:
        t = 0.0
        k = 0
        while t < duration_s - 1e-9:
            span = min(chunk, duration_s - t)
            offset = start + int(round(t * 1e9))
            for arrival, sample in synthetic_samples(span, start_ns=offset, seed=seed + k,
                                                     image_size=image_size, rates=rates):
                writer.write_sample(sample, receive_ns=offset + arrival)
            t += span
            k += 1
    return path


def _dataset_config(bag: Path, image_size: int | None, window: int) -> Any:
    from lipfault_ros.bags.dataset import DatasetConfig

    return DatasetConfig(image_size=image_size or 128, wrench_window=window,
                         joints_window=window)


def bench_bag_to_tuples(bag: str | Path, *, image_size: int = 128, window: int = 32,
                        repeats: int = 1) -> dict[str, Any]:
    """Build the training tuples of ``bag`` (no cache reuse) and time a bare read of it."""
    from lipfault_ros.bags.dataset import build_dataset
    from lipfault_ros.bags.reader import BagReader

    bag = Path(bag)
    config = _dataset_config(bag, image_size, window)
    bare, build = [], []
    messages = tuples = 0
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        with BagReader(bag, topics=config.topics) as reader:
            messages = sum(1 for _ in reader.raw_messages(MODALITIES))
        bare.append(time.perf_counter() - t0)
        with tempfile.TemporaryDirectory(prefix='lipfault-bench-') as cache:
            t0 = time.perf_counter()
            dataset = build_dataset(bag, config, cache_dir=cache, progress=False)
            build.append(time.perf_counter() - t0)
            tuples = len(dataset)
            del dataset
    t_bare, t_build = min(bare), min(build)
    return {'bag': str(bag), 'bag_mb': round(_size(bag) / 2**20, 1), 'messages': messages,
            'tuples': tuples, 'image_size': image_size, 'window': window,
            'bare_read_msgs_per_s': round(messages / t_bare, 1),
            'build_msgs_per_s': round(messages / t_build, 1),
            'build_tuples_per_s': round(tuples / t_build, 1),
            'bare_read_s': round(t_bare, 3), 'build_s': round(t_build, 3),
            'build_over_bare': round(t_build / t_bare, 2)}


def bench_training(bag: str | Path, *, quick: bool = True, epochs: int = 1,
                   device: str = 'cpu', num_threads: int = 0) -> dict[str, Any]:
    """Tuples/s of stage 1 and stage 2 training on the tuples of ``bag`` (``epochs`` each; the
    ``--quick`` model by default), plus the wall time of the whole run."""
    from lipfault_ros.train_cli import load_settings, train_from_bags

    settings = load_settings(None, quick=quick, train_changes={
        'stage1_epochs': epochs, 'stage2_epochs': epochs, 'device': device,
        'num_threads': num_threads, 'checkpoint_every': 0})
    with tempfile.TemporaryDirectory(prefix='lipfault-bench-') as tmp:
        t0 = time.perf_counter()
        result = train_from_bags([bag], Path(tmp) / 'model', settings=settings, progress=False)
        wall = time.perf_counter() - t0
    summary = result.summary
    tps = {k: round(float(v), 1) for k, v in summary.get('tuples_per_s', {}).items()}
    return {'bag': str(bag), 'train_tuples': summary.get('train_tuples'),
            'val_tuples': summary.get('val_tuples'), 'epochs_per_stage': epochs,
            'image_size': settings.model.image_size, 'device': summary.get('device'),
            'stage1_tuples_per_s': tps.get('stage1'), 'stage2_tuples_per_s': tps.get('stage2'),
            'wall_s': round(wall, 2)}


_CHILD = r'''
import json, resource, sys, tempfile
from pathlib import Path
from lipfault_ros.bags.dataset import DatasetConfig, build_dataset
bag, size, window = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def rss_mb(field):
    for line in open('/proc/self/status'):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float('nan')
base = rss_mb('VmRSS:')
with tempfile.TemporaryDirectory() as cache:
    ds = build_dataset(bag, DatasetConfig(image_size=size, wrench_window=window,
                                          joints_window=window), cache_dir=cache,
                       progress=False)
    n = len(ds)
    cache_mb = sum(p.stat().st_size for p in Path(cache).rglob('*.npy')) / 2**20
    del ds
print(json.dumps({'tuples': n, 'import_rss_mb': base, 'peak_rss_mb': rss_mb('VmHWM:'),
                  'cache_mb': cache_mb}))
'''


def bench_streaming_memory(*, budget_mb: float = 400.0, bag_mb: float = 600.0,
                           bag: str | Path | None = None, image_size: int = 128,
                           window: int = 32, camera_size: int = 480) -> dict[str, Any]:
    """Peak RSS of a child process building the tuples of a bag bigger than ``budget_mb``.

    Without ``bag`` a synthetic one of about ``bag_mb`` MiB (``camera_size`` square frames) is
    written to a temporary directory first. ``within_budget`` is the verdict.
    """
    with tempfile.TemporaryDirectory(prefix='lipfault-bench-') as tmp:
        if bag is None:
            frame_mb = camera_size * camera_size * 3 / 2**20
            duration = max(2.0, bag_mb / (frame_mb * 30.0))
            bag = write_synthetic_bag(Path(tmp) / 'big', duration, image_size=camera_size)
        bag = Path(bag)
        env = dict(os.environ, OMP_NUM_THREADS='1')
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, '-c', _CHILD, str(bag), str(image_size),
                               str(window)], capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f'memory benchmark child failed: {proc.stderr[-2000:]}')
        child = json.loads(proc.stdout.strip().splitlines()[-1])
        size_mb = _size(bag) / 2**20
    return {'bag_mb': round(size_mb, 1), 'budget_mb': budget_mb, 'tuples': child['tuples'],
            'peak_rss_mb': round(child['peak_rss_mb'], 1),
            'import_rss_mb': round(child['import_rss_mb'], 1),
            'cache_mb': round(child['cache_mb'], 1), 'wall_s': round(wall, 2),
            'bag_larger_than_budget': size_mb > budget_mb,
            'within_budget': child['peak_rss_mb'] <= budget_mb}


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob('*') if p.is_file()) if path.is_dir() \
        else path.stat().st_size
