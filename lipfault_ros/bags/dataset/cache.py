"""The on-disk tuple cache: its format, the appender that writes it a chunk at a time, and
:func:`load_cached`, which maps it back as a :class:`BagDataset`.

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

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lipfault_ros.errors import BagError
from lipfault_ros.tuples import Modality, TupleArrays

__all__ = [
    'CACHE_FORMAT',
    'CACHE_VERSION',
    'BagDataset',
    'NpyAppender',
    'bag_digest',
    'default_cache_dir',
    'interval_dict',
    'load_cached',
]


CACHE_FORMAT = 'lipfault-tuples'
CACHE_VERSION = 1
_ARRAYS = ('stamps_ns', 'images', 'wrench', 'joints', 'missing', 'labels', 'bag_index')


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


class NpyAppender:
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


def interval_dict(interval: Any) -> dict[str, Any]:
    return {'modality': str(interval.modality), 'kind': str(interval.kind),
            'severity': float(interval.severity), 'start_ns': int(interval.start_ns),
            'end_ns': int(interval.end_ns)}
