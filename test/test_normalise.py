"""NormStats: fitting, layouts, round trips, refusal of bad stats."""

from __future__ import annotations

import numpy as np
import pytest

from lipfault_ros.errors import ConfigError, InputError
from lipfault_ros.synthetic import synthetic_arrays
from lipfault_ros.normalise import NormStats, channels_to_joints, joints_to_channels


def test_fit_standardises_each_channel_and_round_trips():
    arrays = synthetic_arrays(64, window=16)
    stats = NormStats.fit(arrays)
    w = stats.normalise_wrench(arrays.wrench)
    assert w.shape == (64, 6, 16) and w.dtype == np.float32
    assert np.allclose(w.mean(axis=(0, 2)), 0, atol=1e-4)
    assert np.allclose(w.std(axis=(0, 2)), 1, atol=1e-3)
    j = stats.normalise_joints(arrays.joints)
    assert j.shape == (64, 21, 16)
    assert np.allclose(stats.denormalise_wrench(w), arrays.wrench, atol=1e-4)
    assert np.allclose(stats.denormalise_joints(j), arrays.joints, atol=1e-4)


def test_joint_channel_layout_is_joint_major():
    joints = np.arange(4 * 2 * 3, dtype=np.float32).reshape(4, 2, 3)  # (T, J, 3)
    ch = joints_to_channels(joints)
    assert ch.shape == (6, 4)
    assert ch[3 * 1 + 2, 0] == joints[0, 1, 2]  # joint 1, effort
    assert np.array_equal(channels_to_joints(ch, 2), joints)


def test_constant_channel_and_missing_rows_do_not_poison_the_stats():
    arrays = synthetic_arrays(32, window=16)
    arrays.joints[:, :, 0, 2] = 5.0  # a joint with constant effort
    arrays.missing[:4, 1] = True
    arrays.wrench[:4] = np.nan  # missing rows hold garbage
    stats = NormStats.fit(arrays)
    assert stats.joints_std[0, 2] == 1.0
    assert np.all(np.isfinite(stats.wrench_mean))


def test_dict_round_trip_and_refusals():
    stats = NormStats.identity(3)
    assert NormStats.from_dict(stats.to_dict()).to_dict() == stats.to_dict()
    with pytest.raises(ConfigError, match='NormStats is missing wrench_std'):
        NormStats.from_dict({'wrench_mean': [0] * 6})
    with pytest.raises(ConfigError, match=r'wrench_mean must be \(6,\)'):
        NormStats(np.zeros(5), np.ones(6), np.zeros((3, 3)), np.ones((3, 3)))
    with pytest.raises(ConfigError, match='std values must be positive'):
        NormStats(np.zeros(6), np.zeros(6), np.zeros((3, 3)), np.ones((3, 3)))


def test_fit_on_empty_set_is_refused():
    arrays = synthetic_arrays(4, window=16).subset(slice(0, 0))
    with pytest.raises(InputError, match='empty'):
        NormStats.fit(arrays)
