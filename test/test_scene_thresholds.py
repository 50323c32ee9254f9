"""The scene reference: thresholds that follow a new scene's clean level, never a fault's."""

from __future__ import annotations

import numpy as np
import pytest

from lipfault_ros.errors import ConfigError
from lipfault_ros.scene_thresholds import SceneConfig, SceneReference, scene_series
from lipfault_ros.tuples import Modality

THR = np.array([2.0, 2.0, 2.0])
LEVELS = np.array([-1.0, -1.0, -1.0])


def _clean(n: int, level: float, seed: int = 0) -> np.ndarray:
    """(n, 3) clean-looking scores around ``level`` (spread about one logit unit)."""
    return level + np.random.default_rng(seed).normal(0.0, 0.7, (n, 3))


def _run(ref: SceneReference, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offsets before each row and its flags (relative score over threshold)."""
    offs, flags = np.zeros_like(scores), np.zeros(scores.shape, bool)
    for i, s in enumerate(scores):
        offs[i] = ref.offsets()
        flags[i] = s > THR + offs[i]
        ref.update(s, flags[i], np.zeros(3, bool))
    return offs, flags


def test_a_scene_that_reads_higher_raises_the_threshold_by_the_shift():
    scores = _clean(900, level=LEVELS[0] + 3.0)  # every clean score 3 units up
    assert (scores[:, 0] > THR[0]).mean() > 0.2  # calibrated threshold alone: alarms
    offs, flags = _run(SceneReference(SceneConfig(), LEVELS), scores)
    assert offs[-1, 0] == pytest.approx(3.0, abs=0.2)
    assert flags[60:, 0].mean() < 0.01
    assert not offs[:, 1:].any()  # the default follows the camera only


def test_a_fault_after_the_warm_up_never_moves_the_reference():
    cfg = SceneConfig(window=100, warmup=10)
    clean = _clean(300, level=0.0)
    fault = clean.copy()
    fault[200:, 0] += 8.0  # a lasting fault, far over the threshold
    ref = SceneReference(cfg, LEVELS)
    offs, flags = _run(ref, fault)
    before = offs[200, 0]  # what the reference held when the fault began
    assert before == pytest.approx(1.0, abs=0.3)
    assert np.all(offs[200:, 0] == before)
    assert flags[200:, 0].all()


def test_the_offset_is_never_negative_and_at_most_max_offset():
    low = _run(SceneReference(SceneConfig(), LEVELS), _clean(200, level=-4.0))[0]
    assert low.min() == 0.0 and low.max() < 0.5
    high = _run(SceneReference(SceneConfig(max_offset=2.5), LEVELS), _clean(200, level=9.0))[0]
    assert high.max() == 2.5


def test_the_warm_up_takes_in_a_scene_that_is_over_the_threshold_throughout():
    scores = _clean(200, level=5.0)  # every tuple over the calibrated threshold
    cold = _run(SceneReference(SceneConfig(warmup=0), LEVELS), scores)[1]
    warm = _run(SceneReference(SceneConfig(warmup=30), LEVELS), scores)[1]
    assert cold[:, 0].all()  # nothing trusted, nothing learnt
    assert warm[30:, 0].mean() < 0.05


def test_a_modality_without_a_level_or_not_chosen_keeps_offset_zero():
    scores = _clean(100, level=4.0)
    for cfg, levels in ((SceneConfig(), np.array([np.nan, -1.0, -1.0])),
                        (SceneConfig(modalities=()), LEVELS), (SceneConfig(), None)):
        ref = SceneReference(cfg, levels)
        assert not _run(ref, scores)[0].any()
    both = SceneReference(SceneConfig(modalities=('camera', 'joints')), LEVELS)
    offs = _run(both, scores)[0]
    assert offs[-1, 0] > 4.0 and offs[-1, 2] > 4.0 and offs[-1, 1] == 0.0


def test_missing_and_non_finite_scores_are_never_taken_in():
    ref = SceneReference(SceneConfig(warmup=5), LEVELS)
    for _ in range(5):
        ref.update(np.array([np.inf, 0.0, 0.0]), np.zeros(3, bool), np.zeros(3, bool))
        ref.update(np.array([9.0, 0.0, 0.0]), np.zeros(3, bool), np.array([True, False, False]))
    assert ref.offsets()[0] == 0.0 and ref.warming(Modality.CAMERA)
    ref.update(np.array([0.0, 0.0, 0.0]), np.zeros(3, bool), np.zeros(3, bool))
    assert ref.offsets()[0] == pytest.approx(1.0)
    assert ref.relearn() == 'forgot camera offset 1.00; the next 5 tuples are a warm-up'
    assert ref.offsets()[0] == 0.0 and ref.warming(Modality.CAMERA)
    assert SceneReference(SceneConfig(), None).relearn() == 'no threshold follows the scene'


def test_scene_series_is_the_live_rule_over_a_recorded_series():
    scores = _clean(400, level=1.5, seed=4)
    scores[250:280, 0] += 6.0
    missing = np.zeros(scores.shape, bool)
    missing[100:110] = True
    cfg = SceneConfig(window=120, warmup=20)
    ref = SceneReference(cfg, LEVELS)
    expected = np.zeros_like(scores)
    for i, s in enumerate(scores):
        expected[i] = ref.offsets()
        ref.update(s, s > THR + expected[i], missing[i])
    np.testing.assert_array_equal(scene_series(scores, missing, THR, LEVELS, cfg), expected)


@pytest.mark.parametrize('kw', [{'modalities': ('lidar',)}, {'window': 0},
                                {'warmup': 400, 'window': 300}, {'max_offset': -1.0},
                                {'max_offset': float('inf')}])
def test_invalid_settings_are_refused(kw):
    with pytest.raises(ConfigError):
        SceneConfig(**kw)
