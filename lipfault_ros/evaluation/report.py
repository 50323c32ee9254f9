"""Write an evaluation report: ``report.json`` (every number), ``report.md`` and PNG plots.

Everything is written into a temporary sibling folder that is renamed to the output folder only
when complete, so a crash never leaves a report that looks finished. ``report.json`` is strict
JSON: NaN and infinities become ``null``; per-tuple series (stamps, labels, scores, flags,
per-tuple correction errors) are kept under ``series`` so any number can be recomputed.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from pathlib import Path
from typing import Any, Mapping

from lipfault_ros.fsutil import replace_dir
from lipfault_ros.jsonable import jsonable
from lipfault_ros.tuples import MODALITIES

__all__ = ['REPORT_JSON', 'REPORT_MD', 'markdown', 'prepare_out_dir',
           'write_report']

_log = logging.getLogger(__name__)

REPORT_JSON = 'report.json'
REPORT_MD = 'report.md'
_ROWS = ('camera', 'wrench', 'joints', 'overall')


def prepare_out_dir(out_dir: Path, *, overwrite: bool, check_only: bool = False) -> None:
    """Refuse an existing output folder unless ``overwrite`` (checked before any long work)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f'output folder {out_dir} exists; pass --overwrite to replace it')
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f'output path {out_dir} exists and is not a folder')
    if not check_only:
        out_dir.parent.mkdir(parents=True, exist_ok=True)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return 'n/a'
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value)


def _err(block: Mapping[str, Any] | None, key: str) -> str:
    if not block or block.get(key) is None:
        return 'n/a'
    return _fmt(block[key], 4)


def _lifecycle_line(report: Mapping[str, Any]) -> str:
    lc = report.get('lifecycle') or {}
    if not lc:
        return '- lifecycle: not recorded'
    off = lc.get('threshold_offsets') or {}
    text = (f'- lifecycle (model and every baseline): an alarm is raised when '
            f'{lc.get("raise_k")} of the last {lc.get("raise_n")} tuples are over threshold, '
            f'cleared after {lc.get("clear_n")} tuples under the hold level (hold '
            f'{"on" if lc.get("hold") else "off"}), latch '
            f'{"on" if lc.get("latch") else "off"}; threshold offsets (logit units) '
            + ', '.join(f'{k} {_fmt(v, 2)}' for k, v in off.items()))
    scene = lc.get('scene')
    if scene:
        text += (f'; the threshold follows the scene ({", ".join(scene["modalities"])}: raised '
                 f'by how far the median of the last {scene["window"]} trusted scores lies '
                 f'above the calibration\'s clean level, at most {_fmt(scene["max_offset"], 1)}'
                 f', after a {scene["warmup"]}-tuple warm-up), scores are scene-relative')
    else:
        text += '; thresholds do not follow the scene'
    return text + (f' ({lc["note"]})' if lc.get('note') else '')


def _excluded_line(report: Mapping[str, Any]) -> str:
    eff = (report.get('tuples') or {}).get('effective')
    if not eff:
        settling = (report.get('tuples') or {}).get('settling_excluded')
        return ('- excluded tuples: effective labels not computed (no clean reference); the '
                f'interval labels leave out the settling tuples after a fault {settling}')
    ex = eff.get('excluded') or {}
    parts = [f'{m}: {ex.get("no_effect", {}).get(m, 0)} no_effect (in a fault interval, data '
             f'unchanged), {ex.get("window_tail", {}).get(m, 0)} window_tail (after a fault, '
             f'window still changed), {ex.get("no_clean_partner", {}).get(m, 0)} without a clean '
             f'partner' for m in _ROWS[:3]]
    unobs = eff.get('events_without_affected_tuple') or {}
    return ('- excluded from the effective sets: ' + '; '.join(parts) +
            f'; overall {ex.get("overall", 0)}. Events the fault never changed: '
            + ', '.join(f'{k} {v}' for k, v in unobs.items()))


