"""Judge every tuple of a bag, join it by stamp with its clean partner and keep what scoring needs.

Shared by offline evaluation (the judge runs :meth:`Engine.infer` through the fault lifecycle)
and live replay (the judge reads the pipeline's answers), so both score the same tuples the same
way. Frames are not all kept in memory: image errors, the camera snippets of the plots and the
effective-label comparison (:class:`lipfault_ros.evaluation.labels.ChangeTally`) are computed as
the tuples stream by.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from lipfault_ros.evaluation import metrics as M
from lipfault_ros.evaluation.labels import ChangeTally
from lipfault_ros.tuples import MODALITIES, Modality, SensorTuple, TupleArrays

__all__ = ['Judgement', 'Outputs', 'TupleRecord', 'collect']


@dataclass
class Outputs:
    """Per-tuple results of one detector run (the model live or offline), (N,) / (N, 3) arrays.

    ``scores`` NaN for a missing modality, +inf for a non-finite input; ``flags`` are the
    deployed decisions (the lifecycle's alarm up, or missing). ``wrench``/``joints`` are the
    output values at the tuple stamp, ``images`` a list of output frames (or None when not kept).
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


@dataclass(frozen=True)
class Judgement:
    """What a detector said about one tuple (the live node's fault_status, or Engine.infer).

    ``scores`` (3,) NaN when missing; ``flags`` (3,) fault alarm up or missing; ``image`` the
    output frame at the input size (None when unknown), ``wrench`` (6,) and ``joints`` (J, 3)
    output values at the tuple stamp (NaN when unknown).
    """

    scores: np.ndarray
    flags: np.ndarray
    bypassed: bool
    latency_ms: float
    image: np.ndarray | None
    wrench: np.ndarray
    joints: np.ndarray


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


class _Partners:
    """The clean tuple with the same stamp as each faulty one (both streams increase)."""

    def __init__(self, clean_iter: Iterator[SensorTuple] | None) -> None:
        self._it = clean_iter
        self._next = next(clean_iter, None) if clean_iter is not None else None
        self.aligned = 0

    def find(self, stamp_ns: int) -> SensorTuple | None:
        while self._it is not None and self._next is not None and \
                self._next.stamp_ns < stamp_ns:
            self._next = next(self._it, None)
        if self._next is not None and self._next.stamp_ns == stamp_ns:
            self.aligned += 1
            return self._next
        return None


class _Collector:
    """The state of one :func:`collect` pass (see there)."""

    def __init__(self, intervals: Sequence[Any], *, joint_names: tuple[str, ...],
                 image_size: int, wrench_window: int, joints_window: int,
                 keep_arrays: bool, with_clean: bool) -> None:
        self.intervals = intervals
        self.j = len(joint_names)
        self.joint_names = tuple(joint_names)
        self.size = image_size
        self.windows = (wrench_window, joints_window)
        self.keep_arrays = keep_arrays
        self.rows: dict[str, list[Any]] = {k: [] for k in (
            'stamps', 'scores', 'flags', 'missing', 'bypassed', 'latency', 'wrench', 'joints',
            'wrench_windows', 'joint_windows', 'spans')}
        self.records: list[TupleRecord] = []
        self.clean_records: list[TupleRecord | None] = []
        self.tally = _ImageTally()
        self.changes = ChangeTally(self.j) if with_clean else None
        self.held: np.ndarray | None = None
        self.cam_events = sorted((iv for iv in intervals if iv.modality is Modality.CAMERA),
                                 key=lambda iv: iv.start_ns)
        self.picked: dict[int, tuple[Any, ...]] = {}
        self.small: dict[str, list[Any]] = {'images': [], 'clean': []}

    def add(self, t: SensorTuple, inf: Judgement, partner: SensorTuple | None) -> None:
        rec = _record(t, self.j)
        r = self.rows
        r['stamps'].append(t.stamp_ns)
        r['scores'].append(np.asarray(inf.scores, np.float64))
        r['flags'].append(np.asarray(inf.flags, bool))
        r['missing'].append(np.array(rec.missing))
        r['bypassed'].append(inf.bypassed)
        r['latency'].append(inf.latency_ms)
        r['wrench'].append(np.asarray(inf.wrench, np.float64))
        r['joints'].append(np.asarray(inf.joints, np.float64).reshape(self.j, 3))
        self.records.append(rec)
        self.clean_records.append(_record(partner, self.j) if partner is not None else None)
        if self.changes is not None:
            self.changes.add(t, partner)
        self._images(t, inf.image, partner.image if partner is not None else None)
        tw, tj = self.windows
        r['wrench_windows'].append(np.asarray(t.wrench, np.float32) if t.wrench is not None
                                   else np.zeros((tw, 6), np.float32))
        r['joint_windows'].append(np.asarray(t.joints, np.float32) if t.joints is not None
                                  else np.zeros((tj, self.j, 3), np.float32))
        r['spans'].append({m: s for m, s in t.spans_ns.items() if m not in t.missing})

    def _images(self, t: SensorTuple, out_img: np.ndarray | None,
                ref_img: np.ndarray | None) -> None:
        import cv2

        raw_img = t.image
        cam_faulty = bool(M.labels_from_intervals(np.array([t.stamp_ns]), self.intervals)[0, 0])
        # image errors only where the report uses them: vs clean on faulty tuples, output vs
        # input on the others (SSIM per frame is the slow part of an evaluation)
        self.tally.add('corrected_vs_raw', None if cam_faulty else out_img, raw_img)
        for name, pred in (('corrected_vs_clean', out_img), ('raw_vs_clean', raw_img),
                           ('median_vs_clean', M.median_filter_images(raw_img[None])[0]
                            if cam_faulty and raw_img is not None else None),
                           ('hold_vs_clean', self.held)):
            self.tally.add(name, pred if cam_faulty else None, ref_img)
        if cam_faulty and raw_img is not None:
            # one frame per camera fault, from its middle (plots)
            k = next((i for i, iv in enumerate(self.cam_events) if iv.active(t.stamp_ns)), None)
            if k is not None and k not in self.picked and \
                    t.stamp_ns >= (self.cam_events[k].start_ns + self.cam_events[k].end_ns) // 2:
                self.picked[k] = (t.stamp_ns, raw_img, out_img, ref_img, self.cam_events[k].kind)
        if self.keep_arrays:
            s = self.size
            self.small['images'].append(
                cv2.resize(raw_img, (s, s), interpolation=cv2.INTER_AREA)
                if raw_img is not None else np.zeros((s, s, 3), np.uint8))
            self.small['clean'].append(cv2.resize(ref_img, (s, s), interpolation=cv2.INTER_AREA)
                                       if ref_img is not None else None)
        # hold-last-value: the last frame of a tuple the truth calls camera-clean
        if not cam_faulty and raw_img is not None:
            self.held = raw_img

    def snippets(self) -> dict[str, Any]:
        if not self.picked:
            return {'camera': []}
        keys = sorted(self.picked)  # at most six, spread over the recording
        chosen = np.unique(np.linspace(0, len(keys) - 1, min(6, len(keys))).round().astype(int))
        return {'camera': [self.picked[keys[i]] for i in chosen]}

    def outputs(self, thresholds: np.ndarray) -> Outputs:
        r = self.rows
        n = len(r['stamps'])
        return Outputs(
            stamps_ns=np.asarray(r['stamps'], np.int64),
            scores=np.asarray(r['scores'], np.float64).reshape(n, 3),
            thresholds=np.asarray(thresholds, np.float64),
            flags=np.asarray(r['flags'], bool).reshape(n, 3),
            missing=np.asarray(r['missing'], bool).reshape(n, 3),
            bypassed=np.asarray(r['bypassed'], bool),
            latency_ms=np.asarray(r['latency'], np.float64),
            wrench=np.asarray(r['wrench'], np.float64).reshape(n, 6),
            joints=np.asarray(r['joints'], np.float64).reshape(n, self.j, 3),
            image_errors=self.tally.arrays() if n else None)

    def arrays(self, outputs: Outputs) -> TupleArrays | None:
        if not self.keep_arrays or not len(outputs.stamps_ns):
            return None
        return TupleArrays(outputs.stamps_ns, np.stack(self.small['images']),
                           np.stack(self.rows['wrench_windows']),
                           np.stack(self.rows['joint_windows']), self.joint_names,
                           outputs.missing)


def collect(judge: Any, tuples: Iterable[SensorTuple], clean_iter: Iterator[SensorTuple] | None,
            intervals: Sequence[Any], *, joint_names: tuple[str, ...], image_size: int,
            wrench_window: int, joints_window: int, thresholds: np.ndarray,
            keep_arrays: bool = False, progress: bool = False) -> dict[str, Any]:
    """Judge every input tuple (``judge(t)`` returns a :class:`Judgement`, or None for a tuple
    the detector never answered, which is skipped and counted), join it by stamp with the clean
    reference and keep what scoring needs. Both tuple streams must have increasing stamps.

    With a clean stream, ``changes`` in the result says where the faults changed the data
    (:class:`~lipfault_ros.evaluation.labels.Changes`, for the effective labels); else None.
    ``spans`` are the judged tuples' signal window spans (``SensorTuple.spans_ns`` of the
    modalities present), for the baselines' lost-samples evidence.
    """
    c = _Collector(intervals, joint_names=joint_names, image_size=image_size,
                   wrench_window=wrench_window, joints_window=joints_window,
                   keep_arrays=keep_arrays, with_clean=clean_iter is not None)
    partners = _Partners(clean_iter)
    unanswered = 0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(desc='evaluating', unit='tuple', leave=False)
    for t in tuples:
        if bar is not None:
            bar.update()
        inf = judge(t)
        if inf is None:
            unanswered += 1
            continue
        c.add(t, inf, partners.find(t.stamp_ns))
    if bar is not None:
        bar.close()
    outputs = c.outputs(thresholds)
    return {'stamps': outputs.stamps_ns, 'outputs': outputs, 'records': c.records,
            'clean_records': c.clean_records if clean_iter is not None else None,
            'images': outputs.image_errors, 'arrays': c.arrays(outputs),
            'aligned': partners.aligned, 'snippets': c.snippets(), 'unanswered': unanswered,
            'changes': c.changes.result() if c.changes is not None else None,
            'clean_small': c.small['clean'] if keep_arrays else None,
            'spans': c.rows['spans']}
