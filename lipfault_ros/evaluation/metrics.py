"""Detection and correction metrics, computed tuple by tuple against the recorded ground truth.

Conventions (the report repeats them, so a reader of ``report.json`` need not read this file):

- A tuple is *faulty* for a modality when its stamp lies in ``[start_ns, end_ns)`` of a truth
  interval of that modality. Tuples whose history window still reaches back into a fault that has
  just ended (``settle_ns`` after its end) are neither counted as faulty nor as clean: a detector
  that flags them is right to, and one that does not is not wrong either. ``overall`` is faulty
  when any modality is.
- AUROC / AUPR are threshold-free (scikit-learn); precision / recall / F1 use the *deployed*
  decisions (the artifact's calibrated thresholds). ``f1_max_oracle`` is the best F1 over all
  thresholds chosen with the labels, an optimistic bound, and labelled as such.
- No point adjustment: a fault event counts as detected only by the flags actually raised inside
  it, and each faulty tuple counts once in recall.
- A fault *event* is one truth interval. It is detected when at least one tuple inside it is
  flagged; its detection latency is the time from the interval's onset (``start_ns``) to the
  stamp of the first flagged tuple inside it (ms), and, in tuples, the index of that tuple minus
  the index of the first tuple inside the interval (0 = caught on the first faulty tuple).
  Events with no tuple inside (shorter than the tuple period) are counted as unobservable.
  With effective labels (:mod:`lipfault_ros.evaluation.labels`) the onset is the event's first
  *affected* tuple instead (``FaultEvent.onset_ns``), and an event without one is unobservable.
- ``tpr_at_1pct_fpr``: the true positive rate of the raw scores at a 1 % false positive rate,
  linearly interpolated on the ROC curve (no point adjustment, no lifecycle).
- False alarms per 1000 = 1000 * flagged clean tuples / clean tuples.
- Signal errors are standardised: the squared (absolute) error of each channel divided by the
  variance (standard deviation) of that channel over the clean reference, averaged over channels
  and tuples. 1.0 is the error of always predicting the channel mean. Image errors: MSE and MAE
  on [0, 1] intensities, PSNR in dB (data range 255) and SSIM (scikit-image, colour) on uint8.

Everything here is NumPy / scikit-learn; stamps are integer nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from lipfault_ros.errors import InputError
from lipfault_ros.evaluation.error_metrics import (  # noqa: F401  (re-exported)
    correction_block, hold_last_value, image_errors, median_filter_images, median_filter_windows,
    per_tuple_image_mse, per_tuple_signal_mse, signal_errors)
from lipfault_ros.tuples import MODALITIES, Modality

__all__ = [
    'EventOutcome',
    'FaultEvent',
    'correction_block',
    'detect_events',
    'detection_block',
    'fault_events',
    'hold_last_value',
    'image_errors',
    'kinds_from_intervals',
    'labels_from_intervals',
    'latency_summary',
    'median_filter_images',
    'median_filter_windows',
    'per_tuple_image_mse',
    'per_tuple_signal_mse',
    'ranking_metrics',
    'settle_mask',
    'signal_errors',
    'threshold_metrics',
    'tpr_at_fpr',
]


@dataclass(frozen=True)
class FaultEvent:
    """One truth interval seen through the tuple stamps.

    ``first`` .. ``last`` are the indices (inclusive) of the tuples inside ``[start_ns, end_ns)``;
    both are -1 when no tuple falls inside (the event is unobservable at this tuple rate).
    ``modality`` is the modality the fault was injected into. ``onset_ns``, when >= 0, is the
    stamp latency is measured from (the first affected tuple); -1: ``start_ns``.
    """

    modality: Modality
    kind: str
    severity: float
    start_ns: int
    end_ns: int
    first: int
    last: int
    onset_ns: int = -1

    @property
    def observable(self) -> bool:
        return self.first >= 0

    @property
    def onset(self) -> int:
        """The stamp detection latency counts from."""
        return self.onset_ns if self.onset_ns >= 0 else self.start_ns


@dataclass(frozen=True)
class EventOutcome:
    """Whether a detector caught one event, and how late (None when it did not)."""

    event: FaultEvent
    detected: bool
    latency_ns: int | None
    latency_tuples: int | None


def _modality(value: Any) -> Modality:
    return Modality(str(getattr(value, 'value', value)))


def fault_events(stamps_ns: np.ndarray, intervals: Iterable[Any],
                 modality: Modality | None = None) -> list[FaultEvent]:
    """Truth intervals (objects with ``modality, kind, severity, start_ns, end_ns``) of one
    modality (all when ``modality`` is None) as events over sorted tuple ``stamps_ns``."""
    stamps = np.asarray(stamps_ns, np.int64)
    if stamps.size > 1 and np.any(np.diff(stamps) <= 0):
        raise InputError('tuple stamps must be strictly increasing')
    events = []
    for iv in intervals:
        m = _modality(iv.modality)
        if modality is not None and m != Modality(modality):
            continue
        lo = int(np.searchsorted(stamps, int(iv.start_ns), side='left'))
        hi = int(np.searchsorted(stamps, int(iv.end_ns), side='left')) - 1
        first, last = (lo, hi) if hi >= lo else (-1, -1)
        events.append(FaultEvent(m, str(iv.kind), float(iv.severity), int(iv.start_ns),
                                 int(iv.end_ns), first, last))
    events.sort(key=lambda e: (e.start_ns, e.modality.value))
    return events


def labels_from_intervals(stamps_ns: np.ndarray, intervals: Iterable[Any]) -> np.ndarray:
    """(N, 3) bool: tuple i is faulty in modality m (columns in ``MODALITIES`` order)."""
    stamps = np.asarray(stamps_ns, np.int64)
    labels = np.zeros((len(stamps), len(MODALITIES)), bool)
    for iv in intervals:
        m = MODALITIES.index(_modality(iv.modality))
        labels[:, m] |= (stamps >= int(iv.start_ns)) & (stamps < int(iv.end_ns))
    return labels


def kinds_from_intervals(stamps_ns: np.ndarray, intervals: Iterable[Any]) -> np.ndarray:
    """(N, 3) object array: the fault kind active at each tuple per modality, '' when clean."""
    stamps = np.asarray(stamps_ns, np.int64)
    kinds = np.full((len(stamps), len(MODALITIES)), '', dtype=object)
    for iv in intervals:
        m = MODALITIES.index(_modality(iv.modality))
        inside = (stamps >= int(iv.start_ns)) & (stamps < int(iv.end_ns))
        kinds[inside, m] = str(iv.kind)
    return kinds


def settle_mask(stamps_ns: np.ndarray, intervals: Iterable[Any],
                settle_ns: Mapping[Modality, int]) -> np.ndarray:
    """(N, 3) bool: tuples just after a fault whose history window still holds faulty samples.

    These are excluded from both the faulty and the clean set of their modality (see module
    docstring). ``settle_ns`` per modality is the time span of that modality's window.
    """
    stamps = np.asarray(stamps_ns, np.int64)
    mask = np.zeros((len(stamps), len(MODALITIES)), bool)
    for iv in intervals:
        modality = _modality(iv.modality)
        span = int(settle_ns.get(modality, 0))
        if span <= 0:
            continue
        m = MODALITIES.index(modality)
        mask[:, m] |= (stamps >= int(iv.end_ns)) & (stamps < int(iv.end_ns) + span)
    return mask


def ranking_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float | None]:
    """Threshold-free AUROC, AUPR (average precision) and the oracle F1-max.

    Values are None when they are undefined (only one class present, or no finite score).
    Non-finite scores rank highest (a NaN input is a fault by contract).
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

    s = np.asarray(scores, np.float64).copy()
    y = np.asarray(labels, bool)
    if s.shape != y.shape:
        raise InputError(f'scores {s.shape} and labels {y.shape} differ in shape')
    out: dict[str, float | None] = {'auroc': None, 'aupr': None, 'f1_max_oracle': None,
                                    'tpr_at_1pct_fpr': None,
                                    'positive_fraction': float(y.mean()) if y.size else None}
    finite = np.isfinite(s)
    if not finite.any() or y.all() or not y.any():
        return out
    s[~finite] = np.max(s[finite]) + 1.0
    out['auroc'] = float(roc_auc_score(y, s))
    out['tpr_at_1pct_fpr'] = tpr_at_fpr(s, y, 0.01)
    out['aupr'] = float(average_precision_score(y, s))
    p, r, _ = precision_recall_curve(y, s)
    with np.errstate(invalid='ignore', divide='ignore'):
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    out['f1_max_oracle'] = float(np.max(f1))
    return out


