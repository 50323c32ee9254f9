"""Offline evaluation: score a model artifact on a (fault-injected) bag, tuple by tuple.

The bag is read in header-stamp order, put together by the live node's synchroniser
(:func:`lipfault_ros.sync.assemble`) and every tuple goes through :meth:`Engine.infer`, the call
the live node makes, so the numbers here are what the robot would have seen (minus transport).

Ground truth comes from the bag's truth topic. The clean reference for correction errors is a
second bag, the clean recording the faulty one was injected from (``lipfault inject`` keeps
stamps, so tuples line up by stamp); without it, correction errors against the clean signal
cannot be computed and the report says so. Without truth, detection metrics cannot be computed
and the report says that instead.

Baselines scored on the same tuples: the stage-1 autoencoder of the same artifact (its
reconstruction error as the score), a second artifact (e.g. the model trained without Lipschitz
modulation), IsolationForest and PCA reconstruction on simple features. Baselines that need
clean training data take it from ``train_bags`` (the bags the model was trained on); when none
are given they use the clean reference bag, and the report labels that as optimistic.

The output folder is written under a temporary name and renamed when complete; a failed run
leaves no folder that looks finished.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from lipfault_ros.errors import ArtifactError, BagError, InputError
from lipfault_ros.evaluation import metrics as M
from lipfault_ros.topics import TopicConfig
from lipfault_ros.tuples import MODALITIES, Modality, SensorTuple, TupleArrays

__all__ = ['Judgement', 'Outputs', 'TupleRecord', 'assemble_bag', 'check_compatible', 'collect',
           'engine_judge', 'evaluate', 'score_outputs']

_log = logging.getLogger(__name__)


@dataclass
class Outputs:
    """Per-tuple results of one detector run (the model live or offline), (N,) / (N, 3) arrays.

    ``scores`` NaN for a missing modality, +inf for a non-finite input; ``flags`` are the
    deployed decisions (fault or missing). ``wrench``/``joints`` are the output values at the
    tuple stamp, ``images`` a list of output frames (or None when not kept).
    """

    stamps_ns: np.ndarray
    scores: np.ndarray
    thresholds: np.ndarray
    flags: np.ndarray
    missing: np.ndarray
    bypassed: np.ndarray
    latency_ms: np.ndarray
    wrench: np.ndarray | None = None
    joints: np.ndarray | None = None
    image_errors: dict[str, np.ndarray] | None = None


@dataclass(frozen=True)
class TupleRecord:
    """What evaluation keeps of one input tuple: the values at the stamp and the window median.

    ``wrench`` (6,), ``joints`` (J, 3) values at the tuple stamp (NaN when missing).
    """

    stamp_ns: int
    wrench: np.ndarray
    joints: np.ndarray
    wrench_median: np.ndarray
    joints_median: np.ndarray
    missing: tuple[bool, bool, bool]


def _sync_config(engine: Any, bag: Path, topics: TopicConfig) -> Any:
    """The synchroniser the live node would run, with the model's windows and the bag's rates."""
    from lipfault_ros.bags.reader import BagReader
    from lipfault_ros.sync import SyncConfig

    with BagReader(bag, topics=topics) as reader:
        info = reader.check()
    span = max(info.duration_ns / 1e9, 1e-3)
    rates = {}
    for m, key in ((Modality.CAMERA, 'camera_rate'), (Modality.WRENCH, 'wrench_rate'),
                   (Modality.JOINTS, 'joints_rate')):
        n = info.counts.get(topics.of(m), 0)
        if n > 1:
            rates[key] = float(n - 1) / span
    return SyncConfig(wrench_window=engine.wrench_window, joints_window=engine.joints_window,
                      **rates)


def check_compatible(engine: Any, bag: Path, topics: TopicConfig) -> dict[str, Any]:
    """Refuse a bag the artifact was not made for: empty bag, joints the model does not know,
    an image size other than the one the artifact was trained from. Returns bag facts."""
    from lipfault_ros.bags.reader import BagReader, read_samples

    with BagReader(bag, topics=topics) as reader:
        info = reader.check()
        names = reader.joint_names()
    frames = read_samples(bag, topics=topics, modalities=(Modality.CAMERA,))
    try:
        first = next(frames, None)
    finally:
        frames.close()  # releases the bag
    if first is None:
        raise BagError(f'bag {bag} holds no decodable camera frame on {topics.camera}')
    image = first[1].image
    absent = [n for n in engine.joint_names if n not in names]
    if absent:
        raise ArtifactError(f'artifact {engine.artifact.path} was trained for joints '
                            f'{list(engine.joint_names)}, but bag {bag} has {list(names)} '
                            f'(absent: {absent}); evaluate with an artifact trained on this robot')
    summary = dict(getattr(engine.artifact, 'summary', {}) or {})
    trained_hw = summary.get('input_image_hw') or summary.get('source_image_hw')
    if trained_hw is not None and tuple(int(v) for v in trained_hw) != image.shape[:2]:
        raise ArtifactError(f'artifact {engine.artifact.path} was trained on {trained_hw[0]}x'
                            f'{trained_hw[1]} images, but bag {bag} has {image.shape[0]}x'
                            f'{image.shape[1]} on {topics.camera}; evaluate with an artifact '
                            f'trained on this camera')
    h, w = image.shape[:2]
    if max(h, w) / min(h, w) > 2.0:
        raise ArtifactError(f'bag {bag} has {h}x{w} images on {topics.camera}; the artifact '
                            f'works on square {engine.image_size}x{engine.image_size} images and '
                            f'would distort these beyond use')
    return {'image_hw': [h, w], 'joint_names': list(names), 'duration_s': info.duration_ns / 1e9,
            'counts': dict(info.counts)}


def assemble_bag(bag: Path, engine: Any, topics: TopicConfig, sync: Any
                 ) -> Iterator[SensorTuple]:
    """The bag's tuples, in stamp order, as the live node would assemble them."""
    from lipfault_ros.bags.reader import read_samples
    from lipfault_ros.sync import assemble

    return assemble(read_samples(bag, topics=topics), sync, engine.joint_names)


