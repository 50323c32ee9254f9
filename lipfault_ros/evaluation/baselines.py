"""Classical fault detectors to set the model's numbers against.

Each detector works per modality on a few simple per-tuple features (below), is fitted on clean
training tuples only, and gets its threshold the way the model does: a high percentile of its
scores on clean tuples it was not fitted on (a held-out tail of the training tuples), at the same
target false-alarm rate. Scores are "higher = more anomalous".

Features per tuple:

- camera: the frame at 16 x 16 grey levels, per-channel mean and standard deviation, and the
  mean absolute difference to the previous tuple's frame (a frozen frame has none);
- wrench, joints: per channel over the history window: mean, standard deviation, minimum,
  maximum, last value, last minus first, mean absolute sample-to-sample difference.

Non-finite inputs (a NaN fault) give non-finite features; their score is set to +inf, i.e. they
are always flagged, as the model treats them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from lipfault_ros.calibration import CalibrationRule, calibrate, clean_level, hold_level
from lipfault_ros.errors import InputError
from lipfault_ros.tuples import MODALITIES, Modality, TupleArrays

__all__ = ['BASELINE_DETECTORS', 'ClassicalDetector', 'DetectorScores', 'features']

_log = logging.getLogger(__name__)

#: Names of the classical detectors (keys under ``baselines.`` in the report).
BASELINE_DETECTORS: tuple[str, ...] = ('isolation_forest', 'pca')


def _signal_features(windows: np.ndarray) -> np.ndarray:
    """(N, T, C) -> (N, 7 C) window statistics."""
    w = np.asarray(windows, np.float64)
    n = len(w)
    if w.shape[1] > 1:
        step = np.mean(np.abs(np.diff(w, axis=1)), axis=1)
    else:
        step = np.zeros((n, w.shape[2]))
    return np.concatenate([w.mean(1), w.std(1), w.min(1), w.max(1), w[:, -1],
                           w[:, -1] - w[:, 0], step], axis=1)


def _camera_features(images: np.ndarray) -> np.ndarray:
    import cv2

    out = []
    prev = None
    for im in images:
        small = cv2.resize(np.ascontiguousarray(im), (16, 16), interpolation=cv2.INTER_AREA)
        grey = small.astype(np.float64).mean(axis=2).ravel() / 255.0
        f = im.astype(np.float64) / 255.0
        moments = np.concatenate([f.mean(axis=(0, 1)), f.std(axis=(0, 1))])
        diff = 0.0 if prev is None else float(np.mean(np.abs(f - prev)))
        prev = f
        out.append(np.concatenate([grey, moments, [diff]]))
    return np.asarray(out)


def features(arrays: TupleArrays, modality: Modality) -> np.ndarray:
    """(N, F) float64 features of one modality (see the module docstring)."""
    m = Modality(modality)
    if m == Modality.CAMERA:
        return _camera_features(arrays.images)
    if m == Modality.WRENCH:
        return _signal_features(arrays.wrench)
    j = np.asarray(arrays.joints)
    return _signal_features(j.reshape(len(j), j.shape[1], -1))


@dataclass(frozen=True)
class DetectorScores:
    """Scores, thresholds and decisions of one detector on N tuples: (N, 3) in MODALITIES order;
    ``levels`` (3,) the median of its clean calibration scores (:func:`~lipfault_ros.
    calibration.clean_level`), what a scene-relative threshold measures a scene against;
    ``holds`` (3,) its hold levels (:func:`~lipfault_ros.calibration.hold_level`)."""

    scores: np.ndarray
    thresholds: np.ndarray
    faults: np.ndarray
    levels: np.ndarray | None = None
    holds: np.ndarray | None = None


class ClassicalDetector:
    """IsolationForest or PCA-reconstruction detector, one model per modality.

    ``kind`` is 'isolation_forest' or 'pca'; ``false_alarm_rate`` the target rate the
    thresholds are calibrated to; ``holdout`` the fraction of training tuples (the last ones,
    in time) kept out of fitting for calibration.
    """

    def __init__(self, kind: str, *, false_alarm_rate: float = 0.01, holdout: float = 0.2,
                 seed: int = 0, rule: CalibrationRule | None = None) -> None:
        if kind not in BASELINE_DETECTORS:
            raise InputError(f'unknown baseline detector {kind!r}; use one of '
                             f'{list(BASELINE_DETECTORS)}')
        if not 0.0 < false_alarm_rate < 1.0 or not 0.0 < holdout < 1.0:
            raise InputError('false_alarm_rate and holdout must be in (0, 1)')
        self.kind = kind
        self.false_alarm_rate = float(false_alarm_rate)
        # thresholds by the model's rule (lifecycle-aware) unless told otherwise
        self.rule = rule or CalibrationRule(self.false_alarm_rate)
        self.holdout = float(holdout)
        self.seed = int(seed)
        self._models: dict[Modality, Any] = {}
        self._thresholds: dict[Modality, float] = {}
        self._levels: dict[Modality, float] = {}
        self._holds: dict[Modality, float] = {}

    def _make(self) -> Any:
        from sklearn.decomposition import PCA
        from sklearn.ensemble import IsolationForest
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self.kind == 'isolation_forest':
            return make_pipeline(StandardScaler(), IsolationForest(
                n_estimators=100, random_state=self.seed, n_jobs=1))
        return make_pipeline(StandardScaler(), PCA(n_components=0.95, svd_solver='full',
                                                   random_state=self.seed))

    def _score(self, model: Any, x: np.ndarray) -> np.ndarray:
        ok = np.isfinite(x).all(axis=1)
        s = np.full(len(x), np.inf)
        if ok.any():
            xs = x[ok]
            if self.kind == 'isolation_forest':
                s[ok] = -model.score_samples(xs)
            else:
                scaler, pca = model[0], model[1]
                z = scaler.transform(xs)
                rec = pca.inverse_transform(pca.transform(z))
                s[ok] = np.mean((z - rec) ** 2, axis=1)
        return s

    def fit(self, train: TupleArrays) -> ClassicalDetector:
        """Fit on clean tuples (rows whose modality is missing are left out)."""
        n = len(train)
        if n < 10:
            raise InputError(f'{self.kind}: {n} training tuples are too few to fit a baseline '
                             f'(need at least 10)')
        cut = max(5, int(round(n * (1.0 - self.holdout))))
        for i, m in enumerate(MODALITIES):
            x = features(train, m)
            present = ~np.asarray(train.missing)[:, i] & np.isfinite(x).all(axis=1)
            idx = np.flatnonzero(present)
            fit_idx, cal_idx = idx[idx < cut], idx[idx >= cut]
            if len(fit_idx) < 5 or len(cal_idx) < 2:
                raise InputError(f'{self.kind}: too few clean {m.value} tuples to fit and '
                                 f'calibrate ({len(fit_idx)} / {len(cal_idx)})')
            model = self._make().fit(x[fit_idx])
            cal = self._score(model, x[cal_idx])
            self._models[m] = model
            self._thresholds[m] = calibrate(cal, np.asarray(train.stamps_ns)[cal_idx],
                                            self.rule)
            self._levels[m] = clean_level(cal)
            self._holds[m] = hold_level(cal, self._thresholds[m], self.rule)
        _log.info('%s fitted on %d clean tuples (%d held out for thresholds)', self.kind, cut,
                  n - cut)
        return self

    def score(self, arrays: TupleArrays) -> DetectorScores:
        """Scores and decisions on N tuples; missing modalities score +inf (flagged)."""
        if not self._models:
            raise InputError(f'{self.kind}: fit the detector before scoring')
        n = len(arrays)
        scores = np.zeros((n, 3))
        for i, m in enumerate(MODALITIES):
            scores[:, i] = self._score(self._models[m], features(arrays, m))
            scores[np.asarray(arrays.missing)[:, i], i] = np.inf
        thr = np.array([self._thresholds[m] for m in MODALITIES])
        return DetectorScores(scores, thr, scores > thr,
                              np.array([self._levels[m] for m in MODALITIES]),
                              np.array([self._holds[m] for m in MODALITIES]))