def tpr_at_fpr(scores: np.ndarray, labels: np.ndarray, fpr: float) -> float | None:
    """True positive rate at false positive rate ``fpr``, linearly interpolated between the
    points of the ROC curve of finite ``scores`` (None when a class is absent)."""
    from sklearn.metrics import roc_curve

    y = np.asarray(labels, bool)
    if y.all() or not y.any():
        return None
    f, t, _ = roc_curve(y, np.asarray(scores, np.float64))
    i = int(np.searchsorted(f, fpr, side='right')) - 1  # last point at or left of fpr
    if i + 1 >= len(f) or f[i] == fpr:
        return float(t[i])
    return float(t[i] + (t[i + 1] - t[i]) * (fpr - f[i]) / (f[i + 1] - f[i]))


def threshold_metrics(flags: np.ndarray, labels: np.ndarray) -> dict[str, float | int | None]:
    """Precision, recall, F1 and false alarms per 1000 clean tuples of deployed decisions."""
    f = np.asarray(flags, bool)
    y = np.asarray(labels, bool)
    if f.shape != y.shape:
        raise InputError(f'flags {f.shape} and labels {y.shape} differ in shape')
    tp = int(np.sum(f & y))
    fp = int(np.sum(f & ~y))
    fn = int(np.sum(~f & y))
    tn = int(np.sum(~f & ~y))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    if precision is None or recall is None:
        f1 = None
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        'precision': precision, 'recall': recall, 'f1': f1,
        'tp': tp, 'fp': fp, 'fn': fn, 'tn': tn,
        'n_faulty': tp + fn, 'n_clean': fp + tn,
        'false_alarms_per_1000': 1000.0 * fp / (fp + tn) if fp + tn else None,
        'flag_rate': float(f.mean()) if f.size else None,
    }