def _side_by_side(report: Mapping[str, Any]) -> list[str]:
    """One row per detector: AUROC and false alarms per 1000 per modality, effective labels
    (interval labels when there is no effective block)."""
    which = 'effective' if report.get('effective') else 'interval'
    title = ('effective labels' if which == 'effective' else
             'interval labels: no clean reference, effective labels not computed')
    head = ' | '.join(f'{r} AUROC | {r} false alarms /1000' for r in _ROWS)
    lines = [f'## Detectors side by side ({title}; decisions after the lifecycle)', '',
             _lifecycle_line(report), _excluded_line(report), '', f'| detector | {head} |',
             '|---|' + '---|' * (2 * len(_ROWS))]
    detectors = [('model', report)] + list((report.get('baselines') or {}).items())
    for name, rep in detectors:
        blocks = rep.get(which) if isinstance(rep, Mapping) else None
        if not isinstance(blocks, Mapping):
            continue
        cells = ' | '.join(f'{_fmt((blocks.get(r) or {}).get("auroc"))} | '
                           f'{_fmt((blocks.get(r) or {}).get("false_alarms_per_1000"), 1)}'
                           for r in _ROWS)
        lines.append(f'| {name} | {cells} |')
    return lines + ['']


def _header(report: Mapping[str, Any]) -> list[str]:
    lines = [f'# Fault detection and correction report ({report.get("mode", "offline")})', '']
    inputs = report.get('inputs', {})
    if inputs:
        lines += [f'- bag: `{inputs.get("bag")}`', f'- clean reference: '
                  f'`{inputs.get("clean_bag")}`' if inputs.get('clean_bag') else
                  '- clean reference: none (correction errors against clean and effective '
                  'labels not computed)',
                  f'- artifact: `{inputs.get("artifact")}`']
    tuples = report.get('tuples', {})
    lines += [f'- tuples: {tuples.get("n")} over {_fmt(tuples.get("duration_s"), 1)} s; '
              f'faulty per modality {tuples.get("faulty")}; missing {tuples.get("missing")}']
    live = report.get('live')
    if live:
        lines += [f'- live: {live.get("tuples_expected")} tuples expected, '
                  f'{live.get("tuples_received")} received, {live.get("tuples_dropped")} '
                  f'dropped; end-to-end latency p50 {_fmt(live.get("end_to_end_ms_p50"), 1)} ms, '
                  f'p95 {_fmt(live.get("end_to_end_ms_p95"), 1)} ms']
    lat = report.get('inference_latency_ms') or {}
    return lines + [f'- bypass rate: {_fmt(report.get("bypass_rate"))}; inference latency per '
                    f'tuple p50 {_fmt(lat.get("p50"), 2)} ms, p95 {_fmt(lat.get("p95"), 2)} ms',
                    '']


