"""Threshold calibration: the per-tuple binomial bound, the no-alarm-after-lifecycle bound and
the alarm-events-per-hour tail bound."""

from __future__ import annotations

import numpy as np
import pytest

from lipfault_ros.alarm import AlarmConfig, alarm_series
from lipfault_ros.calibration import (CalibrationRule, binomial_threshold, calibrate,
                                      event_threshold, quiet_threshold)
from lipfault_ros.errors import ConfigError


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


def _ar_scores(n: int, seed: int) -> np.ndarray:
    """Correlated clean scores with an exponential tail: AR(1) with Laplace innovations, so
    hard stretches come as runs of high scores, as contact transitions do."""
    rng = np.random.default_rng(seed)
    e = rng.laplace(size=n)
    s = np.empty(n)
    s[0] = e[0]
    for i in range(1, n):
        s[i] = 0.8 * s[i - 1] + e[i]
    return s


def _events(scores: np.ndarray, thr: float, cfg: AlarmConfig) -> int:
    n = len(scores)
    flags = np.repeat((scores > thr)[:, None], 3, axis=1)
    up = alarm_series(flags, np.zeros((n, 3), bool), np.arange(n) * 33_000_000, cfg)[:, 0]
    return int(np.sum(up[1:] & ~up[:-1]) + up[0])


def test_event_threshold_holds_the_alarm_rate_on_hours_it_never_saw():
    cfg = AlarmConfig(raise_k=3, raise_n=5, clear_n=10)
    stamps = np.arange(6000) * 33_333_333  # 200 s of calibration data at 30 Hz
    calib = _ar_scores(6000, 0)
    hour = _ar_scores(108_000, 1)  # an hour of the same process, never seen
    target = 10.0
    thr = event_threshold(calib, stamps, cfg, target)
    quiet = quiet_threshold(calib, stamps, cfg)
    assert thr > quiet  # 200 s without an alarm says little about an hour
    seen = _events(hour, thr, cfg)
    assert target / 4 <= seen <= target * 4, seen
    assert _events(hour, np.nextafter(quiet, np.inf), cfg) > 2 * seen
    # a looser target gives a lower threshold; the rule takes the largest of its bounds
    assert event_threshold(calib, stamps, cfg, 100.0) < thr
    rule = CalibrationRule(0.01, alarm=cfg, events_per_hour=target)
    assert calibrate(calib, stamps, rule) == pytest.approx(max(thr, np.nextafter(quiet, np.inf)))
    assert calibrate(calib, stamps, CalibrationRule(0.01, alarm=cfg, events_per_hour=0.0)) \
        == pytest.approx(np.nextafter(quiet, np.inf))


def test_event_threshold_needs_a_tail_to_fit():
    cfg = AlarmConfig(raise_k=3, raise_n=5, clear_n=10)
    few = np.arange(20, dtype=float)
    assert event_threshold(few, np.arange(20) * 33_000_000, cfg, 1.0) == -np.inf
    with pytest.raises(ConfigError):
        CalibrationRule(0.01, events_per_hour=-1.0)


def test_hold_level_is_what_few_clean_scores_exceed_and_never_above_the_threshold():
    from lipfault_ros.calibration import hold_level

    rng = np.random.default_rng(3)
    clean = rng.normal(size=20000)
    rule = CalibrationRule()
    level = hold_level(clean, 10.0, rule)
    # at most hold_rate of the clean scores over it, with margin; far under the threshold
    assert np.mean(clean > level) <= rule.hold_rate
    assert 2.5 < level < 4.0
    assert hold_level(clean, 1.0, rule) == 1.0
    assert np.isnan(hold_level(np.array([np.nan]), 1.0, rule))
