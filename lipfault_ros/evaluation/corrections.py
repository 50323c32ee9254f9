"""The correction errors of a report: the model's output (and each correcting baseline's) against
the clean reference on faulty tuples, and against its own input on clean tuples.

Tuples are faulty / clean by the *interval* labels with the settling exclusion (the figures of
the top-level per-modality blocks); definitions in :mod:`lipfault_ros.evaluation.metrics` and
:mod:`lipfault_ros.evaluation.error_metrics`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from lipfault_ros.evaluation import metrics as M
from lipfault_ros.tuples import MODALITIES, Modality, TupleArrays

__all__ = ['add_baseline_corrections', 'channel_scale', 'image_summary', 'model_corrections']


def channel_scale(values: np.ndarray) -> np.ndarray:
    """Per-channel std of (N, C) clean values, with a floor for constant channels."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return np.ones(v.shape[1] if v.ndim == 2 else 1)
    with np.errstate(invalid='ignore'):
        sd = np.nanstd(v, axis=0)
    pos = sd[np.isfinite(sd) & (sd > 0)]
    floor = max(1e-6, float(np.median(pos)) * 0.01) if pos.size else 1.0
    return np.where(np.isfinite(sd) & (sd > floor), sd, floor)


def image_summary(per: dict[str, np.ndarray], select: np.ndarray) -> dict[str, Any]:
    sel = np.asarray(select, bool)
    ok = sel & np.isfinite(per['mse'])
    out = {'n': int(sel.sum()), 'n_nonfinite': int(sel.sum() - ok.sum())}
    for k in ('mse', 'mae', 'psnr', 'ssim'):
        out[k] = float(np.mean(per[k][ok])) if ok.any() else None
    return out


def _signal_arrays(records: Sequence[Any], clean: Sequence[Any] | None, n: int
                   ) -> dict[str, Any]:
    """Raw, window-median and clean values at each tuple stamp, (N, C) per signal."""
    raw_j = np.array([r.joints for r in records]).reshape(n, -1)
    out: dict[str, Any] = {
        'raw_w': np.array([r.wrench for r in records]).reshape(n, 6), 'raw_j': raw_j,
        'med_w': np.array([r.wrench_median for r in records]).reshape(n, 6),
        'med_j': np.array([r.joints_median for r in records]).reshape(n, -1),
        'have': np.array([c is not None for c in clean]) if clean is not None
        else np.zeros(n, bool), 'cl_w': None, 'cl_j': None}
    if clean is not None:
        nan_w, nan_j = np.full(6, np.nan), np.full(raw_j.shape[1], np.nan)
        out['cl_w'] = np.array([c.wrench if c is not None else nan_w for c in clean]
                               ).reshape(n, 6)
        out['cl_j'] = np.array([c.joints.reshape(-1) if c is not None else nan_j
                                for c in clean]).reshape(n, -1)
    return out


def _camera(block: dict[str, Any], series: dict[str, Any], images: Any, f_rows: np.ndarray,
            c_rows: np.ndarray, with_ref: bool) -> None:
    block['error_clean'] = image_summary(images['corrected_vs_raw'], c_rows)
    if not with_ref:
        return
    block['error_faulty'] = image_summary(images['raw_vs_clean'], f_rows)
    block['error_corrected'] = image_summary(images['corrected_vs_clean'], f_rows)
    block['error_baselines'] = {
        'median_filter': image_summary(images['median_vs_clean'], f_rows),
        'hold_last_value': image_summary(images['hold_vs_clean'], f_rows)}
    series['error_corrected_mse']['camera'] = np.where(
        f_rows, images['corrected_vs_clean']['mse'], np.nan)
    series['error_faulty_mse']['camera'] = np.where(f_rows, images['raw_vs_clean']['mse'],
                                                    np.nan)


def _signal(block: dict[str, Any], series: dict[str, Any], m: Modality, raw: np.ndarray,
            med: np.ndarray, out: np.ndarray, ref: np.ndarray | None, faulty: np.ndarray,
            f_rows: np.ndarray, c_rows: np.ndarray, present: np.ndarray, scale: np.ndarray,
            with_truth: bool, detected: np.ndarray) -> None:
    block['error_clean'] = M.signal_errors(out[c_rows & present], raw[c_rows & present], scale)
    if ref is None or not with_truth:
        return
    hold = M.hold_last_value(raw, faulty)  # oracle: told when the fault is by the truth
    hold_detected = M.hold_last_value(raw, detected)  # told by the model's own alarms
    block['error_faulty'] = M.signal_errors(raw[f_rows], ref[f_rows], scale)
    block['error_corrected'] = M.signal_errors(out[f_rows], ref[f_rows], scale)
    block['error_baselines'] = {
        'hold_last_value': M.signal_errors(hold[f_rows], ref[f_rows], scale),
        'hold_last_value_detected': M.signal_errors(hold_detected[f_rows], ref[f_rows], scale),
        'median_filter': M.signal_errors(med[f_rows], ref[f_rows], scale)}
    series['error_corrected_mse'][m.value] = np.where(
        f_rows, M.per_tuple_signal_mse(out, np.nan_to_num(ref), scale), np.nan)
    series['error_faulty_mse'][m.value] = np.where(
        f_rows, M.per_tuple_signal_mse(raw, np.nan_to_num(ref), scale), np.nan)
    block['error_scale'] = scale.tolist()


