"""The fault library: registry, per-frame and per-window corruption, batches and streams."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from lipfault_ros.errors import FaultError, InputError
from lipfault_ros.faults import (
    FAULTS,
    FaultSpec,
    ImageFault,
    SignalFault,
    StreamFault,
    check_fault,
    corrupt_batch,
    corrupt_image,
    corrupt_window,
    main,
)
from lipfault_ros.tuples import Modality

IMAGE_KINDS = FAULTS[Modality.CAMERA]
SIGNAL_KINDS = FAULTS[Modality.WRENCH]


@pytest.fixture(scope='module')
def image() -> np.ndarray:
    """A structured frame (gradients + a bright square) with some texture."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:64, :80]
    img = np.stack([xx * 3, yy * 3, (xx + yy) * 2], axis=-1).astype(np.float64)
    img[20:40, 30:50] = 200
    img += rng.normal(0, 10, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope='module')
def window() -> np.ndarray:
    rng = np.random.default_rng(3)
    return (np.sin(np.linspace(0, 6, 48))[:, None] + rng.normal(0, 0.3, (48, 6))
            ).astype(np.float32)


def test_registry_holds_the_required_faults():
    assert {'blur', 'noise', 'occlusion', 'black_frame', 'frozen_frame'} <= set(IMAGE_KINDS)
    for modality in (Modality.WRENCH, Modality.JOINTS):
        assert {'noise', 'bias', 'drift', 'spike', 'stuck', 'dropout'} <= set(FAULTS[modality])
    assert set(IMAGE_KINDS) == {f.value for f in ImageFault}
    assert set(SIGNAL_KINDS) == {f.value for f in SignalFault}


def test_check_fault_rejects_unknown_names_listing_valid_ones():
    assert check_fault('camera', 'blur') == 'blur'
    with pytest.raises(FaultError, match=r"unknown wrench fault 'blur'; valid: noise, bias"):
        check_fault(Modality.WRENCH, 'blur')
    with pytest.raises(FaultError, match="unknown fault modality 'lidar'"):
        check_fault('lidar', 'noise')


@pytest.mark.parametrize('kind', IMAGE_KINDS)
def test_every_image_fault_changes_the_frame_keeps_shape_and_is_seeded(kind, image):
    previous = image[::-1].copy()
    a = corrupt_image(image, kind, 0.5, np.random.default_rng(1), previous=previous)
    b = corrupt_image(image, kind, 0.5, np.random.default_rng(1), previous=previous)
    assert a.dtype == np.uint8 and a.shape == image.shape
    assert np.array_equal(a, b)
    assert np.abs(a.astype(int) - image).mean() > 0.5, kind
    assert not np.shares_memory(a, image)


def test_stronger_severity_corrupts_more(image):
    for kind in ('blur', 'noise', 'occlusion', 'brightness'):
        weak = corrupt_image(image, kind, 0.1, np.random.default_rng(5))
        strong = corrupt_image(image, kind, 1.0, np.random.default_rng(5))
        assert np.abs(strong.astype(int) - image).mean() > np.abs(weak.astype(int) - image).mean()


def test_frozen_frame_without_a_previous_frame_is_the_frame_itself(image):
    out = corrupt_image(image, 'frozen_frame', 0.5, np.random.default_rng(0))
    assert np.array_equal(out, image)


def test_image_faults_refuse_bad_input(image):
    with pytest.raises(InputError, match=r'\(H, W, 3\) uint8'):
        corrupt_image(image.astype(np.float32), 'blur', 0.5, np.random.default_rng(0))
    with pytest.raises(FaultError, match=r'severity must be in \(0, 1\], got 0.0'):
        corrupt_image(image, 'blur', 0.0, np.random.default_rng(0))
    with pytest.raises(FaultError, match=r'severity must be in \(0, 1\], got 1.5'):
        corrupt_image(image, 'blur', 1.5, np.random.default_rng(0))
    with pytest.raises(FaultError, match="unknown camera fault 'drift'"):
        corrupt_image(image, 'drift', 0.5, np.random.default_rng(0))