def _record(t: SensorTuple, n_joints: int) -> TupleRecord:
    nan_w = np.full(6, np.nan)
    nan_j = np.full((n_joints, 3), np.nan)
    w = np.asarray(t.wrench, np.float64) if t.wrench is not None else None
    j = np.asarray(t.joints, np.float64) if t.joints is not None else None
    return TupleRecord(
        t.stamp_ns,
        w[-1].copy() if w is not None else nan_w,
        j[-1].copy() if j is not None else nan_j,
        M.median_filter_windows(w[None])[0] if w is not None else nan_w,
        M.median_filter_windows(j[None])[0] if j is not None else nan_j,
        tuple(m in t.missing or t.data(m) is None for m in MODALITIES))


class _ImageTally:
    """Per-tuple image errors computed on the fly (frames are not all kept in memory)."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, float]]] = {}

    def add(self, name: str, pred: np.ndarray | None, ref: np.ndarray | None) -> None:
        if pred is None or ref is None or pred.shape != ref.shape:
            row = {'mse': np.nan, 'mae': np.nan, 'psnr': np.nan, 'ssim': np.nan}
        elif np.array_equal(pred, ref):  # a bypassed frame: no need to compute
            row = {'mse': 0.0, 'mae': 0.0, 'psnr': 100.0, 'ssim': 1.0}
        else:
            e = M.image_errors(pred[None], ref[None])
            row = {k: e[k] for k in ('mse', 'mae', 'psnr', 'ssim')}
        self.rows.setdefault(name, []).append(row)

    def arrays(self) -> dict[str, dict[str, np.ndarray]]:
        return {name: {k: np.array([r[k] for r in rows], np.float64) for k in rows[0]}
                for name, rows in self.rows.items() if rows}


def _image_summary(per: dict[str, np.ndarray], select: np.ndarray) -> dict[str, Any]:
    sel = np.asarray(select, bool)
    ok = sel & np.isfinite(per['mse'])
    out = {'n': int(sel.sum()), 'n_nonfinite': int(sel.sum() - ok.sum())}
    for k in ('mse', 'mae', 'psnr', 'ssim'):
        out[k] = float(np.mean(per[k][ok])) if ok.any() else None
    return out


def evaluate(bag: str | Path, artifact: str | Path, *, out_dir: str | Path,
             clean_bag: str | Path | None = None, train_bags: Sequence[str | Path] = (),
             baselines: bool = True, baseline_artifact: str | Path | None = None,
             topics: TopicConfig | None = None, device: str = 'cpu', overwrite: bool = False,
             plots: bool = True, progress: bool = False) -> dict[str, Any]:
    """Score ``artifact`` on ``bag`` and write ``out_dir`` (report.json, report.md, plots).

    Returns the report as a dict (the content of ``report.json``). See the module docstring
    for what is compared with what, and :mod:`lipfault_ros.evaluation.metrics` for every
    definition.
    """
    from lipfault_ros.evaluation.report import prepare_out_dir, write_report
    from lipfault_ros.inference import Engine

    bag = Path(bag)
    out_dir = Path(out_dir)
    topics = topics or TopicConfig()
    if not bag.exists():
        raise FileNotFoundError(f'bag {bag} does not exist')
    prepare_out_dir(out_dir, overwrite=overwrite, check_only=True)
    engine = Engine.from_artifact(artifact, device=device)
    facts = check_compatible(engine, bag, topics)
    sync = _sync_config(engine, bag, topics)
    from lipfault_ros.bags.reader import read_truth

    intervals = list(read_truth(bag, topics=topics))
    clean_path = Path(clean_bag) if clean_bag is not None else None
    if clean_path is not None:
        check_compatible(engine, clean_path, topics)
        if read_truth(clean_path, topics=topics):
            raise BagError(f'clean reference bag {clean_path} records faults in its truth; pass '
                           f'the clean recording the evaluated bag was injected from')

    started = time.time()
    run = _run_model(engine, bag, clean_path, topics, sync, intervals, keep_arrays=baselines,
                     progress=progress)
    n = len(run['stamps'])
    if n == 0:
        raise BagError(f'bag {bag} gives no synchronised tuple (camera, wrench and joints never '
                       f'line up within the synchroniser slop); nothing to evaluate')
    _log.info('model scored %d tuples in %.1f s', n, time.time() - started)

    if clean_path is not None and run['aligned'] < 0.5 * n:
        raise BagError(f'clean reference bag {clean_path} lines up with only {run["aligned"]} of '
                       f'the {n} tuples of {bag} (by stamp); pass the clean recording {bag} was '
                       f'injected from (lipfault inject keeps the stamps)')
    report, plot_data = score_outputs(run['outputs'], run['records'], intervals, sync=sync,
                                      clean=run['clean_records'], images=run['images'],
                                      mode='offline')
    report['inputs'] = {'bag': str(bag), 'clean_bag': str(clean_path) if clean_path else None,
                        'artifact': str(artifact), 'train_bags': [str(p) for p in train_bags],
                        'topics': dataclasses.asdict(topics), 'bag_facts': facts,
                        'model': {'image_size': engine.image_size,
                                  'wrench_window': engine.wrench_window,
                                  'joints_window': engine.joints_window,
                                  'joint_names': list(engine.joint_names),
                                  'modulation': bool(getattr(engine.artifact.config,
                                                             'modulation', True))}}
    report['tuples']['clean_aligned'] = run['aligned']

    if baselines:
        report['baselines'] = _baselines(engine, run, intervals, sync, train_bags, clean_path,
                                         baseline_artifact, topics, device, report)
    else:
        report['baselines'] = {}
        report['not_computed'].append('baselines: disabled (--no-baselines)')
    report['timing'] = {'evaluation_s': time.time() - started}
    write_report(report, out_dir, overwrite=overwrite, plots=plots,
                 snippets={**run['snippets'], **plot_data})
    return report


@dataclass(frozen=True)
class Judgement:
    """What a detector said about one tuple (the live node's fault_status, or Engine.infer).

    ``scores`` (3,) NaN when missing; ``flags`` (3,) fault or missing; ``image`` the output frame
    at the input size (None when unknown), ``wrench`` (6,) and ``joints`` (J, 3) output values at
    the tuple stamp (NaN when unknown).
    """

    scores: np.ndarray
    flags: np.ndarray
    bypassed: bool
    latency_ms: float
    image: np.ndarray | None
    wrench: np.ndarray
    joints: np.ndarray


def engine_judge(engine: Any) -> Any:
    """A judge that runs ``engine.infer`` on each tuple (what the live node does)."""
    def judge(t: SensorTuple) -> Judgement:
        inf = engine.infer(t)
        return Judgement(
            np.array([inf.results[m].score for m in MODALITIES], np.float64),
            np.array([inf.results[m].fault or inf.results[m].missing for m in MODALITIES]),
            bool(inf.bypassed), float(inf.latency_ms), inf.image,
            np.asarray(inf.wrench, np.float64),
            np.stack([inf.joint_position, inf.joint_velocity, inf.joint_effort], axis=-1))
    return judge


def _run_model(engine: Any, bag: Path, clean_bag: Path | None, topics: TopicConfig, sync: Any,
               intervals: Sequence[Any], *, keep_arrays: bool, progress: bool) -> dict[str, Any]:
    """Every tuple of ``bag`` through ``engine.infer``, joined by stamp with the clean bag."""
    faulty = assemble_bag(bag, engine, topics, sync)
    clean_iter = assemble_bag(clean_bag, engine, topics, sync) if clean_bag else None
    return collect(engine_judge(engine), faulty, clean_iter, intervals,
                   joint_names=tuple(engine.joint_names), image_size=engine.image_size,
                   wrench_window=engine.wrench_window, joints_window=engine.joints_window,
                   thresholds=np.asarray(engine.thresholds, np.float64),
                   keep_arrays=keep_arrays, progress=progress)


def collect(judge: Any, tuples: Iterable[SensorTuple], clean_iter: Iterator[SensorTuple] | None,
            intervals: Sequence[Any], *, joint_names: tuple[str, ...], image_size: int,
            wrench_window: int, joints_window: int, thresholds: np.ndarray,
            keep_arrays: bool = False, progress: bool = False) -> dict[str, Any]:
    """Judge every input tuple (``judge(t)`` returns a :class:`Judgement`, or None for a tuple
    the detector never answered, which is skipped and counted), join it by stamp with the clean
    reference and keep what scoring needs. Both tuple streams must have increasing stamps."""
    j = len(joint_names)
    clean_next: SensorTuple | None = next(clean_iter, None) if clean_iter else None
    rows: dict[str, list[Any]] = {k: [] for k in ('stamps', 'scores', 'flags', 'missing',
                                                  'bypassed', 'latency', 'wrench', 'joints')}
    records: list[TupleRecord] = []
    clean_records: list[TupleRecord | None] = []
    tally = _ImageTally()
    held: np.ndarray | None = None
    snippets: dict[str, Any] = {'camera': []}
    cam_events = sorted((iv for iv in intervals if iv.modality is Modality.CAMERA),
                        key=lambda iv: iv.start_ns)
    picked: dict[int, tuple[Any, ...]] = {}
    small: dict[str, list[np.ndarray]] = {'images': []}
    s = image_size
    aligned = 0
    unanswered = 0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(desc='evaluating', unit='tuple', leave=False)
    import cv2

    for t in tuples:
        if bar is not None:
            bar.update()
        inf = judge(t)
        if inf is None:
            unanswered += 1
            continue
        rec = _record(t, j)
        miss = np.array(rec.missing)
        sc = np.asarray(inf.scores, np.float64)
        fl = np.asarray(inf.flags, bool)
        rows['stamps'].append(t.stamp_ns)
        rows['scores'].append(sc)
        rows['flags'].append(fl)
        rows['missing'].append(miss)
        rows['bypassed'].append(inf.bypassed)
        rows['latency'].append(inf.latency_ms)
        rows['wrench'].append(np.asarray(inf.wrench, np.float64))
        rows['joints'].append(np.asarray(inf.joints, np.float64).reshape(j, 3))
        records.append(rec)
        # clean partner by stamp (both streams strictly increase)
        partner = None
        while clean_iter is not None and clean_next is not None and \
                clean_next.stamp_ns < t.stamp_ns:
            clean_next = next(clean_iter, None)
        if clean_next is not None and clean_next.stamp_ns == t.stamp_ns:
            partner = clean_next
            aligned += 1
        clean_records.append(_record(partner, j) if partner is not None else None)
        raw_img = t.image
        out_img = inf.image
        ref_img = partner.image if partner is not None else None
        cam_faulty = bool(M.labels_from_intervals(np.array([t.stamp_ns]), intervals)[0, 0])
        # image errors only where the report uses them: vs clean on faulty tuples, output vs
        # input on the others (SSIM per frame is the slow part of an evaluation)
        tally.add('corrected_vs_raw', None if cam_faulty else out_img, raw_img)
        for name, pred in (('corrected_vs_clean', out_img), ('raw_vs_clean', raw_img),
                           ('median_vs_clean', M.median_filter_images(raw_img[None])[0]
                            if cam_faulty and raw_img is not None else None),
                           ('hold_vs_clean', held)):
            tally.add(name, pred if cam_faulty else None, ref_img)
        if cam_faulty and raw_img is not None:
            # one frame per camera fault, from its middle (plots)
            k = next((i for i, iv in enumerate(cam_events) if iv.active(t.stamp_ns)), None)
            if k is not None and k not in picked and \
                    t.stamp_ns >= (cam_events[k].start_ns + cam_events[k].end_ns) // 2:
                picked[k] = (t.stamp_ns, raw_img, out_img, ref_img, cam_events[k].kind)
        if keep_arrays:
            small['images'].append(cv2.resize(raw_img, (s, s), interpolation=cv2.INTER_AREA)
                                   if raw_img is not None else np.zeros((s, s, 3), np.uint8))
            small.setdefault('clean', []).append(
                cv2.resize(ref_img, (s, s), interpolation=cv2.INTER_AREA)
                if ref_img is not None else None)
        rows.setdefault('wrench_windows', []).append(
            np.asarray(t.wrench, np.float32) if t.wrench is not None
            else np.zeros((wrench_window, 6), np.float32))
        rows.setdefault('joint_windows', []).append(
            np.asarray(t.joints, np.float32) if t.joints is not None
            else np.zeros((joints_window, j, 3), np.float32))
        # hold-last-value: the last frame of a tuple the truth calls camera-clean
        if not cam_faulty and raw_img is not None:
            held = raw_img
    if bar is not None:
        bar.close()
    if picked:  # at most six, spread over the recording
        keys = sorted(picked)
        chosen = np.unique(np.linspace(0, len(keys) - 1, min(6, len(keys))).round().astype(int))
        snippets['camera'] = [picked[keys[i]] for i in chosen]
    n = len(rows['stamps'])
    outputs = Outputs(
        stamps_ns=np.asarray(rows['stamps'], np.int64),
        scores=np.asarray(rows['scores'], np.float64).reshape(n, 3),
        thresholds=np.asarray(thresholds, np.float64),
        flags=np.asarray(rows['flags'], bool).reshape(n, 3),
        missing=np.asarray(rows['missing'], bool).reshape(n, 3),
        bypassed=np.asarray(rows['bypassed'], bool),
        latency_ms=np.asarray(rows['latency'], np.float64),
        wrench=np.asarray(rows['wrench'], np.float64).reshape(n, 6),
        joints=np.asarray(rows['joints'], np.float64).reshape(n, j, 3),
        image_errors=tally.arrays() if n else None)
    arrays = None
    if keep_arrays and n:
        arrays = TupleArrays(outputs.stamps_ns, np.stack(small['images']),
                             np.stack(rows['wrench_windows']), np.stack(rows['joint_windows']),
                             tuple(joint_names), outputs.missing)
    return {'stamps': outputs.stamps_ns, 'outputs': outputs, 'records': records,
            'clean_records': clean_records if clean_iter is not None else None,
            'images': outputs.image_errors, 'arrays': arrays, 'aligned': aligned,
            'snippets': snippets, 'unanswered': unanswered,
            'clean_small': small.get('clean') if keep_arrays else None}


def _settle(sync: Any) -> dict[Modality, int]:
    return {Modality.CAMERA: 0,
            Modality.WRENCH: int(sync.wrench_window * sync.period_ns(Modality.WRENCH)),
            Modality.JOINTS: int(sync.joints_window * sync.period_ns(Modality.JOINTS))}


def _detection(stamps: np.ndarray, scores: np.ndarray, thresholds: np.ndarray,
               flags: np.ndarray, intervals: Sequence[Any], settle: np.ndarray
               ) -> dict[str, dict[str, Any]]:
    """Detection blocks per modality and overall from (N, 3) scores and flags."""
    labels = M.labels_from_intervals(stamps, intervals)
    kinds = M.kinds_from_intervals(stamps, intervals)
    s = np.where(np.isnan(scores), np.inf, scores)  # a missing modality counts as flagged
    out: dict[str, dict[str, Any]] = {}
    for i, m in enumerate(MODALITIES):
        out[m.value] = M.detection_block(s[:, i], flags[:, i], labels[:, i], stamps,
                                         M.fault_events(stamps, intervals, m),
                                         kinds=kinds[:, i], ignore=settle[:, i])
    with np.errstate(invalid='ignore'):
        margin = (s - thresholds[None, :]).max(axis=1)
    any_label = labels.any(axis=1)
    ignore = settle.any(axis=1) & ~any_label
    kinds_any = np.array([next((k for k in row if k), '') for row in kinds], dtype=object)
    out['overall'] = M.detection_block(margin, flags.any(axis=1), any_label, stamps,
                                       M.fault_events(stamps, intervals), kinds=kinds_any,
                                       ignore=ignore)
    return out


def score_outputs(outputs: Outputs, records: Sequence[TupleRecord], intervals: Sequence[Any], *,
                  sync: Any, clean: Sequence[TupleRecord | None] | None,
                  images: dict[str, dict[str, np.ndarray]] | None, mode: str
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model's report (everything but baselines) from per-tuple outputs, and the signal
    arrays the plots draw (raw, corrected, clean values at each tuple stamp).

    Shared by offline evaluation and live replay, so both compute the same numbers the same way.
    """
    stamps = outputs.stamps_ns
    n = len(stamps)
    not_computed: list[str] = []
    report: dict[str, Any] = {
        'format': 'lipfault-evaluation', 'version': 1, 'mode': mode, 'complete': True,
        'created_utc': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
        'definitions': _definitions(),
        'not_computed': not_computed,
    }
    settle = M.settle_mask(stamps, intervals, _settle(sync))
    labels = M.labels_from_intervals(stamps, intervals)
    report['thresholds'] = {m.value: float(outputs.thresholds[i])
                            for i, m in enumerate(MODALITIES)}
    report['tuples'] = {
        'n': n, 'duration_s': float((stamps[-1] - stamps[0]) / 1e9) if n > 1 else 0.0,
        'missing': {m.value: int(outputs.missing[:, i].sum()) for i, m in enumerate(MODALITIES)},
        'faulty': {m.value: int(labels[:, i].sum()) for i, m in enumerate(MODALITIES)},
        'settling_excluded': {m.value: int((settle[:, i] & ~labels[:, i]).sum())
                              for i, m in enumerate(MODALITIES)},
    }
    report['truth'] = {'available': bool(intervals), 'intervals': [
        {'modality': iv.modality.value, 'kind': iv.kind, 'severity': iv.severity,
         'start_ns': iv.start_ns, 'end_ns': iv.end_ns,
         'start_s': (iv.start_ns - int(stamps[0])) / 1e9 if n else None,
         'duration_s': (iv.end_ns - iv.start_ns) / 1e9} for iv in intervals]}
    if intervals:
        blocks = _detection(stamps, outputs.scores, outputs.thresholds, outputs.flags,
                            intervals, settle)
    else:
        not_computed.append('detection metrics (auroc, aupr, f1, false alarms, detection rate, '
                            'latency): the bag has no fault truth topic; only flag and bypass '
                            'rates are reported')
        blocks = {}
        for i, m in enumerate(MODALITIES):
            blocks[m.value] = {'flag_rate': float(outputs.flags[:, i].mean()) if n else None}
        blocks['overall'] = {'flag_rate': float(outputs.flags.any(axis=1).mean()) if n else None}
    # correction
    faulty = labels & ~settle
    clean_rows = ~labels & ~settle
    if clean is None:
        not_computed.append('error_faulty, error_corrected and correction baselines: no clean '
                            'reference bag (--clean) was given, so there is no clean signal to '
                            'compare with; error_clean (output vs input on clean tuples) is '
                            'reported')
    elif not intervals:
        not_computed.append('error_faulty, error_corrected: the bag has no fault truth, so '
                            'there are no known-faulty tuples')
    raw_w = np.array([r.wrench for r in records]).reshape(n, 6)
    raw_j = np.array([r.joints for r in records]).reshape(n, -1)
    med_w = np.array([r.wrench_median for r in records]).reshape(n, 6)
    med_j = np.array([r.joints_median for r in records]).reshape(n, -1)
    have = np.array([c is not None for c in clean]) if clean is not None else np.zeros(n, bool)
    nan_w, nan_j = np.full(6, np.nan), np.full(raw_j.shape[1], np.nan)
    cl_w = np.array([c.wrench if c is not None else nan_w for c in clean]).reshape(n, 6) \
        if clean is not None else None
    cl_j = np.array([c.joints.reshape(-1) if c is not None else nan_j for c in clean]
                    ).reshape(n, -1) if clean is not None else None
    out_w = outputs.wrench
    out_j = outputs.joints.reshape(n, -1) if outputs.joints is not None else None
    series: dict[str, Any] = {'stamps_ns': stamps.tolist(), 'labels': {}, 'scores': {},
                              'flags': {}, 'error_corrected_mse': {}, 'error_faulty_mse': {},
                              'kinds': {}}
    kinds = M.kinds_from_intervals(stamps, intervals)
    for i, m in enumerate(MODALITIES):
        block = blocks[m.value]
        f_rows = faulty[:, i] & have
        c_rows = clean_rows[:, i]
        if m is Modality.CAMERA:
            if images:
                ie = images
                block['error_clean'] = _image_summary(ie['corrected_vs_raw'],
                                                      c_rows & ~outputs.missing[:, 0])
                if clean is not None and intervals:
                    block['error_faulty'] = _image_summary(ie['raw_vs_clean'], f_rows)
                    block['error_corrected'] = _image_summary(ie['corrected_vs_clean'], f_rows)
                    block['error_baselines'] = {
                        'median_filter': _image_summary(ie['median_vs_clean'], f_rows),
                        'hold_last_value': _image_summary(ie['hold_vs_clean'], f_rows)}
                    series['error_corrected_mse'][m.value] = np.where(
                        f_rows, ie['corrected_vs_clean']['mse'], np.nan)
                    series['error_faulty_mse'][m.value] = np.where(
                        f_rows, ie['raw_vs_clean']['mse'], np.nan)
        else:
            raw, med, out = (raw_w, med_w, out_w) if m is Modality.WRENCH else \
                (raw_j, med_j, out_j)
            ref = (cl_w if m is Modality.WRENCH else cl_j) if clean is not None else None
            scale_src = ref[have & clean_rows[:, i]] if ref is not None else raw[c_rows]
            scale = _channel_scale(scale_src)
            present = ~outputs.missing[:, i]
            block['error_clean'] = M.signal_errors(out[c_rows & present], raw[c_rows & present],
                                                   scale)
            if ref is not None and intervals:
                hold = M.hold_last_value(raw, faulty[:, i])
                block['error_faulty'] = M.signal_errors(raw[f_rows], ref[f_rows], scale)
                block['error_corrected'] = M.signal_errors(out[f_rows], ref[f_rows], scale)
                block['error_baselines'] = {
                    'hold_last_value': M.signal_errors(hold[f_rows], ref[f_rows], scale),
                    'median_filter': M.signal_errors(med[f_rows], ref[f_rows], scale)}
                series['error_corrected_mse'][m.value] = np.where(
                    f_rows, M.per_tuple_signal_mse(out, np.nan_to_num(ref), scale), np.nan)
                series['error_faulty_mse'][m.value] = np.where(
                    f_rows, M.per_tuple_signal_mse(raw, np.nan_to_num(ref), scale), np.nan)
                block['error_scale'] = scale.tolist()
        series['labels'][m.value] = labels[:, i]
        series['scores'][m.value] = outputs.scores[:, i]
        series['flags'][m.value] = outputs.flags[:, i]
        series['kinds'][m.value] = kinds[:, i].tolist()
    series['settling'] = {m.value: settle[:, i] for i, m in enumerate(MODALITIES)}
    series['bypassed'] = outputs.bypassed
    series['latency_ms'] = outputs.latency_ms
    series['thresholds'] = outputs.thresholds
    lat = outputs.latency_ms[np.isfinite(outputs.latency_ms)]
    latency = {'mean': float(lat.mean()) if lat.size else None,
               'p50': float(np.percentile(lat, 50)) if lat.size else None,
               'p95': float(np.percentile(lat, 95)) if lat.size else None,
               'max': float(lat.max()) if lat.size else None}
    blocks['overall']['bypass_rate'] = float(outputs.bypassed.mean()) if n else None
    blocks['overall']['inference_latency_ms'] = latency
    blocks['overall']['flag_rate'] = float(outputs.flags.any(axis=1).mean()) if n else None
    for i, m in enumerate(MODALITIES):
        report[m.value] = blocks[m.value]
    report['overall'] = blocks['overall']
    report['bypass_rate'] = blocks['overall']['bypass_rate']
    report['inference_latency_ms'] = latency
    report['series'] = series
    plot_data = {'wrench': {'raw': raw_w, 'corrected': out_w, 'clean': cl_w},
                 'joints': {'raw': raw_j, 'corrected': out_j, 'clean': cl_j}}
    return report, plot_data


def _channel_scale(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return np.ones(v.shape[1] if v.ndim == 2 else 1)
    with np.errstate(invalid='ignore'):
        sd = np.nanstd(v, axis=0)
    pos = sd[np.isfinite(sd) & (sd > 0)]
    floor = max(1e-6, float(np.median(pos)) * 0.01) if pos.size else 1.0
    return np.where(np.isfinite(sd) & (sd > floor), sd, floor)


def _definitions() -> dict[str, str]:
    return {
        'faulty_tuple': 'stamp inside [start_ns, end_ns) of a truth interval of that modality; '
                        'overall: of any modality',
        'settling': 'tuples within one history window after a wrench/joints fault ended are '
                    'excluded from both the faulty and the clean set of that modality',
        'decision': 'deployed decision = the artifact threshold (fault) or the modality missing; '
                    'a missing modality scores +inf',
        'auroc_aupr': 'threshold-free, sklearn roc_auc_score / average_precision_score over '
                      'per-tuple scores; overall score = max over modalities of score - threshold',
        'f1': 'precision/recall/f1 of the deployed decisions, tuple level, no point adjustment; '
              'f1_max_oracle = best F1 over all thresholds chosen with the labels (optimistic)',
        'false_alarms_per_1000': '1000 * flagged clean tuples / clean tuples',
        'detection': 'an event (truth interval) is detected when a tuple inside it is flagged; '
                     'latency = stamp of the first flagged tuple inside - onset (ms), and in '
                     'tuples after the first tuple inside (0 = first faulty tuple)',
        'error_signal': 'values at the tuple stamp; standardised: squared (absolute) error per '
                        'channel divided by the variance (std) of that channel in the clean '
                        'reference, mean over channels and tuples (1.0 = predicting the mean); '
                        'joints channels are position, velocity, effort per joint',
        'error_image': 'mse and mae on [0, 1] intensities, psnr in dB (data range 255, 100 for '
                       'identical frames), ssim (scikit-image, colour) at the input image size',
        'error_faulty': 'raw faulty input vs clean reference, on faulty tuples',
        'error_corrected': 'model output vs clean reference, on faulty tuples',
        'error_clean': 'model output vs its input on clean tuples (0 = bypass passes them '
                       'through unchanged)',
        'error_baselines': 'hold_last_value: the last value before the fault, given the true '
                           'fault labels (correction alone); median_filter: median of the '
                           "tuple's history window (signals) or a 5x5 spatial median (images)",
        'bypass_rate': 'fraction of tuples where every present modality was judged clean and '
                       'the correction block was skipped',
        'inference_latency_ms': 'model time per tuple (normalisation, network, '
                                'denormalisation), Engine.infer',
    }


def _baselines(engine: Any, run: dict[str, Any], intervals: Sequence[Any], sync: Any,
               train_bags: Sequence[str | Path], clean_bag: Path | None,
               baseline_artifact: str | Path | None, topics: TopicConfig, device: str,
               report: dict[str, Any]) -> dict[str, Any]:
    """Every baseline detector, scored on the same tuples."""
    from lipfault_ros.evaluation.baselines import BASELINE_DETECTORS, ClassicalDetector

    out: dict[str, Any] = {}
    arrays: TupleArrays = run['arrays']
    stamps = arrays.stamps_ns
    settle = M.settle_mask(stamps, intervals, _settle(sync))
    notes = report['not_computed']
    train, source = _training_tuples(engine, train_bags, clean_bag, topics)
    if not intervals:
        notes.append('baseline detection metrics: no fault truth in the bag')
    # stage-1 autoencoder of the same artifact: reconstruction error as score
    try:
        ae, ae_out = _stage1_scores(engine, arrays, with_outputs=True)
        thr = None
        if train is not None:
            thr = np.nanquantile(_stage1_scores(engine, train), 0.99, axis=0)
        out['stage1_autoencoder'] = _baseline_block(
            ae, thr, arrays, intervals, settle,
            note='reconstruction error (normalised MSE) of the stage-1 autoencoder of the same '
                 'artifact, no compute block, no detection head; threshold = 99th percentile on '
                 f'clean training tuples ({source})' if thr is not None else
                 'no clean training tuples: threshold-free metrics only')
        _add_corrections(out['stage1_autoencoder'], run, intervals, settle,
                         ae_out.recon_images, ae_out.recon_wrench[:, -1],
                         ae_out.recon_joints[:, -1], notes, 'stage1_autoencoder')
    except (AttributeError, InputError) as exc:
        notes.append(f'baselines.stage1_autoencoder: the artifact gives no stage-1 '
                     f'reconstruction ({exc})')
    if baseline_artifact is not None:
        from lipfault_ros.inference import Engine

        other = Engine.from_artifact(baseline_artifact, device=device)
        if tuple(other.joint_names) != tuple(engine.joint_names):
            raise ArtifactError(f'baseline artifact {baseline_artifact} has joints '
                                f'{list(other.joint_names)}, the model {list(engine.joint_names)}')
        res = other.infer_arrays(arrays.subset(slice(None)) if other.image_size ==
                                 engine.image_size else _resized(arrays, other.image_size))
        name = 'no_modulation' if not getattr(other.artifact.config, 'modulation', True) \
            else 'baseline_artifact'
        flags = res.faults | res.missing
        out[name] = _baseline_block(res.scores, np.asarray(res.thresholds), arrays, intervals,
                                    settle, flags=flags,
                                    note=f'artifact {baseline_artifact} (its own calibrated '
                                         f'thresholds)')
        images = res.images if other.image_size == engine.image_size else \
            _resized(dataclasses.replace(arrays, images=res.images), engine.image_size).images
        _add_corrections(out[name], run, intervals, settle, images, res.wrench[:, -1],
                         res.joints[:, -1], notes, name)
    else:
        notes.append('baselines.no_modulation: no second artifact given '
                     '(--baseline-artifact, e.g. trained with modulation off)')
    if train is None:
        notes.append('baselines.isolation_forest / pca: no clean training tuples')
        return out
    for kind in BASELINE_DETECTORS:
        det = ClassicalDetector(kind).fit(train)
        res = det.score(arrays)
        out[kind] = _baseline_block(res.scores, res.thresholds, arrays, intervals, settle,
                                    flags=res.faults,
                                    note=f'{kind} per modality on window/frame features, fitted '
                                         f'on clean training tuples ({source}), threshold = 99th '
                                         f'percentile on held-out clean training tuples')
        out[kind]['corrections'] = 'none: a detector only'
    return out


def _add_corrections(block: dict[str, Any], run: dict[str, Any], intervals: Sequence[Any],
                     settle: np.ndarray, images: np.ndarray, wrench: np.ndarray,
                     joints: np.ndarray, notes: list[str], name: str) -> None:
    """Correction errors of a baseline that outputs signals, defined as for the model
    (``metrics`` module docstring); camera errors at the model's image size."""
    arrays: TupleArrays = run['arrays']
    clean = run['clean_records']
    if clean is None or not intervals:
        block['corrections'] = 'not computed: needs the clean reference bag and fault truth'
        return
    stamps = arrays.stamps_ns
    n = len(stamps)
    labels = M.labels_from_intervals(stamps, intervals)
    faulty, clean_rows = labels & ~settle, ~labels & ~settle
    have = np.array([c is not None for c in clean])
    missing = np.asarray(arrays.missing, bool)
    raw_w = np.array([r.wrench for r in run['records']]).reshape(n, 6)
    raw_j = np.array([r.joints for r in run['records']]).reshape(n, -1)
    ref_w = np.array([c.wrench if c is not None else np.full(6, np.nan) for c in clean])
    ref_j = np.array([c.joints.reshape(-1) if c is not None else np.full(raw_j.shape[1], np.nan)
                      for c in clean]).reshape(n, -1)
    for i, (m, raw, ref, out) in enumerate(((Modality.WRENCH, raw_w, ref_w, wrench),
                                            (Modality.JOINTS, raw_j, ref_j,
                                             np.asarray(joints).reshape(n, -1))), start=1):
        scale = _channel_scale(ref[have & clean_rows[:, i]])
        f, c = faulty[:, i] & have, clean_rows[:, i] & ~missing[:, i]
        b = block.setdefault(m.value, {})
        b['error_faulty'] = M.signal_errors(raw[f], ref[f], scale)
        b['error_corrected'] = M.signal_errors(out[f], ref[f], scale)
        b['error_clean'] = M.signal_errors(out[c], raw[c], scale)
    small_clean = run.get('clean_small')
    if small_clean is not None:
        ok = np.array([im is not None for im in small_clean])
        f = faulty[:, 0] & ok
        c = clean_rows[:, 0] & ~missing[:, 0]
        ref = np.stack([im for im in small_clean if im is not None]) if ok.any() else None
        b = block.setdefault('camera', {})
        if ref is not None:
            pos = np.cumsum(ok) - 1
            b['error_faulty'] = M.image_errors(np.asarray(arrays.images)[f], ref[pos[f]])
            b['error_corrected'] = M.image_errors(np.asarray(images)[f], ref[pos[f]])
        b['error_clean'] = M.image_errors(np.asarray(images)[c], np.asarray(arrays.images)[c])
        b['error_image_size'] = 'model size (frames resized), not the input size'


def _resized(arrays: TupleArrays, size: int) -> TupleArrays:
    import cv2

    images = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA)
                       for im in arrays.images])
    return dataclasses.replace(arrays, images=images)


