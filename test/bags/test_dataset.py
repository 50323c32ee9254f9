"""Bags -> synchronised training tuples -> the .npy cache -> train/validation splits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lipfault_ros.bags.dataset import (BagDataset, DatasetConfig, SplitMode, bag_digest,
                                       build_dataset, load_cached, split_dataset)
from lipfault_ros.bags.dataset.cache import NpyAppender
from lipfault_ros.errors import BagError, ConfigError
from lipfault_ros.normalise import NormStats
from lipfault_ros.tuples import TupleArrays

from synthetic import JOINTS, write_bag

CONFIG = DatasetConfig(image_size=16, wrench_window=8, joints_window=8, block_s=1.0, gap_s=0.2)


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp('bags')
    return (write_bag(root / 'a', storage='mcap', duration_s=5.0,
                      truth=[('wrench', 'spike', 1.0, 2.0)]),
            write_bag(root / 'b', storage='sqlite3', duration_s=3.0, distro='ROS2_HUMBLE',
                      start_s=500.0))


def test_one_tuple_per_camera_frame_with_model_sized_arrays(bags, tmp_path):
    ds = build_dataset(bags, CONFIG, cache_dir=tmp_path, progress=False)
    assert isinstance(ds, BagDataset) and len(ds) == 80
    a = ds.arrays
    assert isinstance(a, TupleArrays) and isinstance(a.images, np.memmap)
    assert a.images.shape == (80, 16, 16, 3) and a.images.dtype == np.uint8
    assert a.wrench.shape == (80, 8, 6) and a.joints.shape == (80, 8, 7, 3)
    assert a.joint_names == JOINTS
    assert np.all(np.diff(a.stamps_ns[:50]) > 0) and np.all(np.diff(a.stamps_ns[50:]) > 0)
    assert list(np.bincount(ds.bag_index)) == [50, 30]
    # the wrench window ends at the camera stamp: its last row is the synthetic signal there
    s = a.stamps_ns[20] / 1e9
    assert a.wrench[20, -1, 0] == pytest.approx(np.sin(s * 3), abs=0.1)
    # truth: a spike on the wrench between 1 s and 2 s of bag a
    assert ds.labels[:, 1].sum() == 10 and not ds.labels[:, [0, 2]].any()
    assert ds.clean().sum() == 70
    stats = NormStats.fit(a)
    assert stats.joints_mean.shape == (7, 3)


def test_cache_is_reused_and_documented(bags, tmp_path):
    first = build_dataset(bags, CONFIG, cache_dir=tmp_path, progress=False)
    index = json.loads((first.cache_dir / 'index.json').read_text())
    assert index['format'] == 'lipfault-tuples' and index['version'] == 1 and index['n'] == 80
    assert [b['sha256'] for b in index['bags']] == [bag_digest(b) for b in bags]
    assert index['bags'][0]['intervals'][0]['kind'] == 'spike'
    for name in ('stamps_ns', 'images', 'wrench', 'joints', 'missing', 'labels', 'bag_index'):
        arr = np.load(first.cache_dir / f'{name}.npy', mmap_mode='r')
        assert list(arr.shape) == index['arrays'][name]['shape']
    again = build_dataset(bags, CONFIG, cache_dir=tmp_path, progress=False)
    assert again.cache_dir == first.cache_dir
    assert again.index['created_ns'] == index['created_ns']  # not rebuilt
    other = build_dataset(bags, DatasetConfig(image_size=8, wrench_window=8, joints_window=8),
                          cache_dir=tmp_path, progress=False)
    assert other.cache_dir != first.cache_dir and other.arrays.images.shape[1:3] == (8, 8)
    assert np.array_equal(load_cached(first.cache_dir).arrays.wrench, first.arrays.wrench)
    assert not list(tmp_path.glob('*.partial-*'))


def test_split_by_time_block_keeps_blocks_whole_and_apart(bags):
    ds = build_dataset(bags, CONFIG, progress=False)
    split = split_dataset(ds, mode=SplitMode.TIME, val_fraction=0.2, block_s=1.0, gap_s=0.2)
    assert not set(split.train_index) & set(split.val_index)
    stamps = ds.arrays.stamps_ns
    for v in split.val_index:
        nearest = np.min(np.abs(stamps[split.train_index] - stamps[v]))
        assert nearest >= 0.2e9
    # bag a (5 blocks): its 5th one-second block; bag b (3 blocks, too few): its last 20 %
    val_a = split.val_index[ds.bag_index[split.val_index] == 0]
    assert len(val_a) in (9, 10) and np.all(stamps[val_a] >= 104e9)
    assert 0 < len(split.val) - len(val_a) <= 7 and len(split.train) > 40
    assert not ds.labels[split.train_index].any()
    assert len(split.train) == len(split.train_index)


def test_split_by_bag(bags):
    ds = build_dataset(bags, CONFIG, progress=False)
    split = split_dataset(ds, mode='bag', val_fraction=0.3)
    assert set(ds.bag_index[split.val_index]) == {1}
    assert set(ds.bag_index[split.train_index]) == {0}
    one = build_dataset(bags[:1], CONFIG, progress=False)
    with pytest.raises(ConfigError, match='split by bag needs at least two bags'):
        split_dataset(one, mode='bag')


def test_bag_shorter_than_one_window_is_refused(tmp_path):
    bag = write_bag(tmp_path / 'short', duration_s=0.2)
    config = DatasetConfig(image_size=16, wrench_window=32, joints_window=8)
    with pytest.raises(BagError, match=r'short holds 20 messages on /wrench, fewer than one '
                                       r'wrench history window of 32'):
        build_dataset(bag, config, progress=False)


def test_model_joints_missing_from_bag_are_refused(bags):
    config = DatasetConfig(image_size=16, wrench_window=8, joints_window=8,
                           joint_names=JOINTS + ('finger',))
    with pytest.raises(BagError, match=r"has no joints \['finger'\]"):
        build_dataset(bags, config, progress=False)


def test_config_errors_name_the_setting():
    with pytest.raises(ConfigError, match=r"unknown data settings \['shuffle'\]"):
        DatasetConfig.from_dict({'shuffle': True})
    with pytest.raises(ConfigError, match='val_fraction'):
        DatasetConfig(val_fraction=1.5)
    with pytest.raises(ValueError):
        DatasetConfig(split='random')


def test_npy_appender_grows_and_shrinks_to_the_rows_written(tmp_path):
    app = NpyAppender(tmp_path / 'x.npy', (2, 3), np.float32, capacity=4)
    rows = np.arange(60, dtype=np.float32).reshape(10, 2, 3)
    app.append(rows[:3])
    app.append(rows[3:])
    app.finish()
    out = np.load(tmp_path / 'x.npy', mmap_mode='r')
    assert out.shape == (10, 2, 3) and np.array_equal(out, rows)