@pytest.mark.parametrize('kind', SIGNAL_KINDS)
@pytest.mark.parametrize('onset', [0, 20])
def test_every_signal_fault_changes_only_where_its_mask_says(kind, onset, window):
    out, mask = corrupt_window(window, kind, 0.5, np.random.default_rng(2), onset=onset)
    again, mask2 = corrupt_window(window, kind, 0.5, np.random.default_rng(2), onset=onset)
    assert out.dtype == window.dtype and out.shape == window.shape
    assert mask.dtype == bool and mask.shape == (window.shape[0],)
    assert np.array_equal(out, again) and np.array_equal(mask, mask2)
    changed = (out != window).any(axis=1)
    assert not changed[~mask].any(), f'{kind} changed samples outside its mask'
    assert changed[mask].any(), f'{kind} changed nothing inside its mask'
    assert not mask[:onset].any()


def test_signal_magnitudes_follow_the_scale(window):
    flat = np.zeros((32, 2), np.float32)
    scale = np.array([1.0, 100.0])
    out, _ = corrupt_window(flat, 'noise', 0.5, np.random.default_rng(0), scale=scale)
    sd = out.std(axis=0)
    assert 0.4 < sd[0] < 1.2 and 40 < sd[1] < 120
    out, _ = corrupt_window(flat, 'bias', 1.0, np.random.default_rng(0), scale=10.0)
    hit = np.abs(out).max(axis=0)
    assert set(np.round(hit[hit > 0], 3)) == {30.0}


def test_window_faults_refuse_bad_input(window):
    with pytest.raises(InputError, match=r'non-empty \(T, C\)'):
        corrupt_window(window[:, 0], 'noise', 0.5, np.random.default_rng(0))
    with pytest.raises(InputError, match='onset 48 outside the window of 48 samples'):
        corrupt_window(window, 'noise', 0.5, np.random.default_rng(0), onset=48)
    with pytest.raises(InputError, match=r'scale has shape \(3,\)'):
        corrupt_window(window, 'noise', 0.5, np.random.default_rng(0), scale=np.ones(3))
    with pytest.raises(FaultError, match="unknown wrench fault 'blur'"):
        corrupt_window(window, 'blur', 0.5, np.random.default_rng(0))


def test_corrupt_batch_camera_corrupts_only_the_chosen_samples():
    x = torch.rand(4, 3, 32, 40)
    kinds = ['blur', '', 'occlusion', 'none']
    out = corrupt_batch('camera', x, kinds, 0.7, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out[1], x[1]) and torch.equal(out[3], x[3])
    assert (out[0] - x[0]).abs().mean() > 0.01 and (out[2] - x[2]).abs().mean() > 0.01
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    again = corrupt_batch('camera', x, kinds, 0.7, np.random.default_rng(0))
    assert torch.equal(out, again)


def test_corrupt_batch_signals_per_sample_kinds_and_severities():
    x = torch.randn(len(SIGNAL_KINDS) + 1, 6, 32)
    kinds = list(SIGNAL_KINDS) + ['']
    sev = torch.linspace(0.2, 1.0, len(kinds))
    out = corrupt_batch(Modality.WRENCH, x, kinds, sev, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out[-1], x[-1])
    for i in range(len(SIGNAL_KINDS)):
        assert not torch.equal(out[i], x[i]), kinds[i]
    joints = torch.randn(2, 21, 16)
    out = corrupt_batch('joints', joints, ['stuck', 'drift'], 0.5, np.random.default_rng(0),
                        onsets=[4, 0])
    assert torch.equal(out[0, :, :4], joints[0, :, :4])


def test_corrupt_batch_refuses_mismatched_shapes():
    with pytest.raises(InputError, match=r'batch of shape \(2, 6, 8\) with 3 kinds'):
        corrupt_batch('wrench', torch.zeros(2, 6, 8), ['noise'] * 3, 0.5,
                      np.random.default_rng(0))
    with pytest.raises(InputError, match=r'camera batch must be \(B, 3, H, W\)'):
        corrupt_batch('camera', torch.zeros(2, 1, 8, 8), ['blur'] * 2, 0.5,
                      np.random.default_rng(0))


