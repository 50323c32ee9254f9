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
- False alarms per 1000 = 1000 * flagged clean tuples / clean tuples.
- Signal errors are standardised: the squared (absolute) error of each channel divided by the
  variance (standard deviation) of that channel over the clean reference, averaged over channels
  and tuples. 1.0 is the error of always predicting the channel mean. Image errors: MSE and MAE
  on [0, 1] intensities, PSNR in dB (data range 255) and SSIM (scikit-image, colour) on uint8.

Everything here is NumPy / scikit-learn; stamps are integer nanoseconds.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from lipfault_ros.errors import InputError
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
    'nan_to_none',
    'per_tuple_image_mse',
    'per_tuple_signal_mse',
    'ranking_metrics',
    'settle_mask',
    'signal_errors',
    'threshold_metrics',
]


@dataclass(frozen=True)
class FaultEvent:
    """One truth interval seen through the tuple stamps.

    ``first`` .. ``last`` are the indices (inclusive) of the tuples inside ``[start_ns, end_ns)``;
    both are -1 when no tuple falls inside (the event is unobservable at this tuple rate).
    ``modality`` is the modality the fault was injected into.
    """

    modality: Modality
    kind: str
    severity: float
    start_ns: int
    end_ns: int
    first: int
    last: int

    @property
    def observable(self) -> bool:
        return self.first >= 0


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
                                    'positive_fraction': float(y.mean()) if y.size else None}
    finite = np.isfinite(s)
    if not finite.any() or y.all() or not y.any():
        return out
    s[~finite] = np.max(s[finite]) + 1.0
    out['auroc'] = float(roc_auc_score(y, s))
    out['aupr'] = float(average_precision_score(y, s))
    p, r, _ = precision_recall_curve(y, s)
    with np.errstate(invalid='ignore', divide='ignore'):
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    out['f1_max_oracle'] = float(np.max(f1))
    return out


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
        outcomes.append(EventOutcome(ev, True, int(stamps[i]) - ev.start_ns, int(hits[0])))
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
         'end_ns': o.event.end_ns, 'observable': o.event.observable, 'detected': o.detected,
         'latency_ms': None if o.latency_ns is None else o.latency_ns / 1e6,
         'latency_tuples': o.latency_tuples} for o in outcomes]
    return block


# --- correction -----------------------------------------------------------------------------

def _finite_rows(*arrays: np.ndarray) -> np.ndarray:
    ok = np.ones(len(arrays[0]), bool)
    for a in arrays:
        ok &= np.isfinite(a.reshape(len(a), -1)).all(axis=1)
    return ok


