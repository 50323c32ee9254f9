"""Bags turned into cached training tuples.

Pipeline: :func:`~lipfault_ros.bags.reader.BagReader.samples` (header-stamp order) ->
:func:`lipfault_ros.sync.assemble` (the synchroniser the live node runs, so training sees the
tuples deployment sees) -> images resized to the model's size -> rows appended to ``.npy`` files.
Nothing holds a whole bag in memory: rows are written in chunks through
``numpy.lib.format.open_memmap`` and read back as memmaps.

Fault truth (the simulator's ``fault_truth`` topic, when recorded) becomes per-tuple labels via
:func:`lipfault_ros.truth.labels_at`, so training can keep to clean rows and evaluation can score.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from lipfault_ros.bags.dataset.cache import (CACHE_FORMAT, CACHE_VERSION, BagDataset,
                                             NpyAppender, bag_digest, interval_dict,
                                             load_cached)
from lipfault_ros.bags.dataset.config import DatasetConfig
from lipfault_ros.bags.reader import BagReader, check_bags
from lipfault_ros.errors import BagError
from lipfault_ros.topics import TopicConfig
from lipfault_ros.tuples import MODALITIES, Modality

__all__ = ['build_dataset', 'measured_rates']


_log = logging.getLogger(__name__)


def measured_rates(infos: Sequence[Any], topics: TopicConfig) -> dict[str, float]:
    """Mean message rates (Hz) of the three sensor topics over all bags, from their indexes.

    The synchroniser sizes its queues, windows and silence watchdog from rates; a robot's rates
    are whatever its drivers publish, so they are measured rather than assumed.
    """
    rates = {}
    span = sum(i.duration_ns for i in infos) / 1e9
    for m in MODALITIES:
        count = sum(int(i.counts.get(topics.of(m), 0)) for i in infos)
        if span > 0 and count > 1:
            rates[f'{m.value}_rate'] = round(count / span, 1)
    return rates


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[0] == size and image.shape[1] == size:
        return image
    import cv2
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def build_dataset(bags: str | Path | Iterable[str | Path], config: DatasetConfig | None = None,
                  *, cache_dir: str | Path | None = None, progress: bool = True,
                  rebuild: bool = False) -> BagDataset:
    """Decode, synchronise and stack the tuples of ``bags`` (reusing the cache when it holds
    them).

    ``cache_dir`` None builds in a temporary directory that is removed once mapped (the memmaps
    stay valid until released). Raises BagError naming the bag and topic for missing topics,
    wrong types, damaged files, joint names differing between bags, and a bag too short for one
    history window.
    """
    config = config or DatasetConfig()
    paths = [Path(bags)] if isinstance(bags, (str, Path)) else [Path(b) for b in bags]
    if not paths:
        raise BagError('no bag given; pass at least one rosbag2 directory or file')
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f'bag {p} does not exist')
    # The first bag is opened once, for the checks and (unless the cache holds it) the build.
    first_reader = BagReader(paths[0], topics=config.topics, reorder_ns=config.reorder_ns)
    first_reader.open()
    try:
        return _build_dataset(paths, config, first_reader, cache_dir=cache_dir,
                              progress=progress, rebuild=rebuild)
    finally:
        first_reader.close()


def _build_dataset(paths: Sequence[Path], config: DatasetConfig, first_reader: BagReader, *,
                   cache_dir: str | Path | None, progress: bool, rebuild: bool) -> BagDataset:
    infos, first_names = check_bags(paths, topics=config.topics,
                                    readers={paths[0]: first_reader})
    joint_names = config.joint_names or first_names
    missing = sorted(set(joint_names) - set(first_names))
    if missing:
        raise BagError(f'bag {paths[0]} has no joints {missing} (it has {list(first_names)}); '
                       f'the model expects {list(joint_names)}')
    for info in infos:
        for m, window in ((Modality.WRENCH, config.wrench_window),
                          (Modality.JOINTS, config.joints_window)):
            topic = config.topics.of(m)
            if info.counts.get(topic, 0) < window:
                raise BagError(f'bag {info.path} holds {info.counts.get(topic, 0)} messages on '
                               f'{topic}, fewer than one {m} history window of {window}; record '
                               f'longer or leave this bag out')
    config = dataclasses.replace(config, joint_names=tuple(joint_names))
    rates = measured_rates(infos, config.topics)
    settings = config.cache_settings(rates)
    digests = [bag_digest(p) for p in paths]
    key = hashlib.sha256(json.dumps({'version': CACHE_VERSION, 'bags': digests,
                                     'settings': settings}, sort_keys=True).encode()).hexdigest()
    key = key[:32]

    temporary = cache_dir is None
    root = Path(tempfile.mkdtemp(prefix='lipfault-tuples-')) if temporary else Path(cache_dir)
    target = root / key
    try:
        if not temporary and target.is_dir() and not rebuild:
            try:
                dataset = load_cached(target)
                _log.info('using cached tuples %s (%d rows)', target, len(dataset))
                return dataset
            except (BagError, OSError, ValueError, KeyError) as exc:
                _log.warning('tuple cache %s unusable (%s); rebuilding it', target, exc)
        root.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f'{key}.partial-', dir=root))
        try:
            _build_into(partial, paths, infos, digests, config, rates, settings, key, progress,
                        first_reader)
            if target.exists():
                shutil.rmtree(target, ignore_errors=True)
            try:
                os.replace(partial, target)
            except OSError:
                # another process (a second rank) renamed its copy first: use that one
                shutil.rmtree(partial, ignore_errors=True)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return load_cached(target)
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)


def _build_into(directory: Path, paths: Sequence[Path], infos: Sequence[Any],
                digests: Sequence[str], config: DatasetConfig, rates: Mapping[str, float],
                settings: Mapping[str, Any], key: str, progress: bool,
                first_reader: BagReader | None = None) -> None:
    """Assemble every bag's tuples into the cache files of ``directory`` and write its index
    last (a folder without ``index.json`` is an unfinished build)."""
    names = tuple(config.joint_names or ())
    capacity = sum(int(i.counts.get(config.topics.camera, 0)) for i in infos) + 1
    writers = _writers(directory, config, names, capacity)
    bar = None
    if progress:
        from tqdm import tqdm
        total = sum(sum(int(i.counts.get(config.topics.of(m), 0)) for m in MODALITIES)
                    for i in infos)
        bar = tqdm(total=total, desc='bags -> tuples', unit='msg', leave=False)
    bag_entries = []
    t_start = time.perf_counter()
    try:
        for b, (path, info, digest) in enumerate(zip(paths, infos, digests)):
            reader = first_reader if b == 0 else None
            entry = _build_bag(b, path, writers, config, config.sync_config(rates), names,
                               reader, bar)
            bag_entries.append({'path': str(path), 'sha256': digest, 'storage': info.storage,
                                **entry})
    finally:
        if bar is not None:
            bar.close()
    n = writers['stamps_ns'].n
    arrays_meta = {}
    for name, writer in writers.items():
        writer.finish()
        arrays_meta[name] = {'dtype': str(writer.dtype), 'shape': [n, *writer.row_shape]}
    index = {'format': CACHE_FORMAT, 'version': CACHE_VERSION, 'key': key, 'n': n,
             'joint_names': list(names), 'settings': dict(settings), 'bags': bag_entries,
             'arrays': arrays_meta, 'build_s': round(time.perf_counter() - t_start, 3),
             'created_ns': time.time_ns()}
    tmp = directory / 'index.json.tmp'
    tmp.write_text(json.dumps(index, indent=1))
    os.replace(tmp, directory / 'index.json')
    _log.info('built %d tuples from %d bag(s) in %.1f s', n, len(paths), index['build_s'])


def _writers(directory: Path, config: DatasetConfig, names: tuple[str, ...], capacity: int
             ) -> dict[str, NpyAppender]:
    """One appender per cache array, sized for ``capacity`` rows (one per camera frame)."""
    size = config.image_size
    rows = {'stamps_ns': ((), np.int64), 'images': ((size, size, 3), np.uint8),
            'wrench': ((config.wrench_window, 6), np.float32),
            'joints': ((config.joints_window, len(names), 3), np.float32),
            'missing': ((3,), np.bool_), 'labels': ((3,), np.bool_),
            'bag_index': ((), np.int32)}
    return {name: NpyAppender(directory / f'{name}.npy', shape, dtype, capacity)
            for name, (shape, dtype) in rows.items()}


def _build_bag(b: int, path: Path, writers: Mapping[str, NpyAppender], config: DatasetConfig,
               sync_config: Any, names: tuple[str, ...], first_reader: BagReader | None,
               bar: Any) -> dict[str, Any]:
    """Append bag ``b``'s tuples and labels; its index entry (rows, reader counters, fault
    intervals). ``first_reader``: the bag, opened and checked already."""
    from lipfault_ros import sync

    first_row = writers['stamps_ns'].n
    if first_reader is not None:
        # opened (and checked) already; its counters restart for the build
        opened: Any = nullcontext(first_reader)
        first_reader.stats.update(dict.fromkeys(first_reader.stats, 0))
    else:
        opened = BagReader(path, topics=config.topics, reorder_ns=config.reorder_ns)
    with opened as reader:
        statuses: list[Any] = []
        samples = reader.samples(progress=bar.update if bar is not None else None,
                                 truth=statuses)
        chunk = _Chunk(writers, config, names, b)
        for t in sync.assemble(samples, sync_config, names):
            chunk.add(t)
        chunk.flush()
        stats = dict(reader.stats)
    intervals = _intervals(statuses)
    _write_labels(writers, first_row, intervals, config.chunk_rows)
    rows = writers['stamps_ns'].n - first_row
    if rows == 0:
        raise BagError(f'bag {path} gave no synchronised tuple: it is shorter than one '
                       f'history window, or its camera, wrench and joint stamps never '
                       f'fall within the synchroniser slop; check the header stamps')
    return {'first_row': first_row, 'rows': rows, 'reader': stats,
            'intervals': [interval_dict(i) for i in intervals]}


def _intervals(statuses: Sequence[Any]) -> list[Any]:
    if not statuses:
        return []
    from lipfault_ros import truth

    return list(truth.intervals_from_statuses(statuses))


def _write_labels(writers: Mapping[str, NpyAppender], first_row: int, intervals: Sequence[Any],
                  chunk_rows: int) -> None:
    """Append the fault labels of the rows from ``first_row`` on (their stamps read back from
    the stamps file, a chunk at a time)."""
    from lipfault_ros import truth

    stamps_w, labels_w = writers['stamps_ns'], writers['labels']
    n = stamps_w.n
    if not intervals:
        start = labels_w.n
        step = max(chunk_rows, 1 << 16)
        while start < n:
            k = min(step, n - start)
            labels_w.append(np.zeros((k, 3), bool))
            start += k
        return
    start = labels_w.n
    while start < n:
        k = min(chunk_rows, n - start)
        stamps = stamps_w.read(start, k)
        labels_w.append(np.asarray(truth.labels_at(stamps, list(intervals)), bool))
        start += k


class _Chunk:
    """``chunk_rows`` rows filled one tuple at a time (images resized on arrival, so no
    full-size frame is kept), then appended to the cache files in one write."""

    def __init__(self, writers: Mapping[str, NpyAppender], config: DatasetConfig,
                 names: tuple[str, ...], bag: int) -> None:
        k = config.chunk_rows
        size = config.image_size
        self.writers, self.names, self.bag = writers, names, bag
        self.size = size
        self.k = 0
        self.stamps = np.zeros(k, np.int64)
        self.images = np.zeros((k, size, size, 3), np.uint8)
        self.wrench = np.zeros((k, config.wrench_window, 6), np.float32)
        self.joints = np.zeros((k, config.joints_window, len(names), 3), np.float32)
        self.missing = np.zeros((k, 3), bool)

    def add(self, t: Any) -> None:
        i = self.k
        self.stamps[i] = t.stamp_ns
        self.images[i] = _resize(t.image, self.size) if t.image is not None else 0
        self.wrench[i] = t.wrench if t.wrench is not None else 0.0
        if t.joints is not None:
            if tuple(t.joint_names) != self.names:
                order = [list(t.joint_names).index(n) for n in self.names]
                self.joints[i] = t.joints[:, order]
            else:
                self.joints[i] = t.joints
        else:
            self.joints[i] = 0.0
        for m, modality in enumerate(MODALITIES):
            self.missing[i, m] = modality in t.missing or t.data(modality) is None
        self.k += 1
        if self.k == len(self.stamps):
            self.flush()

    def flush(self) -> None:
        """Append the buffered rows (labels are appended per bag by :func:`_write_labels`)."""
        k = self.k
        if k == 0:
            return
        stamps = self.stamps[:k]
        w = self.writers
        w['stamps_ns'].append(stamps)
        w['images'].append(self.images[:k])
        w['wrench'].append(self.wrench[:k])
        w['joints'].append(self.joints[:k])
        w['missing'].append(self.missing[:k])
        w['bag_index'].append(np.full(k, self.bag, np.int32))
        self.k = 0
