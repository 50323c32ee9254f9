"""Baselines are judged with the camera background's evidence by the engine's rule."""

from __future__ import annotations

import numpy as np

from lipfault_ros.evaluation.comparison import with_evidence


def test_evidence_over_zero_lifts_the_score_over_threshold_and_under_zero_leaves_it():
    scores = np.array([[0.5, 1.0, 1.0], [0.5, 1.0, 1.0], [9.0, 1.0, 1.0], [0.5, 1.0, 1.0]])
    thr = np.array([2.0, 3.0, 3.0])
    ev = np.array([[np.nan] * 3, [-2.0, np.nan, np.nan], [1.0, np.nan, np.nan],
                   [0.5, np.nan, np.nan]])
    s, over = with_evidence(scores, thr, ev, log_domain=False)
    np.testing.assert_array_equal(over[:, 0], [False, False, True, True])
    np.testing.assert_allclose(s[:, 0], [0.5, 0.5, 9.0, 2.5])  # a higher score stays
    np.testing.assert_array_equal(s[:, 1:], scores[:, 1:])
    # error scores (> 0): the threshold times e^evidence
    s, _ = with_evidence(scores, thr, ev, log_domain=True)
    np.testing.assert_allclose(s[3, 0], 2.0 * np.exp(0.5))
    assert (s > thr).tolist()[3][0] and not (s > thr)[1, 0]


def test_baselines_hold_a_raised_alarm_by_the_model_s_rule():
    from lipfault_ros.alarm import AlarmConfig
    from lipfault_ros.evaluation.comparison import held_flags, lifecycle_flags

    thr, holds = np.array([2.0, 8.0, 1.0]), np.array([0.0, 5.0, np.nan])
    scores = np.array([[0.1, 5.5, 0.9], [-0.1, 4.5, 5.0]])
    held = held_flags(scores, thr, holds, AlarmConfig(), log_domain=False)
    # over the hold level (none without one: only over the threshold)
    np.testing.assert_array_equal(held, [[True, True, False], [False, False, True]])
    assert not held_flags(scores, thr, holds, AlarmConfig(hold=False), log_domain=False)[0, 0]
    # error scores: the same rule on their logarithm (the levels are errors too)
    held = held_flags(scores, thr, np.array([1.0, 5.0, np.nan]), AlarmConfig(), log_domain=True)
    assert held[0, 1] and not held[1, 1] and not held[0, 0]
    # a baseline's alarm raised over threshold stays up over the hold level
    stamps = np.arange(8) * 33_000_000
    s = np.array([3.0, 3.0, 0.5, 0.5, 0.5, 0.5, -1.5, -1.5])
    per_tuple = np.zeros((8, 3), bool)
    per_tuple[:, 0] = s > thr[0]
    hold = np.zeros((8, 3), bool)
    hold[:, 0] = held_flags(np.c_[s, s, s], thr, holds, AlarmConfig(), log_domain=False)[:, 0]
    cfg = AlarmConfig(raise_k=2, raise_n=2, clear_n=2)
    missing = np.zeros((8, 3), bool)
    assert lifecycle_flags(per_tuple, missing, stamps, cfg, hold)[:, 0].tolist() == \
        [False, True, True, True, True, True, True, False]
    assert lifecycle_flags(per_tuple, missing, stamps, cfg)[:, 0].tolist() == \
        [False, True, True, False, False, False, False, False]
