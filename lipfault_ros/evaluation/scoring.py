"""From per-tuple outputs to the numbers of a report: detection (interval and effective labels),
correction, latency. Shared by offline evaluation and live replay, so both compute the same
numbers the same way.

Detection is reported twice: ``interval`` (faulty = inside a truth interval, settling tuples
left out; the top-level per-modality blocks carry these figures plus the correction errors) and
``effective`` (faulty = inside an interval *and* the fault changed the data; needs the clean
reference, see :mod:`lipfault_ros.evaluation.labels`). Flags are the deployed decisions after
the fault lifecycle; AUROC / AUPR / TPR at 1 % FPR use the raw per-tuple scores.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from lipfault_ros.evaluation import labels as L
from lipfault_ros.evaluation import metrics as M
from lipfault_ros.evaluation.corrections import model_corrections
from lipfault_ros.tuples import MODALITIES, Modality

__all__ = ['ROWS', 'definitions', 'detection_blocks', 'label_sets', 'score_outputs',
           'settle_spans', 'split_detection']

#: The rows of every detection block.
ROWS = tuple(m.value for m in MODALITIES) + ('overall',)


def settle_spans(sync: Any) -> dict[Modality, int]:
    """The time span of each modality's history window: the settling time after a fault."""
    return {Modality.CAMERA: 0,
            Modality.WRENCH: int(sync.wrench_window * sync.period_ns(Modality.WRENCH)),
            Modality.JOINTS: int(sync.joints_window * sync.period_ns(Modality.JOINTS))}


def label_sets(stamps: np.ndarray, intervals: Sequence[Any], settle: np.ndarray,
               changes: L.Changes | None, release: int = 0) -> dict[str, L.LabelSet | None]:
    """The interval labels, and the effective ones when the changes are known (``release``:
    the lifecycle's ``clear_n``, see :func:`~lipfault_ros.evaluation.labels.release_mask`)."""
    labels = M.labels_from_intervals(stamps, intervals)
    return {'interval': L.interval_labels(labels, settle),
            'effective': L.effective_labels(labels, changes, release)
            if changes is not None else None}


def detection_blocks(stamps: np.ndarray, scores: np.ndarray, thresholds: np.ndarray,
                     flags: np.ndarray, intervals: Sequence[Any], labels: L.LabelSet
                     ) -> dict[str, dict[str, Any]]:
    """Detection blocks per modality and overall from (N, 3) scores and flags."""
    kinds = M.kinds_from_intervals(stamps, intervals)
    s = np.where(np.isnan(scores), np.inf, scores)  # a missing modality counts as flagged
    out: dict[str, dict[str, Any]] = {}
    for i, m in enumerate(MODALITIES):
        out[m.value] = M.detection_block(s[:, i], flags[:, i], labels.faulty[:, i], stamps,
                                         labels.events(stamps, intervals, m),
                                         kinds=kinds[:, i], ignore=labels.ignore[:, i])
    with np.errstate(invalid='ignore'):
        margin = (s - thresholds[None, :]).max(axis=1)
    kinds_any = np.array([next((k for k in row if k), '') for row in kinds], dtype=object)
    out['overall'] = M.detection_block(margin, flags.any(axis=1), labels.overall_faulty, stamps,
                                       labels.events(stamps, intervals), kinds=kinds_any,
                                       ignore=labels.overall_ignore)
    return out


def split_detection(stamps: np.ndarray, scores: np.ndarray, thresholds: np.ndarray,
                    flags: np.ndarray, intervals: Sequence[Any],
                    sets: dict[str, L.LabelSet | None]) -> dict[str, Any]:
    """``{'interval': blocks, 'effective': blocks or None}`` of one detector."""
    return {name: detection_blocks(stamps, scores, thresholds, flags, intervals, ls)
            if ls is not None else None for name, ls in sets.items()}