def _training_tuples(engine: Any, train_bags: Sequence[str | Path], clean_bag: Path | None,
                     topics: TopicConfig) -> tuple[TupleArrays | None, str]:
    """Clean tuples to fit classical baselines on, at the model's image size."""
    bags = [Path(p) for p in train_bags]
    source = 'training bags ' + ', '.join(str(p) for p in bags)
    if not bags:
        if clean_bag is None:
            return None, ''
        bags = [clean_bag]
        source = (f'clean reference bag {clean_bag}, the clean version of the evaluated bag: '
                  f'optimistic, pass --train-bag for a fair comparison')
    tuples: list[SensorTuple] = []
    for bag in bags:
        sync = _sync_config(engine, bag, topics)
        tuples.extend(assemble_bag(bag, engine, topics, sync))
    if not tuples:
        return None, ''
    arrays = TupleArrays.from_tuples(tuples, image_size=(engine.image_size, engine.image_size))
    from lipfault_ros.bags.reader import read_truth

    intervals = [iv for b in bags for iv in read_truth(b, topics=topics)]
    labels = M.labels_from_intervals(arrays.stamps_ns, intervals).any(axis=1)
    keep = np.flatnonzero(~labels & ~np.asarray(arrays.missing).any(axis=1))
    return arrays.subset(keep), source


