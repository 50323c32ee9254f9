"""Threshold calibration: one rule for the model and every baseline, matched to deployment.

A detector's threshold is set on clean calibration tuples it was not fitted on (for the model:
the validation split, a whole held-out episode with ``split: bag``). Two requirements, and the
threshold is the larger of the two:

1. **Per-tuple rate** (:func:`binomial_threshold`): at most ``false_alarm_rate`` of clean
   tuples over threshold, with ``confidence`` (a plain quantile of a few hundred scores lands
   below the true quantile about half the time).
2. **Quiet after the lifecycle** (:func:`quiet_threshold`): what the operator sees is the fault
   lifecycle's alarm, not the per-tuple flag. Clean scores are not independent: a hard stretch
   of an episode (a contact transition, a fast move) pushes several tuples in a row up, and
   k of n of them raise an alarm that swaps a clean signal for an estimate. So the threshold
   is at least the lowest value at which the lifecycle would have raised *no* alarm on the
   clean calibration tuples in time order.

The recipe is stored with the thresholds (``recipe``) so a report can say how they were made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lipfault_ros.alarm import AlarmConfig
from lipfault_ros.errors import ConfigError

__all__ = ['CalibrationRule', 'binomial_threshold', 'calibrate', 'quiet_threshold']

#: a gap this long between two calibration stamps starts a new stretch (another episode or a
#: split boundary): lifecycle windows never span it
SEGMENT_GAP_NS = 1_000_000_000


@dataclass(frozen=True)
class CalibrationRule:
    """How thresholds are set (see the module docstring)."""

    false_alarm_rate: float = 0.01
    confidence: float = 0.9
    #: the lifecycle the quiet requirement assumes (the node's defaults); None drops it
    alarm: AlarmConfig | None = field(default_factory=AlarmConfig)

    def __post_init__(self) -> None:
        if not 0.0 < self.false_alarm_rate < 1.0 or not 0.0 < self.confidence < 1.0:
            raise ConfigError('false_alarm_rate and confidence must be in (0, 1)')

    def recipe(self) -> dict[str, Any]:
        return {'rule': 'max(binomial per-tuple bound, no lifecycle alarm on clean '
                        'calibration tuples)' if self.alarm else 'binomial per-tuple bound',
                'false_alarm_rate': self.false_alarm_rate, 'confidence': self.confidence,
                'alarm': self.alarm.as_dict() if self.alarm else None}


def binomial_threshold(clean: np.ndarray, rate: float, confidence: float = 0.9) -> float:
    """A score threshold whose false-alarm rate on clean data stays at or below ``rate`` with
    probability ``confidence``: the order statistic exceeded by at most k clean scores, with k
    the largest count a rate-``rate`` detector stays under with probability ``1 - confidence``
    (binomial tail); the largest score when the set is too small for any k."""
    from scipy.stats import binom

    s = np.asarray(clean, np.float64)
    s = s[np.isfinite(s)]
    n = len(s)
    if n == 0:
        return float('inf')
    k = int(binom.ppf(1.0 - confidence, n, rate))  # exceedances allowed
    if binom.cdf(k, n, rate) > 1.0 - confidence:
        k -= 1
    k = max(0, min(k, n - 1))
    return float(np.sort(s)[n - 1 - k])


def quiet_threshold(clean: np.ndarray, stamps_ns: np.ndarray, alarm: AlarmConfig) -> float:
    """The lowest threshold at which ``alarm`` raises nothing on ``clean`` scores taken in
    stamp order: the largest k-th largest score of any ``raise_n`` consecutive tuples of one
    stretch (-inf when no stretch is that long). Non-finite scores are left out."""
    s = np.asarray(clean, np.float64)
    t = np.asarray(stamps_ns, np.int64)
    if s.shape != t.shape:
        raise ConfigError(f'scores {s.shape} and stamps {t.shape} differ in shape')
    order = np.argsort(t, kind='stable')
    s, t = s[order], t[order]
    ok = np.isfinite(s)
    s, t = s[ok], t[ok]
    n, k = alarm.raise_n, alarm.raise_k
    best = -np.inf
    cuts = np.flatnonzero(np.diff(t) > SEGMENT_GAP_NS) + 1
    for part in np.split(s, cuts):
        if len(part) < n:
            if len(part) >= k:  # a short stretch still raises with k flags in it
                best = max(best, float(np.sort(part)[-k]))
            continue
        windows = np.lib.stride_tricks.sliding_window_view(part, n)
        kth = np.partition(windows, n - k, axis=1)[:, n - k]  # k-th largest of each window
        best = max(best, float(kth.max()))
    return best


def calibrate(clean: np.ndarray, stamps_ns: np.ndarray, rule: CalibrationRule) -> float:
    """The threshold of one modality from its clean calibration scores (see module doc)."""
    thr = binomial_threshold(clean, rule.false_alarm_rate, rule.confidence)
    if rule.alarm is not None and np.isfinite(thr):
        # strictly above the quiet value: flags are score > threshold
        quiet = quiet_threshold(clean, stamps_ns, rule.alarm)
        if quiet >= thr:
            thr = float(np.nextafter(quiet, np.inf))
    return thr
