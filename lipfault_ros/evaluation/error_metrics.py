"""Correction error measures: a corrected signal or image against the clean reference.

Signal errors are standardised: the squared (absolute) error of each channel divided by the
variance (standard deviation) of that channel over the clean reference, averaged over channels
and tuples. 1.0 is the error of always predicting the channel mean. Image errors: MSE and MAE
on [0, 1] intensities, PSNR in dB (data range 255) and SSIM (scikit-image, colour) on uint8.
The trivial correction baselines (hold-last-value, median filters) are here too.

Re-exported by :mod:`lipfault_ros.evaluation.metrics`, where the rest of the conventions live.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np

from lipfault_ros.errors import InputError
from lipfault_ros.tuples import Modality

__all__ = ['correction_block', 'hold_last_value', 'image_errors', 'median_filter_images',
           'median_filter_windows', 'per_tuple_image_mse', 'per_tuple_signal_mse',
           'signal_errors']

def _finite_rows(*arrays: np.ndarray) -> np.ndarray:
    ok = np.ones(len(arrays[0]), bool)
    for a in arrays:  # no -1 in the shape: zero rows (a modality without faults) must work
        ok &= np.isfinite(a.reshape(len(a), int(np.prod(a.shape[1:])))).all(axis=1)
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