def test_fault_spec_parse_and_errors():
    spec = FaultSpec.parse('camera:blur:0.5:10:5')
    assert spec == FaultSpec(Modality.CAMERA, 'blur', 0.5, 10.0, 5.0)
    assert str(spec) == 'camera:blur:0.5:10:5' and spec.end_s == 15.0
    assert FaultSpec.parse('wrench:drift:1:0:inf').duration_s == float('inf')
    interval = spec.interval(1_000)
    assert (interval.start_ns, interval.end_ns) == (1_000 + 10 * 10**9, 1_000 + 15 * 10**9)
    with pytest.raises(FaultError, match='5 fields, got 3'):
        FaultSpec.parse('camera:blur:0.5')
    with pytest.raises(FaultError, match="severity 'high' is not a number"):
        FaultSpec.parse('camera:blur:high:1:1')
    with pytest.raises(FaultError, match="unknown camera fault 'drift'"):
        FaultSpec.parse('camera:drift:0.5:1:1')
    with pytest.raises(FaultError, match="unknown fault modality 'gps'"):
        FaultSpec.parse('gps:noise:0.5:1:1')
    with pytest.raises(FaultError, match=r'severity must be in \(0, 1\], got 2.0'):
        FaultSpec.parse('wrench:noise:2:1:1')
    with pytest.raises(FaultError, match='start_s must be a finite number >= 0'):
        FaultSpec.parse('wrench:noise:0.5:-1:1')
    with pytest.raises(FaultError, match='duration_s must be > 0'):
        FaultSpec.parse('wrench:noise:0.5:1:0')


def test_stream_fault_lasting_behaviour():
    values = np.arange(6, dtype=np.float64)
    # stuck holds the last value seen before the onset
    stuck = StreamFault(FaultSpec('wrench', 'stuck', 1.0, 1.0, 1.0), np.random.default_rng(0))
    assert np.array_equal(stuck.apply_values(0.9, values), values)
    assert np.array_equal(stuck.apply_values(1.1, values + 5), values)
    assert np.array_equal(stuck.apply_values(2.5, values + 7), values + 7)
    # drift grows with the time since onset
    drift = StreamFault(FaultSpec('joints', 'drift', 0.5, 1.0, 10.0), np.random.default_rng(0))
    d1 = np.abs(drift.apply_values(2.0, values) - values).sum()
    d2 = np.abs(drift.apply_values(5.0, values) - values).sum()
    assert 0 < d1 < d2
    assert not drift.active(11.0) and drift.active(1.0)
    # dropout at severity 1 drops every message
    dropout = StreamFault(FaultSpec('wrench', 'dropout', 1.0, 0.0, 1.0), np.random.default_rng(0))
    assert all(dropout.apply_values(t, values) is None for t in np.linspace(0, 0.99, 20))


def test_stream_fault_images_frozen_and_persistent(image):
    frozen = StreamFault(FaultSpec('camera', 'frozen_frame', 0.5, 1.0, 1.0),
                         np.random.default_rng(0))
    frozen.apply_image(0.9, image)
    assert np.array_equal(frozen.apply_image(1.2, image[::-1].copy()), image)
    occl = StreamFault(FaultSpec('camera', 'occlusion', 0.5, 0.0, 5.0), np.random.default_rng(0))
    a, b = occl.apply_image(0.1, image), occl.apply_image(0.2, image)
    assert np.array_equal(a, b) and not np.array_equal(a, image)  # the occluder stays put


def test_faults_command_lists_the_registry(capsys):
    assert main(argparse.Namespace(modality=None)) == 0
    out = capsys.readouterr().out
    for kind in IMAGE_KINDS + SIGNAL_KINDS:
        assert f'  {kind} ' in out
    assert main(argparse.Namespace(modality='wrench')) == 0
    out = capsys.readouterr().out
    assert 'camera:' not in out and 'wrench:' in out
