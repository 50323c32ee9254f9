"""Threshold calibration: the per-tuple binomial bound and the no-alarm-after-lifecycle bound."""

from __future__ import annotations

import numpy as np
import pytest

from lipfault_ros.alarm import AlarmConfig, alarm_series
from lipfault_ros.calibration import (CalibrationRule, binomial_threshold, calibrate,
                                      quiet_threshold)


def test_binomial_threshold_keeps_the_rate_with_margin():
    rng = np.random.default_rng(0)
    clean = rng.normal(size=2000)
    thr = binomial_threshold(clean, 0.01, 0.9)
    assert np.mean(clean > thr) <= 0.01
    assert thr > np.quantile(clean, 0.99)  # more conservative than the plain quantile
    assert binomial_threshold(np.array([]), 0.01) == np.inf
    assert binomial_threshold(np.array([1.0, 2.0]), 0.01) == 2.0  # too few: the largest


def test_quiet_threshold_is_the_lowest_that_raises_no_alarm():
    rng = np.random.default_rng(1)
    stamps = np.arange(3000) * 33_000_000
    clean = rng.normal(size=3000)
    clean[1000:1004] += 4.0  # one hard stretch: four high scores in a row
    cfg = AlarmConfig(raise_k=3, raise_n=5, clear_n=10)
    q = quiet_threshold(clean, stamps, cfg)
    no_missing = np.zeros((3000, 3), bool)

    def alarms(thr: float) -> int:
        flags = np.repeat((clean > thr)[:, None], 3, axis=1)
        return int(alarm_series(flags, no_missing, stamps, cfg)[:, 0].sum())

    assert alarms(np.nextafter(q, np.inf)) == 0
    assert alarms(np.nextafter(q, -np.inf)) > 0  # and it is tight
    # the binomial bound alone would let that stretch raise an alarm; calibrate does not
    rule = CalibrationRule(0.01, alarm=cfg)
    assert alarms(binomial_threshold(clean, 0.01)) > 0
    assert alarms(calibrate(clean, stamps, rule)) == 0
    assert calibrate(clean, stamps, CalibrationRule(0.01, alarm=None)) == \
        binomial_threshold(clean, 0.01)


def test_lifecycle_windows_do_not_span_two_episodes():
    cfg = AlarmConfig(raise_k=2, raise_n=2, clear_n=1)
    clean = np.array([0.0, 0.0, 5.0, 5.0, 0.0, 0.0])
    one = np.arange(6) * 10_000_000
    two = one.copy()
    two[3:] += 60_000_000_000  # the two high scores are in different episodes
    assert quiet_threshold(clean, one, cfg) == pytest.approx(5.0)
    assert quiet_threshold(clean, two, cfg) == pytest.approx(0.0)