def _detection(report: Mapping[str, Any]) -> list[str]:
    """Every detection figure of every detector, interval labels (the top-level rows)."""
    lines = ['## Detection (interval labels)', '',
             '| detector | modality | AUROC | AUPR | F1 | precision | recall | false alarms '
             '/1000 | detection rate | latency p50 ms | latency p95 ms | latency p50 tuples | '
             'F1-max (oracle) |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    detectors = [('model', report)] + list((report.get('baselines') or {}).items())
    for name, rep in detectors:
        for row in _ROWS:
            b = rep.get(row) or {}
            if not isinstance(b, Mapping):
                continue
            lines.append(f'| {name} | {row} | {_fmt(b.get("auroc"))} | {_fmt(b.get("aupr"))} | '
                         f'{_fmt(b.get("f1"))} | {_fmt(b.get("precision"))} | '
                         f'{_fmt(b.get("recall"))} | {_fmt(b.get("false_alarms_per_1000"), 1)} | '
                         f'{_fmt(b.get("detection_rate"))} | '
                         f'{_fmt(b.get("detection_latency_ms_p50"), 1)} | '
                         f'{_fmt(b.get("detection_latency_ms_p95"), 1)} | '
                         f'{_fmt(b.get("detection_latency_tuples_p50"), 1)} | '
                         f'{_fmt(b.get("f1_max_oracle"))} |')
    which = 'effective' if report.get('effective') else 'interval'
    source = report.get('effective') or {m.value: report.get(m.value) for m in MODALITIES}
    lines += ['', f'## Detection rate per fault type (model, {which} labels, events detected / '
              f'observable)', '',
              '| modality | fault | events | detected | rate | latency p50 ms | tuple recall |',
              '|---|---|---|---|---|---|---|']
    for m in MODALITIES:
        for kind, e in ((source.get(m.value) or {}).get('per_fault') or {}).items():
            lines.append(f'| {m.value} | {kind} | {e.get("events_observable")} | '
                         f'{e.get("events_detected")} | {_fmt(e.get("detection_rate"), 2)} | '
                         f'{_fmt(e.get("detection_latency_ms_p50"), 1)} | '
                         f'{_fmt(e.get("tuple_recall"), 2)} |')
    return lines


def _correction(report: Mapping[str, Any]) -> list[str]:
    lines = ['', '## Correction', '',
             'Signals: standardised MSE (1.0 = predicting the channel mean). Images: MSE on '
             '[0, 1], PSNR dB, SSIM.', '',
             '| modality | measure | raw faulty vs clean | model output vs clean | '
             'hold-last-value | median filter | output vs input on clean tuples |',
             '|---|---|---|---|---|---|---|']
    for m in MODALITIES:
        b = report.get(m.value) or {}
        base = b.get('error_baselines') or {}
        keys = ('mse', 'psnr', 'ssim') if m.value == 'camera' else ('mse', 'mae')
        for k in keys:
            lines.append(f'| {m.value} | {k} | {_err(b.get("error_faulty"), k)} | '
                         f'{_err(b.get("error_corrected"), k)} | '
                         f'{_err(base.get("hold_last_value"), k)} | '
                         f'{_err(base.get("median_filter"), k)} | '
                         f'{_err(b.get("error_clean"), k)} |')
    corr = [(name, b) for name, b in (report.get('baselines') or {}).items()
            if isinstance(b, Mapping) and any(isinstance(b.get(m.value), Mapping) and
                                               'error_corrected' in b[m.value] for m in MODALITIES)]
    if corr:
        lines += ['', 'Correction by baseline models (camera at the model\'s image size):', '',
                  '| baseline | modality | measure | raw faulty vs clean | output vs clean | '
                  'output vs input on clean tuples |', '|---|---|---|---|---|---|']
        for name, b in corr:
            for m in MODALITIES:
                e = b.get(m.value) or {}
                for k in (('mse', 'psnr', 'ssim') if m.value == 'camera' else ('mse', 'mae')):
                    lines.append(f'| {name} | {m.value} | {k} | {_err(e.get("error_faulty"), k)} '
                                 f'| {_err(e.get("error_corrected"), k)} | '
                                 f'{_err(e.get("error_clean"), k)} |')
    return lines


def markdown(report: Mapping[str, Any], plots: Mapping[str, str] | None = None) -> str:
    """The human-readable summary of a report dict."""
    lines = _header(report) + _side_by_side(report) + _detection(report) + _correction(report)
    notes = report.get('not_computed') or []
    if notes:
        lines += ['', '## Not computed', ''] + [f'- {n}' for n in notes]
    baselines = report.get('baselines') or {}
    if baselines:
        lines += ['', '## Baselines', ''] + [f'- **{k}**: {v.get("note", "")}'
                                             for k, v in baselines.items()]
    if plots:
        lines += ['', '## Plots', ''] + [f'![{k}]({v})' for k, v in plots.items()]
    defs = report.get('definitions') or {}
    if defs:
        lines += ['', '## Definitions', ''] + [f'- **{k}**: {v}' for k, v in defs.items()]
    return '\n'.join(lines) + '\n'


def write_report(report: dict[str, Any], out_dir: str | Path, *, overwrite: bool = False,
                 plots: bool = True, snippets: Mapping[str, Any] | None = None) -> Path:
    """Write ``report.json``, ``report.md`` and the plots into ``out_dir`` atomically."""
    out_dir = Path(out_dir)
    prepare_out_dir(out_dir, overwrite=overwrite)
    tmp = out_dir.with_name(f'.{out_dir.name}.partial-{uuid.uuid4().hex[:8]}')
    tmp.mkdir(parents=True)
    try:
        made: dict[str, str] = {}
        if plots:
            from lipfault_ros.evaluation.plots import make_plots
            made = make_plots(report, tmp, snippets=snippets or {})
        report['plots'] = made
        report['complete'] = True
        doc = jsonable(report)
        (tmp / REPORT_JSON).write_text(json.dumps(doc, indent=1, allow_nan=False) + '\n')
        (tmp / REPORT_MD).write_text(markdown(doc, made))
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _log.info('report written to %s', out_dir)
    return out_dir
