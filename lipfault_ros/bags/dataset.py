"""Training tuples from rosbags: the live synchroniser run over recorded streams, cached on disk.

Pipeline: :func:`~lipfault_ros.bags.reader.BagReader.samples` (header-stamp order) ->
:func:`lipfault_ros.sync.assemble` (the synchroniser the live node runs, so training sees the
tuples deployment sees) -> images resized to the model's size -> rows appended to ``.npy`` files.
Nothing holds a whole bag in memory: rows are written in chunks through
``numpy.lib.format.open_memmap`` and read back as memmaps.

Splits are by time block or by bag, never by shuffled tuple: neighbouring tuples share most of
their history windows, so a shuffled split would put near-copies of validation tuples into
training. With ``split='time'`` each bag is cut into blocks of ``block_s`` seconds and every k-th
block (k = round(1 / val_fraction)) goes to validation; training tuples closer than ``gap_s`` to a
validation block are dropped, so no window straddles the border. With ``split='bag'`` the last
bags (by the order given) are the validation set.

Fault truth (the simulator's ``fault_truth`` topic, when recorded) becomes per-tuple labels via
:func:`lipfault_ros.truth.labels_at`, so training can keep to clean rows and evaluation can score.

Cache format (version 1)
------------------------
One directory per (bag contents, settings) under the cache root::

    <cache>/<key>/index.json     small JSON index, written last
    <cache>/<key>/stamps_ns.npy  (N,) int64, tuple stamps (header time, ns)
    <cache>/<key>/images.npy     (N, S, S, 3) uint8 RGB, resized to the model's image_size S
    <cache>/<key>/wrench.npy     (N, T_w, 6) float32, wrench history windows (oldest first)
    <cache>/<key>/joints.npy     (N, T_j, J, 3) float32, [position, velocity, effort] per joint
    <cache>/<key>/missing.npy    (N, 3) bool, modality missing, columns camera/wrench/joints
    <cache>/<key>/labels.npy     (N, 3) bool, a fault active at the tuple stamp (truth topic)
    <cache>/<key>/bag_index.npy  (N,) int32, which bag (position in index.json "bags") a row is from

Every ``.npy`` is a plain NumPy format file (``np.load(path, mmap_mode='r')``). ``index.json``
holds ``format`` ("lipfault-tuples"), ``version``, ``key``, ``n`` (rows), ``joint_names``,
``settings`` (image size, windows, topics, synchroniser settings), ``bags`` (path, sha256 of the
bag's files, storage, first row, row count, fault intervals) and per-array ``dtype``/``shape``.
The key is the sha256 of the bags' content hashes and the settings, so a changed bag or setting
never reads a stale cache. The directory is built under a temporary name and renamed into place,
so an interrupted build leaves no half-written entry.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from lipfault_ros.bags.reader import BagReader, check_bags
from lipfault_ros.errors import BagError, ConfigError
from lipfault_ros.topics import TopicConfig
from lipfault_ros.tuples import MODALITIES, Modality, TupleArrays

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

_log = logging.getLogger(__name__)

CACHE_FORMAT = 'lipfault-tuples'
CACHE_VERSION = 1
_ARRAYS = ('stamps_ns', 'images', 'wrench', 'joints', 'missing', 'labels', 'bag_index')


class SplitMode(str, enum.Enum):
    """How validation data is set apart: whole time blocks of each bag, or whole bags."""

    TIME = 'time'
    BAG = 'bag'

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class DatasetConfig:
    """How bags become training tuples.

    ``image_size``, ``wrench_window``, ``joints_window`` and ``joint_names`` must equal the
    model's (:meth:`from_model` copies them); ``joint_names`` None takes the first bag's order.
    ``sync`` holds extra keyword arguments for :class:`lipfault_ros.sync.SyncConfig` (slop,
    rates...); the windows are always set from this config.
    """

    image_size: int = 128
    wrench_window: int = 32
    joints_window: int = 32
    joint_names: tuple[str, ...] | None = None
    topics: TopicConfig = field(default_factory=TopicConfig)
    sync: Mapping[str, Any] = field(default_factory=dict)
    # Validation: by time block (default) or by bag, the fraction of data set apart, the block
    # length, and the margin around validation blocks that training tuples must keep.
    split: SplitMode = SplitMode.TIME
    val_fraction: float = 0.2
    block_s: float = 10.0
    gap_s: float = 1.0
    # Rows (at the model's size) buffered in memory before they are written to the cache files.
    chunk_rows: int = 256
    # The header-stamp reorder window of the bag reader (ns).
    reorder_ns: int = 500_000_000

    def __post_init__(self) -> None:
        object.__setattr__(self, 'split', SplitMode(self.split))
        if self.joint_names is not None:
            object.__setattr__(self, 'joint_names', tuple(str(n) for n in self.joint_names))
        if isinstance(self.topics, Mapping):
            object.__setattr__(self, 'topics', TopicConfig.from_mapping(self.topics))
        if self.image_size < 1 or self.wrench_window < 1 or self.joints_window < 1:
            raise ConfigError('DatasetConfig image_size, wrench_window and joints_window must be '
                              '>= 1')
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f'DatasetConfig.val_fraction={self.val_fraction} must be in (0, 1)')
        if self.block_s <= 0 or self.gap_s < 0:
            raise ConfigError('DatasetConfig.block_s must be > 0 and gap_s >= 0')
        if self.chunk_rows < 1:
            raise ConfigError('DatasetConfig.chunk_rows must be >= 1')

    @classmethod
    def from_model(cls, model_config: Any, **changes: Any) -> DatasetConfig:
        """Sizes from a :class:`~lipfault_ros.model.config.ModelConfig`, the rest from
        ``changes``."""
        base = dict(image_size=int(model_config.image_size),
                    wrench_window=int(model_config.wrench_window),
                    joints_window=int(model_config.joints_window),
                    joint_names=tuple(model_config.joint_names))
        base.update(changes)
        return cls(**base)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **base: Any) -> DatasetConfig:
        """From a config file section; unknown keys are refused by name."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f'unknown data settings {unknown}; expected some of {sorted(names)}')
        values = dict(base)
        values.update(data)
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f'invalid data settings: {exc}') from None

    def sync_config(self, rates: Mapping[str, float] | None = None) -> Any:
        """The synchroniser configuration with this config's windows; ``rates``
        (``camera_rate``... in Hz, e.g. measured from a bag) fill in rates ``sync`` leaves out."""
        from lipfault_ros.sync import SyncConfig

        kwargs = {k: v for k, v in (rates or {}).items() if k not in self.sync}
        kwargs.update(self.sync)
        kwargs.update(wrench_window=self.wrench_window, joints_window=self.joints_window)
        try:
            return SyncConfig(**kwargs)
        except TypeError as exc:
            raise ConfigError(f'invalid synchroniser settings {dict(self.sync)}: {exc}') from None

    def cache_settings(self, rates: Mapping[str, float] | None = None) -> dict[str, Any]:
        """Everything that changes the cached rows (split settings do not)."""
        sync = self.sync_config(rates)
        sync_dict = (dataclasses.asdict(sync) if dataclasses.is_dataclass(sync)
                     else dict(self.sync))
        return {'image_size': self.image_size, 'wrench_window': self.wrench_window,
                'joints_window': self.joints_window,
                'joint_names': list(self.joint_names) if self.joint_names else None,
                'topics': dataclasses.asdict(self.topics),
                'sync': json.loads(json.dumps(sync_dict, default=str)),
                'reorder_ns': self.reorder_ns}


