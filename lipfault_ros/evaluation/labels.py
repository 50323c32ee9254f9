"""Fault labels of the tuples: by truth interval, and *effective* (where the fault changed data).

The truth topic says when a fault was injected, not whether the injection changed anything: a
sign flip of a zero force, a frozen frame of a still scene or a bias under the resolution leave
the data as it was, and no detector can (or should) flag them. Conversely the tuples just after
a wrench / joints fault still carry faulty samples in their history window. With the clean
recording the faulty bag was injected from (``lipfault inject`` keeps the stamps) each
faulty-bag tuple is compared with its clean partner (the clean tuple with the same stamp):

- camera *changed*: more than :data:`CAMERA_CHANGED_FRACTION` of the pixels differ by more than
  :data:`CAMERA_PIXEL_DELTA` grey levels (in some colour channel), at the input image size;
- wrench / joints *changed*: some sample of the tuple's history window differs from the clean
  window by more than :data:`SIGNAL_REL_TOL` x that channel's standard deviation over the clean
  windows (at least :data:`SIGNAL_ABS_FLOOR`, for channels constant in the clean recording);
- a modality present in one tuple and missing in the other (a dropout) is changed, missing in
  both is not; a NaN against a number is changed, NaN against NaN is not.

Effective sets, per modality: *faulty* = inside a truth interval AND changed; *clean* = outside
every interval AND unchanged; excluded from both = inside but unchanged (``no_effect``), outside
but changed (``window_tail``: the window still reaches into a fault that ended; this replaces the
time-based settling mask of the interval labels) and tuples without a clean partner
(``no_clean_partner``). Overall: faulty when some modality is, clean when every modality is,
excluded otherwise. An event's onset (for latency) is its first affected tuple; an event with no
affected tuple is unobservable.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from lipfault_ros.evaluation import metrics as M
from lipfault_ros.tuples import MODALITIES, Modality, SensorTuple

__all__ = ['CAMERA_CHANGED_FRACTION', 'CAMERA_PIXEL_DELTA', 'SIGNAL_ABS_FLOOR', 'SIGNAL_REL_TOL',
           'ChangeTally', 'Changes', 'LabelSet', 'definitions', 'effective_labels',
           'excluded_counts', 'interval_labels', 'pixel_fraction', 'release_mask']

#: Grey levels (of 255) a pixel must differ by, in some colour channel, to count as changed:
#: above the 1-3 levels of sensor dither and resampling/compression noise, far below any change
#: a vision consumer would notice.
CAMERA_PIXEL_DELTA = 8
#: Fraction of changed pixels that makes a frame changed: 0.1 % (~300 pixels of 640 x 480, one
#: of 32 x 32): a small occlusion or a cluster of dead pixels counts, isolated noisy pixels do not.
CAMERA_CHANGED_FRACTION = 0.001
#: A wrench / joints sample is changed when it is more than this many clean standard deviations
#: of its channel from the clean sample: well under the sensor noise, so any fault a detector
#: could see counts, while re-serialisation round-off (~1e-7 relative) does not.
SIGNAL_REL_TOL = 0.05
#: Absolute floor of the signal tolerance (channel units: N, N m, rad, rad/s, N m) for channels
#: constant in the clean recording (std 0), where 5 % of the std would count round-off.
SIGNAL_ABS_FLOOR = 1e-6

_SIGNALS = (Modality.WRENCH, Modality.JOINTS)


@dataclass(frozen=True)
class Changes:
    """Whether the injected faults changed each tuple's data (see the module docstring).

    ``changed`` (N, 3) bool in ``MODALITIES`` order; ``aligned`` (N,) whether the tuple had a
    clean partner (``changed`` is False without one); ``camera_fraction`` (N,) share of changed
    pixels; ``margin`` (N, 3) the largest deviation over the tolerance (changed where > 1; camera:
    the fraction over its limit); ``tolerance`` per signal modality, the per-channel tolerance.
    """

    changed: np.ndarray
    aligned: np.ndarray
    camera_fraction: np.ndarray
    margin: np.ndarray
    tolerance: dict[str, list[float]]


class _Moments:
    """Per-channel mean / std of streamed samples (shifted sums: no cancellation), NaN-aware."""

    def __init__(self, channels: int) -> None:
        self.shift: np.ndarray | None = None
        self.n = np.zeros(channels)
        self.s1 = np.zeros(channels)
        self.s2 = np.zeros(channels)

    def add(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, np.float64)
        if self.shift is None:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', RuntimeWarning)  # an all-NaN channel
                self.shift = np.nan_to_num(np.nanmean(x, axis=0))
        d = x - self.shift
        ok = np.isfinite(d)
        d = np.where(ok, d, 0.0)
        self.n += ok.sum(axis=0)
        self.s1 += d.sum(axis=0)
        self.s2 += (d ** 2).sum(axis=0)

    def std(self) -> np.ndarray:
        n = np.maximum(self.n, 1)
        var = np.maximum(self.s2 / n - (self.s1 / n) ** 2, 0.0)
        return np.where(self.n > 1, np.sqrt(var), 0.0)


def _window_deviation(a: np.ndarray | None, b: np.ndarray | None, channels: int) -> np.ndarray:
    """(C,) largest |a - b| per channel over a window; inf where only one side has data."""
    if a is None and b is None:
        return np.zeros(channels)
    if a is None or b is None or np.shape(a) != np.shape(b):
        return np.full(channels, np.inf)
    x = np.asarray(a, np.float64).reshape(-1, channels)
    y = np.asarray(b, np.float64).reshape(-1, channels)
    nx, ny = np.isnan(x), np.isnan(y)
    with np.errstate(invalid='ignore'):
        d = np.abs(x - y)
    d = np.where(nx & ny, 0.0, np.where(nx | ny, np.inf, d))
    d = np.where(np.isnan(d), np.inf, d)  # inf - inf of the same sign
    return d.max(axis=0) if len(d) else np.zeros(channels)


def pixel_fraction(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Share of pixels differing by more than CAMERA_PIXEL_DELTA in some colour channel."""
    if a is None and b is None:
        return 0.0
    if a is None or b is None or np.shape(a) != np.shape(b):
        return 1.0
    import cv2

    d = cv2.absdiff(np.ascontiguousarray(a), np.ascontiguousarray(b))
    if d.ndim == 3:  # the largest difference over the colour channels
        d = np.maximum.reduce([d[..., c] for c in range(d.shape[-1])])
    return float(np.count_nonzero(d > CAMERA_PIXEL_DELTA)) / d.size if d.size else 0.0


