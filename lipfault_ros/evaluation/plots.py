"""PNG plots of an evaluation report (matplotlib, Agg backend: no display needed).

- ``roc.png``: ROC curve per modality, the model and every baseline detector;
- ``timeline.png``: scores over time per modality with the threshold and the truth intervals
  shaded;
- ``snippets_camera.png``: raw / corrected / clean frames of a few camera faults;
- ``snippets_wrench.png``, ``snippets_joints.png``: raw / corrected / clean values of one channel
  around each fault of that modality;
- ``latency.png``: per-tuple inference latency and detection latency histograms.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lipfault_ros.tuples import MODALITIES

__all__ = ['make_plots']

_log = logging.getLogger(__name__)


def _pyplot() -> Any:
    import matplotlib
    matplotlib.use('Agg', force=True)
    import matplotlib.pyplot as plt
    return plt


def _arr(values: Any) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], np.float64) \
        if isinstance(values, list) else np.asarray(values, np.float64)


def _roc(report: Mapping[str, Any], path: Path) -> None:
    from sklearn.metrics import roc_curve

    plt = _pyplot()
    series = report['series']
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    detectors = [('model', series['scores'])] + [
        (name, b['series']['scores']) for name, b in (report.get('baselines') or {}).items()
        if isinstance(b, Mapping) and 'series' in b]
    for ax, m in zip(axes, MODALITIES):
        y = np.asarray(series['labels'][m.value], bool)
        ignore = np.asarray(series.get('settling', {}).get(m.value, np.zeros_like(y)), bool)
        keep = ~ignore
        for name, scores in detectors:
            s = _arr(scores[m.value])
            s = np.where(np.isnan(s), np.inf, s)
            finite = np.isfinite(s)
            if finite.any():
                s = np.where(finite, s, np.max(s[finite]) + 1.0)
            if y[keep].all() or not y[keep].any():
                continue
            fpr, tpr, _ = roc_curve(y[keep], s[keep])
            auc = (report.get(m.value) if name == 'model' else
                   report['baselines'][name].get(m.value, {})).get('auroc')
            ax.plot(fpr, tpr, label=f'{name} ({auc:.3f})' if auc is not None else name)
        ax.plot([0, 1], [0, 1], color='grey', lw=0.5, ls='--')
        ax.set_title(f'{m.value}')
        ax.set_xlabel('false positive rate')
        ax.set_ylabel('true positive rate')
        ax.legend(fontsize=7, loc='lower right')
    fig.suptitle('ROC per modality (AUROC in brackets)')
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _shade(ax: Any, report: Mapping[str, Any], modality: str, t0: int) -> None:
    for iv in report.get('truth', {}).get('intervals', []):
        if iv['modality'] == modality:
            a = (iv['start_ns'] - t0) / 1e9
            b = (iv['end_ns'] - t0) / 1e9
            ax.axvspan(a, b, color='tab:red', alpha=0.15, lw=0)
            ax.text(a, 1.0, iv['kind'], transform=ax.get_xaxis_transform(), fontsize=6,
                    va='top', rotation=90, color='tab:red')


def _timeline(report: Mapping[str, Any], path: Path) -> None:
    plt = _pyplot()
    series = report['series']
    stamps = np.asarray(series['stamps_ns'], np.int64)
    t0 = int(stamps[0])
    t = (stamps - t0) / 1e9
    fig, axes = plt.subplots(3, 1, figsize=(13, 7.5), sharex=True)
    for ax, m in zip(axes, MODALITIES):
        s = _arr(series['scores'][m.value])
        thr = report['thresholds'][m.value]
        finite = np.isfinite(s)
        ax.plot(t, np.where(finite, s, np.nan), lw=0.8, label='score')
        if (~finite).any():
            top = np.nanmax(s[finite]) if finite.any() else 1.0
            ax.plot(t[~finite], np.full((~finite).sum(), top), 'x', ms=3, color='k',
                    label='missing / non-finite')
        if thr is not None:
            ax.axhline(thr, color='tab:orange', lw=0.8, ls='--', label='threshold')
        flags = np.asarray(series['flags'][m.value], bool)
        if flags.any():
            lo = np.nanmin(s[finite]) if finite.any() else 0.0
            ax.plot(t[flags], np.full(flags.sum(), lo), '|', color='tab:purple', ms=6,
                    label='flagged')
        _shade(ax, report, m.value, t0)
        ax.set_ylabel(f'{m.value} score')
        ax.legend(fontsize=7, loc='upper right')
    axes[-1].set_xlabel('time since first tuple (s); red: injected faults')
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _signal_snippets(report: Mapping[str, Any], modality: str, data: Mapping[str, Any],
                     path: Path) -> bool:
    raw, out, clean = data.get('raw'), data.get('corrected'), data.get('clean')
    if raw is None or out is None:
        return False
    intervals = [iv for iv in report.get('truth', {}).get('intervals', [])
                 if iv['modality'] == modality][:6]
    if not intervals:
        return False
    plt = _pyplot()
    stamps = np.asarray(report['series']['stamps_ns'], np.int64)
    t0 = int(stamps[0])
    fig, axes = plt.subplots(len(intervals), 1, figsize=(10, 2.0 * len(intervals)),
                             squeeze=False)
    for ax, iv in zip(axes[:, 0], intervals):
        lo, hi = iv['start_ns'] - 500_000_000, iv['end_ns'] + 500_000_000
        sel = (stamps >= lo) & (stamps < hi)
        if not sel.any():
            continue
        r = np.asarray(raw, np.float64)[sel]
        c = np.asarray(clean, np.float64)[sel] if clean is not None else None
        ref = c if c is not None else r
        with np.errstate(invalid='ignore'):
            dev = np.nanmax(np.abs(r - ref), axis=0) if c is not None else np.nanstd(r, axis=0)
        ch = int(np.nanargmax(np.where(np.isfinite(dev), dev, -1))) if r.size else 0
        tt = (stamps[sel] - t0) / 1e9
        ax.plot(tt, r[:, ch], lw=2.2, alpha=0.5, label='raw (faulty)', color='tab:red')
        ax.plot(tt, np.asarray(out, np.float64)[sel][:, ch], lw=1.0, label='corrected',
                color='tab:blue')
        if c is not None:
            ax.plot(tt, c[:, ch], lw=0.9, ls='--', label='clean', color='k')
        ax.axvspan((iv['start_ns'] - t0) / 1e9, (iv['end_ns'] - t0) / 1e9, color='tab:red',
                   alpha=0.1, lw=0)
        ax.set_title(f'{modality} {iv["kind"]} (channel {ch})', fontsize=8)
        ax.legend(fontsize=6, loc='upper right')
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def _camera_snippets(frames: list[Any], path: Path) -> bool:
    frames = [f for f in frames if f[1] is not None and f[2] is not None][:6]
    # without a clean reference the third column stays empty
    if not frames:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(len(frames), 3, figsize=(7, 2.4 * len(frames)), squeeze=False)
    for row, (_stamp, raw, out, clean, kind) in zip(axes, frames):
        for ax, img, title in zip(row, (raw, out, clean),
                                  (f'raw ({kind})', 'model output', 'clean')):
            if img is not None:
                ax.imshow(img)
            ax.set_title(title, fontsize=8)
            ax.axis('off')
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def _latency(report: Mapping[str, Any], path: Path) -> None:
    plt = _pyplot()
    lat = _arr(report['series'].get('latency_ms', []))
    lat = lat[np.isfinite(lat)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    if lat.size:
        axes[0].hist(lat, bins=40, color='tab:blue')
    axes[0].set_xlabel('inference latency per tuple (ms)')
    axes[0].set_ylabel('tuples')
    e2e = report.get('live', {}).get('end_to_end_ms') if report.get('live') else None
    if e2e:
        axes[0].hist(_arr(e2e)[np.isfinite(_arr(e2e))], bins=40, color='tab:orange', alpha=0.6,
                     label='end to end (live)')
        axes[0].legend(fontsize=7)
    det = []
    for m in MODALITIES:
        for ev in (report.get(m.value) or {}).get('events_list', []) or []:
            if ev.get('latency_ms') is not None:
                det.append(ev['latency_ms'])
    if det:
        axes[1].hist(det, bins=20, color='tab:red')
    axes[1].set_xlabel('detection latency from onset (ms)')
    axes[1].set_ylabel('fault events')
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def make_plots(report: Mapping[str, Any], out_dir: Path, *,
               snippets: Mapping[str, Any]) -> dict[str, str]:
    """Write the plots into ``out_dir``; returns name -> file name of those written."""
    out_dir = Path(out_dir)
    made: dict[str, str] = {}
    if not report.get('series', {}).get('stamps_ns'):
        return made
    if report.get('truth', {}).get('available'):
        _roc(report, out_dir / 'roc.png')
        made['roc'] = 'roc.png'
    _timeline(report, out_dir / 'timeline.png')
    made['timeline'] = 'timeline.png'
    if _camera_snippets(list(snippets.get('camera') or []), out_dir / 'snippets_camera.png'):
        made['snippets_camera'] = 'snippets_camera.png'
    for m in ('wrench', 'joints'):
        if _signal_snippets(report, m, snippets.get(m) or {}, out_dir / f'snippets_{m}.png'):
            made[f'snippets_{m}'] = f'snippets_{m}.png'
    _latency(report, out_dir / 'latency.png')
    made['latency'] = 'latency.png'
    return made
