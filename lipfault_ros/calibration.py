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
3. **Rare enough per hour** (:func:`event_threshold`): "no alarm on a few minutes of
   calibration data" is a weak promise for an hour of operation: a new episode brings new hard
   stretches, and the largest of them is what raises alarms. The lifecycle statistic (the k-th
   largest score of each ``raise_n`` window) is declustered into alarm-sized peaks, the peaks
   over a high level get an exponential tail (peaks over threshold; the scores are log-domain
   errors and logits, whose tails are close to exponential), and the threshold is set where
   that tail expects ``events_per_hour`` alarms. It extrapolates beyond the calibration data on
   purpose, which is the point: the calibration set is far shorter than the hour it speaks for.

The recipe is stored with the thresholds (``recipe``) so a report can say how they were made,
and beside them the clean level (:func:`clean_level`) that a scene-relative threshold
(:mod:`lipfault_ros.scene_thresholds`) measures a new scene against, and the hold level
(:func:`hold_level`) a raised alarm holds over (:mod:`lipfault_ros.alarm`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lipfault_ros.alarm import AlarmConfig
from lipfault_ros.errors import ConfigError

__all__ = ['CalibrationRule', 'binomial_threshold', 'calibrate', 'clean_level',
           'event_threshold', 'hold_level', 'quiet_threshold']

#: a gap this long between two calibration stamps starts a new stretch (another episode or a
#: split boundary): lifecycle windows never span it
SEGMENT_GAP_NS = 1_000_000_000

#: the event-rate bound fits its tail to the declustered peaks above this quantile of the
#: lifecycle statistic (high enough to be in the tail, low enough for tens of peaks in a few
#: minutes of calibration data)
TAIL_QUANTILE = 0.9
#: fewer peaks than this over the tail level: too little to fit a tail, the bound is skipped
MIN_TAIL_PEAKS = 5


@dataclass(frozen=True)
class CalibrationRule:
    """How thresholds are set (see the module docstring)."""

    false_alarm_rate: float = 0.01
    confidence: float = 0.9
    #: the lifecycle the quiet and event-rate requirements assume (the node's defaults); None
    #: drops both
    alarm: AlarmConfig | None = field(default_factory=AlarmConfig)
    #: false-alarm events per hour the tail bound aims at (:func:`event_threshold`); 0 drops it
    events_per_hour: float = 1.0
    #: share of clean tuples over the hold level (:func:`hold_level`)
    hold_rate: float = 0.001

    def __post_init__(self) -> None:
        if not 0.0 < self.false_alarm_rate < 1.0 or not 0.0 < self.confidence < 1.0 or \
                not 0.0 < self.hold_rate < 1.0:
            raise ConfigError('false_alarm_rate, hold_rate and confidence must be in (0, 1)')
        if not 0.0 <= self.events_per_hour < float('inf'):
            raise ConfigError(f'events_per_hour must be finite and >= 0 (0: off), got '
                              f'{self.events_per_hour}')

    def recipe(self) -> dict[str, Any]:
        parts = ['binomial per-tuple bound']
        if self.alarm:
            parts.append('no lifecycle alarm on clean calibration tuples')
            if self.events_per_hour > 0:
                parts.append(f'exponential-tail bound at {self.events_per_hour:g} alarm '
                             f'events per hour')
        return {'rule': f'max({", ".join(parts)})' if len(parts) > 1 else parts[0],
                'false_alarm_rate': self.false_alarm_rate, 'confidence': self.confidence,
                'events_per_hour': self.events_per_hour if self.alarm else None,
                'hold': f'hold level: binomial bound at {self.hold_rate:g} per tuple, at most '
                        f'the threshold',
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


def _stretches(clean: np.ndarray, stamps_ns: np.ndarray
               ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Finite ``clean`` scores in stamp order, cut where two stamps lie more than
    ``SEGMENT_GAP_NS`` apart: (scores, stamps) per stretch."""
    s = np.asarray(clean, np.float64)
    t = np.asarray(stamps_ns, np.int64)
    if s.shape != t.shape:
        raise ConfigError(f'scores {s.shape} and stamps {t.shape} differ in shape')
    order = np.argsort(t, kind='stable')
    s, t = s[order], t[order]
    ok = np.isfinite(s)
    s, t = s[ok], t[ok]
    cuts = np.flatnonzero(np.diff(t) > SEGMENT_GAP_NS) + 1
    return list(zip(np.split(s, cuts), np.split(t, cuts)))


def _window_kth(part: np.ndarray, alarm: AlarmConfig) -> np.ndarray:
    """Per window of ``raise_n`` consecutive scores, its ``raise_k``-th largest: the lowest
    threshold at which that window raises an alarm."""
    n, k = alarm.raise_n, alarm.raise_k
    windows = np.lib.stride_tricks.sliding_window_view(part, n)
    return np.partition(windows, n - k, axis=1)[:, n - k]


def event_threshold(clean: np.ndarray, stamps_ns: np.ndarray, alarm: AlarmConfig,
                    events_per_hour: float) -> float:
    """The threshold at which ``alarm`` is expected to raise ``events_per_hour`` alarms on data
    like ``clean`` (scores with their stamps), by peaks over threshold with an exponential
    tail (see the module docstring); -inf when there is too little data to fit a tail.

    Per stretch, the windows whose lifecycle statistic (:func:`_window_kth`) exceeds the tail
    level u (``TAIL_QUANTILE`` of all of them) are grouped into clusters, windows less than
    ``clear_n`` apart belonging to one alarm; each cluster's peak is its largest statistic. With
    ``m`` peaks in ``hours`` of data and ``beta`` their mean excess over u, the expected alarm
    rate at a threshold x above u is ``m / hours * exp(-(x - u) / beta)``, which gives x.
    """
    stats, hours = [], 0.0
    for part, t in _stretches(clean, stamps_ns):
        if len(part) >= alarm.raise_n:
            stats.append(_window_kth(part, alarm))
            hours += (t[-1] - t[0]) / 3.6e12
    if not stats or hours <= 0.0:
        return -np.inf
    level = float(np.quantile(np.concatenate(stats), TAIL_QUANTILE))
    peaks = []
    for stat in stats:
        above = np.flatnonzero(stat > level)
        if len(above):
            groups = np.split(above, np.flatnonzero(np.diff(above) > alarm.clear_n) + 1)
            peaks += [float(stat[g].max()) for g in groups]
    if len(peaks) < MIN_TAIL_PEAKS:
        return -np.inf
    excess = float(np.mean(np.asarray(peaks) - level))
    rate = len(peaks) / hours
    if excess <= 0.0 or rate <= events_per_hour:
        return level
    return level + excess * float(np.log(rate / events_per_hour))


def quiet_threshold(clean: np.ndarray, stamps_ns: np.ndarray, alarm: AlarmConfig) -> float:
    """The lowest threshold at which ``alarm`` raises nothing on ``clean`` scores taken in
    stamp order: the largest k-th largest score of any ``raise_n`` consecutive tuples of one
    stretch (-inf when no stretch is that long). Non-finite scores are left out."""
    n, k = alarm.raise_n, alarm.raise_k
    best = -np.inf
    for part, _ in _stretches(clean, stamps_ns):
        if len(part) < n:
            if len(part) >= k:  # a short stretch still raises with k flags in it
                best = max(best, float(np.sort(part)[-k]))
            continue
        best = max(best, float(_window_kth(part, alarm).max()))
    return best


def calibrate(clean: np.ndarray, stamps_ns: np.ndarray, rule: CalibrationRule) -> float:
    """The threshold of one modality from its clean calibration scores (see module doc)."""
    thr = binomial_threshold(clean, rule.false_alarm_rate, rule.confidence)
    if rule.alarm is not None and np.isfinite(thr):
        # strictly above the quiet value: flags are score > threshold
        quiet = quiet_threshold(clean, stamps_ns, rule.alarm)
        if quiet >= thr:
            thr = float(np.nextafter(quiet, np.inf))
        if rule.events_per_hour > 0:
            thr = max(thr, event_threshold(clean, stamps_ns, rule.alarm, rule.events_per_hour))
    return thr


def clean_level(clean: np.ndarray) -> float:
    """Where the clean calibration scores of one modality sit: their median (NaN when there is
    none). The median, as the scene reference takes of a new scene's scores, so that the two
    compare like with like."""
    s = np.asarray(clean, np.float64)
    s = s[np.isfinite(s)]
    return float(np.median(s)) if len(s) else float('nan')


def hold_level(clean: np.ndarray, threshold: float, rule: CalibrationRule) -> float:
    """The score a raised alarm of one modality holds over: the level at most ``hold_rate`` of
    its clean calibration scores exceed (the binomial bound, with the rule's confidence), never
    above ``threshold``. Clean data almost never reaches it, so a raised alarm on a clean
    signal still clears after ``clear_n`` tuples; a fault whose score settles above anything
    clean keeps its alarm. NaN without clean scores (no hold)."""
    s = np.asarray(clean, np.float64)
    if not np.isfinite(s).any():
        return float('nan')
    return float(min(binomial_threshold(s, rule.hold_rate, rule.confidence), threshold))