class ChangeTally:
    """Compares each faulty-bag tuple with its clean partner as tuples stream by; the signal
    tolerances need the clean std over the whole recording, so decisions come at the end."""

    def __init__(self, n_joints: int) -> None:
        self._channels = {Modality.WRENCH: 6, Modality.JOINTS: 3 * n_joints}
        self._fraction: list[float] = []
        self._aligned: list[bool] = []
        self._dev: dict[Modality, list[np.ndarray]] = {m: [] for m in _SIGNALS}
        self._clean = {m: _Moments(c) for m, c in self._channels.items()}

    def add(self, t: SensorTuple, partner: SensorTuple | None) -> None:
        self._aligned.append(partner is not None)
        if partner is None:
            self._fraction.append(np.nan)
            for m, c in self._channels.items():
                self._dev[m].append(np.full(c, np.nan))
            return
        self._fraction.append(pixel_fraction(_data(t, Modality.CAMERA),
                                              _data(partner, Modality.CAMERA)))
        for m, c in self._channels.items():
            clean = _data(partner, m)
            self._dev[m].append(_window_deviation(_data(t, m), clean, c))
            if clean is not None:
                self._clean[m].add(np.asarray(clean, np.float64).reshape(-1, c))

    def result(self) -> Changes:
        n = len(self._aligned)
        aligned = np.asarray(self._aligned, bool)
        frac = np.asarray(self._fraction, np.float64).reshape(n)
        margin = np.zeros((n, 3))
        margin[:, 0] = np.nan_to_num(frac) / CAMERA_CHANGED_FRACTION
        tolerance: dict[str, list[float]] = {}
        for m, c in self._channels.items():
            tol = np.maximum(SIGNAL_REL_TOL * self._clean[m].std(), SIGNAL_ABS_FLOOR)
            tolerance[m.value] = tol.tolist()
            dev = np.asarray(self._dev[m], np.float64).reshape(n, c)
            with np.errstate(invalid='ignore'):
                margin[:, MODALITIES.index(m)] = np.nan_to_num(
                    (dev / tol).max(axis=1) if c else np.zeros(n), nan=0.0, posinf=np.inf)
        changed = (margin > 1.0) & aligned[:, None]
        return Changes(changed, aligned, frac, margin, tolerance)


def _data(t: SensorTuple, m: Modality) -> np.ndarray | None:
    return None if m in t.missing else t.data(m)


@dataclass(frozen=True)
class LabelSet:
    """Which tuples count as faulty, and which are left out of the tuple-level counts.

    ``faulty``/``ignore`` (N, 3) per modality, ``overall_faulty``/``overall_ignore`` (N,);
    ``affected`` (N, 3), when given, moves each event's onset to its first affected tuple.
    """

    name: str
    faulty: np.ndarray
    ignore: np.ndarray
    overall_faulty: np.ndarray
    overall_ignore: np.ndarray
    affected: np.ndarray | None = None

    def events(self, stamps: np.ndarray, intervals: Sequence[Any],
               modality: Modality | None = None) -> list[M.FaultEvent]:
        """The truth events as seen through these labels (see the module docstring)."""
        events = M.fault_events(stamps, intervals, modality)
        if self.affected is None:
            return events
        out = []
        for ev in events:
            hit = np.flatnonzero(self.affected[ev.first:ev.last + 1,
                                               MODALITIES.index(ev.modality)]) \
                if ev.observable else np.zeros(0, int)
            if hit.size == 0:
                out.append(replace(ev, first=-1, last=-1))
            else:
                first = ev.first + int(hit[0])
                out.append(replace(ev, first=first, onset_ns=int(stamps[first])))
        return out