def per_tuple_signal_mse(pred: np.ndarray, ref: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(N,) standardised squared error per tuple: mean over channels of ((p - r) / scale)^2.

    ``pred`` and ``ref`` are (N, C) (or (N, ..., C)), ``scale`` (C,) the clean per-channel std.
    Rows with a non-finite prediction give NaN, never a silent number.
    """
    p = np.asarray(pred, np.float64)
    r = np.asarray(ref, np.float64)
    if p.shape != r.shape:
        raise InputError(f'prediction {p.shape} and reference {r.shape} differ in shape')
    d = (p - r) / np.asarray(scale, np.float64)
    return np.mean(d.reshape(len(d), -1) ** 2, axis=1)


def signal_errors(pred: np.ndarray, ref: np.ndarray, scale: np.ndarray) -> dict[str, Any]:
    """Standardised MSE and MAE of (N, C) signal values against the clean reference.

    Rows where the prediction is not finite (a NaN-producing fault left uncorrected) are counted
    in ``n_nonfinite`` and left out of the means.
    """
    p = np.asarray(pred, np.float64)
    r = np.asarray(ref, np.float64)
    if p.shape != r.shape:
        raise InputError(f'prediction {p.shape} and reference {r.shape} differ in shape')
    n = len(p)
    ok = _finite_rows(p, r)
    if not ok.any():
        return {'mse': None, 'mae': None, 'n': n, 'n_nonfinite': int(n - ok.sum())}
    sc = np.asarray(scale, np.float64)
    d = (p[ok] - r[ok]) / sc
    d = d.reshape(len(d), -1)
    return {'mse': float(np.mean(d ** 2)), 'mae': float(np.mean(np.abs(d))), 'n': n,
            'n_nonfinite': int(n - ok.sum())}


def per_tuple_image_mse(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """(N,) MSE per image on [0, 1] intensities; ``pred``/``ref`` are (N, H, W, 3) uint8."""
    p = np.asarray(pred, np.float64) / 255.0
    r = np.asarray(ref, np.float64) / 255.0
    if p.shape != r.shape:
        raise InputError(f'images {p.shape} and reference {r.shape} differ in shape')
    return np.mean((p - r).reshape(len(p), -1) ** 2, axis=1)


def image_errors(pred: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    """MSE / MAE on [0, 1], mean PSNR (dB, capped at 100 for identical images) and mean SSIM."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    p = np.asarray(pred)
    r = np.asarray(ref)
    if p.shape != r.shape:
        raise InputError(f'images {p.shape} and reference {r.shape} differ in shape')
    n = len(p)
    if n == 0:
        return {'mse': None, 'mae': None, 'psnr': None, 'ssim': None, 'n': 0}
    mse = per_tuple_image_mse(p, r)
    mae = np.mean(np.abs(p.astype(np.float64) - r.astype(np.float64)).reshape(n, -1),
                  axis=1) / 255.0
    psnr, ssim = [], []
    win = min(7, *p.shape[1:3])
    win -= 1 - win % 2
    for a, b in zip(p, r):
        if np.array_equal(a, b):
            psnr.append(100.0)
        else:
            psnr.append(min(100.0, float(peak_signal_noise_ratio(b, a, data_range=255))))
        ssim.append(float(structural_similarity(b, a, data_range=255, channel_axis=-1,
                                                win_size=win)))
    return {'mse': float(mse.mean()), 'mae': float(mae.mean()), 'psnr': float(np.mean(psnr)),
            'ssim': float(np.mean(ssim)), 'n': n}


def hold_last_value(values: np.ndarray, faulty: np.ndarray) -> np.ndarray:
    """Replace each faulty row by the last row before it that was not faulty.

    The trivial correction baseline: it is given the true fault labels, so it measures
    correction alone. Rows faulty from the very start have nothing to hold and stay as they are.
    """
    v = np.array(values, copy=True)
    f = np.asarray(faulty, bool)
    last = None
    for i in range(len(v)):
        if f[i]:
            if last is not None:
                v[i] = v[last]
        else:
            last = i
    return v


def median_filter_windows(windows: np.ndarray) -> np.ndarray:
    """The median over each tuple's history window: (N, T, ...) -> (N, ...), NaN-aware."""
    w = np.asarray(windows, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # all-NaN windows stay NaN
        return np.nanmedian(w, axis=1)


def median_filter_images(images: np.ndarray, ksize: int = 5) -> np.ndarray:
    """A spatial median filter (``cv2.medianBlur``, ``ksize``) of each (H, W, 3) uint8 image."""
    import cv2

    return np.stack([cv2.medianBlur(np.ascontiguousarray(im), ksize) for im in images]) \
        if len(images) else np.asarray(images)


def correction_block(modality: Modality, *, raw: np.ndarray, corrected: np.ndarray,
                     clean: np.ndarray, faulty: np.ndarray, clean_rows: np.ndarray,
                     scale: np.ndarray | None = None,
                     baselines: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Correction errors of one modality.

    ``raw`` is the (faulty) input, ``corrected`` the model's output and ``clean`` the clean
    reference, all (N, C) for signals or (N, H, W, 3) uint8 for the camera; ``faulty`` and
    ``clean_rows`` (N,) select the faulty and the clean tuples. ``error_faulty`` = raw vs clean
    on faulty tuples, ``error_corrected`` = output vs clean on faulty tuples, ``error_clean`` =
    output vs input on clean tuples (does the bypass preserve them?).
    """
    f = np.asarray(faulty, bool)
    c = np.asarray(clean_rows, bool)
    if Modality(modality) == Modality.CAMERA:
        def err(a, b):
            return image_errors(a, b)
    else:
        if scale is None:
            raise InputError(f'{modality}: signal errors need the clean per-channel scale')

        def err(a, b):
            return signal_errors(a, b, scale)
    block = {
        'error_faulty': err(raw[f], clean[f]),
        'error_corrected': err(corrected[f], clean[f]),
        'error_clean': err(corrected[c], raw[c]),
    }
    block['error_baselines'] = {name: err(values[f], clean[f])
                                for name, values in (baselines or {}).items()}
    return block


def nan_to_none(value: Any) -> Any:
    """A JSON-safe copy: NaN/Inf floats become None, NumPy scalars and arrays plain Python."""
    if isinstance(value, dict):
        return {str(k): nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [nan_to_none(v) for v in value]
    if isinstance(value, np.ndarray):
        return nan_to_none(value.tolist())
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)  # paths, enums, devices: their text

