"""Training tuples from rosbags: the live synchroniser run over recorded streams, cached on disk.

Modules: :mod:`~.config` (:class:`DatasetConfig`), :mod:`~.build` (bags to tuples,
:func:`build_dataset`), :mod:`~.cache` (the on-disk format, :class:`BagDataset`,
:func:`load_cached`), :mod:`~.split` (training and validation rows, :func:`split_dataset`).
"""

from lipfault_ros.bags.dataset.build import build_dataset, measured_rates
from lipfault_ros.bags.dataset.cache import (CACHE_FORMAT, CACHE_VERSION, BagDataset, bag_digest,
                                             default_cache_dir, load_cached)
from lipfault_ros.bags.dataset.config import DatasetConfig
from lipfault_ros.bags.dataset.split import RowView, Split, SplitMode, split_dataset

__all__ = [
    'CACHE_FORMAT',
    'CACHE_VERSION',
    'BagDataset',
    'DatasetConfig',
    'RowView',
    'Split',
    'SplitMode',
    'bag_digest',
    'build_dataset',
    'default_cache_dir',
    'load_cached',
    'measured_rates',
    'split_dataset',
]
