"""Per-channel normalisation of the wrench and joint streams, and the array layouts of the model.

One ``NormStats`` travels inside the model artifact, so training, the live node and offline
evaluation normalise identically. Camera frames are not standardised: they are scaled to [0, 1].

Layouts: a wrench window (T, 6) becomes (6, T); a joints window (T, J, 3) becomes (3J, T) with
channel ``3 * j + k`` = joint j, field k (0 position, 1 velocity, 2 effort).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from lipfault_ros.errors import ConfigError, InputError
from lipfault_ros.tuples import TupleArrays

__all__ = ['NormStats', 'joints_to_channels', 'channels_to_joints']

_STD_FLOOR = 1e-6


def joints_to_channels(joints: np.ndarray) -> np.ndarray:
    """(..., T, J, 3) -> (..., 3J, T)."""
    t, j = joints.shape[-3], joints.shape[-2]
    flat = joints.reshape(*joints.shape[:-3], t, j * 3)
    return np.swapaxes(flat, -1, -2)


def channels_to_joints(channels: np.ndarray, n_joints: int) -> np.ndarray:
    """(..., 3J, T) -> (..., T, J, 3)."""
    t = channels.shape[-1]
    return np.swapaxes(channels, -1, -2).reshape(*channels.shape[:-2], t, n_joints, 3)


@dataclass(frozen=True)
class NormStats:
    """Mean and standard deviation per channel: wrench (6,), joints (J, 3).

    Channels with (near) zero spread get std 1, so a constant signal (e.g. a joint that never
    moves) does not blow up to huge normalised values on the slightest change.
    """

    wrench_mean: np.ndarray
    wrench_std: np.ndarray
    joints_mean: np.ndarray
    joints_std: np.ndarray

    def __post_init__(self) -> None:
        for name, shape in (('wrench_mean', (6,)), ('wrench_std', (6,))):
            arr = np.asarray(getattr(self, name), np.float64)
            if arr.shape != shape:
                raise ConfigError(f'NormStats.{name} must be {shape}, got {arr.shape}')
            object.__setattr__(self, name, arr)
        jm = np.asarray(self.joints_mean, np.float64)
        js = np.asarray(self.joints_std, np.float64)
        if jm.ndim != 2 or jm.shape[1] != 3 or js.shape != jm.shape:
            raise ConfigError(f'NormStats.joints_mean/std must be (J, 3), got {jm.shape}, '
                              f'{js.shape}')
        object.__setattr__(self, 'joints_mean', jm)
        object.__setattr__(self, 'joints_std', js)
        for name in ('wrench_mean', 'wrench_std', 'joints_mean', 'joints_std'):
            if not np.all(np.isfinite(getattr(self, name))):
                raise ConfigError(f'NormStats.{name} has non-finite values')
        if np.any(self.wrench_std <= 0) or np.any(self.joints_std <= 0):
            raise ConfigError('NormStats std values must be positive')

    @property
    def n_joints(self) -> int:
        return self.joints_mean.shape[0]

    @classmethod
    def identity(cls, n_joints: int) -> NormStats:
        """Mean 0, std 1: for data that is already normalised."""
        return cls(np.zeros(6), np.ones(6), np.zeros((n_joints, 3)), np.ones((n_joints, 3)))

    @classmethod
    def fit(cls, arrays: TupleArrays, *, max_rows: int = 20000) -> NormStats:
        """Statistics over the present, finite rows of ``arrays`` (at most ``max_rows``, evenly
        spaced, so a memmapped set is not read whole)."""
        n = len(arrays)
        if n == 0:
            raise InputError('cannot fit NormStats on an empty TupleArrays')
        idx = np.unique(np.linspace(0, n - 1, min(n, max_rows)).astype(np.int64))
        missing = np.asarray(arrays.missing[idx])

        def stats(data: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
            data = data.astype(np.float64)
            data = np.where(np.isfinite(data), data, np.nan)
            if data.shape[0] == 0:
                shape = data.shape[len(axes):]
                return np.zeros(shape), np.ones(shape)
            mean = np.nanmean(data, axis=axes)
            std = np.nanstd(data, axis=axes)
            mean = np.where(np.isfinite(mean), mean, 0.0)
            std = np.where(np.isfinite(std) & (std > _STD_FLOOR), std, 1.0)
            return mean, std

        wrench = np.asarray(arrays.wrench[idx])[~missing[:, 1]]
        joints = np.asarray(arrays.joints[idx])[~missing[:, 2]]
        wm, ws = stats(wrench, (0, 1))
        jm, js = stats(joints, (0, 1))
        return cls(wm, ws, jm, js)

    def normalise_wrench(self, wrench: np.ndarray) -> np.ndarray:
        """(..., T, 6) raw -> (..., 6, T) float32 normalised."""
        out = (wrench - self.wrench_mean) / self.wrench_std
        return np.swapaxes(out, -1, -2).astype(np.float32)

    def denormalise_wrench(self, x: np.ndarray) -> np.ndarray:
        """(..., 6, T) normalised -> (..., T, 6) float64 in N / Nm."""
        return np.swapaxes(x, -1, -2).astype(np.float64) * self.wrench_std + self.wrench_mean

    def normalise_joints(self, joints: np.ndarray) -> np.ndarray:
        """(..., T, J, 3) raw -> (..., 3J, T) float32 normalised."""
        out = (joints - self.joints_mean) / self.joints_std
        return joints_to_channels(out).astype(np.float32)

    def denormalise_joints(self, x: np.ndarray) -> np.ndarray:
        """(..., 3J, T) normalised -> (..., T, J, 3) float64 in joint units."""
        out = channels_to_joints(x.astype(np.float64), self.n_joints)
        return out * self.joints_std + self.joints_mean

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k).tolist() for k in
                ('wrench_mean', 'wrench_std', 'joints_mean', 'joints_std')}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NormStats:
        try:
            return cls(*(np.asarray(data[k], np.float64) for k in
                         ('wrench_mean', 'wrench_std', 'joints_mean', 'joints_std')))
        except KeyError as exc:
            raise ConfigError(f'NormStats is missing {exc.args[0]}') from exc
        except (TypeError, ValueError) as exc:
            raise ConfigError(f'invalid NormStats: {exc}') from exc
