"""Stage-2 camera faults with their past: previous frames, frozen frames, lasting faults."""

from __future__ import annotations

import numpy as np
import torch

from lipfault_ros.model.config import ModelConfig
from lipfault_ros.synthetic import synthetic_arrays
from lipfault_ros.normalise import NormStats
from lipfault_ros.training.corruption import camera_history
from lipfault_ros.training.batches import TrainingData
from lipfault_ros.tuples import TupleArrays


def _data(arrays: TupleArrays) -> TrainingData:
    return TrainingData(arrays, NormStats.fit(arrays), ModelConfig.tiny(), torch.device('cpu'))


def test_the_previous_frame_is_the_row_before_unless_there_is_a_gap_or_no_frame():
    a = synthetic_arrays(8, image_size=32)  # 10 Hz
    stamps = np.array(a.stamps_ns)
    stamps[5:] += 2 * 10 ** 9  # a 2 s gap before row 5 (> camera_history_s)
    missing = np.array(a.missing)
    missing[2, 0] = True  # no camera frame in row 2
    data = _data(TupleArrays(stamps, a.images, a.wrench, a.joints, a.joint_names, missing))
    assert data.previous.tolist() == [-1, 0, -1, -1, 3, -1, 5, 6]
    prev, valid = data.previous_camera(np.array([6, 1, 5]))  # sorted like batch()
    assert valid.tolist() == [True, False, True]
    want = torch.from_numpy(np.asarray(a.images[[0, 5]])).permute(0, 3, 1, 2).float() / 255
    assert torch.equal(prev[[0, 2]], want)
    assert (prev[1] == 0).all()


def test_a_frozen_frame_repeats_its_predecessor_exactly_and_reads_no_change():
    data = _data(synthetic_arrays(8, image_size=32))
    idx = np.arange(1, 7)
    (cam, wr, jo), _ = data.batch(idx)
    prev, valid = data.previous_camera(idx)
    kinds = ['frozen_frame', '', 'blur', 'noise', 'occlusion', '']
    corrupted = cam.clone()
    corrupted[2:5] *= 0.5  # stands in for the corrupted frames; only the frozen one is rebuilt
    sev = np.full(6, 0.5)
    frames, clean, faulty = camera_history(cam, corrupted, kinds, sev, prev, valid,
                                           np.random.default_rng(0), np.random.default_rng(1),
                                           lasting=1.0)
    assert torch.equal(frames[0], prev[0])
    assert torch.equal(frames[1:], corrupted[1:])
    assert faulty[0] == 0.0 and (clean > 0).all()
    assert faulty[1] == clean[1]  # a clean row keeps its change


def test_a_lasting_contamination_is_on_the_previous_frame_too_with_the_same_geometry():
    from lipfault_ros.faults import corrupt_batch

    data = _data(synthetic_arrays(8, image_size=32))
    idx = np.arange(1, 5)
    (cam, _, _), _ = data.batch(idx)
    prev, valid = data.previous_camera(idx)
    kinds = ['occlusion', 'occlusion', 'noise', 'noise']
    sev = np.full(4, 0.8)
    replay = np.random.default_rng(5)
    rng = np.random.default_rng(5)
    corrupted = corrupt_batch('camera', cam, kinds, sev, rng)
    _, clean, lasting = camera_history(cam, corrupted, kinds, sev, prev, valid, replay,
                                       np.random.default_rng(2), lasting=1.0)
    _, _, onset = camera_history(cam, corrupted, kinds, sev, prev, valid,
                                 np.random.default_rng(5), np.random.default_rng(2), lasting=0.0)
    # the same rectangle on both frames: the pair changes about as much as the clean pair,
    # far less than at the fault's onset; noise drawn afresh per frame keeps changing a lot
    assert (lasting[:2] < 0.5 * onset[:2]).all()
    assert (lasting[2:] > 5 * clean[2:]).all()
