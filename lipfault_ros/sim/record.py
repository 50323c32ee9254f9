"""``lipfault record``: simulated sensor data straight into a rosbag2, faster than real time.

The bag holds the same topics and types the live sim node publishes (``/camera/image_raw``,
``/wrench``, ``/joint_states``) and the fault truth (``/lipfault_sim/fault_truth``, 10 Hz and at
every fault start and end), so training and evaluation can run on it without a ROS runtime.
Header stamps start at the wall-clock time the recording began (or ``origin_ns``); each message's
bag time is its header stamp plus a small transport latency, as a live recording would have.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from lipfault_ros.bags.writer import STORAGES, SensorBagWriter
from lipfault_ros.errors import ConfigError
from lipfault_ros.faults import FaultSpec
from lipfault_ros.settings import add_options
from lipfault_ros.sim.config import SimConfig
from lipfault_ros.sim.robot import SimRobot
from lipfault_ros.topics import TopicConfig
from lipfault_ros.tuples import Modality

__all__ = ['RecordStats', 'TRUTH_RATE_HZ', 'add_arguments', 'main', 'record']

_log = logging.getLogger(__name__)

#: Rate of the fault-truth messages (they are also written at every fault start and end).
TRUTH_RATE_HZ = 10.0
# Bag (receive) time minus header stamp: a frame takes longer to arrive than a small message.
_LATENCY_NS = {Modality.CAMERA: 3_000_000, Modality.WRENCH: 300_000, Modality.JOINTS: 500_000}


@dataclass(frozen=True)
class RecordStats:
    """What a recording wrote: message counts per topic, simulated, wall-clock and CPU
    seconds (the CPU figure tells the speed on a machine shared with other work)."""

    path: Path
    counts: Mapping[str, int]
    sim_s: float
    wall_s: float
    cpu_s: float = math.nan

    @property
    def speed(self) -> float:
        """Simulated seconds per wall-clock second."""
        return self.sim_s / self.wall_s if self.wall_s > 0 else math.inf


def record(out: str | Path, duration_s: float, config: SimConfig | None = None, *,
           storage: str = 'mcap', overwrite: bool = False, progress: bool = True,
           origin_ns: int | None = None, topics: TopicConfig | None = None) -> RecordStats:
    """Simulate ``duration_s`` seconds with ``config`` (faults included) into the bag ``out``.

    Refuses an existing ``out`` unless ``overwrite``. ``origin_ns`` is the header stamp of
    simulated time zero (default: now).
    """
    config = config or SimConfig()
    duration_s = float(duration_s)
    if not duration_s > 0 or math.isinf(duration_s):
        raise ConfigError(f'duration must be a positive number of seconds, got {duration_s}')
    if origin_ns is None:
        origin_ns = time.time_ns() // 1_000_000 * 1_000_000
    # truth: on a 10 Hz grid and at every start and end inside the recording
    grid = [k / TRUTH_RATE_HZ for k in range(int(math.floor(duration_s * TRUTH_RATE_HZ)) + 1)
            if k / TRUTH_RATE_HZ < duration_s]
    edges = [t for f in config.faults for t in (f.start_s, f.end_s) if 0 <= t < duration_s]
    truth_times = sorted(set(grid) | set(edges))
    truth_ns = [origin_ns + int(round(t * 1e9)) for t in truth_times]

    wall0, cpu0 = time.perf_counter(), time.process_time()
    bar = None
    with SensorBagWriter(out, storage=storage, overwrite=overwrite, topics=topics) as writer, \
            SimRobot(config, origin_ns=origin_ns) as robot:
        intervals = robot.intervals
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=round(duration_s, 3), unit='sim-s', desc=f'record {Path(out).name}',
                       bar_format='{l_bar}{bar}| {n:.1f}/{total:.1f} sim-s [{elapsed}<'
                                  '{remaining}, {rate_fmt}]')
        next_truth = 0
        t = 0.0
        chunk = 0.25
        try:
            while t < duration_s:
                t_next = min(t + chunk, duration_s)
                for sample in robot.advance(t_next):
                    while next_truth < len(truth_ns) and truth_ns[next_truth] <= sample.stamp_ns:
                        writer.write_truth(truth_ns[next_truth], intervals)
                        next_truth += 1
                    latency = _LATENCY_NS[sample.modality]
                    writer.write_sample(sample, receive_ns=sample.stamp_ns + latency)
                if bar is not None:
                    bar.update(t_next - t)
                t = t_next
            while next_truth < len(truth_ns):
                writer.write_truth(truth_ns[next_truth], intervals)
                next_truth += 1
        finally:
            if bar is not None:
                bar.close()
        counts = dict(writer.counts)
    _log.debug('recorded %s: %s', out, counts)
    return RecordStats(Path(out), counts, duration_s, time.perf_counter() - wall0,
                       time.process_time() - cpu0)


# ------------------------------------------------------------------------------------------ CLI

#: the SimConfig settings ``lipfault record`` offers as options, besides --image-size
RECORD_SETTINGS = ('seed', 'camera_rate_hz', 'wrench_rate_hz', 'joints_rate_hz')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--out', required=True, type=Path, help='bag directory to create')
    parser.add_argument('--duration', required=True, type=float, metavar='SECONDS',
                        help='simulated seconds to record')
    parser.add_argument('--storage', choices=STORAGES, default='mcap',
                        help='rosbag2 storage plugin (default: mcap)')
    parser.add_argument('--fault', action='append', default=[], metavar='SPEC',
                        help='modality:type:severity:start_s:duration_s (repeatable; '
                             '`lipfault faults` lists the types)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing bag')
    parser.add_argument('--image-size', type=int, default=None, metavar='PIXELS',
                        help='square camera image size (default 128)')
    # --seed and the stream rates (--camera-rate...): the SimConfig fields, declared there
    add_options(parser, SimConfig, only=RECORD_SETTINGS)
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The SimConfig the command line asks for (faults parsed from ``--fault``)."""
    faults: Sequence[FaultSpec] = tuple(FaultSpec.parse(spec) for spec in args.fault)
    values: dict = {name: getattr(args, name) for name in RECORD_SETTINGS}
    values['faults'] = faults
    if args.image_size is not None:
        values.update(image_width=args.image_size, image_height=args.image_size)
    fastest = max(values[f'{name}_rate_hz'] for name in ('camera', 'wrench', 'joints'))
    if fastest > SimConfig.physics_rate_hz:
        values['physics_rate_hz'] = fastest  # physics must step at least as fast
    return SimConfig(**values)


def main(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    stats = record(args.out, args.duration, config, storage=args.storage,
                   overwrite=args.overwrite, progress=not args.no_progress)
    total = sum(stats.counts.values())
    detail = ', '.join(f'{topic} {n}' for topic, n in stats.counts.items())
    print(f'wrote {stats.path} ({args.storage}): {total} messages ({detail})')
    print(f'{stats.sim_s:.1f} sim-s in {stats.wall_s:.1f} wall-s: '
          f'{stats.speed:.2f} sim-seconds per wall-second '
          f'({stats.sim_s / max(stats.cpu_s, 1e-9):.2f} per CPU-second)')
    return 0
