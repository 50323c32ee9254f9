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
