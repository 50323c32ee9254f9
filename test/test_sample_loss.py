"""Lost samples: a signal window that spans far more time than its stream's clean windows is
evidence of a fault; clean spans, short (padded) windows and missing modalities are not."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lipfault_ros.errors import ConfigError
from lipfault_ros.sample_loss import SampleLoss, SampleLossConfig, sample_loss_series
from lipfault_ros.tuples import Modality

W, J = Modality.WRENCH, Modality.JOINTS
CFG = SampleLossConfig(ratio=2.0, history=50, min_history=10)


def _clean(rng: np.random.Generator) -> dict[Modality, int]:
    # a 32-sample window at 500 Hz and a 32-sample one at 250 Hz, with stamp jitter
    return {W: int(62e6 + rng.normal(0, 2e5)), J: int(124e6 + rng.normal(0, 4e5))}


def test_warm_up_gives_no_evidence_then_clean_spans_stay_under_zero():
    rng = np.random.default_rng(0)
    ref = SampleLoss(CFG)
    first = [ref.step(_clean(rng)) for _ in range(CFG.min_history)]
    assert all(math.isnan(v) for ev in first for v in ev)
    later = np.array([ref.step(_clean(rng)) for _ in range(200)])
    assert np.isfinite(later).all()
    np.testing.assert_allclose(later, math.log(1 / CFG.ratio), atol=0.02)
    assert ref.nominal_ns(W) == pytest.approx(62e6, rel=0.01)
    assert ref.nominal_ns(J) == pytest.approx(124e6, rel=0.01)


def test_a_window_that_lost_most_of_its_messages_is_evidence_and_is_not_learnt():
    rng = np.random.default_rng(1)
    ref = SampleLoss(CFG)
    for _ in range(40):
        ref.step(_clean(rng))
    # 80 % of the wrench messages lost: the same 32 samples reach five times as far back
    for _ in range(100):  # longer than the history: a lasting loss must not become the norm
        wrench, joints = ref.step({W: 5 * 62_000_000, J: 124_000_000})
        assert wrench == pytest.approx(math.log(5 / CFG.ratio), abs=0.02)
        assert joints < 0
    assert ref.nominal_ns(W) == pytest.approx(62e6, rel=0.01)
    # half of them lost is just the limit; a single lost message is far from it
    assert ref.step({W: int(2.2 * 62e6), J: int(124e6 * 33 / 32)})[0] > 0
    assert ref.step({W: int(62e6 * 33 / 32), J: 124_000_000})[0] < -0.6


def test_short_windows_and_missing_modalities_say_nothing_of_a_loss():
    rng = np.random.default_rng(2)
    ref = SampleLoss(CFG)
    for _ in range(20):
        ref.step(_clean(rng))
    # a stream just started: a window padded with its oldest sample spans less, or nothing
    assert ref.step({W: 10_000_000, J: 0})[0] < 0
    assert math.isnan(ref.step({W: 0, J: 0})[1])
    wrench, joints = ref.step({J: 124_000_000})  # the wrench missing
    assert math.isnan(wrench) and joints < 0
    ref.reset()
    assert math.isnan(ref.nominal_ns(W)) and all(math.isnan(v) for v in ref.step(_clean(rng)))


def test_the_series_of_a_recording_is_the_live_evidence_step_by_step():
    rng = np.random.default_rng(3)
    spans = [_clean(rng) for _ in range(60)] + [{W: 400_000_000}] * 5 + \
        [_clean(rng) for _ in range(10)]
    live = SampleLoss(CFG)
    expected = np.array([live.step(s) for s in spans])
    got = sample_loss_series(spans, CFG)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(expected))
    assert (got[60:65, 0] > 0).all() and np.isnan(got[60:65, 1]).all()
    assert sample_loss_series([], CFG).shape == (0, 2)


def test_a_long_window_the_pipeline_received_late_is_its_own_loss_and_says_nothing():
    rng = np.random.default_rng(4)
    ref = SampleLoss(CFG)
    for _ in range(20):
        ref.step(_clean(rng), {W: 2_000_000, J: 2_000_000})  # jitter: judged as usual
    long = {W: 5 * 62_000_000, J: 5 * 124_000_000}
    # a sensor's loss: the remaining messages came on time
    assert min(ref.step(long, {W: 1_000_000, J: 0})) > 0
    assert ref.behind == [0, 0]
    # the pipeline's queues overflowed: the survivors came ~100 ms late
    wrench, joints = ref.step(long, {W: 98_000_000, J: 1_000_000})
    assert math.isnan(wrench) and joints > 0
    assert ref.behind == [1, 0]
    assert ref.nominal_ns(W) == pytest.approx(62e6, rel=0.01)  # not learnt from either
    # late but not long: the window is judged (and clean)
    assert ref.step(_clean(rng), {W: 98_000_000, J: 98_000_000})[0] < 0
    assert ref.behind == [1, 0]
    ref.reset()
    assert ref.behind == [1, 0]  # a counter for the diagnostics, kept through a relearn


@pytest.mark.parametrize('changes', [dict(ratio=1.0), dict(ratio=float('inf')),
                                     dict(history=5, min_history=6), dict(min_history=0),
                                     dict(max_backlog=0.0), dict(max_backlog=float('nan')),
                                     dict(gap_ratio=1.0)])
def test_settings_out_of_range_are_refused_with_their_name(changes):
    with pytest.raises(ConfigError, match='SampleLossConfig'):
        SampleLossConfig(**changes)