def definitions() -> dict[str, str]:
    return {
        'faulty_tuple': 'stamp inside [start_ns, end_ns) of a truth interval of that modality; '
                        'overall: of any modality (interval labels; see effective_labels)',
        'settling': 'interval labels: tuples within one history window after a wrench/joints '
                    'fault ended are excluded from both the faulty and the clean set of that '
                    'modality',
        **L.definitions(),
        'decision': 'deployed decision = the fault lifecycle (report.lifecycle) applied to the '
                    'per-tuple flags (score over the threshold, thresholds including the '
                    'offsets), or the modality missing; a missing modality scores +inf; '
                    'baselines go through the same lifecycle',
        'auroc_aupr': 'threshold-free, sklearn roc_auc_score / average_precision_score over '
                      'raw per-tuple scores; overall score = max over modalities of score - '
                      'threshold',
        'tpr_at_1pct_fpr': 'true positive rate of the raw per-tuple scores at 1 % false '
                           'positive rate, linear interpolation on the ROC curve, no point '
                           'adjustment',
        'f1': 'precision/recall/f1 of the deployed decisions, tuple level, no point adjustment; '
              'f1_max_oracle = best F1 over all thresholds chosen with the labels (optimistic)',
        'false_alarms_per_1000': '1000 * flagged clean tuples / clean tuples (after the '
                                 'lifecycle)',
        'detection': 'an event (truth interval) is detected when a tuple inside it is flagged; '
                     'latency = stamp of the first flagged tuple inside - onset (ms), and in '
                     'tuples after the first tuple inside (0 = first faulty tuple); onset = '
                     'interval start (interval block) or first affected tuple (effective block)',
        'error_signal': 'values at the tuple stamp; standardised: squared (absolute) error per '
                        'channel divided by the variance (std) of that channel in the clean '
                        'reference, mean over channels and tuples (1.0 = predicting the mean); '
                        'joints channels are position, velocity, effort per joint',
        'error_image': 'mse and mae on [0, 1] intensities, psnr in dB (data range 255, 100 for '
                       'identical frames), ssim (scikit-image, colour) at the input image size',
        'error_faulty': 'raw faulty input vs clean reference, on faulty tuples (interval '
                        'labels)',
        'error_corrected': 'model output vs clean reference, on faulty tuples (interval labels)',
        'error_clean': 'model output vs its input on clean tuples (0 = bypass passes them '
                       'through unchanged)',
        'error_baselines': 'hold_last_value: the last value before the fault, given the true '
                           'fault labels (an oracle for when to hold); hold_last_value_detected: '
                           'the last value before the model raised its alarm, held while the '
                           'alarm is up (what a plain hold would do with the same detections); '
                           "median_filter: median of the tuple's history window (signals) or a "
                           '5x5 spatial median (images)',
        'bypass_rate': 'fraction of tuples where every present modality was judged clean and '
                       'the correction block was skipped',
        'inference_latency_ms': 'model time per tuple (normalisation, network, '
                                'denormalisation), Engine.infer',
    }


def _tuples(outputs: Any, sets: dict[str, L.LabelSet | None], labels: np.ndarray,
            settle: np.ndarray, changes: L.Changes | None, intervals: Sequence[Any],
            release: int = 0) -> dict[str, Any]:
    stamps = outputs.stamps_ns
    n = len(stamps)
    per = {m.value: i for i, m in enumerate(MODALITIES)}
    out: dict[str, Any] = {
        'n': n, 'duration_s': float((stamps[-1] - stamps[0]) / 1e9) if n > 1 else 0.0,
        'missing': {m: int(outputs.missing[:, i].sum()) for m, i in per.items()},
        'faulty': {m: int(labels[:, i].sum()) for m, i in per.items()},
        'settling_excluded': {m: int((settle[:, i] & ~labels[:, i]).sum())
                              for m, i in per.items()},
        'effective': None}
    eff = sets.get('effective')
    if eff is not None and changes is not None:
        events = {m.value: eff.events(stamps, intervals, m) for m in MODALITIES}
        out['effective'] = L.excluded_counts(labels, changes, eff, events, release)
    return out


def _series(outputs: Any, intervals: Sequence[Any], sets: dict[str, L.LabelSet | None],
            settle: np.ndarray, changes: L.Changes | None) -> dict[str, Any]:
    stamps = outputs.stamps_ns
    labels = sets['interval'].faulty
    kinds = M.kinds_from_intervals(stamps, intervals)
    eff = sets.get('effective')
    s: dict[str, Any] = {'stamps_ns': stamps.tolist(), 'labels': {}, 'scores': {}, 'flags': {},
                         'error_corrected_mse': {}, 'error_faulty_mse': {}, 'kinds': {},
                         'settling': {}, 'effective_labels': {}, 'effective_excluded': {},
                         'changed': {}, 'missing': {}}
    for i, m in enumerate(MODALITIES):
        s['missing'][m.value] = outputs.missing[:, i]
        s['labels'][m.value] = labels[:, i]
        s['scores'][m.value] = outputs.scores[:, i]
        s['flags'][m.value] = outputs.flags[:, i]
        s['kinds'][m.value] = kinds[:, i].tolist()
        s['settling'][m.value] = settle[:, i]
        if eff is not None and changes is not None:
            s['effective_labels'][m.value] = eff.faulty[:, i]
            s['effective_excluded'][m.value] = eff.ignore[:, i]
            s['changed'][m.value] = changes.changed[:, i]
    s['bypassed'] = outputs.bypassed
    s['latency_ms'] = outputs.latency_ms
    s['thresholds'] = outputs.thresholds
    return s


