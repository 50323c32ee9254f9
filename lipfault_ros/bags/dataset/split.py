"""Training and validation rows of a :class:`~lipfault_ros.bags.dataset.cache.BagDataset`.

Splits are by time block or by bag, never by shuffled tuple: neighbouring tuples share most of
their history windows, so a shuffled split would put near-copies of validation tuples into
training. With ``split='time'`` each bag is cut into blocks of ``block_s`` seconds and every k-th
block (k = round(1 / val_fraction)) goes to validation; training tuples closer than ``gap_s`` to a
validation block are dropped, so no window straddles the border. With ``split='bag'`` the last
bags (by the order given) are the validation set.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lipfault_ros.bags.dataset.cache import BagDataset
from lipfault_ros.errors import BagError, ConfigError
from lipfault_ros.tuples import TupleArrays

__all__ = ['RowView', 'Split', 'SplitMode', 'split_dataset', 'val_bag_count']


def val_bag_count(bags: int, val_fraction: float) -> int:
    """How many of ``bags`` (>= 2) the split by bag holds back: ``val_fraction`` of them
    rounded up, at least one, and at least one left to train on."""
    return min(bags - 1, max(1, math.ceil(val_fraction * bags)))


class SplitMode(str, enum.Enum):
    """How validation data is set apart: whole time blocks of each bag, or whole bags."""

    TIME = 'time'
    BAG = 'bag'

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Split:
    """Training and validation rows: index arrays into the dataset and the arrays themselves."""

    train_index: np.ndarray
    val_index: np.ndarray
    train: TupleArrays
    val: TupleArrays


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
        k = val_bag_count(nb, val_fraction)
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