def _stage1_scores(engine: Any, arrays: TupleArrays, *, with_outputs: bool = False) -> Any:
    """(N, 3) stage-1 reconstruction error per modality, in the model's normalised units
    (and the BatchInference when ``with_outputs``)."""
    res = engine.infer_arrays(arrays, batch_size=64)
    st = engine.stats
    cam = np.mean(((np.asarray(res.recon_images, np.float64) - _model_size(arrays, engine))
                   / 255.0) ** 2, axis=(1, 2, 3))
    w_in = st.normalise_wrench(np.asarray(arrays.wrench, np.float32))
    w_rec = st.normalise_wrench(np.asarray(res.recon_wrench, np.float32))
    j_in = st.normalise_joints(np.asarray(arrays.joints, np.float32))
    j_rec = st.normalise_joints(np.asarray(res.recon_joints, np.float32))
    with np.errstate(invalid='ignore'):
        w = np.mean((np.asarray(w_in, np.float64) - w_rec) ** 2,
                    axis=tuple(range(1, np.ndim(w_in))))
        jj = np.mean((np.asarray(j_in, np.float64) - j_rec) ** 2,
                     axis=tuple(range(1, np.ndim(j_in))))
    scores = np.stack([cam, w, jj], axis=1)
    scores[~np.isfinite(scores)] = np.inf
    scores[np.asarray(arrays.missing, bool)] = np.inf
    return (scores, res) if with_outputs else scores