def _flag_rates(outputs: Any) -> dict[str, dict[str, Any]]:
    n = len(outputs.stamps_ns)
    blocks: dict[str, dict[str, Any]] = {
        m.value: {'flag_rate': float(outputs.flags[:, i].mean()) if n else None}
        for i, m in enumerate(MODALITIES)}
    blocks['overall'] = {'flag_rate': float(outputs.flags.any(axis=1).mean()) if n else None}
    return blocks


def _notes(intervals: Sequence[Any], clean: Any, changes: Any) -> list[str]:
    notes = []
    if not intervals:
        notes.append('detection metrics (auroc, aupr, f1, false alarms, detection rate, '
                     'latency): the bag has no fault truth topic; only flag and bypass rates '
                     'are reported (interval and effective blocks are null)')
    if clean is None:
        notes.append('error_faulty, error_corrected and correction baselines: no clean '
                     'reference bag (--clean) was given, so there is no clean signal to compare '
                     'with; error_clean (output vs input on clean tuples) is reported')
    elif not intervals:
        notes.append('error_faulty, error_corrected: the bag has no fault truth, so there are '
                     'no known-faulty tuples')
    if intervals and changes is None:
        notes.append('effective labels (the effective block is null): no clean reference bag '
                     '(--clean), so whether the injected faults changed the data cannot be '
                     'checked; the interval figures are the only detection figures')
    return notes


def score_outputs(outputs: Any, records: Sequence[Any], intervals: Sequence[Any], *,
                  sync: Any, clean: Sequence[Any] | None,
                  images: dict[str, dict[str, np.ndarray]] | None, mode: str,
                  changes: L.Changes | None = None, release: int = 0
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model's report (everything but baselines) from per-tuple outputs, and the signal
    arrays the plots draw (raw, corrected, clean values at each tuple stamp). ``changes`` (from
    :func:`~lipfault_ros.evaluation.collect.collect` with a clean stream) gives the effective
    labels; without it the ``effective`` block is null."""
    stamps = outputs.stamps_ns
    n = len(stamps)
    report: dict[str, Any] = {
        'format': 'lipfault-evaluation', 'version': 2, 'mode': mode, 'complete': True,
        'created_utc': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
        'definitions': definitions(), 'not_computed': _notes(intervals, clean, changes)}
    settle = M.settle_mask(stamps, intervals, settle_spans(sync))
    sets = label_sets(stamps, intervals, settle, changes, release)
    labels = sets['interval'].faulty
    report['thresholds'] = {m.value: float(outputs.thresholds[i])
                            for i, m in enumerate(MODALITIES)}
    report['tuples'] = _tuples(outputs, sets, labels, settle, changes, intervals, release)
    report['truth'] = {'available': bool(intervals), 'intervals': [
        {'modality': iv.modality.value, 'kind': iv.kind, 'severity': iv.severity,
         'start_ns': iv.start_ns, 'end_ns': iv.end_ns,
         'start_s': (iv.start_ns - int(stamps[0])) / 1e9 if n else None,
         'duration_s': (iv.end_ns - iv.start_ns) / 1e9} for iv in intervals]}
    if intervals:
        split = split_detection(stamps, outputs.scores, outputs.thresholds, outputs.flags,
                                intervals, sets)
        blocks = {row: dict(b) for row, b in split['interval'].items()}
    else:
        split = {'interval': None, 'effective': None}
        blocks = _flag_rates(outputs)
    report['interval'], report['effective'] = split['interval'], split['effective']
    series = _series(outputs, intervals, sets, settle, changes)
    plot_data = model_corrections(blocks, series, outputs, records, clean, images, labels,
                                  settle, bool(intervals))
    lat = outputs.latency_ms[np.isfinite(outputs.latency_ms)]
    latency = {'mean': float(lat.mean()) if lat.size else None,
               'p50': float(np.percentile(lat, 50)) if lat.size else None,
               'p95': float(np.percentile(lat, 95)) if lat.size else None,
               'max': float(lat.max()) if lat.size else None}
    blocks['overall'].update(bypass_rate=float(outputs.bypassed.mean()) if n else None,
                             inference_latency_ms=latency,
                             flag_rate=float(outputs.flags.any(axis=1).mean()) if n else None)
    report.update({row: blocks[row] for row in ROWS})
    report['bypass_rate'] = blocks['overall']['bypass_rate']
    report['inference_latency_ms'] = latency
    report['series'] = series
    return report, plot_data
