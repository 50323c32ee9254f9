"""The camera background: a fixed view with a moving robot stays quiet, a lens fault over the
view is evidence at once, and what it flags never becomes the background."""

from __future__ import annotations

import numpy as np
import pytest

from lipfault_ros.background import BackgroundConfig, CameraBackground, background_series
from lipfault_ros.errors import ConfigError, InputError
from lipfault_ros.faults import corrupt_image

SIZE = 64


def _room(seed: int = 0) -> np.ndarray:
    """A still, textured room (smooth shading plus a few boxes), (64, 64, 3) float."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE] / SIZE
    room = np.stack([90 + 60 * xx, 100 + 50 * yy, 120 - 40 * xx * yy], axis=-1)
    for _ in range(6):
        y, x = rng.integers(0, SIZE - 12, 2)
        room[y:y + 10, x:x + 10] = rng.uniform(30, 220, 3)
    return room


def _frames(n: int, seed: int = 1) -> list[np.ndarray]:
    """A robot (a dark square) sweeping over a quarter of the view, and sensor noise."""
    rng = np.random.default_rng(seed)
    room = _room()
    out = []
    for i in range(n):
        frame = room.copy()
        x = int(8 + 20 * (1 + np.sin(i / 15.0)))
        frame[20:36, x:x + 12] = (40, 40, 45)
        frame += rng.normal(0.0, 2.0, frame.shape)
        out.append(np.clip(frame, 0, 255).astype(np.uint8))
    return out


def test_a_fixed_view_with_a_moving_robot_gives_no_evidence_after_the_warm_up():
    cfg = BackgroundConfig()
    ref = CameraBackground(cfg)
    ev = np.array([ref.step(f) for f in _frames(900)])
    # warm-up: a background from min_frames samples, then min_history deviations
    warm = (cfg.min_frames - 1) * cfg.sample_every + 1 + cfg.min_history
    assert np.isnan(ev[:warm]).all() and np.isfinite(ev[warm:]).all()
    assert not ref.warming
    assert ev[warm:].max() < 0.0


@pytest.mark.parametrize('kind', ['dust', 'scratches', 'perlin', 'water_drops', 'blur'])
def test_a_lens_fault_over_the_view_is_evidence_and_never_becomes_the_background(kind):
    frames = _frames(900)
    lens = np.random.default_rng(5)
    bad = np.zeros(len(frames), bool)
    bad[500:560] = True  # two seconds at 30 Hz
    seed = int(lens.integers(1 << 30))
    faulty = [corrupt_image(f, kind, 0.7, np.random.default_rng(seed)) if b else f
              for f, b in zip(frames, bad)]
    ev = background_series(faulty)
    assert (ev[bad] > 0).all()
    # the frames it flagged were not taken in: right after the fault the view reads clean
    assert ev[565:].max() < 0.0
    assert np.nanmax(ev[:500]) < 0.0


def test_a_missing_frame_changes_nothing_and_a_refused_tuple_is_not_taken_in():
    frames = _frames(400)
    a, b = CameraBackground(), CameraBackground()
    for i, f in enumerate(frames[:300]):
        a.step(f)
        b.step(f)
        if i % 7 == 0:
            assert np.isnan(b.step(None))
        if i % 11 == 0:
            b.evidence(frames[i + 1][::-1].copy())  # judged, then refused: never committed
    ours = [a.step(f) for f in frames[300:]]
    theirs = [b.step(f) for f in frames[300:]]
    np.testing.assert_array_equal(ours, theirs)
    b.commit()  # a second commit takes nothing in
    assert b.step(frames[0]) == a.step(frames[0])


def test_a_camera_that_moves_reads_as_evidence_so_it_must_be_turned_off():
    frames = _frames(500)
    moved = [np.roll(f, 6, axis=1) for f in frames[400:]]
    ev = background_series(frames[:400] + moved)
    assert (ev[400:] > 0).all()


def test_reset_starts_a_new_warm_up_and_larger_frames_are_judged_at_the_analysis_size():
    big = [np.repeat(np.repeat(f, 4, axis=0), 4, axis=1) for f in _frames(300)]
    ref = CameraBackground()
    ev = [ref.step(f) for f in big]
    assert np.isfinite(ev[-1]) and ev[-1] < 0
    ref.reset()
    assert ref.warming and np.isnan(ref.step(big[0]))


def test_bad_frames_and_settings_are_refused():
    ref = CameraBackground()
    with pytest.raises(InputError, match='uint8'):
        ref.evidence(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(InputError):
        ref.evidence(np.zeros((8, 8), np.uint8))
    for bad in ({'size': 60, 'blocks': 8}, {'min_frames': 40}, {'z_threshold': 0.0},
                {'quantile': 1.5}, {'sample_every': 0}, {'spread_floor': float('nan')}):
        with pytest.raises(ConfigError):
            BackgroundConfig(**bad)