def model_corrections(blocks: dict[str, dict[str, Any]], series: dict[str, Any], outputs: Any,
                      records: Sequence[Any], clean: Sequence[Any] | None,
                      images: dict[str, dict[str, np.ndarray]] | None, labels: np.ndarray,
                      settle: np.ndarray, with_truth: bool) -> dict[str, Any]:
    """Add the model's correction errors to the per-modality ``blocks`` (and their per-tuple
    series); returns the signal arrays the plots draw."""
    n = len(outputs.stamps_ns)
    a = _signal_arrays(records, clean, n)
    faulty, clean_rows = labels & ~settle, ~labels & ~settle
    out_w = outputs.wrench
    out_j = outputs.joints.reshape(n, -1) if outputs.joints is not None else None
    for i, m in enumerate(MODALITIES):
        f_rows, c_rows = faulty[:, i] & a['have'], clean_rows[:, i]
        if m is Modality.CAMERA:
            if images:
                _camera(blocks[m.value], series, images, f_rows, c_rows & ~outputs.missing[:, 0],
                        clean is not None and with_truth)
            continue
        w = m is Modality.WRENCH
        raw, med, out = (a['raw_w'], a['med_w'], out_w) if w else (a['raw_j'], a['med_j'], out_j)
        ref = a['cl_w'] if w else a['cl_j']
        scale = channel_scale(ref[a['have'] & c_rows] if ref is not None else raw[c_rows])
        _signal(blocks[m.value], series, m, raw, med, out, ref, faulty[:, i], f_rows, c_rows,
                ~outputs.missing[:, i], scale, with_truth, outputs.flags[:, i])
    return {'wrench': {'raw': a['raw_w'], 'corrected': out_w, 'clean': a['cl_w']},
            'joints': {'raw': a['raw_j'], 'corrected': out_j, 'clean': a['cl_j']}}


def add_baseline_corrections(block: dict[str, Any], run: dict[str, Any],
                             intervals: Sequence[Any], settle: np.ndarray, images: np.ndarray,
                             wrench: np.ndarray, joints: np.ndarray) -> None:
    """Correction errors of a baseline that outputs signals, defined as for the model
    (``metrics`` module docstring); camera errors at the model's image size."""
    arrays: TupleArrays = run['arrays']
    clean = run['clean_records']
    if clean is None or not intervals:
        block['corrections'] = 'not computed: needs the clean reference bag and fault truth'
        return
    n = len(arrays.stamps_ns)
    labels = M.labels_from_intervals(arrays.stamps_ns, intervals)
    faulty, clean_rows = labels & ~settle, ~labels & ~settle
    missing = np.asarray(arrays.missing, bool)
    a = _signal_arrays(run['records'], clean, n)
    have = a['have']
    for i, (m, raw, ref, out) in enumerate(((Modality.WRENCH, a['raw_w'], a['cl_w'], wrench),
                                            (Modality.JOINTS, a['raw_j'], a['cl_j'],
                                             np.asarray(joints).reshape(n, -1))), start=1):
        scale = channel_scale(ref[have & clean_rows[:, i]])
        f, c = faulty[:, i] & have, clean_rows[:, i] & ~missing[:, i]
        b = block.setdefault(m.value, {})
        b['error_faulty'] = M.signal_errors(raw[f], ref[f], scale)
        b['error_corrected'] = M.signal_errors(out[f], ref[f], scale)
        b['error_clean'] = M.signal_errors(out[c], raw[c], scale)
    small_clean = run.get('clean_small')
    if small_clean is None:
        return
    ok = np.array([im is not None for im in small_clean])
    f = faulty[:, 0] & ok
    c = clean_rows[:, 0] & ~missing[:, 0]
    b = block.setdefault('camera', {})
    if ok.any():
        ref = np.stack([im for im in small_clean if im is not None])
        pos = np.cumsum(ok) - 1
        b['error_faulty'] = M.image_errors(np.asarray(arrays.images)[f], ref[pos[f]])
        b['error_corrected'] = M.image_errors(np.asarray(images)[f], ref[pos[f]])
    b['error_clean'] = M.image_errors(np.asarray(images)[c], np.asarray(arrays.images)[c])
    b['error_image_size'] = 'model size (frames resized), not the input size'