def detect_events(stamps_ns: np.ndarray, flags: np.ndarray,
                  events: Sequence[FaultEvent]) -> list[EventOutcome]:
    """For each event, the first flagged tuple inside it (no point adjustment, no grace)."""
    stamps = np.asarray(stamps_ns, np.int64)
    f = np.asarray(flags, bool)
    outcomes = []
    for ev in events:
        if not ev.observable:
            outcomes.append(EventOutcome(ev, False, None, None))
            continue
        hits = np.flatnonzero(f[ev.first:ev.last + 1])
        if hits.size == 0:
            outcomes.append(EventOutcome(ev, False, None, None))
            continue
        i = ev.first + int(hits[0])
        outcomes.append(EventOutcome(ev, True, int(stamps[i]) - ev.onset, int(hits[0])))
    return outcomes


def _pct(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values, np.float64), q)) if len(values) else None


def latency_summary(outcomes: Sequence[EventOutcome]) -> dict[str, Any]:
    """Event counts, detection rate and latency percentiles over a set of event outcomes."""
    observable = [o for o in outcomes if o.event.observable]
    detected = [o for o in observable if o.detected]
    ms = [o.latency_ns / 1e6 for o in detected]
    tuples = [float(o.latency_tuples) for o in detected]
    return {
        'events': len(outcomes),
        'events_observable': len(observable),
        'events_detected': len(detected),
        'detection_rate': len(detected) / len(observable) if observable else None,
        'detection_latency_ms_p50': _pct(ms, 50),
        'detection_latency_ms_p95': _pct(ms, 95),
        'detection_latency_tuples_p50': _pct(tuples, 50),
        'detection_latency_tuples_p95': _pct(tuples, 95),
    }


def detection_block(scores: np.ndarray, flags: np.ndarray, labels: np.ndarray,
                    stamps_ns: np.ndarray, events: Sequence[FaultEvent], *,
                    kinds: np.ndarray | None = None,
                    ignore: np.ndarray | None = None) -> dict[str, Any]:
    """Every detection number of one detector on one modality (or overall).

    ``scores``, ``flags``, ``labels``, ``kinds`` (kind per tuple, '' when clean) and ``ignore``
    (tuples excluded from the tuple-level counts) are (N,). Event metrics use all tuples.
    """
    s = np.asarray(scores, np.float64)
    f = np.asarray(flags, bool)
    y = np.asarray(labels, bool)
    keep = ~np.asarray(ignore, bool) if ignore is not None else np.ones(len(y), bool)
    block: dict[str, Any] = {}
    block.update(ranking_metrics(s[keep], y[keep]))
    block.update(threshold_metrics(f[keep], y[keep]))
    outcomes = detect_events(stamps_ns, f, events)
    summary = latency_summary(outcomes)
    block.update(summary)
    block['events_unobservable'] = summary['events'] - summary['events_observable']
    per_fault: dict[str, Any] = {}
    for kind in sorted({o.event.kind for o in outcomes}):
        mine = [o for o in outcomes if o.event.kind == kind]
        entry = latency_summary(mine)
        if kinds is not None:
            k = (np.asarray(kinds, object) == kind) & keep & y
            entry['tuples'] = int(k.sum())
            entry['tuple_recall'] = float(f[k].mean()) if k.any() else None
        per_fault[kind] = entry
    block['per_fault'] = per_fault
    block['events_list'] = [
        {'modality': o.event.modality.value, 'kind': o.event.kind, 'start_ns': o.event.start_ns,
         'end_ns': o.event.end_ns, 'onset_ns': o.event.onset, 'observable': o.event.observable,
         'detected': o.detected,
         'latency_ms': None if o.latency_ns is None else o.latency_ns / 1e6,
         'latency_tuples': o.latency_tuples} for o in outcomes]
    return block