@dataclass(frozen=True)
class BagDataset:
    """The tuples of a set of bags (arrays usually memmaps of the cache).

    ``bag_index`` (N,) says which of ``bags`` a row came from; ``labels`` (N, 3) bool is the fault
    truth at each tuple stamp (all False when the bags hold no truth); ``intervals`` are the
    :class:`~lipfault_ros.truth.FaultInterval` records of all bags.
    """

    arrays: TupleArrays
    bag_index: np.ndarray
    labels: np.ndarray
    bags: tuple[str, ...]
    intervals: tuple[Any, ...] = ()
    cache_dir: Path | None = None
    index: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.arrays)

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.arrays.joint_names

    def clean(self) -> np.ndarray:
        """(N,) bool: rows with no fault in the truth and no modality missing."""
        return ~self.labels.any(axis=1) & ~np.asarray(self.arrays.missing).any(axis=1)


@dataclass(frozen=True)
class Split:
    """Training and validation rows: index arrays into the dataset and the arrays themselves."""

    train_index: np.ndarray
    val_index: np.ndarray
    train: TupleArrays
    val: TupleArrays


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/lipfault_ros/tuples`` (``~/.cache/...`` when unset)."""
    root = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return Path(root) / 'lipfault_ros' / 'tuples'


def bag_digest(path: str | Path) -> str:
    """sha256 over the names and bytes of every file of a bag (directory or single file)."""
    path = Path(path)
    files = sorted(p for p in path.rglob('*') if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + b'\0')
        with file.open('rb') as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


class _NpyAppender:
    """Rows appended to a ``.npy`` file in chunks: each chunk is written through a memmap of
    just its own rows (so resident memory stays one chunk, whatever the file size); the file is
    extended as needed and :meth:`finish` rewrites the header to the final row count."""

    def __init__(self, path: Path, row_shape: tuple[int, ...], dtype: Any, capacity: int) -> None:
        self.path = path
        self.row_shape = tuple(row_shape)
        self.dtype = np.dtype(dtype)
        self.row_bytes = self.dtype.itemsize * int(np.prod(self.row_shape, dtype=np.int64))
        self.n = 0
        self.capacity = max(1, int(capacity))
        mm = np.lib.format.open_memmap(path, mode='w+', dtype=self.dtype,
                                       shape=(self.capacity, *self.row_shape))
        self.offset = mm.offset
        del mm

    def append(self, rows: np.ndarray) -> None:
        k = len(rows)
        if k == 0:
            return
        if self.n + k > self.capacity:
            self.capacity = max(self.capacity * 2, self.n + k)
            with self.path.open('r+b') as fh:
                fh.truncate(self.offset + self.capacity * self.row_bytes)
        shape = (k, *self.row_shape)
        data = np.asarray(rows)
        if data.shape != shape:
            data = np.broadcast_to(data, shape)
        data = np.ascontiguousarray(data, dtype=self.dtype)
        with self.path.open('r+b') as fh:
            fh.seek(self.offset + self.n * self.row_bytes)
            fh.write(memoryview(data).cast('B'))
        self.n += k

    def read(self, start: int, count: int) -> np.ndarray:
        """Rows ``start .. start + count`` as written so far."""
        return np.fromfile(self.path, dtype=self.dtype, count=count * int(np.prod(
            self.row_shape, dtype=np.int64)), offset=self.offset + start * self.row_bytes
            ).reshape((count, *self.row_shape))

    def finish(self) -> None:
        with self.path.open('r+b') as fh:
            major = fh.read(8)[6]
            if major != 1:
                raise BagError(f'unexpected .npy header version {major} in {self.path}')
            header_len = int.from_bytes(fh.read(2), 'little')
            shape = (self.n, *self.row_shape)
            text = (f"{{'descr': {np.lib.format.dtype_to_descr(self.dtype)!r}, "
                    f"'fortran_order': False, 'shape': {shape!r}, }}")
            if len(text) + 1 > header_len:
                raise BagError(f'cannot rewrite the header of {self.path}')
            fh.seek(10)
            fh.write((text.ljust(header_len - 1) + '\n').encode('latin1'))
            fh.truncate(self.offset + self.n * self.row_bytes)


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


def load_cached(directory: str | Path) -> BagDataset:
    """Open a cache entry written by :func:`build_dataset` as memmaps."""
    directory = Path(directory)
    index_path = directory / 'index.json'
    if not index_path.is_file():
        raise FileNotFoundError(f'no tuple cache index at {index_path}')
    index = json.loads(index_path.read_text())
    if index.get('format') != CACHE_FORMAT or index.get('version') != CACHE_VERSION:
        raise BagError(f'{index_path} is not a version-{CACHE_VERSION} {CACHE_FORMAT} cache; '
                       f'delete {directory} to rebuild it')
    arrays = {}
    for name in _ARRAYS:
        arr = np.load(directory / f'{name}.npy', mmap_mode='r')
        meta = index['arrays'][name]
        if list(arr.shape) != meta['shape'] or str(arr.dtype) != meta['dtype']:
            raise BagError(f'tuple cache {directory}: {name}.npy is {arr.shape} {arr.dtype}, '
                           f'the index says {meta}; delete the directory to rebuild it')
        arrays[name] = arr
    from lipfault_ros import truth

    intervals = tuple(truth.FaultInterval(Modality(i['modality']), i['kind'], float(i['severity']),
                                          int(i['start_ns']), int(i['end_ns']))
                      for bag in index['bags'] for i in bag.get('intervals', []))
    ta = TupleArrays(arrays['stamps_ns'], arrays['images'], arrays['wrench'], arrays['joints'],
                     tuple(index['joint_names']), arrays['missing'])
    return BagDataset(ta, arrays['bag_index'], arrays['labels'],
                      tuple(b['path'] for b in index['bags']), intervals, directory, index)


def _interval_dict(interval: Any) -> dict[str, Any]:
    return {'modality': str(interval.modality), 'kind': str(interval.kind),
            'severity': float(interval.severity), 'start_ns': int(interval.start_ns),
            'end_ns': int(interval.end_ns)}


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
    from lipfault_ros import sync

    sync_config = config.sync_config(rates)

    size = config.image_size
    names = tuple(config.joint_names or ())
    camera_topic = config.topics.camera
    capacity = sum(int(i.counts.get(camera_topic, 0)) for i in infos) + 1
    writers = {
        'stamps_ns': _NpyAppender(directory / 'stamps_ns.npy', (), np.int64, capacity),
        'images': _NpyAppender(directory / 'images.npy', (size, size, 3), np.uint8, capacity),
        'wrench': _NpyAppender(directory / 'wrench.npy', (config.wrench_window, 6), np.float32,
                               capacity),
        'joints': _NpyAppender(directory / 'joints.npy', (config.joints_window, len(names), 3),
                               np.float32, capacity),
        'missing': _NpyAppender(directory / 'missing.npy', (3,), np.bool_, capacity),
        'labels': _NpyAppender(directory / 'labels.npy', (3,), np.bool_, capacity),
        'bag_index': _NpyAppender(directory / 'bag_index.npy', (), np.int32, capacity),
    }
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
            first_row = writers['stamps_ns'].n
            if b == 0 and first_reader is not None:
                # opened (and checked) already; its counters restart for the build
                opened = nullcontext(first_reader)
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
            bag_entries.append({'path': str(path), 'sha256': digest, 'storage': info.storage,
                                'first_row': first_row, 'rows': rows, 'reader': stats,
                                'intervals': [_interval_dict(i) for i in intervals]})
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


def _intervals(statuses: Sequence[Any]) -> list[Any]:
    if not statuses:
        return []
    from lipfault_ros import truth

    return list(truth.intervals_from_statuses(statuses))


def _write_labels(writers: Mapping[str, _NpyAppender], first_row: int, intervals: Sequence[Any],
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

    def __init__(self, writers: Mapping[str, _NpyAppender], config: DatasetConfig,
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


class RowView:
    """Selected rows of an array, read only when indexed: a split of a memmapped cache stays
    on disk (training reads each batch by ``view[batch_index]``).

    Supports what training and evaluation use: ``len``, ``shape``, ``ndim``, ``dtype``,
    indexing (int, slice, integer or bool array) and ``np.asarray`` (which reads every row).
    """

    def __init__(self, base: Any, rows: np.ndarray) -> None:
        self.base = base
        self.rows = np.asarray(rows, np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.base.shape[1:])

    @property
    def ndim(self) -> int:
        return self.base.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, tuple):
            return self[index[0]][(slice(None), *index[1:])]
        rows = self.rows[index]
        if np.ndim(rows) == 0:
            return self.base[int(rows)]
        if isinstance(index, slice):
            return RowView(self.base, rows)
        order = np.argsort(rows, kind='stable')
        out = np.asarray(self.base[rows[order]])  # sorted reads are sequential on disk
        result = np.empty_like(out)
        result[order] = out
        return result

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.asarray(self.base[self.rows])
        return out.astype(dtype) if dtype is not None else out


def _rows(arrays: TupleArrays, mask: np.ndarray) -> TupleArrays:
    idx = np.flatnonzero(mask)
    if len(idx) and idx[-1] - idx[0] + 1 == len(idx):
        return arrays.subset(slice(int(idx[0]), int(idx[-1]) + 1))  # contiguous: lazy already
    return TupleArrays(np.asarray(arrays.stamps_ns)[idx], RowView(arrays.images, idx),
                       RowView(arrays.wrench, idx), RowView(arrays.joints, idx),
                       arrays.joint_names, np.asarray(arrays.missing)[idx])


def split_dataset(dataset: BagDataset, *, mode: SplitMode | str = SplitMode.TIME,
                  val_fraction: float = 0.2, block_s: float = 10.0, gap_s: float = 1.0,
                  clean_only: bool = True) -> Split:
    """Training and validation rows, by time block or by bag (see the module docstring).

    ``clean_only`` keeps only rows with no fault truth and no missing modality in both parts
    (stage 1 learns clean data; thresholds are calibrated on clean validation data).
    """
    mode = SplitMode(mode)
    if not 0 < val_fraction < 1:
        raise ConfigError(f'val_fraction={val_fraction} must be in (0, 1)')
    n = len(dataset)
    stamps = np.asarray(dataset.arrays.stamps_ns)
    bag_index = np.asarray(dataset.bag_index)
    val = np.zeros(n, bool)
    train = np.zeros(n, bool)
    if mode is SplitMode.BAG:
        nb = len(dataset.bags)
        if nb < 2:
            raise ConfigError(f'split by bag needs at least two bags, got {nb} '
                              f'({", ".join(dataset.bags)}); use split by time')
        k = min(nb - 1, max(1, math.ceil(val_fraction * nb)))
        val_bags = set(range(nb - k, nb))
        val = np.isin(bag_index, list(val_bags))
        train = ~val
    else:
        every = max(2, round(1 / val_fraction))
        gap_ns = int(gap_s * 1e9)
        for b in np.unique(bag_index):
            rows = np.flatnonzero(bag_index == b)
            s = stamps[rows]
            t0 = int(s.min())
            blocks = (s - t0) // int(block_s * 1e9)
            if blocks.max() + 1 >= every:
                in_val = (blocks % every) == every - 1
            else:
                # shorter than `every` blocks: the last val_fraction of the bag
                cut = t0 + (1 - val_fraction) * (int(s.max()) - t0)
                in_val = s >= cut
            val[rows[in_val]] = True
            vs = np.sort(s[in_val])
            if len(vs):
                pos = np.searchsorted(vs, s)
                left = np.abs(s - vs[np.clip(pos - 1, 0, len(vs) - 1)])
                right = np.abs(vs[np.clip(pos, 0, len(vs) - 1)] - s)
                near = np.minimum(left, right) < gap_ns
            else:
                near = np.zeros(len(s), bool)
            train[rows[~in_val & ~near]] = True
    if clean_only:
        clean = dataset.clean()
        train &= clean
        val &= clean
    if not train.any() or not val.any():
        raise BagError(f'splitting {n} tuples by {mode} (val_fraction={val_fraction}, '
                       f'block_s={block_s}, gap_s={gap_s}) leaves {int(train.sum())} training and '
                       f'{int(val.sum())} validation tuples; record more data or change the split')
    return Split(np.flatnonzero(train), np.flatnonzero(val), _rows(dataset.arrays, train),
                 _rows(dataset.arrays, val))
