"""A bag's tuples as the evaluated model sees them: the synchroniser the live node would run
(the model's windows, the bag's rates) and the tuples it assembles. Offline evaluation, live
replay scoring and the baselines' training tuples all take them from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from lipfault_ros.bags.reader import BagReader, read_samples
from lipfault_ros.sync import SyncConfig, assemble
from lipfault_ros.topics import TopicConfig
from lipfault_ros.tuples import Modality, SensorTuple

__all__ = ['assemble_bag', 'bag_sync_config']


def bag_sync_config(engine: Any, bag: Path, topics: TopicConfig) -> SyncConfig:
    """The synchroniser the live node would run, with the model's windows and the bag's rates."""
    with BagReader(bag, topics=topics) as reader:
        info = reader.check()
    span = max(info.duration_ns / 1e9, 1e-3)
    rates = {}
    for m, key in ((Modality.CAMERA, 'camera_rate'), (Modality.WRENCH, 'wrench_rate'),
                   (Modality.JOINTS, 'joints_rate')):
        n = info.counts.get(topics.of(m), 0)
        if n > 1:
            rates[key] = float(n - 1) / span
    return SyncConfig(wrench_window=engine.wrench_window, joints_window=engine.joints_window,
                      **rates)


def assemble_bag(bag: Path, engine: Any, topics: TopicConfig, sync: SyncConfig
                 ) -> Iterator[SensorTuple]:
    """The bag's tuples, in stamp order, as the live node would assemble them."""
    return assemble(read_samples(bag, topics=topics), sync, engine.joint_names)