def _model_size(arrays: TupleArrays, engine: Any) -> np.ndarray:
    s = engine.image_size
    if arrays.images.shape[1:3] == (s, s):
        return np.asarray(arrays.images, np.float64)
    return np.asarray(_resized(arrays, s).images, np.float64)


def _baseline_block(scores: np.ndarray, thresholds: np.ndarray | None, arrays: TupleArrays,
                    intervals: Sequence[Any], settle: np.ndarray, *,
                    flags: np.ndarray | None = None, note: str = '') -> dict[str, Any]:
    stamps = arrays.stamps_ns
    s = np.asarray(scores, np.float64)
    if thresholds is None:
        thr = np.full(3, np.nan)
        fl = np.zeros_like(s, bool)
    else:
        thr = np.asarray(thresholds, np.float64)
        fl = flags if flags is not None else s > thr[None, :]
    block: dict[str, Any] = {'note': note,
                             'thresholds': {m.value: float(thr[i])
                                            for i, m in enumerate(MODALITIES)}}
    if intervals:
        det = _detection(stamps, s, np.nan_to_num(thr), np.asarray(fl, bool), intervals, settle)
        if thresholds is None:
            for b in det.values():
                for k in ('precision', 'recall', 'f1', 'false_alarms_per_1000', 'tp', 'fp',
                          'fn', 'tn', 'flag_rate', 'detection_rate', 'events_detected',
                          'detection_latency_ms_p50', 'detection_latency_ms_p95',
                          'detection_latency_tuples_p50', 'detection_latency_tuples_p95'):
                    b[k] = None
        block.update(det)
    else:
        for i, m in enumerate(MODALITIES):
            block[m.value] = {'flag_rate': float(np.mean(fl[:, i]))}
        block['overall'] = {'flag_rate': float(np.mean(np.asarray(fl).any(axis=1)))}
    block['series'] = {'scores': {m.value: s[:, i] for i, m in enumerate(MODALITIES)}}
    return block