def interval_labels(labels: np.ndarray, settle: np.ndarray) -> LabelSet:
    """Faulty = inside a truth interval; the settling tuples after a fault are left out."""
    any_label = labels.any(axis=1)
    return LabelSet('interval', labels, settle, any_label, settle.any(axis=1) & ~any_label)


def release_mask(changed: np.ndarray, release: int) -> np.ndarray:
    """(N, 3): the ``release`` tuples after each run of changed tuples of a modality ends, the
    time a raised alarm needs to clear by design (the lifecycle's ``clear_n``)."""
    out = np.zeros_like(changed, bool)
    if release <= 0:
        return out
    for i in range(changed.shape[1]):
        col = changed[:, i]
        for end in np.flatnonzero(col[:-1] & ~col[1:]) + 1:  # first unchanged tuple after a run
            out[end:end + release, i] = True
    return out & ~changed


def effective_labels(labels: np.ndarray, changes: Changes, release: int = 0) -> LabelSet:
    """Faulty = inside an interval and changed, clean = outside and unchanged and not within
    ``release`` tuples after the fault's effect ended (module doc)."""
    aligned = changes.aligned[:, None]
    faulty = labels & changes.changed & aligned
    clean = ~labels & ~changes.changed & aligned & ~release_mask(changes.changed, release)
    o_faulty = faulty.any(axis=1)
    o_clean = clean.all(axis=1)
    return LabelSet('effective', faulty, ~(faulty | clean), o_faulty, ~(o_faulty | o_clean),
                    affected=faulty)


def excluded_counts(labels: np.ndarray, changes: Changes, effective: LabelSet,
                    events: dict[str, list[M.FaultEvent]], release: int = 0) -> dict[str, Any]:
    """``tuples.effective`` of the report: the effective set sizes and why tuples were left out
    (per modality), and the events no tuple of which the fault changed."""
    al = changes.aligned[:, None]
    ch = changes.changed

    def per(mask: np.ndarray) -> dict[str, int]:
        return {m.value: int(mask[:, i].sum()) for i, m in enumerate(MODALITIES)}

    return {
        'faulty': {**per(effective.faulty), 'overall': int(effective.overall_faulty.sum())},
        'clean': {**per(~effective.faulty & ~effective.ignore),
                  'overall': int((~effective.overall_faulty & ~effective.overall_ignore).sum())},
        'excluded': {'no_effect': per(labels & ~ch & al),
                     'window_tail': per(~labels & ch & al),
                     'alarm_release': per(~labels & al & release_mask(ch, release)),
                     'no_clean_partner': per(np.broadcast_to(~al, labels.shape)),
                     'overall': int(effective.overall_ignore.sum())},
        'events_without_affected_tuple': {k: sum(not e.observable for e in v)
                                          for k, v in events.items()},
        'tolerance': changes.tolerance,
    }


def definitions() -> dict[str, str]:
    """The report's ``definitions`` entries of the labels."""
    return {
        'effective_labels': (
            'a tuple is faulty for a modality only where the injected fault changed that '
            "modality's data, found by comparing it with the clean tuple of the same stamp: "
            f'camera changed when more than {CAMERA_CHANGED_FRACTION:.1%} of the pixels differ '
            f'by more than {CAMERA_PIXEL_DELTA} grey levels in some colour channel (input image '
            'size); wrench/joints changed when some sample of the history window differs from '
            f'the clean window by more than {SIGNAL_REL_TOL} x the channel std over the clean '
            f'windows (at least {SIGNAL_ABS_FLOOR:g}); present vs missing is a change'),
        'effective_sets': (
            'faulty = inside a truth interval and changed; clean = outside every interval and '
            'unchanged; excluded (tuples.effective.excluded): no_effect = inside but unchanged, '
            'window_tail = outside but changed (replaces the settling mask), alarm_release = the '
            'clear_n tuples after a fault\'s effect ended, while a raised alarm clears by design '
            '(its length is the lifecycle setting, reported beside), no_clean_partner; '
            'overall faulty when some modality is, clean when every modality is'),
        'effective_events': (
            'effective block: latency counts from the first affected tuple of the event; an '
            'event with no affected tuple is unobservable (events_unobservable)'),
        'interval_block': (
            'interval block (and the top-level per-modality blocks): faulty = inside a truth '
            'interval, with the settling exclusion; the figures of earlier reports'),
    }
